//! Opening a [`Store`] from a URI: the scheme picks the backend, which parses the rest.
//!
//! | URI | backend |
//! |---|---|
//! | `mem://` | [`MemoryStore`]: a new, empty store in this process on every call |
//! | `lmdb://<path>[?map_size=<size>]` | [`LmdbStore`] (grammar in [`crate::lmdb`]'s config) |
//! | `s3://<host>:<bucket>?region=&access=&secret=&path_prefix=&port=&https=true\|false&...` | [`S3Store`] |
//! | `s3s://...` | [`S3Store`] over https |
//!
//! Schemes are case-insensitive. Error messages never repeat the query string of a URI, where
//! secrets live.

use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::lmdb::{LmdbConfig, LmdbStore};
use crate::memory::MemoryStore;
#[cfg(feature = "s3")]
use crate::s3::{S3Config, S3Store};
use crate::storage::Store;

/// The schemes [`open_store`] understands.
pub const SCHEMES: &[&str] = &["mem", "lmdb", "s3", "s3s"];

const EXPECTED: &str = "expected mem://, lmdb://<path>[?map_size=<size>], or s3://<host>:<bucket>?<options> \
                        (s3s:// for https)";

/// Opens the store `uri` names (see the module docs for the forms).
///
/// # Errors
/// [`StorageError::InvalidConfig`] for an empty URI, one without `<scheme>://`, an unknown scheme,
/// surrounding whitespace, or whatever the backend's own parser refuses (its message names the bad
/// part); the backend's errors when opening fails (e.g. `Unavailable` for an unreachable S3 endpoint).
pub fn open_store(uri: &str) -> Result<Arc<dyn Store>> {
    if uri.is_empty() {
        return Err(invalid(format!("the storage URI is empty; {EXPECTED}")));
    }
    if uri.trim() != uri {
        return Err(invalid(format!(
            "the storage URI {:?} has leading or trailing whitespace (a stray newline?)",
            redacted(uri.trim())
        )));
    }
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(invalid(format!("the storage URI {:?} has no `<scheme>://`; {EXPECTED}", redacted(uri))));
    };
    let lower = scheme.to_ascii_lowercase();
    // The backends' parsers take the scheme in lower case.
    let normalized = format!("{lower}://{rest}");
    match lower.as_str() {
        "mem" => {
            if !rest.is_empty() {
                return Err(invalid(format!(
                    "mem:// takes no path or options, but {:?} follows it; each mem:// store is new and empty",
                    redacted(rest)
                )));
            }
            Ok(Arc::new(MemoryStore::new()))
        }
        "lmdb" => Ok(Arc::new(LmdbStore::open(LmdbConfig::from_uri(&normalized)?)?)),
        #[cfg(feature = "s3")]
        "s3" | "s3s" => Ok(Arc::new(S3Store::open(S3Config::from_uri(&normalized)?)?)),
        #[cfg(not(feature = "s3"))]
        "s3" | "s3s" => Err(invalid("this build of floe-backends has no S3 support (feature \"s3\")".into())),
        "" => Err(invalid(format!("the storage URI {:?} has an empty scheme; {EXPECTED}", redacted(uri)))),
        "file" => {
            Err(invalid("file:// storage is not supported; use lmdb://<path> for a store in a local folder".to_owned()))
        }
        _ => Err(invalid(format!(
            "unknown storage URI scheme {:?}; {EXPECTED}",
            scheme.chars().take(40).collect::<String>()
        ))),
    }
}

fn invalid(message: String) -> StorageError {
    StorageError::InvalidConfig(message)
}

/// The part of a URI safe to show: everything before the query (where `secret=` lives), shortened.
fn redacted(uri: &str) -> String {
    let (base, query) = uri.split_once('?').map_or((uri, false), |(b, _)| (b, true));
    let mut shown: String = base.chars().take(120).collect();
    if shown.len() < base.len() {
        shown.push_str("...");
    }
    if query {
        shown.push_str("?<options hidden>");
    }
    shown
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use floe_formats::{AtomFields, AtomKey, KeyType};

    use super::*;

    fn refused(uri: &str) -> String {
        match open_store(uri) {
            Err(StorageError::InvalidConfig(message)) => message,
            Err(other) => panic!("{uri:?}: expected InvalidConfig, got {other:?}"),
            Ok(store) => panic!("{uri:?}: expected an error, opened {store:?}"),
        }
    }

    #[test]
    fn mem_opens_a_fresh_working_store_each_time() {
        let key = AtomKey::new(KeyType::TableData, "s", AtomFields::default()).expect("valid key");
        let store = open_store("mem://").expect("mem:// opens");
        assert_eq!(store.uri(), "mem://");
        store.library("lib").expect("library").put(&key, Bytes::from_static(b"x")).expect("put");
        assert_eq!(store.list_libraries().expect("list"), ["lib"]);
        let other = open_store("MEM://").expect("schemes are case-insensitive");
        assert!(other.list_libraries().expect("list").is_empty(), "each mem:// store starts empty");
    }

    #[test]
    fn lmdb_dispatches_to_the_lmdb_backend() {
        let dir = std::env::temp_dir().join(format!("floe-uri-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = open_store(&format!("LMDB://{}?map_size=1MiB", dir.display())).expect("lmdb opens");
        assert!(store.uri().starts_with("lmdb://"), "{}", store.uri());
        let key = AtomKey::new(KeyType::TableData, "s", AtomFields::default()).expect("valid key");
        let lib = store.library("lib").expect("library");
        lib.put(&key, Bytes::from_static(b"on disk")).expect("put");
        assert_eq!(lib.get(&key).expect("get"), "on disk");
        drop((lib, store));
        let _ = std::fs::remove_dir_all(&dir);

        assert!(refused("lmdb://").contains("no path"));
        assert!(refused("lmdb:///tmp/x?map_size=lots").contains("map_size"));
    }

    #[test]
    #[cfg(feature = "s3")]
    fn s3_dispatches_to_the_s3_backend() {
        // Nothing listens on port 1, so opening fails in the S3 backend itself.
        let err = open_store("s3://127.0.0.1:bucket?port=1&https=false&access=a&secret=b&max_retries=0&timeout_secs=2")
            .expect_err("nothing listens on port 1");
        assert!(
            matches!(err, StorageError::Unavailable { backend: "s3", .. } | StorageError::Other { backend: "s3", .. }),
            "{err:?}"
        );
        assert!(refused("s3://just-a-host").contains("bucket"));
        assert!(refused("s3s://host:bucket?https=false").contains("https"));
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        assert!(refused("").contains("empty"));
        assert!(refused("/data/floe").contains("no `<scheme>://`"));
        assert!(refused("://x").contains("empty scheme"));
        assert!(refused("mem:// ").contains("whitespace"));
        assert!(refused("mem://x").contains("takes no path"));
        let unknown = refused("ftp://host/x");
        assert!(unknown.contains("unknown storage URI scheme \"ftp\"") && unknown.contains("lmdb://"), "{unknown}");
        assert!(refused("file:///tmp/x").contains("lmdb://"));
    }

    #[test]
    fn secrets_never_reach_error_messages() {
        for uri in ["azure://acct?secret=hunter2", "s3:host:bucket?secret=hunter2", "s3://host?secret=hunter2"] {
            let message = refused(uri);
            assert!(!message.contains("hunter2"), "{uri}: {message}");
        }
    }
}
