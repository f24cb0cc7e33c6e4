//! The tier traits: what a database ([`DatabaseTier`]) and a cache
//! ([`CacheTier`]) must do for [`Store`](super::Store), and the types they
//! exchange.
//!
//! Implementations need not bound their own calls: the store gives every
//! database call a deadline (`timed.rs`, [`Error::Timeout`](crate::Error::Timeout))
//! and every cache call its cache timeout, so a hung server is an error
//! within the timeout whatever the tier.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Patch, SchemaStatus, StatsRow};
use crate::error::{Error, Result};
use crate::id::{SessionId, SessionKey};
use crate::record::Record;

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
#[non_exhaustive]
pub enum StateFilter {
    /// Every session.
    #[default]
    All,
    /// Sessions whose expiry is in the future.
    Active,
    /// Sessions whose expiry has passed (not purged yet).
    Expired,
}

/// Selects sessions for [`DatabaseMaintenance::scan`] and [`DatabaseMaintenance::count`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Filter {
    /// By expiry.
    pub state: StateFilter,
    /// Only this user's sessions.
    pub user_id: Option<String>,
    /// Only sessions whose data has this top-level key.
    pub key: Option<String>,
}

impl Filter {
    /// Every session in `state`.
    pub fn state(state: StateFilter) -> Self {
        Filter { state, ..Filter::default() }
    }

    /// Only this user's sessions.
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Only sessions whose data has this top-level key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Where a [`DatabaseMaintenance::scan`] page starts: after this record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor {
    /// The last record's expiry.
    pub expires_at: DateTime<Utc>,
    /// The last record's id.
    pub id: SessionKey,
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
    pub deleted: Vec<SessionKey>,
    /// How many rows this batch deleted.
    pub deleted_count: u64,
    /// Where the next batch starts (an opaque cursor); `None` once the whole
    /// table was walked.
    pub next: Option<String>,
    /// Share of the table walked so far, 0 to 1 (an estimate, for progress).
    pub progress: f64,
    /// How long this batch held the write lock (SQLite: its DELETE, or a
    /// checkpoint that started the WAL over, whichever held it longer;
    /// PostgreSQL: its DELETE, row locks only).
    pub write_lock: Duration,
}

/// The request path of the durable tier: what serving sessions needs.
/// Implementations keep every operation a single short statement or
/// transaction, so no call holds a lock across a round trip to the
/// application.
#[async_trait]
pub trait DatabaseCore: Send + Sync + fmt::Debug {
    /// `sqlite`, `postgres`: for messages and metrics.
    fn backend(&self) -> &'static str;

    /// Creates or upgrades the schema.
    async fn migrate(&self) -> Result<()>;

    /// Moves up to `limit` sessions still stored under their id (written
    /// before ids were hashed, or since by an app of an older build; see
    /// [`SessionKey`]) to their key, in one transaction, and returns how
    /// many rows it looked at (fewer than `limit`: none is left). Driven by
    /// [`move_to_keys`](super::move_to_keys). A tier that never stored ids
    /// has nothing to move (the default).
    async fn move_to_keys_batch(&self, limit: u32) -> Result<u64> {
        let _ = limit;
        Ok(0)
    }

    /// Moves the one session stored under `id` (an older build wrote it,
    /// as a rolling deploy goes on) to its key; `false` when no row is
    /// under that id. A request whose cookie finds nothing under its key
    /// asks this before treating the session as gone.
    async fn move_id_to_key(&self, id: &SessionId) -> Result<bool> {
        let _ = id;
        Ok(false)
    }

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
    async fn load(&self, id: &SessionKey) -> Result<Option<Record>>;

    /// Writes `record` (whose `version` is the new version) if the stored
    /// version is `expected_version`.
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome>;

    /// Applies key-level changes atomically to the stored session and bumps
    /// its version; returns the new version, or `None` when the session is
    /// gone or expired at `patch.updated_at` (a patch never revives one).
    /// Concurrent patches of one
    /// session queue on the row, so none loses another's keys. Only the
    /// version comes back: sending the whole record back on every write
    /// cost PostgreSQL a third of the write.
    async fn patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>>;

    /// Atomically deletes `old` (if its version is `expected_version`) and
    /// inserts `record` under its new id.
    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome>;

    /// Deletes one session. Returns whether it existed.
    async fn delete(&self, id: &SessionKey) -> Result<bool>;
}

/// Sessions by user and the devices behind them: revocation by user,
/// "log out my other devices", per-user limits and device tracking.
///
/// Every method defaults to [`Error::Unsupported`]: a tier without a user
/// index still serves sessions, and these features say why they fail.
#[async_trait]
pub trait DatabaseAccounts: DatabaseCore {
    /// Deletes every session of a user; returns their ids.
    async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        let _ = user_id;
        Err(Error::unsupported(self.backend(), "deleting a user's sessions"))
    }

    /// Deletes every session of a user but `keep` ("log out my other
    /// devices"), in one statement, and only while `keep` is still one of
    /// the user's sessions (a session revoked a moment ago cannot revoke
    /// back): a session the user creates meanwhile is either deleted with
    /// the others or kept, never half, and one moving to a new id meanwhile
    /// is deleted. Returns the ids deleted.
    async fn delete_by_user_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        let _ = (user_id, keep);
        Err(Error::unsupported(self.backend(), "deleting a user's other sessions"))
    }

    /// Records the device behind a session (no version bump: metadata, not
    /// data); false when the session is gone.
    async fn touch(&self, id: &SessionKey, device: &Device) -> Result<bool> {
        let _ = (id, device);
        Err(Error::unsupported(self.backend(), "recording a device"))
    }

    /// The device recorded for a session (empty when none was).
    async fn device(&self, id: &SessionKey) -> Result<Device> {
        let _ = id;
        Err(Error::unsupported(self.backend(), "reading a device"))
    }

    /// The user's live sessions, most recently written first (at most
    /// `limit`), without their data: what an "active sessions" page lists.
    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<SessionSummary>> {
        let _ = (user_id, now, limit);
        Err(Error::unsupported(self.backend(), "listing a user's sessions"))
    }

    /// Deletes the user's sessions beyond `keep` and the `newest` other
    /// live ones most recently used (the later of last seen and last
    /// written, then id): the per-user session limit. Expired ones do not
    /// count, and go. Returns the ids deleted.
    async fn delete_user_sessions_beyond(
        &self,
        user_id: &str,
        keep: &SessionKey,
        newest: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionKey>> {
        let _ = (user_id, keep, newest, now);
        Err(Error::unsupported(self.backend(), "limiting a user's sessions"))
    }
}

/// What the admin tool needs: listing, counting, statistics, expiry by
/// id, edits and import/export.
///
/// Every method defaults to [`Error::Unsupported`], so a tier can serve
/// an application before it serves `sessionctl`.
#[async_trait]
pub trait DatabaseMaintenance: DatabaseCore {
    /// Writes `record` whatever is stored, inserting it if absent (import
    /// with `--replace`, admin edits).
    async fn upsert(&self, record: &Record) -> Result<()> {
        let _ = record;
        Err(Error::unsupported(self.backend(), "writing a session"))
    }

    /// The recorded devices of these sessions (those with none are left
    /// out): what export writes beside each page.
    async fn devices(&self, ids: &[SessionKey]) -> Result<Vec<(SessionKey, Device)>> {
        let _ = ids;
        Err(Error::unsupported(self.backend(), "reading devices"))
    }

    /// Up to `limit` sessions matching `filter`, ordered by expiry then id,
    /// after the cursor (keyset pagination: constant memory over any table
    /// size; pass the last record of a page to get the next).
    async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let _ = (filter, now, after, limit);
        Err(Error::unsupported(self.backend(), "listing sessions"))
    }

    /// Like [`DatabaseMaintenance::scan`], in id order after `after`: a walk of the
    /// primary key, linear in the table (export), where the expiry order
    /// sorts the matching rows on every page.
    async fn scan_by_id(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionKey>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let _ = (filter, now, after, limit);
        Err(Error::unsupported(self.backend(), "listing sessions"))
    }

    /// Starts an import: every batch written through the returned writer
    /// lands in one transaction, made durable by
    /// [`ImportWriter::commit`]; dropped uncommitted (an error, a bad line
    /// further on, a killed process), nothing of it stays. On SQLite the
    /// transaction holds the write lock until it ends.
    async fn begin_import(&self) -> Result<Box<dyn ImportWriter>> {
        let _ = ();
        Err(Error::unsupported(self.backend(), "starting an import"))
    }

    /// Sets the expiry of these sessions to `now` (bumping their version);
    /// returns the ids that existed.
    async fn expire(&self, ids: &[SessionKey], now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let _ = (ids, now);
        Err(Error::unsupported(self.backend(), "expiring sessions"))
    }

    /// Expires every live session of a user now; returns their ids.
    async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let _ = (user_id, now);
        Err(Error::unsupported(self.backend(), "expiring a user's sessions"))
    }

    /// Which of these ids exist.
    async fn existing(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        let _ = ids;
        Err(Error::unsupported(self.backend(), "checking sessions"))
    }

    /// Up to `limit` rows' sizes, expiries and whether they have a user, in
    /// id order after `after` (`None` to start): what
    /// [`crate::admin::Admin::stats`] samples or walks (an index range, not
    /// a scan of the table).
    async fn stats_rows(&self, after: Option<&str>, limit: u32) -> Result<Vec<StatsRow>> {
        let _ = (after, limit);
        Err(Error::unsupported(self.backend(), "computing statistics"))
    }

    /// How many sessions have a user id (counted on the user index).
    async fn count_with_user(&self) -> Result<u64> {
        let _ = ();
        Err(Error::unsupported(self.backend(), "counting sessions with a user"))
    }

    /// How many sessions match `filter`.
    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let _ = (filter, now);
        Err(Error::unsupported(self.backend(), "counting sessions"))
    }
}

/// The purge of expired rows ([`crate::purge`], `serve-cron`). A tier
/// whose engine expires rows itself (a TTL) can leave these to their
/// default, [`Error::Unsupported`].
#[async_trait]
pub trait DatabasePurge: DatabaseCore {
    /// Tries to become the one replica that purges; `None` when another
    /// holds the lock. PostgreSQL uses a session advisory lock, released
    /// with the guard or when the connection ends (a crashed replica cannot
    /// keep it). SQLite lives on one host, where concurrent purges only
    /// queue behind each other: it always grants.
    async fn try_purge_lock(&self) -> Result<Option<Box<dyn PurgeLock>>> {
        let _ = ();
        Err(Error::unsupported(self.backend(), "taking the purge lock"))
    }

    /// Claims the purge scheduled at `tick` for this replica: true for the
    /// first claimant among all the replicas sharing the database (and for
    /// it again, should it retry a claim whose answer it lost), false for
    /// every other one, however long after. Replicas compute the same tick
    /// from the schedule, so clock skew between them does not matter.
    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        let _ = (tick, claimant);
        Err(Error::unsupported(self.backend(), "claiming a purge tick"))
    }

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
    ) -> Result<PurgeBatch> {
        let _ = (now, after, window, return_ids);
        Err(Error::unsupported(self.backend(), "purging expired sessions"))
    }
}

/// The durable tier, whole: what [`Store`](super::Store) holds. Implement
/// its four parts, [`DatabaseCore`] (the request path),
/// [`DatabaseAccounts`], [`DatabaseMaintenance`] and [`DatabasePurge`];
/// this trait then comes for free.
pub trait DatabaseTier: DatabaseAccounts + DatabaseMaintenance + DatabasePurge {}

impl<T: DatabaseAccounts + DatabaseMaintenance + DatabasePurge + ?Sized> DatabaseTier for T {}

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
    /// The cache as two text columns, `(kind, key prefix)`: how the
    /// built-in tiers store it, and how a tier of your own may (for
    /// memory, the staleness in milliseconds stands in the prefix column).
    /// [`AppCache::from_columns`] reads it back, a kind it does not know
    /// as [`AppCache::Unknown`].
    pub fn to_columns(&self) -> (&str, Option<String>) {
        match self {
            AppCache::None => ("none", None),
            AppCache::Memory { staleness } => ("memory", Some(staleness.as_millis().to_string())),
            AppCache::Redis { prefix } => ("redis", Some(prefix.clone())),
            AppCache::Unknown { kind } => (kind, None),
        }
    }

    /// The inverse of [`AppCache::to_columns`].
    pub fn from_columns(kind: &str, prefix: Option<String>) -> AppCache {
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
    pub id: SessionKey,
    /// When it was created (the login, for a session given a user then).
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The device behind it, when the app tracks devices.
    pub device: Device,
}

impl SessionSummary {
    /// A line of an "active sessions" page (for a tier's
    /// [`DatabaseAccounts::user_sessions`]).
    pub fn new(
        id: SessionKey,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        device: Device,
    ) -> SessionSummary {
        SessionSummary { id, created_at, updated_at, expires_at, device }
    }
}

/// What an app records of the device behind a session (see
/// `SessionConfig::with_device_tracking`): all empty when it does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Device {
    /// When a request last used the session (to within the throttle).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The client's address: the socket's, or a trusted proxy's header.
    pub client_ip: Option<String>,
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

impl Device {
    /// A device seen at `seen`.
    pub fn seen(seen: DateTime<Utc>, client_ip: Option<String>, user_agent: Option<String>) -> Device {
        Device { last_seen_at: Some(seen), client_ip, user_agent }
    }
}

/// Most sessions [`Store::user_sessions`](super::Store::user_sessions) lists.
pub const MAX_LISTED_USER_SESSIONS: u32 = 1000;

/// An import in progress: one transaction (see
/// [`DatabaseMaintenance::begin_import`]).
#[async_trait]
pub trait ImportWriter: Send {
    /// Writes a batch of records whose ids are distinct, each with its
    /// device (`devices[i]` is `records[i]`'s): new ids are inserted;
    /// existing ones overwritten when `replace`, else kept.
    async fn write(&mut self, records: &[Record], devices: &[Device], replace: bool) -> Result<ImportCounts>;

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
/// In front of a database, errors here are absorbed by [`Store`](super::Store) (the
/// database still answers). In cache-only mode the cache is authoritative
/// and the compare-and-set operations at the end are used instead.
#[async_trait]
pub trait CacheTier: Send + Sync + fmt::Debug {
    /// `redis`, `memory`: for messages and metrics.
    fn backend(&self) -> &'static str;
    /// Called when a [`Store`](super::Store) puts this cache in front of a
    /// database. Redis then writes an epoch into its entries and takes
    /// those of another epoch (restored by a restart of its server) for
    /// absent. The default does nothing.
    fn in_front_of_database(&self) {}
    /// What is cached for the id.
    async fn get(&self, id: &SessionKey) -> Result<CacheLookup>;
    /// Refill after a database read: stores only into an empty slot, so it
    /// never replaces a newer write or a tombstone.
    async fn fill(&self, record: &Record) -> Result<()>;
    /// After a database write (or as a quick write): stores unless a newer
    /// version or a tombstone is cached. Returns false when refused.
    async fn put(&self, record: &Record) -> Result<bool>;
    /// Drops entries (possibly stale ones; absent is fine).
    async fn evict(&self, ids: &[SessionKey]) -> Result<()>;
    /// Marks the id deleted (or moved) for `ttl`, so an in-flight refill
    /// cannot bring the session back.
    async fn tombstone(&self, id: &SessionKey, ttl: Duration, reason: Tombstone) -> Result<()>;
    /// Applies key-level changes atomically to a live cached entry; with
    /// `bump` the version moves on (cache-only mode), without it the entry
    /// keeps the database's version and the changed keys are marked as
    /// quick (not in the database yet). Returns the entry's version after
    /// the change, or `None` when no live entry is cached (nothing is
    /// created). Only the version comes back, not the whole entry: a
    /// session hammered by many writers would otherwise send its growing
    /// record back on every write.
    async fn patch(&self, id: &SessionKey, patch: &Patch, bump: bool) -> Result<Option<i64>>;
    /// After a database patch brought the session `id` to `version`: when
    /// the cached entry is the version just before, applies `patch` to it
    /// (keeping what quick writes put there, unmarking the keys the patch
    /// persisted) and returns true. An older entry is evicted (the next
    /// read refills it); a newer one, a tombstone or none is left alone.
    async fn put_patched(&self, id: &SessionKey, patch: &Patch, version: i64) -> Result<bool>;
    /// Cache-only mode: insert unless the id exists.
    async fn create(&self, record: &Record) -> Result<bool>;
    /// Cache-only mode: write if the cached version is `expected_version`.
    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome>;
    /// Cache-only mode: move to a new id if the version matches.
    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome>;
    /// Cache-only mode: delete; returns whether it existed.
    async fn delete(&self, id: &SessionKey) -> Result<bool>;
    /// One page of the ids of live cached sessions (tombstones excluded),
    /// for statistics: start at cursor 0; a returned cursor of 0 means done.
    async fn scan_ids(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionKey>)>;
}
