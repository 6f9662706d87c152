//! Stores for the reliability harnesses: a fresh LMDB folder, or a fresh bucket on the S3 server named
//! by `FLOE_S3_ENDPOINT` (`scripts/s3-server.sh start` prints it), both reachable by URI from child
//! processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::tmp::TempDir;

/// A store the harness and its children open by URI; an LMDB folder is removed on drop.
#[derive(Debug)]
pub struct TestStore {
    /// The URI.
    pub uri: String,
    /// `lmdb` or `s3`, for messages.
    pub kind: &'static str,
    /// A folder the harness may use for files of its own (stop files).
    pub scratch: TempDir,
    _dir: Option<TempDir>,
}

/// A fresh LMDB store.
pub fn lmdb_store(prefix: &str) -> TestStore {
    let dir = TempDir::new(prefix);
    let uri = format!("lmdb://{}?map_size=1GiB", dir.path().display());
    TestStore { uri, kind: "lmdb", scratch: TempDir::new(&format!("{prefix}-scratch")), _dir: Some(dir) }
}

/// The S3 endpoint (`http://127.0.0.1:<port>`), or `None` after printing why the S3 variant is skipped.
pub fn s3_endpoint(test: &str) -> Option<String> {
    match std::env::var("FLOE_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            eprintln!("{test}: S3 variant skipped (set FLOE_S3_ENDPOINT, e.g. via scripts/s3-server.sh start)");
            None
        }
    }
}

/// A store in a fresh bucket on the S3 server at `endpoint`.
pub fn s3_store(endpoint: &str, prefix: &str) -> TestStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let bucket = format!("{prefix}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let (status, response) = http(endpoint, "PUT", &format!("/{bucket}"), b"");
    assert_eq!(status, 200, "creating bucket {bucket}: {response}");
    let port = endpoint.rsplit(':').next().expect("endpoint has a port");
    let uri = format!("s3://127.0.0.1:{bucket}?port={port}&https=false&access=testing&secret=testing");
    TestStore { uri, kind: "s3", scratch: TempDir::new(&format!("{prefix}-scratch")), _dir: None }
}

/// One raw HTTP/1.1 request (the loopback server needs no signature for bucket creation):
/// `(status, whole response)`.
pub fn http(endpoint: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let host = endpoint.strip_prefix("http://").expect("FLOE_S3_ENDPOINT looks like http://<host>:<port>");
    let mut stream = TcpStream::connect(host).expect("connect to the S3 server");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send request");
    stream.write_all(body).expect("send body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("HTTP status line");
    (status, response)
}

/// A private copy of a child binary, removed on drop: a long harness run must not fail because a
/// concurrent `cargo build` replaces the binary under it. A hard link when possible (no space used).
#[derive(Debug)]
pub struct PrivateExe {
    _dir: TempDir,
    /// The copy's path.
    pub path: String,
}

impl PrivateExe {
    /// Links or copies `exe`.
    pub fn new(exe: &str) -> Self {
        let dir = TempDir::new("floe-stress-exe");
        let path = dir.path().join("floe-stress");
        if std::fs::hard_link(exe, &path).is_err() {
            std::fs::copy(exe, &path).unwrap_or_else(|e| panic!("copy {exe}: {e}"));
        }
        let path = path.display().to_string();
        PrivateExe { _dir: dir, path }
    }
}
