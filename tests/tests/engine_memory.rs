//! The engine suite on the memory backend.

use floe_engine::Floe;

floe_tests::engine_suite!((Floe::open("mem://").expect("memory store"), ()));

/// 8 threads × 200 appends to one symbol: all 1,600 present, one version each.
#[test]
fn eight_threads_append_200_each() {
    floe_tests::suite::concurrent_appends(&Floe::open("mem://").expect("memory store"), 8, 200);
}

/// A dictionary column read across segments comes back with one dictionary of distinct values (pandas
/// categoricals reject repeated values), and the same strings.
#[test]
fn dictionary_columns_merge_across_segments() {
    use std::sync::Arc;

    use arrow_array::types::Int8Type;
    use arrow_array::{Array, DictionaryArray, RecordBatch, StringArray, TimestampNanosecondArray};
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use floe_engine::{IndexKind, ReadRequest, Table};

    let words = ["bid", "ask", "trade", "bid", "ask"];
    let strings: Vec<Option<&str>> = (0..30).map(|i| if i % 7 == 3 { None } else { Some(words[i % 5]) }).collect();
    let dict: DictionaryArray<Int8Type> = strings.iter().copied().collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("side", dict.data_type().clone(), true),
    ]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(TimestampNanosecondArray::from_iter_values(0..30)), Arc::new(dict)])
            .expect("batch");
    let floe = Floe::open("mem://").expect("memory store");
    let lib = floe.create_library("dict", floe_tests::suite::small_options()).expect("library");
    lib.write("s", &Table::from_batch(batch, IndexKind::Timestamp("ts".into())).expect("table"), None).expect("write");
    let out = lib.read("s", &ReadRequest::default()).expect("read").data;
    let side = out.column(1).as_any().downcast_ref::<DictionaryArray<Int8Type>>().expect("int8 dictionary");
    let values = side.values().as_any().downcast_ref::<StringArray>().expect("utf8 values");
    assert_eq!(values.len(), 3, "one entry per distinct value: {values:?}");
    let got: Vec<Option<&str>> =
        (0..side.len()).map(|i| side.is_valid(i).then(|| values.value(side.keys().value(i) as usize))).collect();
    assert_eq!(got, strings);
}
