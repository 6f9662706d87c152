//! The [`Storage`] trait: the only way the engine touches persisted bytes.
//!
//! A `Storage` holds the keys of **one library**. Immutable keys ([`AtomKey`]) are written once and
//! never modified; reference keys ([`RefKey`]) are the only mutable state and change only through
//! compare-and-swap ([`Storage::write_ref`]). Every method is synchronous and may be called from many
//! threads at once; backends that talk to the network hide their runtime behind these calls.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use floe_formats::{AtomKey, Key, KeyType, RefKey};

use crate::error::{Result, StorageError};

/// The opaque version of a reference's value, returned by [`Storage::read_ref`] and
/// [`Storage::write_ref`] and passed back to a later [`Storage::write_ref`] as the expected state.
///
/// Tokens are only meaningful to the backend that issued them, for the same reference. Two reads that
/// return equal tokens saw the same write. A backend must never issue the same token for two different
/// writes of one reference (a generation counter or an S3 e-tag that includes the write's identity).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RefToken(String);

impl RefToken {
    /// Wraps a backend-specific token.
    pub fn new(token: impl Into<String>) -> Self {
        RefToken(token.into())
    }

    /// The backend-specific token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefToken({})", self.0)
    }
}

/// A [`Storage::get`] result with an absent object as `Ok(None)` (as [`Storage::read_ref_and_get`]
/// gives it); every other error as it is.
///
/// # Errors
/// The error of `got`, unless it is [`StorageError::NotFound`].
pub fn absent_as_none(got: Result<Bytes>) -> Result<Option<Bytes>> {
    match got {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A reference's current value and the token that identifies this write of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefValue {
    /// The bytes last written.
    pub bytes: Bytes,
    /// Pass this to [`Storage::write_ref`] to replace the value only if nobody wrote it since.
    pub token: RefToken,
}

/// The state a reference must be in for [`Storage::write_ref`] to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefExpectation<'a> {
    /// Create: the reference must not exist.
    Absent,
    /// Replace: the reference must still hold the write identified by this token.
    At(&'a RefToken),
}

/// Which symbols a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListScope<'a> {
    /// Every key of the type.
    All,
    /// The keys of exactly this symbol (not of symbols that merely start with it).
    Symbol(&'a str),
    /// The keys of every symbol whose name starts with this string (which need not be a valid name).
    SymbolPrefix(&'a str),
}

impl ListScope<'_> {
    /// Whether `symbol` is inside this scope.
    pub fn contains(&self, symbol: &str) -> bool {
        match self {
            ListScope::All => true,
            ListScope::Symbol(s) => *s == symbol,
            ListScope::SymbolPrefix(p) => symbol.starts_with(p),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The keys of this page, in the backend's listing order (stable across pages of one listing).
    pub keys: Vec<Key>,
    /// True when more keys may follow: call again with `after` = the last key of this page. Never true
    /// on an empty page (there is no last key to resume after; [`ListIter`] stops at an empty page).
    pub more: bool,
}

/// The default page size of [`Storage::list_page`] listings; S3 returns at most 1,000 keys per request anyway.
pub const DEFAULT_LIST_PAGE: usize = 1000;

/// The storage of one library: immutable objects plus compare-and-swap references.
///
/// # Contract (checked by the conformance suite, `floe_backends::conformance`)
/// - **Immutable keys.** [`put`](Storage::put) creates a key; writing an existing key again with the
///   same bytes succeeds (so retries are safe), with different bytes fails with
///   [`StorageError::AlreadyExists`] and leaves the stored bytes unchanged. A successful `put` is durable
///   and visible to every later call from any thread or process sharing the storage.
/// - **Reads** return exactly the bytes written, or [`StorageError::NotFound`].
/// - **References** change only through [`write_ref`](Storage::write_ref), which is linearizable: among
///   concurrent calls expecting the same state, at most one succeeds; the others get
///   [`StorageError::Conflict`]. [`delete_ref`](Storage::delete_ref) is the one unconditional change,
///   meant for references nobody races on (dropping a snapshot name, tearing down a library).
/// - **Listings** are paged: a page holds at most `limit` keys, and a listing resumed after the last key
///   of a page neither repeats nor skips keys that existed for the whole listing.
/// - **Errors** are typed ([`StorageError`]); transient failures are retried inside the backend before
///   [`StorageError::Unavailable`] is returned.
///
/// Implementations must be `Send + Sync` and object safe (`Arc<dyn Storage>`).
pub trait Storage: Send + Sync + fmt::Debug {
    /// A short human-readable description, e.g. `lmdb:///data/floe (library prices)`.
    fn describe(&self) -> String;

    /// Writes an immutable object (create only; idempotent for identical bytes).
    ///
    /// # Errors
    /// [`StorageError::AlreadyExists`] if `key` holds different bytes; `Unavailable`/`Other` on
    /// backend failure (then the write may or may not have happened; a retry is safe).
    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()>;

    /// Writes many objects, concurrently where the backend can. Returns one result per item, in order.
    /// The default calls [`put`](Storage::put) for each item in turn.
    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<Result<()>> {
        items.into_iter().map(|(k, v)| self.put(&k, v)).collect()
    }

    /// [`put_batch`](Storage::put_batch) of objects each given as parts, in order: an object's bytes
    /// are its parts joined (none is an empty object). The engine hands over a segment this way when its
    /// raw columns are still the caller's Arrow buffers (design/decisions.md D44), so a backend that
    /// copies values into its own pages anyway can copy the parts there directly, once. The default
    /// joins each object's parts (one copy) and calls `put_batch`; an implementation must store exactly
    /// the joined bytes, with `put`'s create-only semantics (conformance check
    /// `put_batch_parts_stores_the_joined_bytes`).
    fn put_batch_parts(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<()>> {
        self.put_batch(items.into_iter().map(|(k, parts)| (k, join_parts(parts))).collect())
    }

    /// [`put_batch_parts`](Storage::put_batch_parts) of objects that only a later write of this
    /// storage makes reachable (the engine's data segments, which its commit then names). Same
    /// create-only semantics, and readable on return like any put; but an object stored this way
    /// need be durable only once a later durable write of this storage returns (any put or batch
    /// put, [`write_ref`](Storage::write_ref), [`commit_ref`](Storage::commit_ref),
    /// [`delete_ref`](Storage::delete_ref), [`delete_batch`](Storage::delete_batch)), so a backend
    /// may skip a sync per call: a crash before then may lose such objects (never half of one), and
    /// nothing named them yet. LMDB leaves its commits' meta pages to the next durable write
    /// (design/decisions.md D59); the default is `put_batch_parts`, durable at once. Conformance check
    /// `put_batch_parts_before_commit_stores_like_put`.
    fn put_batch_parts_before_commit(&self, items: Vec<(AtomKey, Vec<Bytes>)>) -> Vec<Result<()>> {
        self.put_batch_parts(items)
    }

    /// Reads a whole object.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if absent.
    fn get(&self, key: &AtomKey) -> Result<Bytes>;

    /// Reads bytes `range` of an object; the range is clamped to the object's end, so a range past it
    /// returns fewer bytes (possibly none).
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if absent.
    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        let all = self.get(key)?;
        let len = all.len() as u64;
        let start = usize::try_from(range.start.min(len)).expect("clamped to a usize length");
        let end = usize::try_from(range.end.min(len).max(range.start.min(len))).expect("clamped to a usize length");
        Ok(all.slice(start..end))
    }

    /// Reads many objects, concurrently where the backend can. One result per key, in order.
    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Reads many objects and hands each to `visit` as borrowed bytes, possibly from several threads
    /// at once and in any order; `visit` gets the key's index in `keys`. Backends that can lend their
    /// pages (LMDB's memory map) call `visit` without copying. The first error from a read or from
    /// `visit` is returned; other visits may still run before it is.
    ///
    /// The default fetches with [`get_batch`](Storage::get_batch) and visits in parallel on rayon.
    ///
    /// # Errors
    /// The first read error ([`StorageError::NotFound`], ...) or the first error `visit` returned.
    fn visit_batch(&self, keys: &[AtomKey], visit: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync)) -> Result<()> {
        let fetched = self.get_batch(keys);
        use rayon::prelude::*;
        fetched.into_par_iter().enumerate().try_for_each(|(i, r)| visit(i, &r?))
    }

    /// [`visit_batch`](Storage::visit_batch) with every visit on the calling thread, in key order, one
    /// after another: for callers whose visits are too small to be worth handing to other threads (a
    /// hand-off and back costs tens of microseconds). The first error stops the visits and is returned.
    ///
    /// The default fetches with [`get_batch`](Storage::get_batch); backends that lend their pages
    /// visit them in place, as in `visit_batch`.
    ///
    /// # Errors
    /// As [`visit_batch`](Storage::visit_batch).
    fn visit_batch_here(&self, keys: &[AtomKey], visit: &mut dyn FnMut(usize, &[u8]) -> Result<()>) -> Result<()> {
        self.get_batch(keys).into_iter().enumerate().try_for_each(|(i, r)| visit(i, &r?))
    }

    /// The sizes in bytes of many objects: one result per key, in order ([`StorageError::NotFound`]
    /// for an absent one). For storage accounting, so it must not download what it can avoid: the
    /// default measures the objects through [`visit_batch`](Storage::visit_batch) (no copy where the
    /// backend lends its pages) and, if one is missing, through [`get_batch`](Storage::get_batch) key by
    /// key; an object store answers from object metadata instead.
    fn size_batch(&self, keys: &[AtomKey]) -> Vec<Result<u64>> {
        let sizes: Vec<std::sync::atomic::AtomicU64> = keys.iter().map(|_| Default::default()).collect();
        let visited = self.visit_batch(keys, &|i, bytes| {
            sizes[i].store(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        });
        match visited {
            Ok(()) => sizes.into_iter().map(|s| Ok(s.into_inner())).collect(),
            Err(_) => self.get_batch(keys).into_iter().map(|r| r.map(|b| b.len() as u64)).collect(),
        }
    }

    /// Whether [`visit_batch`](Storage::visit_batch) lends the backend's own pages (no copy, so a
    /// reader may visit twice instead of fetching once). `false` by default: then `visit_batch` fetches,
    /// and callers needing two passes should fetch once with [`get_batch`](Storage::get_batch).
    fn lends_pages(&self) -> bool {
        false
    }

    /// How many [`put_batch`](Storage::put_batch) calls the backend serves at once. Calls beyond it
    /// wait (LMDB has one writer), holding their values in memory all the while, so the write pipeline
    /// stores with at most this many concurrent calls. Unlimited by default (an object store takes
    /// concurrent requests); a backend that serializes its writes returns 1.
    fn concurrent_puts(&self) -> usize {
        usize::MAX
    }

    /// Whether an immutable object exists.
    fn exists(&self, key: &AtomKey) -> Result<bool>;

    /// Deletes objects. Missing keys are not an error (deletes are idempotent).
    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()>;

    /// Lists one page of keys of `key_type` (atom or reference type) within `scope`, starting after
    /// `after` (a key returned by an earlier page of the same listing), at most `limit` keys.
    fn list_page(&self, key_type: KeyType, scope: ListScope<'_>, after: Option<&Key>, limit: usize)
    -> Result<ListPage>;

    /// Visits every key of `key_type` within `scope` with its value, in listing order, on the calling
    /// thread: an object's bytes, or a reference's value (without its token: a walk is for reading
    /// many small values at once, not for a compare-and-swap). For the version records of a
    /// symbol's versions and the heads of a library's symbols: LMDB walks one cursor through one
    /// read transaction, lending its pages, instead of searching the tree once per key.
    ///
    /// A key deleted between its listing and its read is skipped (a listing is not a snapshot
    /// either). The default lists page by page and reads each page with
    /// [`get_batch`](Storage::get_batch) or [`read_ref_batch`](Storage::read_ref_batch).
    ///
    /// # Errors
    /// The first listing or read error; the first error `visit` returned (then no later key is
    /// visited).
    fn visit_listed(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        visit: &mut dyn FnMut(&Key, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut after: Option<Key> = None;
        loop {
            let page = self.list_page(key_type, scope, after.as_ref(), DEFAULT_LIST_PAGE)?;
            let (mut atoms, mut refs) = (Vec::new(), Vec::new());
            for key in &page.keys {
                match key {
                    Key::Atom(a) => atoms.push(a.clone()),
                    Key::Ref(r) => refs.push(r.clone()),
                }
            }
            // A page lists keys of `key_type` only, so it is all objects or all references and the
            // values below line up with its keys.
            let objects = self.get_batch(&atoms).into_iter().map(|fetched| match fetched {
                Ok(bytes) => Ok(Some(bytes)),
                Err(StorageError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            });
            let references = self.read_ref_batch(&refs).into_iter().map(|read| read.map(|v| v.map(|v| v.bytes)));
            for (key, value) in page.keys.iter().zip(objects.chain(references)) {
                if let Some(bytes) = value? {
                    visit(key, &bytes)?;
                }
            }
            if !page.more {
                return Ok(());
            }
            after = page.keys.last().cloned();
        }
    }

    /// Reads a reference and its token, or `None` if it does not exist.
    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>>;

    /// Reads several references: one result per key, in order, each as [`Storage::read_ref`] would
    /// return it. The default reads them one by one; LMDB reads them all in one transaction (a
    /// consistent view), other backends may read them concurrently (each then as of its own moment).
    fn read_ref_batch(&self, keys: &[RefKey]) -> Vec<Result<Option<RefValue>>> {
        keys.iter().map(|k| self.read_ref(k)).collect()
    }

    /// Reads the reference `key` and the object `object` together: each result as
    /// [`Storage::read_ref`] and [`Storage::get`] would give it, but an absent object is `Ok(None)`.
    /// For a read of an old version, which needs a symbol's head and the version's record: LMDB
    /// reads both in one transaction (one snapshot), S3 sends both requests at once (one round trip
    /// instead of two). The default reads the reference, then the object.
    fn read_ref_and_get(&self, key: &RefKey, object: &AtomKey) -> (Result<Option<RefValue>>, Result<Option<Bytes>>) {
        (self.read_ref(key), absent_as_none(self.get(object)))
    }

    /// Compare-and-swap write of a reference: succeeds only if the reference is in the `expected`
    /// state, and returns the new token.
    ///
    /// # Errors
    /// [`StorageError::Conflict`] if the reference is not in the expected state (nothing is written).
    /// On `Unavailable`/`Other` the write may or may not have happened: re-read to find out.
    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken>;

    /// Deletes a reference unconditionally; absent is not an error. Not for references writers race on.
    fn delete_ref(&self, key: &RefKey) -> Result<()>;

    /// Writes `objects` (create-only, as [`put`](Storage::put)) and then compare-and-swaps `key` to
    /// `value`, as one commit: the engine's commit step (the new index plus the reference).
    ///
    /// On success every object and the reference are written. On [`StorageError::Conflict`] the
    /// reference is unchanged and the objects may or may not have been written. Backends with
    /// transactions override this to do both in one atomic, durable transaction (LMDB: one fsync instead
    /// of several); the default is [`put_batch`](Storage::put_batch) then [`write_ref`](Storage::write_ref).
    ///
    /// # Errors
    /// The first object's error (then the reference is not touched), or `write_ref`'s errors.
    fn commit_ref(
        &self,
        objects: Vec<(AtomKey, Bytes)>,
        key: &RefKey,
        value: Bytes,
        expected: RefExpectation<'_>,
    ) -> Result<RefToken> {
        if !objects.is_empty() {
            for r in self.put_batch(objects) {
                r?;
            }
        }
        self.write_ref(key, value, expected)
    }
}

impl dyn Storage + '_ {
    /// Every key of `key_type` in `scope`, fetched lazily page by page (at most
    /// [`DEFAULT_LIST_PAGE`] keys held at once).
    pub fn list(&self, key_type: KeyType, scope: ListScope<'_>) -> ListIter<'_> {
        ListIter {
            storage: self,
            key_type,
            scope: scope_owned(scope),
            page: Vec::new().into_iter(),
            after: None,
            done: false,
        }
    }

    /// Collects a whole listing (for small listings: the keys of one symbol, the symbols of a library).
    ///
    /// # Errors
    /// The first error of any page.
    pub fn list_all(&self, key_type: KeyType, scope: ListScope<'_>) -> Result<Vec<Key>> {
        self.list(key_type, scope).collect()
    }
}

#[derive(Debug, Clone)]
enum OwnedScope {
    All,
    Symbol(String),
    SymbolPrefix(String),
}

fn scope_owned(scope: ListScope<'_>) -> OwnedScope {
    match scope {
        ListScope::All => OwnedScope::All,
        ListScope::Symbol(s) => OwnedScope::Symbol(s.to_owned()),
        ListScope::SymbolPrefix(p) => OwnedScope::SymbolPrefix(p.to_owned()),
    }
}

impl OwnedScope {
    fn borrow(&self) -> ListScope<'_> {
        match self {
            OwnedScope::All => ListScope::All,
            OwnedScope::Symbol(s) => ListScope::Symbol(s),
            OwnedScope::SymbolPrefix(p) => ListScope::SymbolPrefix(p),
        }
    }
}

/// A lazy listing made by `<dyn Storage>::list`: fetches one page at a time.
#[derive(Debug)]
pub struct ListIter<'s> {
    storage: &'s dyn Storage,
    key_type: KeyType,
    scope: OwnedScope,
    page: std::vec::IntoIter<Key>,
    after: Option<Key>,
    done: bool,
}

impl Iterator for ListIter<'_> {
    type Item = Result<Key>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(k) = self.page.next() {
                self.after = Some(k.clone());
                return Some(Ok(k));
            }
            if self.done {
                return None;
            }
            match self.storage.list_page(self.key_type, self.scope.borrow(), self.after.as_ref(), DEFAULT_LIST_PAGE) {
                Ok(page) => {
                    self.done = !page.more || page.keys.is_empty();
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// A store: the place a URI names, holding any number of libraries.
pub trait Store: Send + Sync + fmt::Debug {
    /// The URI this store was opened from, with secrets removed.
    fn uri(&self) -> String;

    /// The storage of library `name`, created empty if it does not exist yet. Opening the same library
    /// twice returns storages that share state (for LMDB: the same environment).
    ///
    /// # Errors
    /// [`StorageError::Format`] for an invalid library name; backend errors.
    fn library(&self, name: &str) -> Result<std::sync::Arc<dyn Storage>>;

    /// The names of the libraries holding at least one key, sorted.
    fn list_libraries(&self) -> Result<Vec<String>>;

    /// Removes every key of library `name`. Absent is not an error.
    fn delete_library(&self, name: &str) -> Result<()>;
}

/// Checks that `limit` is usable for a page.
///
/// # Errors
/// [`StorageError::InvalidConfig`] when it is zero.
pub fn check_page_limit(limit: usize) -> Result<()> {
    if limit == 0 {
        return Err(StorageError::InvalidConfig("list page limit must be at least 1".into()));
    }
    Ok(())
}

/// The bytes of `parts` joined: the one part itself when there is one, else a copy.
pub fn join_parts(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().expect("one part");
    }
    Bytes::from(parts.concat())
}
