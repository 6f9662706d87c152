//! Checks of listings: paging, scopes, key types, deletes and listings racing with writes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyType};

use super::ConformanceConfig;
use super::support::{
    During, Outcome, atom, data, ensure, expect_error, no_panic, page_through, pattern, put_all, reference, same_keys,
};
use crate::storage::{DEFAULT_LIST_PAGE, ListScope, RefExpectation, Storage};

/// Lists with the given page sizes and with the `list`/`list_all` helpers, comparing each with
/// `expected`.
fn list_matches(
    storage: &dyn Storage,
    key_type: KeyType,
    scope: ListScope<'_>,
    limits: &[usize],
    expected: &BTreeSet<Key>,
) -> Outcome {
    for &limit in limits {
        let listed = page_through(storage, key_type, scope, limit)?;
        same_keys(expected, &listed, || format!("listing {key_type} keys in {scope:?} with page limit {limit}"))?;
    }
    let listed = storage.list_all(key_type, scope).during(|| format!("list_all {key_type} {scope:?}"))?;
    same_keys(expected, &listed, || format!("list_all {key_type} {scope:?}"))
}

/// The keys of `all` a listing of `key_type` in `scope` must return, by the scope's own definition.
fn expected_in(all: &BTreeSet<Key>, key_type: KeyType, scope: ListScope<'_>) -> BTreeSet<Key> {
    all.iter().filter(|k| k.key_type() == key_type && scope.contains(k.symbol())).cloned().collect()
}

/// Writes three table-data keys and a version reference per symbol; returns every key written.
fn populate_symbols(storage: &dyn Storage, symbols: &[&str]) -> Outcome<BTreeSet<Key>> {
    let mut all = BTreeSet::new();
    let mut items = Vec::new();
    for symbol in symbols {
        for version in 1..=3 {
            let key = data(symbol, version);
            items.push((key.clone(), Bytes::copy_from_slice(symbol.as_bytes())));
            all.insert(Key::Atom(key));
        }
        let r = reference(KeyType::VersionRef, symbol);
        storage
            .write_ref(&r, Bytes::copy_from_slice(symbol.as_bytes()), RefExpectation::Absent)
            .during(|| format!("write_ref {r}"))?;
        all.insert(Key::Ref(r));
    }
    put_all(storage, items)?;
    Ok(all)
}

/// Symbols that share beginnings with "ab", including the characters that sort around the object-name
/// separator and escapes (`/`, `%`, `.`, `-`, `_`, space).
const AB_FAMILY: &[&str] =
    &["ab", "abc", "ab/x", "a", "aB", "ab ", "ab.", "ab-", "ab_", "ab%", "ab%2F", "ab\u{e9}", "b", "Ab", "abab"];

/// More than 2,000 keys (by default) of one symbol, listed in pages of 1,000, of the small limit, of
/// exactly the count and through `list_all`: no key repeats or goes missing, and keys of neighbouring
/// symbols and types stay out. A page limit of 0 is refused with `InvalidConfig`.
///
/// # Errors
/// A [`super::CheckError`] with counts and a few missing or unexpected keys.
pub fn list_pages_without_gaps_or_duplicates(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let n = config.list_keys as u64;
    let mut expected = BTreeSet::new();
    let mut items: Vec<(AtomKey, Bytes)> = Vec::new();
    for v in 0..n {
        // Several keys per version too (different hashes), as a version has many data segments.
        let key = atom(KeyType::TableData, "paging", v / 3, v);
        expected.insert(Key::Atom(key.clone()));
        items.push((key, Bytes::from(v.to_le_bytes().to_vec())));
    }
    let mut distractors = Vec::new();
    for symbol in ["pagin", "paging2", "paging/x", "pagingg"] {
        for v in 0..5 {
            distractors.push((data(symbol, v), Bytes::from_static(b"d")));
        }
    }
    for v in 0..5 {
        distractors.push((atom(KeyType::TableIndex, "paging", v, v), Bytes::from_static(b"i")));
    }
    let all_data: BTreeSet<Key> = expected
        .iter()
        .cloned()
        .chain(
            distractors.iter().filter(|(k, _)| k.key_type() == KeyType::TableData).map(|(k, _)| Key::Atom(k.clone())),
        )
        .collect();
    for chunk in items.chunks(500) {
        put_all(storage, chunk.to_vec())?;
    }
    put_all(storage, distractors)?;
    let r = reference(KeyType::VersionRef, "paging");
    storage.write_ref(&r, Bytes::from_static(b"r"), RefExpectation::Absent).during(|| format!("write_ref {r}"))?;

    let n = config.list_keys;
    expect_error(
        storage.list_page(KeyType::TableData, ListScope::Symbol("paging"), None, 0),
        "InvalidConfig (a page limit of 0)",
        |e| matches!(e, crate::error::StorageError::InvalidConfig(_)),
        || "list_page with limit 0".to_owned(),
    )?;
    list_matches(
        storage,
        KeyType::TableData,
        ListScope::Symbol("paging"),
        &[DEFAULT_LIST_PAGE, config.list_small_limit, n, n + 1],
        &expected,
    )?;
    list_matches(
        storage,
        KeyType::TableData,
        ListScope::All,
        &[DEFAULT_LIST_PAGE, config.list_small_limit],
        &all_data,
    )?;
    let lazily: Vec<Key> = storage
        .list(KeyType::TableData, ListScope::Symbol("paging"))
        .collect::<crate::Result<_>>()
        .during(|| "list(TableData, Symbol(\"paging\"))".to_owned())?;
    same_keys(&expected, &lazily, || "list(TableData, Symbol(\"paging\")) iterated lazily".to_owned())
}

/// `ListScope::Symbol(s)` returns the keys of `s` only, for symbols that share beginnings (`ab`,
/// `abc`, `ab/x`, `a`, ...), for atoms and references, and with page limits of 1 and 2 so a backend
/// that filters a wider prefix must keep going past the neighbours.
///
/// # Errors
/// A [`super::CheckError`] naming the scope and the stray keys.
pub fn list_symbol_scope_is_exact(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let all = populate_symbols(storage, AB_FAMILY)?;
    for symbol in AB_FAMILY {
        let scope = ListScope::Symbol(symbol);
        for key_type in [KeyType::TableData, KeyType::VersionRef] {
            list_matches(storage, key_type, scope, &[1, 2, DEFAULT_LIST_PAGE], &expected_in(&all, key_type, scope))?;
        }
    }
    for symbol in ["abd", "ab/", "a/b", "abc/x"] {
        let scope = ListScope::Symbol(symbol);
        list_matches(storage, KeyType::TableData, scope, &[1, DEFAULT_LIST_PAGE], &BTreeSet::new())?;
    }
    Ok(())
}

/// `ListScope::SymbolPrefix(p)` returns exactly the keys of symbols starting with `p`, including the
/// empty prefix (everything) and prefixes that are not whole symbol names.
///
/// # Errors
/// A [`super::CheckError`] naming the prefix and the missing or stray keys.
pub fn list_symbol_prefix_scope(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let all = populate_symbols(storage, AB_FAMILY)?;
    for prefix in ["", "a", "ab", "abc", "ab/", "ab%", "ab%2", "ab.", "ab_", "A", "b", "c", "ab\u{e9}", "aba"] {
        let scope = ListScope::SymbolPrefix(prefix);
        for key_type in [KeyType::TableData, KeyType::VersionRef] {
            list_matches(storage, key_type, scope, &[2, DEFAULT_LIST_PAGE], &expected_in(&all, key_type, scope))?;
        }
    }
    Ok(())
}

/// Each key type lists only its own keys, atoms and references apart, in every scope.
///
/// # Errors
/// A [`super::CheckError`] naming the key type and the stray keys.
pub fn list_separates_key_types(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let mut all = BTreeSet::new();
    for symbol in ["mix", "mixed"] {
        for &key_type in KeyType::ALL {
            if key_type.class() == floe_formats::KeyClass::Atom {
                let key = atom(key_type, symbol, 1, 1);
                storage.put(&key, Bytes::from_static(b"atom")).during(|| format!("put {key}"))?;
                all.insert(Key::Atom(key));
            } else {
                let key = reference(key_type, symbol);
                storage
                    .write_ref(&key, Bytes::from_static(b"ref"), RefExpectation::Absent)
                    .during(|| format!("write_ref {key}"))?;
                all.insert(Key::Ref(key));
            }
        }
    }
    for &key_type in KeyType::ALL {
        for scope in [ListScope::All, ListScope::Symbol("mix"), ListScope::SymbolPrefix("mix")] {
            list_matches(storage, key_type, scope, &[1, DEFAULT_LIST_PAGE], &expected_in(&all, key_type, scope))?;
        }
    }
    Ok(())
}

/// Unicode symbols (CJK, accents, emoji, a character sharing UTF-8 lead bytes with another) list and
/// scope like ASCII ones.
///
/// # Errors
/// A [`super::CheckError`] naming the scope and keys.
pub fn list_unicode_symbols(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    // "数" is E6 95 B0 and "敷" is E6 95 B7: a byte-level prefix bug would mix them.
    let symbols = ["数", "数据", "数据库", "敷", "é", "e\u{301}", "émoji 🚀", "🚀", "ü/ß", "Ω"];
    let all = populate_symbols(storage, &symbols)?;
    for symbol in symbols {
        for scope in [ListScope::Symbol(symbol), ListScope::SymbolPrefix(symbol)] {
            for key_type in [KeyType::TableData, KeyType::VersionRef] {
                list_matches(storage, key_type, scope, &[1, DEFAULT_LIST_PAGE], &expected_in(&all, key_type, scope))?;
            }
        }
    }
    for scope in [ListScope::All, ListScope::SymbolPrefix("e"), ListScope::SymbolPrefix("\u{1F680}")] {
        list_matches(
            storage,
            KeyType::TableData,
            scope,
            &[3, DEFAULT_LIST_PAGE],
            &expected_in(&all, KeyType::TableData, scope),
        )?;
    }
    Ok(())
}

/// Deleted objects and references disappear from listings; the rest stay.
///
/// # Errors
/// A [`super::CheckError`] naming the listing.
pub fn list_after_deletes(_config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let mut all = populate_symbols(storage, &["keep", "drop", "dropped"])?;
    let doomed: Vec<AtomKey> = (1..=3).map(|v| data("drop", v)).chain([data("keep", 2)]).collect();
    storage.delete_batch(&doomed).during(|| "delete_batch".to_owned())?;
    for key in &doomed {
        all.remove(&Key::Atom(key.clone()));
    }
    let r = reference(KeyType::VersionRef, "drop");
    storage.delete_ref(&r).during(|| format!("delete_ref {r}"))?;
    all.remove(&Key::Ref(r));
    for scope in [ListScope::All, ListScope::Symbol("drop"), ListScope::SymbolPrefix("drop"), ListScope::Symbol("keep")]
    {
        for key_type in [KeyType::TableData, KeyType::VersionRef] {
            list_matches(storage, key_type, scope, &[1, DEFAULT_LIST_PAGE], &expected_in(&all, key_type, scope))?;
        }
    }
    Ok(())
}

/// A listing paged while another thread writes keys (of the same symbol, sorting between the existing
/// ones, and of other symbols) returns every key that existed for the whole listing exactly once, and
/// nothing that was never written.
///
/// # Errors
/// A [`super::CheckError`] with the missing, repeated or unknown keys.
pub fn list_during_writes(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let before: Vec<(AtomKey, Bytes)> = (0..300).map(|v| (data("stable", 2 * v), Bytes::from_static(b"old"))).collect();
    put_all(storage, before.clone())?;
    let before: BTreeSet<Key> = before.into_iter().map(|(k, _)| Key::Atom(k)).collect();
    let during: Vec<AtomKey> =
        (0..300).flat_map(|v| [data("stable", 2 * v + 1), data("stable0", v), data("stabl", v)]).collect();
    let stop = AtomicBool::new(false);
    let limit = config.list_small_limit;

    let (listed, written) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut written = Vec::new();
            for key in &during {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let result = no_panic(|| format!("put {key}"), || storage.put(key, Bytes::from_static(b"new")))?;
                result.during(|| format!("put {key} while listing"))?;
                written.push(Key::Atom(key.clone()));
            }
            Ok::<_, super::CheckError>(written)
        });
        let listed = no_panic(
            || "paging a listing".to_owned(),
            || {
                let a = page_through(storage, KeyType::TableData, ListScope::Symbol("stable"), limit)?;
                let b = page_through(storage, KeyType::TableData, ListScope::All, limit)?;
                Ok::<_, super::CheckError>((a, b))
            },
        );
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap_or_else(|_| Err(super::CheckError::new("the writer thread panicked")));
        (listed, written)
    });
    let (of_symbol, of_all) = listed??;
    let written: BTreeSet<Key> = written?.into_iter().collect();
    for (what, listed, scope) in
        [("Symbol(\"stable\")", &of_symbol, ListScope::Symbol("stable")), ("All", &of_all, ListScope::All)]
    {
        let listed_set: BTreeSet<&Key> = listed.iter().collect();
        let missing: Vec<String> =
            before.iter().filter(|k| !listed_set.contains(k)).take(5).map(|k| k.to_string()).collect();
        ensure!(missing.is_empty(), "listing {what} while writing skipped keys that existed throughout: {missing:?}");
        let unknown: Vec<String> = listed
            .iter()
            .filter(|k| !(before.contains(*k) || (written.contains(*k) && scope.contains(k.symbol()))))
            .take(5)
            .map(|k| k.to_string())
            .collect();
        ensure!(unknown.is_empty(), "listing {what} while writing returned keys never written in scope: {unknown:?}");
    }
    Ok(())
}

/// `visit_listed` hands over exactly the keys a listing of the same type and scope returns, each once
/// with its value (an object's bytes, a reference's current value), objects across more than one
/// listing page; a visit's error ends the walk and is returned.
///
/// # Errors
/// A [`super::CheckError`] naming the scope and the missing, repeated or wrong keys.
pub fn visit_listed_matches_listing(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let mut items: Vec<(AtomKey, Bytes)> = Vec::new();
    let mut stored: std::collections::BTreeMap<Key, Bytes> = std::collections::BTreeMap::new();
    for (i, symbol) in AB_FAMILY.iter().enumerate() {
        for version in 0..3 {
            items.push((data(symbol, version), pattern(config.seed ^ (i as u64 * 8 + version), 5 + i)));
        }
        let r = reference(KeyType::VersionRef, symbol);
        let first = storage
            .write_ref(&r, pattern(config.seed ^ (1000 + i as u64), 3), RefExpectation::Absent)
            .during(|| format!("write_ref {r}"))?;
        // The walk gives the current value, not the first.
        let value = pattern(config.seed ^ (2000 + i as u64), 7 + i);
        storage.write_ref(&r, value.clone(), RefExpectation::At(&first)).during(|| format!("rewrite {r}"))?;
        stored.insert(Key::Ref(r), value);
    }
    let many = DEFAULT_LIST_PAGE as u64 + 5;
    items.extend((0..many).map(|v| (data("visited", v), pattern(config.seed ^ (v + 10_000), 1 + (v % 40) as usize))));
    put_all(storage, items.clone())?;
    stored.extend(items.into_iter().map(|(k, v)| (Key::Atom(k), v)));
    let all: BTreeSet<Key> = stored.keys().cloned().collect();
    for key_type in [KeyType::TableData, KeyType::VersionRef] {
        for scope in
            [ListScope::All, ListScope::Symbol("ab"), ListScope::Symbol("visited"), ListScope::SymbolPrefix("ab")]
        {
            let mut visited: Vec<Key> = Vec::new();
            let mut wrong: Vec<String> = Vec::new();
            storage
                .visit_listed(key_type, scope, &mut |key, bytes| {
                    match stored.get(key).map(|b| super::support::byte_diff(b, bytes)) {
                        Some(None) => {}
                        Some(Some(diff)) => wrong.push(format!("{key}: {diff}")),
                        None => wrong.push(format!("{key} was never written")),
                    }
                    visited.push(key.clone());
                    Ok(())
                })
                .during(|| format!("visit_listed {key_type} {scope:?}"))?;
            ensure!(
                wrong.is_empty(),
                "visit_listed {key_type} {scope:?} handed wrong values: {:?}",
                &wrong[..wrong.len().min(5)]
            );
            let unique: BTreeSet<&Key> = visited.iter().collect();
            ensure!(unique.len() == visited.len(), "visit_listed {key_type} {scope:?} visited a key more than once");
            same_keys(&expected_in(&all, key_type, scope), &visited, || format!("visit_listed {key_type} {scope:?}"))?;
        }
    }
    let mut calls = 0;
    let stopped = storage.visit_listed(KeyType::TableData, ListScope::Symbol("visited"), &mut |_, _| {
        calls += 1;
        if calls == 3 { Err(crate::StorageError::other("conformance", "stop here")) } else { Ok(()) }
    });
    ensure!(
        stopped.as_ref().is_err_and(|e| e.to_string().contains("stop here")) && calls == 3,
        "a visit's error must end visit_listed and be returned: got {stopped:?} after {calls} visits"
    );
    Ok(())
}
