//! Model-based fuzzing of the engine: the input is a fault plan and a sequence of operations on one
//! symbol (write, append, staged append, update, range delete, prune, delete all, delete one version,
//! snapshot and snapshot delete, vacuum), run against the engine over `FaultyStorage(MemoryStorage)` with injected
//! failures (before or after the effect) and against the plain model of `floe_tests::model`.
//!
//! After every operation, with faults off, the store must equal the model: the same live versions with
//! the same rows, the same snapshots with the same rows. An operation that succeeded must have taken
//! effect; one that failed because of an injected fault may or may not have (the store must then match
//! the model either before or after it); one that failed without a fault must be one the model refuses
//! too, and change nothing.
// Built by cargo-fuzz (cfg `fuzzing`) as a libFuzzer target, and included as a module by the test
// suite's fuzz smoke test (tests/tests/fuzz_smoke.rs), which calls `run` directly.
#![cfg_attr(fuzzing, no_main)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use floe_backends::faulty::{FaultPlan, FaultyStorage};
use floe_backends::{MemoryStorage, Storage};
use floe_engine::{AsOf, ErrorKind, Library, PipelineOptions, ReadRequest};
use floe_tests::model::SymbolModel;
use floe_tests::suite::small_options;
use floe_tests::{Row, rows, rows_of, table};

const SYMBOL: &str = "s";

#[derive(Debug, Clone)]
enum Op {
    Write(i64, i64),
    /// A write through `write_stream`, in batches of up to 3 rows.
    StreamWrite(i64, i64),
    Append(i64, i64),
    /// An append through `append_stream`, in batches of up to 3 rows.
    StreamAppend(i64, i64),
    /// Rows staged as two chunks (the later one first), then exactly those finalized in append mode.
    StagedAppend(i64, i64),
    Update(i64, i64, i64),
    DeleteRange(i64, i64),
    Prune,
    DeleteAll,
    DeleteVersion(u64),
    Snapshot,
    Vacuum,
    /// `compact` to this many rows per slice (the library's when `None`); whether it merges anything
    /// (so makes a version) is asked of `fragmentation` just before, with faults off.
    Compact(Option<usize>, bool),
}

/// The model: the symbol's versions and the snapshots (name -> rows).
#[derive(Debug, Clone, Default)]
struct Model {
    symbol: SymbolModel,
    snapshots: BTreeMap<String, Vec<Row>>,
}

/// What the store or the model looks like: live versions with their rows, snapshots with theirs.
type Shape = (Vec<(u64, Vec<Row>)>, Vec<(String, Vec<Row>)>);

impl Model {
    fn shape(&self) -> Shape {
        let m = &self.symbol;
        let live = (0..m.versions.len()).filter(|&v| !m.deleted[v]).map(|v| (v as u64, m.versions[v].clone()));
        (live.collect(), self.snapshots.iter().map(|(n, r)| (n.clone(), r.clone())).collect())
    }

    fn last_ts(&self) -> i64 {
        self.symbol.latest().and_then(|l| self.symbol.versions[l].last().map(|r| r.ts)).unwrap_or(-1)
    }

    /// Applies `op`; `Err` when the model refuses it (the engine must then refuse it too).
    fn apply(&mut self, op: &Op, step: usize) -> Result<(), &'static str> {
        let m = &mut self.symbol;
        match *op {
            Op::Write(a, b) | Op::StreamWrite(a, b) => {
                m.write(rows(a..b));
            }
            // Appends start at or after the current end (see the target), so the engine accepts them all.
            Op::Append(a, b) | Op::StreamAppend(a, b) | Op::StagedAppend(a, b) => {
                m.append(&rows(a..b));
            }
            Op::Update(lo, hi, len) => {
                m.update(&rows((lo..=hi).take(len as usize)), lo, hi);
            }
            Op::DeleteRange(lo, hi) => {
                if m.latest().is_none() {
                    return Err("no live version");
                }
                m.update(&[], lo, hi);
            }
            Op::Prune => m.prune(),
            Op::DeleteAll => {
                if m.latest().is_none() {
                    return Err("no live version");
                }
                m.delete_all();
            }
            Op::DeleteVersion(v) => {
                let v = v as usize;
                if v >= m.versions.len() || m.deleted[v] {
                    return Err("no such live version");
                }
                m.deleted[v] = true;
            }
            Op::Snapshot => {
                let Some(l) = m.latest() else { return Err("no live version") };
                let rows = m.versions[l].clone();
                self.snapshots.insert(format!("n{step}"), rows);
            }
            Op::Vacuum => {}
            Op::Compact(_, merges) => {
                let Some(l) = m.latest() else { return Err("no live version") };
                if merges {
                    let same = m.versions[l].clone();
                    m.write(same);
                }
            }
        }
        Ok(())
    }
}

fn run_op(lib: &Library, op: &Op, step: usize) -> floe_engine::Result<()> {
    let t = |a: i64, b: i64| table(&rows(a..b));
    match *op {
        Op::Write(a, b) => lib.write(SYMBOL, &t(a, b), None).map(|_| ()),
        Op::StreamWrite(a, b) => {
            let all = rows(a..b);
            let batches: Vec<_> = all.chunks(3).map(|c| Ok(floe_tests::batch(c))).collect();
            let ts = floe_engine::IndexKind::Timestamp("ts".into());
            lib.write_stream(SYMBOL, floe_tests::schema(), ts, batches.into_iter(), None).map(|_| ())
        }
        Op::Append(a, b) => lib.append(SYMBOL, &t(a, b), None).map(|_| ()),
        Op::StreamAppend(a, b) => {
            let all = rows(a..b);
            let batches: Vec<_> = all.chunks(3).map(|c| Ok(floe_tests::batch(c))).collect();
            let ts = floe_engine::IndexKind::Timestamp("ts".into());
            lib.append_stream(SYMBOL, floe_tests::schema(), ts, batches.into_iter(), None).map(|_| ())
        }
        Op::StagedAppend(a, b) => floe_tests::stress::staged_append(lib, SYMBOL, a, b).map(|_| ()),
        Op::Update(lo, hi, len) => {
            let r = rows((lo..=hi).take(len as usize));
            lib.update(SYMBOL, &table(&r), Some((lo, hi)), None).map(|_| ())
        }
        Op::DeleteRange(lo, hi) => lib.delete_data_in_range(SYMBOL, (lo, hi)).map(|_| ()),
        Op::Prune => lib.prune_previous_versions(SYMBOL),
        Op::DeleteAll => lib.delete(SYMBOL),
        Op::DeleteVersion(v) => lib.delete_versions(SYMBOL, &[v]),
        Op::Snapshot => lib.snapshot(&format!("n{step}"), None, Some(&[SYMBOL.to_owned()]), &BTreeMap::new()),
        Op::Vacuum => lib.vacuum(None, Duration::ZERO).map(|_| ()),
        Op::Compact(size, _) => lib.compact(SYMBOL, size).map(|_| ()),
    }
}

/// The store's shape, read with faults off.
fn observe(lib: &Library) -> Shape {
    let mut live = Vec::new();
    let versions = match lib.list_versions(Some(SYMBOL)) {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("list_versions: {e}"),
    };
    for v in versions.iter().filter(|v| !v.deleted) {
        let req = ReadRequest { as_of: AsOf::Version(v.version as i64), ..Default::default() };
        let data = lib.read(SYMBOL, &req).unwrap_or_else(|e| panic!("live v{} does not read: {e}", v.version));
        live.push((v.version, rows_of(&data.data)));
    }
    live.sort_by_key(|(v, _)| *v);
    let mut snaps = Vec::new();
    for (name, _) in lib.list_snapshots().expect("list snapshots") {
        let req = ReadRequest { as_of: AsOf::Snapshot(name.clone()), ..Default::default() };
        let data = lib.read(SYMBOL, &req).unwrap_or_else(|e| panic!("snapshot {name} does not read: {e}"));
        snaps.push((name, rows_of(&data.data)));
    }
    (live, snaps)
}

/// Reads the operations from the input, 1-4 bytes each.
fn decode_ops(data: &[u8]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut it = data.iter().copied();
    let mut next = || it.next();
    while let Some(b) = next() {
        let mut arg = || i64::from(next().unwrap_or(0) % 32);
        let op = match b % 13 {
            0 => {
                let a = arg();
                // Odd starts go through the stream path.
                if a % 2 == 0 { Op::Write(a, a + arg()) } else { Op::StreamWrite(a, a + arg()) }
            }
            1 | 2 => {
                let gap = arg() % 4;
                Op::Append(gap, arg() % 20) // made absolute below
            }
            3 => {
                let lo = arg();
                Op::Update(lo, lo + arg() % 16, arg() % 8)
            }
            4 => {
                let lo = arg();
                Op::DeleteRange(lo, lo + arg() % 16)
            }
            5 => Op::Prune,
            6 => Op::DeleteAll,
            7 => Op::DeleteVersion(arg() as u64 % 8),
            8 => Op::Snapshot,
            9 => {
                let gap = arg() % 4;
                Op::StagedAppend(gap, 2 + arg() % 20) // made absolute below
            }
            11 => {
                let gap = arg() % 4;
                Op::StreamAppend(gap, arg() % 20) // made absolute below
            }
            10 => Op::Compact([None, Some(2), Some(5)][(arg() % 3) as usize], false), // merges: asked below
            _ => Op::Vacuum,
        };
        ops.push(op);
        if ops.len() >= 12 {
            break;
        }
    }
    ops
}

/// One input: checks the target's properties on `data` (panics on a violation).
pub fn run(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let (seed, rate, after) = (u64::from(data[0]), f64::from(data[1] % 64) / 255.0, f64::from(data[2]) / 255.0);
    let ops = decode_ops(&data[3..]);
    let faulty = Arc::new(FaultyStorage::new(Arc::new(MemoryStorage::new()), FaultPlan::none()));
    let storage: Arc<dyn Storage> = faulty.clone();
    // One I/O worker keeps the storage call order (and so the fault pattern) close to deterministic.
    let pipeline = PipelineOptions { io_workers: 1, queue_capacity: 1, encode_wave: 1, ..PipelineOptions::default() };
    let lib = Library::new("fuzz", storage, small_options(), pipeline);
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        // Appends are encoded relative to the current end so that most are valid.
        let op = match op {
            Op::Append(gap, len) => {
                let a = model.last_ts() + gap;
                Op::Append(a, a + len)
            }
            Op::StagedAppend(gap, len) => {
                let a = model.last_ts() + gap;
                Op::StagedAppend(a, a + len)
            }
            Op::StreamAppend(gap, len) => {
                let a = model.last_ts() + gap;
                Op::StreamAppend(a, a + len)
            }
            Op::Compact(size, _) => {
                let merges = lib.fragmentation(SYMBOL, size).is_ok_and(|f| f.compacted_segments < f.segments);
                Op::Compact(size, merges)
            }
            other => other,
        };
        let before = model.shape();
        let mut after_model = model.clone();
        let refused = after_model.apply(&op, step);
        faulty.set_plan(
            FaultPlan::random(seed.wrapping_mul(1000) + step as u64)
                .with_failures_everywhere(rate)
                .with_after_effect_probability(after),
        );
        let result = run_op(&lib, &op, step);
        let struck = !faulty.injected().is_empty();
        faulty.set_plan(FaultPlan::none());
        let now = observe(&lib);
        let after_shape = after_model.shape();
        match (&result, refused) {
            (Ok(()), Ok(())) => assert_eq!(now, after_shape, "step {step} {op:?} succeeded"),
            (Ok(()), Err(why)) => panic!("step {step} {op:?} succeeded but the model refuses it ({why})"),
            (Err(e), _) if struck => {
                assert!(
                    now == before || (refused.is_ok() && now == after_shape),
                    "step {step} {op:?} failed with an injected fault ({e}); the store is neither before nor after it"
                );
                if now != before {
                    model = after_model;
                }
                continue;
            }
            (Err(e), Err(_)) => {
                assert!(matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::NotFound), "step {step} {op:?}: {e}");
                assert_eq!(now, before, "step {step} {op:?} was refused ({e}) but changed the store");
            }
            (Err(e), Ok(())) => panic!("step {step} {op:?} failed without a fault: {e}"),
        }
        if result.is_ok() {
            model = after_model;
        }
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));
