//! A bound on every database call.
//!
//! A database that accepts TCP connections but never answers (a hung
//! primary, a full disk, a network partition that drops packets) must not
//! hang a request, a CLI command or the purge daemon. sqlx bounds pool
//! acquisition, and PostgreSQL's `statement_timeout` runs on the server, so
//! neither helps when the server is the thing that hangs: [`Store`] wraps its
//! database tier in [`TimedDatabase`], which gives every call a client-side
//! deadline and turns a missed one into [`Error::Timeout`].
//!
//! [`Store`]: super::Store

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    AppCache, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, DatabasePurge, DatabaseTier, Device, Filter,
    ImportCounts, ImportWriter, Patch, PurgeBatch, PurgeLock, RotateOutcome, ScanCursor, SchemaStatus, SessionSummary,
    StatsRow, UpdateOutcome,
};
use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::Record;

/// Default bound on one database call (connect, pool acquire, statement).
pub const DEFAULT_DATABASE_TIMEOUT: Duration = Duration::from_secs(15);

/// A database tier whose every call fails with [`Error::Timeout`] after a
/// deadline instead of waiting forever.
#[derive(Debug)]
pub(crate) struct TimedDatabase {
    inner: Arc<dyn DatabaseTier>,
    timeout: Duration,
}

impl TimedDatabase {
    pub(crate) fn new(inner: Arc<dyn DatabaseTier>, timeout: Duration) -> TimedDatabase {
        TimedDatabase { inner, timeout }
    }

    async fn call<T>(&self, operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        bounded(self.inner.backend(), operation, self.timeout, call).await
    }
}

/// An import whose every call is bounded like the tier's.
struct TimedImport {
    inner: Box<dyn ImportWriter>,
    backend: &'static str,
    timeout: Duration,
}

#[async_trait]
impl ImportWriter for TimedImport {
    async fn write(&mut self, records: &[Record], devices: &[Device], replace: bool) -> Result<ImportCounts> {
        bounded(self.backend, "importing sessions", self.timeout, self.inner.write(records, devices, replace)).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        bounded(self.backend, "committing an import", self.timeout, self.inner.commit()).await
    }
}

/// Runs `call`, or fails with [`Error::Timeout`] once `timeout` has passed.
pub(crate) async fn bounded<T>(
    backend: &'static str,
    operation: &'static str,
    timeout: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout { backend, operation, after: timeout }),
    }
}

#[async_trait]
impl DatabaseCore for TimedDatabase {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn migrate(&self) -> Result<()> {
        self.call("applying the schema", self.inner.migrate()).await
    }

    async fn schema_status(&self) -> Result<SchemaStatus> {
        self.call("reading the schema version", self.inner.schema_status()).await
    }

    async fn move_to_keys_batch(&self, limit: u32) -> Result<u64> {
        self.call("moving sessions to their keys", self.inner.move_to_keys_batch(limit)).await
    }

    async fn move_id_to_key(&self, id: &crate::SessionId) -> Result<bool> {
        self.call("moving a session to its key", self.inner.move_id_to_key(id)).await
    }

    async fn recorded_cache(&self) -> Result<Option<AppCache>> {
        self.call("reading the apps' cache tier", self.inner.recorded_cache()).await
    }

    async fn record_cache(&self, cache: &AppCache) -> Result<()> {
        self.call("recording the cache tier", self.inner.record_cache(cache)).await
    }

    async fn insert_if_absent(&self, record: &Record) -> Result<bool> {
        self.call("creating a session", self.inner.insert_if_absent(record)).await
    }

    async fn load(&self, id: &SessionKey) -> Result<Option<Record>> {
        self.call("loading a session", self.inner.load(id)).await
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        self.call("saving a session", self.inner.update(record, expected_version)).await
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>> {
        self.call("saving a session", self.inner.patch(id, patch)).await
    }

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        self.call("moving a session to a new id", self.inner.rotate(old, expected_version, record)).await
    }

    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        self.call("deleting a session", self.inner.delete(id)).await
    }
}

#[async_trait]
impl DatabaseAccounts for TimedDatabase {
    async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        self.call("deleting a user's sessions", self.inner.delete_by_user(user_id)).await
    }

    async fn touch(&self, id: &SessionKey, device: &Device) -> Result<bool> {
        self.call("recording a device", self.inner.touch(id, device)).await
    }

    async fn device(&self, id: &SessionKey) -> Result<Device> {
        self.call("reading a device", self.inner.device(id)).await
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<SessionSummary>> {
        self.call("listing a user's sessions", self.inner.user_sessions(user_id, now, limit)).await
    }

    async fn delete_user_sessions_beyond(
        &self,
        user_id: &str,
        keep: &SessionKey,
        newest: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionKey>> {
        self.call("limiting a user's sessions", self.inner.delete_user_sessions_beyond(user_id, keep, newest, now))
            .await
    }

    async fn delete_by_user_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        self.call("deleting a user's other sessions", self.inner.delete_by_user_except(user_id, keep)).await
    }
}

#[async_trait]
impl DatabaseMaintenance for TimedDatabase {
    async fn scan_by_id(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionKey>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.call("listing sessions", self.inner.scan_by_id(filter, now, after, limit)).await
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportWriter>> {
        let inner = self.call("starting an import", self.inner.begin_import()).await?;
        Ok(Box::new(TimedImport { inner, backend: self.inner.backend(), timeout: self.timeout }))
    }

    async fn upsert(&self, record: &Record) -> Result<()> {
        self.call("writing a session", self.inner.upsert(record)).await
    }

    async fn devices(&self, ids: &[SessionKey]) -> Result<Vec<(SessionKey, Device)>> {
        self.call("reading devices", self.inner.devices(ids)).await
    }

    async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.call("listing sessions", self.inner.scan(filter, now, after, limit)).await
    }

    async fn expire(&self, ids: &[SessionKey], now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        self.call("expiring sessions", self.inner.expire(ids, now)).await
    }

    async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        self.call("expiring a user's sessions", self.inner.expire_by_user(user_id, now)).await
    }

    async fn existing(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        self.call("checking sessions", self.inner.existing(ids)).await
    }

    async fn stats_rows(&self, after: Option<&str>, limit: u32) -> Result<Vec<StatsRow>> {
        self.call("computing statistics", self.inner.stats_rows(after, limit)).await
    }

    async fn count_with_user(&self) -> Result<u64> {
        self.call("counting sessions with a user", self.inner.count_with_user()).await
    }

    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        self.call("counting sessions", self.inner.count(filter, now)).await
    }
}

#[async_trait]
impl DatabasePurge for TimedDatabase {
    async fn try_purge_lock(&self) -> Result<Option<Box<dyn PurgeLock>>> {
        let lock = self.call("taking the purge lock", self.inner.try_purge_lock()).await?;
        Ok(lock.map(|inner| {
            Box::new(TimedLock { inner, backend: self.inner.backend(), timeout: self.timeout }) as Box<dyn PurgeLock>
        }))
    }

    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        self.call("claiming a purge tick", self.inner.try_claim_tick(tick, claimant)).await
    }

    async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
        return_ids: bool,
    ) -> Result<PurgeBatch> {
        self.call("purging expired sessions", self.inner.purge_expired_batch(now, after, window, return_ids)).await
    }
}

/// The purge lock of a timed tier: releasing it is bounded too.
struct TimedLock {
    inner: Box<dyn PurgeLock>,
    backend: &'static str,
    timeout: Duration,
}

impl fmt::Debug for TimedLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl PurgeLock for TimedLock {
    async fn release(self: Box<Self>) -> Result<()> {
        bounded(self.backend, "releasing the purge lock", self.timeout, self.inner.release()).await
    }
}
