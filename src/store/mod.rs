//! The two tiers and the store that composes them.
//!
//! [`DatabaseTier`] is the durable tier (SQLite, PostgreSQL): it owns
//! versions, creates without overwriting and refuses stale writes. It is
//! four traits by concern: [`DatabaseCore`] (the request path),
//! [`DatabaseAccounts`], [`DatabaseMaintenance`] and [`DatabasePurge`].
//! [`CacheTier`] is the fast tier (Redis, in-process) that sits in front of
//! it. [`Store`] is what sessions and admin operations talk to: it decides
//! which tier a call touches and in what order (database first, then cache),
//! and counts the round trips it makes so tests and benchmarks can check the
//! cost of each path.
//!
#![doc = include_str!("backend.md")]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::Record;

mod coalesce;
mod faults;
mod maintenance;
pub mod memory;
mod migrations;
mod open;
mod patch;
pub mod postgres;
pub mod redis;
mod row;
pub mod sqlite;
pub mod stats;
mod tier;
mod timed;

pub use migrations::{MOVE_TO_KEYS, SchemaStatus, SchemaStep, move_to_keys, upgrade};
pub use open::{
    MemoryCacheConfig, OpenAs, StoreConfig, connect_database, connect_database_with_timeout, connect_existing_database,
    open_database, open_database_with_status,
};
pub use patch::{Patch, PatchOutcome};
pub(crate) use row::{RawRow, parse_ids};
pub use stats::{DatabaseStats, StatsOptions, StatsRow, StatsSample};
pub(crate) use tier::LocalPurgeLock;
pub use tier::{
    AppCache, CacheLookup, CacheTier, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, DatabasePurge, DatabaseTier,
    Device, Filter, ImportCounts, ImportWriter, MAX_LISTED_USER_SESSIONS, PurgeBatch, PurgeLock, RotateOutcome,
    ScanCursor, SessionSummary, StateFilter, Tombstone, UpdateOutcome,
};
pub use timed::DEFAULT_DATABASE_TIMEOUT;

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
#[non_exhaustive]
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

    /// Sets how long a tombstone stays.
    pub fn with_tombstone_ttl(mut self, ttl: Duration) -> StoreOptions {
        self.tombstone_ttl = ttl;
        self
    }
}

/// What [`Store::lookup`] found for an id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    suspects: Mutex<HashSet<SessionKey>>,
    /// Ids this process moved to a new id recently, with when: the
    /// rotation marker for stores without a shared cache to hold it.
    moved: Mutex<HashMap<SessionKey, Instant>>,
    /// Concurrent patches of one session, combined (see `coalesce.rs`).
    patches: coalesce::PatchQueues,
    /// Devices this process recorded lately: the throttle of device
    /// tracking.
    devices: Mutex<HashMap<SessionKey, (Instant, Device)>>,
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
        if let (Some(_), Some(cache)) = (&database, &cache) {
            cache.in_front_of_database();
        }
        Store {
            inner: Arc::new(StoreInner {
                database,
                cache,
                options,
                ops: OpCounts::default(),
                suspects: Mutex::default(),
                moved: Mutex::default(),
                patches: coalesce::PatchQueues::default(),
                devices: Mutex::default(),
            }),
        }
    }

    /// Connects to the database a URL names (`sqlite://PATH`, `sqlite::memory:`,
    /// `postgres://…`) and applies the schema.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout. [`Error::Migrate`] when pending migrations fail.
    pub async fn connect(database_url: &str) -> Result<Store> {
        Ok(Store::new(open_database(database_url, DEFAULT_DATABASE_TIMEOUT, OpenAs::App).await?))
    }

    /// The database tier, if there is one.
    pub(crate) fn database(&self) -> Option<&Arc<dyn DatabaseTier>> {
        self.inner.database.as_ref()
    }

    /// The cache tier, if there is one.
    pub(crate) fn cache(&self) -> Option<&Arc<dyn CacheTier>> {
        self.inner.cache.as_ref()
    }

    /// Whether quick writes can go to the cache alone (a cache in front of
    /// a database).
    pub fn has_quick_writes(&self) -> bool {
        self.inner.cache.is_some() && self.inner.database.is_some()
    }

    /// The database tier, or a configuration error for operations that need
    /// one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the store has no database tier.
    pub(crate) fn require_database(&self) -> Result<&Arc<dyn DatabaseTier>> {
        self.database().ok_or_else(|| Error::Config("this operation needs a database tier".into()))
    }

    /// Checks that the database answers (one primary-key lookup, within
    /// the database timeout).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn ping(&self) -> Result<()> {
        self.db()?.load(&SessionKey::generate().1).await.map(|_| ())
    }

    /// Claims the purge scheduled at `tick` (see
    /// [`DatabasePurge::try_claim_tick`]).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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
        self.cache_calls(cache, operation, 1, call).await
    }

    /// [`cache_call`](Self::cache_call) for a tier operation that may take
    /// up to `calls` round trips (each bounded by the tier itself), so the
    /// bound does not cut it short between two of them.
    async fn cache_calls<T>(
        &self,
        cache: &Arc<dyn CacheTier>,
        operation: &'static str,
        calls: u32,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.inner.ops.cache.fetch_add(1, Ordering::Relaxed);
        let timeout = self.inner.options.cache_timeout_for(self.database().is_some()) * calls;
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

    fn suspects(&self) -> std::sync::MutexGuard<'_, HashSet<SessionKey>> {
        self.inner.suspects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether this id's cache entry may be stale; if so, tries once more to
    /// evict it.
    async fn is_suspect(&self, cache: &Arc<dyn CacheTier>, id: &SessionKey) -> bool {
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

    async fn make_sure_evicted(&self, cache: &Arc<dyn CacheTier>, id: &SessionKey) {
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
    async fn after_unknown_outcome<T>(&self, outcome: Result<T>, ids: &[&SessionKey]) -> Result<T> {
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
    async fn cache_after_delete(&self, id: &SessionKey) {
        self.leave_tombstone(id, Tombstone::Deleted).await;
    }

    async fn leave_tombstone(&self, id: &SessionKey, reason: Tombstone) {
        let Some(cache) = self.cache() else { return };
        let ttl = self.inner.options.tombstone_ttl;
        if self.cache_call(cache, "deleting a session", cache.tombstone(id, ttl, reason)).await.is_err() {
            self.make_sure_evicted(cache, id).await;
        }
    }

    /// After a database patch: the cache follows it, keeping quick writes
    /// when it held the version just before.
    async fn cache_after_patch(&self, id: &SessionKey, patch: &Patch, version: i64) {
        let Some(cache) = self.cache() else { return };
        if self.cache_call(cache, "writing a session", cache.put_patched(id, patch, version)).await.is_ok() {
            return;
        }
        self.make_sure_evicted(cache, id).await;
    }

    fn remember_moved(&self, id: &SessionKey) {
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
    fn settle_moved(&self, id: &SessionKey, outcome: &Result<RotateOutcome>) {
        match outcome {
            Ok(RotateOutcome::Rotated | RotateOutcome::Missing) => self.remember_moved(id),
            Ok(RotateOutcome::Conflict | RotateOutcome::IdTaken) | Err(_) => {
                self.inner.moved.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
            }
        }
    }

    fn was_moved(&self, id: &SessionKey) -> bool {
        let moved = self.inner.moved.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        !moved.is_empty() && moved.get(id).is_some_and(|at| at.elapsed() < self.inner.options.tombstone_ttl)
    }

    /// A live (unexpired) session: from the cache when it has it, else from
    /// the database (refilling the cache).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn load(&self, id: &SessionKey, now: DateTime<Utc>) -> Result<Option<Record>> {
        Ok(match self.lookup(id, now).await? {
            Lookup::Found(record, _) => Some(record),
            Lookup::Missing | Lookup::Moved => None,
        })
    }

    /// Moves the session an older build stored under `id` (not its key)
    /// to its key, as a rolling deploy goes on; `true` when there was one.
    /// A failure is logged and answered `false`: the request goes on as if
    /// the session were gone, as it would have before.
    pub async fn move_id_to_key(&self, id: &crate::SessionId) -> bool {
        let Some(database) = self.database() else { return false };
        self.inner.ops.database.fetch_add(1, Ordering::Relaxed);
        match database.move_id_to_key(id).await {
            Ok(moved) => moved,
            Err(error) => {
                tracing::warn!(%error, "could not move a session stored under its id to its key");
                false
            }
        }
    }

    /// Like [`load`](Self::load), telling a session that was just moved to
    /// a new id apart from one that does not exist.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn lookup(&self, id: &SessionKey, now: DateTime<Utc>) -> Result<Lookup> {
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
                // An entry the cache holds but cannot decode (damaged, or
                // written by a release that lays it out differently) would
                // send every read of the session to the database until it
                // expires: it goes, and the refill below replaces it.
                Err(Error::Corrupt { .. }) => {
                    let _ = self
                        .cache_call(cache, "evicting a damaged session", cache.evict(std::slice::from_ref(id)))
                        .await;
                }
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn load_fresh(&self, id: &SessionKey, now: DateTime<Utc>) -> Result<Option<Record>> {
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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

    /// After an import committed: the cache's entries (tombstones included)
    /// for these ids go, so the next read serves what was imported.
    pub(crate) async fn evict_imported(&self, ids: &[SessionKey]) {
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    /// A request whose change was combined into another's write that never
    /// ended (its task died, the runtime shut down) gets [`Error::Interrupted`].
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
            Ok(Err(_)) => return Err(coalesce::abandoned()),
            Err(_) => return Err(Error::Timeout { backend: "store", operation: "saving a session", after: bound }),
        };
        patched(base, patch, version)
    }

    /// One patch (or several, combined) to the database, then the cache, or
    /// to a cache-only store's cache. Returns the new version (`None`: the
    /// session is gone).
    async fn write_patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>> {
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
    async fn drain_patches(self, id: SessionKey, mut patch: Patch, mut senders: Vec<coalesce::Sender>) {
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            self.remember_moved(old);
            // On a Redis Cluster a rotation is two steps and, after an
            // unknown outcome, a check: cut short between them, the old id
            // could end up moved while the caller keeps the old cookie.
            let rotation = cache.rotate(old, expected_version, record);
            let outcome = self.cache_calls(cache, "moving a session", 3, rotation).await;
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn delete(&self, id: &SessionKey) -> Result<bool> {
        if let (None, Some(cache)) = (self.database(), self.cache()) {
            return self.cache_call(cache, "deleting a session", cache.delete(id)).await;
        }
        let result = self.db()?.delete(id).await;
        self.cache_after_delete(id).await;
        result
    }

    /// Deletes every session of a user from every tier; returns their ids.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        let ids = self.db()?.delete_by_user(user_id).await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// Records the device behind a session in the database, unless this
    /// process recorded the same address and user agent for it less than
    /// `throttle` ago (so a read does not write on every request).
    ///
    /// # Errors
    ///
    /// The database tier's error when the device cannot be written.
    pub async fn record_device(&self, id: &SessionKey, device: Device, throttle: Duration) -> Result<()> {
        let Some(database) = self.database() else { return Ok(()) };
        {
            let mut seen = self.inner.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let same = |last: &Device| last.client_ip == device.client_ip && last.user_agent == device.user_agent;
            if seen.get(id).is_some_and(|(at, last)| at.elapsed() < throttle && same(last)) {
                return Ok(());
            }
            if seen.len() >= MAX_MOVED {
                seen.retain(|_, (at, _)| at.elapsed() < throttle);
                // Still full (more sessions seen within one throttle than
                // the map holds): start over rather than scan it on every
                // request; each device is written once more, then throttled.
                if seen.len() >= MAX_MOVED / 2 {
                    seen.clear();
                }
            }
            seen.insert(id.clone(), (Instant::now(), device.clone()));
        }
        self.inner.ops.database.fetch_add(1, Ordering::Relaxed);
        database.touch(id, &device).await?;
        Ok(())
    }

    /// The device recorded for a session (empty when none was).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn device(&self, id: &SessionKey) -> Result<Device> {
        self.db()?.device(id).await
    }

    /// A user's live sessions, most recently written first, without their
    /// data (at most [`MAX_LISTED_USER_SESSIONS`]).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionSummary>> {
        self.db()?.user_sessions(user_id, now, MAX_LISTED_USER_SESSIONS).await
    }

    /// Keeps at most `limit` sessions of a user, `keep` among them: the
    /// least recently written others go, in both tiers (see
    /// [`DatabaseAccounts::delete_user_sessions_beyond`]); returns their ids.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn limit_user_sessions(&self, user_id: &str, keep: &SessionKey, limit: u32) -> Result<Vec<SessionKey>> {
        let ids = self
            .db()?
            .delete_user_sessions_beyond(user_id, keep, limit.saturating_sub(1), crate::record::now())
            .await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// Deletes every session of a user but `keep`, in both tiers (see
    /// [`DatabaseAccounts::delete_by_user_except`]); returns their ids.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn delete_by_user_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        let ids = self.db()?.delete_by_user_except(user_id, keep).await?;
        for id in &ids {
            self.cache_after_delete(id).await;
        }
        Ok(ids)
    }

    /// Writes a record whatever is stored (admin edits, import with
    /// `--replace`); the cache entry is dropped so the next read fills it.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn expire(&self, ids: &[SessionKey], now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let expired = self.db()?.expire(ids, now).await?;
        for id in &expired {
            self.cache_after_delete(id).await;
        }
        Ok(expired)
    }

    /// Expires a user's live sessions now, in both tiers.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
    pub async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let expired = self.db()?.expire_by_user(user_id, now).await?;
        for id in &expired {
            self.cache_after_delete(id).await;
        }
        Ok(expired)
    }

    /// One purge batch (see [`DatabasePurge::purge_expired_batch`]); with a
    /// cache tier, the purged ids are also dropped from it. The ids are
    /// returned when there is a cache or `return_ids` is set.
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`], or
    /// [`Error::Timeout`] when it does not answer in time), or
    /// [`Error::Config`] when the store has no database; a failing cache in front of a
    /// database is bypassed (in cache-only mode its [`Error::Cache`] is returned).
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
    id: &'a SessionKey,
}

impl Drop for QueuedPatches<'_> {
    fn drop(&mut self) {
        let Some((patch, senders)) = self.store.inner.patches.next_batch(self.id) else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.store.clone().drain_patches(self.id.clone(), patch, senders));
            }
            Err(_) => {
                let error = Err(Error::Interrupted("no runtime left to write this session's changes".into()));
                coalesce::deliver(senders, &error);
                self.store.inner.patches.abandon(self.id);
            }
        }
    }
}

/// Frees a session's patch queue when the task draining it ends early.
struct AbandonedQueue<'a> {
    store: &'a Store,
    id: &'a SessionKey,
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
