//! Cross-crate integration and stress harnesses. The harnesses live in this crate's `tests/` folder;
//! this library holds what they share: a table generator, a plain reference model of a symbol's
//! versions, and the engine suite every backend runs ([`suite`]).

pub mod harness;
pub mod model;
pub mod stress;
pub mod suite;
pub mod tmp;

use std::sync::Arc;

use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_engine::{IndexKind, Table};

/// One row of the test table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Index (ns).
    pub ts: i64,
    /// A float column.
    pub px: f64,
    /// An integer column.
    pub qty: i64,
    /// A nullable string column.
    pub name: Option<String>,
    /// A bool column.
    pub flag: bool,
}

/// The test table's schema: `ts` (index), `px`, `qty`, `name`, `flag`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("px", DataType::Float64, false),
        Field::new("qty", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, false),
    ]))
}

/// Deterministic rows with index values `ts`.
pub fn rows(ts: impl IntoIterator<Item = i64>) -> Vec<Row> {
    ts.into_iter()
        .map(|t| Row {
            ts: t,
            px: t as f64 * 0.5,
            qty: t.wrapping_mul(7) % 1000,
            name: (t % 3 != 0).then(|| format!("n{}", t % 17)),
            flag: t % 2 == 0,
        })
        .collect()
}

/// A record batch of `rows`.
pub fn batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampNanosecondArray::from_iter_values(rows.iter().map(|r| r.ts))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.px))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.qty))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.name.as_deref()))),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.flag)))),
        ],
    )
    .expect("columns match the schema")
}

/// A timestamp-indexed table of `rows`.
pub fn table(rows: &[Row]) -> Table {
    Table::from_batch(batch(rows), IndexKind::Timestamp("ts".into())).expect("valid test table")
}

/// Reads rows back out of a batch with the full test schema.
pub fn rows_of(b: &RecordBatch) -> Vec<Row> {
    let col = |name: &str| b.column(b.schema().index_of(name).expect("column present")).clone();
    let ts = col("ts");
    let ts = ts.as_any().downcast_ref::<TimestampNanosecondArray>().expect("ts type");
    let px = col("px");
    let px = px.as_any().downcast_ref::<Float64Array>().expect("px type");
    let qty = col("qty");
    let qty = qty.as_any().downcast_ref::<Int64Array>().expect("qty type");
    let name = col("name");
    let name = name.as_any().downcast_ref::<StringArray>().expect("name type");
    let flag = col("flag");
    let flag = flag.as_any().downcast_ref::<BooleanArray>().expect("flag type");
    (0..b.num_rows())
        .map(|i| Row {
            ts: ts.value(i),
            px: px.value(i),
            qty: qty.value(i),
            name: name.is_valid(i).then(|| name.value(i).to_owned()),
            flag: flag.value(i),
        })
        .collect()
}
