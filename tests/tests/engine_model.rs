//! Property test: random sequences of operations on one symbol, checked after every step against the
//! plain reference model in `floe_tests::model` (every live version, not just the latest).

use floe_backends::{LmdbConfig, LmdbStore};
use floe_engine::{AsOf, ErrorKind, Floe, Library, ReadRequest};
use floe_tests::model::SymbolModel;
use floe_tests::tmp::TempDir;
use floe_tests::{rows, rows_of, suite::small_options, table};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Write { start: i64, len: i64 },
    Append { gap: i64, len: i64 },
    Update { lo: i64, span: i64, len: i64 },
    DeleteRange { lo: i64, span: i64 },
    Prune,
    DeleteAll,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0i64..50, 0i64..30).prop_map(|(start, len)| Op::Write { start, len }),
        (0i64..3, 0i64..20).prop_map(|(gap, len)| Op::Append { gap, len }),
        (0i64..60, 0i64..20, 0i64..8).prop_map(|(lo, span, len)| Op::Update { lo, span, len }),
        (0i64..60, 0i64..20).prop_map(|(lo, span)| Op::DeleteRange { lo, span }),
        Just(Op::Prune),
        Just(Op::DeleteAll),
    ]
}

fn check(lib: &Library, model: &SymbolModel) {
    for (v, rows) in model.versions.iter().enumerate() {
        let req = ReadRequest { as_of: AsOf::Version(v as i64), ..Default::default() };
        let got = lib.read("s", &req);
        if model.deleted[v] {
            assert_eq!(got.expect_err("deleted version").kind(), ErrorKind::NotFound, "v{v}");
        } else {
            assert_eq!(&rows_of(&got.expect("live version reads").data), rows, "v{v}");
        }
    }
    let latest = lib.read("s", &ReadRequest::default());
    match model.latest() {
        Some(l) => assert_eq!(rows_of(&latest.expect("latest").data), model.versions[l]),
        None => assert!(latest.is_err()),
    }
}

fn run(floe: &Floe, ops: Vec<Op>) {
    let _ = floe.delete_library("model");
    let lib = floe.create_library("model", small_options()).expect("library");
    let mut model = SymbolModel::default();
    for op in ops {
        let last = model.latest().and_then(|l| model.versions[l].last().map(|r| r.ts)).unwrap_or(-1);
        match op {
            Op::Write { start, len } => {
                let r = rows(start..start + len);
                lib.write("s", &table(&r), None).expect("write");
                model.write(r);
            }
            Op::Append { gap, len } => {
                let r = rows(last + gap..last + gap + len);
                match lib.append("s", &table(&r), None) {
                    Ok(_) => {
                        model.append(&r);
                    }
                    Err(e) => {
                        // Only an append starting before the end (gap 0 onto equal index) may fail.
                        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                        assert!(r.first().is_some_and(|f| f.ts < last), "{e}");
                    }
                }
            }
            Op::Update { lo, span, len } => {
                let hi = lo + span;
                let r = rows((lo..=hi).take(len as usize));
                lib.update("s", &table(&r), Some((lo, hi)), None).expect("update");
                model.update(&r, lo, hi);
            }
            Op::DeleteRange { lo, span } => match lib.delete_data_in_range("s", (lo, lo + span)) {
                Ok(_) => {
                    model.update(&[], lo, lo + span);
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                    assert!(model.latest().is_none());
                }
            },
            Op::Prune => {
                lib.prune_previous_versions("s").expect("prune");
                model.prune();
            }
            Op::DeleteAll => match lib.delete("s") {
                Ok(()) => model.delete_all(),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                    assert!(model.latest().is_none());
                }
            },
        }
        check(&lib, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_model_on_memory(ops in proptest::collection::vec(op(), 1..14)) {
        run(&Floe::open("mem://").expect("memory store"), ops);
    }
}

fn lmdb() -> &'static (Floe, TempDir) {
    static STORE: std::sync::OnceLock<(Floe, TempDir)> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let dir = TempDir::new("floe-model-lmdb");
        let store = LmdbStore::open(LmdbConfig { path: dir.path().to_path_buf(), map_size: 1 << 30 }).expect("lmdb");
        (Floe::from_store(std::sync::Arc::new(store)), dir)
    })
}

proptest! {
    // Every LMDB commit fsyncs: fewer cases, same properties.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_match_the_model_on_lmdb(ops in proptest::collection::vec(op(), 1..14)) {
        run(&lmdb().0, ops);
    }
}
