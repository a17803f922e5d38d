//! The in-memory store: pairs kept in this process only, lost when it exits. One mutex per
//! pair key is the lease, so two changes of one pair never interleave.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::FutureExt;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use super::{
    Lease, PairKey, Principal, StoreError, StoreFuture, StoredPair, TokenStore, the_only_pair_of,
};

/// Pairs in memory, with a lease per key.
#[derive(Debug)]
pub struct MemoryStore {
    /// Tells this store's leases from another's.
    id: uuid::Uuid,
    pairs: Mutex<HashMap<PairKey, StoredPair>>,
    leases: Mutex<HashMap<PairKey, Arc<AsyncMutex<()>>>>,
}

/// What a memory lease holds: the key's mutex guard, and whose it is.
struct Held {
    store: uuid::Uuid,
    _guard: OwnedMutexGuard<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            pairs: Mutex::default(),
            leases: Mutex::default(),
        }
    }

    /// The pair table. A panic while it was held cannot leave a pair half-written (every
    /// change is one insert or remove), so a poisoned lock is still used.
    fn pairs(&self) -> MutexGuard<'_, HashMap<PairKey, StoredPair>> {
        self.pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check(&self, lease: &Lease) -> Result<(), StoreError> {
        match lease.held::<Held>() {
            Some(held) if held.store == self.id => Ok(()),
            _ => Err(StoreError::LeaseLost {
                location: self.location(),
                key: lease.key().clone(),
            }),
        }
    }
}

impl TokenStore for MemoryStore {
    fn location(&self) -> String {
        "in memory".to_owned()
    }

    fn lease<'a>(&'a self, key: &'a PairKey, patience: Duration) -> StoreFuture<'a, Lease> {
        async move {
            let mutex = self
                .leases
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(key.clone())
                .or_default()
                .clone();
            let guard = tokio::time::timeout(patience, mutex.lock_owned())
                .await
                .map_err(|_| StoreError::LockTimeout {
                    location: self.location(),
                    waited: patience,
                })?;
            Ok(Lease::new(
                key.clone(),
                Held {
                    store: self.id,
                    _guard: guard,
                },
            ))
        }
        .boxed()
    }

    fn load<'a>(&'a self, key: &'a PairKey) -> StoreFuture<'a, Option<StoredPair>> {
        let pair = self.pairs().get(key).cloned();
        async move { Ok(pair) }.boxed()
    }

    fn save<'a>(&'a self, lease: &'a Lease, pair: StoredPair) -> StoreFuture<'a, ()> {
        let saved = self.check(lease).and_then(|()| {
            if &pair.key != lease.key() {
                return Err(StoreError::LeaseLost {
                    location: self.location(),
                    key: pair.key.clone(),
                });
            }
            self.pairs().insert(pair.key.clone(), pair);
            Ok(())
        });
        async move { saved }.boxed()
    }

    fn remove<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        let removed = self
            .check(lease)
            .map(|()| self.pairs().remove(lease.key()).is_some());
        async move { removed }.boxed()
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        async { Ok(()) }.boxed()
    }

    fn only_pair_of<'a>(
        &'a self,
        principal: &'a Principal,
        login_host: &'a str,
    ) -> StoreFuture<'a, Option<StoredPair>> {
        let only = the_only_pair_of(self.pairs().values(), principal, login_host);
        async move { Ok(only) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::pair;

    #[tokio::test]
    async fn a_lease_excludes_a_second_holder_of_the_same_key_only() {
        let store = MemoryStore::new();
        let a = PairKey::local("https://login.procore.com", "a");
        let b = PairKey::local("https://login.procore.com", "b");
        let first = store.lease(&a, Duration::from_secs(1)).await.unwrap();
        let second = store.lease(&a, Duration::from_millis(50)).await;
        assert!(matches!(second, Err(StoreError::LockTimeout { .. })));
        let other = store.lease(&b, Duration::from_millis(50)).await;
        assert!(other.is_ok(), "another pair is not held up");
        drop(first);
        assert!(store.lease(&a, Duration::from_millis(50)).await.is_ok());
    }

    #[tokio::test]
    async fn pairs_are_saved_and_removed_under_their_own_lease_only() {
        let store = MemoryStore::new();
        let stored = pair("a", r#"{"access_token":"x","refresh_token":"y"}"#);
        let key = stored.key.clone();
        let lease = store.lease(&key, Duration::from_secs(1)).await.unwrap();
        store.save(&lease, stored.clone()).await.unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.response(), stored.response());

        // A lease of another store, or of another key, changes nothing.
        let stranger = MemoryStore::new();
        let foreign = stranger.lease(&key, Duration::from_secs(1)).await.unwrap();
        assert!(matches!(
            store.remove(&foreign).await,
            Err(StoreError::LeaseLost { .. })
        ));
        let other_key = PairKey::local("https://login.procore.com", "b");
        let other = store
            .lease(&other_key, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(store.save(&other, stored.clone()).await.is_err());

        let host = "https://login.procore.com";
        let only = store.only_pair_of(&Principal::local(), host).await.unwrap();
        assert_eq!(only.unwrap().key, key);
        store
            .save(&other, pair("b", r#"{"access_token":"z"}"#))
            .await
            .unwrap();
        let only = store.only_pair_of(&Principal::local(), host).await.unwrap();
        assert!(only.is_none(), "two pairs: none is the only one");

        assert!(store.remove(&lease).await.unwrap());
        assert!(!store.remove(&lease).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
    }
}
