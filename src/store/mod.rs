//! The two tiers and the store that composes them.
//!
//! [`DatabaseTier`] is the durable tier (SQLite, PostgreSQL): it owns
//! versions, creates without overwriting and refuses stale writes.
//! [`CacheTier`] is the fast tier (Redis, in-process) that sits in front of
//! it. [`Store`] is what sessions and admin operations talk to: it decides
//! which tier a call touches and in what order (database first, then cache),
//! and counts the round trips it makes so tests and benchmarks can check the
//! cost of each path.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::record::{self, Record};

mod coalesce;
pub mod memory;
mod migrations;
mod patch;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod stats;
mod timed;

pub use migrations::{SchemaStatus, SchemaStep};
pub use patch::{Patch, PatchOutcome};
pub use stats::{DatabaseStats, StatsOptions, StatsRow, StatsSample};
pub use timed::DEFAULT_DATABASE_TIMEOUT;

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

/// Where a [`DatabaseTier::scan`] page starts: after this record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor {
    /// The last record's expiry.
    pub expires_at: DateTime<Utc>,
    /// The last record's id.
    pub id: SessionId,
}

impl ScanCursor {
    /// The cursor after this record.
    pub fn after(record: &Record) -> ScanCursor {
        ScanCursor { expires_at: record.expires_at, id: record.id.clone() }
    }
}

/// What one purge batch did.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeBatch {
    /// Ids deleted by this batch, when asked for (to drop them from a cache).
    pub deleted: Vec<SessionId>,
    /// How many rows this batch deleted.
    pub deleted_count: u64,
    /// Where the next batch starts (an opaque cursor); `None` once the whole
    /// table was walked.
    pub next: Option<String>,
    /// Share of the table walked so far, 0 to 1 (an estimate, for progress).
    pub progress: f64,
    /// How long this batch held the write lock (SQLite: its `BEGIN
    /// IMMEDIATE` transaction; PostgreSQL: its DELETE, row locks only).
    pub write_lock: Duration,
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

    /// How the schema compares with the migrations this build carries.
    /// Reads only, so a read-only role can ask.
    async fn schema_status(&self) -> Result<SchemaStatus>;

    /// The cache tier the apps recorded in front of this database, `None`
    /// when no app has recorded one.
    async fn recorded_cache(&self) -> Result<Option<AppCache>>;

    /// Records the cache tier an app opened in front of this database
    /// (replacing what another recorded: the last app to start wins).
    async fn record_cache(&self, cache: &AppCache) -> Result<()>;

    /// Inserts the record unless its id exists. Returns false (and changes
    /// nothing) when the id is taken.
    async fn insert_if_absent(&self, record: &Record) -> Result<bool>;

    /// The stored record, expired or not.
    async fn load(&self, id: &SessionId) -> Result<Option<Record>>;

    /// Writes `record` (whose `version` is the new version) if the stored
    /// version is `expected_version`.
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome>;

    /// Applies key-level changes atomically to the stored session and bumps
    /// its version; returns the new version, or `None` when the session is
    /// gone or expired (a patch never revives one). Concurrent patches of one
    /// session queue on the row, so none loses another's keys. Only the
    /// version comes back: sending the whole record back on every write
    /// cost PostgreSQL a third of the write.
    async fn patch(&self, id: &SessionId, patch: &Patch) -> Result<Option<i64>>;

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

    /// Deletes every session of a user but `keep` ("log out my other
    /// devices"), in one statement: a session the user creates meanwhile
    /// is either deleted with the others or kept, never half. Returns the
    /// ids deleted.
    async fn delete_by_user_except(&self, user_id: &str, keep: &SessionId) -> Result<Vec<SessionId>>;

    /// The user's live sessions, most recently written first (at most
    /// `limit`), without their data: what an "active sessions" page lists.
    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<SessionSummary>>;

    /// Deletes the user's sessions beyond `keep` and the `newest` others
    /// most recently written (`updated_at`, then id): the per-user session
    /// limit. Returns the ids deleted.
    async fn delete_user_sessions_beyond(&self, user_id: &str, keep: &SessionId, newest: u32)
    -> Result<Vec<SessionId>>;

    /// Up to `limit` sessions matching `filter`, ordered by expiry then id,
    /// after the cursor (keyset pagination: constant memory over any table
    /// size; pass the last record of a page to get the next).
    async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Record>>;

    /// Like [`DatabaseTier::scan`], in id order after `after`: a walk of the
    /// primary key, linear in the table (export), where the expiry order
    /// sorts the matching rows on every page.
    async fn scan_by_id(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionId>,
        limit: u32,
    ) -> Result<Vec<Record>>;

    /// Starts an import: every batch written through the returned writer
    /// lands in one transaction, made durable by
    /// [`ImportWriter::commit`]; dropped uncommitted (an error, a bad line
    /// further on, a killed process), nothing of it stays. On SQLite the
    /// transaction holds the write lock until it ends.
    async fn begin_import(&self) -> Result<Box<dyn ImportWriter>>;

    /// Sets the expiry of these sessions to `now` (bumping their version);
    /// returns the ids that existed.
    async fn expire(&self, ids: &[SessionId], now: DateTime<Utc>) -> Result<Vec<SessionId>>;

    /// Expires every live session of a user now; returns their ids.
    async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionId>>;

    /// Which of these ids exist.
    async fn existing(&self, ids: &[SessionId]) -> Result<Vec<SessionId>>;

    /// Up to `limit` rows' sizes, expiries and whether they have a user, in
    /// id order after `after` (`None` to start): what
    /// [`crate::admin::Admin::stats`] samples or walks (an index range, not
    /// a scan of the table).
    async fn stats_rows(&self, after: Option<&str>, limit: u32) -> Result<Vec<StatsRow>>;

    /// How many sessions have a user id (counted on the user index).
    async fn count_with_user(&self) -> Result<u64>;

    /// Tries to become the one replica that purges; `None` when another
    /// holds the lock. PostgreSQL uses a session advisory lock, released
    /// with the guard or when the connection ends (a crashed replica cannot
    /// keep it). SQLite lives on one host, where concurrent purges only
    /// queue behind each other: it always grants.
    async fn try_purge_lock(&self) -> Result<Option<Box<dyn PurgeLock>>>;

    /// Claims the purge scheduled at `tick` for this replica: true for the
    /// first claimant among all the replicas sharing the database (and for
    /// it again, should it retry a claim whose answer it lost), false for
    /// every other one, however long after. Replicas compute the same tick
    /// from the schedule, so clock skew between them does not matter.
    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool>;

    /// How many sessions match `filter`.
    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64>;

    /// Deletes the sessions expired at `now` among the next ~`window` rows
    /// after the cursor `after` (`None` to start). The table is walked in
    /// storage order (SQLite: id windows of the clustered primary key;
    /// PostgreSQL: ranges of heap blocks), so no index on `expires_at` is
    /// needed and each batch holds the write lock briefly. The expiry is
    /// re-checked inside the DELETE, so a session refreshed meanwhile is
    /// never deleted.
    ///
    /// The deleted ids are returned only when `return_ids` is set (to drop
    /// them from a cache); otherwise just their count.
    async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
        return_ids: bool,
    ) -> Result<PurgeBatch>;
}

/// The cache tier the apps put in front of a database, as recorded in it:
/// its kind and key prefix, never an address or credentials. `sessionctl`
/// reads it so that a command changing sessions reaches the cache the apps
/// serve from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppCache {
    /// No cache: the apps read the database on every request.
    None,
    /// An in-process cache in each app: entries live at most its staleness
    /// bound, and no other process can reach them.
    Memory {
        /// Longest an entry is served without reading the database.
        staleness: Duration,
    },
    /// Redis, with the sessions under this key prefix.
    Redis {
        /// The key prefix.
        prefix: String,
    },
    /// A kind this build does not know (recorded by a newer build).
    Unknown {
        /// The recorded kind.
        kind: String,
    },
}

impl AppCache {
    /// `(kind, key prefix)` as stored (for memory, the staleness in
    /// milliseconds stands in the prefix column).
    pub(crate) fn to_columns(&self) -> (&str, Option<String>) {
        match self {
            AppCache::None => ("none", None),
            AppCache::Memory { staleness } => ("memory", Some(staleness.as_millis().to_string())),
            AppCache::Redis { prefix } => ("redis", Some(prefix.clone())),
            AppCache::Unknown { kind } => (kind, None),
        }
    }

    /// The inverse of [`AppCache::to_columns`].
    pub(crate) fn from_columns(kind: &str, prefix: Option<String>) -> AppCache {
        match kind {
            "none" => AppCache::None,
            "memory" => {
                AppCache::Memory { staleness: Duration::from_millis(prefix.and_then(|p| p.parse().ok()).unwrap_or(0)) }
            }
            "redis" => AppCache::Redis { prefix: prefix.unwrap_or_default() },
            other => AppCache::Unknown { kind: other.to_owned() },
        }
    }
}

/// A session without its data: one line of an "active sessions" page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionSummary {
    /// The session id.
    pub id: SessionId,
    /// When it was created (the login, for a session given a user then).
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Most sessions [`Store::user_sessions`] lists.
pub const MAX_LISTED_USER_SESSIONS: u32 = 1000;

/// An import in progress: one transaction (see
/// [`DatabaseTier::begin_import`]).
#[async_trait]
pub trait ImportWriter: Send {
    /// Writes a batch of records whose ids are distinct: new ids are
    /// inserted; existing ones overwritten when `replace`, else kept.
    async fn write(&mut self, records: &[Record], replace: bool) -> Result<ImportCounts>;

    /// Commits everything written.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// What an import batch (or a whole import) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportCounts {
    /// New sessions written.
    pub inserted: u64,
    /// Existing sessions overwritten (`replace`).
    pub replaced: u64,
    /// Existing sessions left alone (no `replace`).
    pub kept: u64,
}

impl ImportCounts {
    /// The counts of a batch of `written` records of which `existing`
    /// were already stored.
    pub(crate) fn of_batch(written: usize, existing: usize, replace: bool) -> ImportCounts {
        let (written, existing) = (written as u64, existing as u64);
        ImportCounts {
            inserted: written - existing,
            replaced: if replace { existing } else { 0 },
            kept: if replace { 0 } else { existing },
        }
    }
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, other: ImportCounts) {
        self.inserted += other.inserted;
        self.replaced += other.replaced;
        self.kept += other.kept;
    }
}

/// Leadership of the purge, held until released.
#[async_trait]
pub trait PurgeLock: Send + fmt::Debug {
    /// Gives the lock up.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// A lock that is always granted (one host).
#[derive(Debug)]
pub(crate) struct LocalPurgeLock;

#[async_trait]
impl PurgeLock for LocalPurgeLock {
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// What the cache holds for an id.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// The cached record.
    Hit(Record),
    /// The cached record, whose listed keys were changed by quick writes
    /// and are not in the database yet (the next normal save writes them).
    Quick(Record, Vec<String>),
    /// Nothing cached: ask the database.
    Miss,
    /// Deleted recently (a tombstone): the session is gone, do not refill.
    Deleted,
    /// Moved to a new id recently (a tombstone): the session lives on under
    /// an id this request must not learn; do not refill, and do not start a
    /// new session in its place.
    Moved,
}

/// Why a tombstone was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tombstone {
    /// The session was deleted (logout, revoke, purge, expiry).
    Deleted,
    /// The session was moved to a new id (rotation at login).
    Moved,
}

/// The fast tier. Entries expire with their session, so it needs no purge.
///
/// In front of a database, errors here are absorbed by [`Store`] (the
/// database still answers). In cache-only mode the cache is authoritative
/// and the compare-and-set operations at the end are used instead.
#[async_trait]
pub trait CacheTier: Send + Sync + fmt::Debug {
    /// `redis`, `memory`: for messages and metrics.
    fn backend(&self) -> &'static str;
    /// What is cached for the id.
    async fn get(&self, id: &SessionId) -> Result<CacheLookup>;
    /// Refill after a database read: stores only into an empty slot, so it
    /// never replaces a newer write or a tombstone.
    async fn fill(&self, record: &Record) -> Result<()>;
    /// After a database write (or as a quick write): stores unless a newer
    /// version or a tombstone is cached. Returns false when refused.
    async fn put(&self, record: &Record) -> Result<bool>;
    /// Drops entries (possibly stale ones; absent is fine).
    async fn evict(&self, ids: &[SessionId]) -> Result<()>;
    /// Marks the id deleted (or moved) for `ttl`, so an in-flight refill
    /// cannot bring the session back.
    async fn tombstone(&self, id: &SessionId, ttl: Duration, reason: Tombstone) -> Result<()>;
    /// Applies key-level changes atomically to a live cached entry; with
    /// `bump` the version moves on (cache-only mode), without it the entry
    /// keeps the database's version and the changed keys are marked as
    /// quick (not in the database yet). Returns the entry's version after
    /// the change, or `None` when no live entry is cached (nothing is
    /// created). Only the version comes back, not the whole entry: a
    /// session hammered by many writers would otherwise send its growing
    /// record back on every write.
    async fn patch(&self, id: &SessionId, patch: &Patch, bump: bool) -> Result<Option<i64>>;
    /// After a database patch brought the session `id` to `version`: when
    /// the cached entry is the version just before, applies `patch` to it
    /// (keeping what quick writes put there, unmarking the keys the patch
    /// persisted) and returns true. An older entry is evicted (the next
    /// read refills it); a newer one, a tombstone or none is left alone.
    async fn put_patched(&self, id: &SessionId, patch: &Patch, version: i64) -> Result<bool>;
    /// Cache-only mode: insert unless the id exists.
    async fn create(&self, record: &Record) -> Result<bool>;
    /// Cache-only mode: write if the cached version is `expected_version`.
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome>;
    /// Cache-only mode: move to a new id if the version matches.
    async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome>;
    /// Cache-only mode: delete; returns whether it existed.
    async fn delete(&self, id: &SessionId) -> Result<bool>;
    /// One page of the ids of live cached sessions (tombstones excluded),
    /// for statistics: start at cursor 0; a returned cursor of 0 means done.
    async fn scan_ids(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionId>)>;
}

/// Round trips made by a [`Store`], per tier, since it was built.
#[derive(Debug, Default)]
struct OpCounts {
    database: AtomicU64,
    cache: AtomicU64,
    cache_errors: AtomicU64,
}

/// A snapshot of a [`Store`]'s round-trip counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpSnapshot {
    /// Database round trips.
    pub database: u64,
    /// Cache round trips.
    pub cache: u64,
    /// Cache calls that failed or timed out and were bypassed.
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

/// How the tiered store treats its cache.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Longest a cache call may take before it is abandoned and the
    /// database answers instead (default 250 ms). A cache-only store has no
    /// database to fall back on: its cache calls get `database_timeout`.
    pub cache_timeout: Duration,
    /// How long a deleted session's tombstone stays in the cache, blocking
    /// refills that were already under way (default 60 s).
    pub tombstone_ttl: Duration,
    /// Longest one database call may take (connect, pool acquire,
    /// statement) before it fails with [`Error::Timeout`] (default 15 s).
    pub database_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_timeout: Duration::from_millis(250),
            tombstone_ttl: Duration::from_secs(60),
            database_timeout: DEFAULT_DATABASE_TIMEOUT,
        }
    }
}

impl StoreOptions {
    /// The bound on one cache call: short in front of a database (which
    /// answers instead), the database's own bound when the cache is the
    /// only tier.
    pub fn cache_timeout_for(&self, has_database: bool) -> Duration {
        if has_database { self.cache_timeout } else { self.database_timeout }
    }

    /// Sets the database timeout.
    pub fn with_database_timeout(mut self, timeout: Duration) -> StoreOptions {
        self.database_timeout = timeout;
        self
    }

    /// Sets the cache timeout.
    pub fn with_cache_timeout(mut self, timeout: Duration) -> StoreOptions {
        self.cache_timeout = timeout;
        self
    }
}

/// What [`Store::lookup`] found for an id.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// The live session, and the keys quick writes changed in the cache
    /// only (the next normal save persists them).
    Found(Record, Vec<String>),
    /// No live session: never existed, deleted, expired.
    Missing,
    /// Moved to a new id moments ago by another request (a login racing
    /// itself): the caller must neither learn the new id nor start a new
    /// session in its place.
    Moved,
}

/// Most ids remembered as "cache entry may be stale" after a failed cache
/// write and a failed eviction.
const MAX_SUSPECTS: usize = 100_000;

/// The tiered store: an optional cache in front of an optional database
/// (at least one of them). Cheap to clone.
///
/// * load: cache first; on a miss the database, then a refill of the cache;
/// * save: database first, then the cache; a quick change writes the cache
///   only; without a database everything lives in the cache;
/// * delete: both tiers; the cache entry is replaced by a tombstone even when
///   the database delete fails;
/// * a cache that errors or times out is bypassed (logged and counted): reads
///   fall back to the database and writes still persist there. A cache write
///   that fails is followed by an eviction, and an id whose eviction failed
///   too is read from the database until its eviction succeeds.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<StoreInner>,
}

#[derive(Debug)]
struct StoreInner {
    database: Option<Arc<dyn DatabaseTier>>,
    cache: Option<Arc<dyn CacheTier>>,
    options: StoreOptions,
    ops: OpCounts,
    suspects: Mutex<HashSet<SessionId>>,
    /// Ids this process moved to a new id recently, with when: the
    /// rotation marker for stores without a shared cache to hold it.
    moved: Mutex<HashMap<SessionId, Instant>>,
    /// Concurrent patches of one session, combined (see `coalesce.rs`).
    patches: coalesce::PatchQueues,
}

/// Most ids remembered as recently moved in one process.
const MAX_MOVED: usize = 100_000;

impl Store {
    /// A store over a database tier alone.
    pub fn new(database: Arc<dyn DatabaseTier>) -> Store {
        Store::build(Some(database), None, StoreOptions::default())
    }

    /// A cache in front of a database.
    pub fn tiered(database: Arc<dyn DatabaseTier>, cache: Arc<dyn CacheTier>, options: StoreOptions) -> Store {
        Store::build(Some(database), Some(cache), options)
    }

    /// A database with `options` (its timeouts, chiefly), and a cache in
    /// front of it when given.
    pub fn with_options(
        database: Arc<dyn DatabaseTier>,
        cache: Option<Arc<dyn CacheTier>>,
        options: StoreOptions,
    ) -> Store {
        Store::build(Some(database), cache, options)
    }

    /// Cache-only mode (`no_database`): every session lives in the cache
    /// alone and is lost with it (eviction, restart of an in-process cache).
    pub fn cache_only(cache: Arc<dyn CacheTier>, options: StoreOptions) -> Store {
        Store::build(None, Some(cache), options)
    }

    fn build(
        database: Option<Arc<dyn DatabaseTier>>,
        cache: Option<Arc<dyn CacheTier>>,
        options: StoreOptions,
    ) -> Store {
        let database = database.map(|database| {
            Arc::new(timed::TimedDatabase::new(database, options.database_timeout)) as Arc<dyn DatabaseTier>
        });
        Store {
            inner: Arc::new(StoreInner {
                database,
                cache,
                options,
                ops: OpCounts::default(),
                suspects: Mutex::default(),
                moved: Mutex::default(),
                patches: coalesce::PatchQueues::default(),
            }),
        }
    }

    /// Connects to the database a URL names (`sqlite://PATH`, `sqlite::memory:`,
    /// `postgres://…`) and applies the schema.
    pub async fn connect(database_url: &str) -> Result<Store> {
        Ok(Store::new(open_database(database_url, DEFAULT_DATABASE_TIMEOUT, OpenAs::App).await?))
    }

    /// The database tier, if there is one.
    pub fn database(&self) -> Option<&Arc<dyn DatabaseTier>> {
        self.inner.database.as_ref()
    }

    /// The cache tier, if there is one.
    pub fn cache(&self) -> Option<&Arc<dyn CacheTier>> {
        self.inner.cache.as_ref()
    }

    /// Whether quick writes can go to the cache alone (a cache in front of
    /// a database).
    pub fn has_quick_writes(&self) -> bool {
        self.inner.cache.is_some() && self.inner.database.is_some()
    }

    /// The database tier, or a configuration error for operations that need
    /// one.
    pub fn require_database(&self) -> Result<&Arc<dyn DatabaseTier>> {
        self.database().ok_or_else(|| Error::Config("this operation needs a database tier".into()))
    }

    /// Checks that the database answers (one primary-key lookup, within
    /// the database timeout).
    pub async fn ping(&self) -> Result<()> {
        self.db()?.load(&SessionId::generate()).await.map(|_| ())
    }

    /// Claims the purge scheduled at `tick` (see
    /// [`DatabaseTier::try_claim_tick`]).
    pub async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        self.db()?.try_claim_tick(tick, claimant).await
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

    /// Runs one cache call with the timeout, counting it; failures are
    /// logged and counted, and returned for the caller to bypass.
    async fn cache_call<T>(
        &self,
        cache: &Arc<dyn CacheTier>,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.inner.ops.cache.fetch_add(1, Ordering::Relaxed);
        let timeout = self.inner.options.cache_timeout_for(self.database().is_some());
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(Error::Cache {
                backend: cache.backend(),
                operation,
                message: format!("no answer within {timeout:?}"),
            }),
        };
        if let Err(error) = &result {
            self.inner.ops.cache_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(backend = cache.backend(), operation, %error, "cache tier call failed");
        }
        result
    }

    fn suspects(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        self.inner.suspects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this id's cache entry may be stale; if so, tries once more to
    /// evict it.
    async fn is_suspect(&self, cache: &Arc<dyn CacheTier>, id: &SessionId) -> bool {
        if !self.suspects().contains(id) {
            return false;
        }
        if self.cache_call(cache, "evicting a stale session", cache.evict(std::slice::from_ref(id))).await.is_ok() {
            self.suspects().remove(id);
        }
        true
    }

    /// After a database write: put the record in the cache, or at least make
    /// sure no older copy of it stays there.
    async fn cache_after_write(&self, record: &Record) {
        let Some(cache) = self.cache() else { return };
        if self.cache_call(cache, "writing a session", cache.put(record)).await.is_ok() {
            return;
        }
        self.make_sure_evicted(cache, &record.id).await;
    }

    async fn make_sure_evicted(&self, cache: &Arc<dyn CacheTier>, id: &SessionId) {
        if self.cache_call(cache, "evicting a stale session", cache.evict(std::slice::from_ref(id))).await.is_err() {
            let mut suspects = self.suspects();
            if suspects.len() < MAX_SUSPECTS {
                suspects.insert(id.clone());
            } else {
                tracing::error!(
                    "too many cache entries could not be evicted; some may be served stale until they expire"
                );
            }
        }
    }

    /// A database write that failed may still have committed (a timeout, a
    /// lost reply): the cache entries it may have made stale go, so the
    /// next read asks the database.
    async fn after_unknown_outcome<T>(&self, outcome: Result<T>, ids: &[&SessionId]) -> Result<T> {
        if outcome.is_err()
            && let Some(cache) = self.cache()
        {
            for id in ids {
                self.make_sure_evicted(cache, id).await;
            }
        }
        outcome
    }

    /// After a database delete: a tombstone in the cache.
    async fn cache_after_delete(&self, id: &SessionId) {
        self.leave_tombstone(id, Tombstone::Deleted).await;
    }

    async fn leave_tombstone(&self, id: &SessionId, reason: Tombstone) {
        let Some(cache) = self.cache() else { return };
        let ttl = self.inner.options.tombstone_ttl;
        if self.cache_call(cache, "deleting a session", cache.tombstone(id, ttl, reason)).await.is_err() {
            self.make_sure_evicted(cache, id).await;
        }
    }

    /// After a database patch: the cache follows it, keeping quick writes
    /// when it held the version just before.
    async fn cache_after_patch(&self, id: &SessionId, patch: &Patch, version: i64) {
        let Some(cache) = self.cache() else { return };
        if self.cache_call(cache, "writing a session", cache.put_patched(id, patch, version)).await.is_ok() {
            return;
        }
        self.make_sure_evicted(cache, id).await;
    }

    fn remember_moved(&self, id: &SessionId) {
        let ttl = self.inner.options.tombstone_ttl;
        let mut moved = self.inner.moved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if moved.len() >= MAX_MOVED {
            moved.retain(|_, at| at.elapsed() < ttl);
        }
        if moved.len() < MAX_MOVED {
            moved.insert(id.clone(), Instant::now());
        }
    }

    /// After a rotation: the mark stays when the old id is gone (moved by
    /// this request or, `Missing`, by a concurrent one whose own mark this
    /// must not undo), and goes when the old id still holds the session (a
    /// mark is only read for ids the tiers no longer have, so this is tidy
    /// rather than needed).
    fn settle_moved(&self, id: &SessionId, outcome: &Result<RotateOutcome>) {
        match outcome {
            Ok(RotateOutcome::Rotated | RotateOutcome::Missing) => self.remember_moved(id),
            Ok(RotateOutcome::Conflict | RotateOutcome::IdTaken) | Err(_) => {
                self.inner.moved.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
            }
        }
    }

    fn was_moved(&self, id: &SessionId) -> bool {
        let moved = self.inner.moved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        !moved.is_empty() && moved.get(id).is_some_and(|at| at.elapsed() < self.inner.options.tombstone_ttl)
    }

    /// A live (unexpired) session: from the cache when it has it, else from
    /// the database (refilling the cache).
    pub async fn load(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Option<Record>> {
        Ok(match self.lookup(id, now).await? {
            Lookup::Found(record, _) => Some(record),
            Lookup::Missing | Lookup::Moved => None,
        })
    }

    /// Like [`load`](Self::load), telling a session that was just moved to
    /// a new id apart from one that does not exist.
    pub async fn lookup(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Lookup> {
        // An id this process is moving (or just moved) reads as moved, not
        // missing: the mark is made before the database commits the move.
        let live = |record: Option<Record>, quick: Vec<String>| match record.filter(|r| !r.is_expired_at(now)) {
            Some(record) => Lookup::Found(record, quick),
            None if self.was_moved(id) => Lookup::Moved,
            None => Lookup::Missing,
        };
        if let Some(cache) = self.cache()
            && !self.is_suspect(cache, id).await
        {
            match self.cache_call(cache, "reading a session", cache.get(id)).await {
                Ok(CacheLookup::Hit(record)) => return Ok(live(Some(record), Vec::new())),
                Ok(CacheLookup::Quick(record, quick)) => return Ok(live(Some(record), quick)),
                Ok(CacheLookup::Deleted) => return Ok(live(None, Vec::new())),
                Ok(CacheLookup::Moved) => return Ok(Lookup::Moved),
                Ok(CacheLookup::Miss) if self.database().is_none() => return Ok(Lookup::Missing),
                Ok(CacheLookup::Miss) => {}
                Err(error) if self.database().is_none() => return Err(error),
                Err(_) => {}
            }
            let record = self.db()?.load(id).await?.filter(|r| !r.is_expired_at(now));
            if let Some(record) = &record {
                let _ = self.cache_call(cache, "refilling a session", cache.fill(record)).await;
            }
            return Ok(live(record, Vec::new()));
        }
        Ok(live(self.db()?.load(id).await?, Vec::new()))
    }

    /// The authoritative copy, bypassing the cache (after a version
    /// conflict, the cached copy is the one known to be old). Refreshes the
    /// cache with what it finds.
    pub async fn load_fresh(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Option<Record>> {
        let Some(database) = self.database() else {
            return self.load(id, now).await;
        };
        self.inner.ops.database.fetch_add(1, Ordering::Relaxed);
        let record = database.load(id).await?.filter(|r| !r.is_expired_at(now));
        if let Some(record) = &record {
            self.cache_after_write(record).await;
        }
        Ok(record)
    }

    /// Creates a session unless its id exists; false when taken.
    pub async fn create(&self, record: &Record) -> Result<bool> {
        match (self.database(), self.cache()) {
            (None, Some(cache)) => self.cache_call(cache, "creating a session", cache.create(record)).await,
            _ => {
                let created = self.db()?.insert_if_absent(record).await?;
                if created {
                    self.cache_after_write(record).await;
                }
                Ok(created)
            }
        }
    }

    /// Inserts a record unless its id exists, as a restore from backup
    /// does: the cache's entry for the id goes, a tombstone included, so the
    /// next read serves the restored session. ([`Store::create`] keeps a
    /// tombstone: it stops a request still holding a deleted session from
    /// bringing it back, which a deliberate restore is meant to do.)
    pub async fn restore(&self, record: &Record) -> Result<bool> {
        if self.database().is_none() {
            return self.create(record).await;
        }
        let created = self.db()?.insert_if_absent(record).await?;
        if created && let Some(cache) = self.cache() {
            self.make_sure_evicted(cache, &record.id).await;
        }
        Ok(created)
    }

    /// After an import committed: the cache's entries (tombstones included)
    /// for these ids go, so the next read serves what was imported.
    pub(crate) async fn evict_imported(&self, ids: &[SessionId]) {
        let Some(cache) = self.cache() else { return };
        if self.database().is_none() {
            return;
        }
        for chunk in ids.chunks(500) {
            if self.cache_call(cache, "evicting a stale session", cache.evict(chunk)).await.is_err() {
                for id in chunk {
                    self.make_sure_evicted(cache, id).await;
                }
            }
        }
    }

    /// Versioned update of an existing session: `record.version` is the new
    /// version, `expected_version` the one this request loaded.
    pub async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            return self.cache_call(cache, "saving a session", cache.update(record, expected_version)).await;
        }
        let outcome = self.db()?.update(record, expected_version).await;
        let outcome = self.after_unknown_outcome(outcome, &[&record.id]).await?;
        match outcome {
            UpdateOutcome::Updated => self.cache_after_write(record).await,
            UpdateOutcome::Missing => self.cache_after_delete(&record.id).await,
            UpdateOutcome::Conflict => {}
        }
        Ok(outcome)
    }

    /// Applies a request's key-level changes atomically where the session
    /// `base` (as this request loaded it) is stored (see [`Patch`]),
    /// database first, then the cache. Returns `base` with the patch applied
    /// (at `base`'s version: other requests' changes are not in it), or
    /// `Missing` when the session is gone.
    pub async fn patch(&self, base: &Record, patch: &Patch) -> Result<PatchOutcome> {
        let receiver = match self.inner.patches.enter(&base.id, patch) {
            coalesce::Turn::Wait(receiver) => receiver,
            coalesce::Turn::Write => {
                // Whatever happens to this request (even if it is dropped
                // mid-write), the patches queued behind it get written.
                let _queued = QueuedPatches { store: self, id: &base.id };
                let version = self.write_patch(&base.id, patch).await?;
                return patched(base, patch, version);
            }
        };
        // The combined write is bounded by the tiers' own timeouts; this
        // bound only matters if the task writing it died.
        let bound = self.inner.options.database_timeout.saturating_mul(2);
        let version = match tokio::time::timeout(bound, receiver).await {
            Ok(Ok(outcome)) => outcome?,
            Ok(Err(_)) => return Err(Error::Config("a combined write of this session was abandoned".into())),
            Err(_) => return Err(Error::Timeout { backend: "store", operation: "saving a session", after: bound }),
        };
        patched(base, patch, version)
    }

    /// One patch (or several, combined) to the database, then the cache, or
    /// to a cache-only store's cache. Returns the new version (`None`: the
    /// session is gone).
    async fn write_patch(&self, id: &SessionId, patch: &Patch) -> Result<Option<i64>> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            return self.cache_call(cache, "saving a session", cache.patch(id, patch, true)).await;
        }
        let outcome = self.db()?.patch(id, patch).await;
        let version = self.after_unknown_outcome(outcome, &[id]).await?;
        match version {
            Some(version) => self.cache_after_patch(id, patch, version).await,
            None => self.cache_after_delete(id).await,
        }
        Ok(version)
    }

    /// Writes what was queued behind a write of `id`, batch after batch,
    /// until nothing more is.
    async fn drain_patches(self, id: SessionId, mut patch: Patch, mut senders: Vec<coalesce::Sender>) {
        // If this task dies (a panic, a runtime shutting down), the waiters
        // queued later are answered and the session freed for the next.
        let mut abandoned = AbandonedQueue { store: &self, id: &id, armed: true };
        loop {
            let outcome = self.write_patch(&id, &patch).await;
            coalesce::deliver(senders, &outcome);
            match self.inner.patches.next_batch(&id) {
                Some((next, next_senders)) => (patch, senders) = (next, next_senders),
                None => {
                    // The session is free again, and may already be another
                    // request's to write: leave its queue alone.
                    abandoned.armed = false;
                    return;
                }
            }
        }
    }

    /// A quick write: key-level changes applied to the cached entry alone,
    /// which keeps the version the database holds. `Missing` when the cache
    /// holds no live entry for the session or could not take the change:
    /// the caller then saves normally, so a quick change is never reported
    /// saved when it was dropped. A failed call leaves the entry alone: it
    /// made nothing stale, and evicting it would drop other requests' quick
    /// changes.
    pub async fn write_quick(&self, base: &Record, patch: &Patch) -> Result<PatchOutcome> {
        let Some(cache) = self.cache().filter(|_| self.database().is_some()) else {
            return Err(Error::Config("quick writes need a cache in front of a database".into()));
        };
        if self.is_suspect(cache, &base.id).await {
            // Its cache entry may be stale and is not read: save normally.
            return Ok(PatchOutcome::Missing);
        }
        match self.cache_call(cache, "writing a session", cache.patch(&base.id, patch, false)).await {
            Ok(version) => patched(base, patch, version),
            Err(_) => Ok(PatchOutcome::Missing),
        }
    }

    /// Moves a session to a new id atomically.
    pub async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            self.remember_moved(old);
            let outcome = self.cache_call(cache, "moving a session", cache.rotate(old, expected_version, record)).await;
            self.settle_moved(old, &outcome);
            return outcome;
        }
        // Marked before the move commits, so that a request reading the old
        // id between the commit and the tombstone sees it moved, not gone.
        self.remember_moved(old);
        let outcome = self.db()?.rotate(old, expected_version, record).await;
        self.settle_moved(old, &outcome);
        let outcome = self.after_unknown_outcome(outcome, &[old, &record.id]).await?;
        match outcome {
            RotateOutcome::Rotated => {
                self.leave_tombstone(old, Tombstone::Moved).await;
                self.cache_after_write(record).await;
            }
            RotateOutcome::Missing => self.cache_after_delete(old).await,
            RotateOutcome::Conflict | RotateOutcome::IdTaken => {}
        }
        Ok(outcome)
    }

    /// Deletes a session from every tier. Returns whether it existed. The
    /// cache entry goes even when the database delete fails.
    pub async fn delete(&self, id: &SessionId) -> Result<bool> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            return self.cache_call(cache, "deleting a session", cache.delete(id)).await;
        }
        let result = self.db()?.delete(id).await;
        self.cache_after_delete(id).await;
        result
    }

    /// Deletes every session of a user from every tier; returns their ids.
    pub async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionId>> {
        let ids = self.db()?.delete_by_user(user_id).await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// A user's live sessions, most recently written first, without their
    /// data (at most [`MAX_LISTED_USER_SESSIONS`]).
    pub async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionSummary>> {
        self.db()?.user_sessions(user_id, now, MAX_LISTED_USER_SESSIONS).await
    }

    /// Keeps at most `limit` sessions of a user, `keep` among them: the
    /// least recently written others go, in both tiers (see
    /// [`DatabaseTier::delete_user_sessions_beyond`]); returns their ids.
    pub async fn limit_user_sessions(&self, user_id: &str, keep: &SessionId, limit: u32) -> Result<Vec<SessionId>> {
        let ids = self.db()?.delete_user_sessions_beyond(user_id, keep, limit.saturating_sub(1)).await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// Deletes every session of a user but `keep`, in both tiers (see
    /// [`DatabaseTier::delete_by_user_except`]); returns their ids.
    pub async fn delete_by_user_except(&self, user_id: &str, keep: &SessionId) -> Result<Vec<SessionId>> {
        let ids = self.db()?.delete_by_user_except(user_id, keep).await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// Writes a record whatever is stored (admin edits, import with
    /// `--replace`); the cache entry is dropped so the next read fills it.
    pub async fn upsert(&self, record: &Record) -> Result<()> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            self.cache_call(cache, "writing a session", cache.evict(std::slice::from_ref(&record.id))).await?;
            self.cache_call(cache, "writing a session", cache.put(record)).await?;
            return Ok(());
        }
        self.db()?.upsert(record).await?;
        if let Some(cache) = self.cache() {
            self.make_sure_evicted(cache, &record.id).await;
        }
        Ok(())
    }

    /// Expires sessions now in the database and drops them from the cache;
    /// returns the ids that existed.
    pub async fn expire(&self, ids: &[SessionId], now: DateTime<Utc>) -> Result<Vec<SessionId>> {
        let expired = self.db()?.expire(ids, now).await?;
        for id in &expired {
            self.cache_after_delete(id).await;
        }
        Ok(expired)
    }

    /// Expires a user's live sessions now, in both tiers.
    pub async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionId>> {
        let expired = self.db()?.expire_by_user(user_id, now).await?;
        for id in &expired {
            self.cache_after_delete(id).await;
        }
        Ok(expired)
    }

    /// One purge batch (see [`DatabaseTier::purge_expired_batch`]); with a
    /// cache tier, the purged ids are also dropped from it. The ids are
    /// returned when there is a cache or `return_ids` is set.
    pub async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
        return_ids: bool,
    ) -> Result<PurgeBatch> {
        let return_ids = return_ids || self.cache().is_some();
        let batch = self.db()?.purge_expired_batch(now, after, window, return_ids).await?;
        if let Some(cache) = self.cache()
            && !batch.deleted.is_empty()
        {
            let _ = self.cache_call(cache, "evicting purged sessions", cache.evict(&batch.deleted)).await;
        }
        Ok(batch)
    }
}

/// Held by the request writing a session's patch: when it ends, the patches
/// queued meanwhile are written by a task of their own, so the writer's
/// response does not wait for them.
struct QueuedPatches<'a> {
    store: &'a Store,
    id: &'a SessionId,
}

impl Drop for QueuedPatches<'_> {
    fn drop(&mut self) {
        let Some((patch, senders)) = self.store.inner.patches.next_batch(self.id) else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.store.clone().drain_patches(self.id.clone(), patch, senders));
            }
            Err(_) => {
                let error = Err(Error::Config("no runtime left to write this session's changes".into()));
                coalesce::deliver(senders, &error);
                self.store.inner.patches.abandon(self.id);
            }
        }
    }
}

/// Frees a session's patch queue when the task draining it ends early.
struct AbandonedQueue<'a> {
    store: &'a Store,
    id: &'a SessionId,
    armed: bool,
}

impl Drop for AbandonedQueue<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.store.inner.patches.abandon(self.id);
        }
    }
}

/// `base` with `patch` applied, when the store reported a `version` (and
/// `Missing` when it did not). The record keeps `base`'s version: it lacks
/// what other requests wrote meanwhile, so a whole-session save later in the
/// same request must meet a version conflict and reload rather than write
/// this partial copy over theirs.
fn patched(base: &Record, patch: &Patch, version: Option<i64>) -> Result<PatchOutcome> {
    if version.is_none() {
        return Ok(PatchOutcome::Missing);
    }
    let mut record = base.clone();
    patch.apply(&mut record, false)?;
    Ok(PatchOutcome::Patched(record))
}

/// Where sessions live: what [`StoreConfig::open`] builds a [`Store`] from.
#[derive(Debug, Clone, Default)]
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

impl StoreConfig {
    /// Connects the configured tiers; see [`OpenAs`] for what that does to
    /// the database.
    pub async fn open(&self) -> Result<Store> {
        let database = match &self.database_url {
            Some(url) => Some(open_database(url, self.options.database_timeout, self.open_as).await?),
            None => None,
        };
        let cache: Option<Arc<dyn CacheTier>> = match (&self.redis_url, self.memory_cache) {
            (Some(url), _) => Some(Arc::new(redis::RedisCache::connect(
                url,
                self.redis_prefix.as_deref().unwrap_or(redis::DEFAULT_PREFIX),
                self.options.cache_timeout_for(database.is_some()),
            )?)),
            (None, Some(memory)) => {
                let staleness = database.is_some().then_some(memory.staleness);
                Some(Arc::new(memory::MemoryCache::new(memory.capacity, staleness)))
            }
            (None, None) => None,
        };
        if let (Some(database), OpenAs::App) = (&database, self.open_as) {
            let recorded = match (&self.redis_url, self.memory_cache) {
                (Some(_), _) => AppCache::Redis {
                    prefix: self.redis_prefix.clone().unwrap_or_else(|| redis::DEFAULT_PREFIX.to_owned()),
                },
                (None, Some(memory)) => AppCache::Memory { staleness: memory.staleness },
                (None, None) => AppCache::None,
            };
            // The app serves either way; what is lost is the admin tool's
            // refusal to change sessions behind the app's cache.
            if let Err(error) = database.record_cache(&recorded).await {
                tracing::warn!(%error, "cannot record the cache tier in the database; `sessionctl` will not know to reach it");
            }
        }
        match (database, cache) {
            (None, None) => Err(Error::Config("no tier configured: give a database URL, a cache, or both".into())),
            (database, cache) => Ok(Store::build(database, cache, self.options.clone())),
        }
    }
}

/// Opens the database a URL names as `open_as` says: an app's open creates
/// and migrates; an admin's requires the file and the schema as they are.
pub async fn open_database(database_url: &str, timeout: Duration, open_as: OpenAs) -> Result<Arc<dyn DatabaseTier>> {
    let database = match open_as {
        OpenAs::App => connect_database_with_timeout(database_url, timeout).await?,
        OpenAs::Admin => connect_existing_database(database_url, timeout).await?,
    };
    let status = database.schema_status().await?;
    match open_as {
        _ if status.is_current() => {}
        OpenAs::App => database.migrate().await?,
        OpenAs::Admin => return Err(status.behind_error()),
    }
    Ok(database)
}

/// Opens the database tier a URL names, without migrating.
pub async fn connect_database(database_url: &str) -> Result<Arc<dyn DatabaseTier>> {
    connect_database_with_timeout(database_url, DEFAULT_DATABASE_TIMEOUT).await
}

/// Like [`connect_database`]; `timeout` bounds connecting and every call
/// made through the returned tier.
pub async fn connect_database_with_timeout(database_url: &str, timeout: Duration) -> Result<Arc<dyn DatabaseTier>> {
    connect(database_url, timeout, true).await
}

/// Like [`connect_database_with_timeout`], but a SQLite file that does not
/// exist is an error ([`Error::NoDatabase`]) rather than created.
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
            version: record::check_version(&self.id, self.version)?,
        })
    }
}

/// Parses ids returned by a DELETE … RETURNING, skipping any that are not
/// valid ids (they cannot be in the cache either).
pub(crate) fn parse_ids(ids: Vec<String>) -> Vec<SessionId> {
    ids.into_iter().filter_map(|id| SessionId::parse(&id).ok()).collect()
}
