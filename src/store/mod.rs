//! The two tiers and the store that composes them.
//!
//! [`DatabaseTier`] is the durable tier (SQLite, PostgreSQL): it owns
//! versions, creates without overwriting and refuses stale writes.
//! [`CacheTier`] is the fast tier (Redis, in-process) that sits in front of
//! it. [`Store`] is what sessions and admin operations talk to: it decides
//! which tier a call touches and in what order (database first, then cache),
//! and counts the round trips it makes so tests and benchmarks can check the
//! cost of each path.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::record::{self, Record};

mod migrations;
pub mod postgres;
pub mod sqlite;

/// Result of a versioned update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Written; the stored version is now the record's.
    Updated,
    /// The stored version was not the expected one: someone else saved first.
    Conflict,
    /// No such session any more (deleted, purged, revoked).
    Missing,
}

/// Result of moving a session to a new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old id is gone and the new one holds the record.
    Rotated,
    /// The old id's version was not the expected one; nothing changed.
    Conflict,
    /// The old id no longer exists; nothing changed (and nothing was created).
    Missing,
    /// The new id is taken; nothing changed.
    IdTaken,
}

/// Which sessions a listing or count covers, by expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    /// Every session.
    #[default]
    All,
    /// Sessions whose expiry is in the future.
    Active,
    /// Sessions whose expiry has passed (not purged yet).
    Expired,
}

/// Selects sessions for [`DatabaseTier::scan`] and [`DatabaseTier::count`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// By expiry.
    pub state: StateFilter,
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Only sessions whose data has this top-level key.
    pub key: Option<String>,
}

/// What one purge batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PurgeBatch {
    /// Ids deleted by this batch (so the caller can drop them from the cache).
    pub deleted: Vec<SessionId>,
    /// Where the next batch starts (an opaque cursor); `None` once the whole
    /// table was walked.
    pub next: Option<String>,
}

/// The durable tier. Implementations keep every operation a single short
/// statement or transaction, so no call holds a lock across a round trip to
/// the application.
#[async_trait]
pub trait DatabaseTier: Send + Sync + fmt::Debug {
    /// `sqlite`, `postgres`: for messages and metrics.
    fn backend(&self) -> &'static str;

    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<()>;

    /// Inserts the record unless its id exists. Returns false (and changes
    /// nothing) when the id is taken.
    async fn insert_if_absent(&self, record: &Record) -> Result<bool>;

    /// The stored record, expired or not.
    async fn load(&self, id: &SessionId) -> Result<Option<Record>>;

    /// Writes `record` (whose `version` is the new version) if the stored
    /// version is `expected_version`.
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome>;

    /// Writes `record` whatever is stored, inserting it if absent (import
    /// with `--replace`, admin edits).
    async fn upsert(&self, record: &Record) -> Result<()>;

    /// Atomically deletes `old` (if its version is `expected_version`) and
    /// inserts `record` under its new id.
    async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome>;

    /// Deletes one session. Returns whether it existed.
    async fn delete(&self, id: &SessionId) -> Result<bool>;

    /// Deletes every session of a user; returns their ids.
    async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionId>>;

    /// Up to `limit` sessions matching `filter`, in id order, after the
    /// given id (keyset pagination: constant memory over any table size).
    async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionId>,
        limit: u32,
    ) -> Result<Vec<Record>>;

    /// How many sessions match `filter`.
    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64>;

    /// Deletes the sessions expired at `now` among the next `window` ids
    /// after `after`. The expiry is re-checked inside the DELETE, so a
    /// session refreshed meanwhile is never deleted.
    async fn purge_expired_batch(&self, now: DateTime<Utc>, after: Option<&str>, window: u32) -> Result<PurgeBatch>;
}

/// The fast tier. Entries expire with their session, so it needs no purge.
/// Errors here are absorbed by [`Store`] (the database still answers).
#[async_trait]
pub trait CacheTier: Send + Sync + fmt::Debug {
    /// `redis`, `memory`: for messages and metrics.
    fn backend(&self) -> &'static str;
    /// The cached record, if any.
    async fn get(&self, id: &SessionId) -> Result<Option<Record>>;
    /// Stores the record until its `expires_at`.
    async fn set(&self, record: &Record) -> Result<()>;
    /// Removes the entry (absent is fine).
    async fn delete(&self, id: &SessionId) -> Result<()>;
}

/// Round trips made by a [`Store`], per tier, since it was built.
#[derive(Debug, Default)]
pub struct OpCounts {
    database: AtomicU64,
    cache: AtomicU64,
    cache_errors: AtomicU64,
}

/// A snapshot of [`OpCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpSnapshot {
    /// Database round trips.
    pub database: u64,
    /// Cache round trips.
    pub cache: u64,
    /// Cache calls that failed and were bypassed.
    pub cache_errors: u64,
}

impl std::ops::Sub for OpSnapshot {
    type Output = OpSnapshot;
    fn sub(self, earlier: OpSnapshot) -> OpSnapshot {
        OpSnapshot {
            database: self.database - earlier.database,
            cache: self.cache - earlier.cache,
            cache_errors: self.cache_errors - earlier.cache_errors,
        }
    }
}

/// The tiered store: an optional cache in front of an optional database
/// (at least one of them). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    database: Option<Arc<dyn DatabaseTier>>,
    ops: OpCounts,
}

impl Store {
    /// A store over a database tier alone.
    pub fn new(database: Arc<dyn DatabaseTier>) -> Store {
        Store { inner: Arc::new(StoreInner { database: Some(database), ops: OpCounts::default() }) }
    }

    /// Connects to the database a URL names (`sqlite://PATH`, `sqlite::memory:`,
    /// `postgres://…`) and applies the schema.
    pub async fn connect(database_url: &str) -> Result<Store> {
        let database = connect_database(database_url).await?;
        database.migrate().await?;
        Ok(Store::new(database))
    }

    /// The database tier, if there is one.
    pub fn database(&self) -> Option<&Arc<dyn DatabaseTier>> {
        self.inner.database.as_ref()
    }

    /// The database tier, or a configuration error for operations that need
    /// one.
    pub fn require_database(&self) -> Result<&Arc<dyn DatabaseTier>> {
        self.database().ok_or_else(|| Error::Config("this operation needs a database tier".into()))
    }

    /// Round trips made so far.
    pub fn ops(&self) -> OpSnapshot {
        let ops = &self.inner.ops;
        OpSnapshot {
            database: ops.database.load(Ordering::Relaxed),
            cache: ops.cache.load(Ordering::Relaxed),
            cache_errors: ops.cache_errors.load(Ordering::Relaxed),
        }
    }

    fn db(&self) -> Result<&Arc<dyn DatabaseTier>> {
        let db = self.require_database()?;
        self.inner.ops.database.fetch_add(1, Ordering::Relaxed);
        Ok(db)
    }

    /// A live (unexpired) session.
    pub async fn load(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Option<Record>> {
        let record = self.db()?.load(id).await?;
        Ok(record.filter(|r| !r.is_expired_at(now)))
    }

    /// Creates a session unless its id exists; false when taken.
    pub async fn create(&self, record: &Record) -> Result<bool> {
        self.db()?.insert_if_absent(record).await
    }

    /// Versioned update of an existing session.
    pub async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        self.db()?.update(record, expected_version).await
    }

    /// A "quick" write: the cache tier only when there is one. Without a
    /// cache it is an ordinary versioned database update, since there is
    /// nowhere cheaper to put it.
    pub async fn write_quick(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        self.update(record, expected_version).await
    }

    /// Moves a session to a new id atomically.
    pub async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        self.db()?.rotate(old, expected_version, record).await
    }

    /// Deletes a session from every tier. Returns whether it existed.
    pub async fn delete(&self, id: &SessionId) -> Result<bool> {
        self.db()?.delete(id).await
    }

    /// Deletes every session of a user from every tier; returns their ids.
    pub async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionId>> {
        self.db()?.delete_by_user(user_id).await
    }

    /// One purge batch; see [`DatabaseTier::purge_expired_batch`].
    pub async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
    ) -> Result<PurgeBatch> {
        self.db()?.purge_expired_batch(now, after, window).await
    }
}

/// Opens the database tier a URL names, without migrating.
pub async fn connect_database(database_url: &str) -> Result<Arc<dyn DatabaseTier>> {
    let scheme = database_url.split(':').next().unwrap_or("");
    match scheme {
        "sqlite" => Ok(Arc::new(sqlite::SqliteDatabase::connect(database_url).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::PostgresDatabase::connect(database_url).await?)),
        other => Err(Error::UnsupportedUrl(other.to_owned())),
    }
}

/// A database row in the shape both SQL backends produce, before checks.
pub(crate) struct RawRow {
    pub id: String,
    pub data: String,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub version: i64,
}

impl RawRow {
    /// Validates a row into a record: a bad id or data is reported as a
    /// corrupt session, never a panic.
    pub(crate) fn into_record(self) -> Result<Record> {
        let id =
            SessionId::parse(&self.id).map_err(|e| Error::Corrupt { id: self.id.clone(), reason: e.to_string() })?;
        let data = record::decode_data(&self.id, &self.data)?;
        Ok(Record {
            id,
            user_id: self.user_id,
            data,
            created_at: record::truncate_millis(self.created_at),
            updated_at: record::truncate_millis(self.updated_at),
            expires_at: record::truncate_millis(self.expires_at),
            version: self.version,
        })
    }
}

/// Parses ids returned by a DELETE … RETURNING, skipping any that are not
/// valid ids (they cannot be in the cache either).
pub(crate) fn parse_ids(ids: Vec<String>) -> Vec<SessionId> {
    ids.into_iter().filter_map(|id| SessionId::parse(&id).ok()).collect()
}
