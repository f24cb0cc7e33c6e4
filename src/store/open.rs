//! Opening a store from URLs: [`StoreConfig`], and the database
//! connectors it and the CLI use.

use std::sync::Arc;
use std::time::Duration;

use super::{
    AppCache, CacheTier, DEFAULT_DATABASE_TIMEOUT, DatabaseTier, SchemaStatus, Store, StoreOptions, memory, postgres,
    redis, sqlite, timed,
};
use crate::error::{Error, Result};

/// Where sessions live: what [`StoreConfig::open`] builds a [`Store`] from.
///
/// Built with [`StoreConfig::new`] and its `with_*` methods, so settings
/// added later do not break the code that builds one.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `sqlite://PATH`, `postgres://…`; `None` for cache-only mode.
    pub database_url: Option<String>,
    /// `redis://…` for a Redis cache tier.
    pub redis_url: Option<String>,
    /// Key prefix in Redis (default `sessionctl:`).
    pub redis_prefix: Option<String>,
    /// An in-process cache tier (ignored when a Redis URL is given).
    pub memory_cache: Option<MemoryCacheConfig>,
    /// Cache timeouts and tombstones.
    pub options: StoreOptions,
    /// Who opens the store: an app (the default) or an admin tool.
    pub open_as: OpenAs,
    /// A database tier of the app's own (a backend built outside this
    /// crate), used instead of `database_url`: opened as `open_as` says,
    /// through its [`DatabaseCore::schema_status`](super::DatabaseCore::schema_status) and
    /// [`DatabaseCore::migrate`](super::DatabaseCore::migrate).
    pub database: Option<Arc<dyn DatabaseTier>>,
    /// A cache tier of the app's own, used instead of `redis_url` and
    /// `memory_cache` (recorded in the database as a kind the admin tool
    /// does not know, so its changes are refused without `--no-cache`).
    pub cache: Option<Arc<dyn CacheTier>>,
}

/// Who opens a store, which decides what opening may change in the
/// database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenAs {
    /// An app serving sessions: a missing SQLite file is created, pending
    /// migrations are applied (only when some are: a role without DDL
    /// rights opens an up-to-date database), and the cache tier is recorded
    /// in the database for the admin tool.
    #[default]
    App,
    /// An admin tool: the database must exist with this build's schema
    /// ([`Error::NoDatabase`], [`Error::Schema`] otherwise), and nothing is
    /// written on opening, so a read-only role can open it.
    Admin,
}

/// Settings of the in-process cache tier.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct MemoryCacheConfig {
    /// Most sessions kept.
    pub capacity: u64,
    /// Longest an entry is served without reading the database (in front of
    /// a database; a cache-only store keeps entries until they expire).
    pub staleness: Duration,
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        MemoryCacheConfig { capacity: memory::DEFAULT_CAPACITY, staleness: memory::DEFAULT_STALENESS }
    }
}

impl MemoryCacheConfig {
    /// Sets [`MemoryCacheConfig::capacity`].
    pub fn with_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets [`MemoryCacheConfig::staleness`].
    pub fn with_staleness(mut self, staleness: Duration) -> Self {
        self.staleness = staleness;
        self
    }
}

impl StoreConfig {
    /// Nothing configured yet: an in-memory SQLite database unless a
    /// database or cache is given.
    pub fn new() -> Self {
        StoreConfig::default()
    }

    /// Sets [`StoreConfig::database_url`].
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Sets [`StoreConfig::redis_url`].
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Sets [`StoreConfig::redis_prefix`].
    pub fn with_redis_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_prefix = Some(prefix.into());
        self
    }

    /// Sets [`StoreConfig::memory_cache`].
    pub fn with_memory_cache(mut self, cache: MemoryCacheConfig) -> Self {
        self.memory_cache = Some(cache);
        self
    }

    /// Sets [`StoreConfig::options`].
    pub fn with_options(mut self, options: StoreOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets [`StoreConfig::open_as`].
    pub fn with_open_as(mut self, open_as: OpenAs) -> Self {
        self.open_as = open_as;
        self
    }

    /// Sets [`StoreConfig::database`]: a database tier of the app's own.
    pub fn with_database(mut self, database: Arc<dyn DatabaseTier>) -> Self {
        self.database = Some(database);
        self
    }

    /// Sets [`StoreConfig::cache`]: a cache tier of the app's own.
    pub fn with_cache(mut self, cache: Arc<dyn CacheTier>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Connects the configured tiers; see [`OpenAs`] for what that does to
    /// the database.
    ///
    /// # Errors
    ///
    /// As [`open_database`] for the database; [`Error::Config`] for an invalid Redis
    /// URL, for no tier at all, or when an app cannot record its cache tier in the database.
    pub async fn open(&self) -> Result<Store> {
        let database = match (&self.database, &self.database_url) {
            (Some(custom), _) => {
                check_schema(custom.as_ref(), self.open_as).await?;
                Some(custom.clone())
            }
            (None, Some(url)) => Some(open_database(url, self.options.database_timeout, self.open_as).await?),
            (None, None) => None,
        };
        let cache: Option<Arc<dyn CacheTier>> = match (&self.cache, &self.redis_url, self.memory_cache) {
            (Some(custom), ..) => Some(custom.clone()),
            (None, Some(url), _) => Some(Arc::new(self.redis_cache(url, database.is_some())?)),
            (None, None, Some(memory)) => {
                let staleness = database.is_some().then_some(memory.staleness);
                Some(Arc::new(memory::MemoryCache::new(memory.capacity, staleness)))
            }
            (None, None, None) => None,
        };
        if let (Some(database), OpenAs::App) = (&database, self.open_as) {
            let ours = match (&self.cache, &self.redis_url, self.memory_cache) {
                (Some(custom), ..) => AppCache::Unknown { kind: format!("custom {}", custom.backend()) },
                (None, Some(_), _) => AppCache::Redis {
                    prefix: self.redis_prefix.clone().unwrap_or_else(|| redis::DEFAULT_PREFIX.to_owned()),
                },
                (None, None, Some(memory)) => AppCache::Memory { staleness: memory.staleness },
                (None, None, None) => AppCache::None,
            };
            record_cache(database.as_ref(), &ours).await?;
        }
        match (database, cache) {
            (None, None) => Err(Error::Config("no tier configured: give a database URL, a cache, or both".into())),
            (database, cache) => Ok(Store::build(database, cache, self.options.clone())),
        }
    }

    /// The Redis cache the settings name.
    fn redis_cache(&self, url: &str, has_database: bool) -> Result<redis::RedisCache> {
        redis::RedisCache::connect(
            url,
            self.redis_prefix.as_deref().unwrap_or(redis::DEFAULT_PREFIX),
            self.options.cache_timeout_for(has_database),
        )
    }
}

/// Records `ours` as the apps' cache tier, unless it is recorded already or
/// would hide a Redis another app records: a process without Redis (a
/// worker, a canary, a developer's run) must not switch off the admin
/// tool's refusal to change sessions behind the Redis the others serve
/// from. (Moving off Redis for good: `DELETE FROM session_cache_tier`, then
/// start the apps.) A record the app cannot write fails the open, so that
/// refusal is never lost unnoticed.
async fn record_cache(database: &dyn DatabaseTier, ours: &AppCache) -> Result<()> {
    let recorded = database.recorded_cache().await?;
    let redis_elsewhere = matches!(recorded, Some(AppCache::Redis { .. })) && !matches!(ours, AppCache::Redis { .. });
    if recorded.as_ref() == Some(ours) || redis_elsewhere {
        return Ok(());
    }
    database.record_cache(ours).await.map_err(|error| {
        Error::Config(format!(
            "cannot record the cache tier in the database, which `sessionctl` needs to reach the apps' cache ({error}): grant the app's role SELECT, INSERT and UPDATE on session_cache_tier"
        ))
    })
}

/// Opens the database a URL names as `open_as` says: an app's open creates
/// and migrates; an admin's requires the file and the schema as they are.
///
/// # Errors
///
/// Fails with [`Error::UnsupportedUrl`] for a scheme other than
/// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
/// database cannot be opened, and [`Error::Timeout`] when connecting takes longer than
/// the timeout. As an admin: [`Error::NoDatabase`] for a SQLite file that does not
/// exist, [`Error::Schema`] for a schema absent, behind, newer or changed. As an app:
/// [`Error::Migrate`] when pending migrations fail.
pub async fn open_database(database_url: &str, timeout: Duration, open_as: OpenAs) -> Result<Arc<dyn DatabaseTier>> {
    Ok(open_database_with_status(database_url, timeout, open_as).await?.0)
}

/// Like [`open_database`], with the schema's status as the open found it
/// (an admin tool tells from it whether sessions are still stored under
/// their id, [`MOVE_TO_KEYS`](super::MOVE_TO_KEYS)).
///
/// # Errors
///
/// As [`open_database`].
pub async fn open_database_with_status(
    database_url: &str,
    timeout: Duration,
    open_as: OpenAs,
) -> Result<(Arc<dyn DatabaseTier>, SchemaStatus)> {
    let database = match open_as {
        OpenAs::App => connect_database_with_timeout(database_url, timeout).await?,
        OpenAs::Admin => connect_existing_database(database_url, timeout).await?,
    };
    let status = check_schema(database.as_ref(), open_as).await?;
    Ok((database, status))
}

/// Migrates (an app) or requires (an admin) the schema of an open
/// database; returns its status as found.
async fn check_schema(database: &dyn DatabaseTier, open_as: OpenAs) -> Result<SchemaStatus> {
    let status = database.schema_status().await?;
    // Sessions an older build stored under their id are no reason to stop:
    // an app moves them (and opens anyway if it cannot, logging why), an
    // admin reads them under their key; `migrate` moves them.
    let schema_behind = status.pending.iter().any(|step| *step != super::MOVE_TO_KEYS);
    match open_as {
        _ if status.is_current() => {}
        OpenAs::App => {
            if schema_behind {
                database.migrate().await?;
            }
            if let Err(error) = super::move_to_keys(database, |_| {}).await {
                tracing::warn!(%error, "could not move sessions stored under their id to their key; `sessionctl migrate` will");
            }
        }
        OpenAs::Admin if schema_behind => return Err(status.behind_error()),
        OpenAs::Admin => {}
    }
    Ok(status)
}

/// Opens the database tier a URL names, without migrating.
///
/// # Errors
///
/// Fails with [`Error::UnsupportedUrl`] for a scheme other than
/// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
/// database cannot be opened, and [`Error::Timeout`] when connecting takes longer than
/// the timeout.
pub async fn connect_database(database_url: &str) -> Result<Arc<dyn DatabaseTier>> {
    connect_database_with_timeout(database_url, DEFAULT_DATABASE_TIMEOUT).await
}

/// Like [`connect_database`]; `timeout` bounds connecting and every call
/// made through the returned tier.
///
/// # Errors
///
/// Fails with [`Error::UnsupportedUrl`] for a scheme other than
/// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
/// database cannot be opened, and [`Error::Timeout`] when connecting takes longer than
/// the timeout.
pub async fn connect_database_with_timeout(database_url: &str, timeout: Duration) -> Result<Arc<dyn DatabaseTier>> {
    connect(database_url, timeout, true).await
}

/// Like [`connect_database_with_timeout`], but a SQLite file that does not
/// exist is an error ([`Error::NoDatabase`]) rather than created.
///
/// # Errors
///
/// [`Error::NoDatabase`] for a SQLite file that does not exist; otherwise as
/// [`connect_database_with_timeout`].
pub async fn connect_existing_database(database_url: &str, timeout: Duration) -> Result<Arc<dyn DatabaseTier>> {
    if let Some(path) = sqlite::missing_file(database_url) {
        return Err(Error::NoDatabase(path));
    }
    connect(database_url, timeout, false).await
}

async fn connect(database_url: &str, timeout: Duration, create: bool) -> Result<Arc<dyn DatabaseTier>> {
    let scheme = database_url.split(':').next().unwrap_or("");
    let database: Arc<dyn DatabaseTier> = match scheme {
        "sqlite" => Arc::new(sqlite::SqliteDatabase::connect_with(database_url, timeout, create).await?),
        "postgres" | "postgresql" => {
            Arc::new(postgres::PostgresDatabase::connect_with_timeout(database_url, timeout).await?)
        }
        other => return Err(Error::UnsupportedUrl(other.to_owned())),
    };
    Ok(Arc::new(timed::TimedDatabase::new(database, timeout)))
}
