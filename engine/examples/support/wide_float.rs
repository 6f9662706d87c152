//! The `wide-float` table the engine examples use: a nanosecond timestamp index `T0 + i * STEP` and
//! ten float64 columns of uniform values from a xorshift generator, deterministic from its state.
//! Included by the examples with `#[path]` (not an example itself); each uses part of it.
#![allow(dead_code)]

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// The first row's timestamp (ns).
pub const T0: i64 = 1_600_000_000_000_000_000;
/// Nanoseconds between rows.
pub const STEP: i64 = 1_000;
/// The generator's first state.
pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Rows `start .. start + rows` of the table, the floats drawn from `state` (advanced).
pub fn batch(start: usize, rows: usize, state: &mut u64) -> RecordBatch {
    let mut fields = vec![Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false)];
    let mut cols: Vec<ArrayRef> = vec![Arc::new(TimestampNanosecondArray::from_iter_values(
        (start as i64..(start + rows) as i64).map(|i| T0 + i * STEP),
    ))];
    for c in 0..10 {
        fields.push(Field::new(format!("f{c}"), DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from_iter_values((0..rows).map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state >> 11) as f64 / (1u64 << 53) as f64
        }))));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).expect("valid batch")
}

/// The first `rows` rows.
pub fn table(rows: usize) -> RecordBatch {
    let mut state = SEED;
    batch(0, rows, &mut state)
}
