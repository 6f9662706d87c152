//! `floe-stress`: the child process of the reliability harnesses (`tests/tests/reliability_*.rs`).
//! Each subcommand opens a store by URI, prints `ready`, works, and prints one flushed line per
//! acknowledged step (protocol in `floe_tests::stress`), so a parent that kills it knows exactly what
//! was acknowledged.
//!
//! ```text
//! floe-stress append       --uri U --lib L --symbol S --writer N --count K [--rows R] [--max-reuse-ms A]
//! floe-stress read-check   --uri U --lib L --symbol S --until FILE [--rows R] [--seed X]
//! floe-stress prune        --uri U --lib L --symbol S --until FILE [--interval-ms M]
//! floe-stress vacuum       --uri U --lib L --until FILE [--grace-ms G] [--interval-ms M]
//! floe-stress crash-writer --uri U --lib L --symbol S --seed X
//! ```
//! `--until FILE`: loop until FILE exists. Exit status 0 on success, 1 on a violation or error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use floe_engine::{AsOf, Detail, ErrorKind, Floe, Library, PipelineOptions, ReadRequest};
use floe_tests::rows_of;
use floe_tests::stress::{CrashOp, Rng, appends_of, next_crash_op, say, tagged_table, tags_of};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else { fail("usage: floe-stress <command> --option value...") };
    let opts = Opts::parse(&args[1..]);
    match command.as_str() {
        "append" => append(&opts),
        "read-check" => read_check(&opts),
        "prune" => prune(&opts),
        "vacuum" => vacuum(&opts),
        "crash-writer" => crash_writer(&opts),
        other => fail(&format!("unknown command {other:?}")),
    }
}

fn fail(message: &str) -> ! {
    say(format!("violation {message}"));
    eprintln!("floe-stress: {message}");
    std::process::exit(1)
}

/// `--name value` pairs.
struct Opts(HashMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Self {
        let mut map = HashMap::new();
        for pair in args.chunks(2) {
            match pair {
                [k, v] if k.starts_with("--") => {
                    map.insert(k.trim_start_matches("--").to_owned(), v.clone());
                }
                _ => fail(&format!("bad arguments {pair:?}: expected --name value")),
            }
        }
        Opts(map)
    }

    fn str(&self, name: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| fail(&format!("missing --{name}")))
    }

    fn num(&self, name: &str, default: Option<u64>) -> u64 {
        match (self.0.get(name), default) {
            (Some(v), _) => v.parse().unwrap_or_else(|_| fail(&format!("--{name} {v:?} is not a number"))),
            (None, Some(d)) => d,
            (None, None) => fail(&format!("missing --{name}")),
        }
    }

    fn until(&self) -> PathBuf {
        PathBuf::from(self.str("until"))
    }

    /// Opens the store and the library (which the parent created), with `--max-reuse-ms` as the
    /// pipeline's `max_reuse_age` when given.
    fn library(&self) -> Library {
        let mut floe = Floe::open(&self.str("uri")).unwrap_or_else(|e| fail(&format!("open store: {e}")));
        if self.0.contains_key("max-reuse-ms") {
            let age = Duration::from_millis(self.num("max-reuse-ms", None));
            floe = floe.with_pipeline(PipelineOptions { max_reuse_age: age, ..PipelineOptions::default() });
        }
        floe.get_library(&self.str("lib")).unwrap_or_else(|e| fail(&format!("open library: {e}")))
    }
}

/// Appends `count` tagged tables of `rows` rows as writer `writer`: `ack <writer> <seq> <version> <µs>`
/// each (the last field: how long the append took, retries included), then
/// `attempts <writer> <commits> <attempts> <longest attempt µs>`.
fn append(opts: &Opts) {
    let lib = opts.library();
    let symbol = opts.str("symbol");
    let (writer, count, rows) = (opts.num("writer", None) as i64, opts.num("count", None), opts.num("rows", Some(2)));
    say("ready");
    for seq in 0..count as i64 {
        let table = tagged_table(writer, seq, rows as usize);
        let started = Instant::now();
        match lib.append(&symbol, &table, None) {
            Ok(item) => say(format!("ack {writer} {seq} {} {}", item.version, started.elapsed().as_micros())),
            Err(e) => fail(&format!("writer {writer} append {seq}: {e}")),
        }
    }
    // What a concurrent vacuum's grace must outlast (with max_reuse_age): the longest single attempt.
    let stats = lib.commit_stats();
    say(format!("attempts {writer} {} {} {}", stats.commits, stats.attempts, stats.longest_attempt.as_micros()));
    say(format!("done writer {writer}"));
}

/// Reads the latest and random older versions of an append-only tagged symbol until the stop file
/// appears; every read must be whole appends, each version `v` exactly `(v + 1) * rows` rows and a prefix
/// of every later version. A version deleted by a concurrent prune may be `NotFound`; nothing else may
/// fail.
fn read_check(opts: &Opts) {
    let lib = opts.library();
    let symbol = opts.str("symbol");
    let rows = opts.num("rows", Some(2)) as usize;
    let until = opts.until();
    let mut rng = Rng::new(opts.num("seed", Some(1)));
    say("ready");
    let (mut reads, mut old_reads, mut pruned, mut newest) = (0u64, 0u64, 0u64, 0u64);
    while !until.exists() {
        let latest = match lib.read(&symbol, &ReadRequest::default()) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound && e.detail() == Detail::SymbolNotFound && reads == 0 => {
                std::thread::sleep(Duration::from_millis(5));
                continue; // nothing written yet
            }
            Err(e) => fail(&format!("read latest: {e}")),
        };
        reads += 1;
        let v = latest.item.version;
        if v < newest {
            fail(&format!("latest went back from v{newest} to v{v}"));
        }
        newest = v;
        let tags = tags_of(&latest.data).unwrap_or_else(|e| fail(&format!("v{v}: {e}")));
        if tags.len() != (v as usize + 1) * rows {
            fail(&format!("v{v} has {} rows, expected {}", tags.len(), (v + 1) as usize * rows));
        }
        appends_of(&tags, rows).unwrap_or_else(|e| fail(&format!("v{v}: {e}")));
        let old = rng.below(v + 1);
        let request = ReadRequest { as_of: AsOf::Version(old as i64), ..Default::default() };
        match lib.read(&symbol, &request) {
            Ok(r) => {
                old_reads += 1;
                let old_tags = tags_of(&r.data).unwrap_or_else(|e| fail(&format!("v{old}: {e}")));
                if old_tags.len() != (old as usize + 1) * rows || old_tags[..] != tags[..old_tags.len()] {
                    fail(&format!(
                        "v{old} ({} rows) is not the {}-row prefix of v{v}",
                        old_tags.len(),
                        (old + 1) * rows as u64
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound && e.detail() == Detail::VersionNotFound => pruned += 1,
            Err(e) => fail(&format!("read v{old} (latest v{v}): {e}")),
        }
    }
    say(format!("done reads {reads} old_reads {old_reads} pruned_misses {pruned} newest {newest}"));
}

/// Prunes every `interval-ms` until the stop file appears.
fn prune(opts: &Opts) {
    let lib = opts.library();
    let symbol = opts.str("symbol");
    let interval = Duration::from_millis(opts.num("interval-ms", Some(20)));
    let until = opts.until();
    say("ready");
    let mut n = 0u64;
    while !until.exists() {
        lib.prune_previous_versions(&symbol).unwrap_or_else(|e| fail(&format!("prune: {e}")));
        n += 1;
        std::thread::sleep(interval);
    }
    say(format!("done prunes {n}"));
}

/// Vacuums the whole library with `grace-ms` every `interval-ms` until the stop file appears.
fn vacuum(opts: &Opts) {
    let lib = opts.library();
    let grace = Duration::from_millis(opts.num("grace-ms", Some(5000)));
    let interval = Duration::from_millis(opts.num("interval-ms", Some(50)));
    let until = opts.until();
    say("ready");
    let (mut runs, mut deleted, mut skipped) = (0u64, 0usize, 0usize);
    while !until.exists() {
        let report = lib.vacuum(None, grace).unwrap_or_else(|e| fail(&format!("vacuum: {e}")));
        runs += 1;
        deleted += report.deleted();
        skipped += report.skipped.len();
        std::thread::sleep(interval);
    }
    say(format!("done vacuums {runs} deleted {deleted} skipped {skipped}"));
}

/// Runs random writes, appends, updates, range deletes, prunes and snapshot changes on one symbol
/// forever (until killed): `begin <seq> <op>` before each, `ack-op <seq> <version|->` after.
fn crash_writer(opts: &Opts) {
    let lib = opts.library();
    let symbol = opts.str("symbol");
    let seed = opts.num("seed", None);
    let mut rng = Rng::new(seed);
    // Start from what the store holds now (the parent knows it too).
    let mut cur = match lib.read(&symbol, &ReadRequest::default()) {
        Ok(r) => Some(rows_of(&r.data)),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => fail(&format!("initial read: {e}")),
    };
    let mut snapshots: Vec<String> = lib
        .list_snapshots()
        .unwrap_or_else(|e| fail(&format!("list snapshots: {e}")))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    say("ready");
    let started = Instant::now();
    for seq in 0u64.. {
        let op = next_crash_op(&mut rng, cur.as_deref(), &snapshots, seq, seed);
        say(format!("begin {seq} {}", op.to_words()));
        let version = op.run(&lib, &symbol).unwrap_or_else(|e| fail(&format!("op {seq} {}: {e}", op.to_words())));
        say(format!("ack-op {seq} {}", version.map_or("-".to_owned(), |v| v.to_string())));
        // Track the latest rows locally, as the parent's model does.
        let mut model = floe_tests::model::SymbolModel::default();
        if let Some(c) = cur.take() {
            model.write(c);
        }
        let mut snaps = std::collections::BTreeMap::new();
        op.apply(&mut model, &mut snaps);
        cur = model.latest().map(|v| model.versions[v].clone());
        match &op {
            CrashOp::Snapshot(n) => snapshots.push(n.clone()),
            CrashOp::DeleteSnapshot(n) => snapshots.retain(|s| s != n),
            _ => {}
        }
        if started.elapsed() > Duration::from_secs(600) {
            fail("crash-writer was not killed within 10 minutes");
        }
    }
}
