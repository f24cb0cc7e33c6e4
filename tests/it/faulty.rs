//! A cache tier that fails or stalls on demand, wrapped around a real one:
//! the store's fallback paths (a cache write that fails, an eviction that
//! fails too, a cache that hangs) without SIGSTOPping a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Duration as Age;
use serde_json::json;
use sessionctl::record::now;
use sessionctl::store::memory::MemoryCache;
use sessionctl::store::{CacheLookup, RotateOutcome, Tombstone, UpdateOutcome};
use sessionctl::{CacheTier, Error, Patch, Record, Result, SessionKey, Store, StoreOptions};

use crate::harness;

/// How the wrapped cache answers.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    Healthy = 0,
    /// Every call fails at once.
    Failing = 1,
    /// Every call hangs (the store's cache timeout must end it).
    Stalled = 2,
}

#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn CacheTier>,
    mode: AtomicU8,
}

impl Faulty {
    fn new(inner: Arc<dyn CacheTier>) -> Arc<Faulty> {
        Arc::new(Faulty { inner, mode: AtomicU8::new(Mode::Healthy as u8) })
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    async fn check(&self, operation: &'static str) -> Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            1 => Err(Error::Cache { backend: "faulty", operation, message: "injected failure".into() }),
            2 => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl CacheTier for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }
    fn in_front_of_database(&self) {
        self.inner.in_front_of_database();
    }
    async fn get(&self, id: &SessionKey) -> Result<CacheLookup> {
        self.check("get").await?;
        self.inner.get(id).await
    }
    async fn fill(&self, record: &Record) -> Result<()> {
        self.check("fill").await?;
        self.inner.fill(record).await
    }
    async fn put(&self, record: &Record) -> Result<bool> {
        self.check("put").await?;
        self.inner.put(record).await
    }
    async fn evict(&self, ids: &[SessionKey]) -> Result<()> {
        self.check("evict").await?;
        self.inner.evict(ids).await
    }
    async fn tombstone(&self, id: &SessionKey, ttl: Duration, reason: Tombstone) -> Result<()> {
        self.check("tombstone").await?;
        self.inner.tombstone(id, ttl, reason).await
    }
    async fn patch(&self, id: &SessionKey, patch: &Patch, bump: bool) -> Result<Option<i64>> {
        self.check("patch").await?;
        self.inner.patch(id, patch, bump).await
    }
    async fn put_patched(&self, id: &SessionKey, patch: &Patch, version: i64) -> Result<bool> {
        self.check("put_patched").await?;
        self.inner.put_patched(id, patch, version).await
    }
    async fn create(&self, record: &Record) -> Result<bool> {
        self.check("create").await?;
        self.inner.create(record).await
    }
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        self.check("update").await?;
        self.inner.update(record, expected_version).await
    }
    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        self.check("rotate").await?;
        self.inner.rotate(old, expected_version, record).await
    }
    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        self.check("delete").await?;
        self.inner.delete(id).await
    }
    async fn scan_ids(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionKey>)> {
        self.check("scan_ids").await?;
        self.inner.scan_ids(cursor, count).await
    }
}

fn record(data: serde_json::Value) -> Record {
    harness::record(None, Age::hours(1), data)
}

/// A write whose cache update and eviction both fail leaves a stale entry
/// behind; the store remembers the id and reads the database for it until
/// an eviction gets through, so the stale copy is never served.
#[tokio::test]
async fn a_cache_that_fails_a_write_and_its_eviction_never_serves_the_stale_copy() {
    let db = harness::sqlite().await;
    let cache = Faulty::new(Arc::new(MemoryCache::new(1000, None)));
    let store = Store::tiered(db.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    let first = record(json!({"n": 1}));
    assert!(store.create(&first).await.unwrap());
    assert_eq!(store.load(&first.id, now()).await.unwrap().unwrap().data["n"], json!(1), "cached");

    cache.set(Mode::Failing);
    let mut second = first.clone();
    second.data.insert("n".into(), json!(2));
    second.version = 2;
    assert_eq!(store.update(&second, 1).await.unwrap(), UpdateOutcome::Updated, "the database write stands");
    let errors = store.ops().cache_errors;
    assert!(errors >= 2, "the put and the eviction both failed ({errors})");

    cache.set(Mode::Healthy);
    assert_eq!(
        store.load(&first.id, now()).await.unwrap().unwrap().data["n"],
        json!(2),
        "the suspect id is read from the database, not the stale cache entry"
    );
    assert_eq!(store.load(&first.id, now()).await.unwrap().unwrap().data["n"], json!(2));
}

/// A cache that hangs costs each call its timeout, no more: reads and
/// writes go on from the database, and a delete still happens there.
#[tokio::test]
async fn a_stalled_cache_is_bypassed_within_its_timeout() {
    let db = harness::sqlite().await;
    let cache = Faulty::new(Arc::new(MemoryCache::new(1000, None)));
    let options = StoreOptions::default().with_cache_timeout(Duration::from_millis(100));
    let store = Store::tiered(db.database.clone().unwrap(), cache.clone(), options);
    let session = record(json!({"n": 1}));
    assert!(store.create(&session).await.unwrap());
    cache.set(Mode::Stalled);
    // A hang detector, not a timing: each call is bounded by 100 ms.
    tokio::time::timeout(Duration::from_secs(30), async {
        assert_eq!(store.load(&session.id, now()).await.unwrap().unwrap().data["n"], json!(1));
        assert!(store.delete(&session.id).await.unwrap());
    })
    .await
    .expect("a stalled cache is bypassed, not waited for");
    assert!(db.stored(&session.id).await.is_none(), "deleted in the database");
    cache.set(Mode::Healthy);
    assert!(store.load(&session.id, now()).await.unwrap().is_none(), "no stale copy comes back once the cache answers");
}
