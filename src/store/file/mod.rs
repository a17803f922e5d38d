//! The file store: every pair in one JSON file that several server processes may share.
//!
//! A lease is an exclusive lock on `PATH.lock` (the whole file: a write replaces the file).
//! Every write is durable before it returns (temp file in the same directory, fsync, atomic
//! rename, fsync of the directory), so a crash leaves the old file or the new one, never a
//! torn one; a pair a killed writer left in its temp file is recovered under the next lease.
//! A corrupt or foreign-readable file, or a symlink, stops the server at start-up with a
//! message naming the file.

mod disk;
mod lock;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::FutureExt;
use serde::{Deserialize, Serialize};

use self::lock::StoreLock;
use super::{
    AtRestError, Lease, PairKey, Principal, Rotation, StoreError, StoreFuture, StoreKeys,
    StoredPair, TokenStore, the_only_pair_of,
};

/// Why the store file cannot be used: checked when it is opened, and again whenever it is
/// read or written. Messages name the file; none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("token store {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(
        "token store {path} is readable or writable by other users (mode {mode:o}); \
         run `chmod 600 {path}` so only you can read your tokens"
    )]
    FileMode { path: PathBuf, mode: u32 },
    #[error(
        "token store directory {path} is writable by other users (mode {mode:o}), who could \
         replace the store; use a directory only you can write (e.g. chmod 700)"
    )]
    DirectoryMode { path: PathBuf, mode: u32 },
    #[error("token store {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "token store {path} is a symbolic link (to {}); pass the real file's path to \
         --token-store, so every server locks and replaces that one file",
        target.display()
    )]
    Symlink { path: PathBuf, target: PathBuf },
    #[error(
        "token store {path} is corrupt and was left untouched ({detail}); move it aside or \
         repair it, then start again"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("token store {path}: {source}")]
    AtRest { path: PathBuf, source: AtRestError },
    #[error(
        "token store {path} was written by a newer version (format {found}); this version \
         reads format {FORMAT}"
    )]
    Format { path: PathBuf, found: u32 },
}

/// The value of the `format` field this version writes and reads.
const FORMAT: u32 = 1;

/// How long the start-up check waits for another process's lock.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);

/// A store file on disk.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    /// What the token responses are sealed with on disk (nothing: plain text).
    keys: Arc<StoreKeys>,
}

/// Every pair of the file, as read.
#[derive(Debug, Default)]
struct Contents {
    pairs: Vec<StoredPair>,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    pairs: Vec<PairOnDisk>,
}

#[derive(Serialize, Deserialize)]
struct PairOnDisk {
    /// Absent for the local principal, so files of a server without per-user identity read
    /// and write as they always have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    principal: Option<String>,
    login_host: String,
    client_id: String,
    /// The token response: plain JSON text, or sealed under the key `key_id` names.
    response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    stored_at: u64,
    credentials_sha256: String,
    #[serde(default)]
    rotated_from: Vec<Rotation>,
}

impl FileStore {
    /// Check the store at start-up: the directory (created 0700 when missing), the file's
    /// permissions and contents, and that the lock file can be created; recover a pair an
    /// interrupted write left behind. Every stored response must open with `keys` (a
    /// plain one always does; it is sealed at the next write).
    pub fn open(path: impl Into<PathBuf>, keys: Arc<StoreKeys>) -> Result<Self, StoreError> {
        let path: PathBuf = path.into();
        let path = if path.is_relative() {
            std::env::current_dir()
                .map_err(|source| FileError::Io {
                    path: path.clone(),
                    what: "cannot resolve the current directory",
                    source,
                })?
                .join(path)
        } else {
            path
        };
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let store = Self {
            lock_path: path.with_file_name(lock_name),
            path,
            keys,
        };
        disk::prepare_directory(store.directory())?;
        disk::check_file(&store.path)?;
        lock::create_lock_file(&store.lock_path)?;
        let held = StoreLock::acquire_blocking(&store.lock_path, OPEN_PATIENCE)?;
        store.recover_locked(&held)?;
        drop(held);
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn directory(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("/"))
    }

    /// Read the whole file (an absent file is an empty store).
    fn read(&self) -> Result<Contents, FileError> {
        let Some(bytes) = disk::read_if_present(&self.path)? else {
            return Ok(Contents::default());
        };
        self.decode(&bytes)
    }

    /// Fold in any pair an interrupted write left in a temporary file (see
    /// [`Self::recover_orphans`]), writing the file if that gave something. Lock held.
    fn recover_locked(&self, _held: &StoreLock) -> Result<(), FileError> {
        let mut contents = self.read()?;
        let recovered = self.recover_orphans(&mut contents);
        if !recovered.is_empty() {
            disk::write_atomically(&self.path, &self.encode(&contents)?)?;
            for path in recovered {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Temporary files a writer left beside the store when it was killed between the
    /// temp file's fsync and its rename. Called with the lock held, so no live writer uses
    /// any of them. A complete temp file may hold the only copy of a live pair (Procore
    /// already rotated the stored one), so every pair in it that is newer than the stored
    /// pair of its key is put into `contents` (see [`newer_than`]). Returns the temp files
    /// that gave something, to remove once `contents` is written. A temp file that gives
    /// nothing (stale, or torn before its fsync) holds no token newer than the store's and
    /// is removed once abandoned for ten minutes.
    fn recover_orphans(&self, contents: &mut Contents) -> Vec<PathBuf> {
        let mut recovered = Vec::new();
        for temporary in disk::temporaries(&self.path, Duration::from_secs(600)) {
            let orphan = match temporary.bytes.as_ref().map(|bytes| self.decode(bytes)) {
                Some(Ok(orphan)) => Some(orphan),
                Some(Err(FileError::AtRest { source, .. })) => {
                    // Complete, but sealed under a key not given now: it may hold the only
                    // copy of a pair, so it is kept for a start with the right key.
                    tracing::warn!(
                        file = %temporary.path.display(),
                        error = %source,
                        "kept a temporary file left by an interrupted store write: it cannot be opened with the keys given"
                    );
                    continue;
                }
                _ => None,
            };
            let mut gave = false;
            for pair in orphan.map(|orphan| orphan.pairs).unwrap_or_default() {
                if newer_than(&pair, contents.find(&pair.key)) {
                    tracing::warn!(
                        file = %temporary.path.display(),
                        client_id = %pair.key.client_id,
                        "recovered a token pair from a store write that was interrupted before its rename"
                    );
                    contents.upsert(pair);
                    gave = true;
                }
            }
            if gave {
                recovered.push(temporary.path);
            } else if temporary.old && std::fs::remove_file(&temporary.path).is_ok() {
                tracing::info!(file = %temporary.path.display(), "removed a temporary file left by an interrupted store write");
            }
        }
        recovered
    }

    /// The contents of a store file's bytes.
    fn decode(&self, bytes: &[u8]) -> Result<Contents, FileError> {
        let corrupt = |detail: String| FileError::Corrupt {
            path: self.path.clone(),
            detail,
        };
        let on_disk: OnDisk = serde_json::from_slice(bytes).map_err(|error| {
            corrupt(format!(
                "not a token store: JSON error at line {} column {}",
                error.line(),
                error.column()
            ))
        })?;
        if on_disk.format > FORMAT {
            return Err(FileError::Format {
                path: self.path.clone(),
                found: on_disk.format,
            });
        }
        let pairs = on_disk
            .pairs
            .into_iter()
            .map(|pair| {
                let client_id = pair.client_id.clone();
                let key = PairKey {
                    principal: pair.principal.map_or(Principal::Local, Principal::User),
                    login_host: pair.login_host,
                    client_id: pair.client_id,
                };
                let response = self
                    .keys
                    .open(&key, pair.key_id.as_deref(), &pair.response)
                    .map_err(|source| FileError::AtRest {
                        path: self.path.clone(),
                        source,
                    })?;
                StoredPair::new(
                    key,
                    response,
                    pair.stored_at,
                    pair.credentials_sha256,
                    pair.rotated_from,
                )
                .ok_or_else(|| {
                    corrupt(format!(
                        "the stored response for client {client_id} is not a JSON object"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Contents { pairs })
    }

    /// The file's bytes for `contents`; wiped from memory when dropped.
    fn encode(&self, contents: &Contents) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
        let pairs = contents
            .pairs
            .iter()
            .map(|pair| {
                let sealed = self
                    .keys
                    .seal(&pair.key, pair.response())
                    .map_err(|source| FileError::AtRest {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(PairOnDisk {
                    principal: pair.key.principal.subject().map(str::to_owned),
                    login_host: pair.key.login_host.clone(),
                    client_id: pair.key.client_id.clone(),
                    response: sealed.value,
                    key_id: sealed.key_id,
                    stored_at: pair.stored_at,
                    credentials_sha256: pair.credentials_sha256.clone(),
                    rotated_from: pair.rotated_from.clone(),
                })
            })
            .collect::<Result<_, FileError>>()?;
        let on_disk = OnDisk {
            format: FORMAT,
            pairs,
        };
        serde_json::to_vec_pretty(&on_disk)
            .map(zeroize::Zeroizing::new)
            .map_err(|error| FileError::Corrupt {
                path: self.path.clone(),
                detail: format!("cannot encode the store: {error}"),
            })
    }

    /// Read the file, change it with `change`, and replace it durably and atomically; the
    /// lease's lock is held throughout. The file work (two fsyncs, a few milliseconds on
    /// most disks) runs on tokio's blocking pool, so the runtime thread keeps serving other
    /// clients meanwhile, and runs to the end even if the caller stops waiting.
    async fn rewrite<T: Send + 'static>(
        &self,
        lease: &Lease,
        change: impl FnOnce(&mut Contents) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        if lease
            .held::<StoreLock>()
            .is_none_or(|held| held.path() != self.lock_path)
        {
            return Err(StoreError::LeaseLost {
                location: self.location(),
                key: lease.key().clone(),
            });
        }
        let store = self.clone();
        blocking(&self.path, move || {
            let mut contents = store.read()?;
            let outcome = change(&mut contents);
            disk::write_atomically(&store.path, &store.encode(&contents)?)?;
            Ok(outcome)
        })
        .await
    }
}

/// Run file work on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(FileError::Io {
                path: path.to_path_buf(),
                what: "the file work did not finish",
                source: std::io::Error::other(error.to_string()),
            }
            .into())
        })
}

impl TokenStore for FileStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn lease<'a>(&'a self, key: &'a PairKey, patience: Duration) -> StoreFuture<'a, Lease> {
        async move {
            let held = StoreLock::acquire(&self.lock_path, patience).await?;
            let store = self.clone();
            let held = blocking(&self.path, move || {
                store.recover_locked(&held)?;
                Ok(held)
            })
            .await?;
            Ok(Lease::new(key.clone(), held))
        }
        .boxed()
    }

    fn load<'a>(&'a self, key: &'a PairKey) -> StoreFuture<'a, Option<StoredPair>> {
        let store = self.clone();
        let key = key.clone();
        async move { blocking(&self.path, move || Ok(store.read()?.find(&key).cloned())).await }
            .boxed()
    }

    fn save<'a>(&'a self, lease: &'a Lease, pair: StoredPair) -> StoreFuture<'a, ()> {
        async move {
            if &pair.key != lease.key() {
                return Err(StoreError::LeaseLost {
                    location: self.location(),
                    key: pair.key,
                });
            }
            self.rewrite(lease, move |contents| contents.upsert(pair))
                .await
        }
        .boxed()
    }

    fn remove<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        let key = lease.key().clone();
        async move {
            self.rewrite(lease, move |contents| contents.remove(&key))
                .await
        }
        .boxed()
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        let store = self.clone();
        async move { blocking(&self.path, move || Ok(store.read().map(drop)?)).await }.boxed()
    }

    fn only_pair_of<'a>(
        &'a self,
        principal: &'a Principal,
        login_host: &'a str,
    ) -> StoreFuture<'a, Option<StoredPair>> {
        let store = self.clone();
        let (principal, login_host) = (principal.clone(), login_host.to_owned());
        async move {
            blocking(&self.path, move || {
                let contents = store.read()?;
                Ok(the_only_pair_of(
                    contents.pairs.iter(),
                    &principal,
                    &login_host,
                ))
            })
            .await
        }
        .boxed()
    }
}

impl Contents {
    fn find(&self, key: &PairKey) -> Option<&StoredPair> {
        self.pairs.iter().find(|pair| &pair.key == key)
    }

    /// Make `pair` the current pair of its key.
    fn upsert(&mut self, pair: StoredPair) {
        self.remove(&pair.key.clone());
        self.pairs.push(pair);
    }

    /// Forget the pair of `key`; whether there was one.
    fn remove(&mut self, key: &PairKey) -> bool {
        let before = self.pairs.len();
        self.pairs.retain(|pair| &pair.key != key);
        self.pairs.len() != before
    }
}

/// Whether `candidate`, found in an orphaned temp file, is newer than `stored`, the pair the
/// store holds for the same key: there is none; or the candidate's lineage names the stored
/// refresh token as consumed (it is that token's successor); or it was stored in a later
/// second. A stale temp file (the store moved on after it) fails all three: the store's pair
/// is then the later one, and its refresh token, issued after the temp file was written,
/// cannot be in the temp file's lineage.
fn newer_than(candidate: &StoredPair, stored: Option<&StoredPair>) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    if candidate.response() == stored.response() {
        return false;
    }
    let successor = stored
        .refresh_token()
        .is_some_and(|refresh_token| candidate.succeeds(refresh_token));
    successor || candidate.stored_at > stored.stored_at
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn plain() -> Arc<StoreKeys> {
        Arc::new(StoreKeys::plain())
    }
    use crate::store::tests::pair;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ptm-store-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    #[tokio::test]
    async fn round_trips_with_private_permissions() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("nested").join("tokens.json");
        let store = FileStore::open(&path, plain()).unwrap();
        let nested_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(nested_mode & 0o777, 0o700, "created directory is 0700");
        let a = PairKey::local("https://login.procore.com", "a");
        assert!(store.load(&a).await.unwrap().is_none());

        let lease = store.lease(&a, Duration::from_secs(1)).await.unwrap();
        let first = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        store.save(&lease, first).await.unwrap();
        let second = pair("a", r#"{"access_token":"x2","refresh_token":"y2"}"#);
        store.save(&lease, second).await.unwrap();
        drop(lease);
        let b = pair("b", r#"{"access_token":"z"}"#);
        let lease = store.lease(&b.key, Duration::from_secs(1)).await.unwrap();
        store.save(&lease, b).await.unwrap();
        drop(lease);

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = store.load(&a).await.unwrap().unwrap();
        assert_eq!(read.refresh_token().unwrap().expose(), "y2");
        assert_eq!(store.read().unwrap().pairs.len(), 2);
        let host = "https://login.procore.com";
        assert!(
            store
                .only_pair_of(&Principal::local(), host)
                .await
                .unwrap()
                .is_none()
        );
        // The local principal is not written: the file reads as it always has.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("principal"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_users_pair_keeps_its_principal_even_one_named_local() {
        let dir = temp_dir("principal");
        let store = FileStore::open(dir.join("tokens.json"), plain()).unwrap();
        let mut theirs = pair("a", r#"{"access_token":"u"}"#);
        theirs.key.principal = Principal::user("local");
        let lease = store
            .lease(&theirs.key, Duration::from_secs(1))
            .await
            .unwrap();
        store.save(&lease, theirs.clone()).await.unwrap();
        drop(lease);
        let loaded = store.load(&theirs.key).await.unwrap().unwrap();
        assert_eq!(loaded.key.principal, Principal::user("local"));
        let local = PairKey::local("https://login.procore.com", "a");
        assert!(
            store.load(&local).await.unwrap().is_none(),
            "not the local one's"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_pair_is_removed_under_its_lease_and_a_foreign_lease_changes_nothing() {
        let dir = temp_dir("remove");
        let store = FileStore::open(dir.join("tokens.json"), plain()).unwrap();
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        let key = stored.key.clone();
        let lease = store.lease(&key, Duration::from_secs(1)).await.unwrap();
        store.save(&lease, stored.clone()).await.unwrap();
        let foreign = Lease::new(key.clone(), ());
        assert!(matches!(
            store.remove(&foreign).await,
            Err(StoreError::LeaseLost { .. })
        ));
        let other = pair("b", r#"{"access_token":"z"}"#);
        assert!(
            store.save(&lease, other).await.is_err(),
            "a lease is for its own key"
        );
        assert!(store.remove(&lease).await.unwrap());
        assert!(!store.remove(&lease).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_foreign_readable_files_and_corrupt_contents() {
        let dir = temp_dir("refuse");
        let path = dir.join("tokens.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = FileStore::open(&path, plain()).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"{ not json").unwrap();
        let error = FileStore::open(&path, plain()).unwrap_err().to_string();
        assert!(
            error.contains("corrupt") && error.contains("tokens.json"),
            "{error}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{ not json",
            "left untouched"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_directory_others_can_write() {
        let dir = temp_dir("dirmode");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = FileStore::open(dir.join("tokens.json"), plain())
            .unwrap_err()
            .to_string();
        assert!(error.contains("writable by other users"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_lease_excludes_a_second_holder_until_released() {
        let dir = temp_dir("lock");
        let store = FileStore::open(dir.join("tokens.json"), plain()).unwrap();
        let key = PairKey::local("https://login.procore.com", "a");
        let first = store.lease(&key, Duration::from_secs(1)).await.unwrap();
        let second = store.lease(&key, Duration::from_millis(100)).await;
        assert!(matches!(second, Err(StoreError::LockTimeout { .. })));
        drop(first);
        assert!(store.lease(&key, Duration::from_millis(100)).await.is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn two_openings_of_one_file_exclude_each_other_as_two_processes_would() {
        let dir = temp_dir("two");
        let path = dir.join("tokens.json");
        let (one, two) = (
            FileStore::open(&path, plain()).unwrap(),
            FileStore::open(&path, plain()).unwrap(),
        );
        let a = PairKey::local("https://login.procore.com", "a");
        let b = PairKey::local("https://login.procore.com", "b");
        let held = one.lease(&a, Duration::from_secs(1)).await.unwrap();
        // The lock is the whole file's: another pair waits too, in the other opening.
        let waiting = two.lease(&b, Duration::from_millis(100)).await;
        assert!(matches!(waiting, Err(StoreError::LockTimeout { .. })));
        let saved = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        one.save(&held, saved).await.unwrap();
        // The lock is the file's, so it serves either opening; another file's does not.
        two.save(&held, pair("a", r#"{"access_token":"z"}"#))
            .await
            .unwrap();
        let other = FileStore::open(dir.join("other.json"), plain()).unwrap();
        assert!(matches!(
            other
                .save(&held, pair("a", r#"{"access_token":"w"}"#))
                .await,
            Err(StoreError::LeaseLost { .. })
        ));
        drop(held);
        let lease = two.lease(&b, Duration::from_millis(100)).await.unwrap();
        drop(lease);
        let loaded = two.load(&a).await.unwrap().unwrap();
        assert_eq!(loaded.access_token().unwrap().expose(), "z");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_orphan_is_newer_only_if_it_succeeds_the_stored_pair_or_came_later() {
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"old"}"#);
        let mut successor = pair("a", r#"{"access_token":"x2","refresh_token":"y2"}"#);
        assert!(newer_than(&successor, None));
        assert!(
            newer_than(&successor, Some(&stored)),
            "its lineage names old"
        );
        successor.rotated_from.clear();
        assert!(
            !newer_than(&successor, Some(&stored)),
            "same second, no lineage"
        );
        successor.stored_at = 2;
        assert!(newer_than(&successor, Some(&stored)), "a later second");
        assert!(!newer_than(&stored, Some(&stored)), "the same pair");
    }

    fn sealing(byte: u8) -> Arc<StoreKeys> {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        let env = move |var: &str| (var == super::super::STORE_KEY_VAR).then(|| encoded.clone());
        Arc::new(StoreKeys::from_env(&env).unwrap())
    }

    #[tokio::test]
    async fn a_sealed_file_hides_its_tokens_opens_only_with_its_key_and_seals_plain_pairs() {
        let dir = temp_dir("sealed");
        let path = dir.join("tokens.json");
        let plain_store = FileStore::open(&path, plain()).unwrap();
        let a = pair(
            "a",
            r#"{"access_token":"at-plain","refresh_token":"rt-plain"}"#,
        );
        let lease = plain_store
            .lease(&a.key, Duration::from_secs(1))
            .await
            .unwrap();
        plain_store.save(&lease, a.clone()).await.unwrap();
        drop(lease);
        assert!(std::fs::read_to_string(&path).unwrap().contains("rt-plain"));

        // Opened with a key: the plain pair reads, and any write seals every pair.
        let store = FileStore::open(&path, sealing(1)).unwrap();
        assert_eq!(
            store.load(&a.key).await.unwrap().unwrap().response(),
            a.response()
        );
        let b = pair("b", r#"{"access_token":"at-b","refresh_token":"rt-b"}"#);
        let lease = store.lease(&b.key, Duration::from_secs(1)).await.unwrap();
        store.save(&lease, b.clone()).await.unwrap();
        drop(lease);
        let text = std::fs::read_to_string(&path).unwrap();
        for token in ["at-plain", "rt-plain", "at-b", "rt-b"] {
            assert!(!text.contains(token), "{token} in {text}");
        }
        assert_eq!(text.matches("\"key_id\"").count(), 2, "{text}");
        assert_eq!(
            store.load(&a.key).await.unwrap().unwrap().response(),
            a.response()
        );

        // Another key, or none: refused at open, naming the variable.
        for keys in [sealing(2), plain()] {
            let error = FileStore::open(&path, keys).unwrap_err().to_string();
            assert!(
                error.contains("PROCORE_STORE_KEY") && error.contains("tokens.json"),
                "{error}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_orphan_sealed_under_another_key_is_kept_not_removed() {
        let (one, two) = (temp_dir("orphan-one"), temp_dir("orphan-two"));
        let sealed_one = FileStore::open(one.join("tokens.json"), sealing(1)).unwrap();
        let a = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        let lease = sealed_one
            .lease(&a.key, Duration::from_secs(1))
            .await
            .unwrap();
        sealed_one.save(&lease, a.clone()).await.unwrap();
        drop(lease);
        // Left by a killed writer an hour ago, beside a store opened with another key.
        let orphan = two.join("tokens.json.tmp.999.abandoned");
        std::fs::copy(one.join("tokens.json"), &orphan).unwrap();
        std::fs::set_permissions(&orphan, std::fs::Permissions::from_mode(0o600)).unwrap();
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&orphan)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let store = FileStore::open(two.join("tokens.json"), sealing(2)).unwrap();
        let lease = store.lease(&a.key, Duration::from_secs(1)).await.unwrap();
        drop(lease);
        assert!(orphan.exists(), "it may hold the only copy of a pair");
        assert!(store.load(&a.key).await.unwrap().is_none());
        std::fs::remove_dir_all(one).unwrap();
        std::fs::remove_dir_all(two).unwrap();
    }
}
