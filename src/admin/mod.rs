//! Operations on sessions from outside a request: what `sessionctl` does,
//! available to apps too (an admin page, a "log out everywhere" button).
//!
//! Everything here goes through the [`Store`], so both tiers stay
//! consistent: writes are version-checked against the database, and cache
//! entries of changed or removed sessions are dropped or tombstoned.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::codec::{CookieCodec, CookiePayload, Keys};
use crate::config::{DEFAULT_MAX_SAVE_ATTEMPTS, DEFAULT_MAX_SIZE, SessionConfig};
use crate::error::{Error, Result};
use crate::id::{SessionId, SessionKey};
use crate::record::{self, Data, Record};

mod import;
mod line;

pub use import::Import;
pub use line::ExportLine;

use crate::store::{CacheLookup, DatabaseStats, Filter, ImportCounts, ScanCursor, StatsOptions, Store, UpdateOutcome};

/// Admin operations over a store, with the cookie keys when known.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Store,
    codec: Option<CookieCodec>,
    max_size: usize,
    max_save_attempts: u32,
}

/// What a user typed to name a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A session in the store.
    Stored(SessionKey),
    /// A cookie-only session, carried whole by the cookie that was given.
    CookieOnly(Record),
}

/// What each tier holds for one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The session id.
    pub id: SessionKey,
    /// The database row (expired or not); `None` when absent or there is no
    /// database tier.
    pub database: Option<Record>,
    /// What the cache holds.
    pub cache: CacheState,
}

/// The cache's side of an [`Inspection`].
#[derive(Debug, Clone, PartialEq)]
pub enum CacheState {
    /// No cache tier configured.
    NotConfigured,
    /// Nothing cached.
    Missing,
    /// A tombstone: deleted recently.
    Deleted,
    /// The cached record.
    Cached(Record),
    /// The cache could not be asked.
    Unreachable(String),
}

impl Inspection {
    /// The record the session is (the database's, else the cache's).
    pub fn record(&self) -> Option<&Record> {
        self.database.as_ref().or(match &self.cache {
            CacheState::Cached(record) => Some(record),
            _ => None,
        })
    }

    /// True when both tiers hold the session and the copies differ (a
    /// quick write not yet persisted, or a stale cache entry).
    pub fn tiers_disagree(&self) -> bool {
        matches!((&self.database, &self.cache), (Some(db), CacheState::Cached(cached)) if db != cached)
    }
}

/// Figures for `sessionctl stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// From the database.
    pub database: DatabaseStats,
    /// From the cache, when there is one.
    pub cache: Option<CacheCounts>,
}

/// How the cache's entries relate to the database's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheCounts {
    /// Live entries in the cache.
    pub cached: u64,
    /// Of those, how many are also in the database.
    pub in_both: u64,
}

/// A change made by `edit`.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Edit {
    /// Replace all the data with this object first.
    pub replace: Option<Data>,
    /// Then set these keys.
    pub set: Vec<(String, Value)>,
    /// Then remove these keys.
    pub unset: Vec<String>,
}

impl Edit {
    /// Replaces all the data first.
    pub fn with_replace(mut self, data: Data) -> Self {
        self.replace = Some(data);
        self
    }

    /// Then sets `key`.
    pub fn with_set(mut self, key: impl Into<String>, value: Value) -> Self {
        self.set.push((key.into(), value));
        self
    }

    /// Then removes `key`.
    pub fn with_unset(mut self, key: impl Into<String>) -> Self {
        self.unset.push(key.into());
        self
    }
}

/// What an import did.
pub type ImportReport = ImportCounts;

/// The first page of a listing by expiry past [`MAX_LIST_PAGE`] sessions.
const FIRST_LIST_PAGE: u32 = 500;
/// The largest page of a listing by expiry: each is a scan of the table (on
/// 10M rows 0.7–1 s here, and ~75 MB at its peak for 10,000 sessions).
const MAX_LIST_PAGE: u32 = 10_000;

/// Pages through sessions matching a filter, by expiry, in constant memory.
#[derive(Debug)]
pub struct Lister {
    store: Store,
    filter: Filter,
    now: DateTime<Utc>,
    cursor: Option<ScanCursor>,
    remaining: Option<u64>,
    page_size: u32,
    done: bool,
    /// Walk the primary key (export) rather than sort by expiry.
    by_id: bool,
}

impl Lister {
    /// The next page; empty once everything was listed.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn next_page(&mut self) -> Result<Vec<Record>> {
        if self.done {
            return Ok(Vec::new());
        }
        let want = self.remaining.map_or(self.page_size, |left| left.min(u64::from(self.page_size)) as u32);
        if want == 0 {
            self.done = true;
            return Ok(Vec::new());
        }
        let page = if self.by_id {
            let after = self.cursor.as_ref().map(|cursor| &cursor.id);
            self.store.scan_by_key(&self.filter, self.now, after, want).await?
        } else {
            self.store.scan(&self.filter, self.now, self.cursor.as_ref(), want).await?
        };
        if (page.len() as u32) < want {
            self.done = true;
        }
        if let Some(last) = page.last() {
            self.cursor = Some(ScanCursor::after(last));
        }
        if let Some(left) = self.remaining.as_mut() {
            *left -= page.len() as u64;
        }
        if !self.by_id {
            // Each page by expiry is a scan of the table: after a first
            // page as quick as `| head` wants, fewer and larger ones.
            self.page_size = self.page_size.saturating_mul(4).min(MAX_LIST_PAGE);
        }
        Ok(page)
    }
}

impl Admin {
    /// Admin operations over `store`; `keys` are needed only to read or
    /// mint cookies.
    /// The library's default limits apply (size, save attempts); an app
    /// builds its admin with [`Admin::for_app`] to share its own.
    pub fn new(store: Store, keys: Option<Keys>) -> Admin {
        Admin {
            store,
            codec: keys.map(CookieCodec::new),
            max_size: DEFAULT_MAX_SIZE,
            max_save_attempts: DEFAULT_MAX_SAVE_ATTEMPTS,
        }
    }

    /// Admin operations as the app's `config` sees sessions: its keys, its
    /// size limit (edits and imports) and its save attempts (regenerate).
    pub fn for_app(store: Store, config: &SessionConfig) -> Admin {
        Admin {
            store,
            codec: Some(config.codec().clone()),
            max_size: config.max_size,
            max_save_attempts: config.max_save_attempts.max(1),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads a session id, a stored key, or a whole cookie value (`sid=…`
    /// too, verified with the keys), and gives the key it is stored under.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] for input that is neither an id nor a cookie value,
    /// [`Error::InvalidInput`] for a cookie without keys to read it,
    /// [`Error::Cookie`] for a cookie that does not verify.
    pub fn resolve(&self, input: &str) -> Result<Target> {
        let input = input.trim();
        if let Ok(key) = SessionKey::from_id_or_key(input) {
            return Ok(Target::Stored(key));
        }
        let value = match input.split_once('=') {
            Some((name, value)) if !name.contains('.') => value,
            _ => input,
        };
        if !value.contains('.') {
            return Err(Error::InvalidId(format!(
                "{:?} is neither a session id, a stored key nor a cookie value",
                value.chars().take(40).collect::<String>()
            )));
        }
        let Some(codec) = &self.codec else {
            return Err(Error::InvalidInput(
                "this looks like a cookie; reading it needs the cookie keys (--secret-file or SESSIONCTL_SECRET)"
                    .into(),
            ));
        };
        // Verify the signature, but show an expired session anyway: that is
        // often what the person debugging wants to see.
        let far_past = DateTime::<Utc>::MIN_UTC;
        match codec.decode(value, far_past) {
            Ok(CookiePayload::Reference { id, .. }) => Ok(Target::Stored(SessionKey::of(&id))),
            Ok(CookiePayload::Inline(record)) => Ok(Target::CookieOnly(record)),
            Err(reason) => Err(Error::Cookie(reason)),
        }
    }

    /// What each tier holds for `id`; not found when no tier has it.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn inspect(&self, id: &SessionKey) -> Result<Inspection> {
        let database = if self.store.has_database() { self.store.stored(id).await? } else { None };
        let cache = match self.store.cached(id).await {
            None => CacheState::NotConfigured,
            Some(lookup) => match lookup {
                Ok(CacheLookup::Hit(record) | CacheLookup::Quick(record, _)) => CacheState::Cached(record),
                Ok(CacheLookup::Miss) => CacheState::Missing,
                Ok(CacheLookup::Deleted | CacheLookup::Moved) => CacheState::Deleted,
                Err(e) => CacheState::Unreachable(e.to_string()),
            },
        };
        let inspection = Inspection { id: id.clone(), database, cache };
        if inspection.record().is_none() {
            return Err(not_found(id));
        }
        Ok(inspection)
    }

    /// Sessions matching `filter`, by expiry, at most `limit`. A limit of
    /// up to 10,000 is listed in one query (one scan of the table, which
    /// has no index on expiry; SQLite splits it by id across cores), more
    /// in pages of 500, then 2,000, then 10,000 (each page is a scan).
    pub fn list(&self, filter: Filter, limit: Option<u64>) -> Lister {
        Lister {
            store: self.store.clone(),
            filter,
            now: record::now(),
            cursor: None,
            remaining: limit,
            page_size: limit.filter(|&n| n <= u64::from(MAX_LIST_PAGE)).map_or(FIRST_LIST_PAGE, |n| n.max(1) as u32),
            done: false,
            by_id: false,
        }
    }

    /// Sessions matching `filter` in id order, at most `limit`: a walk of
    /// the primary key in pages of 1,000, linear in the table (what export
    /// reads).
    pub fn export(&self, filter: Filter, limit: Option<u64>) -> Lister {
        Lister { page_size: 1000, by_id: true, ..self.list(filter, limit) }
    }

    /// Table-wide figures, and how the cache relates to the database. A
    /// table over ten samples large is estimated from a sample unless
    /// `options` asks for every row (see [`crate::store::stats`]);
    /// `progress` hears the share of the table read so far.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn stats(&self, options: StatsOptions, progress: &mut (dyn FnMut(f64) + Send)) -> Result<Stats> {
        let stats = self.store.database_stats(record::now(), options, progress).await?;
        let cache = match self.store.has_cache() {
            false => None,
            true => {
                let mut counts = CacheCounts::default();
                let mut cursor = 0;
                loop {
                    let (next, ids) = self.store.cached_keys(cursor, 1000).await?;
                    counts.cached += ids.len() as u64;
                    for chunk in ids.chunks(500) {
                        counts.in_both += self.store.existing(chunk).await?.len() as u64;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Some(counts)
            }
        };
        Ok(Stats { database: stats, cache })
    }

    /// Applies an edit with the version check; returns the new record, or
    /// `None` when the edit changes nothing (then nothing is written: no
    /// new version, no cache write).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist,
    /// [`Error::TooLarge`] or [`Error::InvalidInput`] for
    /// data the library would refuse, [`Error::Conflict`] when the session changed
    /// since it was read; the store's errors otherwise.
    pub async fn edit(&self, id: &SessionKey, edit: &Edit) -> Result<Option<Record>> {
        let current = self.current(id).await?;
        let mut next = current.clone();
        if let Some(replace) = &edit.replace {
            next.data = replace.clone();
        }
        for (key, value) in &edit.set {
            next.data.set(key.clone(), value.clone());
        }
        for key in &edit.unset {
            next.data.discard(key);
        }
        if next.data == current.data {
            return Ok(None);
        }
        record::check_writable(None, &next.data, self.max_size)?;
        next.version = record::next_version(id, current.version)?;
        next.updated_at = record::now();
        match self.store.update(&next, current.version).await? {
            UpdateOutcome::Updated => Ok(Some(next)),
            UpdateOutcome::Missing => Err(not_found(id)),
            UpdateOutcome::Conflict => Err(Error::Conflict { id: id.to_string(), attempts: 1 }),
        }
    }

    /// The stored record, expired or not.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist; the store's errors
    /// otherwise.
    pub async fn current(&self, id: &SessionKey) -> Result<Record> {
        self.inspect(id).await?.record().cloned().ok_or_else(|| not_found(id))
    }

    /// Expires sessions now; returns the ids that existed.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn expire(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        self.store.expire(ids, record::now()).await
    }

    /// Expires a user's live sessions now.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn expire_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        self.store.expire_by_user(user_id, record::now()).await
    }

    /// Deletes sessions in both tiers; returns the ids that existed.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn delete(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        let mut deleted = Vec::new();
        for id in ids {
            if self.store.delete(id).await? {
                deleted.push(id.clone());
            }
        }
        Ok(deleted)
    }

    /// A user's live sessions with their devices, most recently seen
    /// first, without their data.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<crate::store::SessionSummary>> {
        self.store.user_sessions(user_id, record::now()).await
    }

    /// The device recorded for a session (empty when the app does not
    /// track devices).
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn device(&self, id: &SessionKey) -> Result<crate::store::Device> {
        self.store.device(id).await
    }

    /// Which of these ids are stored.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn existing(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        self.store.existing(ids).await
    }

    /// How many sessions a user has.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn count_user(&self, user_id: &str) -> Result<u64> {
        let filter = Filter { user_id: Some(user_id.to_owned()), ..Filter::default() };
        self.store.count(&filter, record::now()).await
    }

    /// Deletes every session of a user; returns their ids.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn revoke(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        self.store.delete_by_user(user_id).await
    }

    /// Deletes every session of a user but `keep` ("log out other
    /// devices"); returns their ids.
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`],
    /// [`Error::Timeout`], [`Error::Config`] without a database
    /// tier).
    pub async fn revoke_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        self.store.delete_by_user_except(user_id, keep).await
    }

    /// Moves a session to a new id (same data and user), the old id removed
    /// from both tiers; returns the new id (for its cookie) and record.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the session does not exist,
    /// [`Error::Conflict`] when it kept changing over every attempt; the store's
    /// errors otherwise.
    pub async fn regenerate(&self, id: &SessionKey) -> Result<(SessionId, Record)> {
        for _ in 0..self.max_save_attempts {
            let current = self.current(id).await?;
            let mut next = current.clone();
            let (new_id, key) = SessionKey::generate();
            next.id = key;
            next.version = record::next_version(id, current.version)?;
            next.updated_at = record::now();
            match self.store.rotate(id, current.version, &next).await? {
                crate::store::RotateOutcome::Rotated => return Ok((new_id, next)),
                crate::store::RotateOutcome::Missing => return Err(not_found(id)),
                crate::store::RotateOutcome::Conflict | crate::store::RotateOutcome::IdTaken => continue,
            }
        }
        Err(Error::Conflict { id: id.to_string(), attempts: self.max_save_attempts })
    }

    /// Whether the cookie keys are known (to read cookies and mint them).
    pub fn has_keys(&self) -> bool {
        self.codec.is_some()
    }

    /// The cookie value for session `id` (not its stored key: a key gives
    /// no cookie), when the keys are known.
    pub fn cookie_for(&self, id: &SessionId, expires_at: DateTime<Utc>) -> Option<String> {
        self.codec.as_ref().map(|codec| codec.encode_reference(id, expires_at))
    }

    /// Parses and validates one line of an export, as the library would
    /// take the session: storable values, a version within 2^53, data
    /// within the size limit.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a line [`ExportLine::parse`] refuses, or data
    /// over the size limit.
    pub fn parse_line(&self, line: &str) -> Result<(Record, crate::store::Device)> {
        let (record, device) = ExportLine::parse_session(line)?;
        match record::check_writable(None, &record.data, self.max_size) {
            Err(Error::TooLarge { size, limit }) => Err(Error::InvalidInput(format!(
                "session {} has {size} bytes of data, over the limit of {limit} bytes",
                record.id
            ))),
            checked => checked.map(|_| (record, device)),
        }
    }

    /// The recorded devices of these sessions (those with none left out).
    ///
    /// # Errors
    ///
    /// Fails with the store's error ([`Error::Database`], [`Error::Timeout`]).
    pub async fn devices(&self, ids: &[SessionKey]) -> Result<Vec<(SessionKey, crate::store::Device)>> {
        self.store.devices(ids).await
    }

    /// Starts an import: records added are written in batches inside one
    /// database transaction, committed by [`Import::finish`]. Dropped
    /// unfinished, nothing is written. Existing sessions are kept, or
    /// overwritten with `replace`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a database tier; the database's error when the
    /// transaction cannot start.
    pub async fn begin_import(&self, replace: bool) -> Result<Import> {
        let writer = self.store.begin_import().await?;
        Ok(Import::new(self.store.clone(), writer, replace))
    }
}

fn not_found(id: &SessionKey) -> Error {
    Error::NotFound(format!("no session {id} (it may have expired and been purged, or been deleted)"))
}
