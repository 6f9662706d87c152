//! Reads (whole and streamed) racing deletes.

use std::sync::Arc;

use floe_backends::Storage;

use crate::test_storage::{TestStorage, library, table};
use crate::{AsOf, Detail, ErrorKind, ReadRequest};

#[test]
fn a_version_pruned_while_it_is_read_is_version_not_found_not_a_missing_object() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    lib.write("s", &table(0..10), None).expect("v0");
    lib.write("s", &table(100..110), None).expect("v1");
    // Between resolving version 0 and fetching its data, another process prunes it.
    let other = library(Arc::clone(&storage.inner) as Arc<dyn Storage>);
    storage.before_data_read.set(move || other.prune_previous_versions("s").expect("prune"));
    let old = ReadRequest { as_of: AsOf::Version(0), ..Default::default() };
    let err = lib.read("s", &old).expect_err("pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    assert!(err.to_string().contains("deleted while it was being read"), "{err}");
    // A live version whose data is really missing still says so: the object is named.
    let live = lib.read("s", &ReadRequest::default()).expect("v1 reads").data;
    assert_eq!(live.num_rows(), 10);
    let data = (&*storage.inner as &dyn Storage)
        .list_all(floe_formats::KeyType::TableData, floe_backends::ListScope::Symbol("s"))
        .expect("list");
    let floe_formats::Key::Atom(first) = &data[0] else { panic!("data keys are atoms") };
    storage.inner.delete_batch(std::slice::from_ref(first)).expect("delete");
    let err = lib.read("s", &ReadRequest { as_of: AsOf::Version(1), ..Default::default() }).expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_ne!(err.detail(), Detail::VersionNotFound, "{err}");
}

#[test]
fn a_version_pruned_while_it_streams_is_version_not_found_not_a_missing_object() {
    let storage = Arc::new(TestStorage::default());
    let lib = library(Arc::clone(&storage) as Arc<dyn Storage>);
    lib.write("s", &table(0..10), None).expect("v0"); // three row slices of at most 4 rows
    lib.write("s", &table(100..110), None).expect("v1");
    let mut stream = lib.read_stream("s", &ReadRequest { as_of: AsOf::Version(0), ..Default::default() }).expect("v0");
    assert_eq!(stream.next().expect("a first batch").expect("reads").num_rows(), 4);
    // After the first batch another process prunes version 0: the stream cannot go on.
    library(Arc::clone(&storage.inner) as Arc<dyn Storage>).prune_previous_versions("s").expect("prune");
    let err = stream.next().expect("a second item").expect_err("pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
    assert!(err.to_string().contains("deleted while it was being read"), "{err}");
    // A stream of the latest version stays on the version it resolved: a newer one landing and the
    // old one pruned end it the same way (it does not switch versions half-way).
    let mut stream = lib.read_stream("s", &ReadRequest::default()).expect("resolves");
    assert_eq!(stream.item().version, 1);
    stream.next().expect("a first batch").expect("reads");
    lib.write("s", &table(200..210), None).expect("v2");
    lib.prune_previous_versions("s").expect("prune");
    let err = stream.next().expect("a second item").expect_err("v1 pruned");
    assert_eq!((err.kind(), err.detail()), (ErrorKind::NotFound, Detail::VersionNotFound), "{err}");
}
