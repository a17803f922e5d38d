//! The cross-process lock around every store update: an exclusive advisory lock on a
//! `PATH.lock` file beside the store, held for as long as the [`StoreLock`] lives.

use std::{
    fs::{File, OpenOptions, TryLockError},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::Duration,
};

use tokio::time::Instant;

use super::FileError;
use crate::store::StoreError;

/// How often a waiting process tries the lock again.
const RETRY_EVERY: Duration = Duration::from_millis(5);

/// Proof that this task holds the store's lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: std::path::PathBuf,
}

/// Create the lock file (0600) if missing, proving the directory is writable.
pub fn create_lock_file(path: &Path) -> Result<(), StoreError> {
    open(path).map(drop).map_err(StoreError::from)
}

fn open(path: &Path) -> Result<File, FileError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            what: "cannot create the lock file (is the directory writable?)",
            source,
        })
}

impl StoreLock {
    /// Take the lock from synchronous code (start-up), trying again until `patience` runs
    /// out.
    pub fn acquire_blocking(path: &Path, patience: Duration) -> Result<Self, StoreError> {
        let mut file = open(path)?;
        let started = Instant::now();
        loop {
            match Self::attempt(file, path, started, patience) {
                Attempt::Wait(again) => {
                    file = again;
                    std::thread::sleep(RETRY_EVERY);
                }
                Attempt::Done(result) => return result,
            }
        }
    }

    /// Take the lock, trying again until `patience` runs out. Works between processes and
    /// between tasks of one process (each attempt opens its own file description).
    pub async fn acquire(path: &Path, patience: Duration) -> Result<Self, StoreError> {
        let mut file = open(path)?;
        let started = Instant::now();
        loop {
            match Self::attempt(file, path, started, patience) {
                Attempt::Wait(again) => {
                    file = again;
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                Attempt::Done(result) => return result,
            }
        }
    }

    /// The lock file this lock holds.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One try at the lock: held, refused for good, or worth waiting for.
    fn attempt(file: File, path: &Path, started: Instant, patience: Duration) -> Attempt {
        Attempt::Done(match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: file,
                path: path.to_path_buf(),
            }),
            Err(TryLockError::WouldBlock) if started.elapsed() < patience => {
                return Attempt::Wait(file);
            }
            Err(TryLockError::WouldBlock) => Err(StoreError::LockTimeout {
                location: path.display().to_string(),
                waited: started.elapsed(),
            }),
            Err(TryLockError::Error(source)) => Err(FileError::Io {
                path: path.to_path_buf(),
                what: "cannot lock the lock file",
                source,
            }
            .into()),
        })
    }
}

/// How one try at the lock ended.
enum Attempt {
    /// Another holder has it; try again with this file later.
    Wait(File),
    Done(Result<StoreLock, StoreError>),
}
