//! What the reliability harnesses and their child process (`floe-stress`, `src/bin/floe-stress.rs`)
//! share: the tagged tables concurrent appenders write, the crash writer's operations, the line
//! protocol children print, and a handle on a child whose output is read line by line.
//!
//! The protocol: a child prints `ready` once its store is open, then one line per event, each flushed
//! before the next step, so that when the child is killed the parent knows exactly what was acknowledged:
//! - `ack <writer> <seq> <version> <µs>`: an append returned successfully after `µs` and made `version`;
//! - `attempts <writer> <commits> <attempts> <µs>`: an appender's commit counters at the end, the last
//!   field its longest single commit attempt;
//! - `begin <seq> <op...>` / `ack-op <seq> <version|->`: the crash writer starts / finishes an operation;
//! - `done <summary>`: the child finished normally; `violation <what>`: a reader saw something wrong.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_engine::{IndexKind, Library, Table};

use crate::model::SymbolModel;
use crate::{Row, rows};

/// `FLOE_FULL=1` selects the long runs of the reliability harnesses.
pub fn full_mode() -> bool {
    std::env::var("FLOE_FULL").is_ok_and(|v| v == "1")
}

/// A small seeded PRNG (SplitMix64) for operation choices and kill delays; not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `[0, bound)` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A value in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as u64) as i64
    }
}

// ----- tagged appends -----------------------------------------------------------------------------

/// One row of a concurrent appender's table: which writer, which of its appends, which row of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// Writer number.
    pub writer: i64,
    /// The writer's append number (0-based).
    pub seq: i64,
    /// Row within the append.
    pub k: i64,
}

/// The schema of appenders' tables (row-count index, so appends from racing writers never conflict on
/// index order): `writer`, `seq`, `k`, `val` (a function of the other three) and `tag` (likewise, null
/// for every third row).
pub fn tagged_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("writer", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("k", DataType::Int64, false),
        Field::new("val", DataType::Float64, false),
        Field::new("tag", DataType::Utf8, true),
    ]))
}

fn val(t: Tag) -> f64 {
    (t.writer * 1_000_003 + t.seq * 101 + t.k) as f64 * 0.25
}

fn tag_text(t: Tag) -> Option<String> {
    ((t.writer + t.seq + t.k) % 3 != 0).then(|| format!("w{}s{}k{}", t.writer, t.seq, t.k))
}

/// The table of append `seq` of `writer`: `rows` rows.
pub fn tagged_table(writer: i64, seq: i64, rows: usize) -> Table {
    let tags: Vec<Tag> = (0..rows as i64).map(|k| Tag { writer, seq, k }).collect();
    let batch = RecordBatch::try_new(
        tagged_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(tags.iter().map(|t| t.writer))),
            Arc::new(Int64Array::from_iter_values(tags.iter().map(|t| t.seq))),
            Arc::new(Int64Array::from_iter_values(tags.iter().map(|t| t.k))),
            Arc::new(Float64Array::from_iter_values(tags.iter().map(|&t| val(t)))),
            Arc::new(StringArray::from_iter(tags.iter().map(|&t| tag_text(t)))),
        ],
    )
    .expect("columns match the schema");
    Table::from_batch(batch, IndexKind::RowCount).expect("valid tagged table")
}

/// The tags of a batch read back, checking every row's `val` and `tag` against its tag (so a torn or
/// mixed-up row is caught, not just a missing one).
///
/// # Errors
/// A description of the first bad row.
pub fn tags_of(b: &RecordBatch) -> Result<Vec<Tag>, String> {
    let col = |name: &str| -> Result<Arc<dyn Array>, String> {
        let i = b.schema().index_of(name).map_err(|_| format!("column {name} missing"))?;
        Ok(Arc::clone(b.column(i)))
    };
    let ints = |name: &str| -> Result<Int64Array, String> {
        col(name)?.as_any().downcast_ref::<Int64Array>().cloned().ok_or_else(|| format!("{name} is not int64"))
    };
    let (w, s, k) = (ints("writer")?, ints("seq")?, ints("k")?);
    let v = col("val")?;
    let v = v.as_any().downcast_ref::<Float64Array>().ok_or("val is not float64")?;
    let t = col("tag")?;
    let t = t.as_any().downcast_ref::<StringArray>().ok_or("tag is not utf8")?;
    let mut out = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let tag = Tag { writer: w.value(i), seq: s.value(i), k: k.value(i) };
        let text = t.is_valid(i).then(|| t.value(i).to_owned());
        if v.value(i) != val(tag) || text != tag_text(tag) {
            return Err(format!("row {i} {tag:?} has val {} tag {text:?}", v.value(i)));
        }
        out.push(tag);
    }
    Ok(out)
}

/// Checks that `tags` is a sequence of whole appends of `rows_per_append` rows (k = 0..n in order),
/// each (writer, seq) at most once and each writer's seqs increasing. Returns the appends in order.
///
/// # Errors
/// A description of the first violation.
pub fn appends_of(tags: &[Tag], rows_per_append: usize) -> Result<Vec<(i64, i64)>, String> {
    if !tags.len().is_multiple_of(rows_per_append) {
        return Err(format!("{} rows is not a whole number of {rows_per_append}-row appends", tags.len()));
    }
    let mut out = Vec::with_capacity(tags.len() / rows_per_append);
    let mut last_seq: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for (n, chunk) in tags.chunks(rows_per_append).enumerate() {
        let (w, s) = (chunk[0].writer, chunk[0].seq);
        for (k, t) in chunk.iter().enumerate() {
            if t.writer != w || t.seq != s || t.k != k as i64 {
                return Err(format!("append #{n} is torn: row {k} is {t:?}, expected w{w} s{s} k{k}"));
            }
        }
        if let Some(prev) = last_seq.insert(w, s)
            && prev >= s
        {
            return Err(format!("append #{n}: writer {w} seq {s} after seq {prev} (duplicate or reordered)"));
        }
        out.push((w, s));
    }
    Ok(out)
}

// ----- the crash writer's operations --------------------------------------------------------------

/// One operation of the crash writer, with everything needed to replay it on the model. Rows are
/// `crate::rows(start..end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashOp {
    /// `write` rows `start..end`.
    Write(i64, i64),
    /// `write_stream` rows `start..end`, in batches of up to 4 rows.
    StreamWrite(i64, i64),
    /// `append` rows `start..end`.
    Append(i64, i64),
    /// `append_stream` rows `start..end`, in batches of up to 4 rows.
    StreamAppend(i64, i64),
    /// `stage` rows `start..end` as two chunks (the later half first), then `finalize_staged` those two
    /// in append mode.
    StagedAppend(i64, i64),
    /// `update` range `[lo, hi]` with rows `start..end`.
    Update(i64, i64, i64, i64),
    /// `delete_data_in_range` `[lo, hi]`.
    DeleteRange(i64, i64),
    /// `prune_previous_versions`.
    Prune,
    /// `snapshot` of the latest version under this name.
    Snapshot(String),
    /// `delete_snapshot`.
    DeleteSnapshot(String),
}

impl CrashOp {
    /// The words of its `begin` line.
    pub fn to_words(&self) -> String {
        match self {
            CrashOp::Write(a, b) => format!("write {a} {b}"),
            CrashOp::StreamWrite(a, b) => format!("swrite {a} {b}"),
            CrashOp::Append(a, b) => format!("append {a} {b}"),
            CrashOp::StreamAppend(a, b) => format!("sappendstream {a} {b}"),
            CrashOp::StagedAppend(a, b) => format!("sappend {a} {b}"),
            CrashOp::Update(lo, hi, a, b) => format!("update {lo} {hi} {a} {b}"),
            CrashOp::DeleteRange(lo, hi) => format!("delrange {lo} {hi}"),
            CrashOp::Prune => "prune".into(),
            CrashOp::Snapshot(n) => format!("snapshot {n}"),
            CrashOp::DeleteSnapshot(n) => format!("delsnap {n}"),
        }
    }

    /// Parses [`CrashOp::to_words`].
    ///
    /// # Errors
    /// The line, when it does not parse.
    pub fn parse(words: &[&str]) -> Result<CrashOp, String> {
        let n = |i: usize| -> Result<i64, String> {
            words.get(i).and_then(|w| w.parse().ok()).ok_or_else(|| format!("bad op {words:?}"))
        };
        let s = |i: usize| -> Result<String, String> {
            words.get(i).map(|w| (*w).to_owned()).ok_or_else(|| format!("bad op {words:?}"))
        };
        Ok(match words.first().copied() {
            Some("write") => CrashOp::Write(n(1)?, n(2)?),
            Some("swrite") => CrashOp::StreamWrite(n(1)?, n(2)?),
            Some("append") => CrashOp::Append(n(1)?, n(2)?),
            Some("sappendstream") => CrashOp::StreamAppend(n(1)?, n(2)?),
            Some("sappend") => CrashOp::StagedAppend(n(1)?, n(2)?),
            Some("update") => CrashOp::Update(n(1)?, n(2)?, n(3)?, n(4)?),
            Some("delrange") => CrashOp::DeleteRange(n(1)?, n(2)?),
            Some("prune") => CrashOp::Prune,
            Some("snapshot") => CrashOp::Snapshot(s(1)?),
            Some("delsnap") => CrashOp::DeleteSnapshot(s(1)?),
            _ => return Err(format!("unknown op {words:?}")),
        })
    }

    /// Whether it makes a new version when it succeeds.
    pub fn makes_version(&self) -> bool {
        matches!(
            self,
            CrashOp::Write(..)
                | CrashOp::StreamWrite(..)
                | CrashOp::Append(..)
                | CrashOp::StreamAppend(..)
                | CrashOp::StagedAppend(..)
                | CrashOp::Update(..)
                | CrashOp::DeleteRange(..)
        )
    }

    /// Runs it against `lib`; the version made, if any.
    ///
    /// # Errors
    /// The engine's error.
    pub fn run(&self, lib: &Library, symbol: &str) -> floe_engine::Result<Option<u64>> {
        let t = |a: i64, b: i64| crate::table(&rows(a..b));
        Ok(match self {
            CrashOp::Write(a, b) => Some(lib.write(symbol, &t(*a, *b), None)?.version),
            CrashOp::StreamWrite(a, b) => {
                let all = rows(*a..*b);
                let batches = all.chunks(4).map(|c| Ok(crate::batch(c))).collect::<Vec<_>>();
                let ts = floe_engine::IndexKind::Timestamp("ts".into());
                Some(lib.write_stream(symbol, crate::schema(), ts, batches.into_iter(), None)?.version)
            }
            CrashOp::Append(a, b) => Some(lib.append(symbol, &t(*a, *b), None)?.version),
            CrashOp::StreamAppend(a, b) => {
                let all = rows(*a..*b);
                let batches = all.chunks(4).map(|c| Ok(crate::batch(c))).collect::<Vec<_>>();
                let ts = floe_engine::IndexKind::Timestamp("ts".into());
                Some(lib.append_stream(symbol, crate::schema(), ts, batches.into_iter(), None)?.version)
            }
            CrashOp::StagedAppend(a, b) => Some(staged_append(lib, symbol, *a, *b)?.version),
            CrashOp::Update(lo, hi, a, b) => Some(lib.update(symbol, &t(*a, *b), Some((*lo, *hi)), None)?.version),
            CrashOp::DeleteRange(lo, hi) => Some(lib.delete_data_in_range(symbol, (*lo, *hi))?.version),
            CrashOp::Prune => {
                lib.prune_previous_versions(symbol)?;
                None
            }
            CrashOp::Snapshot(name) => {
                lib.snapshot(name, None, Some(&[symbol.to_owned()]), &Default::default())?;
                None
            }
            CrashOp::DeleteSnapshot(name) => {
                lib.delete_snapshot(name)?;
                None
            }
        })
    }

    /// Applies it to the model of the symbol and its snapshots (name → rows).
    pub fn apply(&self, model: &mut SymbolModel, snapshots: &mut std::collections::BTreeMap<String, Vec<Row>>) {
        match self {
            CrashOp::Write(a, b) | CrashOp::StreamWrite(a, b) => {
                model.write(rows(*a..*b));
            }
            CrashOp::Append(a, b) | CrashOp::StreamAppend(a, b) | CrashOp::StagedAppend(a, b) => {
                model.append(&rows(*a..*b));
            }
            CrashOp::Update(lo, hi, a, b) => {
                model.update(&rows(*a..*b), *lo, *hi);
            }
            CrashOp::DeleteRange(lo, hi) => {
                model.update(&[], *lo, *hi);
            }
            CrashOp::Prune => model.prune(),
            CrashOp::Snapshot(name) => {
                let latest = model.latest().map(|v| model.versions[v].clone()).unwrap_or_default();
                snapshots.insert(name.clone(), latest);
            }
            CrashOp::DeleteSnapshot(name) => {
                snapshots.remove(name);
            }
        }
    }
}

/// Appends rows `a..b` to `symbol` through staging: the later half staged first, then the earlier,
/// then exactly those two chunks finalized in append mode (never other chunks left staged, such as a
/// crashed or failed operation's).
///
/// # Errors
/// The engine's error from any of the three calls.
pub fn staged_append(lib: &Library, symbol: &str, a: i64, b: i64) -> floe_engine::Result<floe_engine::VersionedItem> {
    let mid = a + (b - a) / 2;
    let late = lib.stage(symbol, &crate::table(&rows(mid..b)), None)?;
    let early = lib.stage(symbol, &crate::table(&rows(a..mid)), None)?;
    let only = [early.key, late.key];
    lib.finalize_staged(symbol, floe_engine::FinalizeMode::Append, None, Some(&only))
}

/// Chooses the crash writer's next operation from the latest rows `cur` and the snapshots it knows.
pub fn next_crash_op(rng: &mut Rng, cur: Option<&[Row]>, snapshots: &[String], seq: u64, tag: u64) -> CrashOp {
    let Some(cur) = cur else {
        let a = rng.range(0, 50);
        return CrashOp::Write(a, a + rng.range(1, 40));
    };
    let first = cur.first().map_or(0, |r| r.ts);
    let last = cur.last().map_or(-1, |r| r.ts);
    if cur.len() > 300 {
        let a = rng.range(0, 50);
        return CrashOp::Write(a, a + rng.range(5, 60));
    }
    match rng.below(100) {
        0..7 => {
            let a = rng.range(0, 100);
            CrashOp::Write(a, a + rng.range(0, 60))
        }
        7..10 => {
            let a = rng.range(0, 100);
            CrashOp::StreamWrite(a, a + rng.range(0, 60))
        }
        10..36 => {
            let a = last + 1 + rng.range(0, 3);
            CrashOp::Append(a, a + rng.range(1, 25))
        }
        36..42 => {
            let a = last + 1 + rng.range(0, 3);
            CrashOp::StreamAppend(a, a + rng.range(1, 25))
        }
        42..50 => {
            let a = last + 1 + rng.range(0, 3);
            CrashOp::StagedAppend(a, a + rng.range(2, 25))
        }
        50..68 => {
            let lo = rng.range(first - 5, last + 5);
            let hi = lo + rng.range(0, 30);
            let a = rng.range(lo, hi);
            let b = (a + rng.range(0, 10)).min(hi + 1);
            CrashOp::Update(lo, hi, a, b)
        }
        68..76 => {
            let lo = rng.range(first, last.max(first));
            CrashOp::DeleteRange(lo, lo + rng.range(0, 15))
        }
        76..92 => CrashOp::Prune,
        _ if snapshots.len() >= 3 => {
            CrashOp::DeleteSnapshot(snapshots[rng.below(snapshots.len() as u64) as usize].clone())
        }
        _ => CrashOp::Snapshot(format!("snap-{tag}-{seq}")),
    }
}

// ----- children -----------------------------------------------------------------------------------

/// A child process whose stdout arrives line by line on a channel.
#[derive(Debug)]
pub struct ChildProc {
    child: Child,
    lines: Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl ChildProc {
    /// Starts `exe` with `args`, stdout piped (stderr inherited, so a child's panic shows in the test).
    pub fn spawn(exe: &str, args: &[String]) -> Self {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {exe}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProc { child, lines: rx, reader: Some(reader), seen: Vec::new() }
    }

    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for a line starting with `prefix`; true if it came.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.starts_with(prefix);
                    self.seen.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Kills the child with SIGKILL, reaps it and collects every complete line it printed.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain()
    }

    /// Waits for the child to exit (up to `timeout`, then kills it and panics); returns every line and
    /// whether it exited successfully.
    pub fn finish(mut self, timeout: Duration) -> (Vec<String>, bool) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait().expect("try_wait") {
                Some(status) => return (self.drain(), status.success()),
                None if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let lines = self.drain();
                    panic!("child {} ran past {timeout:?}; its last lines: {:?}", self.child.id(), tail(&lines));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn drain(&mut self) -> Vec<String> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let mut out = std::mem::take(&mut self.seen);
        out.extend(self.lines.try_iter());
        out
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last few lines, for failure messages.
pub fn tail(lines: &[String]) -> &[String] {
    &lines[lines.len().saturating_sub(8)..]
}

/// Prints one protocol line and flushes it, so a kill right after loses nothing printed.
pub fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A closed pipe means the parent is gone: nothing useful is left to do.
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(3);
    }
}
