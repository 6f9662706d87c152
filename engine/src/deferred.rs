//! Columns whose values are made one segment at a time while a write stores them, instead of all at
//! once before it (design/decisions.md D49).
//!
//! A pandas frame made from one C-ordered 2D numpy array keeps its columns as strided views, and Arrow
//! needs each column contiguous: copying the whole block first (D32) doubled a write's memory (+80 MB
//! for `wide`'s 80 MB) and faulted all of it in before the first segment was stored. With a
//! [`ColumnSource`] the write pipeline asks for exactly one segment's rows of one column group as it
//! encodes that segment, so the copy is a segment at a time, overlapping the storing of the one before.

use std::ops::Range;

use arrow_array::{Array, ArrayRef};

use crate::error::{Error, Result};
use crate::table::Table;

/// Makes the values of some of a table's columns on demand.
pub trait ColumnSource: Sync {
    /// Rows `rows` (row numbers within the table) of the columns at schema positions `positions`, in
    /// that order: each array of its field's type, `rows.len()` long, without nulls. `positions` are
    /// always among those the [`Deferred`] wrapping this source names.
    ///
    /// # Errors
    /// Whatever stops the source; the write then stores nothing more and commits nothing.
    fn columns(&self, positions: &[usize], rows: Range<usize>) -> Result<Vec<ArrayRef>>;
}

/// A table's deferred columns: their schema positions and the source of their values. The table's
/// own arrays at those positions are stand-ins (their type and length are the column's; their values
/// are never read), so that everything before encoding (checks, row slicing, wave sizing) sees the
/// table's real shape.
pub struct Deferred<'a> {
    positions: Vec<usize>,
    source: &'a dyn ColumnSource,
}

impl<'a> Deferred<'a> {
    /// The columns at `positions` of `table` come from `source`.
    ///
    /// # Errors
    /// `InvalidInput` if a position is out of range, repeated or the table's index column, or its
    /// stand-in is not a fixed-width column without nulls (the only kind a source makes).
    pub fn new(table: &Table, mut positions: Vec<usize>, source: &'a dyn ColumnSource) -> Result<Self> {
        positions.sort_unstable();
        let schema = table.schema();
        for (i, &p) in positions.iter().enumerate() {
            let field = schema.fields().get(p).ok_or_else(|| {
                Error::invalid(format!(
                    "deferred column {p} is out of range: the table has {} columns",
                    schema.fields().len()
                ))
            })?;
            if i > 0 && positions[i - 1] == p {
                return Err(Error::invalid(format!("deferred column {:?} is named twice", field.name())));
            }
            if table.index_pos() == Some(p) {
                return Err(Error::invalid(format!("the index column {:?} cannot be deferred", field.name())));
            }
            let fixed =
                field.data_type().primitive_width().is_some() && *field.data_type() != arrow_schema::DataType::Boolean;
            let nulls = table.batches().iter().any(|b| b.column(p).null_count() > 0);
            if !fixed || nulls {
                return Err(Error::invalid(format!(
                    "deferred column {:?} must be a fixed-width column without nulls; it is {}{}",
                    field.name(),
                    field.data_type(),
                    if nulls { " with nulls" } else { "" }
                )));
            }
        }
        Ok(Deferred { positions, source })
    }

    /// Whether the column at schema position `position` is deferred.
    pub(crate) fn has(&self, position: usize) -> bool {
        self.positions.binary_search(&position).is_ok()
    }

    /// The values of the deferred columns among `positions`, rows `rows` of the table, checked against
    /// what the source promises.
    pub(crate) fn fetch(
        &self,
        positions: &[usize],
        rows: Range<usize>,
        stand_ins: &[&ArrayRef],
    ) -> Result<Vec<ArrayRef>> {
        let arrays = self.source.columns(positions, rows.clone())?;
        if arrays.len() != positions.len() {
            return Err(Error::internal(format!(
                "a column source made {} columns for {}",
                arrays.len(),
                positions.len()
            )));
        }
        for ((a, s), p) in arrays.iter().zip(stand_ins).zip(positions) {
            if a.len() != rows.len() || a.data_type() != s.data_type() || a.null_count() > 0 {
                return Err(Error::internal(format!(
                    "a column source made column {p} as {} rows of {} ({} nulls); {} rows of {} without nulls were asked for",
                    a.len(),
                    a.data_type(),
                    a.null_count(),
                    rows.len(),
                    s.data_type()
                )));
            }
        }
        Ok(arrays)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow_array::{Float64Array, Int32Array, Int64Array, RecordBatch, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_backends::Storage;

    use super::*;
    use crate::test_storage::{TestStorage, library};
    use crate::{ErrorKind, IndexKind, ReadRequest};

    /// `rows` rows: a timestamp index, `x` (i64), `y` (f64) and `z` (i32), with row `r`'s values
    /// made from `r`; `stand_ins` replaces `y` and `z` by zeros (what a deferred write passes).
    fn frame(rows: i64, stand_ins: bool) -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
            Field::new("x", DataType::Int64, false),
            Field::new("y", DataType::Float64, false),
            Field::new("z", DataType::Int32, false),
        ]));
        let k = if stand_ins { 0 } else { 1 };
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(TimestampNanosecondArray::from_iter_values(0..rows)),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|r| r * 3))),
                Arc::new(Float64Array::from_iter_values((0..rows).map(|r| (r * k) as f64 / 2.0))),
                Arc::new(Int32Array::from_iter_values((0..rows).map(|r| (r * k) as i32 - 7 * k as i32))),
            ],
        )
        .expect("batch");
        Table::from_batch(batch, IndexKind::Timestamp("ts".into())).expect("table")
    }

    /// Makes `y` and `z` as `frame` does, recording every request.
    #[derive(Default)]
    struct Source {
        asked: Mutex<Vec<(Vec<usize>, Range<usize>)>>,
        fail: bool,
    }

    impl ColumnSource for Source {
        fn columns(&self, positions: &[usize], rows: Range<usize>) -> Result<Vec<ArrayRef>> {
            self.asked.lock().expect("not poisoned").push((positions.to_vec(), rows.clone()));
            if self.fail {
                return Err(Error::invalid("the source gave up"));
            }
            let r = rows.start as i64..rows.end as i64;
            Ok(positions
                .iter()
                .map(|&p| match p {
                    2 => Arc::new(Float64Array::from_iter_values(r.clone().map(|r| r as f64 / 2.0))) as ArrayRef,
                    _ => Arc::new(Int32Array::from_iter_values(r.clone().map(|r| r as i32 - 7))) as ArrayRef,
                })
                .collect())
        }
    }

    #[test]
    fn deferred_columns_are_made_a_segment_at_a_time_and_read_back_as_written() {
        let storage: Arc<dyn Storage> = Arc::new(TestStorage::default());
        let lib = library(storage); // segments of 4 rows x 1 column
        let source = Source::default();
        let stand_ins = frame(10, true);
        let deferred = Deferred::new(&stand_ins, vec![3, 2], &source).expect("valid");
        let item = lib.write_deferred("s", &stand_ins, &deferred, None).expect("written");
        lib.write("plain", &frame(10, false), None).expect("written");
        let read = |s: &str| lib.read(s, &ReadRequest::default()).expect("reads").data;
        assert_eq!(read("s"), read("plain"));
        assert_eq!(item.version, 0);
        // One request per segment of a deferred column: its rows, that column alone.
        let mut asked = source.asked.lock().expect("not poisoned").clone();
        asked.sort_by_key(|(p, r)| (p.clone(), r.start));
        let slices = [0..4, 4..8, 8..10];
        let expected: Vec<(Vec<usize>, Range<usize>)> =
            [2, 3].iter().flat_map(|&p| slices.iter().map(move |r| (vec![p], r.clone()))).collect();
        assert_eq!(asked, expected);
    }

    #[test]
    fn a_write_with_deferred_columns_stores_about_one_segment_per_wave() {
        // Segments of 100,000 rows x 1 column (1.2-1.6 MB of input with the index): a plain write's
        // waves take segments up to 8 MiB, a deferred one's up to `SEGMENT_TARGET_BYTES` (D53).
        let options =
            crate::LibraryOptions { rows_per_segment: 100_000, columns_per_segment: 1, dynamic_schema: false };
        let threads = rayon::current_num_threads().max(1);
        let mut most = Vec::new();
        for deferring in [false, true] {
            let counting = Arc::new(TestStorage::default());
            let storage: Arc<dyn Storage> = Arc::clone(&counting) as Arc<dyn Storage>;
            let lib = crate::Library::new("test", storage, options, crate::PipelineOptions::default());
            let source = Source::default();
            let stand_ins = frame(300_000, deferring);
            if deferring {
                let deferred = Deferred::new(&stand_ins, vec![2, 3], &source).expect("valid");
                lib.write_deferred("s", &stand_ins, &deferred, None).expect("written");
            } else {
                lib.write("s", &stand_ins, None).expect("written");
            }
            assert_eq!(lib.read("s", &ReadRequest::default()).expect("reads").data, frame(300_000, false).batches()[0]);
            let sizes = counting.batch_sizes.lock().expect("not poisoned").clone();
            // 3 row slices x 3 columns, and the index with the commit.
            assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
            most.push(sizes.into_iter().max().unwrap_or(0));
        }
        // Two segments reach the deferred waves' budget (rounded up to a multiple of the threads);
        // the plain waves take five or more.
        assert!(most[1] <= 2usize.next_multiple_of(threads), "deferred waves: {most:?}");
        assert!(most[0] > most[1], "plain waves hold more: {most:?}");
    }

    #[test]
    fn a_failing_source_commits_nothing() {
        let storage: Arc<dyn Storage> = Arc::new(TestStorage::default());
        let lib = library(storage);
        lib.write("s", &frame(5, false), None).expect("v0");
        let source = Source { fail: true, ..Default::default() };
        let stand_ins = frame(10, true);
        let deferred = Deferred::new(&stand_ins, vec![2], &source).expect("valid");
        let err = lib.write_deferred("s", &stand_ins, &deferred, None).expect_err("the source fails");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("the source gave up"), "{err}");
        assert_eq!(lib.read("s", &ReadRequest::default()).expect("v0 stays").data.num_rows(), 5);
    }

    #[test]
    fn only_fixed_width_data_columns_without_nulls_can_be_deferred() {
        let source = Source::default();
        let t = frame(3, true);
        for (positions, says) in [(vec![0], "index column"), (vec![9], "out of range"), (vec![2, 2], "named twice")] {
            let err = Deferred::new(&t, positions, &source).err().expect("refused");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(says), "{err}");
        }
        let schema =
            Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::StringArray::from(vec!["a"])), Arc::new(Int64Array::from(vec![None::<i64>]))],
        )
        .expect("batch");
        let t = Table::from_batch(batch, IndexKind::RowCount).expect("table");
        for (p, says) in [(0, "it is Utf8"), (1, "with nulls")] {
            let err = Deferred::new(&t, vec![p], &source).err().expect("refused");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
