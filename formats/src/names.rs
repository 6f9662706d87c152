//! Validation of symbol and library names.
//!
//! Rules (the same for both kinds of name):
//! - not empty, at most [`MAX_NAME_BYTES`] bytes of UTF-8;
//! - no control characters (U+0000..U+001F, U+007F..U+009F): object stores and terminals mangle them;
//! - not `.` or `..`, which object stores treat as path navigation.
//!
//! Everything else is allowed, unicode and `/` included: object names percent-encode every byte outside
//! `[A-Za-z0-9._-]` (see [`crate::key`]), so any valid name round-trips through both key encodings.

use crate::error::{FormatError, Result};

/// Longest name accepted, in bytes of UTF-8. Keeps object names well under S3's 1,024-byte key limit
/// even when every byte is percent-encoded (3 x 255 for the symbol, plus the library).
pub const MAX_NAME_BYTES: usize = 255;

fn refuse(what: &'static str, name: &str, reason: impl Into<String>) -> FormatError {
    let shown: String = name.chars().take(80).collect();
    FormatError::InvalidName { what, name: shown, reason: reason.into() }
}

fn validate(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(refuse(what, name, "it is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(refuse(
            what,
            name,
            format!("it is {} bytes long; the limit is {MAX_NAME_BYTES} bytes of UTF-8", name.len()),
        ));
    }
    if name == "." || name == ".." {
        return Err(refuse(what, name, "`.` and `..` are reserved by object stores"));
    }
    if let Some((i, c)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(refuse(what, name, format!("control character U+{:04X} at byte {i}", u32::from(c))));
    }
    Ok(())
}

/// Checks a symbol name against the rules in the module docs.
///
/// # Errors
/// [`FormatError::InvalidName`] saying which rule the name breaks.
pub fn validate_symbol(name: &str) -> Result<()> {
    validate("symbol", name)
}

/// Checks a snapshot name against the rules in the module docs (the same as a symbol's; errors say
/// "snapshot").
///
/// # Errors
/// [`FormatError::InvalidName`] saying which rule the name breaks.
pub fn validate_snapshot(name: &str) -> Result<()> {
    validate("snapshot", name)
}

/// Checks a library name against the rules in the module docs.
///
/// # Errors
/// [`FormatError::InvalidName`] saying which rule the name breaks.
pub fn validate_library(name: &str) -> Result<()> {
    validate("library", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_names() {
        for ok in ["AAPL", "a/b", "fx.EURUSD", "数据", "émoji 🚀", "with space", "%41", "a*b?c<d>"] {
            validate_symbol(ok).expect(ok);
        }
        validate_symbol(&"x".repeat(MAX_NAME_BYTES)).expect("max length");
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let cases = [
            ("", "empty"),
            (".", "reserved"),
            ("..", "reserved"),
            ("a\nb", "control character U+000A"),
            ("a\u{0}b", "control character U+0000"),
        ];
        for (name, reason) in cases {
            let err = validate_symbol(name).expect_err(name).to_string();
            assert!(err.contains(reason), "{err}");
        }
        let long = "é".repeat(128);
        assert!(validate_library(&long).expect_err("too long").to_string().contains("256 bytes"));
    }
}
