//! [`S3Store`] (a bucket and path prefix holding libraries) and [`S3Storage`] (one library in it).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use floe_formats::key::{library_from_object_part, object_library_prefix, object_symbol_prefix};
use floe_formats::names::validate_library;
use floe_formats::{AtomKey, Key, KeyClass, KeyType, RefKey};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig, UpdateVersion,
};

use super::config::S3Config;
use super::errors::{map_error, was_retried};
use super::runtime::IoRuntime;
use super::write_id;
use crate::error::{Result, StorageError};
use crate::storage::{
    ListPage, ListScope, RefExpectation, RefToken, RefValue, Storage, Store, absent_as_none, check_page_limit,
};

const BACKEND: &str = "s3";
/// S3 returns at most this many keys per list request.
const S3_LIST_PAGE: usize = 1000;
/// How long all attempts of one request may take together before object_store stops retrying.
/// (object_store's default is 180 s, which left a caller of a server that accepts connections but never
/// answers waiting three minutes.)
const RETRY_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a store waits for the bucket check, retries included: a server that accepts
/// connections but never answers should fail the open promptly, not after the data-path timeouts.
const OPEN_CHECK_DEADLINE: Duration = Duration::from_secs(15);

/// What a store and the storages it hands out share: one client, one runtime.
struct Shared {
    config: S3Config,
    /// `<path_prefix>/` or empty: prepended to every object name.
    root: String,
    client: AmazonS3,
    runtime: IoRuntime,
}

impl Shared {
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.runtime.block_on(future)
    }

    /// The root as an object_store path (for `list`, which lists "directories"), `None` for the
    /// bucket's root.
    fn root_path(&self) -> Result<Option<Path>> {
        if self.root.is_empty() { Ok(None) } else { parse_path(&self.root).map(Some) }
    }
}

fn parse_path(name: &str) -> Result<Path> {
    // `Path::parse` keeps our percent-escapes as they are (`Path::from` would escape them again);
    // object_store escapes `%` once more in the request URL, so S3 stores the name verbatim.
    Path::parse(name).map_err(|e| StorageError::Other {
        backend: BACKEND,
        message: format!("object name {name:?} is not a valid object_store path"),
        source: Some(Box::new(e)),
    })
}

fn other(message: String) -> StorageError {
    StorageError::other(BACKEND, message)
}

/// An S3 bucket (and path prefix inside it) holding Floe libraries under `<path_prefix>/<library>/`.
///
/// Cheap to clone; clones and the [`S3Storage`]s it hands out share one HTTP client and one tokio
/// runtime (two IO threads), which stops when the last of them is dropped.
#[derive(Clone)]
pub struct S3Store {
    shared: Arc<Shared>,
}

impl S3Store {
    /// Connects to the bucket `config` names and checks that it exists and the credentials work
    /// (one list request).
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] for a bad configuration, a missing bucket or refused
    /// credentials; [`StorageError::Unavailable`] if the endpoint cannot be reached (after retries).
    pub fn open(config: S3Config) -> Result<Self> {
        config.validate()?;
        let runtime = IoRuntime::new()?;
        let client = build_client(&config, &runtime)?;
        let root = config.root();
        let store = S3Store { shared: Arc::new(Shared { config, root, client, runtime }) };
        store.check_bucket()?;
        Ok(store)
    }

    /// The configuration this store was opened with.
    pub fn config(&self) -> &S3Config {
        &self.shared.config
    }

    /// The storage of library `name` as its concrete type (see [`Store::library`]).
    ///
    /// # Errors
    /// [`StorageError::Format`] for an invalid library name.
    pub fn storage(&self, name: &str) -> Result<S3Storage> {
        validate_library(name)?;
        Ok(S3Storage { shared: Arc::clone(&self.shared), library: name.to_owned() })
    }

    fn check_bucket(&self) -> Result<()> {
        let shared = &self.shared;
        let what = format!("bucket {} at {}", shared.config.bucket, shared.config.endpoint());
        if shared.config.access.is_none() {
            // Looked up on its own first, under its own deadline: the lookup's last resort (instance
            // metadata) retries as long as any request, and a deadline it ran past would otherwise be
            // reported as a bucket that does not answer.
            shared.block_on(lookup_credentials(&shared.client, OPEN_CHECK_DEADLINE, &what))?;
        }
        let prefix = (!shared.root.is_empty()).then_some(shared.root.as_str());
        let opts = PaginatedListOptions { max_keys: Some(1), ..Default::default() };
        let check = shared.block_on(async {
            tokio::time::timeout(OPEN_CHECK_DEADLINE, shared.client.list_paginated(prefix, opts)).await
        });
        let Ok(listed) = check else {
            return Err(StorageError::Unavailable {
                backend: BACKEND,
                message: format!(
                    "no answer from {what} within {} s while opening the store (is the endpoint an S3 \
                     server, and reachable?)",
                    OPEN_CHECK_DEADLINE.as_secs()
                ),
                source: None,
            });
        };
        match listed {
            Ok(_) => Ok(()),
            Err(e) => match map_error(e, &what) {
                StorageError::NotFound { .. } => Err(StorageError::InvalidConfig(format!("S3 {what} does not exist"))),
                mapped => Err(mapped),
            },
        }
    }
}

/// Finds the credentials a client without explicit ones will sign with (environment, web identity,
/// container or instance metadata), waiting at most `deadline`; `what` names the bucket in messages.
///
/// # Errors
/// [`StorageError::InvalidConfig`] naming the credentials when none are found, or when the lookup
/// gives no answer within `deadline` (typically: not on a cloud instance, and the metadata address
/// drops packets), since the fix either way is to give credentials.
async fn lookup_credentials(client: &AmazonS3, deadline: Duration, what: &str) -> Result<()> {
    match tokio::time::timeout(deadline, client.credentials().get_credential()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(map_error(e, &what)),
        Err(_) => Err(StorageError::InvalidConfig(format!(
            "no S3 credentials for {what}: none in the URI or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and \
             the lookup from web identity and instance metadata gave no answer within {} s; give `access` and \
             `secret` in the URI or set the AWS_* environment",
            deadline.as_secs_f32()
        ))),
    }
}

fn build_client(config: &S3Config, runtime: &IoRuntime) -> Result<AmazonS3> {
    // Without explicit credentials take them from the environment (AWS_ACCESS_KEY_ID, web
    // identity, instance metadata); everything else is set explicitly below and wins.
    let mut builder = match (&config.access, &config.secret) {
        (Some(access), Some(secret)) => {
            AmazonS3Builder::new().with_access_key_id(access).with_secret_access_key(secret)
        }
        _ => AmazonS3Builder::from_env(),
    };
    let client_options = ClientOptions::new()
        .with_allow_http(!config.https)
        .with_timeout(config.timeout)
        .with_connect_timeout(CONNECT_TIMEOUT);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: config.max_retries,
        retry_timeout: RETRY_TIMEOUT,
    };
    builder = builder
        .with_endpoint(config.endpoint())
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        // Path-style requests work with every S3-compatible server and with IP-address endpoints.
        .with_virtual_hosted_style_request(false)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_client_options(client_options)
        .with_retry(retry);
    // Built inside the runtime in case a credential provider wants a reactor at construction.
    runtime.block_on(async move { builder.build() }).map_err(|e| {
        StorageError::InvalidConfig(format!("cannot configure the S3 client for {}: {e}", config.to_uri()))
    })
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its Debug output includes the credentials.
        f.debug_struct("S3Store").field("config", &self.shared.config).finish()
    }
}

impl Store for S3Store {
    fn uri(&self) -> String {
        self.shared.config.to_uri()
    }

    fn library(&self, name: &str) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.storage(name)?))
    }

    fn list_libraries(&self) -> Result<Vec<String>> {
        let shared = &self.shared;
        let root = shared.root_path()?;
        let listing = shared
            .block_on(shared.client.list_with_delimiter(root.as_ref()))
            .map_err(|e| map_error(e, &format!("the libraries of {}", shared.config.to_uri())))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter_map(|part| library_from_object_part(part).ok())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn delete_library(&self, name: &str) -> Result<()> {
        let shared = &self.shared;
        let folder = parse_path(&format!("{}{}", shared.root, object_library_prefix(name)?))?;
        let what = format!("library {name:?}");
        shared.block_on(async {
            let locations = shared.client.list(Some(&folder)).map_ok(|meta| meta.location).boxed();
            drain_deletes(shared.client.delete_stream(locations), &what).await
        })
    }
}

/// Runs a bulk delete to the end; objects that are already gone are not an error.
async fn drain_deletes(mut results: BoxStream<'_, object_store::Result<Path>>, what: &str) -> Result<()> {
    while let Some(result) = results.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(map_error(e, &what)),
        }
    }
    Ok(())
}

/// The storage of one library in an [`S3Store`].
#[derive(Clone)]
pub struct S3Storage {
    shared: Arc<Shared>,
    library: String,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage").field("library", &self.library).field("config", &self.shared.config).finish()
    }
}

type Display<'a> = &'a (dyn fmt::Display + Sync);

impl S3Storage {
    fn client(&self) -> &AmazonS3 {
        &self.shared.client
    }

    fn path(&self, key: &Key) -> Result<Path> {
        parse_path(&format!("{}{}", self.shared.root, key.to_object_name(&self.library)?))
    }

    fn atom_path(&self, key: &AtomKey) -> Result<Path> {
        self.path(&Key::Atom(key.clone()))
    }

    fn ref_path(&self, key: &RefKey) -> Result<Path> {
        self.path(&Key::Ref(key.clone()))
    }

    async fn fetch(&self, path: &Path, key: Display<'_>) -> Result<Bytes> {
        let got = self.client().get(path).await.map_err(|e| map_error(e, key))?;
        got.bytes().await.map_err(|e| map_error(e, key))
    }

    async fn get_async(&self, key: &AtomKey) -> Result<Bytes> {
        self.fetch(&self.atom_path(key)?, key).await
    }

    async fn put_async(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        let path = self.atom_path(key)?;
        let created = self.client().put_opts(&path, PutPayload::from(value.clone()), PutMode::Create.into()).await;
        match created {
            Ok(_) => Ok(()),
            // Create-only lost: fine if the stored bytes are ours (a retry, or a writer of the
            // same content-addressed object).
            Err(object_store::Error::AlreadyExists { .. }) => {
                if self.fetch(&path, key).await? == value {
                    Ok(())
                } else {
                    Err(StorageError::already_exists(key))
                }
            }
            Err(e) => Err(map_error(e, key)),
        }
    }

    async fn get_range_async(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        let path = self.atom_path(key)?;
        if range.start >= range.end {
            self.client().head(&path).await.map_err(|e| map_error(e, key))?;
            return Ok(Bytes::new());
        }
        match self.client().get_range(&path, range.clone()).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ object_store::Error::NotFound { .. }) => Err(map_error(e, key)),
            // S3 answers 416 when the range starts at or past the end; the contract wants an empty
            // result then. A HEAD tells that case apart from real failures.
            Err(e) => match self.client().head(&path).await {
                Ok(meta) if meta.size <= range.start => Ok(Bytes::new()),
                _ => Err(map_error(e, key)),
            },
        }
    }

    async fn exists_async(&self, key: &AtomKey) -> Result<bool> {
        match self.client().head(&self.atom_path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(map_error(e, key)),
        }
    }

    async fn read_ref_async(&self, key: &RefKey) -> Result<Option<RefValue>> {
        let got = match self.client().get(&self.ref_path(key)?).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(map_error(e, key)),
        };
        // The e-tag and the body come from the same GET response, so they describe the same write.
        let e_tag = got.meta.e_tag.clone();
        let stored = got.bytes().await.map_err(|e| map_error(e, key))?;
        let token = e_tag.ok_or_else(|| other(format!("the S3 server sent no e-tag for reference {key}")))?;
        let bytes = write_id::strip(stored).ok_or_else(|| {
            other(format!("reference {key} is shorter than its {}-byte write id", write_id::WRITE_ID_LEN))
        })?;
        Ok(Some(RefValue { bytes, token: RefToken::new(token) }))
    }

    async fn write_ref_async(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        let path = self.ref_path(key)?;
        let stored = write_id::stamp(&value);
        let mode = match expected {
            RefExpectation::Absent => PutMode::Create,
            RefExpectation::At(token) => {
                PutMode::Update(UpdateVersion { e_tag: Some(token.as_str().to_owned()), version: None })
            }
        };
        match self.client().put_opts(&path, PutPayload::from(stored.clone()), mode.into()).await {
            Ok(put) => put.e_tag.map(RefToken::new).ok_or_else(|| {
                other(format!("the S3 server sent no e-tag after writing reference {key} (the write happened)"))
            }),
            Err(e @ (object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. })) => {
                // If object_store retried a request whose first attempt landed, the retry "loses"
                // against our own write. The write id tells: the stored bytes are ours only then.
                // Without retries the one attempt was refused, so the extra GET is skipped.
                if was_retried(&e)
                    && let Some(token) = self.token_if_stored(&path, &stored).await
                {
                    return Ok(token);
                }
                Err(StorageError::conflict(key))
            }
            Err(e) => Err(map_error(e, key)),
        }
    }

    /// The e-tag of the object at `path` if it holds exactly `stored`; `None` otherwise or on error.
    async fn token_if_stored(&self, path: &Path, stored: &Bytes) -> Option<RefToken> {
        let got = self.client().get(path).await.ok()?;
        let e_tag = got.meta.e_tag.clone()?;
        (got.bytes().await.ok()? == stored).then(|| RefToken::new(e_tag))
    }

    async fn delete_ref_async(&self, key: &RefKey) -> Result<()> {
        match self.client().delete(&self.ref_path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_error(e, key)),
        }
    }

    async fn list_page_async(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        check_page_limit(limit)?;
        let library = &self.library;
        // A plain string prefix (not object_store's directory listing), so a symbol prefix can end
        // in the middle of a name part: per-byte percent-encoding keeps prefixes prefixes.
        let mut prefix = self.shared.root.clone();
        match scope {
            ListScope::All => prefix.push_str(&object_symbol_prefix(library, key_type, "")?),
            ListScope::Symbol(symbol) => {
                prefix.push_str(&object_symbol_prefix(library, key_type, symbol)?);
                if key_type.class() == KeyClass::Atom {
                    prefix.push('/');
                }
            }
            ListScope::SymbolPrefix(p) => prefix.push_str(&object_symbol_prefix(library, key_type, p)?),
        }
        let offset = match after {
            Some(key) => Some(format!("{}{}", self.shared.root, key.to_object_name(library)?)),
            None => None,
        };
        let what = format!("listing of {key_type} keys in library {library:?}");
        let mut keys = Vec::new();
        let mut page_token = None;
        loop {
            let opts = PaginatedListOptions {
                offset: offset.clone(),
                max_keys: Some((limit - keys.len()).min(S3_LIST_PAGE)),
                page_token: page_token.take(),
                ..Default::default()
            };
            let page = self.client().list_paginated(Some(&prefix), opts).await.map_err(|e| map_error(e, &what))?;
            for meta in page.result.objects {
                if keys.len() == limit {
                    return Ok(ListPage { keys, more: true });
                }
                // Names that do not parse, or belong to another library or type, are skipped.
                if let Some(key) = self.parse_listed(meta.location.as_ref(), key_type, scope) {
                    keys.push(key);
                }
            }
            match page.page_token {
                Some(token) if keys.len() < limit => page_token = Some(token),
                token => return Ok(ListPage { keys, more: token.is_some() }),
            }
        }
    }

    fn parse_listed(&self, name: &str, key_type: KeyType, scope: ListScope<'_>) -> Option<Key> {
        let (library, key) = Key::from_object_name(name.strip_prefix(self.shared.root.as_str())?).ok()?;
        (library == self.library && key.key_type() == key_type && scope.contains(key.symbol())).then_some(key)
    }

    /// Runs `op` on every item with up to `concurrency` in flight; results in input order.
    fn run_batch<T, R, F, Fut>(&self, items: Vec<T>, op: F) -> Vec<Result<R>>
    where
        T: Send,
        R: Send,
        F: Fn(T) -> Fut + Sync,
        Fut: Future<Output = Result<R>> + Send,
    {
        let n = items.len();
        let op = &op;
        let done = self.shared.block_on(async move {
            stream::iter(items.into_iter().enumerate())
                .map(|(i, item)| async move { (i, op(item).await) })
                .buffer_unordered(self.shared.config.concurrency)
                .collect::<Vec<_>>()
                .await
        });
        let mut out: Vec<Option<Result<R>>> = (0..n).map(|_| None).collect();
        for (i, result) in done {
            out[i] = Some(result);
        }
        out.into_iter().map(|r| r.expect("buffer_unordered yields every index exactly once")).collect()
    }
}

impl Storage for S3Storage {
    fn describe(&self) -> String {
        format!("{} (library {})", self.shared.config.to_uri(), self.library)
    }

    fn put(&self, key: &AtomKey, value: Bytes) -> Result<()> {
        self.shared.block_on(self.put_async(key, value))
    }

    fn put_batch(&self, items: Vec<(AtomKey, Bytes)>) -> Vec<Result<()>> {
        self.run_batch(items, |(key, value)| async move { self.put_async(&key, value).await })
    }

    fn get(&self, key: &AtomKey) -> Result<Bytes> {
        self.shared.block_on(self.get_async(key))
    }

    fn get_range(&self, key: &AtomKey, range: Range<u64>) -> Result<Bytes> {
        self.shared.block_on(self.get_range_async(key, range))
    }

    fn get_batch(&self, keys: &[AtomKey]) -> Vec<Result<Bytes>> {
        self.run_batch(keys.iter().collect(), |key| self.get_async(key))
    }

    /// Fetches with up to `concurrency` requests in flight and hands each object to `visit` on the
    /// rayon pool as soon as it arrives, so decoding overlaps with downloading. Stops issuing
    /// requests after the first error.
    fn visit_batch(&self, keys: &[AtomKey], visit: &(dyn Fn(usize, &[u8]) -> Result<()> + Sync)) -> Result<()> {
        let first_error: Mutex<Option<StorageError>> = Mutex::new(None);
        let failed = AtomicBool::new(false);
        let fail = |e: StorageError| {
            failed.store(true, Ordering::Relaxed);
            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e);
        };
        let (fail, failed) = (&fail, &failed);
        rayon::in_place_scope(|scope| {
            self.shared.block_on(async {
                // Indices, not `&AtomKey` items: a closure taking a reference trips rustc's
                // higher-ranked `Send` check on the resulting future.
                let mut arrivals = stream::iter(0..keys.len())
                    .map(|i| async move { (i, self.get_async(&keys[i]).await) })
                    .buffer_unordered(self.shared.config.concurrency);
                while let Some((i, fetched)) = arrivals.next().await {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    match fetched {
                        Ok(bytes) => scope.spawn(move |_| {
                            if !failed.load(Ordering::Relaxed)
                                && let Err(e) = visit(i, &bytes)
                            {
                                fail(e);
                            }
                        }),
                        Err(e) => {
                            fail(e);
                            break;
                        }
                    }
                }
            });
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn exists(&self, key: &AtomKey) -> Result<bool> {
        self.shared.block_on(self.exists_async(key))
    }

    /// One HEAD request per key, up to `concurrency` in flight: no object is downloaded.
    fn size_batch(&self, keys: &[AtomKey]) -> Vec<Result<u64>> {
        self.run_batch(keys.iter().collect(), |key| async move {
            let meta = self.client().head(&self.atom_path(key)?).await.map_err(|e| map_error(e, key))?;
            Ok(meta.size)
        })
    }

    /// Uses S3's bulk delete (`DeleteObjects`, up to 1,000 keys per request, several requests in
    /// flight).
    fn delete_batch(&self, keys: &[AtomKey]) -> Result<()> {
        let paths = keys.iter().map(|k| self.atom_path(k)).collect::<Result<Vec<_>>>()?;
        let what = format!("a batch of {} keys in library {:?}", keys.len(), self.library);
        self.shared.block_on(async {
            let locations = stream::iter(paths.into_iter().map(Ok)).boxed();
            drain_deletes(self.client().delete_stream(locations), &what).await
        })
    }

    fn list_page(
        &self,
        key_type: KeyType,
        scope: ListScope<'_>,
        after: Option<&Key>,
        limit: usize,
    ) -> Result<ListPage> {
        self.shared.block_on(self.list_page_async(key_type, scope, after, limit))
    }

    fn read_ref(&self, key: &RefKey) -> Result<Option<RefValue>> {
        self.shared.block_on(self.read_ref_async(key))
    }

    /// Both requests in flight at once: one round trip.
    fn read_ref_and_get(&self, key: &RefKey, object: &AtomKey) -> (Result<Option<RefValue>>, Result<Option<Bytes>>) {
        self.shared.block_on(async {
            let (reference, got) = futures::future::join(self.read_ref_async(key), self.get_async(object)).await;
            (reference, absent_as_none(got))
        })
    }

    fn write_ref(&self, key: &RefKey, value: Bytes, expected: RefExpectation<'_>) -> Result<RefToken> {
        self.shared.block_on(self.write_ref_async(key, value, expected))
    }

    fn delete_ref(&self, key: &RefKey) -> Result<()> {
        self.shared.block_on(self.delete_ref_async(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_endpoint_is_unavailable_after_retries() {
        // A port nobody listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind").port();
        let uri = format!("s3://127.0.0.1:bucket?port={port}&https=false&access=a&secret=s&max_retries=1");
        let started = std::time::Instant::now();
        match S3Store::open(S3Config::from_uri(&uri).expect("valid")) {
            Err(StorageError::Unavailable { backend: "s3", .. }) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    }

    #[test]
    fn credential_lookup_without_an_answer_names_the_credentials() {
        // A metadata endpoint that accepts connections and never answers, as 169.254.169.254 can look
        // from a machine outside a cloud.
        let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = hole.local_addr().expect("address").port();
        let client = AmazonS3Builder::new()
            .with_bucket_name("bucket")
            .with_region("us-east-1")
            .with_metadata_endpoint(format!("http://127.0.0.1:{port}"))
            .with_client_options(ClientOptions::new().with_allow_http(true))
            .build()
            .expect("a client");
        let runtime = IoRuntime::new().expect("runtime");
        let started = std::time::Instant::now();
        let looked_up =
            runtime.block_on(lookup_credentials(&client, Duration::from_millis(300), "bucket bucket at here"));
        match looked_up {
            Err(StorageError::InvalidConfig(message)) => {
                assert!(message.contains("no S3 credentials for bucket bucket at here"), "{message}");
                assert!(message.contains("no answer within 0.3 s"), "{message}");
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn explicit_credentials_are_found_at_once() {
        let client = AmazonS3Builder::new()
            .with_bucket_name("bucket")
            .with_region("us-east-1")
            .with_access_key_id("a")
            .with_secret_access_key("s")
            .build()
            .expect("a client");
        let runtime = IoRuntime::new().expect("runtime");
        runtime.block_on(lookup_credentials(&client, Duration::from_millis(300), "b")).expect("static credentials");
    }
}
