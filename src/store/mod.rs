//! The token store (opt-in, `--token-store PATH`): one current token pair per
//! (login host, client_id), kept in a JSON file that several server processes may share.
//!
//! Every write is durable before it returns (temp file in the same directory, fsync, atomic
//! rename, fsync of the directory), so a crash leaves the old file or the new one, never a
//! torn one. A corrupt or foreign-readable store stops the server at start-up with a message
//! naming the file; nothing in it is ever silently discarded. Consumed refresh tokens are
//! remembered only as SHA-256 hashes, to recognise a retry within the reuse window.

mod file;
mod lock;

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lock::StoreLock;

use crate::secret::Secret;

/// The value of the `format` field this version writes and reads.
const FORMAT: u32 = 1;

/// A store file on disk.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
    lock_path: PathBuf,
}

/// Why the store cannot be used. Messages name the file; none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    #[error(
        "token store {path} was written by a newer version (format {found}); this version \
         reads format {FORMAT}"
    )]
    Format { path: PathBuf, found: u32 },
    #[error("token store {path} is locked by another process and stayed locked for {waited:?}")]
    LockTimeout { path: PathBuf, waited: Duration },
}

/// The whole store, as read from disk.
#[derive(Debug, Clone, Default)]
pub struct StoreContents {
    pairs: Vec<StoredPair>,
}

/// The current token pair of one (login host, client_id).
#[derive(Debug, Clone)]
pub struct StoredPair {
    pub login_host: String,
    pub client_id: String,
    /// The token response exactly as Procore sent it.
    pub response: Secret,
    /// Unix seconds when it was stored.
    pub stored_at: u64,
    /// Hash of the client credentials that obtained it (a replay must present the same).
    pub credentials_sha256: String,
    /// Refresh tokens this pair (or its predecessors) replaced, hashed, with when.
    pub rotated_from: Vec<Rotation>,
}

/// One consumed refresh token, remembered as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub refresh_token_sha256: String,
    /// Unix milliseconds when the store learned of the rotation.
    pub at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    format: u32,
    pairs: Vec<PairOnDisk>,
}

#[derive(Serialize, Deserialize)]
struct PairOnDisk {
    login_host: String,
    client_id: String,
    response: String,
    stored_at: u64,
    credentials_sha256: String,
    #[serde(default)]
    rotated_from: Vec<Rotation>,
}

impl TokenStore {
    /// Check the store at start-up: the directory (created 0700 when missing), the file's
    /// permissions and contents, and that the lock file can be created.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path: PathBuf = path.into();
        let path = if path.is_relative() {
            std::env::current_dir()
                .map_err(|source| StoreError::Io {
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
        };
        file::prepare_directory(store.directory())?;
        file::check_file(&store.path)?;
        lock::create_lock_file(&store.lock_path)?;
        let lock = StoreLock::acquire_blocking(&store.lock_path, Duration::from_secs(30))?;
        let mut contents = store.read()?;
        let recovered = store.recover_orphans(&mut contents);
        if !recovered.is_empty() {
            file::write_atomically(&store.path, &store.encode(&contents)?)?;
            store.remove_recovered(&recovered);
        }
        drop(lock);
        Ok(store)
    }

    /// Read the store with the lock held, first folding in any pair an interrupted write
    /// left in a temporary file (see [`Self::recover_orphans`]).
    pub async fn read_locked(&self, lock: &StoreLock) -> Result<StoreContents, StoreError> {
        let mut contents = self.read()?;
        let recovered = self.recover_orphans(&mut contents);
        if !recovered.is_empty() {
            self.write(&contents, lock).await?;
            self.remove_recovered(&recovered);
        }
        Ok(contents)
    }

    /// Temporary files a writer left beside the store when it was killed between the
    /// temp file's fsync and its rename. Called with the lock held, so no live writer uses
    /// any of them. A complete temp file may hold the only copy of a live pair (Procore
    /// already rotated the stored one), so every pair in it that is newer than the stored
    /// pair of its (login host, client_id) is put into `contents` (see [`newer_than`]).
    /// Returns the temp files that gave something, to remove once `contents` is written.
    /// A temp file that gives nothing (stale, or torn before its fsync) holds no token newer
    /// than the store's and is removed once abandoned for ten minutes, as before.
    fn recover_orphans(&self, contents: &mut StoreContents) -> Vec<PathBuf> {
        let mut recovered = Vec::new();
        for temporary in file::temporaries(&self.path, Duration::from_secs(600)) {
            let orphan = temporary
                .bytes
                .as_ref()
                .and_then(|bytes| self.decode(bytes).ok());
            let mut gave = false;
            for pair in orphan.map(|orphan| orphan.pairs).unwrap_or_default() {
                if newer_than(&pair, contents.find(&pair.login_host, &pair.client_id)) {
                    tracing::warn!(
                        file = %temporary.path.display(),
                        client_id = %pair.client_id,
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

    fn remove_recovered(&self, recovered: &[PathBuf]) {
        for path in recovered {
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn directory(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("/"))
    }

    /// Take the cross-process lock, waiting at most `patience`.
    pub async fn lock(&self, patience: Duration) -> Result<StoreLock, StoreError> {
        StoreLock::acquire(&self.lock_path, patience).await
    }

    /// Read the whole store (an absent file is an empty store).
    pub fn read(&self) -> Result<StoreContents, StoreError> {
        let Some(bytes) = file::read_if_present(&self.path)? else {
            return Ok(StoreContents::default());
        };
        self.decode(&bytes)
    }

    /// The contents of a store file's bytes.
    fn decode(&self, bytes: &[u8]) -> Result<StoreContents, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
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
            return Err(StoreError::Format {
                path: self.path.clone(),
                found: on_disk.format,
            });
        }
        let pairs = on_disk
            .pairs
            .into_iter()
            .map(|pair| {
                if serde_json::from_str::<Value>(&pair.response)
                    .ok()
                    .is_some_and(|value| value.is_object())
                {
                    Ok(StoredPair {
                        login_host: pair.login_host,
                        client_id: pair.client_id,
                        response: Secret::new(pair.response),
                        stored_at: pair.stored_at,
                        credentials_sha256: pair.credentials_sha256,
                        rotated_from: pair.rotated_from,
                    })
                } else {
                    Err(corrupt(format!(
                        "the stored response for client {} is not a JSON object",
                        pair.client_id
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(StoreContents { pairs })
    }

    /// Replace the store with `contents`, durably and atomically. Call with the lock held.
    ///
    /// The file work (two fsyncs, a few milliseconds on most disks) runs on tokio's blocking
    /// pool, so the server's one thread keeps serving other clients meanwhile. It runs to
    /// the end even if the caller stops waiting.
    pub async fn write(
        &self,
        contents: &StoreContents,
        _lock: &StoreLock,
    ) -> Result<(), StoreError> {
        let bytes = self.encode(contents)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || file::write_atomically(&path, &bytes))
            .await
            .unwrap_or_else(|error| {
                Err(StoreError::Io {
                    path: self.path.clone(),
                    what: "the write did not finish",
                    source: std::io::Error::other(error.to_string()),
                })
            })
    }

    /// The file's bytes for `contents`; wiped from memory when dropped.
    fn encode(&self, contents: &StoreContents) -> Result<zeroize::Zeroizing<Vec<u8>>, StoreError> {
        let on_disk = OnDisk {
            format: FORMAT,
            pairs: contents
                .pairs
                .iter()
                .map(|pair| PairOnDisk {
                    login_host: pair.login_host.clone(),
                    client_id: pair.client_id.clone(),
                    response: pair.response.expose().to_owned(),
                    stored_at: pair.stored_at,
                    credentials_sha256: pair.credentials_sha256.clone(),
                    rotated_from: pair.rotated_from.clone(),
                })
                .collect(),
        };
        serde_json::to_vec_pretty(&on_disk)
            .map(zeroize::Zeroizing::new)
            .map_err(|error| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("cannot encode the store: {error}"),
            })
    }
}

impl StoreContents {
    pub fn find(&self, login_host: &str, client_id: &str) -> Option<&StoredPair> {
        self.pairs
            .iter()
            .find(|pair| pair.login_host == login_host && pair.client_id == client_id)
    }

    /// The only pair of a login host, when there is exactly one.
    pub fn only_pair_of(&self, login_host: &str) -> Option<&StoredPair> {
        let mut of_host = self
            .pairs
            .iter()
            .filter(|pair| pair.login_host == login_host);
        match (of_host.next(), of_host.next()) {
            (Some(pair), None) => Some(pair),
            _ => None,
        }
    }

    /// Make `pair` the current pair of its (login host, client_id).
    pub fn upsert(&mut self, pair: StoredPair) {
        self.remove(&pair.login_host.clone(), &pair.client_id.clone());
        self.pairs.push(pair);
    }

    /// Forget the pair of (login host, client_id); whether there was one.
    pub fn remove(&mut self, login_host: &str, client_id: &str) -> bool {
        let before = self.pairs.len();
        self.pairs
            .retain(|pair| !(pair.login_host == login_host && pair.client_id == client_id));
        self.pairs.len() != before
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl StoredPair {
    /// A field of the stored token response, as a secret (access_token, refresh_token).
    pub fn token(&self, field: &str) -> Option<Secret> {
        serde_json::from_str::<Value>(self.response.expose())
            .ok()?
            .get(field)?
            .as_str()
            .map(Secret::new)
    }

    /// When (Unix ms) `refresh_token` was consumed by this pair's line, if no longer ago
    /// than `window` before `now_ms`.
    pub fn rotated_within(
        &self,
        refresh_token: &Secret,
        window: Duration,
        now_ms: u64,
    ) -> Option<u64> {
        let hash = sha256_hex(refresh_token.expose());
        self.rotated_from
            .iter()
            .find(|rotation| rotation.refresh_token_sha256 == hash)
            .map(|rotation| rotation.at_ms)
            .filter(|at_ms| within(*at_ms, window, now_ms))
    }
}

/// Whether `candidate`, found in an orphaned temp file, is newer than `stored`, the pair the
/// store holds for the same (login host, client_id): there is none; or the candidate's
/// lineage names the stored refresh token as consumed (it is that token's successor); or it
/// was stored in a later second. A stale temp file (the store moved on after it) fails all
/// three: the store's pair is then the later one, and its refresh token, issued after the
/// temp file was written, cannot be in the temp file's lineage.
fn newer_than(candidate: &StoredPair, stored: Option<&StoredPair>) -> bool {
    let Some(stored) = stored else {
        return true;
    };
    if candidate.response == stored.response {
        return false;
    }
    let successor = stored.token("refresh_token").is_some_and(|refresh_token| {
        let hash = sha256_hex(refresh_token.expose());
        candidate
            .rotated_from
            .iter()
            .any(|rotation| rotation.refresh_token_sha256 == hash)
    });
    successor || candidate.stored_at > stored.stored_at
}

/// Whether `at_ms` lies no further than `window` before `now_ms`.
pub fn within(at_ms: u64, window: Duration, now_ms: u64) -> bool {
    u128::from(now_ms.saturating_sub(at_ms)) <= window.as_millis()
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The hash that ties a stored pair to the client credentials that obtained it.
pub fn credentials_sha256(client_id: &str, client_secret: &Secret) -> String {
    sha256_hex(&format!("{client_id}\n{}", client_secret.expose()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

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

    fn pair(client_id: &str, response: &str) -> StoredPair {
        StoredPair {
            login_host: "https://login.procore.com".into(),
            client_id: client_id.into(),
            response: Secret::new(response),
            stored_at: 1,
            credentials_sha256: "c".into(),
            rotated_from: vec![Rotation {
                refresh_token_sha256: sha256_hex("old"),
                at_ms: 100_000,
            }],
        }
    }

    #[tokio::test]
    async fn round_trips_with_private_permissions() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("nested").join("tokens.json");
        let store = TokenStore::open(&path).unwrap();
        let nested_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(nested_mode & 0o777, 0o700, "created directory is 0700");
        assert!(store.read().unwrap().is_empty());

        let mut contents = StoreContents::default();
        contents.upsert(pair("a", r#"{"access_token":"x","refresh_token":"y"}"#));
        contents.upsert(pair("a", r#"{"access_token":"x2","refresh_token":"y2"}"#));
        contents.upsert(pair("b", r#"{"access_token":"z"}"#));
        let lock = store.lock(Duration::from_secs(1)).await.unwrap();
        store.write(&contents, &lock).await.unwrap();
        drop(lock);

        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read = store.read().unwrap();
        assert_eq!(read.len(), 2);
        let a = read.find("https://login.procore.com", "a").unwrap();
        assert_eq!(a.token("refresh_token").unwrap().expose(), "y2");
        assert_eq!(
            a.rotated_within(&Secret::new("old"), Duration::from_secs(120), 150_000),
            Some(100_000)
        );
        assert_eq!(
            a.rotated_within(&Secret::new("old"), Duration::from_secs(10), 150_000),
            None
        );
        assert!(read.only_pair_of("https://login.procore.com").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_foreign_readable_files_and_corrupt_contents() {
        let dir = temp_dir("refuse");
        let path = dir.join("tokens.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = TokenStore::open(&path).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"{ not json").unwrap();
        let error = TokenStore::open(&path).unwrap_err().to_string();
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
        let error = TokenStore::open(dir.join("tokens.json"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("writable by other users"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_lock_excludes_a_second_holder_until_released() {
        let dir = temp_dir("lock");
        let store = TokenStore::open(dir.join("tokens.json")).unwrap();
        let first = store.lock(Duration::from_secs(1)).await.unwrap();
        let second = store.lock(Duration::from_millis(100)).await;
        assert!(matches!(second, Err(StoreError::LockTimeout { .. })));
        drop(first);
        assert!(store.lock(Duration::from_millis(100)).await.is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
