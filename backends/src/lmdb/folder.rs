//! Library name <-> folder name.
//!
//! A library's environment lives in `<root>/<folder>`. The folder is the library name with every byte
//! outside `[A-Za-z0-9_.-]` written as `%XX` (and a leading `.` too, so no folder is hidden), which
//! decodes back exactly. Library names may be 255 bytes, which can encode to more than a file name may
//! hold; names whose encoding exceeds [`MAX_PLAIN`] bytes use `~<16 hex digits of a hash>` instead,
//! and the environment's own `library` record (see `env.rs`) holds the name — and settles hash
//! collisions, since opening a folder that records another name is refused.

/// The longest percent-encoded folder name used as is; 200 leaves room under common 255-byte limits.
pub(crate) const MAX_PLAIN: usize = 200;

/// Marks a hashed folder name; `~` is never produced by the plain encoding.
const HASHED: char = '~';

/// The folder name of library `name` (a valid library name).
pub(crate) fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > MAX_PLAIN {
        return format!("{HASHED}{:016x}", fnv1a(name.as_bytes()));
    }
    out
}

/// What a folder name says about the library inside.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// The library name, read from a plain folder name.
    Name(String),
    /// A hashed folder: the name must be read from the environment.
    Hashed,
    /// Not a folder this backend made.
    Foreign,
}

/// Decodes a folder name made by [`encode`]; only the canonical spelling is accepted.
pub(crate) fn decode(folder: &str) -> Decoded {
    if let Some(hex) = folder.strip_prefix(HASHED) {
        let ok = hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return if ok { Decoded::Hashed } else { Decoded::Foreign };
    }
    let bytes = folder.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            else {
                return Decoded::Foreign;
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(name) if !name.is_empty() && encode(&name) == folder => Decoded::Name(name),
        _ => Decoded::Foreign,
    }
}

/// FNV-1a, 64 bits: stable across Rust releases (unlike `DefaultHasher`), which folder names need.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_safe() {
        for name in ["prices", "a/b", ".hidden", "a.b", "数据", "x y%z", "..x", "UPPER_lower-1"] {
            let folder = encode(name);
            assert!(!folder.contains('/') && !folder.starts_with('.'), "{folder}");
            assert_eq!(decode(&folder), Decoded::Name(name.to_owned()), "{name}");
        }
        assert_eq!(encode(".x"), "%2Ex");
    }

    #[test]
    fn long_names_are_hashed() {
        let name = "é".repeat(100);
        let folder = encode(&name);
        assert!(folder.len() <= MAX_PLAIN && folder.starts_with('~'), "{folder}");
        assert_eq!(decode(&folder), Decoded::Hashed);
        assert_ne!(encode(&"é".repeat(99)), folder);
    }

    #[test]
    fn foreign_folders_are_recognised() {
        for folder in ["%2ex", "%4", "~zz", "%FF", "", "~0123"] {
            assert_eq!(decode(folder), Decoded::Foreign, "{folder:?}");
        }
    }
}
