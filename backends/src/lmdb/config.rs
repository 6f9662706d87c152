//! `lmdb://` URIs: where the store lives and how large a memory map each library gets.
//!
//! Grammar: `lmdb://<path>[?map_size=<size>]`. `lmdb:///abs/path` is absolute, `lmdb://rel/path` is
//! relative to the working directory. The path is percent-decoded (write `%25` for a literal `%`, `%3F`
//! for `?`). `<size>` is a whole number of bytes with an optional unit: `KB`/`MB`/`GB`/`TB` are powers
//! of 1000, `KiB`/`MiB`/`GiB`/`TiB` (or `K`/`M`/`G`/`T`) powers of 1024; units are case-insensitive.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};

/// The URI scheme this backend answers to.
pub const SCHEME: &str = "lmdb://";

/// The default map size per library: 64 GiB of address space. The map is sparse, so this costs
/// nothing on disk; it only bounds how large a library can grow before the map is grown.
pub const DEFAULT_MAP_SIZE: u64 = 64 << 30;

/// The smallest map size accepted (64 KiB): LMDB needs a few pages for its meta pages and catalogue.
pub const MIN_MAP_SIZE: u64 = 64 << 10;

/// The largest map size accepted (256 TiB, above any 64-bit address space in use today).
pub const MAX_MAP_SIZE: u64 = 256 << 40;

/// Map sizes are rounded up to this multiple so they are page-aligned on every platform LMDB supports.
pub const MAP_SIZE_ALIGN: u64 = 64 << 10;

/// Opening options of an LMDB store, usually parsed from a URI by [`LmdbConfig::from_uri`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmdbConfig {
    /// The folder holding one sub-folder (one LMDB environment) per library. Created if missing.
    pub path: PathBuf,
    /// The initial memory-map size of each library's environment, in bytes. When a write finds the
    /// map full, the map is doubled (up to `max(map_size, 1 TiB)`) and the write retried.
    pub map_size: u64,
}

impl LmdbConfig {
    /// Options for `path` with the [`DEFAULT_MAP_SIZE`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LmdbConfig { path: path.into(), map_size: DEFAULT_MAP_SIZE }
    }

    /// Parses `lmdb://<path>[?map_size=<size>]` (grammar in the module docs).
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] naming the bad part: a scheme other than `lmdb://`, an empty or
    /// badly escaped path, an unknown or repeated option, or a map size that does not parse or lies
    /// outside [`MIN_MAP_SIZE`]..=[`MAX_MAP_SIZE`].
    pub fn from_uri(uri: &str) -> Result<Self> {
        let rest = strip_scheme(uri)
            .ok_or_else(|| invalid(format!("{uri:?} is not an LMDB URI: it must start with {SCHEME:?}")))?;
        let (raw_path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if raw_path.is_empty() {
            return Err(invalid(format!("{uri:?} has no path: write lmdb:///absolute/path or lmdb://relative/path")));
        }
        let path = percent_decode(raw_path).map_err(|why| invalid(format!("path {raw_path:?} in {uri:?}: {why}")))?;
        let mut config = LmdbConfig::new(path);
        let mut seen_map_size = false;
        for pair in query.into_iter().flat_map(|q| q.split('&')).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "map_size" => {
                    if seen_map_size {
                        return Err(invalid(format!("option map_size is given twice in {uri:?}")));
                    }
                    seen_map_size = true;
                    config.map_size = parse_size(value).map_err(|why| invalid(format!("map_size={value:?}: {why}")))?;
                }
                other => {
                    return Err(invalid(format!(
                        "unknown option {other:?} in {uri:?}; the LMDB backend knows map_size"
                    )));
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the map size bounds.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] when the map size is outside [`MIN_MAP_SIZE`]..=[`MAX_MAP_SIZE`]
    /// or the path is empty.
    pub fn validate(&self) -> Result<()> {
        if self.path.as_os_str().is_empty() {
            return Err(invalid("the LMDB path is empty".into()));
        }
        if !(MIN_MAP_SIZE..=MAX_MAP_SIZE).contains(&self.map_size) {
            return Err(invalid(format!(
                "map_size {} is outside the accepted range {MIN_MAP_SIZE}..={MAX_MAP_SIZE} bytes",
                self.map_size
            )));
        }
        Ok(())
    }

    /// The map size rounded up to [`MAP_SIZE_ALIGN`].
    pub(crate) fn aligned_map_size(&self) -> u64 {
        align_map_size(self.map_size)
    }

    /// The URI that [`LmdbConfig::from_uri`] parses back to this config with `path` in place of
    /// `self.path` (the store prints its canonical root).
    pub(crate) fn to_uri(&self, path: &Path) -> String {
        format!("{SCHEME}{}?map_size={}", percent_encode_path(&path.to_string_lossy()), self.map_size)
    }
}

fn strip_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_at_checked(SCHEME.len())?;
    scheme.eq_ignore_ascii_case(SCHEME).then_some(rest)
}

fn invalid(message: String) -> StorageError {
    StorageError::InvalidConfig(message)
}

/// Rounds up to [`MAP_SIZE_ALIGN`], saturating below [`MAX_MAP_SIZE`]'s alignment.
pub(crate) fn align_map_size(size: u64) -> u64 {
    size.div_ceil(MAP_SIZE_ALIGN).saturating_mul(MAP_SIZE_ALIGN)
}

/// Parses `512MB`, `2GiB`, `1073741824`, ... into bytes.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty; give bytes or a size such as 512MB or 2GiB".into());
    }
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() || unit.starts_with(['.', ',']) {
        return Err("must be a whole number of bytes or units (fractions are not accepted: use a smaller unit)".into());
    }
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => {
            return Err(format!("unknown unit {other:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"));
        }
    };
    let number: u64 = digits.parse().map_err(|_| format!("{digits} does not fit in 64 bits"))?;
    number.checked_mul(multiplier).ok_or_else(|| "does not fit in 64 bits".to_owned())
}

fn percent_decode(text: &str) -> std::result::Result<PathBuf, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape at byte {i}: `%` must be followed by two hex digits"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| "escapes do not decode to UTF-8".to_owned())?;
    if decoded.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    Ok(PathBuf::from(decoded))
}

fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c == '%' || c == '?' || c == '#' || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_relative_and_sizes() {
        let c = LmdbConfig::from_uri("lmdb:///data/floe?map_size=2GiB").expect("valid");
        assert_eq!(c, LmdbConfig { path: "/data/floe".into(), map_size: 2 << 30 });
        let c = LmdbConfig::from_uri("lmdb://rel/dir").expect("valid");
        assert_eq!(c, LmdbConfig { path: "rel/dir".into(), map_size: DEFAULT_MAP_SIZE });
        for (text, bytes) in [
            ("1048576", 1 << 20),
            ("512MB", 512_000_000),
            ("512mib", 512 << 20),
            ("1TB", 1_000_000_000_000),
            ("1T", 1 << 40),
            ("64 KiB", 64 << 10),
            ("3g", 3 << 30),
        ] {
            let uri = format!("lmdb:///x?map_size={text}");
            assert_eq!(LmdbConfig::from_uri(&uri).expect(text).map_size, bytes, "{text}");
        }
    }

    #[test]
    fn decodes_and_reencodes_paths() {
        let c = LmdbConfig::from_uri("lmdb:///tmp/my%20dir/100%25?map_size=1MiB").expect("valid");
        assert_eq!(c.path, PathBuf::from("/tmp/my dir/100%"));
        let back = LmdbConfig::from_uri(&c.to_uri(&c.path)).expect("round trip");
        assert_eq!(back, c);
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("s3://bucket", "must start with"),
            ("lmdb://", "has no path"),
            ("lmdb:///x?map_size=", "map_size=\"\""),
            ("lmdb:///x?map_size=1.5GB", "fractions"),
            ("lmdb:///x?map_size=12parsecs", "unknown unit \"parsecs\""),
            ("lmdb:///x?map_size=99999999999TiB", "does not fit"),
            ("lmdb:///x?map_size=10", "outside the accepted range"),
            ("lmdb:///x?map_size=1MB&map_size=2MB", "given twice"),
            ("lmdb:///x?mapsize=1GB", "unknown option \"mapsize\""),
            ("lmdb:///x%zz", "bad escape"),
        ];
        for (uri, expected) in cases {
            let err = LmdbConfig::from_uri(uri).expect_err(uri);
            assert!(matches!(err, StorageError::InvalidConfig(_)), "{uri}: {err:?}");
            assert!(err.to_string().contains(expected), "{uri}: {err}");
        }
    }

    #[test]
    fn aligns_map_sizes() {
        assert_eq!(align_map_size(1), MAP_SIZE_ALIGN);
        assert_eq!(align_map_size(MAP_SIZE_ALIGN), MAP_SIZE_ALIGN);
        assert_eq!(align_map_size(512_000_000) % MAP_SIZE_ALIGN, 0);
    }
}
