use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use floe_formats::{AtomFields, AtomKey, KeyType, RefKey};

use super::*;
use crate::memory::MemoryStorage;

fn key(v: u64) -> AtomKey {
    AtomKey::new(KeyType::TableData, "faulty", AtomFields { version: v, ..AtomFields::default() }).expect("valid key")
}

fn wrapped(plan: FaultPlan) -> FaultyStorage {
    FaultyStorage::new(Arc::new(MemoryStorage::new()), plan)
}

fn item(v: u64) -> (AtomKey, Bytes) {
    (key(v), Bytes::from(format!("value {v}")))
}

#[test]
fn no_plan_passes_everything_through_and_counts_calls() {
    let s = wrapped(FaultPlan::none());
    s.put(&key(0), Bytes::from_static(b"a")).expect("put");
    assert!(s.put_batch(vec![item(1), item(2), item(3)]).into_iter().all(|r| r.is_ok()));
    assert_eq!(s.get(&key(2)).expect("get"), "value 2");
    assert!(s.get_batch(&[key(1), key(9)])[1].as_ref().is_err_and(StorageError::is_not_found));
    assert_eq!(s.calls(), 1 + 3 + 1 + 2);
    assert!(s.injected().is_empty());
    assert!(s.describe().starts_with("faulty(mem://"));
}

#[test]
fn a_failure_before_the_effect_writes_nothing() {
    let s = wrapped(FaultPlan::fail_call(1, Timing::Before));
    s.put(&key(0), Bytes::from_static(b"a")).expect("call 0 passes");
    let err = s.put(&key(1), Bytes::from_static(b"b")).expect_err("call 1 fails");
    assert!(is_injected(&err), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("injected fault: call #1 (put tdata:\"faulty\":v1"), "{message}");
    assert!(message.contains("before its effect"), "{message}");
    assert!(!s.inner().exists(&key(1)).expect("exists"));
    s.put(&key(2), Bytes::from_static(b"c")).expect("call 2 passes");
    assert_eq!(
        s.injected(),
        vec![Injected { call: 1, op: OpKind::Put, timing: Timing::Before, target: key(1).to_string() }]
    );
}

#[test]
fn a_failure_after_the_effect_writes_but_reports_an_error() {
    let s = wrapped(FaultPlan::fail_call(0, Timing::After));
    let rk = RefKey::new(KeyType::VersionRef, "faulty").expect("valid key");
    let err = s.write_ref(&rk, Bytes::from_static(b"head"), RefExpectation::Absent).expect_err("fails");
    assert!(is_injected(&err) && err.to_string().contains("after its effect"), "{err}");
    assert_eq!(s.inner().read_ref(&rk).expect("read").expect("the write happened").bytes, "head");
}

#[test]
fn batches_fail_item_by_item() {
    let s = wrapped(FaultPlan::fail_call(1, Timing::Before).and_fail_call(2, Timing::After));
    let results = s.put_batch((0..4).map(item).collect());
    assert!(results[0].is_ok() && results[3].is_ok(), "{results:?}");
    assert!(results[1].as_ref().is_err_and(is_injected) && results[2].as_ref().is_err_and(is_injected));
    let present: Vec<bool> = (0..4).map(|v| s.inner().exists(&key(v)).expect("exists")).collect();
    assert_eq!(present, [true, false, true, true]);

    s.set_plan(FaultPlan::fail_call(0, Timing::Before).and_fail_call(2, Timing::After));
    let got = s.get_batch(&[key(0), key(1), key(2), key(3)]);
    assert!(got[0].as_ref().is_err_and(is_injected) && got[2].as_ref().is_err_and(is_injected));
    assert!(got[1].as_ref().is_err_and(StorageError::is_not_found), "{:?}", got[1]);
    assert_eq!(got[3].as_ref().expect("passes"), "value 3");
    assert_eq!(s.calls(), 4);
}

#[test]
fn set_plan_restarts_numbering_and_clears_the_log() {
    let s = wrapped(FaultPlan::fail_call(0, Timing::Before));
    assert!(s.exists(&key(0)).is_err());
    assert_eq!((s.calls(), s.injected().len()), (1, 1));
    s.set_plan(FaultPlan::fail_call(1, Timing::Before));
    assert_eq!((s.calls(), s.injected().len()), (0, 0));
    assert!(s.exists(&key(0)).is_ok());
    assert!(s.exists(&key(0)).is_err());
}

fn fault_log(seed: u64) -> Vec<Injected> {
    let s = wrapped(FaultPlan::random(seed).with_failures_everywhere(0.3).with_after_effect_probability(0.5));
    for v in 0..200 {
        let _ = s.put(&key(v), Bytes::from_static(b"x"));
        let _ = s.get(&key(v));
    }
    s.injected()
}

#[test]
fn random_faults_follow_the_seed_and_the_rates() {
    let a = fault_log(42);
    assert_eq!(a, fault_log(42), "the same seed must inject the same faults");
    assert_ne!(a, fault_log(43));
    // 400 calls at p = 0.3: 120 expected; 4 standard deviations is about 37.
    assert!((83..=157).contains(&a.len()), "{} faults in 400 calls", a.len());
    let after = a.iter().filter(|i| i.timing == Timing::After).count();
    assert!(after > a.len() / 4 && after < a.len() * 3 / 4, "{after} of {} after the effect", a.len());
}

#[test]
fn rates_apply_per_operation_kind() {
    let s = wrapped(FaultPlan::random(1).with_failures(OpKind::WriteRef, 1.0));
    let rk = RefKey::new(KeyType::VersionRef, "faulty").expect("valid key");
    for v in 0..50 {
        s.put(&key(v), Bytes::from_static(b"x")).expect("puts never fail");
        assert!(s.write_ref(&rk, Bytes::new(), RefExpectation::Absent).is_err_and(|e| is_injected(&e)));
    }
    assert!(s.inner().read_ref(&rk).expect("read").is_none(), "faults strike before the effect by default");
}

#[test]
fn delays_are_drawn_from_the_range() {
    let s = wrapped(FaultPlan::random(5).with_delays(1.0, Duration::from_millis(20)..Duration::from_millis(25)));
    let started = Instant::now();
    s.put(&key(0), Bytes::from_static(b"x")).expect("delays do not fail");
    s.put_batch(vec![item(1), item(2), item(3)]);
    let took = started.elapsed();
    // One delay for the put, one (the longest) for the whole batch.
    assert!(took >= Duration::from_millis(40), "{took:?}");
    let plan = FaultPlan::random(5).with_delays(1.0, Duration::from_millis(20)..Duration::from_millis(25));
    for call in 0..100 {
        let (fault, delay) = plan.decide(call, OpKind::Get);
        assert!(fault.is_none());
        assert!((Duration::from_millis(20)..Duration::from_millis(25)).contains(&delay), "{delay:?}");
    }
}

#[test]
fn without_faults_the_wrapper_conforms() {
    let config = crate::conformance::ConformanceConfig {
        large_object_bytes: 1 << 20,
        list_keys: 1_100,
        cas_threads: 4,
        cas_rounds: 50,
        reader_writes: 30,
        reader_value_bytes: 4096,
        ..Default::default()
    };
    let factory = || -> Arc<dyn Storage> {
        Arc::new(FaultyStorage::new(
            Arc::new(MemoryStorage::new()),
            FaultPlan::none().with_delays(0.01, Duration::ZERO..Duration::from_micros(200)),
        ))
    };
    if let Err(report) = crate::conformance::run_all(&config, factory) {
        panic!("{report}");
    }
}

#[test]
fn commit_ref_fails_part_by_part() {
    // commit_ref runs as the trait's default through the wrapper: objects (one call each), then the CAS.
    let s = wrapped(FaultPlan::fail_call(1, Timing::Before));
    let rk = RefKey::new(KeyType::VersionRef, "faulty").expect("valid key");
    let err = s.commit_ref(vec![item(0), item(1)], &rk, Bytes::from_static(b"head"), RefExpectation::Absent);
    assert!(err.is_err_and(|e| is_injected(&e)));
    assert!(s.inner().exists(&key(0)).expect("exists") && !s.inner().exists(&key(1)).expect("exists"));
    assert!(s.inner().read_ref(&rk).expect("read").is_none(), "the reference is not touched after an object fails");

    s.set_plan(FaultPlan::fail_call(2, Timing::After));
    let err = s.commit_ref(vec![item(0), item(1)], &rk, Bytes::from_static(b"head"), RefExpectation::Absent);
    assert!(err.is_err_and(|e| is_injected(&e) && e.to_string().contains("write_ref")));
    assert_eq!(s.inner().read_ref(&rk).expect("read").expect("written").bytes, "head");
}
