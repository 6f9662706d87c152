//! Latency of small reads of a large `wide-float` table (timestamp index + 10 random float64
//! columns): date ranges of 0.1 % and 10 % in the middle, a 1,000-row row range, `tail(100)`, a
//! full read for scale, and an update of 0.1 % of the rows; the median of `reps` repetitions each.
//!
//! `cargo run --release -p floe-engine --example ranges -- [rows] [reps]` (defaults: 10,000,000 rows,
//! 21 repetitions; an LMDB store in a temporary folder).

use std::time::Instant;

use floe_engine::{Floe, IndexKind, LibraryOptions, ReadRequest, Table};

#[path = "support/wide_float.rs"]
mod wide_float;
use wide_float::{STEP, T0, table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10_000_000);
    let reps: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(21);
    let dir = std::env::temp_dir().join(format!("floe-ranges-{}", std::process::id()));
    let floe = Floe::open(&format!("lmdb://{}", dir.display()))?;
    let lib = floe.get_or_create_library("bench", LibraryOptions::default())?;
    lib.write("wide", &Table::from_batch(table(rows), IndexKind::Timestamp("ts".into()))?, None)?;

    // Date ranges centred in the table, `share` of its rows.
    let centred = |share: f64| {
        let n = ((rows as f64 * share) as i64).max(1);
        let first = (rows as i64 - n) / 2;
        Some((Some(T0 + first * STEP), Some(T0 + (first + n - 1) * STEP)))
    };
    let mid = rows as i64 / 2 + 12_345;
    let cases: Vec<(&str, ReadRequest)> = vec![
        ("full read", ReadRequest::default()),
        ("date range 10 %", ReadRequest { date_range: centred(0.10), ..Default::default() }),
        ("date range 0.1 %", ReadRequest { date_range: centred(0.001), ..Default::default() }),
        ("row range 1,000", ReadRequest { row_range: Some((mid, mid + 1_000)), ..Default::default() }),
        ("tail 100", ReadRequest { row_range: Some((-100, i64::MAX)), ..Default::default() }),
    ];
    println!("{rows} rows x 11 columns; median of {reps}");
    for (name, req) in cases {
        let mut times = Vec::with_capacity(reps);
        let mut got = 0;
        for _ in 0..reps {
            let t = Instant::now();
            got = lib.read("wide", &req)?.data.num_rows();
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        println!("{name:<18} {:>9.3} ms  ({got} rows)", times[reps / 2] * 1e3);
    }
    // Update of 0.1 % of the rows in the middle (new values, same stamps), each a new version.
    let n = (rows / 1000).max(1);
    let first = (rows - n) / 2;
    let fresh = table(rows).slice(first, n);
    let fresh = Table::from_batch(fresh, IndexKind::Timestamp("ts".into()))?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        lib.update("wide", &fresh, None, None)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    println!("{:<18} {:>9.3} ms  ({n} rows)", "update 0.1 %", times[reps / 2] * 1e3);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
