//! Checks of immutable objects: round trips, ranges, create-only puts, missing keys, deletes, batches.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use floe_formats::{AtomKey, KeyType};

use super::ConformanceConfig;
use super::support::{
    During, Outcome, atom, data, ensure, expect_error, is_already_exists, is_not_found, pattern, put_all, same_bytes,
};
use crate::error::StorageError;
use crate::storage::Storage;

const ATOM_TYPES: [KeyType; 4] = [KeyType::TableData, KeyType::TableIndex, KeyType::Version, KeyType::Snapshot];

fn get_same(storage: &dyn Storage, key: &AtomKey, expected: &[u8]) -> Outcome {
    let got = storage.get(key).during(|| format!("get {key}"))?;
    same_bytes(expected, &got, || format!("get {key}"))
}

/// Small objects of every atom type, with sizes around common buffer boundaries, read back exactly.
///
/// # Errors
/// A [`super::CheckError`] naming the key and the first differing byte.
pub fn round_trip_small(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let sizes = [1usize, 7, 8, 100, 4095, 4096, 4097, 65_536 + 3];
    let mut written = Vec::new();
    for (t, &key_type) in ATOM_TYPES.iter().enumerate() {
        for (i, &len) in sizes.iter().enumerate() {
            let key = atom(key_type, "round trip", i as u64, t as u64);
            let value = pattern(config.seed ^ (t * 100 + i) as u64, len);
            storage.put(&key, value.clone()).during(|| format!("put {key} ({len} bytes)"))?;
            written.push((key, value));
        }
    }
    // Read after all writes, so a backend that returns "the last value written" is caught.
    for (key, value) in &written {
        get_same(storage, key, value)?;
        ensure!(storage.exists(key).during(|| format!("exists {key}"))?, "exists {key} is false after put");
    }
    Ok(())
}

/// An empty object is a real object: it exists, reads as empty, and range-reads as empty.
///
/// # Errors
/// A [`super::CheckError`] saying which read misbehaved.
pub fn round_trip_empty(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = data("empty", 1);
    storage.put(&key, Bytes::new()).during(|| format!("put {key} (empty)"))?;
    ensure!(storage.exists(&key).during(|| format!("exists {key}"))?, "exists {key} is false after an empty put");
    get_same(storage, &key, b"")?;
    for range in [0..0, 0..10, 5..10] {
        let got = storage
            .get_range(&key, range.clone())
            .during(|| format!("get_range {key} {range:?} of an empty object"))?;
        ensure!(got.is_empty(), "get_range {key} {range:?} of an empty object returned {} bytes", got.len());
    }
    storage.put(&key, Bytes::new()).during(|| format!("re-put {key} (empty, same bytes)"))?;
    expect_error(storage.put(&key, Bytes::from_static(b"x")), "AlreadyExists", is_already_exists, || {
        format!("put {key} of 1 byte over the empty object")
    })?;
    get_same(storage, &key, b"")
}

/// A large object (default 64 MiB) reads back whole and by ranges in its middle and at its end.
///
/// # Errors
/// A [`super::CheckError`] with the first differing byte.
pub fn round_trip_large(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let len = config.large_object_bytes;
    let value = pattern(config.seed ^ 0x1A26E, len);
    let key = data("large", 1);
    storage.put(&key, value.clone()).during(|| format!("put {key} ({len} bytes)"))?;
    let got = storage.get(&key).during(|| format!("get {key} ({len} bytes)"))?;
    same_bytes(&value, &got, || format!("get {key} ({len} bytes)"))?;
    drop(got);
    let len64 = len as u64;
    let mid = len64 / 2;
    let ranges = [mid.saturating_sub(1 << 20)..(mid + (1 << 20)).min(len64), len64.saturating_sub(100)..len64 + 100];
    for range in ranges {
        let got = storage.get_range(&key, range.clone()).during(|| format!("get_range {key} {range:?}"))?;
        let start = usize::try_from(range.start).expect("inside the object");
        let end = usize::try_from(range.end.min(len64)).expect("inside the object");
        same_bytes(&value[start..end], &got, || format!("get_range {key} {range:?} of a {len}-byte object"))?;
    }
    Ok(())
}

/// Ranges inside, at the end, clamped past the end, entirely past the end and empty.
///
/// # Errors
/// A [`super::CheckError`] naming the range.
pub fn get_range_bounds(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let value = pattern(config.seed ^ 0x4A45, 10_000);
    let key = data("ranges", 1);
    storage.put(&key, value.clone()).during(|| format!("put {key}"))?;
    let cases: [(std::ops::Range<u64>, std::ops::Range<usize>); 9] = [
        (0..10, 0..10),
        (100..200, 100..200),
        (9_990..10_000, 9_990..10_000),
        (0..10_000, 0..10_000),
        (9_990..20_000, 9_990..10_000),
        (0..u64::MAX, 0..10_000),
        (10_000..10_010, 0..0),
        (20_000..30_000, 0..0),
        (5..5, 0..0),
    ];
    for (range, expected) in cases {
        let got = storage.get_range(&key, range.clone()).during(|| format!("get_range {key} {range:?}"))?;
        same_bytes(&value[expected], &got, || format!("get_range {key} {range:?} of a 10,000-byte object"))?;
    }
    Ok(())
}

/// Re-putting the same bytes succeeds; different bytes (same length, other length, empty) give
/// `AlreadyExists` and leave the stored bytes as they were.
///
/// # Errors
/// A [`super::CheckError`] naming the put that misbehaved.
pub fn put_is_create_only(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = data("create only", 3);
    let first = pattern(config.seed ^ 1, 1000);
    storage.put(&key, first.clone()).during(|| format!("put {key}"))?;
    storage.put(&key, first.clone()).during(|| format!("re-put {key} with the same bytes"))?;
    storage.put(&key, Bytes::copy_from_slice(&first)).during(|| format!("re-put {key} with an equal copy"))?;
    let mut flipped = first.to_vec();
    flipped[999] ^= 1;
    let others = [
        ("the same length, last byte changed", Bytes::from(flipped)),
        ("a different length", pattern(config.seed ^ 1, 1001)),
        ("no bytes", Bytes::new()),
    ];
    for (what, other) in others {
        expect_error(storage.put(&key, other), "AlreadyExists", is_already_exists, || {
            format!("put {key} with {what} over existing bytes")
        })?;
        get_same(storage, &key, &first)
            .map_err(|e| super::CheckError::new(format!("after a refused put with {what}: {e}")))?;
    }
    Ok(())
}

/// `get`, `get_range`, `get_batch`, `visit_batch` and `visit_batch_here` of absent keys (including keys that differ from a
/// present one in one field only) give `NotFound`; `exists` gives false.
///
/// # Errors
/// A [`super::CheckError`] naming the key and call.
pub fn missing_keys_are_not_found(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let present = atom(KeyType::TableData, "sym", 5, 0xABCD);
    let value = pattern(config.seed ^ 2, 64);
    storage.put(&present, value.clone()).during(|| format!("put {present}"))?;
    let fields = present.fields();
    let near = |f: floe_formats::AtomFields| AtomKey::new(KeyType::TableData, "sym", f).expect("valid key");
    let absent = [
        atom(KeyType::TableData, "never written", 1, 1),
        atom(KeyType::TableData, "sym", 6, 0xABCD),
        near(floe_formats::AtomFields { content_hash: 0xABCE, ..fields }),
        near(floe_formats::AtomFields { creation_ts: fields.creation_ts + 1, ..fields }),
        near(floe_formats::AtomFields { start: fields.start + 1, ..fields }),
        near(floe_formats::AtomFields { end: fields.end + 1, ..fields }),
        AtomKey::new(KeyType::TableIndex, "sym", fields).expect("valid key"),
        AtomKey::new(KeyType::TableData, "sy", fields).expect("valid key"),
        AtomKey::new(KeyType::TableData, "sym2", fields).expect("valid key"),
    ];
    for key in &absent {
        expect_error(storage.get(key), "NotFound", is_not_found, || format!("get of absent {key}"))?;
        expect_error(storage.get_range(key, 0..10), "NotFound", is_not_found, || format!("get_range of absent {key}"))?;
        ensure!(!storage.exists(key).during(|| format!("exists {key}"))?, "exists of absent {key} is true");
        expect_error(storage.visit_batch(std::slice::from_ref(key), &|_, _| Ok(())), "NotFound", is_not_found, || {
            format!("visit_batch of absent {key}")
        })?;
        expect_error(
            storage.visit_batch_here(std::slice::from_ref(key), &mut |_, _| Ok(())),
            "NotFound",
            is_not_found,
            || format!("visit_batch_here of absent {key}"),
        )?;
    }
    let batch = [present.clone(), absent[1].clone()];
    let results = storage.get_batch(&batch);
    ensure!(results.len() == 2, "get_batch of 2 keys returned {} results", results.len());
    let mut results = results.into_iter();
    let first = results.next().expect("two results").during(|| format!("get_batch item 0 ({present})"))?;
    same_bytes(&value, &first, || format!("get_batch item 0 ({present})"))?;
    expect_error(results.next().expect("two results"), "NotFound", is_not_found, || {
        format!("get_batch item 1 (absent {})", batch[1])
    })?;
    expect_error(storage.visit_batch(&batch, &|_, _| Ok(())), "NotFound", is_not_found, || {
        format!("visit_batch of [{present}, absent {}]", batch[1])
    })?;
    expect_error(storage.visit_batch_here(&batch, &mut |_, _| Ok(())), "NotFound", is_not_found, || {
        format!("visit_batch_here of [{present}, absent {}]", batch[1])
    })?;
    get_same(storage, &present, &value)
}

/// `exists` is false before a put, true after it, false after a delete and true after a re-put.
///
/// # Errors
/// A [`super::CheckError`] naming the step.
pub fn exists_tracks_puts_and_deletes(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = data("exists", 1);
    let exists = |step: &str| storage.exists(&key).during(|| format!("exists {key} {step}"));
    ensure!(!exists("before any put")?, "exists {key} is true before any put");
    storage.put(&key, Bytes::from_static(b"one")).during(|| format!("put {key}"))?;
    ensure!(exists("after put")?, "exists {key} is false after put");
    storage.delete_batch(std::slice::from_ref(&key)).during(|| format!("delete {key}"))?;
    ensure!(!exists("after delete")?, "exists {key} is true after delete");
    storage.put(&key, Bytes::from_static(b"two")).during(|| format!("re-put {key} after its delete"))?;
    ensure!(exists("after re-put")?, "exists {key} is false after re-put");
    get_same(storage, &key, b"two")
}

/// `delete_batch` removes exactly the listed keys; missing keys, repeated keys and an empty batch are
/// fine; a deleted key can be written again with other bytes; references are untouched.
///
/// # Errors
/// A [`super::CheckError`] naming the key in the wrong state.
pub fn delete_batch_semantics(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let keys: Vec<AtomKey> = (0..10).map(|v| data("delete", v)).collect();
    put_all(storage, keys.iter().map(|k| (k.clone(), pattern(config.seed ^ k.version(), 32))).collect())?;
    let vref = super::support::reference(KeyType::VersionRef, "delete");
    storage
        .write_ref(&vref, Bytes::from_static(b"head"), crate::storage::RefExpectation::Absent)
        .during(|| format!("write_ref {vref}"))?;
    let doomed = [keys[0].clone(), keys[2].clone(), data("delete", 99), keys[4].clone(), keys[2].clone()];
    storage.delete_batch(&doomed).during(|| "delete_batch with a missing and a repeated key".to_owned())?;
    for (v, key) in keys.iter().enumerate() {
        let gone = matches!(v, 0 | 2 | 4);
        let exists = storage.exists(key).during(|| format!("exists {key}"))?;
        ensure!(exists != gone, "after delete_batch, {key} {}", if gone { "still exists" } else { "is gone too" });
        if gone {
            expect_error(storage.get(key), "NotFound", is_not_found, || format!("get of deleted {key}"))?;
        }
    }
    storage.delete_batch(&doomed).during(|| "repeating the same delete_batch".to_owned())?;
    storage.delete_batch(&[]).during(|| "delete_batch of no keys".to_owned())?;
    let other = Bytes::from_static(b"new bytes after delete");
    storage.put(&keys[0], other.clone()).during(|| format!("put {} with new bytes after its delete", keys[0]))?;
    get_same(storage, &keys[0], &other)?;
    let head = storage.read_ref(&vref).during(|| format!("read_ref {vref}"))?;
    ensure!(
        head.is_some_and(|h| h.bytes == "head"),
        "deleting atoms of symbol \"delete\" changed or removed the reference {vref}"
    );
    Ok(())
}

/// `put_batch` returns one result per item in item order: new keys succeed, an identical re-put
/// succeeds, a conflicting put gives `AlreadyExists` without stopping the others, and the same new key
/// twice in one batch with the same bytes succeeds twice.
///
/// # Errors
/// A [`super::CheckError`] naming the item.
pub fn put_batch_results_in_order(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let taken = data("batch", 1_000);
    let same = data("batch", 1_001);
    storage.put(&taken, Bytes::from_static(b"original")).during(|| format!("put {taken}"))?;
    storage.put(&same, Bytes::from_static(b"same")).during(|| format!("put {same}"))?;
    let twice = data("batch", 2_000);
    let mut items: Vec<(AtomKey, Bytes)> =
        (0..40).map(|v| (data("batch", v), pattern(config.seed ^ v, 100 + v as usize))).collect();
    items[17] = (taken.clone(), Bytes::from_static(b"different"));
    items[23] = (same.clone(), Bytes::from_static(b"same"));
    items[30] = (twice.clone(), Bytes::from_static(b"twice"));
    items[31] = (twice.clone(), Bytes::from_static(b"twice"));
    let results = storage.put_batch(items.clone());
    ensure!(results.len() == items.len(), "put_batch of {} items returned {} results", items.len(), results.len());
    for (i, (result, (key, _))) in results.into_iter().zip(&items).enumerate() {
        if i == 17 {
            expect_error(result, "AlreadyExists", is_already_exists, || {
                format!("put_batch item 17 ({key}, conflicting bytes)")
            })?;
        } else {
            result.during(|| format!("put_batch item {i} ({key})"))?;
        }
    }
    for (i, (key, value)) in items.iter().enumerate() {
        let expected: &[u8] = if i == 17 { b"original" } else { value };
        get_same(storage, key, expected)?;
    }
    ensure!(storage.put_batch(Vec::new()).is_empty(), "put_batch of no items returned results");
    Ok(())
}

/// `put_batch_parts` stores each object as its parts joined, with `put`'s create-only semantics: parts
/// of every size (none, empty ones, one, many, one large), a re-put of the same bytes cut differently
/// succeeds, other bytes under a taken key give `AlreadyExists` and change nothing.
///
/// # Errors
/// A [`super::CheckError`] naming the item.
pub fn put_batch_parts_stores_the_joined_bytes(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    parts_stored_joined(config, storage, "put_batch_parts", "parts", &|s, items| s.put_batch_parts(items)).map(drop)
}

/// `put_batch_parts_before_commit` stores exactly what `put_batch_parts` would, readable at once and
/// create-only (also against a plain `put` of the same key), and the objects are still there, whole,
/// after the durable write that would name them (a `write_ref`).
///
/// # Errors
/// A [`super::CheckError`] naming the item.
pub fn put_batch_parts_before_commit_stores_like_put(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let put = |s: &dyn Storage, items| s.put_batch_parts_before_commit(items);
    let items = parts_stored_joined(config, storage, "put_batch_parts_before_commit", "before commit", &put)?;
    let (key, parts) = &items[3];
    storage
        .put(key, Bytes::from(joined(parts)))
        .during(|| format!("put of {key}'s bytes after put_batch_parts_before_commit"))?;
    expect_error(storage.put(key, Bytes::from_static(b"other")), "AlreadyExists", is_already_exists, || {
        format!("put of other bytes under {key}, stored by put_batch_parts_before_commit")
    })?;
    let commit = super::support::reference(KeyType::VersionRef, "before commit");
    storage
        .write_ref(&commit, Bytes::from_static(b"names them"), crate::storage::RefExpectation::Absent)
        .during(|| format!("write_ref {commit} after put_batch_parts_before_commit"))?;
    for (key, parts) in &items {
        get_same(storage, key, &joined(parts))?;
    }
    Ok(())
}

/// `parts` joined: what an object stored as those parts must read back as (made here, not by the
/// backends' own `join_parts`, so the checks do not test an implementation with itself).
fn joined(parts: &[Bytes]) -> Vec<u8> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

/// A way of storing objects given as parts (`put_batch_parts` or `put_batch_parts_before_commit`).
type PutParts = dyn Fn(&dyn Storage, Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<(), StorageError>>;

/// The body of the two parts checks: `put` (named `method`) stores objects of symbol `symbol` given
/// as parts of every size; returns the items stored.
fn parts_stored_joined(
    config: &ConformanceConfig,
    storage: &dyn Storage,
    method: &str,
    symbol: &str,
    put: &PutParts,
) -> Outcome<Vec<(AtomKey, Vec<Bytes>)>> {
    let whole = pattern(config.seed ^ 0x9a27, 300_000);
    let cuts: Vec<Vec<std::ops::Range<usize>>> = vec![
        vec![],
        vec![0..0],
        vec![0..1],
        vec![0..300_000],
        vec![0..7, 7..7, 7..4_096, 4_096..4_097, 4_097..250_000, 250_000..300_000],
        (0..100).map(|i| i * 3..i * 3 + 3).collect(),
    ];
    let items: Vec<(AtomKey, Vec<Bytes>)> = cuts
        .iter()
        .enumerate()
        .map(|(i, cut)| (data(symbol, i as u64), cut.iter().map(|r| whole.slice(r.clone())).collect()))
        .collect();
    let results = put(storage, items.clone());
    ensure!(results.len() == items.len(), "{method} of {} items returned {} results", items.len(), results.len());
    for (result, (key, parts)) in results.into_iter().zip(&items) {
        result.during(|| format!("{method} {key} ({} parts)", parts.len()))?;
    }
    for (key, parts) in &items {
        get_same(storage, key, &joined(parts))?;
    }
    // The last object again, cut at other places: the same bytes, so a success; then other bytes.
    let (key, parts) = &items[5];
    let recut = vec![whole.slice(0..150), whole.slice(150..300)];
    let again = put(storage, vec![(key.clone(), recut), (key.clone(), vec![Bytes::from_static(b"other")])]);
    ensure!(again.len() == 2, "{method} of 2 items returned {} results", again.len());
    let mut again = again.into_iter();
    again.next().expect("two results").during(|| format!("re-put of {key}'s bytes in other parts"))?;
    expect_error(again.next().expect("two results"), "AlreadyExists", is_already_exists, || {
        format!("{method} of other bytes under {key}")
    })?;
    get_same(storage, key, &joined(parts))?;
    ensure!(put(storage, Vec::new()).is_empty(), "{method} of no items returned results");
    Ok(items)
}

/// `get_batch` returns one result per key in key order, for present, absent and repeated keys.
///
/// # Errors
/// A [`super::CheckError`] naming the position.
pub fn get_batch_results_in_order(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let present: Vec<(AtomKey, Bytes)> =
        (0..30).map(|v| (data("get batch", v), pattern(config.seed ^ (v + 77), 50 + 13 * v as usize))).collect();
    put_all(storage, present.clone())?;
    let mut keys: Vec<(AtomKey, Option<Bytes>)> = Vec::new();
    for (i, (key, value)) in present.iter().enumerate() {
        keys.push((key.clone(), Some(value.clone())));
        if i % 4 == 0 {
            keys.push((data("get batch", 1_000 + i as u64), None));
        }
        if i % 7 == 0 {
            keys.push((present[0].0.clone(), Some(present[0].1.clone())));
        }
    }
    let batch: Vec<AtomKey> = keys.iter().map(|(k, _)| k.clone()).collect();
    let results = storage.get_batch(&batch);
    ensure!(results.len() == batch.len(), "get_batch of {} keys returned {} results", batch.len(), results.len());
    for (i, (result, (key, expected))) in results.into_iter().zip(&keys).enumerate() {
        match expected {
            Some(value) => {
                let got = result.during(|| format!("get_batch item {i} ({key})"))?;
                same_bytes(value, &got, || format!("get_batch item {i} ({key})"))?;
            }
            None => expect_error(result, "NotFound", is_not_found, || format!("get_batch item {i} (absent {key})"))?,
        }
    }
    ensure!(storage.get_batch(&[]).is_empty(), "get_batch of no keys returned results");
    Ok(())
}

/// `visit_batch` visits every index exactly once with that key's bytes (a key listed twice is visited
/// twice), visits nothing for no keys, and returns the error a visit returned; `visit_batch_here` the
/// same, in key order, stopping at the first error.
///
/// # Errors
/// A [`super::CheckError`] naming the index.
pub fn visit_batch_visits_each_key(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let items: Vec<(AtomKey, Bytes)> =
        (0..50).map(|v| (data("visit", v), pattern(config.seed ^ (v + 500), 10 + 97 * v as usize))).collect();
    put_all(storage, items.clone())?;
    let mut keys: Vec<AtomKey> = items.iter().map(|(k, _)| k.clone()).collect();
    keys.push(items[3].0.clone());
    let expected: Vec<Bytes> =
        keys.iter().map(|k| items[usize::try_from(k.version()).expect("small")].1.clone()).collect();

    let visited: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());
    let wrong: Mutex<Vec<String>> = Mutex::new(Vec::new());
    storage
        .visit_batch(&keys, &|i, bytes| {
            *visited.lock().unwrap_or_else(|p| p.into_inner()).entry(i).or_default() += 1;
            match expected.get(i).map(|e| super::support::byte_diff(e, bytes)) {
                Some(None) => {}
                Some(Some(diff)) => wrong.lock().unwrap_or_else(|p| p.into_inner()).push(format!("index {i}: {diff}")),
                None => wrong.lock().unwrap_or_else(|p| p.into_inner()).push(format!("index {i} is out of range")),
            }
            Ok(())
        })
        .during(|| format!("visit_batch of {} keys", keys.len()))?;
    let wrong = wrong.into_inner().unwrap_or_else(|p| p.into_inner());
    ensure!(wrong.is_empty(), "visit_batch handed wrong bytes: {wrong:?}");
    let visited = visited.into_inner().unwrap_or_else(|p| p.into_inner());
    let bad: Vec<(usize, usize)> =
        (0..keys.len()).map(|i| (i, visited.get(&i).copied().unwrap_or(0))).filter(|&(_, n)| n != 1).collect();
    ensure!(
        bad.is_empty() && visited.len() == keys.len(),
        "visit_batch visited (index, times) {bad:?} not exactly once"
    );

    let calls = Mutex::new(0usize);
    storage
        .visit_batch(&[], &|_, _| {
            *calls.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            Ok(())
        })
        .during(|| "visit_batch of no keys".to_owned())?;
    ensure!(*calls.lock().unwrap_or_else(|p| p.into_inner()) == 0, "visit_batch of no keys called visit");

    let marker = "conformance: visit refuses index 7";
    let result = storage.visit_batch(&keys, &|i, _| {
        if i == 7 { Err(StorageError::other("conformance", marker)) } else { Ok(()) }
    });
    expect_error(
        result,
        "the visit's own error",
        |e| e.to_string().contains(marker),
        || "visit_batch whose visit fails at index 7".to_owned(),
    )?;

    // The same on the calling thread: every index once, in order, and the visit's error stops it.
    let mut order = Vec::new();
    let mut wrong = Vec::new();
    storage
        .visit_batch_here(&keys, &mut |i, bytes| {
            order.push(i);
            if let Some(diff) = expected.get(i).and_then(|e| super::support::byte_diff(e, bytes)) {
                wrong.push(format!("index {i}: {diff}"));
            }
            Ok(())
        })
        .during(|| format!("visit_batch_here of {} keys", keys.len()))?;
    ensure!(wrong.is_empty(), "visit_batch_here handed wrong bytes: {wrong:?}");
    ensure!(order == (0..keys.len()).collect::<Vec<_>>(), "visit_batch_here visited in the order {order:?}");
    let mut visited_after_error = Vec::new();
    let result = storage.visit_batch_here(&keys, &mut |i, _| {
        if i == 7 {
            return Err(StorageError::other("conformance", marker));
        }
        if i > 7 {
            visited_after_error.push(i);
        }
        Ok(())
    });
    expect_error(
        result,
        "the visit's own error",
        |e| e.to_string().contains(marker),
        || "visit_batch_here whose visit fails at index 7".to_owned(),
    )?;
    ensure!(visited_after_error.is_empty(), "visit_batch_here went on after an error, to {visited_after_error:?}");
    let mut calls = 0;
    storage
        .visit_batch_here(&[], &mut |_, _| {
            calls += 1;
            Ok(())
        })
        .during(|| "visit_batch_here of no keys".to_owned())?;
    ensure!(calls == 0, "visit_batch_here of no keys called visit");
    Ok(())
}

/// `size_batch` gives each present object's length in bytes (the empty one 0) and `NotFound` for an
/// absent one, one result per key in order, duplicates included.
///
/// # Errors
/// A [`super::CheckError`] naming the position.
pub fn size_batch_gives_each_objects_length(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let items: Vec<(AtomKey, Bytes)> =
        (0..20).map(|v| (data("sizes", v), pattern(config.seed ^ (v + 900), 61 * v as usize))).collect();
    put_all(storage, items.clone())?;
    let mut keys: Vec<(AtomKey, Option<u64>)> = items.iter().map(|(k, b)| (k.clone(), Some(b.len() as u64))).collect();
    keys.insert(5, (data("sizes", 1_000), None));
    keys.push(keys[3].clone());
    let batch: Vec<AtomKey> = keys.iter().map(|(k, _)| k.clone()).collect();
    let results = storage.size_batch(&batch);
    ensure!(results.len() == batch.len(), "size_batch of {} keys returned {} results", batch.len(), results.len());
    for (i, (result, (key, expected))) in results.into_iter().zip(&keys).enumerate() {
        match expected {
            Some(len) => {
                let got = result.during(|| format!("size_batch item {i} ({key})"))?;
                ensure!(got == *len, "size_batch item {i} ({key}) is {got} bytes, not {len}");
            }
            None => expect_error(result, "NotFound", is_not_found, || format!("size_batch item {i} (absent {key})"))?,
        }
    }
    ensure!(storage.size_batch(&[]).is_empty(), "size_batch of no keys returned results");
    Ok(())
}
