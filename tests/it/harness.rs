//! Stores for the tests, in every tier combination: SQLite files in a temp
//! dir, fresh databases on a throwaway PostgreSQL server, key prefixes on a
//! throwaway Redis server (see `tests/support/`), in-process caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sessionctl::store::memory::MemoryCache;
use sessionctl::store::redis::RedisCache;
use sessionctl::store::{postgres::PostgresDatabase, sqlite::SqliteDatabase};
use sessionctl::{CacheTier, DatabaseTier, StoreOptions};

pub use sessionctl::testing::{config, cookie_of, id_of, keys, new_key, record, remember};

#[path = "../support/chromium.rs"]
pub mod chromium;
#[path = "../support/pg_server.rs"]
pub mod pg_server;
#[path = "../support/redis_cluster.rs"]
pub mod redis_cluster;
#[path = "../support/redis_server.rs"]
pub mod redis_server;

pub use pg_server::free_port;

/// The tiers of one test, removed with it (the conformance kit's).
pub type TestDb = sessionctl::testing::Tiers;

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
    Arc::new(RedisCache::connect(url, &fresh_prefix(), StoreOptions::default().cache_timeout).unwrap())
}

fn fresh_prefix() -> String {
    format!("test{}:{}:", std::process::id(), PREFIX_COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Redis Cluster (the shared one, a fresh prefix) in front of PostgreSQL.
pub async fn cluster_postgres() -> Option<TestDb> {
    let cluster = tokio::task::spawn_blocking(redis_cluster::shared_cluster).await.unwrap()?;
    let cache = redis_cache_at(&cluster.url());
    let (database, url) = postgres_database().await?;
    Some(TestDb::new(Some(database), Some(cache)).with_url(url))
}

/// Redis Cluster alone (`no_database`).
pub async fn cluster_only() -> Option<TestDb> {
    let cluster = tokio::task::spawn_blocking(redis_cluster::shared_cluster).await.unwrap()?;
    let timeout = StoreOptions::default().cache_timeout_for(false);
    let cache: Arc<dyn CacheTier> = Arc::new(RedisCache::connect(&cluster.url(), &fresh_prefix(), timeout).unwrap());
    Some(TestDb::new(None, Some(cache)))
}

/// The primary Sentinels name (the shared setup), in front of SQLite.
pub async fn sentinel_sqlite() -> Option<TestDb> {
    let sentinel = tokio::task::spawn_blocking(redis_cluster::shared_sentinel).await.unwrap()?;
    let cache = redis_cache_at(&sentinel.url());
    let (database, url, dir) = sqlite_database().await;
    Some(TestDb::new(Some(database), Some(cache)).with_url(url).keep(dir))
}

/// A fresh SQLite database.
pub async fn sqlite() -> TestDb {
    let (database, url, dir) = sqlite_database().await;
    TestDb::new(Some(database), None).with_url(url).keep(dir)
}

/// A fresh database on the shared PostgreSQL server, or `None` (with a
/// message) when PostgreSQL is not installed and `CI` is not set.
pub async fn postgres() -> Option<TestDb> {
    let (database, url) = postgres_database().await?;
    Some(TestDb::new(Some(database), None).with_url(url))
}

/// Redis in front of SQLite.
pub async fn redis_sqlite() -> Option<TestDb> {
    let cache = redis_cache()?;
    let (database, url, dir) = sqlite_database().await;
    Some(TestDb::new(Some(database), Some(cache)).with_url(url).keep(dir))
}

/// Redis in front of PostgreSQL.
pub async fn redis_postgres() -> Option<TestDb> {
    let cache = redis_cache()?;
    let (database, url) = postgres_database().await?;
    Some(TestDb::new(Some(database), Some(cache)).with_url(url))
}

/// The in-process cache in front of SQLite (the embedded default).
pub async fn memory_sqlite() -> TestDb {
    let (database, url, dir) = sqlite_database().await;
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(10_000, Some(std::time::Duration::from_secs(10))));
    TestDb::new(Some(database), Some(cache)).with_url(url).keep(dir)
}

/// Redis alone (`no_database`): the cache is the only tier, so its client
/// gets the database's timeout, as `StoreConfig::open` gives it.
pub async fn redis_only() -> Option<TestDb> {
    let server = redis_server::shared()?;
    let prefix = fresh_prefix();
    let timeout = StoreOptions::default().cache_timeout_for(false);
    let cache: Arc<dyn CacheTier> = Arc::new(RedisCache::connect(&server.url(), &prefix, timeout).unwrap());
    Some(TestDb::new(None, Some(cache)))
}

/// The in-process cache alone (`no_database`).
pub async fn memory_only() -> TestDb {
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(10_000, None));
    TestDb::new(None, Some(cache))
}
