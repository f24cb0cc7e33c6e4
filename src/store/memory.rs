//! The in-process cache tier (moka): for a single-process app, the embedded
//! default, and cache-only sessions in one process.
//!
//! It cannot hear about changes made by another process (`sessionctl delete`,
//! `revoke`, another app server), so in front of a database each entry lives
//! at most `staleness` (default 10 s): a revocation elsewhere takes effect
//! within that bound. As the only tier (`no_database`) entries live until
//! their session expires, and are lost when the process exits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;

use super::{CacheLookup, CacheTier, RotateOutcome, UpdateOutcome};
use crate::error::Result;
use crate::id::SessionId;
use crate::record::{self, Record};

/// Default bound on how long an entry may be served without a database read.
pub const DEFAULT_STALENESS: Duration = Duration::from_secs(10);
/// Default number of sessions kept.
pub const DEFAULT_CAPACITY: u64 = 100_000;

#[derive(Clone, Debug)]
enum Slot {
    Live(Arc<Record>),
    Deleted,
}

#[derive(Clone, Debug)]
struct Entry {
    slot: Slot,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// A bounded in-process cache of session records.
#[derive(Clone)]
pub struct MemoryCache {
    entries: Cache<String, Entry>,
    staleness: Option<Duration>,
    /// Serializes the read-check-write operations; reads do not take it.
    write_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("entries", &self.entries.entry_count())
            .field("staleness", &self.staleness)
            .finish()
    }
}

impl MemoryCache {
    /// A cache of at most `capacity` sessions, each served for at most
    /// `staleness` (`None`: until the session expires, for cache-only use).
    pub fn new(capacity: u64, staleness: Option<Duration>) -> MemoryCache {
        MemoryCache {
            entries: Cache::builder().max_capacity(capacity).expire_after(PerEntryTtl).build(),
            staleness,
            write_lock: Arc::new(Mutex::new(())),
        }
    }

    fn ttl_for(&self, record: &Record) -> Option<Duration> {
        let left = (record.expires_at - record::now()).to_std().ok().filter(|d| !d.is_zero())?;
        Some(self.staleness.map_or(left, |bound| bound.min(left)))
    }

    fn lookup(&self, id: &SessionId) -> Option<Slot> {
        self.entries.get(id.as_str()).map(|e| e.slot)
    }

    fn store(&self, record: &Record) {
        match self.ttl_for(record) {
            Some(ttl) => {
                self.entries.insert(record.id.to_string(), Entry { slot: Slot::Live(Arc::new(record.clone())), ttl })
            }
            None => self.entries.invalidate(record.id.as_str()),
        }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding this lock cannot leave the map half-written
        // (each moka call is atomic), so a poisoned lock is safe to reuse.
        self.write_lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn version_of(slot: &Option<Slot>) -> Option<i64> {
    match slot {
        Some(Slot::Live(record)) => Some(record.version),
        _ => None,
    }
}

#[async_trait]
impl CacheTier for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, id: &SessionId) -> Result<CacheLookup> {
        Ok(match self.lookup(id) {
            None => CacheLookup::Miss,
            Some(Slot::Deleted) => CacheLookup::Deleted,
            Some(Slot::Live(record)) => CacheLookup::Hit((*record).clone()),
        })
    }

    async fn fill(&self, record: &Record) -> Result<()> {
        let _guard = self.locked();
        if self.lookup(&record.id).is_none() {
            self.store(record);
        }
        Ok(())
    }

    async fn put(&self, record: &Record) -> Result<bool> {
        let _guard = self.locked();
        match self.lookup(&record.id) {
            Some(Slot::Deleted) => return Ok(false),
            Some(Slot::Live(cached)) if cached.version > record.version => return Ok(false),
            _ => {}
        }
        self.store(record);
        Ok(true)
    }

    async fn evict(&self, ids: &[SessionId]) -> Result<()> {
        for id in ids {
            self.entries.invalidate(id.as_str());
        }
        Ok(())
    }

    async fn tombstone(&self, id: &SessionId, ttl: Duration) -> Result<()> {
        self.entries.insert(id.to_string(), Entry { slot: Slot::Deleted, ttl });
        Ok(())
    }

    async fn create(&self, record: &Record) -> Result<bool> {
        let _guard = self.locked();
        if self.lookup(&record.id).is_some() {
            return Ok(false);
        }
        self.store(record);
        Ok(true)
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        let _guard = self.locked();
        match version_of(&self.lookup(&record.id)) {
            None => Ok(UpdateOutcome::Missing),
            Some(v) if v != expected_version => Ok(UpdateOutcome::Conflict),
            Some(_) => {
                self.store(record);
                Ok(UpdateOutcome::Updated)
            }
        }
    }

    async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        let _guard = self.locked();
        match version_of(&self.lookup(old)) {
            None => Ok(RotateOutcome::Missing),
            Some(v) if v != expected_version => Ok(RotateOutcome::Conflict),
            Some(_) if self.lookup(&record.id).is_some() => Ok(RotateOutcome::IdTaken),
            Some(_) => {
                self.entries.invalidate(old.as_str());
                self.store(record);
                Ok(RotateOutcome::Rotated)
            }
        }
    }

    async fn scan_ids(&self, _cursor: u64, _count: usize) -> Result<(u64, Vec<SessionId>)> {
        let ids = self
            .entries
            .iter()
            .filter(|(_, entry)| matches!(entry.slot, Slot::Live(_)))
            .filter_map(|(key, _)| SessionId::parse(&key).ok())
            .collect();
        Ok((0, ids))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let _guard = self.locked();
        let existed = matches!(self.lookup(id), Some(Slot::Live(_)));
        self.entries.invalidate(id.as_str());
        Ok(existed)
    }
}
