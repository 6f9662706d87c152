//! Reliability item 1: concurrent writers in separate processes (`floe-stress append`), on LMDB and S3.
//!
//! - `appends`: N processes append K tagged tables each to one symbol. Every acknowledged append is a
//!   version; versions are exactly 0..N*K; version v holds (v+1)*R rows whose last R are the append that
//!   acknowledged v; the latest holds every append exactly once, in version order.
//! - `mixed`: the same writers, plus reader processes reading the latest and random older versions
//!   (whole appends, the right row count, a prefix of the latest, or `NotFound` once pruned), a pruner
//!   and a vacuum with a short grace, all at once. Nothing may fail; afterwards the same checks hold for
//!   every version still live, and a final vacuum leaves exactly what is reachable.
//!
//! Short by default; `FLOE_FULL=1` runs 8 × 1,000 on LMDB, 8 × 250 on S3 (design/reliability.md). S3
//! variants run only with `FLOE_S3_ENDPOINT` set.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use floe_engine::{AsOf, Floe, Library, LibraryOptions, ReadRequest};
use floe_tests::harness::{PrivateExe, TestStore, lmdb_store, s3_endpoint, s3_store};
use floe_tests::stress::{ChildProc, appends_of, full_mode, tags_of, tail};

const EXE: &str = env!("CARGO_BIN_EXE_floe-stress");
const ROWS: usize = 2;
const SYMBOL: &str = "shared";

struct Plan {
    writers: usize,
    count: usize,
    readers: usize,
    /// A writer's time allowance per append (its deadline is at least an hour).
    seconds_per_append: u64,
    /// Pause between the pruner's and the vacuum's passes (ms). On S3 every vacuum pass lists every
    /// key of the library: moto, one Python process, spent most of its time listing at 100 ms and
    /// committed ~0.3 appends/s, so the S3 runs pause longer.
    prune_every_ms: u64,
    vacuum_every_ms: u64,
    /// The vacuum's grace, and the writers' `max_reuse_age`: the grace must outlast the longest
    /// commit attempt plus that age (checked after the run).
    grace: Duration,
    max_reuse_age: Duration,
}

fn plan(kind: &str) -> Plan {
    match (full_mode(), kind) {
        // moto, a Python server, commits ~2 appends/s under this contention: 8 x 1,000 takes over an
        // hour per test there, so the S3 full run defaults to 250 each (FLOE_S3_FULL_APPENDS=1000 for more).
        (true, "s3") => {
            let count = std::env::var("FLOE_S3_FULL_APPENDS").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
            Plan { writers: 8, count, readers: 2, ..Plan::S3 }
        }
        (true, _) => Plan { writers: 8, count: 1000, readers: 2, ..Plan::LMDB },
        (false, "s3") => Plan { writers: 4, count: 10, readers: 1, ..Plan::S3 },
        (false, _) => Plan { writers: 8, count: 15, readers: 2, ..Plan::LMDB },
    }
}

impl Plan {
    /// LMDB: a 10 s grace over writers that reuse their segments for 2 s at most, so the full run's
    /// vacuum deletes pruned data while appends race.
    const LMDB: Plan = Plan {
        writers: 8,
        count: 1000,
        readers: 2,
        seconds_per_append: 8,
        prune_every_ms: 30,
        vacuum_every_ms: 100,
        grace: Duration::from_secs(10),
        max_reuse_age: Duration::from_secs(2),
    };
    /// S3 (moto): the engine's default reuse age (10 s) and a 120 s grace; moto's single attempts
    /// take seconds under this load.
    const S3: Plan = Plan {
        writers: 8,
        count: 250,
        readers: 2,
        seconds_per_append: 30,
        prune_every_ms: 300,
        vacuum_every_ms: 2000,
        grace: Duration::from_secs(120),
        max_reuse_age: Duration::from_secs(10),
    };
}

fn options() -> LibraryOptions {
    // Small segments, so appends cross segment boundaries and tail merging rewrites segments often.
    LibraryOptions { rows_per_segment: 64, columns_per_segment: 3, dynamic_schema: false }
}

fn args(store: &TestStore, lib: &str, command: &str, extra: &[(&str, String)]) -> Vec<String> {
    let mut out = vec![command.to_owned(), "--uri".into(), store.uri.clone(), "--lib".into(), lib.to_owned()];
    for (k, v) in extra {
        out.push(format!("--{k}"));
        out.push(v.clone());
    }
    out
}

/// Starts the appenders; returns them once all are ready (so they really race).
fn start_writers(exe: &str, store: &TestStore, lib: &str, plan: &Plan) -> Vec<ChildProc> {
    let mut children: Vec<ChildProc> = (0..plan.writers)
        .map(|w| {
            let extra = [
                ("symbol", SYMBOL.to_owned()),
                ("writer", w.to_string()),
                ("count", plan.count.to_string()),
                ("rows", ROWS.to_string()),
                ("max-reuse-ms", plan.max_reuse_age.as_millis().to_string()),
            ];
            ChildProc::spawn(exe, &args(store, lib, "append", &extra))
        })
        .collect();
    for c in &mut children {
        assert!(c.wait_for("ready", Duration::from_secs(60)), "writer {} never got ready", c.id());
    }
    children
}

/// What the appenders acknowledged: `version -> (writer, seq)`, every append's duration (µs, commit
/// retries included), sorted, and their commit attempts.
struct Acks {
    by_version: BTreeMap<u64, (i64, i64)>,
    micros: Vec<u64>,
    /// Commit attempts of all writers (won or lost).
    attempts: u64,
    /// The longest single commit attempt of any writer.
    longest_attempt: Duration,
}

impl Acks {
    /// "p50 / p99 / max" append latency in ms.
    fn latency(&self) -> String {
        let p = |q: f64| self.micros[((self.micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        format!(
            "append latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} commit attempts, longest {:.1} ms",
            p(0.5),
            p(0.99),
            p(1.0),
            self.attempts,
            self.longest_attempt.as_secs_f64() * 1000.0
        )
    }
}

/// Waits for the appenders and collects their acknowledgements, checking that each acknowledged all
/// its appends in order.
fn finish_writers(children: Vec<ChildProc>, plan: &Plan) -> Acks {
    let mut by_version = BTreeMap::new();
    let mut micros = Vec::new();
    let (mut attempts, mut longest_attempt) = (0, Duration::ZERO);
    for (w, c) in children.into_iter().enumerate() {
        // An hour, or more for the long S3 runs: moto commits ~3 appends/s across 8 plain writers, and
        // as few as 0.3/s with readers, a pruner and a vacuum competing for it.
        let (lines, ok) = c.finish(Duration::from_secs(3600.max(plan.seconds_per_append * plan.count as u64)));
        assert!(ok, "writer {w} failed: {:?}", tail(&lines));
        let acks: Vec<(i64, i64, u64)> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("ack "))
            .map(|l| {
                let p: Vec<&str> = l.split(' ').collect();
                micros.push(p[3].parse::<u64>().expect("duration"));
                (p[0].parse().expect("writer"), p[1].parse().expect("seq"), p[2].parse().expect("version"))
            })
            .collect();
        assert_eq!(acks.len(), plan.count, "writer {w} acknowledged {} appends", acks.len());
        let counters: Vec<u64> = lines
            .iter()
            .find_map(|l| l.strip_prefix("attempts "))
            .unwrap_or_else(|| panic!("writer {w} reported no attempts"))
            .split(' ')
            .map(|f| f.parse().expect("a count"))
            .collect();
        assert_eq!(counters[1], plan.count as u64, "writer {w} committed every append");
        assert!(counters[2] >= counters[1], "writer {w}: at least one attempt per commit");
        attempts += counters[2];
        longest_attempt = longest_attempt.max(Duration::from_micros(counters[3]));
        for (i, &(writer, seq, version)) in acks.iter().enumerate() {
            assert_eq!((writer, seq), (w as i64, i as i64), "writer {w}'s acknowledgements in order");
            assert!(by_version.insert(version, (writer, seq)).is_none(), "version {version} acknowledged twice");
        }
    }
    micros.sort_unstable();
    Acks { by_version, micros, attempts, longest_attempt }
}

/// The checks after the run: versions contiguous, every live version holds exactly the appends
/// acknowledged up to it, the latest holds every append once.
fn verify(lib: &Library, acks: &BTreeMap<u64, (i64, i64)>, every_version_live: bool) {
    let total = acks.len() as u64;
    assert_eq!(acks.keys().copied().collect::<Vec<_>>(), (0..total).collect::<Vec<_>>(), "versions are 0..{total}");
    let latest = lib.read(SYMBOL, &ReadRequest::default()).expect("read latest");
    assert_eq!(latest.item.version, total - 1);
    let tags = tags_of(&latest.data).expect("latest rows are intact");
    let order = appends_of(&tags, ROWS).expect("latest is whole appends");
    assert_eq!(order, acks.values().copied().collect::<Vec<_>>(), "every append once, in version order");
    let live: Vec<u64> = lib
        .list_versions(Some(SYMBOL))
        .expect("list versions")
        .into_iter()
        .filter(|v| !v.deleted)
        .map(|v| v.version)
        .collect();
    if every_version_live {
        assert_eq!(live.len() as u64, total, "no version lost");
    }
    let full_every = (total / 40).max(1);
    for v in live {
        let as_of = AsOf::Version(v as i64);
        let d = lib.get_description(SYMBOL, &as_of).expect("describe");
        assert_eq!(d.row_count, (v + 1) * ROWS as u64, "v{v} row count");
        // The append that made v is its last rows.
        let r0 = (v as usize * ROWS) as i64;
        let req = ReadRequest { as_of: as_of.clone(), row_range: Some((r0, r0 + ROWS as i64)), ..Default::default() };
        let last = appends_of(&tags_of(&lib.read(SYMBOL, &req).expect("tail read").data).expect("intact"), ROWS)
            .expect("one append");
        assert_eq!(last, vec![acks[&v]], "v{v} ends with the append that acknowledged it");
        if v % full_every == 0 || v + 1 == total {
            let whole = tags_of(&lib.read(SYMBOL, &ReadRequest { as_of, ..Default::default() }).expect("read").data)
                .expect("intact");
            assert_eq!(whole[..], tags[..whole.len()], "v{v} is a prefix of the latest");
        }
    }
}

fn appends(store: TestStore) {
    let plan = plan(store.kind);
    let exe = PrivateExe::new(EXE);
    let floe = Floe::open(&store.uri).expect("open store");
    let lib = floe.create_library("appends", options()).expect("create library");
    let t0 = Instant::now();
    let writers = start_writers(&exe.path, &store, "appends", &plan);
    let acks = finish_writers(writers, &plan);
    let elapsed = t0.elapsed();
    verify(&lib, &acks.by_version, true);
    eprintln!(
        "[reliability] {} appends: {} processes x {} appends = {} versions in {:.1} s ({:.0} commits/s, {}), \
         verified in {:.1} s",
        store.kind,
        plan.writers,
        plan.count,
        acks.by_version.len(),
        elapsed.as_secs_f64(),
        acks.by_version.len() as f64 / elapsed.as_secs_f64(),
        acks.latency(),
        t0.elapsed().as_secs_f64() - elapsed.as_secs_f64()
    );
}

fn mixed(store: TestStore) {
    let plan = plan(store.kind);
    let exe = PrivateExe::new(EXE);
    let floe = Floe::open(&store.uri).expect("open store");
    let lib = floe.create_library("mixed", options()).expect("create library");
    let stop = store.scratch.path().join("stop");
    let until = ("until", stop.display().to_string());
    let sym = ("symbol", SYMBOL.to_owned());
    let mut others: Vec<(String, ChildProc)> = Vec::new();
    for r in 0..plan.readers {
        let extra = [sym.clone(), until.clone(), ("rows", ROWS.to_string()), ("seed", (r + 1).to_string())];
        others.push((format!("reader {r}"), ChildProc::spawn(&exe.path, &args(&store, "mixed", "read-check", &extra))));
    }
    let extra = [sym.clone(), until.clone(), ("interval-ms", plan.prune_every_ms.to_string())];
    others.push(("pruner".into(), ChildProc::spawn(&exe.path, &args(&store, "mixed", "prune", &extra))));
    // The grace must outlast the longest commit attempt plus the writers' max_reuse_age: a rebased
    // append reuses the segments an earlier attempt wrote only while they are younger than that age, so
    // nothing it names is older than age + one attempt when its commit lands (design/reliability.md,
    // "Vacuum"). moto commits far more slowly than LMDB.
    let grace = plan.grace;
    let extra =
        [until.clone(), ("grace-ms", grace.as_millis().to_string()), ("interval-ms", plan.vacuum_every_ms.to_string())];
    others.push(("vacuum".into(), ChildProc::spawn(&exe.path, &args(&store, "mixed", "vacuum", &extra))));
    for (name, c) in &mut others {
        assert!(c.wait_for("ready", Duration::from_secs(60)), "{name} never got ready");
    }
    let t0 = Instant::now();
    let writers = start_writers(&exe.path, &store, "mixed", &plan);
    let acks = finish_writers(writers, &plan);
    let elapsed = t0.elapsed();
    std::fs::write(&stop, b"stop").expect("create the stop file");
    let mut summary = Vec::new();
    for (name, c) in others {
        let (lines, ok) = c.finish(Duration::from_secs(600));
        assert!(ok, "{name} failed: {:?}", tail(&lines));
        let done = lines.iter().find_map(|l| l.strip_prefix("done ")).unwrap_or("(no summary)").to_owned();
        summary.push(format!("{name}: {done}"));
    }
    // The run is only a test of concurrent vacuuming if its grace held the bound.
    let bound = acks.longest_attempt + plan.max_reuse_age;
    assert!(
        bound < grace,
        "longest commit attempt {:?} + max_reuse_age is {bound:?}, not within the vacuum's grace {grace:?}",
        acks.longest_attempt
    );
    verify(&lib, &acks.by_version, false);
    // Everything stopped: a vacuum without grace leaves exactly what is reachable, and the data stands.
    let report = lib.vacuum(None, Duration::ZERO).expect("final vacuum");
    assert!(report.skipped.is_empty(), "{report:?}");
    let again = lib.vacuum(None, Duration::ZERO).expect("second vacuum");
    assert_eq!((again.deleted(), again.kept_young, again.reachable), (0, 0, again.examined), "{again:?}");
    verify(&lib, &acks.by_version, false);
    eprintln!(
        "[reliability] {} mixed: {} writers x {} appends in {:.1} s ({}) with {} (vacuum grace {grace:?}); final \
         vacuum removed {} objects",
        store.kind,
        plan.writers,
        plan.count,
        elapsed.as_secs_f64(),
        acks.latency(),
        summary.join("; "),
        report.deleted()
    );
}

#[test]
fn lmdb_processes_append_concurrently() {
    appends(lmdb_store("floe-rel-appends"));
}

#[test]
fn lmdb_mixed_writers_readers_pruner_vacuum() {
    mixed(lmdb_store("floe-rel-mixed"));
}

#[test]
fn s3_processes_append_concurrently() {
    let Some(endpoint) = s3_endpoint("s3_processes_append_concurrently") else { return };
    appends(s3_store(&endpoint, "floe-rel-appends"));
}

#[test]
fn s3_mixed_writers_readers_pruner_vacuum() {
    let Some(endpoint) = s3_endpoint("s3_mixed_writers_readers_pruner_vacuum") else { return };
    mixed(s3_store(&endpoint, "floe-rel-mixed"));
}
