//! What the admin tool and the purge ask of the store: inspection of each
//! tier, listing, counting, statistics, import and the purge lock.
//!
//! They go through [`Store`] like the request path does, so every database
//! call is bounded by the database timeout and counted, and every cache
//! call gets the cache timeout; nothing outside this module reaches a tier
//! directly.

use chrono::{DateTime, Utc};

use super::{
    CacheLookup, DatabaseStats, Device, Filter, ImportWriter, PurgeLock, ScanCursor, StatsOptions, Store, stats,
};
use crate::error::Result;
use crate::id::SessionKey;
use crate::record::Record;

impl Store {
    /// Whether the store has a database tier.
    pub fn has_database(&self) -> bool {
        self.database().is_some()
    }

    /// Whether the store has a cache tier.
    pub fn has_cache(&self) -> bool {
        self.cache().is_some()
    }

    /// What the database holds for `key`, expired or not, without asking
    /// the cache (what `sessionctl show` compares the cache against).
    ///
    /// # Errors
    ///
    /// Fails with the database tier's error ([`Error::Database`](crate::Error::Database),
    /// [`Error::Timeout`](crate::Error::Timeout)), or [`Error::Config`](crate::Error::Config)
    /// when the store has no database.
    pub async fn stored(&self, key: &SessionKey) -> Result<Option<Record>> {
        self.db()?.load(key).await
    }

    /// What the cache holds for `key`, within the cache timeout; `None`
    /// when the store has no cache.
    pub async fn cached(&self, key: &SessionKey) -> Option<Result<CacheLookup>> {
        let cache = self.cache()?;
        Some(self.cache_call(cache, "reading a session", cache.get(key)).await)
    }

    /// One page of the keys of live cached sessions (see
    /// [`CacheTier::scan_ids`](super::CacheTier::scan_ids)): start at cursor 0; a returned
    /// cursor of 0 means done. Empty without a cache.
    ///
    /// # Errors
    ///
    /// The cache tier's [`Error::Cache`](crate::Error::Cache), including a timeout.
    pub async fn cached_keys(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionKey>)> {
        let Some(cache) = self.cache() else { return Ok((0, Vec::new())) };
        self.cache_call(cache, "listing cached sessions", cache.scan_ids(cursor, count)).await
    }

    /// Up to `limit` sessions matching `filter`, by expiry then key, after
    /// `after` (see [`DatabaseMaintenance::scan`](super::DatabaseMaintenance::scan)).
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.db()?.scan(filter, now, after, limit).await
    }

    /// Like [`Store::scan`], in key order after `after`: a walk of the
    /// primary key (export).
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn scan_by_key(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionKey>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.db()?.scan_by_id(filter, now, after, limit).await
    }

    /// How many sessions match `filter` at `now`.
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        self.db()?.count(filter, now).await
    }

    /// Which of these keys the database holds.
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn existing(&self, keys: &[SessionKey]) -> Result<Vec<SessionKey>> {
        self.db()?.existing(keys).await
    }

    /// The recorded devices of these sessions (those with none are left out).
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn devices(&self, keys: &[SessionKey]) -> Result<Vec<(SessionKey, Device)>> {
        self.db()?.devices(keys).await
    }

    /// The database's figures at `now` (see [`crate::store::stats`]);
    /// `progress` hears the share of the table read so far.
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn database_stats(
        &self,
        now: DateTime<Utc>,
        options: StatsOptions,
        progress: &mut (dyn FnMut(f64) + Send),
    ) -> Result<DatabaseStats> {
        stats::compute(self.db()?.as_ref(), now, options, progress).await
    }

    /// Starts an import: one database transaction (see
    /// [`DatabaseMaintenance::begin_import`](super::DatabaseMaintenance::begin_import)),
    /// every call of which is bounded by the database timeout.
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn begin_import(&self) -> Result<Box<dyn ImportWriter>> {
        self.db()?.begin_import().await
    }

    /// Tries to become the one replica that purges (see
    /// [`DatabasePurge::try_purge_lock`](super::DatabasePurge::try_purge_lock)).
    ///
    /// # Errors
    ///
    /// As [`Store::stored`].
    pub async fn try_purge_lock(&self) -> Result<Option<Box<dyn PurgeLock>>> {
        self.db()?.try_purge_lock().await
    }
}
