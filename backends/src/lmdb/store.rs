//! [`LmdbStore`]: a folder of libraries, one LMDB environment each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use floe_formats::names::validate_library;

use super::config::LmdbConfig;
use super::env::{self, BACKEND, Env};
use super::folder::{self, Decoded};
use super::storage::LmdbStorage;
use crate::error::{Result, StorageError};
use crate::storage::{Storage, Store};

/// The file LMDB keeps its data in; a folder holding it is an environment.
const DATA_FILE: &str = "data.mdb";

/// An `lmdb://` store: the folder `config.path`, holding one sub-folder per library (see
/// `design/backends.md#lmdb`). Any number of stores, threads and processes may use the same folder.
#[derive(Debug, Clone)]
pub struct LmdbStore {
    config: LmdbConfig,
    root: PathBuf,
}

impl LmdbStore {
    /// Opens (creating if needed) the store folder `config.path`. Library environments are opened
    /// when [`Store::library`] asks for them.
    ///
    /// # Errors
    /// [`StorageError::InvalidConfig`] if the config is invalid or the folder cannot be created.
    pub fn open(config: LmdbConfig) -> Result<Self> {
        config.validate()?;
        let root = std::fs::create_dir_all(&config.path).and_then(|()| config.path.canonicalize()).map_err(|e| {
            StorageError::InvalidConfig(format!("cannot create the LMDB folder {}: {e}", config.path.display()))
        })?;
        Ok(LmdbStore { config, root })
    }

    /// The store folder, canonicalized.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The LMDB storage of library `name` (what [`Store::library`] returns, with its concrete type).
    ///
    /// # Errors
    /// As [`Store::library`].
    pub fn open_library(&self, name: &str) -> Result<LmdbStorage> {
        validate_library(name)?;
        let dir = self.root.join(folder::encode(name));
        let dir = std::fs::create_dir_all(&dir).and_then(|()| dir.canonicalize()).map_err(|e| io_error(&dir, e))?;
        let env = env::open_shared(&dir, &self.config)?;
        env.claim(name)?;
        Ok(LmdbStorage::new(env, name.to_owned()))
    }

    /// The environment in sub-folder `folder` if it holds one (never creates one).
    fn existing_env(&self, folder: &str) -> Result<Option<Arc<Env>>> {
        let dir = self.root.join(folder);
        if !dir.join(DATA_FILE).is_file() {
            return Ok(None);
        }
        let dir = dir.canonicalize().map_err(|e| io_error(&dir, e))?;
        env::open_shared(&dir, &self.config).map(Some)
    }
}

fn io_error(path: &Path, e: std::io::Error) -> StorageError {
    let message = format!("{}: {e}", path.display());
    StorageError::Other { backend: BACKEND, message, source: Some(Box::new(e)) }
}

impl Store for LmdbStore {
    fn uri(&self) -> String {
        self.config.to_uri(&self.root)
    }

    fn library(&self, name: &str) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.open_library(name)?))
    }

    /// Sub-folders whose environment holds at least one key; the name comes from the folder name,
    /// or from the environment's `meta/library` record for hashed folder names.
    fn list_libraries(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| io_error(&self.root, e))? {
            let entry = entry.map_err(|e| io_error(&self.root, e))?;
            let Some(folder) = entry.file_name().to_str().map(str::to_owned) else { continue };
            let decoded = folder::decode(&folder);
            if decoded == Decoded::Foreign {
                continue;
            }
            let Some(env) = self.existing_env(&folder)? else { continue };
            if env.is_empty()? {
                continue;
            }
            let name = match decoded {
                Decoded::Name(name) => Some(name),
                _ => env.recorded_name()?,
            };
            names.extend(name);
        }
        names.sort();
        Ok(names)
    }

    /// Clears the library's databases in one write transaction. The folder itself stays: another
    /// process may have the environment open, and removing its files would make that process's later
    /// writes vanish silently. An emptied folder is a few sparse KiB, is not listed by
    /// [`list_libraries`](Store::list_libraries), and is reused if the library is created again
    /// (reference tokens keep counting up, so none is reissued).
    fn delete_library(&self, name: &str) -> Result<()> {
        validate_library(name)?;
        let Some(env) = self.existing_env(&folder::encode(name))? else { return Ok(()) };
        // A hashed folder could hold another library after a hash collision: leave that one alone.
        if env.recorded_name()?.is_some_and(|recorded| recorded != name) {
            return Ok(());
        }
        env.write("delete_library", |txn| {
            txn.clear_db(env.atoms)?;
            txn.clear_db(env.refs)?;
            Ok(())
        })
    }
}
