//! One LMDB environment (one library folder): its databases, the process-wide registry that opens
//! each folder once, and the transaction runners that grow or re-adopt the memory map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lmdb::{
    Database, DatabaseFlags, Environment, EnvironmentFlags, RoTransaction, RwTransaction, Transaction, WriteFlags,
};

use super::config::{LmdbConfig, align_map_size};
use super::gate::Gate;
use crate::error::{Result, StorageError};

/// The backend name used in errors.
pub(crate) const BACKEND: &str = "lmdb";

/// Named databases of every environment; see `design/backends.md#lmdb`.
const ATOMS_DB: &str = "atoms";
const REFS_DB: &str = "refs";
const META_DB: &str = "meta";

/// `meta` records.
const META_FORMAT: &[u8] = b"format";
const META_LIBRARY: &[u8] = b"library";
const META_NEXT_GENERATION: &[u8] = b"next_generation";

/// The layout version written to `meta/format`: key and value layouts of `design/backends.md#lmdb`.
const FORMAT_VERSION: u32 = 1;

/// Reader slots in the lock file (each live read transaction takes one, across all processes).
const MAX_READERS: u32 = 1022;

/// A full map is doubled up to this size, or to the configured size if that is larger.
pub(crate) const GROWTH_LIMIT: u64 = 1 << 40;

/// How long a resize waits for this process's other transactions to finish before giving up.
const RESIZE_WAIT: Duration = Duration::from_secs(10);

/// Attempts of one transaction (each map growth or adoption costs one).
const MAX_ATTEMPTS: usize = 64;

/// The failure of a transaction body: LMDB's own (map full, resized: handled by the runners) or an
/// answer about the data (already exists, conflict: returned as is).
#[derive(Debug)]
pub(crate) enum TxnError {
    /// An LMDB error code.
    Lmdb(lmdb::Error),
    /// A storage answer that ends the transaction without committing.
    Storage(StorageError),
}

impl From<lmdb::Error> for TxnError {
    fn from(e: lmdb::Error) -> Self {
        TxnError::Lmdb(e)
    }
}

impl From<StorageError> for TxnError {
    fn from(e: StorageError) -> Self {
        TxnError::Storage(e)
    }
}

impl From<floe_formats::FormatError> for TxnError {
    fn from(e: floe_formats::FormatError) -> Self {
        TxnError::Storage(e.into())
    }
}

/// An open environment with its three databases. Shared by every storage of the library in this
/// process through the registry; closing happens when the last `Arc` drops.
#[derive(Debug)]
pub(crate) struct Env {
    // Field order matters: `lmdb` is closed before `_unregister` removes the registry entry, so a
    // concurrent open of the same folder (which waits for the entry to go) never overlaps with it.
    lmdb: Environment,
    /// Immutable objects: `Key::to_binary()` -> raw bytes.
    pub(crate) atoms: Database,
    /// References: `Key::to_binary()` -> 8-byte LE generation + bytes.
    pub(crate) refs: Database,
    /// Bookkeeping: format version, library name, next generation.
    pub(crate) meta: Database,
    gate: Gate,
    path: PathBuf,
    growth_limit: u64,
    _unregister: Unregister,
}

/// Folders open in this process, keyed by canonical path. Entries are weak so an environment closes
/// when its last user drops it.
static REGISTRY: Mutex<BTreeMap<PathBuf, Weak<Env>>> = Mutex::new(BTreeMap::new());

fn registry() -> MutexGuard<'static, BTreeMap<PathBuf, Weak<Env>>> {
    // Entries are inserted and removed in single statements; a panic elsewhere cannot tear the map.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a registry entry once its environment has closed (runs after `Env::lmdb` drops).
#[derive(Debug)]
struct Unregister(PathBuf);

impl Drop for Unregister {
    fn drop(&mut self) {
        let mut reg = registry();
        // The entry at this path is ours: a new open waits while a dead entry is present.
        if reg.get(&self.0).is_some_and(|w| w.strong_count() == 0) {
            reg.remove(&self.0);
        }
    }
}

/// The environment of folder `path` (canonical, existing), opened now or shared with the handle this
/// process already has.
///
/// # Errors
/// Backend errors opening the environment or creating its databases.
pub(crate) fn open_shared(path: &Path, config: &LmdbConfig) -> Result<Arc<Env>> {
    loop {
        let mut reg = registry();
        match reg.get(path).map(Weak::upgrade) {
            Some(Some(env)) => return Ok(env),
            Some(None) => {
                // The last handle is closing right now; opening before it is gone would break
                // LMDB's locks, so wait for its `Unregister` to run.
                drop(reg);
                std::thread::sleep(Duration::from_millis(1));
            }
            None => {
                // Opened under the registry lock, so no other thread can open this folder meanwhile.
                let env = Arc::new(Env::open(path, config)?);
                reg.insert(path.to_owned(), Arc::downgrade(&env));
                return Ok(env);
            }
        }
    }
}

/// How many environments of this process are open (for tests of the registry).
#[cfg(test)]
pub(crate) fn open_count(path: &Path) -> usize {
    registry().get(path).map_or(0, Weak::strong_count)
}

impl Env {
    /// Opens the environment in `path` and creates its databases. Nothing fallible may follow the
    /// construction of `Env` in the caller while the registry is locked (its drop locks the registry).
    fn open(path: &Path, config: &LmdbConfig) -> Result<Env> {
        let map_size = usize::try_from(config.aligned_map_size()).map_err(|_| {
            StorageError::InvalidConfig(format!("map_size {} exceeds the address space", config.map_size))
        })?;
        let lmdb = Environment::new()
            // NO_TLS ties reader slots to transactions, not threads: a thread may hold several read
            // transactions (nested `visit_batch` on rayon workers). NO_META_SYNC: a commit syncs its
            // pages but not the meta page naming them, so an OS crash may undo the last commit but
            // never corrupts; `write` syncs after every commit that must last on its own, and
            // `write_with(.., Durability::WithNextWrite, ..)` leaves that to the next such commit
            // (design/decisions.md D59).
            .set_flags(EnvironmentFlags::NO_TLS | EnvironmentFlags::NO_META_SYNC)
            .set_max_dbs(4)
            .set_max_readers(MAX_READERS)
            .set_map_size(map_size)
            .open(path)
            .map_err(|e| lmdb_error(path, "open environment", e))?;
        let (atoms, refs, meta) = create_databases(&lmdb).map_err(|e| lmdb_error(path, "create databases", e))?;
        let env = Env {
            lmdb,
            atoms,
            refs,
            meta,
            gate: Gate::default(),
            path: path.to_owned(),
            growth_limit: config.aligned_map_size().max(GROWTH_LIMIT),
            _unregister: Unregister(path.to_owned()),
        };
        Ok(env)
    }

    /// The folder of this environment.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The current size of this process's memory map.
    pub(crate) fn map_size(&self) -> Result<u64> {
        let _guard = self.gate.enter();
        let info = self.lmdb.info().map_err(|e| lmdb_error(&self.path, "read map size", e))?;
        Ok(info.map_size() as u64)
    }

    /// Checks the stored format and library name, recording both the first time.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] if the folder holds another library (a folder-name hash
    /// collision or a renamed folder) or another layout version.
    pub(crate) fn claim(&self, name: &str) -> Result<()> {
        // Usually both records exist: check them in a read transaction, which needs no fsync.
        if self.read("check library folder", |txn| self.inspect(txn, name))? {
            return Ok(());
        }
        self.write("claim library folder", |txn| {
            if !self.inspect(txn, name)? {
                txn.put(self.meta, &META_FORMAT, &FORMAT_VERSION.to_le_bytes(), WriteFlags::empty())?;
                txn.put(self.meta, &META_LIBRARY, &name, WriteFlags::empty())?;
            }
            Ok(())
        })
    }

    /// Whether both `meta` records are present; an error if either disagrees with this build or `name`.
    fn inspect(&self, txn: &impl Transaction, name: &str) -> std::result::Result<bool, TxnError> {
        let format = optional(txn.get(self.meta, &META_FORMAT))?;
        let library = optional(txn.get(self.meta, &META_LIBRARY))?;
        if let Some(v) = format
            && v != FORMAT_VERSION.to_le_bytes()
        {
            return Err(StorageError::InvalidConfig(format!(
                "{} uses LMDB layout {v:?}; this build reads layout {FORMAT_VERSION}",
                self.path.display()
            ))
            .into());
        }
        if let Some(v) = library
            && v != name.as_bytes()
        {
            return Err(StorageError::InvalidConfig(format!(
                "folder {} holds library {:?}, not {name:?}",
                self.path.display(),
                String::from_utf8_lossy(v)
            ))
            .into());
        }
        Ok(format.is_some() && library.is_some())
    }

    /// The library name recorded in the environment, if any.
    pub(crate) fn recorded_name(&self) -> Result<Option<String>> {
        self.read("read library name", |txn| {
            Ok(optional(txn.get(self.meta, &META_LIBRARY))?.map(|v| String::from_utf8_lossy(v).into_owned()))
        })
    }

    /// Whether the atoms or refs database holds any key.
    pub(crate) fn is_empty(&self) -> Result<bool> {
        self.read("count keys", |txn| Ok(txn.stat(self.atoms)?.entries() == 0 && txn.stat(self.refs)?.entries() == 0))
    }

    /// Marks the calling thread as working for a transaction another thread keeps open meanwhile
    /// (see `Gate::lend`).
    pub(crate) fn lend(&self) -> super::gate::Lent<'_> {
        self.gate.lend()
    }

    /// Runs `body` in a read transaction on the calling thread (read transactions are `!Send`).
    /// Re-adopts the map first if another process grew it.
    pub(crate) fn read<T>(
        &self,
        what: &str,
        body: impl FnOnce(&RoTransaction<'_>) -> std::result::Result<T, TxnError>,
    ) -> Result<T> {
        for _ in 0..MAX_ATTEMPTS {
            let guard = self.gate.enter();
            match self.lmdb.begin_ro_txn() {
                Ok(txn) => {
                    let out = body(&txn);
                    drop(txn);
                    drop(guard);
                    return out.map_err(|e| self.txn_error(what, e));
                }
                Err(lmdb::Error::MapResized) => {
                    drop(guard);
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(lmdb_error(&self.path, what, e)),
            }
        }
        Err(self.gave_up(what))
    }

    /// Runs `body` in a write transaction and commits it durably: the commit syncs its pages, and the
    /// meta page is synced after it (which also makes every earlier commit of the file durable). A
    /// full map is grown and the whole transaction retried, so `body` may run several times; an `Err`
    /// from `body` aborts without writing anything.
    pub(crate) fn write<T>(
        &self,
        what: &str,
        body: impl FnMut(&mut RwTransaction<'_>) -> std::result::Result<T, TxnError>,
    ) -> Result<T> {
        self.write_with(what, Durability::Now, body)
    }

    /// [`write`](Env::write) with its durability given: [`Durability::WithNextWrite`] is for objects
    /// only a later commit makes reachable, whose meta page the next durable write of this
    /// environment syncs (an OS crash before then may undo this commit, never half of it): one sync
    /// fewer.
    pub(crate) fn write_with<T>(
        &self,
        what: &str,
        durability: Durability,
        mut body: impl FnMut(&mut RwTransaction<'_>) -> std::result::Result<T, TxnError>,
    ) -> Result<T> {
        for _ in 0..MAX_ATTEMPTS {
            let guard = self.gate.enter();
            let outcome = self.lmdb.begin_rw_txn().map_err(TxnError::from).and_then(|mut txn| {
                let out = body(&mut txn)?;
                txn.commit()?;
                if durability == Durability::Now {
                    // The environment does not sync meta pages on commit (NO_META_SYNC): this one does.
                    self.lmdb.sync(true)?;
                }
                Ok(out)
            });
            match outcome {
                Ok(out) => return Ok(out),
                Err(TxnError::Lmdb(lmdb::Error::MapFull)) => {
                    let seen = self.lmdb.info().map_err(|e| lmdb_error(&self.path, what, e))?.map_size() as u64;
                    drop(guard);
                    self.grow(seen)?;
                }
                Err(TxnError::Lmdb(lmdb::Error::MapResized)) => {
                    drop(guard);
                    self.adopt_map_size()?;
                }
                Err(e) => return Err(self.txn_error(what, e)),
            }
        }
        Err(self.gave_up(what))
    }

    /// Doubles the map from `seen` bytes (unless another thread already grew it).
    fn grow(&self, seen: u64) -> Result<()> {
        if seen >= self.growth_limit {
            return Err(StorageError::unavailable(
                BACKEND,
                format!(
                    "{}: the memory map is full at {seen} bytes, the most this backend grows it to; \
                     open the store with a larger map_size",
                    self.path.display()
                ),
            ));
        }
        if self.gate.held_by_this_thread() {
            return Err(StorageError::unavailable(
                BACKEND,
                format!(
                    "{}: the memory map is full ({seen} bytes) and cannot grow while this thread holds \
                     another transaction on it (a write from inside visit_batch?); open the store with a \
                     larger map_size",
                    self.path.display()
                ),
            ));
        }
        let target = align_map_size(seen.saturating_mul(2)).min(self.growth_limit);
        let target = usize::try_from(target).unwrap_or(usize::MAX);
        self.exclusive("grow the memory map", || {
            let now = self.lmdb.info()?.map_size() as u64;
            if now > seen {
                return Ok(()); // another thread grew it while we waited
            }
            self.lmdb.set_map_size(target)
        })
    }

    /// Adopts the map size another process grew the environment to.
    fn adopt_map_size(&self) -> Result<()> {
        // Size 0 makes LMDB take the size recorded in the environment (at least the used size).
        self.exclusive("adopt the memory map size of another process", || self.lmdb.set_map_size(0))
    }

    fn exclusive(&self, what: &str, f: impl FnOnce() -> lmdb::Result<()>) -> Result<()> {
        match self.gate.exclusive(RESIZE_WAIT, f) {
            Some(result) => result.map_err(|e| lmdb_error(&self.path, what, e)),
            None => Err(StorageError::unavailable(
                BACKEND,
                format!(
                    "{}: could not {what}: other transactions of this process stayed open for {:?}",
                    self.path.display(),
                    RESIZE_WAIT
                ),
            )),
        }
    }

    fn txn_error(&self, what: &str, e: TxnError) -> StorageError {
        match e {
            TxnError::Storage(e) => e,
            TxnError::Lmdb(e) => lmdb_error(&self.path, what, e),
        }
    }

    fn gave_up(&self, what: &str) -> StorageError {
        StorageError::unavailable(
            BACKEND,
            format!("{}: {what} gave up after {MAX_ATTEMPTS} map resizes", self.path.display()),
        )
    }
}

/// When a write transaction's commit becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the write returns.
    Now,
    /// With the next durable write of the environment (or `mdb_env_sync`).
    WithNextWrite,
}

/// Creates (or opens) the three databases, durably; grows a tiny map if even that does not fit. Runs
/// before the environment is shared, so resizing needs no gate.
fn create_databases(lmdb: &Environment) -> lmdb::Result<(Database, Database, Database)> {
    for _ in 0..MAX_ATTEMPTS {
        let created = (|| {
            let dbs = (
                lmdb.create_db(Some(ATOMS_DB), DatabaseFlags::empty())?,
                lmdb.create_db(Some(REFS_DB), DatabaseFlags::empty())?,
                lmdb.create_db(Some(META_DB), DatabaseFlags::empty())?,
            );
            // Each `create_db` commits without syncing its meta page (NO_META_SYNC).
            lmdb.sync(true)?;
            Ok(dbs)
        })();
        match created {
            Err(lmdb::Error::MapFull) => lmdb.set_map_size(lmdb.info()?.map_size().saturating_mul(2))?,
            Err(lmdb::Error::MapResized) => lmdb.set_map_size(0)?,
            other => return other,
        }
    }
    Err(lmdb::Error::MapFull)
}

/// A [`StorageError`] for an LMDB error code: transient conditions are `Unavailable`, the rest `Other`.
pub(crate) fn lmdb_error(path: &Path, what: &str, e: lmdb::Error) -> StorageError {
    let message = format!("{}: {what}: {e}", path.display());
    match e {
        lmdb::Error::MapFull | lmdb::Error::ReadersFull | lmdb::Error::TxnFull | lmdb::Error::TlsFull => {
            StorageError::Unavailable { backend: BACKEND, message, source: Some(Box::new(e)) }
        }
        // LMDB reports a short write (disk full, file size limit) as EIO; ENOSPC, EFBIG and EDQUOT may
        // also come straight through. The transaction was aborted: nothing was written.
        lmdb::Error::Other(code) if is_out_of_space(code) => StorageError::Unavailable {
            backend: BACKEND,
            message: format!("{message} (disk full, quota or file size limit reached? nothing was written)"),
            source: Some(Box::new(e)),
        },
        _ => StorageError::Other { backend: BACKEND, message, source: Some(Box::new(e)) },
    }
}

/// Whether an OS error code means the disk (or a quota or file size limit) is full; EIO is how LMDB
/// reports a short write.
fn is_out_of_space(code: i32) -> bool {
    const EIO: i32 = 5;
    code == EIO
        || matches!(
            std::io::Error::from_raw_os_error(code).kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::QuotaExceeded
        )
}

/// Allocates the generation of a new reference write: above every generation this environment has
/// issued (a counter in `meta`, never reset) and above `previous`, the generation being replaced.
pub(crate) fn next_generation(
    txn: &mut RwTransaction<'_>,
    meta: Database,
    previous: Option<u64>,
) -> std::result::Result<u64, TxnError> {
    let counter = match txn.get(meta, &META_NEXT_GENERATION) {
        Ok(v) => le_u64(v).ok_or_else(|| StorageError::other(BACKEND, "meta/next_generation is not 8 bytes"))?,
        // A fresh (or hand-deleted and recreated) folder starts from the clock, so even then tokens
        // of the old folder are not issued again.
        Err(lmdb::Error::NotFound) => clock_seed(),
        Err(e) => return Err(e.into()),
    };
    let generation = counter.max(previous.map_or(0, |p| p.saturating_add(1))).max(1);
    txn.put(meta, &META_NEXT_GENERATION, &generation.saturating_add(1).to_le_bytes(), WriteFlags::empty())?;
    Ok(generation)
}

/// `Ok(None)` for LMDB's not-found.
pub(crate) fn optional<T>(r: lmdb::Result<T>) -> lmdb::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(lmdb::Error::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads 8 little-endian bytes.
pub(crate) fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn clock_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2))
}
