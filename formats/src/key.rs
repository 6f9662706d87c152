//! Typed storage keys and their two encodings.
//!
//! Floe's storage is a log of immutable objects named by [`AtomKey`]s (data segments, index segments,
//! version records, snapshots) plus one small mutable value per symbol named by a [`RefKey`] (the version
//! reference that the commit protocol advances by compare-and-swap).
//!
//! Each key has two exact, round-tripping encodings (byte layouts in `design/format.md`):
//! - [`Key::to_binary`] / [`Key::from_binary`]: compact bytes, used as LMDB keys. Keys of one symbol and
//!   type share the prefix [`binary_prefix`].
//! - [`Key::to_object_name`] / [`Key::from_object_name`]: printable object-store names
//!   `<library>/<type>/<symbol>/<inverted version>_<ts>_<start>_<end>_<hash>` for immutable keys and
//!   `<library>/<type>/<symbol>` for references. Names are percent-encoded outside `[A-Za-z0-9._-]`;
//!   the version is written as `u64::MAX - version`, zero-padded to 20 digits, so a lexical listing of
//!   one symbol's prefix returns the newest version first.

use std::fmt;

use crate::error::{FormatError, Result};
use crate::le::{Reader, WriteLe};
use crate::names::{validate_library, validate_symbol};

/// The version of the binary key layout this build writes and reads.
pub const KEY_FORMAT_VERSION: u8 = 1;

/// Whether a key names an immutable object or a mutable reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyClass {
    /// Written once, never modified; identified by an [`AtomKey`].
    Atom,
    /// The mutable pointers, advanced only by compare-and-swap; identified by a [`RefKey`].
    Ref,
}

macro_rules! key_types {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $class:ident;)*) => {
        /// The kind of object a key names. The numeric codes are persisted and never reused.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum KeyType {
            $($(#[$doc])* $variant = $code,)*
        }

        impl KeyType {
            /// Every key type, in code order.
            pub const ALL: &'static [KeyType] = &[$(KeyType::$variant,)*];

            /// The persisted one-byte code.
            pub fn code(self) -> u8 {
                self as u8
            }

            /// The key type for a persisted code.
            ///
            /// # Errors
            /// [`FormatError::Malformed`] for an unknown code.
            pub fn from_code(code: u8) -> Result<Self> {
                match code {
                    $($code => Ok(KeyType::$variant),)*
                    other => Err(FormatError::malformed("key", format!("unknown key type code {other}"))),
                }
            }

            /// The folder name used in object names (`tdata`, `ver`, ...).
            pub fn name(self) -> &'static str {
                match self { $(KeyType::$variant => $name,)* }
            }

            /// The key type for a folder name.
            ///
            /// # Errors
            /// [`FormatError::Malformed`] for an unknown name.
            pub fn from_name(name: &str) -> Result<Self> {
                match name {
                    $($name => Ok(KeyType::$variant),)*
                    other => Err(FormatError::malformed("object name", format!("unknown key type {other:?}"))),
                }
            }

            /// Whether keys of this type are immutable atoms or mutable references.
            pub fn class(self) -> KeyClass {
                match self { $(KeyType::$variant => KeyClass::$class,)* }
            }
        }
    };
}

key_types! {
    /// A data segment: one row slice by one column slice of a table.
    TableData = 1, "tdata", Atom;
    /// An index segment: one row per data segment of a version (its keys and ranges).
    TableIndex = 2, "tindex", Atom;
    /// A version record: which index a version uses, and the commit history needed to reach any older
    /// version in O(1) requests.
    Version = 3, "ver", Atom;
    /// A snapshot: a named, immutable set of (symbol, version) pairs.
    Snapshot = 4, "snap", Atom;
    /// A staged chunk: an index segment naming data segments written by `stage`, not yet part of any
    /// version; `finalize_staged` commits chunks as one version and then deletes their staged indexes.
    StagedIndex = 5, "sindex", Atom;
    /// The per-symbol head pointer to the latest version record; advanced only by compare-and-swap.
    VersionRef = 16, "vref", Ref;
    /// The per-snapshot-name pointer to the snapshot object.
    SnapshotRef = 17, "sref", Ref;
    /// Per-library configuration (options such as rows per segment).
    LibraryConfig = 18, "cfg", Ref;
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name of an immutable object.
///
/// Invariants (enforced by [`AtomKey::new`] and every decoder): the key type is of class
/// [`KeyClass::Atom`], and the symbol passes [`validate_symbol`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtomKey {
    key_type: KeyType,
    symbol: String,
    version: u64,
    creation_ts: i64,
    content_hash: u64,
    start: i64,
    end: i64,
}

/// The fields of an [`AtomKey`] besides its type and symbol; a parameter struct for [`AtomKey::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtomFields {
    /// Version id of the symbol this object belongs to.
    pub version: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub creation_ts: i64,
    /// xxh3-64 of the object's encoded bytes.
    pub content_hash: u64,
    /// Start of the index range the object covers (timestamp ns or row number), inclusive.
    pub start: i64,
    /// End of the index range the object covers, exclusive by convention of the engine.
    pub end: i64,
}

impl AtomKey {
    /// Builds an immutable key.
    ///
    /// # Errors
    /// [`FormatError::InvalidName`] for a bad symbol; [`FormatError::InvalidInput`] if `key_type` is a
    /// reference type.
    pub fn new(key_type: KeyType, symbol: &str, fields: AtomFields) -> Result<Self> {
        if key_type.class() != KeyClass::Atom {
            return Err(FormatError::InvalidInput(format!("{key_type} is a reference key type, not an atom")));
        }
        validate_symbol(symbol)?;
        let AtomFields { version, creation_ts, content_hash, start, end } = fields;
        Ok(Self { key_type, symbol: symbol.to_owned(), version, creation_ts, content_hash, start, end })
    }

    /// The key type (always of class [`KeyClass::Atom`]).
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    /// The symbol (or snapshot name) the object belongs to.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }
    /// The version id.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Creation time in nanoseconds since the epoch.
    pub fn creation_ts(&self) -> i64 {
        self.creation_ts
    }
    /// xxh3-64 of the object's encoded bytes.
    pub fn content_hash(&self) -> u64 {
        self.content_hash
    }
    /// Start of the covered index range.
    pub fn start(&self) -> i64 {
        self.start
    }
    /// End of the covered index range.
    pub fn end(&self) -> i64 {
        self.end
    }
    /// All numeric fields at once.
    pub fn fields(&self) -> AtomFields {
        AtomFields {
            version: self.version,
            creation_ts: self.creation_ts,
            content_hash: self.content_hash,
            start: self.start,
            end: self.end,
        }
    }
}

impl fmt::Display for AtomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{:?}:v{}:{:#018x}@{}[{},{}]",
            self.key_type, self.symbol, self.version, self.content_hash, self.creation_ts, self.start, self.end
        )
    }
}

/// The name of a mutable reference: a key type of class [`KeyClass::Ref`] and a symbol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefKey {
    key_type: KeyType,
    symbol: String,
}

impl RefKey {
    /// Builds a reference key.
    ///
    /// # Errors
    /// [`FormatError::InvalidName`] for a bad symbol; [`FormatError::InvalidInput`] if `key_type` is an
    /// atom type.
    pub fn new(key_type: KeyType, symbol: &str) -> Result<Self> {
        if key_type.class() != KeyClass::Ref {
            return Err(FormatError::InvalidInput(format!("{key_type} is an atom key type, not a reference")));
        }
        validate_symbol(symbol)?;
        Ok(Self { key_type, symbol: symbol.to_owned() })
    }
    /// The key type (always of class [`KeyClass::Ref`]).
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    /// The symbol the reference belongs to.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }
}

impl fmt::Display for RefKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{:?}", self.key_type, self.symbol)
    }
}

/// Any storage key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// An immutable object.
    Atom(AtomKey),
    /// A mutable reference.
    Ref(RefKey),
}

impl From<AtomKey> for Key {
    fn from(k: AtomKey) -> Self {
        Key::Atom(k)
    }
}

impl From<RefKey> for Key {
    fn from(k: RefKey) -> Self {
        Key::Ref(k)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Atom(k) => k.fmt(f),
            Key::Ref(k) => k.fmt(f),
        }
    }
}

/// The binary prefix shared by every key of `key_type`, optionally narrowed to one symbol.
///
/// # Errors
/// [`FormatError::InvalidName`] for a bad symbol.
pub fn binary_prefix(key_type: KeyType, symbol: Option<&str>) -> Result<Vec<u8>> {
    let mut out = vec![KEY_FORMAT_VERSION, key_type.code()];
    if let Some(symbol) = symbol {
        validate_symbol(symbol)?;
        push_symbol(&mut out, symbol);
    }
    Ok(out)
}

fn push_symbol(out: &mut Vec<u8>, symbol: &str) {
    let len = u8::try_from(symbol.len()).expect("validated symbols are at most 255 bytes");
    out.put_u8(len);
    out.extend_from_slice(symbol.as_bytes());
}

impl Key {
    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match self {
            Key::Atom(k) => k.key_type,
            Key::Ref(k) => k.key_type,
        }
    }

    /// The symbol.
    pub fn symbol(&self) -> &str {
        match self {
            Key::Atom(k) => &k.symbol,
            Key::Ref(k) => &k.symbol,
        }
    }

    /// The compact binary encoding (LMDB keys); layout in `design/format.md`.
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.symbol().len() + 40);
        out.put_u8(KEY_FORMAT_VERSION);
        out.put_u8(self.key_type().code());
        push_symbol(&mut out, self.symbol());
        if let Key::Atom(k) = self {
            out.put_u64(k.version);
            out.put_i64(k.creation_ts);
            out.put_u64(k.content_hash);
            out.put_i64(k.start);
            out.put_i64(k.end);
        }
        out
    }

    /// Decodes [`Key::to_binary`]'s output. Never panics on arbitrary bytes.
    ///
    /// # Errors
    /// [`FormatError::UnsupportedVersion`], [`FormatError::Truncated`], [`FormatError::Malformed`] or
    /// [`FormatError::InvalidName`] describing what is wrong.
    pub fn from_binary(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "key");
        let version = r.u8()?;
        if version != KEY_FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { object: "key", found: u16::from(version), supported: "1" });
        }
        let key_type = KeyType::from_code(r.u8()?)?;
        let len = usize::from(r.u8()?);
        let symbol = std::str::from_utf8(r.take(len)?)
            .map_err(|e| FormatError::malformed("key", format!("symbol is not UTF-8: {e}")))?;
        let key = match key_type.class() {
            KeyClass::Ref => Key::Ref(RefKey::new(key_type, symbol)?),
            KeyClass::Atom => {
                let fields = AtomFields {
                    version: r.u64()?,
                    creation_ts: r.i64()?,
                    content_hash: r.u64()?,
                    start: r.i64()?,
                    end: r.i64()?,
                };
                Key::Atom(AtomKey::new(key_type, symbol, fields)?)
            }
        };
        r.finish()?;
        Ok(key)
    }

    /// The printable object-store name under `library`.
    ///
    /// # Errors
    /// [`FormatError::InvalidName`] for a bad library name.
    pub fn to_object_name(&self, library: &str) -> Result<String> {
        let mut out = object_prefix(library, self.key_type(), Some(self.symbol()))?;
        match self {
            Key::Ref(_) => {
                out.pop(); // references have no trailing separator: `<lib>/<type>/<symbol>`
            }
            Key::Atom(k) => {
                out.push_str(&format!(
                    "{:020}_{:016x}_{:016x}_{:016x}_{:016x}",
                    u64::MAX - k.version,
                    sortable(k.creation_ts),
                    sortable(k.start),
                    sortable(k.end),
                    k.content_hash
                ));
            }
        }
        Ok(out)
    }

    /// Parses an object name made by [`Key::to_object_name`], returning the library and the key.
    /// Only the canonical spelling is accepted, so parse and print are exact inverses.
    ///
    /// # Errors
    /// [`FormatError::Malformed`] or [`FormatError::InvalidName`] describing what is wrong.
    pub fn from_object_name(name: &str) -> Result<(String, Self)> {
        let bad = |reason: String| FormatError::malformed("object name", reason);
        let mut parts = name.split('/');
        let (Some(lib), Some(ty), Some(sym)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad(format!("{name:?} has fewer than three `/`-separated parts")));
        };
        let library = percent_decode(lib)?;
        validate_library(&library)?;
        let key_type = KeyType::from_name(ty)?;
        let symbol = percent_decode(sym)?;
        let key = match (key_type.class(), parts.next()) {
            (KeyClass::Ref, None) => Key::Ref(RefKey::new(key_type, &symbol)?),
            (KeyClass::Atom, Some(tail)) => Key::Atom(AtomKey::new(key_type, &symbol, parse_atom_tail(tail)?)?),
            (KeyClass::Ref, Some(_)) => return Err(bad(format!("reference name {name:?} has a fourth part"))),
            (KeyClass::Atom, None) => return Err(bad(format!("{name:?} lacks the version part"))),
        };
        if parts.next().is_some() {
            return Err(bad(format!("{name:?} has too many `/`-separated parts")));
        }
        Ok((library, key))
    }
}

/// The object-name prefix (ending in `/`) under which all keys of `key_type` (and of `symbol`, if
/// given) list together.
///
/// # Errors
/// [`FormatError::InvalidName`] for a bad library or symbol name.
pub fn object_prefix(library: &str, key_type: KeyType, symbol: Option<&str>) -> Result<String> {
    validate_library(library)?;
    let mut out = String::with_capacity(library.len() + 64);
    percent_encode_into(library, &mut out);
    out.push('/');
    out.push_str(key_type.name());
    out.push('/');
    if let Some(symbol) = symbol {
        validate_symbol(symbol)?;
        percent_encode_into(symbol, &mut out);
        out.push('/');
    }
    Ok(out)
}

/// The object-name prefix of every immutable key of one symbol, type and version: one list call
/// under it finds that version's objects, whatever their other fields.
///
/// # Errors
/// [`FormatError::InvalidName`] for a bad name; [`FormatError::InvalidInput`] for a reference type.
pub fn object_version_prefix(library: &str, key_type: KeyType, symbol: &str, version: u64) -> Result<String> {
    if key_type.class() != KeyClass::Atom {
        return Err(FormatError::InvalidInput(format!("{key_type} keys carry no version")));
    }
    let mut out = object_prefix(library, key_type, Some(symbol))?;
    out.push_str(&format!("{:020}_", u64::MAX - version));
    Ok(out)
}

/// The object-name prefix (ending in `/`) under which every key of `library` lives.
///
/// # Errors
/// [`FormatError::InvalidName`] for a bad library name.
pub fn object_library_prefix(library: &str) -> Result<String> {
    validate_library(library)?;
    let mut out = String::with_capacity(library.len() + 1);
    percent_encode_into(library, &mut out);
    out.push('/');
    Ok(out)
}

/// The object-name prefix shared by every key of `key_type` whose symbol starts with `symbol_prefix`
/// (`<library>/<type>/<encoded prefix>`, no trailing `/`). Encoding is per byte, so a symbol starts
/// with the prefix exactly when its encoding starts with the prefix's encoding. The prefix need not
/// be a valid name (it may be empty).
///
/// # Errors
/// [`FormatError::InvalidName`] for a bad library name.
pub fn object_symbol_prefix(library: &str, key_type: KeyType, symbol_prefix: &str) -> Result<String> {
    let mut out = object_prefix(library, key_type, None)?;
    percent_encode_into(symbol_prefix, &mut out);
    Ok(out)
}

/// Decodes the library part of an object name (the first `/`-separated part, as listed by an object
/// store's delimiter listing) back into the library name.
///
/// # Errors
/// [`FormatError::Malformed`] for a non-canonical encoding; [`FormatError::InvalidName`] if the
/// decoded name is not a valid library name.
pub fn library_from_object_part(part: &str) -> Result<String> {
    let library = percent_decode(part)?;
    validate_library(&library)?;
    Ok(library)
}

/// Maps an `i64` to a `u64` whose unsigned order matches the signed order (flip the sign bit).
fn sortable(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn unsortable(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

fn parse_atom_tail(tail: &str) -> Result<AtomFields> {
    let bad = || FormatError::malformed("object name", format!("bad version part {tail:?}"));
    let fields: Vec<&str> = tail.split('_').collect();
    let [inv_version, ts, start, end, hash] = fields.as_slice() else {
        return Err(bad());
    };
    let decimal = |s: &str| {
        if s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None }
    };
    let hex = |s: &str| {
        if s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            u64::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    Ok(AtomFields {
        version: u64::MAX - decimal(inv_version).ok_or_else(bad)?,
        creation_ts: unsortable(hex(ts).ok_or_else(bad)?),
        start: unsortable(hex(start).ok_or_else(bad)?),
        end: unsortable(hex(end).ok_or_else(bad)?),
        content_hash: hex(hash).ok_or_else(bad)?,
    })
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn percent_encode_into(name: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in name.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Decodes the canonical percent-encoding made by [`percent_encode_into`]; any other spelling (lower
/// case hex, an escaped unreserved byte, a raw reserved byte) is refused so that names stay unique.
fn percent_decode(s: &str) -> Result<String> {
    let bad = |reason: &str| FormatError::malformed("object name", format!("{s:?}: {reason}"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(|| bad("truncated %-escape"))?;
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'A'..=b'F' => Some(c - b'A' + 10),
                _ => None,
            };
            let (Some(hi), Some(lo)) = (digit(hex[0]), digit(hex[1])) else {
                return Err(bad("%-escape is not two upper-case hex digits"));
            };
            let decoded = (hi << 4) | lo;
            if is_unreserved(decoded) {
                return Err(bad("needlessly escaped byte"));
            }
            out.push(decoded);
            i += 3;
        } else if is_unreserved(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(bad("byte that must be %-escaped"));
        }
    }
    String::from_utf8(out).map_err(|_| bad("escapes do not decode to UTF-8"))
}

#[cfg(test)]
mod tests;
