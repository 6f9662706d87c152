//! Bounds-checked little-endian reading and writing of the integers our byte layouts use.

use crate::error::{FormatError, Result};

/// A cursor over untrusted bytes. Every read is bounds-checked and reports a
/// [`FormatError::Truncated`] naming the object being decoded.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    object: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`; errors name `object`.
    pub fn new(bytes: &'a [u8], object: &'static str) -> Self {
        Self { bytes, pos: 0, object }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if fewer remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(FormatError::Truncated {
            object: self.object,
            offset: self.pos,
            needed: n,
            available: self.remaining(),
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    /// The next little-endian `u8`.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if too few bytes remain.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// The next little-endian `u16`.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if too few bytes remain.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// The next little-endian `u32`.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if too few bytes remain.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// The next little-endian `u64`.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if too few bytes remain.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The next little-endian `i64`.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] if too few bytes remain.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// A `u16`-length-prefixed UTF-8 string.
    ///
    /// # Errors
    /// [`FormatError::Truncated`] or [`FormatError::Malformed`] (not UTF-8).
    pub fn str16(&mut self, field: &str) -> Result<&'a str> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|e| FormatError::malformed(self.object, format!("{field} is not UTF-8: {e}")))
    }

    /// Fails unless every byte has been consumed (no slack bytes that no checksum would cover).
    ///
    /// # Errors
    /// [`FormatError::Malformed`] naming the number of trailing bytes.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(FormatError::malformed(self.object, format!("{} unexpected trailing bytes", self.remaining())))
        }
    }
}

/// Appends little-endian integers to a byte vector.
pub trait WriteLe {
    /// Appends `v` little-endian.
    fn put_u8(&mut self, v: u8);
    /// Appends `v` little-endian.
    fn put_u16(&mut self, v: u16);
    /// Appends `v` little-endian.
    fn put_u32(&mut self, v: u32);
    /// Appends `v` little-endian.
    fn put_u64(&mut self, v: u64);
    /// Appends `v` little-endian.
    fn put_i64(&mut self, v: i64);
    /// Writes a `u16` length then the bytes. The caller guarantees `s.len() <= u16::MAX`.
    fn put_str16(&mut self, s: &str);
}

impl WriteLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_str16(&mut self, s: &str) {
        let len = u16::try_from(s.len()).expect("callers validate string lengths against u16::MAX");
        self.put_u16(len);
        self.extend_from_slice(s.as_bytes());
    }
}

pub use crate::checksum::checksum;

/// Whether a stored checksum matches the computed one.
///
/// Under `cfg(fuzzing)` (set by cargo-fuzz) every checksum is accepted, so that the fuzzer can reach the
/// parsers behind the checksums instead of stopping at the first one; never set outside fuzz builds.
pub fn checksum_matches(stored: u64, computed: u64) -> bool {
    cfg!(fuzzing) || stored == computed
}
