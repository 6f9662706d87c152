//! The S3 backend against a real S3-speaking server on loopback (moto; `scripts/s3-server.sh`).
//!
//! Runs only when `FLOE_S3_ENDPOINT=http://127.0.0.1:<port>` is set; otherwise each test prints a
//! note and passes. Every test creates its own bucket, so runs never collide:
//!
//! ```sh
//! scripts/s3-server.sh install && eval "$(scripts/s3-server.sh start)" && export FLOE_S3_ENDPOINT
//! cargo test -p floe-backends --test s3_moto -- --nocapture
//! FLOE_S3_CHECK=cas cargo test -p floe-backends --test s3_moto conformance   # only checks matching "cas"
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use floe_backends::conformance::{CHECKS, ConformanceConfig, run_all, run_check};
use floe_backends::{RefExpectation, S3Config, S3Store, Storage, StorageError, Store};
use floe_formats::{AtomFields, AtomKey, KeyType, RefKey};

/// The moto endpoint, or `None` (with a note) when the tests should be skipped.
fn endpoint(test: &str) -> Option<String> {
    match std::env::var("FLOE_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!("{test}: skipped (set FLOE_S3_ENDPOINT, e.g. via scripts/s3-server.sh start)");
            None
        }
    }
}

/// One raw HTTP/1.1 request to the server: `(status, whole response)`. moto needs no signature for
/// bucket creation or listing, which keeps this test free of an HTTP client dependency.
fn http(endpoint: &str, method: &str, path: &str) -> (u16, String) {
    let host = endpoint.strip_prefix("http://").expect("FLOE_S3_ENDPOINT looks like http://<host>:<port>");
    let mut stream = TcpStream::connect(host).expect("connect to the S3 server");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("HTTP status line");
    (status, response)
}

/// A new, empty bucket with a name unique to this process and call, ending in `suffix`.
fn fresh_bucket(endpoint: &str, suffix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").subsec_nanos();
    let bucket = format!("floe-{}-{nanos}-{}{suffix}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let (status, response) = http(endpoint, "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "creating bucket {bucket}: {response}");
    bucket
}

fn uri(endpoint: &str, bucket: &str, extra: &str) -> String {
    let port = endpoint.rsplit(':').next().expect("endpoint has a port");
    format!("s3://127.0.0.1:{bucket}?port={port}&https=false&access=testing&secret=testing{extra}")
}

fn open(endpoint: &str, extra: &str) -> (S3Store, String) {
    let bucket = fresh_bucket(endpoint, "");
    let store = S3Store::open(S3Config::from_uri(&uri(endpoint, &bucket, extra)).expect("valid URI")).expect("open");
    (store, bucket)
}

fn atom(symbol: &str, version: u64) -> AtomKey {
    AtomKey::new(KeyType::TableData, symbol, AtomFields { version, content_hash: version, ..Default::default() })
        .expect("valid key")
}

#[test]
fn conformance() {
    let Some(endpoint) = endpoint("conformance") else { return };
    let (store, _) = open(&endpoint, "&path_prefix=conformance");
    let next = AtomicUsize::new(0);
    let factory = || -> Arc<dyn Storage> {
        store.library(&format!("check-{}", next.fetch_add(1, Ordering::Relaxed))).expect("valid library name")
    };
    let mut config = ConformanceConfig::default();
    // moto answers a few hundred requests a second: the test command runs fewer CAS rounds than the
    // default 1,000 (FLOE_S3_CAS_ROUNDS); a full run leaves it unset.
    if let Some(rounds) = std::env::var("FLOE_S3_CAS_ROUNDS").ok().and_then(|r| r.parse().ok()) {
        config.cas_rounds = rounds;
    }
    if let Ok(filter) = std::env::var("FLOE_S3_CHECK") {
        for check in CHECKS.iter().filter(|c| c.name.contains(filter.as_str())) {
            let started = Instant::now();
            run_check(check.name, check.run, &config, factory);
            eprintln!("  ok {} ({:.2?})", check.name, started.elapsed());
        }
        return;
    }
    match run_all(&config, factory) {
        Ok(report) => eprintln!("{report}"),
        Err(report) => panic!("{report}"),
    }
}

/// Times for 200 segments of 1 MiB: `(put_batch, one get after another, get_batch, visit_batch)`.
fn time_reads(store: &S3Store) -> [Duration; 4] {
    let lib = store.storage("bench").expect("valid library");
    let keys: Vec<AtomKey> = (0..200).map(|v| atom("segments", v)).collect();
    let items: Vec<(AtomKey, Bytes)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), Bytes::from(vec![u8::try_from(i % 251).expect("below 251"); 1 << 20])))
        .collect();
    let started = Instant::now();
    for r in lib.put_batch(items.clone()) {
        r.expect("put");
    }
    let put_batch = started.elapsed();

    let started = Instant::now();
    for (k, v) in &items {
        assert_eq!(&lib.get(k).expect("get"), v);
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    let got = lib.get_batch(&keys);
    let batched = started.elapsed();
    for ((_, v), r) in items.iter().zip(got) {
        assert_eq!(&r.expect("get_batch"), v);
    }

    let started = Instant::now();
    let seen = AtomicUsize::new(0);
    lib.visit_batch(&keys, &|i, bytes| {
        assert_eq!(bytes, &items[i].1[..]);
        seen.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
    .expect("visit_batch");
    let visited = started.elapsed();
    assert_eq!(seen.load(Ordering::Relaxed), keys.len());
    store.delete_library("bench").expect("free the server's memory");
    [put_batch, sequential, batched, visited]
}

/// The figure the issue asks for: 200 segments of 1 MiB read one after another and with
/// `get_batch`, on plain moto and with 25 ms of simulated first-byte latency per request (moto on
/// loopback answers in about a millisecond, so only the latter shows requests overlapping).
#[test]
fn batched_reads_keep_many_requests_in_flight() {
    let Some(endpoint) = endpoint("batched_reads_keep_many_requests_in_flight") else { return };
    for (suffix, latency) in [("", "no added latency"), ("-delay25", "25 ms per request")] {
        let bucket = fresh_bucket(&endpoint, suffix);
        let store = S3Store::open(S3Config::from_uri(&uri(&endpoint, &bucket, "")).expect("valid")).expect("open");
        let [put_batch, sequential, batched, visited] = time_reads(&store);
        let ratio = sequential.as_secs_f64() / batched.as_secs_f64();
        eprintln!(
            "200 x 1 MiB, moto with {latency}: put_batch {put_batch:.2?}; get one by one {sequential:.2?}; \
             get_batch {batched:.2?} (x{ratio:.1}); visit_batch {visited:.2?}"
        );
        if !suffix.is_empty() {
            // One by one costs at least 200 x 25 ms = 5 s; with 32 in flight the waits overlap.
            assert!(ratio > 2.0, "get_batch ({batched:?}) should be far quicker than one by one ({sequential:?})");
        }
    }
}

#[test]
fn object_names_are_path_prefix_plus_key_names() {
    let Some(endpoint) = endpoint("object_names_are_path_prefix_plus_key_names") else { return };
    let (store, bucket) = open(&endpoint, "&path_prefix=/team/floe/");
    let lib = store.storage("lib one").expect("valid library");
    let key = atom("fx/EUR USD", 7);
    lib.put(&key, Bytes::from_static(b"segment")).expect("put");
    let vref = RefKey::new(KeyType::VersionRef, "fx/EUR USD").expect("valid ref");
    lib.write_ref(&vref, Bytes::from_static(b"head"), RefExpectation::Absent).expect("create ref");

    let (status, listing) = http(&endpoint, "GET", &format!("/{bucket}?list-type=2"));
    assert_eq!(status, 200, "{listing}");
    let expect_atom = format!("team/floe/{}", floe_formats::Key::Atom(key).to_object_name("lib one").expect("valid"));
    assert!(expect_atom.starts_with("team/floe/lib%20one/tdata/fx%2FEUR%20USD/"), "{expect_atom}");
    assert!(listing.contains(&format!("<Key>{expect_atom}</Key>")), "{expect_atom} not in {listing}");
    assert!(listing.contains("<Key>team/floe/lib%20one/vref/fx%2FEUR%20USD</Key>"), "{listing}");
    assert_eq!(listing.matches("<Key>").count(), 2, "{listing}");
}

#[test]
fn libraries_are_listed_and_deleted() {
    let Some(endpoint) = endpoint("libraries_are_listed_and_deleted") else { return };
    let (store, _) = open(&endpoint, "&path_prefix=libs");
    assert_eq!(store.list_libraries().expect("list"), Vec::<String>::new());
    for name in ["zeta", "alpha", "with space", "数据"] {
        let lib = store.library(name).expect("valid");
        lib.put(&atom("s", 1), Bytes::from_static(b"x")).expect("put");
        let cfg = RefKey::new(KeyType::LibraryConfig, "config").expect("valid");
        lib.write_ref(&cfg, Bytes::from_static(b"{}"), RefExpectation::Absent).expect("cfg");
    }
    // An untouched library holds no key, so it is not listed.
    store.library("empty").expect("valid");
    assert_eq!(store.list_libraries().expect("list"), ["alpha", "with space", "zeta", "数据"]);

    // Enough objects for more than one bulk-delete request and list page.
    let big = store.library("alpha").expect("valid");
    let items: Vec<_> = (2..1_205).map(|v| (atom("s", v), Bytes::from_static(b"y"))).collect();
    assert!(big.put_batch(items).into_iter().all(|r| r.is_ok()));
    store.delete_library("alpha").expect("delete");
    store.delete_library("never existed").expect("absent is fine");
    assert_eq!(store.list_libraries().expect("list"), ["with space", "zeta", "数据"]);
    assert!(big.get(&atom("s", 3)).expect_err("deleted").is_not_found());
    // Other libraries are untouched.
    assert_eq!(store.library("zeta").expect("valid").get(&atom("s", 1)).expect("kept"), Bytes::from_static(b"x"));
}

#[test]
fn missing_bucket_is_a_config_error() {
    let Some(endpoint) = endpoint("missing_bucket_is_a_config_error") else { return };
    let config = S3Config::from_uri(&uri(&endpoint, "no-such-bucket-floe", "")).expect("valid URI");
    match S3Store::open(config) {
        Err(StorageError::InvalidConfig(message)) => {
            assert!(message.contains("no-such-bucket-floe"), "{message}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn uri_and_debug_hide_credentials() {
    let Some(endpoint) = endpoint("uri_and_debug_hide_credentials") else { return };
    let bucket = fresh_bucket(&endpoint, "");
    let port = endpoint.rsplit(':').next().expect("port");
    let uri = format!("s3://127.0.0.1:{bucket}?port={port}&https=false&access=AKIDFLOE&secret=SECRETFLOE");
    let store = S3Store::open(S3Config::from_uri(&uri).expect("valid")).expect("open");
    let lib = store.library("l").expect("valid");
    for shown in [store.uri(), format!("{store:?}"), lib.describe(), format!("{lib:?}")] {
        assert!(!shown.contains("SECRETFLOE") && !shown.contains("AKIDFLOE"), "{shown}");
    }
    assert_eq!(store.uri(), format!("s3://127.0.0.1:{bucket}?region=us-east-1&port={port}&https=false"));
}

/// Many reference writers through one store from plain threads: the runtime bridge under load.
#[test]
fn concurrent_callers_share_one_runtime() {
    let Some(endpoint) = endpoint("concurrent_callers_share_one_runtime") else { return };
    let (store, _) = open(&endpoint, "&concurrency=4");
    let lib = store.library("threads").expect("valid");
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..8 {
            let lib = &lib;
            s.spawn(move || {
                for v in 0..20 {
                    let key = atom(&format!("t{t}"), v);
                    lib.put(&key, Bytes::from(vec![t; 1000])).expect("put");
                    assert_eq!(lib.get(&key).expect("get").len(), 1000);
                }
            });
        }
    });
    assert!(started.elapsed() < Duration::from_secs(60));
}
