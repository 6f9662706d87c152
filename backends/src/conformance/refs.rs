//! Checks of references: absent reads, create-only, compare-and-swap tokens, deletes, independence.

use std::collections::BTreeSet;

use bytes::Bytes;
use floe_formats::{AtomKey, KeyType, RefKey};

use super::ConformanceConfig;
use super::support::{During, Outcome, atom, data, ensure, expect_error, is_conflict, pattern, reference, same_bytes};
use crate::storage::{RefExpectation, RefToken, Storage};

/// Reads `key` and checks it holds `expected` (or is absent for `None`); returns its token.
fn read_is(storage: &dyn Storage, key: &RefKey, expected: Option<&[u8]>, step: &str) -> Outcome<Option<RefToken>> {
    let got = storage.read_ref(key).during(|| format!("read_ref {key} {step}"))?;
    match (expected, got) {
        (None, None) => Ok(None),
        (None, Some(v)) => Err(super::CheckError::new(format!(
            "read_ref {key} {step}: expected no reference, found {} bytes with {:?}",
            v.bytes.len(),
            v.token
        ))),
        (Some(_), None) => Err(super::CheckError::new(format!("read_ref {key} {step}: expected a value, found none"))),
        (Some(e), Some(v)) => {
            same_bytes(e, &v.bytes, || format!("read_ref {key} {step}"))?;
            Ok(Some(v.token))
        }
    }
}

fn conflict(
    storage: &dyn Storage,
    key: &RefKey,
    value: &'static [u8],
    expected: RefExpectation<'_>,
    step: &str,
) -> Outcome {
    expect_error(storage.write_ref(key, Bytes::from_static(value), expected), "Conflict", is_conflict, || {
        format!("write_ref {key} expecting {expected:?} {step}")
    })
}

/// An absent reference reads as `None`, also when references of the same symbol under another type,
/// or of a longer symbol, exist.
///
/// # Errors
/// A [`super::CheckError`] naming the reference.
pub fn ref_absent_reads_none(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let absent = reference(KeyType::VersionRef, "nothing");
    read_is(storage, &absent, None, "before anything was written")?;
    for other in [reference(KeyType::SnapshotRef, "nothing"), reference(KeyType::VersionRef, "nothing2")] {
        storage
            .write_ref(&other, Bytes::from_static(b"x"), RefExpectation::Absent)
            .during(|| format!("write_ref {other}"))?;
    }
    read_is(storage, &absent, None, "after writing neighbouring references")?;
    Ok(())
}

/// Creating a reference (`Absent`) works once; creating it again is a `Conflict` whatever the bytes,
/// and leaves the first value. Empty values round-trip.
///
/// # Errors
/// A [`super::CheckError`] naming the step.
pub fn ref_create_only_once(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "create");
    let token = storage
        .write_ref(&key, Bytes::from_static(b"first"), RefExpectation::Absent)
        .during(|| format!("create {key}"))?;
    conflict(storage, &key, b"second", RefExpectation::Absent, "(a second create, other bytes)")?;
    conflict(storage, &key, b"first", RefExpectation::Absent, "(a second create, the same bytes)")?;
    let read = read_is(storage, &key, Some(b"first"), "after two refused creates")?;
    // The create's own token must still be current: no refused write may have changed the reference.
    storage
        .write_ref(&key, Bytes::from_static(b"third"), RefExpectation::At(&token))
        .during(|| format!("update {key} with the token of its create"))?;
    ensure!(read.is_some(), "read_ref {key} lost its token");

    let empty = reference(KeyType::LibraryConfig, "empty value");
    storage
        .write_ref(&empty, Bytes::new(), RefExpectation::Absent)
        .during(|| format!("create {empty} with no bytes"))?;
    read_is(storage, &empty, Some(b""), "after creating it empty")?;
    Ok(())
}

/// An update with a stale token is a `Conflict` and writes nothing; the tokens returned by `write_ref`
/// and by `read_ref` for the current value both work; `At` on an absent reference is a `Conflict`.
///
/// # Errors
/// A [`super::CheckError`] naming the step.
pub fn ref_stale_token_conflicts(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "cas");
    let t1 = storage
        .write_ref(&key, Bytes::from_static(b"v1"), RefExpectation::Absent)
        .during(|| format!("create {key}"))?;
    let t2 = storage
        .write_ref(&key, Bytes::from_static(b"v2"), RefExpectation::At(&t1))
        .during(|| format!("update {key} at the create's token"))?;
    conflict(storage, &key, b"stale", RefExpectation::At(&t1), "with the token of the replaced value")?;
    let read = read_is(storage, &key, Some(b"v2"), "after a stale update")?.expect("read_is returned a value");
    let t3 = storage
        .write_ref(&key, Bytes::from_static(b"v3"), RefExpectation::At(&read))
        .during(|| format!("update {key} with the token read_ref returned"))?;
    conflict(storage, &key, b"stale", RefExpectation::At(&t2), "with the token of the replaced value")?;
    conflict(storage, &key, b"stale", RefExpectation::Absent, "while it exists")?;
    storage
        .write_ref(&key, Bytes::from_static(b"v4"), RefExpectation::At(&t3))
        .during(|| format!("update {key} with the token write_ref returned"))?;
    read_is(storage, &key, Some(b"v4"), "at the end")?;

    let absent = reference(KeyType::VersionRef, "cas absent");
    conflict(storage, &absent, b"x", RefExpectation::At(&t1), "while it does not exist (token of another reference)")?;
    read_is(storage, &absent, None, "after a refused update of an absent reference")?;
    Ok(())
}

/// Every write returns a new token, also when it writes the bytes already there and when a value comes
/// back (A, B, A): no token of an earlier write may ever work again.
///
/// # Errors
/// A [`super::CheckError`] listing the repeated token or the stale write that succeeded.
pub fn ref_tokens_change_on_every_write(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "tokens");
    let values: [&'static [u8]; 8] = [b"A", b"A", b"A", b"B", b"A", b"B", b"", b"A"];
    let mut tokens: Vec<RefToken> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let expected = match tokens.last() {
            None => RefExpectation::Absent,
            Some(t) => RefExpectation::At(t),
        };
        let token =
            storage.write_ref(&key, Bytes::from_static(value), expected).during(|| format!("write {i} of {key}"))?;
        let read = read_is(storage, &key, Some(value), &format!("after write {i}"))?.expect("read_is returned a value");
        ensure!(
            !tokens.contains(&token) && !tokens.contains(&read),
            "write {i} of {key} ({:?}) got token {token:?} (read_ref says {read:?}), already issued for an \
             earlier write: tokens {tokens:?}; a stale writer could overwrite it (ABA)",
            String::from_utf8_lossy(value)
        );
        tokens.push(token);
    }
    let distinct: BTreeSet<&str> = tokens.iter().map(RefToken::as_str).collect();
    ensure!(distinct.len() == tokens.len(), "tokens of {key} repeat: {tokens:?}");
    for (i, old) in tokens[..tokens.len() - 1].iter().enumerate() {
        conflict(storage, &key, b"stale", RefExpectation::At(old), &format!("with the token of write {i}"))?;
    }
    read_is(storage, &key, Some(b"A"), "after the stale writes")?;
    Ok(())
}

/// `delete_ref` removes a reference (deleting it again is fine); its old tokens conflict afterwards,
/// also after it is created again, and the new token differs from every old one.
///
/// # Errors
/// A [`super::CheckError`] naming the step.
pub fn ref_delete(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::SnapshotRef, "delete me");
    let t1 = storage
        .write_ref(&key, Bytes::from_static(b"one"), RefExpectation::Absent)
        .during(|| format!("create {key}"))?;
    let t2 = storage
        .write_ref(&key, Bytes::from_static(b"two"), RefExpectation::At(&t1))
        .during(|| format!("update {key}"))?;
    storage.delete_ref(&key).during(|| format!("delete_ref {key}"))?;
    read_is(storage, &key, None, "after delete_ref")?;
    storage.delete_ref(&key).during(|| format!("delete_ref {key} again"))?;
    storage
        .delete_ref(&reference(KeyType::SnapshotRef, "never existed"))
        .during(|| "delete_ref of an absent reference".to_owned())?;
    conflict(storage, &key, b"stale", RefExpectation::At(&t2), "after it was deleted")?;
    let t3 = storage
        .write_ref(&key, Bytes::from_static(b"one"), RefExpectation::Absent)
        .during(|| format!("re-create {key} after delete"))?;
    ensure!(
        t3 != t1 && t3 != t2,
        "re-creating {key} after delete_ref issued {t3:?}, a token of a write before the delete ({t1:?}, {t2:?})"
    );
    for (what, old) in [("its first create", &t1), ("its update", &t2)] {
        conflict(
            storage,
            &key,
            b"stale",
            RefExpectation::At(old),
            &format!("with the token of {what}, after re-creation"),
        )?;
    }
    read_is(storage, &key, Some(b"one"), "after re-creation and stale writes")?;
    Ok(())
}

/// Writing or deleting one reference leaves references of other types, of longer or shorter symbols
/// and of other symbols unchanged.
///
/// # Errors
/// A [`super::CheckError`] naming the reference that changed.
pub fn refs_are_independent(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let keys = [
        reference(KeyType::VersionRef, "s"),
        reference(KeyType::SnapshotRef, "s"),
        reference(KeyType::LibraryConfig, "s"),
        reference(KeyType::VersionRef, "s2"),
        reference(KeyType::VersionRef, "s/"),
        reference(KeyType::VersionRef, "S"),
    ];
    let mut tokens = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let t = storage
            .write_ref(key, Bytes::from(format!("initial {i}")), RefExpectation::Absent)
            .during(|| format!("create {key}"))?;
        tokens.push(t);
    }
    storage
        .write_ref(&keys[0], Bytes::from_static(b"changed"), RefExpectation::At(&tokens[0]))
        .during(|| format!("update {}", keys[0]))?;
    for (i, key) in keys.iter().enumerate().skip(1) {
        read_is(storage, key, Some(format!("initial {i}").as_bytes()), &format!("after updating {}", keys[0]))?;
    }
    storage.delete_ref(&keys[1]).during(|| format!("delete_ref {}", keys[1]))?;
    read_is(storage, &keys[0], Some(b"changed"), &format!("after deleting {}", keys[1]))?;
    for (i, key) in keys.iter().enumerate().skip(2) {
        read_is(storage, key, Some(format!("initial {i}").as_bytes()), &format!("after deleting {}", keys[1]))?;
        storage
            .write_ref(key, Bytes::from_static(b"still at its own token"), RefExpectation::At(&tokens[i]))
            .during(|| format!("update {key} with its creation token after its neighbours changed"))?;
    }
    Ok(())
}

/// `read_ref_batch` gives, per key and in order, what `read_ref` gives: values with their tokens
/// (which then work for a compare-and-swap), `None` for absent keys, repeated keys each time.
///
/// # Errors
/// A [`super::CheckError`] naming the key whose batch result differs.
pub fn read_ref_batch_matches_read_ref(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let present: Vec<RefKey> = (0..5).map(|i| reference(KeyType::VersionRef, &format!("batch{i}"))).collect();
    for (i, key) in present.iter().enumerate() {
        storage
            .write_ref(key, Bytes::from(format!("value {i}")), RefExpectation::Absent)
            .during(|| format!("create {key}"))?;
    }
    let absent = reference(KeyType::VersionRef, "batch-absent");
    let keys = [present[3].clone(), absent.clone(), present[0].clone(), present[3].clone(), present[4].clone()];
    let batch = storage.read_ref_batch(&keys);
    ensure!(batch.len() == keys.len(), "read_ref_batch of {} keys gave {} results", keys.len(), batch.len());
    for (key, got) in keys.iter().zip(batch) {
        let got = got.during(|| format!("read_ref_batch {key}"))?;
        let single = storage.read_ref(key).during(|| format!("read_ref {key}"))?;
        match (got, single) {
            (None, None) => {}
            (Some(b), Some(s)) => {
                same_bytes(&s.bytes, &b.bytes, || format!("read_ref_batch {key}"))?;
                ensure!(b.token == s.token, "read_ref_batch {key}: token {:?}, read_ref {:?}", b.token, s.token);
            }
            (b, s) => {
                return Err(super::CheckError::new(format!(
                    "read_ref_batch {key}: present {}, read_ref: present {}",
                    b.is_some(),
                    s.is_some()
                )));
            }
        }
    }
    ensure!(storage.read_ref_batch(&[]).is_empty(), "read_ref_batch of no keys gave results");
    // A batch token is a real token: it swaps.
    let token = storage.read_ref_batch(&present[1..2]).remove(0).during(|| format!("read_ref_batch {}", present[1]))?;
    let token = token.ok_or_else(|| super::CheckError::new(format!("read_ref_batch {}: absent", present[1])))?.token;
    storage
        .write_ref(&present[1], Bytes::from_static(b"swapped"), RefExpectation::At(&token))
        .during(|| format!("write_ref {} at the token read_ref_batch gave", present[1]))?;
    read_is(storage, &present[1], Some(b"swapped"), "after the swap")?;
    Ok(())
}

/// `commit_ref` with objects writes every object and the reference: creating (`Absent`) and
/// replacing (`At`), with and without objects; its tokens work like `write_ref`'s.
///
/// # Errors
/// A [`super::CheckError`] naming the object or reference in the wrong state.
pub fn commit_ref_writes_objects_and_ref(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "commit");
    let objects: Vec<(AtomKey, Bytes)> =
        [KeyType::TableData, KeyType::TableData, KeyType::TableIndex, KeyType::Version]
            .into_iter()
            .enumerate()
            .map(|(i, t)| (atom(t, "commit", 1, i as u64), pattern(config.seed ^ (0xC0 + i as u64), 100 * i)))
            .collect();
    let t1 = storage
        .commit_ref(objects.clone(), &key, Bytes::from_static(b"v1"), RefExpectation::Absent)
        .during(|| format!("commit_ref creating {key} with {} objects", objects.len()))?;
    for (object, bytes) in &objects {
        let got = storage.get(object).during(|| format!("get {object} after its commit_ref"))?;
        same_bytes(bytes, &got, || format!("get {object} after its commit_ref"))?;
    }
    let read = read_is(storage, &key, Some(b"v1"), "after commit_ref created it")?.expect("read_is returned a value");
    let more = vec![(atom(KeyType::TableData, "commit", 2, 9), Bytes::from_static(b"second"))];
    let t2 = storage
        .commit_ref(more.clone(), &key, Bytes::from_static(b"v2"), RefExpectation::At(&t1))
        .during(|| format!("commit_ref replacing {key} at the token of the previous commit_ref"))?;
    same_bytes(b"second", &storage.get(&more[0].0).during(|| format!("get {}", more[0].0))?, || {
        format!("get {} after its commit_ref", more[0].0)
    })?;
    ensure!(t2 != t1 && t2 != read, "commit_ref on {key} issued {t2:?}, the token of the write it replaced");
    let t3 = storage
        .commit_ref(Vec::new(), &key, Bytes::from_static(b"v3"), RefExpectation::At(&t2))
        .during(|| format!("commit_ref with no objects on {key}"))?;
    // Retrying with objects that already exist with the same bytes is fine (create-only puts).
    storage
        .commit_ref(objects, &key, Bytes::from_static(b"v4"), RefExpectation::At(&t3))
        .during(|| format!("commit_ref on {key} re-writing existing objects with the same bytes"))?;
    read_is(storage, &key, Some(b"v4"), "after four commits")?;
    Ok(())
}

/// A `commit_ref` whose expectation fails is a `Conflict` and leaves the reference unchanged; one whose
/// object conflicts (`AlreadyExists`) fails without touching the reference; a retry at the current
/// token with the same objects then succeeds.
///
/// # Errors
/// A [`super::CheckError`] naming the commit and the reference's state.
pub fn commit_ref_failures_leave_ref_unchanged(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "commit fails");
    let t1 = storage
        .write_ref(&key, Bytes::from_static(b"v1"), RefExpectation::Absent)
        .during(|| format!("create {key}"))?;
    let t2 = storage
        .write_ref(&key, Bytes::from_static(b"v2"), RefExpectation::At(&t1))
        .during(|| format!("update {key}"))?;
    let objects = vec![
        (data("commit fails", 1), Bytes::from_static(b"one")),
        (data("commit fails", 2), Bytes::from_static(b"two")),
    ];
    for (what, expected) in
        [("Absent while it exists", RefExpectation::Absent), ("a stale token", RefExpectation::At(&t1))]
    {
        expect_error(
            storage.commit_ref(objects.clone(), &key, Bytes::from_static(b"lost"), expected),
            "Conflict",
            is_conflict,
            || format!("commit_ref on {key} expecting {what}"),
        )?;
        read_is(storage, &key, Some(b"v2"), &format!("after a commit_ref expecting {what}"))?;
    }
    let taken = data("commit fails", 3);
    storage.put(&taken, Bytes::from_static(b"original")).during(|| format!("put {taken}"))?;
    let clashing = vec![(taken.clone(), Bytes::from_static(b"different"))];
    expect_error(
        storage.commit_ref(clashing, &key, Bytes::from_static(b"lost"), RefExpectation::At(&t2)),
        "AlreadyExists",
        super::support::is_already_exists,
        || format!("commit_ref on {key} with an object that exists with other bytes"),
    )?;
    read_is(storage, &key, Some(b"v2"), "after a commit_ref whose object clashed")?;
    storage
        .commit_ref(objects.clone(), &key, Bytes::from_static(b"v3"), RefExpectation::At(&t2))
        .during(|| format!("commit_ref on {key} retried at the current token after conflicts"))?;
    for (object, bytes) in &objects {
        same_bytes(bytes, &storage.get(object).during(|| format!("get {object}"))?, || format!("get {object}"))?;
    }
    read_is(storage, &key, Some(b"v3"), "after the retried commit")?;
    Ok(())
}

/// `read_ref_and_get` gives what `read_ref` and `get` give: the reference with its token (or `None`)
/// and the object's bytes, an absent object as `None`, in every combination of the two present or
/// absent.
///
/// # Errors
/// A [`super::CheckError`] naming the combination whose result differs.
pub fn read_ref_and_get_matches_both(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let present = reference(KeyType::VersionRef, "together");
    let absent = reference(KeyType::VersionRef, "together-absent");
    storage
        .write_ref(&present, Bytes::from_static(b"the head"), RefExpectation::Absent)
        .during(|| format!("create {present}"))?;
    let object = atom(KeyType::Version, "together", 7, 7);
    storage.put(&object, Bytes::from_static(b"the record")).during(|| format!("put {object}"))?;
    let missing = atom(KeyType::Version, "together", 8, 8);
    for (key, atom) in [(&present, &object), (&present, &missing), (&absent, &object), (&absent, &missing)] {
        let what = || format!("read_ref_and_get {key} {atom}");
        let (reference, got) = storage.read_ref_and_get(key, atom);
        let (reference, got) = (reference.during(what)?, got.during(what)?);
        match (reference, storage.read_ref(key).during(what)?) {
            (None, None) => {}
            (Some(r), Some(s)) => {
                same_bytes(&s.bytes, &r.bytes, what)?;
                ensure!(r.token == s.token, "{}: token {:?}, read_ref {:?}", what(), r.token, s.token);
            }
            (r, s) => {
                return Err(super::CheckError::new(format!(
                    "{}: reference present {}, read_ref: present {}",
                    what(),
                    r.is_some(),
                    s.is_some()
                )));
            }
        }
        match (got, storage.get(atom)) {
            (None, Err(e)) if e.is_not_found() => {}
            (Some(bytes), Ok(single)) => same_bytes(&single, &bytes, what)?,
            (got, single) => {
                return Err(super::CheckError::new(format!(
                    "{}: object present {}, get: {:?}",
                    what(),
                    got.is_some(),
                    single.map(|b| b.len())
                )));
            }
        }
    }
    Ok(())
}
