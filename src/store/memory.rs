//! The in-process cache tier (moka): for a single-process app, the embedded
//! default, and cache-only sessions in one process.
//!
//! It cannot hear about changes made by another process (`sessionctl delete`,
//! `revoke`, another app server), so in front of a database each entry lives
//! at most `staleness` (default 10 s): a revocation elsewhere takes effect
//! within that bound. As the only tier (`no_database`) entries live until
//! their session expires, and are lost when the process exits.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::sync::Cache;

use super::{CacheLookup, CacheTier, Patch, RotateOutcome, Tombstone, UpdateOutcome};
use crate::error::Result;
use crate::id::SessionKey;
use crate::record::{self, Record};

/// Default bound on how long an entry may be served without a database read.
pub const DEFAULT_STALENESS: Duration = Duration::from_secs(10);
/// Default number of sessions kept.
pub const DEFAULT_CAPACITY: u64 = 100_000;
/// How long a cache-only rotation marks the old id as moved.
const MOVED_MARKER_TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
enum Slot {
    Live(Arc<Cached>),
    Deleted,
    Moved,
}

/// A live entry: the record, and the keys quick writes changed in it that
/// the database does not have yet.
#[derive(Debug)]
struct Cached {
    record: Record,
    quick: BTreeSet<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    slot: Slot,
    ttl: Duration,
    /// A quick write's update: the entry keeps the deadline it had, so a
    /// session kept busy by quick writes is still re-read from the database
    /// within the staleness bound (and a revocation elsewhere seen).
    keep_deadline: bool,
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
        left: Option<Duration>,
    ) -> Option<Duration> {
        if entry.keep_deadline { left.or(Some(entry.ttl)) } else { Some(entry.ttl) }
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

    fn lookup(&self, id: &SessionKey) -> Option<Slot> {
        self.entries.get(id.as_str()).map(|e| e.slot)
    }

    fn store(&self, record: &Record) {
        self.store_with_quick(record.clone(), BTreeSet::new());
    }

    fn store_with_quick(&self, record: Record, quick: BTreeSet<String>) {
        self.store_entry(record, quick, false);
    }

    fn store_entry(&self, record: Record, quick: BTreeSet<String>, keep_deadline: bool) {
        match self.ttl_for(&record) {
            Some(ttl) => {
                let key = record.id.to_string();
                let slot = Slot::Live(Arc::new(Cached { record, quick }));
                self.entries.insert(key, Entry { slot, ttl, keep_deadline })
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
        Some(Slot::Live(cached)) => Some(cached.record.version),
        _ => None,
    }
}

#[async_trait]
impl CacheTier for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, id: &SessionKey) -> Result<CacheLookup> {
        Ok(match self.lookup(id) {
            None => CacheLookup::Miss,
            Some(Slot::Deleted) => CacheLookup::Deleted,
            Some(Slot::Moved) => CacheLookup::Moved,
            Some(Slot::Live(cached)) if cached.quick.is_empty() => CacheLookup::Hit(cached.record.clone()),
            Some(Slot::Live(cached)) => {
                CacheLookup::Quick(cached.record.clone(), cached.quick.iter().cloned().collect())
            }
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
            Some(Slot::Deleted | Slot::Moved) => return Ok(false),
            // The same version may hold quick writes the record does not.
            Some(Slot::Live(cached)) if cached.record.version >= record.version => return Ok(false),
            _ => {}
        }
        self.store(record);
        Ok(true)
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch, bump: bool) -> Result<Option<i64>> {
        let _guard = self.locked();
        let Some(Slot::Live(cached)) = self.lookup(id) else { return Ok(None) };
        let mut record = cached.record.clone();
        patch.apply(&mut record, bump)?;
        let mut quick = cached.quick.clone();
        if !bump {
            quick.extend(patch.set.keys().chain(&patch.removed).cloned());
        }
        let version = record.version;
        // A quick write (no bump) keeps the entry's deadline; a cache-only
        // save has no database to go stale against.
        self.store_entry(record, quick, !bump);
        Ok(Some(version))
    }

    async fn put_patched(&self, id: &SessionKey, patch: &Patch, version: i64) -> Result<bool> {
        let _guard = self.locked();
        match self.lookup(id) {
            Some(Slot::Live(cached)) if cached.record.version == version - 1 => {
                // Keep what quick writes added on top of the database's copy;
                // the keys this patch wrote are in the database now.
                let mut merged = cached.record.clone();
                patch.apply(&mut merged, true)?;
                let mut quick = cached.quick.clone();
                for key in patch.set.keys().chain(&patch.removed) {
                    quick.remove(key);
                }
                self.store_with_quick(merged, quick);
                Ok(true)
            }
            Some(Slot::Live(cached)) if cached.record.version < version => {
                self.entries.invalidate(id.as_str());
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    async fn evict(&self, ids: &[SessionKey]) -> Result<()> {
        for id in ids {
            self.entries.invalidate(id.as_str());
        }
        Ok(())
    }

    async fn tombstone(&self, id: &SessionKey, ttl: Duration, reason: Tombstone) -> Result<()> {
        let _guard = self.locked();
        // A deletion after a move (a stale save finding the old id gone)
        // keeps the move's marker: it is the more specific of the two.
        let slot = match (reason, self.lookup(id)) {
            (Tombstone::Moved, _) | (Tombstone::Deleted, Some(Slot::Moved)) => Slot::Moved,
            (Tombstone::Deleted, _) => Slot::Deleted,
        };
        self.entries.insert(id.to_string(), Entry { slot, ttl, keep_deadline: false });
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

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        let _guard = self.locked();
        match version_of(&self.lookup(old)) {
            None => Ok(RotateOutcome::Missing),
            Some(v) if v != expected_version => Ok(RotateOutcome::Conflict),
            Some(_) if self.lookup(&record.id).is_some() => Ok(RotateOutcome::IdTaken),
            Some(_) => {
                let moved = Entry { slot: Slot::Moved, ttl: MOVED_MARKER_TTL, keep_deadline: false };
                self.entries.insert(old.to_string(), moved);
                self.store(record);
                Ok(RotateOutcome::Rotated)
            }
        }
    }

    async fn scan_ids(&self, _cursor: u64, _count: usize) -> Result<(u64, Vec<SessionKey>)> {
        let ids = self
            .entries
            .iter()
            .filter(|(_, entry)| matches!(entry.slot, Slot::Live(_)))
            .filter_map(|(key, _)| SessionKey::parse(&key).ok())
            .collect();
        Ok((0, ids))
    }

    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        let _guard = self.locked();
        let existed = matches!(self.lookup(id), Some(Slot::Live(_)));
        self.entries.invalidate(id.as_str());
        Ok(existed)
    }
}
