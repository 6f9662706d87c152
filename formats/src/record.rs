//! The small metadata records the engine persists: version records, the per-symbol head, snapshots,
//! library configuration and the table descriptor carried by an index segment.
//!
//! Every record is wrapped in the same envelope (layout in `design/format.md`):
//!
//! ```text
//! magic [4] | format version u16 | payload length u32 | payload | xxh3-64 of everything before u64
//! ```
//!
//! Encoding is deterministic: the same record always gives the same bytes, which the commit protocol
//! relies on (any writer may re-create a version record from the copy in the head, byte for byte).

use crate::error::{FormatError, Result};
use crate::key::{AtomKey, Key};
use crate::le::{Reader, WriteLe, checksum, checksum_matches};

/// The format version of every record kind in this build.
pub const RECORD_FORMAT_VERSION: u16 = 1;

const ENVELOPE_OVERHEAD: usize = 4 + 2 + 4 + 8;

fn seal(magic: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + ENVELOPE_OVERHEAD);
    out.extend_from_slice(&magic);
    out.put_u16(RECORD_FORMAT_VERSION);
    let len = u32::try_from(payload.len()).expect("records are far below 4 GiB");
    out.put_u32(len);
    out.extend_from_slice(payload);
    let sum = checksum(&out);
    out.put_u64(sum);
    out
}

fn open<'a>(bytes: &'a [u8], magic: [u8; 4], object: &'static str) -> Result<Reader<'a>> {
    let mut r = Reader::new(bytes, object);
    let found = r.take(4)?;
    if found != magic {
        return Err(FormatError::BadMagic { object, expected: magic.to_vec(), found: found.to_vec() });
    }
    let version = r.u16()?;
    if version != RECORD_FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion { object, found: version, supported: "1" });
    }
    let len = r.u32()? as usize;
    let payload = r.take(len)?;
    let body_len = bytes.len() - r.remaining();
    let stored = r.u64()?;
    r.finish()?;
    let computed = checksum(&bytes[..body_len]);
    if !checksum_matches(stored, computed) {
        return Err(FormatError::ChecksumMismatch { location: object.to_string(), stored, computed });
    }
    Ok(Reader::new(payload, object))
}

fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    out.put_u32(u32::try_from(blob.len()).expect("record blobs are far below 4 GiB"));
    out.extend_from_slice(blob);
}

fn take_blob<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    let len = r.u32()? as usize;
    r.take(len)
}

fn put_opt_blob(out: &mut Vec<u8>, blob: Option<&[u8]>) {
    match blob {
        None => out.put_u8(0),
        Some(b) => {
            out.put_u8(1);
            put_blob(out, b);
        }
    }
}

fn take_opt_blob(r: &mut Reader<'_>, object: &'static str) -> Result<Option<Vec<u8>>> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(take_blob(r)?.to_vec())),
        t => Err(FormatError::malformed(object, format!("optional-blob tag {t} is neither 0 nor 1"))),
    }
}

fn put_atom(out: &mut Vec<u8>, key: &AtomKey) {
    put_blob(out, &Key::Atom(key.clone()).to_binary());
}

fn take_atom(r: &mut Reader<'_>, object: &'static str) -> Result<AtomKey> {
    match Key::from_binary(take_blob(r)?)? {
        Key::Atom(k) => Ok(k),
        Key::Ref(k) => Err(FormatError::malformed(object, format!("expected an object key, found reference {k}"))),
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_blob(out, s.as_bytes());
}

fn take_string(r: &mut Reader<'_>, object: &'static str) -> Result<String> {
    String::from_utf8(take_blob(r)?.to_vec())
        .map_err(|e| FormatError::malformed(object, format!("string is not UTF-8: {e}")))
}

/// What made a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Operation {
    /// A whole new table.
    Write = 1,
    /// Rows added at the end.
    Append = 2,
    /// Rows in an index range replaced.
    Update = 3,
    /// Rows in an index range removed.
    DeleteRange = 4,
    /// Only the user metadata changed.
    WriteMetadata = 5,
}

impl Operation {
    fn from_code(code: u8) -> Result<Self> {
        Ok(match code {
            1 => Operation::Write,
            2 => Operation::Append,
            3 => Operation::Update,
            4 => Operation::DeleteRange,
            5 => Operation::WriteMetadata,
            _ => return Err(FormatError::malformed("version record", format!("unknown operation {code}"))),
        })
    }

    /// A lower-case name for messages and listings.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::Append => "append",
            Operation::Update => "update",
            Operation::DeleteRange => "delete_data_in_range",
            Operation::WriteMetadata => "write_metadata",
        }
    }
}

/// One committed version of a symbol: which index segment holds its table, and a summary of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The version id (0 for the first version of a symbol).
    pub version: u64,
    /// When it was committed, ns since the Unix epoch (UTC).
    pub timestamp_ns: i64,
    /// What made it.
    pub operation: Operation,
    /// The index segment of the table.
    pub index_key: AtomKey,
    /// Rows in the table.
    pub row_count: u64,
    /// First index value (timestamp or row number); 0 for an empty table.
    pub index_start: i64,
    /// Last index value (inclusive); -1 for an empty table.
    pub index_end: i64,
}

const VERSION_MAGIC: [u8; 4] = *b"FLVR";
const VERSION_OBJ: &str = "version record";

impl VersionRecord {
    /// The record's bytes (deterministic).
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(128);
        p.put_u64(self.version);
        p.put_i64(self.timestamp_ns);
        p.put_u8(self.operation as u8);
        put_atom(&mut p, &self.index_key);
        p.put_u64(self.row_count);
        p.put_i64(self.index_start);
        p.put_i64(self.index_end);
        seal(VERSION_MAGIC, &p)
    }

    /// Decodes [`VersionRecord::encode`]'s output.
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open(bytes, VERSION_MAGIC, VERSION_OBJ)?;
        let out = VersionRecord {
            version: r.u64()?,
            timestamp_ns: r.i64()?,
            operation: Operation::from_code(r.u8()?)?,
            index_key: take_atom(&mut r, VERSION_OBJ)?,
            row_count: r.u64()?,
            index_start: r.i64()?,
            index_end: r.i64()?,
        };
        r.finish()?;
        Ok(out)
    }

    /// The version id and commit time of an encoded record, without decoding the rest: for listings
    /// of many versions, which need only these two. The envelope is checked in full (magic, format
    /// version, length and checksum), so a damaged record fails here as in [`VersionRecord::decode`].
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode_stamp(bytes: &[u8]) -> Result<VersionStamp> {
        let mut r = open(bytes, VERSION_MAGIC, VERSION_OBJ)?;
        Ok(VersionStamp { version: r.u64()?, timestamp_ns: r.i64()? })
    }
}

/// The first two fields of a version record ([`VersionRecord::decode_stamp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionStamp {
    /// The version id.
    pub version: u64,
    /// When it was committed, ns since the Unix epoch (UTC).
    pub timestamp_ns: i64,
}

/// The value of a symbol's head reference: the newest version id ever committed, a copy of its version
/// record, and which versions are deleted.
///
/// Invariants: `latest == record.version`; `tombstones` are sorted, disjoint, non-adjacent inclusive
/// ranges of version ids `<= latest` (see [`Tombstones`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The record of the newest version id (which may itself be deleted).
    pub record: VersionRecord,
    /// Deleted version ids.
    pub tombstones: Tombstones,
}

const HEAD_MAGIC: [u8; 4] = *b"FLHD";
const HEAD_OBJ: &str = "head";

impl Head {
    /// The newest version id ever committed.
    pub fn latest(&self) -> u64 {
        self.record.version
    }

    /// The head's bytes (deterministic).
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(192);
        put_blob(&mut p, &self.record.encode());
        p.put_u32(u32::try_from(self.tombstones.ranges.len()).expect("tombstone ranges fit in u32"));
        for &(a, b) in &self.tombstones.ranges {
            p.put_u64(a);
            p.put_u64(b);
        }
        seal(HEAD_MAGIC, &p)
    }

    /// Decodes [`Head::encode`]'s output, checking the invariants.
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open(bytes, HEAD_MAGIC, HEAD_OBJ)?;
        let record = VersionRecord::decode(take_blob(&mut r)?)?;
        let n = r.u32()? as usize;
        if n > r.remaining() / 16 {
            return Err(FormatError::malformed(HEAD_OBJ, format!("{n} tombstone ranges do not fit")));
        }
        let mut ranges = Vec::with_capacity(n);
        for _ in 0..n {
            ranges.push((r.u64()?, r.u64()?));
        }
        r.finish()?;
        let tombstones = Tombstones::from_ranges(ranges)
            .map_err(|reason| FormatError::malformed(HEAD_OBJ, format!("tombstones: {reason}")))?;
        if tombstones.max().is_some_and(|m| m > record.version) {
            return Err(FormatError::malformed(HEAD_OBJ, "a tombstone is past the latest version"));
        }
        Ok(Head { record, tombstones })
    }
}

/// A set of deleted version ids, kept as sorted, disjoint, non-adjacent inclusive ranges, so that
/// "everything up to v" (a prune) stays one range however many versions it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    ranges: Vec<(u64, u64)>,
}

impl Tombstones {
    /// Builds the set from ranges that must already be canonical.
    ///
    /// # Errors
    /// A reason string when the ranges are unsorted, overlapping, adjacent or reversed.
    pub fn from_ranges(ranges: Vec<(u64, u64)>) -> std::result::Result<Self, String> {
        for (i, &(a, b)) in ranges.iter().enumerate() {
            if a > b {
                return Err(format!("range {a}..={b} is reversed"));
            }
            if i > 0 && ranges[i - 1].1.saturating_add(1) >= a {
                return Err(format!("range {a}..={b} overlaps or touches the previous one"));
            }
        }
        Ok(Tombstones { ranges })
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Whether version `v` is deleted.
    pub fn contains(&self, v: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < v);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= v)
    }

    /// The largest deleted id.
    pub fn max(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, b)| b)
    }

    /// Marks `a..=b` deleted, keeping the ranges canonical.
    pub fn insert(&mut self, a: u64, b: u64) {
        let (a, b) = (a.min(b), a.max(b));
        let mut merged = Vec::with_capacity(self.ranges.len() + 1);
        let (mut lo, mut hi) = (a, b);
        let mut placed = false;
        for &(x, y) in &self.ranges {
            if y.saturating_add(1) < lo {
                merged.push((x, y));
            } else if hi.saturating_add(1) < x {
                if !placed {
                    merged.push((lo, hi));
                    placed = true;
                }
                merged.push((x, y));
            } else {
                lo = lo.min(x);
                hi = hi.max(y);
            }
        }
        if !placed {
            merged.push((lo, hi));
        }
        merged.sort_unstable();
        self.ranges = merged;
    }

    /// The highest id `<= v` that is not deleted.
    pub fn highest_live_at_or_below(&self, v: u64) -> Option<u64> {
        let mut v = v;
        loop {
            let i = self.ranges.partition_point(|&(_, b)| b < v);
            match self.ranges.get(i) {
                Some(&(a, _)) if a <= v => v = a.checked_sub(1)?,
                _ => return Some(v),
            }
        }
    }

    /// Number of deleted ids.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| b - a + 1).sum()
    }
}

/// The library's options, stored once when the library is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibraryConfigRecord {
    /// Rows per data segment.
    pub rows_per_segment: u64,
    /// Columns per data segment (not counting the index column, which every segment repeats).
    pub columns_per_segment: u32,
    /// Whether appends and updates may add columns and widen types.
    pub dynamic_schema: bool,
}

const CONFIG_MAGIC: [u8; 4] = *b"FLCF";
const CONFIG_OBJ: &str = "library config";

impl LibraryConfigRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(16);
        p.put_u64(self.rows_per_segment);
        p.put_u32(self.columns_per_segment);
        p.put_u8(u8::from(self.dynamic_schema));
        seal(CONFIG_MAGIC, &p)
    }

    /// Decodes [`LibraryConfigRecord::encode`]'s output.
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open(bytes, CONFIG_MAGIC, CONFIG_OBJ)?;
        let out = LibraryConfigRecord {
            rows_per_segment: r.u64()?,
            columns_per_segment: r.u32()?,
            dynamic_schema: match r.u8()? {
                0 => false,
                1 => true,
                t => return Err(FormatError::malformed(CONFIG_OBJ, format!("dynamic_schema flag {t}"))),
            },
        };
        r.finish()?;
        if out.rows_per_segment == 0 || out.columns_per_segment == 0 {
            return Err(FormatError::malformed(CONFIG_OBJ, "segment sizes must be positive"));
        }
        Ok(out)
    }
}

/// A named snapshot: a set of (symbol, version record) pairs and optional user metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// When it was taken, ns since the Unix epoch.
    pub timestamp_ns: i64,
    /// User metadata.
    pub metadata: Option<Vec<u8>>,
    /// The versions it keeps, sorted by symbol.
    pub entries: Vec<(String, VersionRecord)>,
}

const SNAPSHOT_MAGIC: [u8; 4] = *b"FLSN";
const SNAPSHOT_OBJ: &str = "snapshot";

impl SnapshotRecord {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + self.entries.len() * 160);
        p.put_i64(self.timestamp_ns);
        put_opt_blob(&mut p, self.metadata.as_deref());
        p.put_u32(u32::try_from(self.entries.len()).expect("snapshot entries fit in u32"));
        for (symbol, record) in &self.entries {
            put_string(&mut p, symbol);
            put_blob(&mut p, &record.encode());
        }
        seal(SNAPSHOT_MAGIC, &p)
    }

    /// Decodes [`SnapshotRecord::encode`]'s output.
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open(bytes, SNAPSHOT_MAGIC, SNAPSHOT_OBJ)?;
        let timestamp_ns = r.i64()?;
        let metadata = take_opt_blob(&mut r, SNAPSHOT_OBJ)?;
        let n = r.u32()? as usize;
        if n > r.remaining() / 8 {
            return Err(FormatError::malformed(SNAPSHOT_OBJ, format!("{n} entries do not fit")));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let symbol = take_string(&mut r, SNAPSHOT_OBJ)?;
            entries.push((symbol, VersionRecord::decode(take_blob(&mut r)?)?));
        }
        r.finish()?;
        Ok(SnapshotRecord { timestamp_ns, metadata, entries })
    }
}

/// How a table is indexed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Rows are numbered 0..n; there is no index column.
    RowCount,
    /// The named column, of type `timestamp[ns]`, is sorted ascending and has no nulls.
    Timestamp(String),
}

/// What an index segment's metadata blob holds besides the per-segment rows: the table's schema, its
/// index, its row count and the user metadata of the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDescriptor {
    /// The index.
    pub index: IndexKind,
    /// Rows in the table.
    pub total_rows: u64,
    /// The schema, as the bytes of an empty segment with that schema (the segment codec is the one
    /// schema serialization Floe has).
    pub schema_segment: Vec<u8>,
    /// The version's user metadata.
    pub user_metadata: Option<Vec<u8>>,
}

const DESCRIPTOR_MAGIC: [u8; 4] = *b"FLTD";
const DESCRIPTOR_OBJ: &str = "table descriptor";

impl TableDescriptor {
    /// The descriptor's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(64 + self.schema_segment.len());
        match &self.index {
            IndexKind::RowCount => p.put_u8(0),
            IndexKind::Timestamp(name) => {
                p.put_u8(1);
                put_string(&mut p, name);
            }
        }
        p.put_u64(self.total_rows);
        put_blob(&mut p, &self.schema_segment);
        put_opt_blob(&mut p, self.user_metadata.as_deref());
        seal(DESCRIPTOR_MAGIC, &p)
    }

    /// Decodes [`TableDescriptor::encode`]'s output.
    ///
    /// # Errors
    /// A [`FormatError`] describing the first problem found; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = open(bytes, DESCRIPTOR_MAGIC, DESCRIPTOR_OBJ)?;
        let index = match r.u8()? {
            0 => IndexKind::RowCount,
            1 => IndexKind::Timestamp(take_string(&mut r, DESCRIPTOR_OBJ)?),
            t => return Err(FormatError::malformed(DESCRIPTOR_OBJ, format!("unknown index kind {t}"))),
        };
        let total_rows = r.u64()?;
        let schema_segment = take_blob(&mut r)?.to_vec();
        let user_metadata = take_opt_blob(&mut r, DESCRIPTOR_OBJ)?;
        r.finish()?;
        Ok(TableDescriptor { index, total_rows, schema_segment, user_metadata })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{AtomFields, KeyType};
    use proptest::prelude::*;

    fn record(v: u64) -> VersionRecord {
        let fields = AtomFields { version: v, creation_ts: 7, content_hash: 9, start: -1, end: 100 };
        VersionRecord {
            version: v,
            timestamp_ns: 1_700_000_000_000_000_000,
            operation: Operation::Append,
            index_key: AtomKey::new(KeyType::TableIndex, "sym/é", fields).expect("valid key"),
            row_count: 10,
            index_start: 0,
            index_end: 9,
        }
    }

    #[test]
    fn records_round_trip_and_reject_every_flip() {
        let mut tomb = Tombstones::default();
        tomb.insert(0, 3);
        let head = Head { record: record(5), tombstones: tomb };
        let snap = SnapshotRecord {
            timestamp_ns: 1,
            metadata: Some(b"meta".to_vec()),
            entries: vec![("a".into(), record(1)), ("b".into(), record(2))],
        };
        let cfg = LibraryConfigRecord { rows_per_segment: 100_000, columns_per_segment: 127, dynamic_schema: true };
        let desc = TableDescriptor {
            index: IndexKind::Timestamp("ts".into()),
            total_rows: 3,
            schema_segment: vec![1, 2, 3],
            user_metadata: None,
        };
        type Check = Box<dyn Fn(&[u8]) -> bool>;
        let all: Vec<(Vec<u8>, Check)> = vec![
            (record(5).encode(), Box::new(|b| VersionRecord::decode(b).is_ok())),
            (record(5).encode(), Box::new(|b| VersionRecord::decode_stamp(b).is_ok())),
            (head.encode(), Box::new(|b| Head::decode(b).is_ok())),
            (snap.encode(), Box::new(|b| SnapshotRecord::decode(b).is_ok())),
            (cfg.encode(), Box::new(|b| LibraryConfigRecord::decode(b).is_ok())),
            (desc.encode(), Box::new(|b| TableDescriptor::decode(b).is_ok())),
        ];
        assert_eq!(VersionRecord::decode(&record(5).encode()).expect("decodes"), record(5));
        assert_eq!(
            VersionRecord::decode_stamp(&record(5).encode()).expect("decodes"),
            VersionStamp { version: 5, timestamp_ns: 1_700_000_000_000_000_000 }
        );
        assert!(VersionRecord::decode_stamp(&head.encode()).is_err(), "another record's magic");
        assert_eq!(Head::decode(&head.encode()).expect("decodes"), head);
        assert_eq!(SnapshotRecord::decode(&snap.encode()).expect("decodes"), snap);
        assert_eq!(LibraryConfigRecord::decode(&cfg.encode()).expect("decodes"), cfg);
        assert_eq!(TableDescriptor::decode(&desc.encode()).expect("decodes"), desc);
        for (bytes, ok) in &all {
            assert!(ok(bytes));
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x01;
                assert!(!ok(&b), "flip at byte {i} accepted");
            }
            for n in 0..bytes.len() {
                assert!(!ok(&bytes[..n]), "truncation to {n} accepted");
            }
        }
    }

    #[test]
    fn highest_live() {
        let mut t = Tombstones::default();
        t.insert(3, 5);
        t.insert(0, 0);
        assert_eq!(t.highest_live_at_or_below(5), Some(2));
        assert_eq!(t.highest_live_at_or_below(6), Some(6));
        assert_eq!(t.highest_live_at_or_below(1), Some(1));
        t.insert(1, 2);
        assert_eq!(t.ranges(), &[(0, 5)]);
        assert_eq!(t.highest_live_at_or_below(5), None);
    }

    proptest! {
        #[test]
        fn tombstones_match_a_set(ops in proptest::collection::vec((0u64..64, 0u64..8), 0..20)) {
            let mut t = Tombstones::default();
            let mut model = std::collections::BTreeSet::new();
            for (a, len) in ops {
                t.insert(a, a + len);
                model.extend(a..=a + len);
                prop_assert!(Tombstones::from_ranges(t.ranges().to_vec()).is_ok());
            }
            for v in 0..80 {
                prop_assert_eq!(t.contains(v), model.contains(&v));
                let expect = (0..=v).rev().find(|x| !model.contains(x));
                prop_assert_eq!(t.highest_live_at_or_below(v), expect);
            }
            prop_assert_eq!(t.count(), model.len() as u64);
        }

        #[test]
        fn the_stamp_is_the_records_own(version in any::<u64>(), timestamp_ns in any::<i64>(), rows in any::<u64>()) {
            let rec = VersionRecord { version, timestamp_ns, row_count: rows, ..record(0) };
            let stamp = VersionRecord::decode_stamp(&rec.encode()).expect("decodes");
            prop_assert_eq!(stamp, VersionStamp { version, timestamp_ns });
        }

        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Head::decode(&bytes);
            let _ = VersionRecord::decode(&bytes);
            let _ = VersionRecord::decode_stamp(&bytes);
            let _ = SnapshotRecord::decode(&bytes);
            let _ = TableDescriptor::decode(&bytes);
            let _ = LibraryConfigRecord::decode(&bytes);
        }
    }
}
