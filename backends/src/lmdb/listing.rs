//! Paged listings over binary keys.
//!
//! A binary key is `[format version][type code][symbol length][symbol][fields...]`
//! (`floe_formats::key`), and LMDB orders keys bytewise. So the keys of one type, or of one exact
//! symbol, are one contiguous range found by a cursor seek. Symbols *starting with* `p` are not one
//! range, because the length byte comes before the symbol: they form one range per possible length
//! `len(p)..=255`, each with prefix `[version][type][len][p]`. A prefix listing seeks each of those
//! (at most 255 seeks of O(log n), never a scan of the whole type). Ranges are visited in key
//! order, so the listing order is plain binary-key order and resuming after any returned key works.

use floe_formats::key::binary_prefix;
use floe_formats::names::MAX_NAME_BYTES;
use floe_formats::{Key, KeyType};
use lmdb::{Cursor, Database, Transaction};

use super::env::TxnError;
use crate::storage::{ListPage, ListScope};

/// The ascending, disjoint key prefixes whose union is exactly `scope` within `key_type`.
pub(crate) fn ranges(key_type: KeyType, scope: ListScope<'_>) -> Vec<Vec<u8>> {
    let type_prefix = || binary_prefix(key_type, None).expect("no symbol to validate");
    match scope {
        ListScope::All => vec![type_prefix()],
        // A symbol that is not a valid name cannot have keys: an empty listing, as for the memory
        // backend.
        ListScope::Symbol(symbol) => binary_prefix(key_type, Some(symbol)).into_iter().collect(),
        ListScope::SymbolPrefix("") => vec![type_prefix()],
        ListScope::SymbolPrefix(prefix) => (prefix.len()..=MAX_NAME_BYTES)
            .map(|len| {
                let mut range = type_prefix();
                range.push(u8::try_from(len).expect("at most MAX_NAME_BYTES = 255"));
                range.extend_from_slice(prefix.as_bytes());
                range
            })
            .collect(),
    }
}

/// Up to `limit` keys of `db` under `ranges`, strictly after the binary key `after`.
pub(crate) fn scan(
    txn: &impl Transaction,
    db: Database,
    ranges: &[Vec<u8>],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<ListPage, TxnError> {
    // The cursor must outlive the iterators it hands out (they hold its raw pointer).
    let mut cursor = txn.open_ro_cursor(db)?;
    let mut keys = Vec::with_capacity(limit.min(1024));
    for range in ranges {
        let start = match after {
            Some(a) if a > range.as_slice() => a,
            _ => range.as_slice(),
        };
        for item in cursor.iter_from(start) {
            let (k, _) = item?;
            if !k.starts_with(range) {
                break;
            }
            if after == Some(k) {
                continue;
            }
            if keys.len() == limit {
                return Ok(ListPage { keys, more: true });
            }
            keys.push(Key::from_binary(k)?);
        }
    }
    Ok(ListPage { keys, more: false })
}

/// Hands every key of `db` under `ranges` to `visit` with its stored value borrowed from the map, in
/// key order; stops at the first error.
pub(crate) fn visit(
    txn: &impl Transaction,
    db: Database,
    ranges: &[Vec<u8>],
    visit: &mut dyn FnMut(&Key, &[u8]) -> crate::error::Result<()>,
) -> Result<(), TxnError> {
    let mut cursor = txn.open_ro_cursor(db)?;
    for range in ranges {
        for item in cursor.iter_from(range.as_slice()) {
            let (k, v) = item?;
            if !k.starts_with(range) {
                break;
            }
            visit(&Key::from_binary(k)?, v).map_err(TxnError::Storage)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_cover_every_length_in_order() {
        let r = ranges(KeyType::TableData, ListScope::SymbolPrefix("ab"));
        assert_eq!(r.len(), MAX_NAME_BYTES - 1);
        assert_eq!(r[0][2..], [2, b'a', b'b']);
        assert!(r.windows(2).all(|w| w[0] < w[1]));
        assert!(ranges(KeyType::TableData, ListScope::SymbolPrefix(&"x".repeat(256))).is_empty());
        assert!(ranges(KeyType::TableData, ListScope::Symbol("")).is_empty());
        assert_eq!(
            ranges(KeyType::VersionRef, ListScope::All),
            vec![binary_prefix(KeyType::VersionRef, None).expect("ok")]
        );
    }
}
