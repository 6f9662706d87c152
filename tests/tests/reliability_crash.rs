//! Reliability item 2: the crash loop. A writer process (`floe-stress crash-writer`) runs random writes,
//! appends, staged appends (stage two chunks, finalize them), updates, range deletes, prunes and
//! snapshot changes on one symbol; the harness kills it with SIGKILL at a random moment, reopens the
//! store and checks:
//! - it opens, and the symbol's live versions and snapshots are exactly the model's: every acknowledged
//!   operation took effect, and the one in flight either fully did or not at all;
//! - every live version, and every snapshot, reads back identically to the model; the version chain is
//!   consistent (ids newest first, commit times never decreasing, `as_of` a version's time finds it);
//! - staged chunks are left only by a kill during a staged append; they are deleted, as a user would,
//!   before the vacuum checks;
//! - vacuum with a long grace deletes no data (the crash's leftovers are young), vacuum without grace
//!   removes every leftover, a second pass finds nothing, and everything still reads the same.
//!
//! Short by default; `FLOE_FULL=1` runs 300 trials on LMDB (design/reliability.md). The S3 variant runs
//! only with `FLOE_S3_ENDPOINT` set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use floe_engine::{AsOf, Floe, Library, ReadRequest};
use floe_tests::harness::{PrivateExe, TestStore, lmdb_store, s3_endpoint, s3_store};
use floe_tests::model::SymbolModel;
use floe_tests::stress::{ChildProc, CrashOp, Rng, full_mode, tail};
use floe_tests::suite::small_options;
use floe_tests::{Row, rows_of};

const EXE: &str = env!("CARGO_BIN_EXE_floe-stress");
const SYMBOL: &str = "crashy";
const LIB: &str = "crash";
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
struct Stats {
    trials: usize,
    acked: usize,
    in_flight: usize,
    in_flight_committed: usize,
    versions_checked: usize,
    garbage_removed: usize,
    max_versions: usize,
    staged_left: usize,
    in_flight_by_op: BTreeMap<&'static str, usize>,
    by_op: BTreeMap<&'static str, usize>,
}

/// What the model says the symbol looks like: live version ids and snapshot names.
fn shape(model: &SymbolModel, snapshots: &BTreeMap<String, Vec<Row>>) -> (Vec<u64>, Vec<String>) {
    let live = (0..model.versions.len()).filter(|&v| !model.deleted[v]).map(|v| v as u64).collect();
    (live, snapshots.keys().cloned().collect())
}

/// What the store says it looks like.
fn observed(lib: &Library) -> (Vec<u64>, Vec<String>) {
    let mut live: Vec<u64> = match lib.list_versions(Some(SYMBOL)) {
        Ok(v) => v.into_iter().filter(|v| !v.deleted).map(|v| v.version).collect(),
        Err(e) => panic!("list_versions after the crash: {e}"),
    };
    live.sort_unstable();
    let snaps = lib.list_snapshots().expect("list snapshots").into_iter().map(|(n, _)| n).collect();
    (live, snaps)
}

fn op_name(op: &CrashOp) -> &'static str {
    match op {
        CrashOp::Write(..) => "write",
        CrashOp::StreamWrite(..) => "write_stream",
        CrashOp::Append(..) => "append",
        CrashOp::StreamAppend(..) => "append_stream",
        CrashOp::StagedAppend(..) => "staged_append",
        CrashOp::Update(..) => "update",
        CrashOp::DeleteRange(..) => "delete_range",
        CrashOp::Prune => "prune",
        CrashOp::Snapshot(_) => "snapshot",
        CrashOp::DeleteSnapshot(_) => "delete_snapshot",
    }
}

/// Every live version and snapshot reads back as the model says; the chain is consistent.
fn check(lib: &Library, model: &SymbolModel, snapshots: &BTreeMap<String, Vec<Row>>, trial: usize) -> usize {
    let versions = lib.list_versions(Some(SYMBOL)).expect("list versions");
    let ids: Vec<u64> = versions.iter().filter(|v| !v.deleted).map(|v| v.version).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "trial {trial}: ids newest first: {ids:?}");
    let mut times: Vec<(u64, i64)> =
        versions.iter().filter(|v| !v.deleted).map(|v| (v.version, v.timestamp_ns)).collect();
    times.sort_unstable();
    assert!(times.windows(2).all(|w| w[0].1 <= w[1].1), "trial {trial}: commit times never decrease: {times:?}");
    for &(v, ts) in &times {
        let req = ReadRequest { as_of: AsOf::Version(v as i64), ..Default::default() };
        let got = lib.read(SYMBOL, &req).unwrap_or_else(|e| panic!("trial {trial}: v{v} does not read: {e}"));
        assert_eq!(rows_of(&got.data), model.versions[v as usize], "trial {trial}: v{v} reads differently");
        // `as_of` its commit time finds the newest live version committed at or before it.
        let newest_at = times.iter().filter(|(_, t)| *t <= ts).map(|(v, _)| *v).max();
        let by_time = lib
            .read_metadata(SYMBOL, &AsOf::Timestamp(ts))
            .unwrap_or_else(|e| panic!("trial {trial}: as_of time of v{v}: {e}"));
        assert_eq!(Some(by_time.0.version), newest_at, "trial {trial}: as_of the time of v{v}");
    }
    match model.latest() {
        Some(l) => {
            let got = lib.read(SYMBOL, &ReadRequest::default()).expect("latest reads");
            assert_eq!(got.item.version, l as u64, "trial {trial}: latest id");
            assert_eq!(rows_of(&got.data), model.versions[l], "trial {trial}: latest rows");
        }
        None => assert!(lib.read(SYMBOL, &ReadRequest::default()).is_err()),
    }
    for (name, rows) in snapshots {
        let req = ReadRequest { as_of: AsOf::Snapshot(name.clone()), ..Default::default() };
        let got = lib.read(SYMBOL, &req).unwrap_or_else(|e| panic!("trial {trial}: snapshot {name}: {e}"));
        assert_eq!(&rows_of(&got.data), rows, "trial {trial}: snapshot {name} reads differently");
    }
    times.len() + snapshots.len()
}

/// Applies the child's acknowledged operations to the model; returns the operation in flight, if any.
fn replay(
    lines: &[String],
    model: &mut SymbolModel,
    snapshots: &mut BTreeMap<String, Vec<Row>>,
    stats: &mut Stats,
    trial: usize,
) -> Option<CrashOp> {
    let mut pending: Option<(u64, CrashOp)> = None;
    for line in lines {
        let words: Vec<&str> = line.split(' ').collect();
        match words[0] {
            "ready" => {}
            "begin" => {
                assert!(pending.is_none(), "trial {trial}: begin without ack before {line:?}");
                let seq: u64 = words[1].parse().expect("seq");
                let op = CrashOp::parse(&words[2..]).expect("op parses");
                pending = Some((seq, op));
            }
            "ack-op" => {
                let (seq, op) = pending.take().unwrap_or_else(|| panic!("trial {trial}: ack without begin"));
                assert_eq!(words[1].parse::<u64>().expect("seq"), seq, "trial {trial}: acks in order");
                if op.makes_version() {
                    let v: u64 = words[2].parse().unwrap_or_else(|_| panic!("trial {trial}: {line:?} has a version"));
                    assert_eq!(v, model.versions.len() as u64, "trial {trial}: {line:?}: ids contiguous");
                }
                op.apply(model, snapshots);
                stats.acked += 1;
                *stats.by_op.entry(op_name(&op)).or_default() += 1;
            }
            _ => panic!("trial {trial}: the writer reported {line:?}; last lines {:?}", tail(lines)),
        }
    }
    pending.map(|(_, op)| op)
}

fn crash_loop(store: TestStore, trials: usize, max_delay_ms: i64, seed: u64) {
    {
        let floe = Floe::open(&store.uri).expect("open store");
        floe.create_library(LIB, small_options()).expect("create library");
    }
    let exe = PrivateExe::new(EXE);
    let mut rng = Rng::new(seed);
    let mut model = SymbolModel::default();
    let mut snapshots: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut stats = Stats::default();
    let t0 = Instant::now();
    for trial in 0..trials {
        let args: Vec<String> = [
            "crash-writer",
            "--uri",
            &store.uri,
            "--lib",
            LIB,
            "--symbol",
            SYMBOL,
            "--seed",
            &(seed * 100_000 + trial as u64).to_string(),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut child = ChildProc::spawn(&exe.path, &args);
        assert!(child.wait_for("ready", Duration::from_secs(120)), "trial {trial}: the writer never got ready");
        // Mostly short lives (kills land in every phase of the first operations), some long ones.
        let delay = if rng.below(5) == 0 { rng.range(0, max_delay_ms * 4) } else { rng.range(0, max_delay_ms) };
        std::thread::sleep(Duration::from_millis(delay as u64));
        let lines = child.kill();

        let pending = replay(&lines, &mut model, &mut snapshots, &mut stats, trial);
        let staging = matches!(pending, Some(CrashOp::StagedAppend(..)));
        // Reopen and find out whether the operation in flight took effect: exactly one outcome must match.
        let floe = Floe::open(&store.uri).unwrap_or_else(|e| panic!("trial {trial}: the store does not open: {e}"));
        let lib = floe.get_library(LIB).unwrap_or_else(|e| panic!("trial {trial}: the library does not open: {e}"));
        let now = observed(&lib);
        if let Some(op) = pending {
            stats.in_flight += 1;
            *stats.in_flight_by_op.entry(op_name(&op)).or_default() += 1;
            let (mut m2, mut s2) = (model.clone(), snapshots.clone());
            op.apply(&mut m2, &mut s2);
            let (before, after) = (shape(&model, &snapshots), shape(&m2, &s2));
            if now == after && now != before {
                stats.in_flight_committed += 1;
                (model, snapshots) = (m2, s2);
            } else {
                assert_eq!(
                    now, before,
                    "trial {trial}: after a kill during {op:?} the store is neither before ({before:?}) nor after \
                     ({after:?}) it"
                );
            }
        } else {
            assert_eq!(now, shape(&model, &snapshots), "trial {trial}: the store differs from the model");
        }
        stats.versions_checked += check(&lib, &model, &snapshots, trial);
        stats.max_versions = stats.max_versions.max(now.0.len());

        // A kill during a staged append can leave its chunks staged, whether or not the finalize
        // committed them: the user deletes them (their segments then go to the vacuum unless the
        // committed version names them). Nothing else leaves staged chunks behind.
        let leftovers = lib.staged_chunks(SYMBOL).expect("list staged chunks");
        assert!(
            leftovers.is_empty() || staging,
            "trial {trial}: staged chunks left, not by a staged append: {leftovers:?}"
        );
        if !leftovers.is_empty() {
            stats.staged_left += leftovers.len();
            lib.delete_staged(SYMBOL, None).expect("delete staged leftovers");
        }
        // The crash's leftovers are young: a long grace keeps them all.
        let long = lib.vacuum(Some(SYMBOL), HOUR).expect("vacuum with grace");
        assert!(long.skipped.is_empty(), "trial {trial}: {long:?}");
        assert_eq!(long.deleted_data + long.deleted_index, 0, "trial {trial}: young objects deleted: {long:?}");
        let zero = lib.vacuum(Some(SYMBOL), Duration::ZERO).expect("vacuum");
        stats.garbage_removed += zero.deleted() + long.deleted();
        let again = lib.vacuum(Some(SYMBOL), Duration::ZERO).expect("vacuum again");
        assert_eq!(
            (again.deleted(), again.kept_young, again.reachable),
            (0, 0, again.examined),
            "trial {trial}: a second vacuum found more: {again:?}"
        );
        check(&lib, &model, &snapshots, trial);
        stats.trials += 1;
        drop(lib);
        drop(floe);
    }
    eprintln!(
        "[reliability] {} crash loop: {} kills in {:.1} s; {} operations acknowledged {:?}; killed during an \
         operation {} times ({} of them had committed; by operation {:?}); {} version/snapshot reads checked; vacuum removed {} \
         leftover objects; {} staged chunks left by kills deleted; at most {} live versions",
        store.kind,
        stats.trials,
        t0.elapsed().as_secs_f64(),
        stats.acked,
        stats.by_op,
        stats.in_flight,
        stats.in_flight_committed,
        stats.in_flight_by_op,
        stats.versions_checked,
        stats.garbage_removed,
        stats.staged_left,
        stats.max_versions,
    );
    assert!(stats.in_flight > 0, "no kill landed during an operation");
}

#[test]
fn lmdb_writer_killed_at_random_moments() {
    let trials = if full_mode() { 300 } else { 40 };
    crash_loop(lmdb_store("floe-rel-crash"), trials, 150, 1);
}

#[test]
fn s3_writer_killed_at_random_moments() {
    let Some(endpoint) = s3_endpoint("s3_writer_killed_at_random_moments") else { return };
    let trials = if full_mode() { 200 } else { 4 };
    crash_loop(s3_store(&endpoint, "floe-rel-crash"), trials, 800, 2);
}
