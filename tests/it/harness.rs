//! Stores for the tests, in every tier combination: SQLite files in a temp
//! dir, fresh databases on a throwaway PostgreSQL server, key prefixes on a
//! throwaway Redis server (see `tests/support/`), in-process caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sessionctl::store::memory::MemoryCache;
use sessionctl::store::redis::RedisCache;
use sessionctl::store::{CacheLookup, postgres::PostgresDatabase, sqlite::SqliteDatabase};
use sessionctl::{
    CacheTier, DatabaseTier, Filter, Keys, Record, SessionConfig, SessionId, SessionKey, Store, StoreOptions,
};

/// The ids behind the keys tests made with [`new_key`]: a stored record
/// keeps only its key, and a test that sends its cookie needs the id.
static IDS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<SessionKey, SessionId>>> =
    std::sync::LazyLock::new(Default::default);

/// A fresh session's key, its id remembered for [`id_of`].
pub fn new_key() -> SessionKey {
    remember(SessionId::generate())
}

/// The key of a session `id` the library made, remembered for [`id_of`].
pub fn remember(id: SessionId) -> SessionKey {
    let key = SessionKey::of(&id);
    IDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone(), id);
    key
}

/// The id of a key [`new_key`] or [`remember`] made (what the session's cookie carries).
pub fn id_of(key: &SessionKey) -> SessionId {
    let id = IDS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned();
    id.expect("a key made by harness::new_key or harness::remember")
}

#[path = "../support/chromium.rs"]
pub mod chromium;
#[path = "../support/pg_server.rs"]
pub mod pg_server;
#[path = "../support/redis_server.rs"]
pub mod redis_server;

pub use pg_server::free_port;

/// The keys every test signs with.
pub fn keys() -> Keys {
    Keys::new([b"test key 0123456789 0123456789 0123456789".as_slice()]).unwrap()
}

/// Server-side sessions only (cookie-only disabled), so tests exercise the
/// store.
pub fn config() -> SessionConfig {
    SessionConfig::new(keys()).with_cookie_only_threshold(0)
}

/// The tiers of one test, removed with it.
pub struct TestDb {
    pub store: Store,
    pub database: Option<Arc<dyn DatabaseTier>>,
    pub cache: Option<Arc<dyn CacheTier>>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    fn new(
        database: Option<Arc<dyn DatabaseTier>>,
        cache: Option<Arc<dyn CacheTier>>,
        url: String,
        dir: Option<tempfile::TempDir>,
    ) -> TestDb {
        let options = StoreOptions::default();
        let store = match (&database, &cache) {
            (Some(db), None) => Store::new(db.clone()),
            (Some(db), Some(cache)) => Store::tiered(db.clone(), cache.clone(), options),
            (None, Some(cache)) => Store::cache_only(cache.clone(), options),
            (None, None) => unreachable!(),
        };
        TestDb { store, database, cache, url, _dir: dir }
    }

    /// A second store over the same tiers, as another app process has
    /// (its own in-process state: combined writes, "moved" marks).
    pub fn twin_store(&self) -> Store {
        let options = StoreOptions::default();
        match (&self.database, &self.cache) {
            (Some(db), None) => Store::new(db.clone()),
            (Some(db), Some(cache)) => Store::tiered(db.clone(), cache.clone(), options),
            (None, Some(cache)) => Store::cache_only(cache.clone(), options),
            (None, None) => unreachable!(),
        }
    }

    /// The database tier (for cases that only make sense with one).
    pub fn db(&self) -> &Arc<dyn DatabaseTier> {
        self.database.as_ref().expect("this case needs a database tier")
    }

    /// What the authoritative tier holds (the database, else the cache),
    /// expired or not.
    pub async fn stored(&self, id: &SessionKey) -> Option<Record> {
        match (&self.database, &self.cache) {
            (Some(db), _) => db.load(id).await.unwrap(),
            (None, Some(cache)) => match cache.get(id).await.unwrap() {
                CacheLookup::Hit(record) => Some(record),
                _ => None,
            },
            (None, None) => unreachable!(),
        }
    }

    /// Asserts the session is in no tier.
    pub async fn assert_gone(&self, id: &SessionKey) {
        if let Some(db) = &self.database {
            assert!(db.load(id).await.unwrap().is_none(), "{id} still in the database");
        }
        if let Some(cache) = &self.cache {
            assert!(!matches!(cache.get(id).await.unwrap(), CacheLookup::Hit(_)), "{id} still in the cache");
        }
    }

    /// Replaces what is stored, behind the session's back (an admin edit):
    /// written to the authoritative tier, and the cache entry dropped.
    pub async fn overwrite(&self, record: &Record) {
        if let Some(db) = &self.database {
            db.upsert(record).await.unwrap();
        }
        if let Some(cache) = &self.cache {
            cache.evict(std::slice::from_ref(&record.id)).await.unwrap();
            if self.database.is_none() {
                assert!(cache.put(record).await.unwrap());
            }
        }
    }

    /// Sessions in the database.
    pub async fn count(&self) -> u64 {
        self.db().count(&Filter::default(), chrono::Utc::now()).await.unwrap()
    }
}

async fn sqlite_database() -> (Arc<dyn DatabaseTier>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let database: Arc<dyn DatabaseTier> = Arc::new(SqliteDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    (database, url, dir)
}

async fn postgres_database() -> Option<(Arc<dyn DatabaseTier>, String)> {
    let server = pg_server::shared()?;
    let url = tokio::task::spawn_blocking(|| server.create_database()).await.unwrap();
    let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    Some((database, url))
}

static PREFIX_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A Redis cache tier on the shared server, under a prefix of its own.
pub fn redis_cache() -> Option<Arc<dyn CacheTier>> {
    let server = redis_server::shared()?;
    Some(redis_cache_at(&server.url()))
}

/// A Redis cache tier for the server at `url`, under a fresh prefix.
pub fn redis_cache_at(url: &str) -> Arc<dyn CacheTier> {
    let prefix = format!("test{}:{}:", std::process::id(), PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed));
    Arc::new(RedisCache::connect(url, &prefix, StoreOptions::default().cache_timeout).unwrap())
}

/// A fresh SQLite database.
pub async fn sqlite() -> TestDb {
    let (database, url, dir) = sqlite_database().await;
    TestDb::new(Some(database), None, url, Some(dir))
}

/// A fresh database on the shared PostgreSQL server, or `None` (with a
/// message) when PostgreSQL is not installed and `CI` is not set.
pub async fn postgres() -> Option<TestDb> {
    let (database, url) = postgres_database().await?;
    Some(TestDb::new(Some(database), None, url, None))
}

/// Redis in front of SQLite.
pub async fn redis_sqlite() -> Option<TestDb> {
    let cache = redis_cache()?;
    let (database, url, dir) = sqlite_database().await;
    Some(TestDb::new(Some(database), Some(cache), url, Some(dir)))
}

/// Redis in front of PostgreSQL.
pub async fn redis_postgres() -> Option<TestDb> {
    let cache = redis_cache()?;
    let (database, url) = postgres_database().await?;
    Some(TestDb::new(Some(database), Some(cache), url, None))
}

/// The in-process cache in front of SQLite (the embedded default).
pub async fn memory_sqlite() -> TestDb {
    let (database, url, dir) = sqlite_database().await;
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(10_000, Some(std::time::Duration::from_secs(10))));
    TestDb::new(Some(database), Some(cache), url, Some(dir))
}

/// Redis alone (`no_database`): the cache is the only tier, so its client
/// gets the database's timeout, as `StoreConfig::open` gives it.
pub async fn redis_only() -> Option<TestDb> {
    let server = redis_server::shared()?;
    let prefix = format!("test{}:{}:", std::process::id(), PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed));
    let timeout = StoreOptions::default().cache_timeout_for(false);
    let cache: Arc<dyn CacheTier> = Arc::new(RedisCache::connect(&server.url(), &prefix, timeout).unwrap());
    Some(TestDb::new(None, Some(cache), String::new(), None))
}

/// The in-process cache alone (`no_database`).
pub async fn memory_only() -> TestDb {
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(10_000, None));
    TestDb::new(None, Some(cache), String::new(), None)
}
