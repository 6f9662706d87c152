//! Checks with racing threads: reference compare-and-swap races, create-only put races, readers
//! racing a writer.
//!
//! Threads meet at barriers; a thread that hits an error keeps meeting them (and every thread stops
//! at the same round), so a failing backend makes the check fail instead of hang.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_formats::{KeyType, RefKey};

use super::ConformanceConfig;
use super::support::{
    CheckError, During, Outcome, byte_diff, data, ensure, is_already_exists, is_conflict, no_panic, pattern, reference,
};
use crate::rng::SplitMix64;
use crate::storage::{RefExpectation, RefToken, Storage};

/// The first failure of any thread; later ones are usually consequences.
#[derive(Default)]
struct FirstFailure(Mutex<Option<CheckError>>);

impl FirstFailure {
    fn record(&self, e: CheckError) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
    }

    fn into_result(self) -> Outcome {
        match self.0.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn parse_round(bytes: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (round, winner) = text.strip_prefix("round ")?.split_once(" by ")?;
    Some((round.parse().ok()?, winner.parse().ok()?))
}

/// `cas_threads` threads (default 16) race for `cas_rounds` rounds (default 1,000) to advance one
/// reference. Each round every thread reads the reference, all meet at a barrier, then all try
/// `write_ref(At(token read))`: exactly one must win and the others get `Conflict`; the next round
/// checks the value is the winner's, so no update is lost.
///
/// # Errors
/// A [`super::CheckError`] naming the round, the number of winners or the value found.
pub fn cas_race_one_winner_per_round(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "cas race");
    let attempt =
        |_: usize, _: usize, value: Bytes, token: &RefToken| storage.write_ref(&key, value, RefExpectation::At(token));
    race_rounds(storage, &key, config.cas_threads.max(2), config.cas_rounds, "write_ref", &attempt).map(|_| ())
}

/// The object thread `me` commits with its attempt in `round` of [`commit_ref_race_one_winner_per_round`].
fn commit_race_object(round: usize, me: usize) -> (floe_formats::AtomKey, Bytes) {
    (data("commit race", (round * 1_000 + me) as u64), Bytes::from(format!("object of thread {me} in round {round}")))
}

/// As [`cas_race_one_winner_per_round`], with `commit_ref` writing one object per attempt along
/// with the reference, for `commit_rounds` rounds (default 100): exactly one commit wins each round,
/// and every winner's object is readable afterwards.
///
/// # Errors
/// A [`super::CheckError`] naming the round, the number of winners, the value found or the winner's
/// missing object.
pub fn commit_ref_race_one_winner_per_round(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let key = reference(KeyType::VersionRef, "commit race");
    let attempt = |me: usize, round: usize, value: Bytes, token: &RefToken| {
        storage.commit_ref(vec![commit_race_object(round, me)], &key, value, RefExpectation::At(token))
    };
    let winners = race_rounds(storage, &key, config.cas_threads.max(2), config.commit_rounds, "commit_ref", &attempt)?;
    for (round, winner) in winners.into_iter().enumerate() {
        let (object, bytes) = commit_race_object(round, winner);
        let got = storage.get(&object).during(|| format!("get {object}, committed by the winner of round {round}"))?;
        super::support::same_bytes(&bytes, &got, || format!("get {object}, committed by the winner of round {round}"))?;
    }
    Ok(())
}

/// What one thread does to advance the reference: `(thread, round, new value, token read)`.
type Attempt<'a> = dyn Fn(usize, usize, Bytes, &RefToken) -> crate::Result<RefToken> + Sync + 'a;

/// Runs the barrier-per-round race of [`cas_race_one_winner_per_round`] with `attempt` as the write;
/// returns the winner of each round.
fn race_rounds(
    storage: &dyn Storage,
    key: &RefKey,
    threads: usize,
    rounds: usize,
    op: &str,
    attempt: &Attempt<'_>,
) -> Outcome<Vec<usize>> {
    storage.write_ref(key, Bytes::from("round 0 by 0"), RefExpectation::Absent).during(|| format!("create {key}"))?;
    let barrier = Barrier::new(threads);
    let stop = AtomicBool::new(false);
    let failure = FirstFailure::default();
    let wins: Vec<AtomicUsize> = (0..rounds).map(|_| AtomicUsize::new(0)).collect();
    let winner_of: Vec<AtomicUsize> = (0..rounds).map(|_| AtomicUsize::new(usize::MAX)).collect();
    let fail = |e: CheckError| {
        failure.record(e);
        stop.store(true, Ordering::SeqCst);
    };

    std::thread::scope(|s| {
        for me in 0..threads {
            let (barrier, stop, wins, winner_of, fail) = (&barrier, &stop, &wins, &winner_of, &fail);
            s.spawn(move || {
                for round in 0..rounds {
                    // Phase 1: everyone reads the state the previous round left.
                    barrier.wait();
                    // Checked by every thread before reading, so this precise message is the one recorded.
                    if let Some(previous) = round.checked_sub(1) {
                        let n = wins[previous].load(Ordering::SeqCst);
                        if n != 1 {
                            fail(CheckError::new(format!(
                                "round {previous}: {n} of {threads} threads won the compare-and-swap; exactly one must"
                            )));
                        }
                    }
                    let token = match no_panic(|| format!("read_ref {key}"), || storage.read_ref(key)) {
                        Ok(Ok(Some(v))) => {
                            let expected_winner = round.checked_sub(1).map(|r| winner_of[r].load(Ordering::SeqCst));
                            match (parse_round(&v.bytes), expected_winner) {
                                (Some((r, _)), _) if r != round => {
                                    fail(CheckError::new(format!(
                                        "round {round}: thread {me} read {key} = {:?}, expected round {round}: an update \
                                         was lost or a refused write took effect",
                                        String::from_utf8_lossy(&v.bytes)
                                    )));
                                    None
                                }
                                (Some((_, w)), Some(expected)) if w != expected => {
                                    fail(CheckError::new(format!(
                                        "round {round}: thread {me} read the value of thread {w}, but thread \
                                         {expected} was told it won round {}",
                                        round - 1
                                    )));
                                    None
                                }
                                (None, _) => {
                                    fail(CheckError::new(format!(
                                        "round {round}: {key} holds {:?}, not a value any thread wrote",
                                        String::from_utf8_lossy(&v.bytes)
                                    )));
                                    None
                                }
                                _ => Some(v.token),
                            }
                        }
                        Ok(Ok(None)) => {
                            fail(CheckError::new(format!("round {round}: {key} vanished")));
                            None
                        }
                        Ok(Err(e)) => {
                            fail(CheckError::new(format!("round {round}: read_ref {key} failed: {e} ({e:?})")));
                            None
                        }
                        Err(e) => {
                            fail(e);
                            None
                        }
                    };
                    // Phase 2: everyone tries to advance from the same token.
                    barrier.wait();
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(token) = token else { continue };
                    let value = Bytes::from(format!("round {} by {me}", round + 1));
                    match no_panic(|| format!("{op} {key}"), || attempt(me, round, value, &token)) {
                        Ok(Ok(new_token)) => {
                            if new_token == token {
                                fail(CheckError::new(format!(
                                    "round {round}: the winning write returned the token it replaced ({token:?})"
                                )));
                            }
                            // Record the winner before counting the win: phase 1 reads them in that order.
                            winner_of[round].store(me, Ordering::SeqCst);
                            wins[round].fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Err(e)) if is_conflict(&e) => {}
                        Ok(Err(e)) => fail(CheckError::new(format!(
                            "round {round}: thread {me}'s {op} failed with {e} ({e:?}) instead of succeeding or \
                             reporting Conflict"
                        ))),
                        Err(e) => fail(e),
                    }
                }
            });
        }
    });
    failure.into_result()?;
    // The last round is verified here, as no later round reads it.
    if let Some(last) = rounds.checked_sub(1) {
        let n = wins[last].load(Ordering::SeqCst);
        ensure!(n == 1, "round {last}: {n} of {threads} threads won the compare-and-swap; exactly one must");
    }
    let end = storage.read_ref(key).during(|| format!("read_ref {key} after the race"))?;
    let end = end.and_then(|v| parse_round(&v.bytes));
    ensure!(end.is_some_and(|(r, _)| r == rounds), "after {rounds} rounds {key} says {end:?}, expected round {rounds}");
    Ok(winner_of.iter().map(|w| w.load(Ordering::SeqCst)).collect())
}

/// `cas_threads` threads each make `cas_increments_per_thread` successful read-increment-CAS updates
/// of one counter, retrying on `Conflict`: the counter ends at the total, and each value was written
/// by exactly one successful write.
///
/// # Errors
/// A [`super::CheckError`] with the final count or the doubly written value.
pub fn cas_counter_loses_no_update(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let threads = config.cas_threads.max(2);
    let per_thread = config.cas_increments_per_thread;
    let total = threads * per_thread;
    let key = reference(KeyType::VersionRef, "counter");
    storage.write_ref(&key, Bytes::from("0"), RefExpectation::Absent).during(|| format!("create {key}"))?;
    let failure = FirstFailure::default();
    let stop = AtomicBool::new(false);
    let written: Mutex<Vec<usize>> = Mutex::new(Vec::with_capacity(total));
    // Enough for heavy contention (every thread retries once per success of every other) many times over.
    let max_attempts = per_thread * threads * 50 + 100;

    std::thread::scope(|s| {
        for me in 0..threads {
            let (failure, stop, written, key) = (&failure, &stop, &written, &key);
            s.spawn(move || {
                let attempt = || -> Outcome<Option<usize>> {
                    let current = no_panic(|| format!("read_ref {key}"), || storage.read_ref(key))?
                        .during(|| format!("thread {me}: read_ref {key}"))?
                        .ok_or_else(|| CheckError::new(format!("thread {me}: {key} vanished")))?;
                    let n: usize = std::str::from_utf8(&current.bytes)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| CheckError::new(format!("thread {me}: {key} holds {:?}", current.bytes)))?;
                    let next = Bytes::from((n + 1).to_string());
                    match no_panic(
                        || format!("write_ref {key}"),
                        || storage.write_ref(key, next, RefExpectation::At(&current.token)),
                    )? {
                        Ok(_) => Ok(Some(n + 1)),
                        Err(e) if is_conflict(&e) => Ok(None),
                        Err(e) => Err(CheckError::new(format!("thread {me}: write_ref {key} failed with {e} ({e:?})"))),
                    }
                };
                let (mut done, mut attempts) = (0, 0);
                while done < per_thread && !stop.load(Ordering::Relaxed) {
                    attempts += 1;
                    if attempts > max_attempts {
                        failure.record(CheckError::new(format!(
                            "thread {me} made only {done} of {per_thread} increments in {max_attempts} attempts: \
                             compare-and-swap makes no progress"
                        )));
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    match attempt() {
                        Ok(Some(value)) => {
                            written.lock().unwrap_or_else(|p| p.into_inner()).push(value);
                            done += 1;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            failure.record(e);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    failure.into_result()?;
    let written = written.into_inner().unwrap_or_else(|p| p.into_inner());
    let distinct: BTreeSet<usize> = written.iter().copied().collect();
    if distinct.len() != written.len() {
        let mut sorted = written.clone();
        sorted.sort_unstable();
        let dup = sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]);
        return Err(CheckError::new(format!(
            "two successful compare-and-swaps both wrote counter value {dup:?}: one update was lost"
        )));
    }
    let end = storage.read_ref(&key).during(|| format!("read_ref {key} at the end"))?.map(|v| v.bytes);
    ensure!(
        end.as_deref() == Some(total.to_string().as_bytes()),
        "after {total} successful increments ({threads} threads x {per_thread}) {key} holds {end:?}"
    );
    Ok(())
}

/// Threads race create-only puts: for keys all threads write with the same bytes every put succeeds;
/// for a key each thread writes with its own bytes exactly one succeeds, the rest get `AlreadyExists`,
/// and the stored bytes are the winner's.
///
/// # Errors
/// A [`super::CheckError`] naming the key and the winners.
pub fn put_race_one_creator(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let threads = config.cas_threads.clamp(2, 8);
    let rounds = 20u64;
    let barrier = Barrier::new(threads);
    let failure = FirstFailure::default();
    let winners: Vec<Mutex<Vec<usize>>> = (0..rounds).map(|_| Mutex::new(Vec::new())).collect();
    std::thread::scope(|s| {
        for me in 0..threads {
            let (barrier, failure, winners) = (&barrier, &failure, &winners);
            s.spawn(move || {
                for round in 0..rounds {
                    barrier.wait();
                    let shared = data("same bytes", round);
                    match no_panic(|| format!("put {shared}"), || storage.put(&shared, Bytes::from(format!("shared {round}")))) {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => failure.record(CheckError::new(format!(
                            "thread {me}: racing put of {shared} with the same bytes as every other thread failed: {e} ({e:?})"
                        ))),
                        Err(e) => failure.record(e),
                    }
                    let contested = data("own bytes", round);
                    match no_panic(|| format!("put {contested}"), || storage.put(&contested, Bytes::from(format!("thread {me}")))) {
                        Ok(Ok(())) => winners[usize::try_from(round).expect("small")].lock().unwrap_or_else(|p| p.into_inner()).push(me),
                        Ok(Err(e)) if is_already_exists(&e) => {}
                        Ok(Err(e)) => failure.record(CheckError::new(format!(
                            "thread {me}: racing put of {contested} failed with {e} ({e:?}) instead of succeeding or AlreadyExists"
                        ))),
                        Err(e) => failure.record(e),
                    }
                }
            });
        }
    });
    failure.into_result()?;
    for (round, winners) in winners.into_iter().enumerate() {
        let winners = winners.into_inner().unwrap_or_else(|p| p.into_inner());
        let key = data("own bytes", round as u64);
        let [winner] = winners.as_slice() else {
            return Err(CheckError::new(format!(
                "{} of {threads} racing create-only puts of {key} with different bytes succeeded (threads {winners:?}); \
                 exactly one must",
                winners.len()
            )));
        };
        let got = storage.get(&key).during(|| format!("get {key}"))?;
        ensure!(
            got == format!("thread {winner}"),
            "{key}: thread {winner}'s put succeeded, but it holds {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    Ok(())
}

/// `concurrent_puts` is at least 1, and threads calling `put_batch` at once (more of them than it,
/// as the write pipeline may on another backend's advice) all succeed: every object of every batch
/// reads back with its own bytes.
///
/// # Errors
/// A [`super::CheckError`] naming the thread and the key.
pub fn concurrent_put_batches_all_land(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let limit = storage.concurrent_puts();
    ensure!(limit >= 1, "concurrent_puts() is {limit}; it must be at least 1");
    let threads = config.cas_threads.clamp(2, 4);
    let per_batch = 16u64;
    let value = |me: usize, i: u64| pattern(config.seed ^ ((me as u64) << 32) ^ i, 4096 + (i as usize) * 97);
    let key = |me: usize, i: u64| data("concurrent batches", (me as u64) * 1_000 + i);
    let barrier = Barrier::new(threads);
    let failure = FirstFailure::default();
    std::thread::scope(|s| {
        for me in 0..threads {
            let (barrier, failure) = (&barrier, &failure);
            s.spawn(move || {
                let items = (0..per_batch).map(|i| (key(me, i), value(me, i))).collect();
                barrier.wait();
                match no_panic(|| format!("put_batch of thread {me}"), || storage.put_batch(items)) {
                    Ok(results) => {
                        for (i, r) in results.into_iter().enumerate() {
                            if let Err(e) = r {
                                failure.record(CheckError::new(format!(
                                    "thread {me}: item {i} of a put_batch racing {} others failed: {e} ({e:?})",
                                    threads - 1
                                )));
                            }
                        }
                    }
                    Err(e) => failure.record(e),
                }
            });
        }
    });
    failure.into_result()?;
    for me in 0..threads {
        for i in 0..per_batch {
            let k = key(me, i);
            let got = storage.get(&k).during(|| format!("get {k}"))?;
            if let Some(diff) = byte_diff(&value(me, i), &got) {
                return Err(CheckError::new(format!("{k} (thread {me}'s item {i}) holds other bytes: {diff}")));
            }
        }
    }
    Ok(())
}

/// The `i`-th value of [`readers_see_whole_values`]: 8 bytes of `i`, then data derived from `i`, of a
/// length that varies with `i`, so a torn or mixed read cannot pass for a whole one.
fn numbered_value(seed: u64, i: u64, max_len: usize) -> Bytes {
    let len = 8 + usize::try_from(crate::rng::mix(seed ^ i) % (max_len.max(9) as u64 - 8)).expect("below max_len");
    let mut out = i.to_le_bytes().to_vec();
    out.extend_from_slice(&pattern(seed ^ i.rotate_left(17), len - 8));
    Bytes::from(out)
}

/// Which value `bytes` claims to be, if it is exactly that value.
fn whole_value(seed: u64, max_len: usize, bytes: &[u8]) -> Result<u64, String> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("a {}-byte value, shorter than any written", bytes.len()))?;
    let i = u64::from_le_bytes(head);
    match byte_diff(&numbered_value(seed, i, max_len), bytes) {
        None => Ok(i),
        Some(diff) => Err(format!("a value claiming to be write {i} that is not: {diff}")),
    }
}

/// A writer updates one reference and puts new objects `reader_writes` times with values of varying
/// length (up to `reader_value_bytes`) while `readers` threads read them: every read is exactly one of
/// the written values (never partial or mixed), a reader never sees the reference go back to an older
/// value, and an object whose `put` has returned is found by every later `get`.
///
/// # Errors
/// A [`super::CheckError`] describing the torn, stale or missing read.
pub fn readers_see_whole_values(config: &ConformanceConfig, storage: &dyn Storage) -> Outcome {
    let (seed, max_len, writes) = (config.seed, config.reader_value_bytes, config.reader_writes as u64);
    let key = reference(KeyType::VersionRef, "readers");
    let first = numbered_value(seed, 0, max_len);
    let mut token = storage.write_ref(&key, first, RefExpectation::Absent).during(|| format!("create {key}"))?;
    // Objects 0..published have been put (their puts returned); readers may rely on them.
    let published = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let failure = FirstFailure::default();
    let reads = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);

    std::thread::scope(|s| {
        for reader in 0..config.readers.max(1) {
            let (published, done, failure, key, reads, failed) = (&published, &done, &failure, &key, &reads, &failed);
            s.spawn(move || {
                let mut rng = SplitMix64::new(seed ^ reader as u64);
                let mut newest_seen = 0u64;
                let mut check = || -> Outcome {
                    let value = no_panic(|| format!("read_ref {key}"), || storage.read_ref(key))?
                        .during(|| format!("reader {reader}: read_ref {key}"))?
                        .ok_or_else(|| CheckError::new(format!("reader {reader}: {key} vanished")))?;
                    let i = whole_value(seed, max_len, &value.bytes)
                        .map_err(|e| CheckError::new(format!("reader {reader}: read_ref {key} returned {e}")))?;
                    ensure!(
                        i >= newest_seen,
                        "reader {reader}: read_ref {key} returned write {i} after it had returned write {newest_seen}"
                    );
                    newest_seen = i;
                    let n = published.load(Ordering::SeqCst);
                    if n > 0 {
                        let i = rng.below(n as u64);
                        let object = data("readers", i);
                        let got = no_panic(|| format!("get {object}"), || storage.get(&object))?
                            .during(|| format!("reader {reader}: get {object}, whose put had returned"))?;
                        let claimed = whole_value(seed ^ 0x0B1E, max_len, &got)
                            .map_err(|e| CheckError::new(format!("reader {reader}: get {object} returned {e}")))?;
                        ensure!(claimed == i, "reader {reader}: get {object} returned the bytes of object {claimed}");
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                };
                // Read at least once, even if the writer is already done.
                loop {
                    if let Err(e) = check() {
                        failure.record(e);
                        failed.store(true, Ordering::SeqCst);
                        break;
                    }
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                }
            });
        }
        let result = (|| -> Outcome {
            for i in 1..=writes {
                let object = data("readers", i - 1);
                let value = numbered_value(seed ^ 0x0B1E, i - 1, max_len);
                no_panic(|| format!("put {object}"), || storage.put(&object, value))?
                    .during(|| format!("writer: put {object}"))?;
                published.store(usize::try_from(i).expect("small"), Ordering::SeqCst);
                let value = numbered_value(seed, i, max_len);
                token = no_panic(
                    || format!("write_ref {key}"),
                    || storage.write_ref(&key, value, RefExpectation::At(&token)),
                )?
                .during(|| format!("writer: write {i} of {key}"))?;
                // Let the readers keep up (a read per write), so reads interleave with writes even when
                // writes are much faster than thread start-up.
                let waiting = Instant::now();
                while reads.load(Ordering::SeqCst) < usize::try_from(i).expect("small")
                    && !failed.load(Ordering::SeqCst)
                    && waiting.elapsed() < Duration::from_secs(2)
                {
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            failure.record(e);
        }
        done.store(true, Ordering::SeqCst);
    });
    failure.into_result()?;
    let end = storage.read_ref(&key).during(|| format!("read_ref {key} at the end"))?;
    let end = end.map(|v| whole_value(seed, max_len, &v.bytes));
    ensure!(end == Some(Ok(writes)), "after {writes} writes {key} holds {end:?}");
    ensure!(reads.load(Ordering::SeqCst) > 0, "the readers never completed a read");
    Ok(())
}
