//! Reliability item 3: corruption. Objects are damaged directly in the store, through the backend's raw
//! `Storage` (delete, then put the damaged copy under the same key; references are overwritten with a
//! compare-and-swap): bytes flipped at random offsets, objects truncated, and whole valid objects swapped
//! between keys (two data segments, two indexes, two version records, two symbols' heads, across
//! symbols). After each damage a battery of reads runs over every version and snapshot of the damaged
//! symbol and of a bystander:
//! - a read that needs the damaged object fails with `ErrorKind::CorruptData` and names its key;
//! - every other read succeeds and returns exactly what it returned before the damage (never a wrong
//!   value); the bystander symbol is unaffected;
//! - after the object is restored, everything reads as before (nothing cached the damage).
//!
//! `Library::verify` of every version and snapshot runs with each battery too: it fails with
//! `CorruptData` naming the key for every version that stores the damaged object (also where the
//! damage lies in a block no read decodes) and reports what it reported before for every other.
//!
//! Each battery reads through a fresh library handle: a handle keeps the indexes it has decoded, so
//! a damaged index must still read right through the handle that read it before the damage.
//!
//! Short by default; `FLOE_FULL=1` flips many more bytes (design/reliability.md). The S3 variant runs
//! only with `FLOE_S3_ENDPOINT` set.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use floe_backends::{ListScope, RefExpectation, Storage};
use floe_engine::index::TableIndex;
use floe_engine::{AsOf, ErrorKind, Floe, Library, ReadRequest, Verification};
use floe_formats::{AtomKey, Key, KeyType, RefKey};
use floe_tests::harness::{TestStore, lmdb_store, s3_endpoint, s3_store};
use floe_tests::stress::{Rng, full_mode};
use floe_tests::suite::small_options;
use floe_tests::{rows, table};

const LIB: &str = "corrupt";
const VICTIM: &str = "victim";
const BYSTANDER: &str = "bystander";
/// The version of both symbols the snapshot holds.
const SNAPSHOT_VERSION: u64 = 2;

/// The reads of the battery, per symbol: every version and snapshot, whole and in parts.
fn requests(lib: &Library, symbol: &str) -> Vec<ReadRequest> {
    let mut as_ofs: Vec<AsOf> = vec![AsOf::Latest];
    for v in lib.list_versions(Some(symbol)).expect("list versions") {
        if !v.deleted {
            as_ofs.push(AsOf::Version(v.version as i64));
        }
        as_ofs.extend(v.snapshots.iter().map(|s| AsOf::Snapshot(s.clone())));
    }
    let mut out = Vec::new();
    for as_of in as_ofs {
        let r = |date_range, row_range, columns: Option<&[&str]>| ReadRequest {
            as_of: as_of.clone(),
            date_range,
            row_range,
            columns: columns.map(|c| c.iter().map(|s| (*s).to_owned()).collect()),
            strings_as_codes: false,
            column_blocks: false,
            strings_as_views: false,
        };
        out.push(r(None, None, None));
        // Strings as codes decode dictionaries and keys, not values: damage must show there too.
        out.push(ReadRequest { strings_as_codes: true, ..r(None, Some((5, 40)), Some(&["name"])) });
        out.push(r(Some((Some(3), Some(12))), None, None));
        out.push(r(None, Some((20, 30)), None));
        out.push(r(None, Some((-4, i64::MAX)), None));
        out.push(r(None, None, Some(&["px"])));
        out.push(r(None, None, Some(&["name", "flag"])));
    }
    out
}

/// Results of the battery: `(symbol, request) -> data`, and `(symbol, version) -> verification` for
/// every version the requests name (made on the calling thread; the battery's run in parallel).
struct Baseline {
    reads: Vec<((String, ReadRequest), RecordBatch)>,
    verified: Vec<((String, AsOf), Verification)>,
}

fn baseline(lib: &Library) -> Baseline {
    let (mut reads, mut verified) = (Vec::new(), Vec::new());
    for symbol in [VICTIM, BYSTANDER] {
        for req in requests(lib, symbol) {
            let data = lib.read(symbol, &req).unwrap_or_else(|e| panic!("baseline {symbol} {req:?}: {e}")).data;
            if !verified.iter().any(|((s, a), _)| s == symbol && a == &req.as_of) {
                let report =
                    lib.verify(symbol, &req.as_of, false).unwrap_or_else(|e| panic!("verify {symbol} {req:?}: {e}"));
                verified.push(((symbol.to_owned(), req.as_of.clone()), report));
            }
            reads.push(((symbol.to_owned(), req), data));
        }
    }
    Baseline { reads, verified }
}

/// A whole read of `as_of`: what a verification of that version is judged like, by default.
fn whole(as_of: &AsOf) -> ReadRequest {
    ReadRequest { as_of: as_of.clone(), ..Default::default() }
}

/// Whether the damage failed `CorruptData` with a message naming one of `names`.
fn assert_named_corrupt(e: &floe_engine::Error, names: &[String], what: &str, call: &str) {
    assert_eq!(e.kind(), ErrorKind::CorruptData, "{what}: {call}: {e}");
    let msg = e.to_string();
    assert!(names.iter().any(|n| msg.contains(n)), "{what}: {call}: names none of {names:?}: {e}");
}

/// Runs the battery after damage described by `what`. Reads for which `must_fail` holds must fail with
/// `CorruptData` and a message naming one of `names`; every other read must return its baseline, except
/// that other reads of the `damaged` symbols may also fail that way (a partial read may touch the object).
/// Verifications of the versions for which `verify_fails` holds must fail the same way, every other
/// must report what it did before. Returns (failed, succeeded) over reads and verifications.
fn battery(
    floe: &Floe,
    base: &Baseline,
    names: &[String],
    damaged: &[&str],
    what: &str,
    must_fail: &dyn Fn(&str, &ReadRequest) -> bool,
    verify_fails: &dyn Fn(&str, &AsOf) -> bool,
) -> (usize, usize) {
    // A fresh handle: a handle keeps the indexes it has decoded (verified when it fetched them), so
    // damage to an index after a handle read it shows only to handles that have not.
    let lib = floe.get_library(LIB).expect("library handle");
    let (mut failed, mut ok) = (0, 0);
    for ((symbol, as_of), expected) in &base.verified {
        match lib.verify(symbol, as_of, true) {
            Ok(report) => {
                assert!(!verify_fails(symbol, as_of), "{what}: verify {symbol} {as_of:?} should fail");
                assert_eq!(&report, expected, "{what}: verify {symbol} {as_of:?} reported otherwise");
                ok += 1;
            }
            Err(e) => {
                assert_named_corrupt(&e, names, what, &format!("verify {symbol} {as_of:?}"));
                assert!(verify_fails(symbol, as_of), "{what}: verify {symbol} {as_of:?} is affected: {e}");
                failed += 1;
            }
        }
    }
    for ((symbol, req), expected) in &base.reads {
        let must = must_fail(symbol, req);
        match lib.read(symbol, req) {
            Ok(r) => {
                assert!(!must, "{what}: {symbol} {req:?} should fail but read {} rows", r.data.num_rows());
                assert_eq!(&r.data, expected, "{what}: {symbol} {req:?} returned different data");
                ok += 1;
            }
            Err(e) => {
                assert_named_corrupt(&e, names, what, &format!("{symbol} {req:?}"));
                assert!(must || damaged.contains(&symbol.as_str()), "{what}: {symbol} {req:?} is affected: {e}");
                failed += 1;
            }
        }
    }
    (failed, ok)
}

struct Fixture {
    floe: Floe,
    lib: Library,
    raw: Arc<dyn Storage>,
    base: Baseline,
    /// Every version's index key, per symbol and version (live versions only).
    indexes: BTreeMap<(String, u64), AtomKey>,
}

fn fixture(store: &TestStore) -> Fixture {
    let floe = Floe::open(&store.uri).expect("open store");
    let lib = floe.create_library(LIB, small_options()).expect("create library");
    // Different rows per symbol, so no two segments hold the same bytes.
    for (symbol, o) in [(VICTIM, 0), (BYSTANDER, 1)] {
        lib.write(symbol, &table(&rows(o..30 + o)), Some(b"m0")).expect("write");
        lib.append(symbol, &table(&rows(30 + o..40 + o)), None).expect("append");
        lib.update(symbol, &table(&rows([5, 6, 7])), Some((4, 9)), None).expect("update");
    }
    lib.snapshot("snap", None, None, &BTreeMap::new()).expect("snapshot");
    lib.write(VICTIM, &table(&rows(100..120)), None).expect("write");
    let raw = floe_backends::open_store(&store.uri).expect("raw store").library(LIB).expect("raw library");
    let mut indexes = BTreeMap::new();
    for symbol in [VICTIM, BYSTANDER] {
        for k in raw.list_all(KeyType::TableIndex, ListScope::Symbol(symbol)).expect("list") {
            let Key::Atom(k) = k else { continue };
            indexes.insert((symbol.to_owned(), k.version()), k);
        }
    }
    let base = baseline(&lib);
    Fixture { floe, lib, raw, base, indexes }
}

impl Fixture {
    /// The data keys the index `index` names.
    fn data_keys(&self, index: &AtomKey) -> Vec<AtomKey> {
        let bytes = self.raw.get(index).expect("index");
        TableIndex::decode(&bytes).expect("decodes").entries.into_iter().map(|e| e.key).collect()
    }

    /// Whether the damaged copy `bad` of data segment `key` (named by `index`) differs only in the index
    /// column of a segment that is not the first of its row slice, a block no read decodes.
    fn only_in_repeated_index(&self, index: &AtomKey, key: &AtomKey, bad: &[u8]) -> bool {
        let bytes = self.raw.get(index).expect("index");
        let entries = TableIndex::decode(&bytes).expect("decodes").entries;
        let later_group = entries.iter().any(|e| &e.key == key && e.col_start > 0);
        let Ok(reader) = floe_formats::SegmentReader::new(bad) else { return false };
        let others: Vec<usize> = (1..reader.num_columns()).collect();
        // Header and descriptor intact (`new` checked them), every other column intact, column 0 not.
        later_group && reader.verify_others(&[0]).is_ok() && reader.verify_others(&others).is_err()
    }

    /// Replaces `key`'s bytes (delete, then create the damaged copy).
    fn put_over(&self, key: &AtomKey, bytes: Bytes) {
        self.raw.delete_batch(std::slice::from_ref(key)).expect("delete");
        self.raw.put(key, bytes).expect("put damaged copy");
    }

    fn overwrite_ref(&self, key: &RefKey, bytes: Bytes) {
        let now = self.raw.read_ref(key).expect("read ref").expect("exists");
        self.raw.write_ref(key, bytes, RefExpectation::At(&now.token)).expect("overwrite ref");
    }

    /// The version a request of `symbol` reads.
    fn version_of(&self, symbol: &str, as_of: &AsOf) -> u64 {
        match as_of {
            AsOf::Version(v) => *v as u64,
            AsOf::Snapshot(_) => SNAPSHOT_VERSION,
            _ => self.indexes.keys().filter(|(s, _)| s == symbol).map(|(_, v)| *v).max().expect("versions"),
        }
    }

    /// Whether a request reads through the index `index` (every read of that version, by id, as the
    /// latest or through the snapshot).
    fn reads_via<'a>(&'a self, index: &'a AtomKey) -> impl Fn(&str, &ReadRequest) -> bool + 'a {
        move |s: &str, r: &ReadRequest| s == index.symbol() && self.version_of(s, &r.as_of) == index.version()
    }

    /// Whether a request needs data segment `key`: a whole read of a version whose index names it.
    fn needs(&self, key: &AtomKey, s: &str, r: &ReadRequest) -> bool {
        s == key.symbol()
            && r.date_range.is_none()
            && r.row_range.is_none()
            && r.columns.is_none()
            && self.data_keys(&self.indexes[&(s.to_owned(), self.version_of(s, &r.as_of))]).contains(key)
    }
}

fn corruption(store: TestStore) {
    let fx = fixture(&store);
    let mut rng = Rng::new(7);
    // S3 (moto) serves a battery in ~5 s, LMDB in ~50 ms: fewer flips there.
    let flips = match (full_mode(), store.kind) {
        (true, "s3") => 100,
        (true, _) => 400,
        (false, "s3") => 10,
        (false, _) => 40,
    };
    let tally = std::cell::Cell::new((0usize, 0usize, 0usize));
    // A verification fails where a whole read of the same version does, unless told otherwise.
    let run_verifying = |names: &[String],
                         damaged: &[&str],
                         what: &str,
                         must_fail: &dyn Fn(&str, &ReadRequest) -> bool,
                         verify_fails: &dyn Fn(&str, &AsOf) -> bool| {
        let (f, o) = battery(&fx.floe, &fx.base, names, damaged, what, must_fail, verify_fails);
        let (a, b, c) = tally.get();
        tally.set((a + f, b + o, c + 1));
    };
    let run = |names: &[String], damaged: &[&str], what: &str, must_fail: &dyn Fn(&str, &ReadRequest) -> bool| {
        run_verifying(names, damaged, what, must_fail, &|s, a| must_fail(s, &whole(a)));
    };
    let victim_index = fx.indexes[&(VICTIM.to_owned(), SNAPSHOT_VERSION)].clone();
    let victim_data = fx.data_keys(&victim_index);

    // 1. Flipped bits and truncations in data segments, at random offsets.
    for i in 0..flips {
        let key = &victim_data[rng.below(victim_data.len() as u64) as usize];
        let good = fx.raw.get(key).expect("get");
        let mut bad = good.to_vec();
        let what = if i % 5 == 4 {
            bad.truncate(rng.below(good.len() as u64) as usize);
            format!("{key} truncated to {} of {} bytes", bad.len(), good.len())
        } else {
            let at = rng.below(good.len() as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
            format!("{key} with a bit flipped at byte {at} of {}", good.len())
        };
        // Since decision D13 a read checks only the blocks it decodes. Every segment repeats the index
        // column, but reads take it from the first segment of each row slice: damage confined to that
        // copy in a later column group touches no read (which must still return the right data).
        let unread = fx.only_in_repeated_index(&victim_index, key, &bad);
        fx.put_over(key, Bytes::from(bad));
        // A verification checks every block: it fails for every version storing the segment.
        run_verifying(&[key.to_string()], &[VICTIM], &what, &|s, r| !unread && fx.needs(key, s, r), &|s, a| {
            fx.needs(key, s, &whole(a))
        });
        fx.put_over(key, good);
    }
    assert_eq!(battery(&fx.floe, &fx.base, &[], &[], "restored", &|_, _| false, &|_, _| false).0, 0);

    // 2. Index segments: flipped, truncated; two versions' indexes swapped.
    let v0 = fx.indexes[&(VICTIM.to_owned(), 0)].clone();
    let v1 = fx.indexes[&(VICTIM.to_owned(), 1)].clone();
    for (i, key) in [&v0, &v1, &victim_index].into_iter().enumerate() {
        let good = fx.raw.get(key).expect("get");
        let mut bad = good.to_vec();
        if i == 1 {
            bad.truncate(good.len() / 2);
        } else {
            let at = rng.below(good.len() as u64) as usize;
            bad[at] ^= 0x10;
        }
        fx.put_over(key, Bytes::from(bad));
        run(&[key.to_string()], &[VICTIM], &format!("damaged index {key}"), &fx.reads_via(key));
        // The handle that made the baseline decoded this index before the damage: it reads right.
        for ((symbol, req), expected) in &fx.base.reads {
            let got =
                fx.lib.read(symbol, req).unwrap_or_else(|e| panic!("cached index of {key}: {symbol} {req:?}: {e}"));
            assert_eq!(&got.data, expected, "cached index of {key}: {symbol} {req:?}");
        }
        fx.put_over(key, good);
    }
    let (b0, b1) = (fx.raw.get(&v0).expect("get"), fx.raw.get(&v1).expect("get"));
    fx.put_over(&v0, b1.clone());
    fx.put_over(&v1, b0.clone());
    let (via0, via1) = (fx.reads_via(&v0), fx.reads_via(&v1));
    run(&[v0.to_string(), v1.to_string()], &[VICTIM], "swapped indexes v0/v1", &|s, r| via0(s, r) || via1(s, r));
    fx.put_over(&v0, b0);
    fx.put_over(&v1, b1);

    // 3. Data segments swapped: two of the victim's, and one of the victim's with one of the bystander's.
    let by_index = fx.indexes[&(BYSTANDER.to_owned(), SNAPSHOT_VERSION)].clone();
    let by_data = fx.data_keys(&by_index);
    for (a, b) in [(&victim_data[0], &victim_data[2]), (&victim_data[1], &by_data[1])] {
        let (ga, gb) = (fx.raw.get(a).expect("get"), fx.raw.get(b).expect("get"));
        fx.put_over(a, gb.clone());
        fx.put_over(b, ga.clone());
        run(&[a.to_string(), b.to_string()], &[a.symbol(), b.symbol()], &format!("swapped {a} and {b}"), &|s, r| {
            fx.needs(a, s, r) || fx.needs(b, s, r)
        });
        fx.put_over(a, ga);
        fx.put_over(b, gb);
    }

    // 4. Version records: one flipped; the two symbols' records of the same id swapped.
    let ver = |s: &str, v: u64| {
        AtomKey::new(KeyType::Version, s, floe_formats::AtomFields { version: v, ..Default::default() }).expect("key")
    };
    let (va, vb) = (ver(VICTIM, 1), ver(BYSTANDER, 1));
    let (ga, gb) = (fx.raw.get(&va).expect("ver v1 exists"), fx.raw.get(&vb).expect("ver v1 exists"));
    let mut bad = ga.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    fx.put_over(&va, Bytes::from(bad));
    run(&[va.to_string()], &[VICTIM], "flipped version record v1", &|s, r| s == VICTIM && r.as_of == AsOf::Version(1));
    fx.put_over(&va, gb.clone());
    fx.put_over(&vb, ga.clone());
    run(&[va.to_string(), vb.to_string()], &[VICTIM, BYSTANDER], "swapped version records", &|_, r| {
        r.as_of == AsOf::Version(1)
    });
    fx.put_over(&va, ga);
    fx.put_over(&vb, gb);

    // 5. References: the victim's head flipped; the two heads swapped; the snapshot flipped.
    let head = |s: &str| RefKey::new(KeyType::VersionRef, s).expect("key");
    let (ha, hb) = (head(VICTIM), head(BYSTANDER));
    let good_a = fx.raw.read_ref(&ha).expect("read").expect("exists").bytes;
    let good_b = fx.raw.read_ref(&hb).expect("read").expect("exists").bytes;
    let mut bad = good_a.to_vec();
    bad[3] ^= 0x40;
    fx.overwrite_ref(&ha, Bytes::from(bad));
    let not_snapshot = |r: &ReadRequest| !matches!(r.as_of, AsOf::Snapshot(_));
    run(&[ha.to_string()], &[VICTIM], "flipped head", &|s, r| s == VICTIM && not_snapshot(r));
    fx.overwrite_ref(&ha, good_b.clone());
    fx.overwrite_ref(&hb, good_a.clone());
    run(&[ha.to_string(), hb.to_string()], &[VICTIM, BYSTANDER], "swapped heads", &|_, r| not_snapshot(r));
    fx.overwrite_ref(&ha, good_a);
    fx.overwrite_ref(&hb, good_b);
    let snap = RefKey::new(KeyType::SnapshotRef, "snap").expect("key");
    let good = fx.raw.read_ref(&snap).expect("read").expect("exists").bytes;
    let mut bad = good.to_vec();
    bad[good.len() - 1] ^= 0x02;
    fx.overwrite_ref(&snap, Bytes::from(bad));
    run(&["snapshot \"snap\"".to_owned()], &[VICTIM, BYSTANDER], "flipped snapshot", &|_, r| !not_snapshot(r));
    fx.overwrite_ref(&snap, good);

    assert_eq!(battery(&fx.floe, &fx.base, &[], &[], "all restored", &|_, _| false, &|_, _| false).0, 0);
    let (failed_reads, ok_reads, cases) = tally.get();
    eprintln!(
        "[reliability] {} corruption: {cases} damages ({flips} random bit flips/truncations of data segments, 3 \
         damaged indexes and 1 swapped pair, 2 swapped data segment pairs, a flipped and a swapped version \
         record, a flipped and a swapped head, a flipped snapshot); {failed_reads} reads and verifications \
         failed with CorruptData naming the key, {ok_reads} others returned exactly the original data",
        store.kind
    );
}

#[test]
fn lmdb_damaged_objects_fail_loudly_and_nothing_else() {
    corruption(lmdb_store("floe-rel-corrupt"));
}

#[test]
fn s3_damaged_objects_fail_loudly_and_nothing_else() {
    let Some(endpoint) = s3_endpoint("s3_damaged_objects_fail_loudly_and_nothing_else") else { return };
    corruption(s3_store(&endpoint, "floe-rel-corrupt"));
}
