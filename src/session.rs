//! The per-request session handle.
//!
//! A [`Session`] is built from the request's cookie without any I/O: the
//! cookie is verified (signature, expiry) on the spot and nothing is loaded
//! until the handler first reads or writes. Every change is recorded twice:
//! applied to the in-memory data, and kept as a key-level change. The one
//! save after the handler writes only if something changed; when another
//! request saved the same session first (the version moved), the save reloads
//! the stored record, re-applies this request's key-level changes on top and
//! tries again, so concurrent changes to different keys both land and the
//! same key goes to the last writer. A session deleted meanwhile (logout,
//! revoke, purge) is never written back.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::codec::{CookieCodec, CookiePayload};
use crate::config::SessionConfig;
use crate::error::{Error, Result};
use crate::id::{SessionId, SessionKey};
use crate::record::{self, Data, Record};
use crate::store::{Lookup, Patch, PatchOutcome, RotateOutcome, SessionSummary, Store, UpdateOutcome};

/// What the response's cookie should do after a save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieUpdate {
    /// Leave the browser's cookie as it is (or send none).
    Keep,
    /// Set the cookie to this value.
    Set {
        /// The cookie value.
        value: String,
        /// The session's expiry, for `Max-Age` (omitted for browser-session
        /// cookies).
        expires_at: DateTime<Utc>,
    },
    /// Remove the cookie.
    Remove,
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveStatus {
    /// Nothing changed; nothing was written.
    Unchanged,
    /// Written to the store.
    Saved,
    /// Written into the cookie only (a cookie-only session).
    CookieOnly,
    /// The session was terminated and deleted.
    Terminated,
    /// The session had been deleted by someone else (logout elsewhere,
    /// revoke, purge); it was not written back.
    Gone,
}

/// The result of [`Session::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOutcome {
    /// What happened to the data.
    pub status: SaveStatus,
    /// What to do with the cookie.
    pub cookie: CookieUpdate,
}

impl SaveOutcome {
    fn new(status: SaveStatus, cookie: CookieUpdate) -> SaveOutcome {
        SaveOutcome { status, cookie }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Change {
    Set(Value),
    Remove,
}

/// Where the session was when this request found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// No session yet (or the cookie pointed at nothing).
    New,
    /// A stored session at this version.
    Stored { version: i64 },
    /// Carried whole in the cookie.
    Cookie,
}

struct State {
    /// The cookie values of our name the browser sent, verified on first
    /// use (so a request that never touches its session does not even pay
    /// for that); the first that verifies is the session's.
    cookie_candidates: Vec<String>,
    cookie: Option<CookiePayload>,
    loaded: bool,
    /// The session as this request sees it; `None` until something is stored.
    record: Option<Record>,
    /// The id the browser's cookie carries for `record` (stored under its
    /// key, `record.id`); `None` for a session read from a cookie-only
    /// cookie, which gets one when it moves into the store.
    id: Option<SessionId>,
    origin: Origin,
    /// Key-level changes, replayed onto a fresher copy after a conflict.
    changes: BTreeMap<String, Change>,
    cleared: bool,
    user_changed: bool,
    expiry_changed: bool,
    /// A normal change: written to every tier.
    dirty: bool,
    /// A quick change: written to the cache tier only (unless mixed with
    /// normal changes).
    quick_dirty: bool,
    /// Id rotation requested: the stored id this request started from.
    rotate_from: Option<SessionKey>,
    terminated: bool,
    /// The cookie the browser sent pointed at nothing usable.
    stale_cookie: bool,
    /// The cookie was signed with an older key: re-issue it under the
    /// current one once the session is used.
    resign: bool,
    /// The cookie's session was moved to a new id moments ago by another
    /// request (a login racing itself): this request must neither start a
    /// session in its place nor remove the cookie, or the browser would
    /// drop the session the other request just logged in.
    moved: bool,
    /// Keys that earlier quick writes changed in the cache only: a normal
    /// save of this request persists them too.
    unpersisted: Vec<String>,
    /// The client's address and user agent, for device tracking.
    client: Option<(Option<String>, Option<String>)>,
}

/// A session, as one request sees it. Cheap to clone; clones share state.
#[derive(Clone, Debug)]
pub struct Session {
    state: Arc<Mutex<State>>,
    store: Store,
    config: Arc<SessionConfig>,
}

impl Session {
    /// Builds the handle for a request from its cookie value, if any. The
    /// cookie is verified on first use, before any store I/O; an invalid,
    /// forged or expired one is treated as no cookie, and replaced if the
    /// handler writes.
    pub fn new(store: Store, config: Arc<SessionConfig>, cookie_value: Option<&str>) -> Session {
        Session::with_candidates(store, config, cookie_value.map(str::to_owned).into_iter().collect())
    }

    /// Like [`new`](Self::new), from every cookie of the session's name the
    /// request carried (a browser sends several when a sibling subdomain set
    /// one too): the first that verifies is used, so a tossed cookie cannot
    /// hide the real one.
    pub fn with_candidates(store: Store, config: Arc<SessionConfig>, cookie_candidates: Vec<String>) -> Session {
        Session {
            state: Arc::new(Mutex::new(State {
                cookie_candidates,
                cookie: None,
                loaded: false,
                record: None,
                id: None,
                origin: Origin::New,
                changes: BTreeMap::new(),
                cleared: false,
                user_changed: false,
                expiry_changed: false,
                dirty: false,
                quick_dirty: false,
                rotate_from: None,
                terminated: false,
                stale_cookie: false,
                resign: false,
                moved: false,
                unpersisted: Vec::new(),
                client: None,
            })),
            store,
            config,
        }
    }

    /// Tells the session who is asking (the client's address and user
    /// agent), for device tracking; the web layer does this for each
    /// request when [`SessionConfig::devices`] is set.
    pub fn with_client(self, client_ip: Option<String>, user_agent: Option<String>) -> Session {
        if let Ok(mut state) = self.state.try_lock() {
            state.client = Some((client_ip, user_agent));
        }
        self
    }

    /// The store this session lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Loads the session on first use; later calls return at once.
    async fn loaded(&self) -> Result<tokio::sync::MutexGuard<'_, State>> {
        let mut state = self.state.lock().await;
        if state.loaded {
            return Ok(state);
        }
        let now = record::now();
        // Verify the cookie (signature, expiry) before any store I/O.
        let candidates = std::mem::take(&mut state.cookie_candidates);
        for value in &candidates {
            match self.config.codec().decode_with_rotation(value, now) {
                Ok((payload, old_key)) => {
                    state.cookie = Some(payload);
                    state.resign = old_key;
                    state.stale_cookie = false;
                    break;
                }
                Err(reason) => {
                    tracing::debug!(%reason, "ignoring session cookie");
                    state.stale_cookie = true;
                }
            }
        }
        match state.cookie.clone() {
            None => {}
            Some(CookiePayload::Inline(record)) => {
                state.record = Some(record);
                state.origin = Origin::Cookie;
            }
            Some(CookiePayload::Reference { id, .. }) => match self.lookup_id(&id, now).await? {
                Lookup::Found(record, quick) => {
                    state.origin = Origin::Stored { version: record.version };
                    state.record = Some(record);
                    state.id = Some(id);
                    state.unpersisted = quick;
                }
                Lookup::Missing => state.stale_cookie = true,
                Lookup::Moved => state.moved = true,
            },
        }
        state.loaded = true;
        if let Some(record) = state.record.as_mut()
            && self.config.needs_refresh(record.created_at, record.expires_at, now)
        {
            record.expires_at = self.config.expiry_for(record.created_at, now);
            state.expiry_changed = true;
        }
        Ok(state)
    }

    /// Finds the session a cookie's id names: under its key, or, when an
    /// app of an older build still writes sessions under their id (a
    /// rolling deploy), moved there first.
    async fn lookup_id(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Lookup> {
        let key = SessionKey::of(id);
        match self.store.lookup(&key, now).await? {
            Lookup::Missing if self.store.move_id_to_key(id).await => self.store.lookup(&key, now).await,
            found => Ok(found),
        }
    }

    /// The record to change, created in memory on the first write.
    fn record_mut<'a>(&self, state: &'a mut State) -> &'a mut Record {
        let record = match state.record.take() {
            Some(record) => record,
            None => {
                let now = record::now();
                Record {
                    id: state.new_id(),
                    user_id: None,
                    data: Data::new(),
                    created_at: now,
                    updated_at: now,
                    expires_at: self.config.expiry_for(now, now),
                    version: 0,
                }
            }
        };
        state.record.insert(record)
    }

    /// Whether the session was loaded (read or written) during this
    /// request; the web layer adds `Vary: Cookie` to such responses.
    pub async fn is_loaded(&self) -> bool {
        self.state.lock().await.loaded
    }

    /// The session id, as the cookie carries it, if the session exists
    /// (loads it). `None` also for a session carried whole in its cookie,
    /// until it is saved into the store.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn id(&self) -> Result<Option<SessionId>> {
        let state = self.loaded().await?;
        Ok(state.record.as_ref().and(state.id.clone()))
    }

    /// The key the session is stored under (a digest of its id, what
    /// `sessionctl` and the tiers show), if the session exists (loads it).
    ///
    /// # Errors
    ///
    /// As [`id`](Self::id).
    pub async fn key(&self) -> Result<Option<SessionKey>> {
        Ok(self.loaded().await?.record.as_ref().map(|r| r.id.clone()))
    }

    /// A value, deserialized as `T`. `Ok(None)` when absent; an error when
    /// present but not a `T`.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), or [`Error::Config`] when the value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_value(key).await?.map(|value| from_value(key, value)).transpose()
    }

    /// A value as JSON.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.loaded().await?.record.as_ref().and_then(|r| r.data.get(key).cloned()))
    }

    /// Whether the key is present.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn contains(&self, key: &str) -> Result<bool> {
        Ok(self.loaded().await?.record.as_ref().is_some_and(|r| r.data.contains_key(key)))
    }

    /// The keys present, sorted.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn keys(&self) -> Result<Vec<String>> {
        Ok(self.loaded().await?.record.as_ref().map(|r| r.data.keys().cloned().collect()).unwrap_or_default())
    }

    /// A copy of all the data.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn data(&self) -> Result<Data> {
        Ok(self.loaded().await?.record.as_ref().map(|r| r.data.clone()).unwrap_or_default())
    }

    /// Stores a value; the session starts existing with its first write.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), [`Error::Config`] for a value that does not serialize to
    /// JSON, [`Error::InvalidInput`] for one holding a NUL character.
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        self.set(key, to_value(key, value)?, false).await
    }

    /// Stores a value in the cache tier only (a "quick" write, gae-sessions'
    /// `set_quick`): cheap, but lost if the cache entry is evicted before a
    /// normal write persists it. A request mixing quick and normal changes
    /// persists everything to both tiers.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), [`Error::Config`] for a value that does not serialize to
    /// JSON, [`Error::InvalidInput`] for one holding a NUL character.
    pub async fn insert_quick<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        self.set(key, to_value(key, value)?, true).await
    }

    async fn set(&self, key: &str, value: Value, quick: bool) -> Result<()> {
        record::check_storable_str("session key", key)?;
        record::check_storable(&format!("session value {key:?}"), &value)?;
        let mut state = self.loaded().await?;
        let state = &mut *state;
        if state.record.as_ref().and_then(|r| r.data.get(key)) == Some(&value) {
            return Ok(());
        }
        self.record_mut(state).data.insert(key.to_owned(), value.clone());
        state.changes.insert(key.to_owned(), Change::Set(value));
        state.mark(quick);
        Ok(())
    }

    /// Removes a key, returning its value.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn remove(&self, key: &str) -> Result<Option<Value>> {
        self.take(key, false).await
    }

    /// Removes a key and returns its value deserialized as `T`.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), or [`Error::Config`] when the value is not a `T`.
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.take(key, false).await?.map(|value| from_value(key, value)).transpose()
    }

    /// [`pop`](Self::pop) as a quick (cache-only) change.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), or [`Error::Config`] when the value is not a `T`.
    pub async fn pop_quick<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.take(key, true).await?.map(|value| from_value(key, value)).transpose()
    }

    async fn take(&self, key: &str, quick: bool) -> Result<Option<Value>> {
        let mut state = self.loaded().await?;
        let state = &mut *state;
        let Some(value) = state.record.as_mut().and_then(|r| r.data.remove(key)) else {
            return Ok(None);
        };
        state.changes.insert(key.to_owned(), Change::Remove);
        state.mark(quick);
        Ok(Some(value))
    }

    /// Removes every key (the session itself stays; see
    /// [`terminate`](Self::terminate)).
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn clear(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        let state = &mut *state;
        let Some(record) = state.record.as_mut() else {
            return Ok(());
        };
        if record.data.is_empty() && state.changes.is_empty() {
            return Ok(());
        }
        record.data.clear();
        state.changes.clear();
        state.cleared = true;
        state.mark(false);
        Ok(())
    }

    /// The user this session belongs to.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn user_id(&self) -> Result<Option<String>> {
        Ok(self.loaded().await?.record.as_ref().and_then(|r| r.user_id.clone()))
    }

    /// Ties the session to a user (or unties it with `None`). Sessions with
    /// a user are always stored server-side, so they can be listed and
    /// revoked. Call [`regenerate_id`](Self::regenerate_id) at login too.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), [`Error::InvalidInput`] for a user id holding a NUL
    /// character.
    pub async fn set_user_id(&self, user_id: Option<String>) -> Result<()> {
        if let Some(user_id) = &user_id {
            record::check_storable_str("user id", user_id)?;
        }
        let mut state = self.loaded().await?;
        let state = &mut *state;
        if state.record.as_ref().map(|r| &r.user_id) == Some(&user_id) || (state.record.is_none() && user_id.is_none())
        {
            return Ok(());
        }
        self.record_mut(state).user_id = user_id;
        state.user_changed = true;
        state.mark(false);
        Ok(())
    }

    /// Revokes every other session of this session's user, in every tier,
    /// now rather than at save ("log out my other devices"); returns how
    /// many went. The session itself is kept (under the id it is stored
    /// at, should it also be moving to a new one). One statement deletes
    /// them, so a session the user creates meanwhile on another device is
    /// either revoked or kept whole. A session without a user revokes
    /// nothing.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed); the database tier's error when the other sessions cannot be deleted.
    pub async fn revoke_other_sessions(&self) -> Result<usize> {
        let (user_id, keep) = {
            let state = self.loaded().await?;
            let Some(record) = state.record.as_ref() else { return Ok(0) };
            let Some(user_id) = record.user_id.clone() else { return Ok(0) };
            (user_id, state.rotate_from.clone().unwrap_or_else(|| record.id.clone()))
        };
        Ok(self.store().delete_by_user_except(&user_id, &keep).await?.len())
    }

    /// The live sessions of this session's user, most recently written
    /// first, without their data (an "active sessions" page), each with
    /// whether it is this one; empty for a session without a user.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed); the database tier's error when the list cannot be read.
    pub async fn user_sessions(&self) -> Result<Vec<(SessionSummary, bool)>> {
        let (user_id, current) = {
            let state = self.loaded().await?;
            let Some(record) = state.record.as_ref() else { return Ok(Vec::new()) };
            let Some(user_id) = record.user_id.clone() else { return Ok(Vec::new()) };
            (user_id, state.rotate_from.clone().unwrap_or_else(|| record.id.clone()))
        };
        let sessions = self.store.user_sessions(&user_id, record::now()).await?;
        Ok(sessions
            .into_iter()
            .map(|summary| {
                let here = summary.id == current;
                (summary, here)
            })
            .collect())
    }

    /// When the session expires, if it exists.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn expires_at(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self.loaded().await?.record.as_ref().map(|r| r.expires_at))
    }

    /// Sets the session's absolute expiry (e.g. "remember me" for 30 days).
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn set_expires_at(&self, expires_at: DateTime<Utc>) -> Result<()> {
        let mut state = self.loaded().await?;
        let state = &mut *state;
        let expires_at = record::truncate_millis(expires_at);
        self.record_mut(state).expires_at = expires_at;
        state.expiry_changed = true;
        state.mark(false);
        Ok(())
    }

    /// Moves the session to a fresh id at save time, deleting the old one in
    /// every tier. Call it at login, against session fixation.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn regenerate_id(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        let state = &mut *state;
        if let Origin::Stored { .. } = state.origin {
            let old = state.record.as_ref().map(|r| r.id.clone());
            if state.rotate_from.is_none() {
                state.rotate_from = old;
            }
        }
        self.record_mut(state);
        let key = state.new_id();
        if let Some(record) = state.record.as_mut() {
            record.id = key;
        }
        state.mark(false);
        Ok(())
    }

    /// Ends the session: deleted from every tier at save, cookie removed.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed).
    pub async fn terminate(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        state.terminated = true;
        Ok(())
    }

    /// Writes what changed, once. Call after the handler; calling again
    /// without new changes writes nothing. With device tracking, a stored
    /// session this request used records its device (throttled).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the data is over the size limit,
    /// [`Error::Conflict`] when other writers kept changing the session over every
    /// attempt, and the store's errors ([`Error::Database`],
    /// [`Error::Timeout`]); nothing of this request's changes is kept then.
    pub async fn save(&self) -> Result<SaveOutcome> {
        let outcome = self.save_changes().await?;
        if let Some(tracking) = &self.config.devices {
            self.record_device(tracking.throttle).await;
        }
        Ok(outcome)
    }

    /// Records the device behind a stored session this request loaded; a
    /// failure is logged, never the request's.
    async fn record_device(&self, throttle: std::time::Duration) {
        let (id, client) = {
            let state = self.state.lock().await;
            let stored = matches!(state.origin, Origin::Stored { .. }) && state.loaded && !state.terminated;
            match (&state.record, &state.client) {
                (Some(record), Some(client)) if stored => (record.id.clone(), client.clone()),
                _ => return,
            }
        };
        let device = crate::store::Device::seen(record::now(), client.0, client.1);
        if let Err(error) = self.store.record_device(&id, device, throttle).await {
            tracing::warn!(%error, "could not record the session's device");
        }
    }

    async fn save_changes(&self) -> Result<SaveOutcome> {
        let mut state = self.state.lock().await;
        let state = &mut *state;
        if !state.loaded {
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, CookieUpdate::Keep));
        }
        if state.terminated {
            return self.save_terminated(state).await;
        }
        if state.moved {
            // Another request moved this session to a new id and sent the
            // browser the new cookie: writing here would start an empty
            // session whose cookie could replace it.
            let status = if state.record.is_some() { SaveStatus::Gone } else { SaveStatus::Unchanged };
            state.reset_to_empty();
            return Ok(SaveOutcome::new(status, CookieUpdate::Keep));
        }
        let Some(record) = state.record.as_ref() else {
            let cookie = if state.stale_cookie { CookieUpdate::Remove } else { CookieUpdate::Keep };
            state.stale_cookie = false;
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, cookie));
        };
        let now = record::now();
        if record.is_expired_at(now) {
            return self.save_gone(state).await;
        }
        if !(state.dirty || state.quick_dirty || state.expiry_changed) {
            // Nothing to write; a cookie signed with a retired key is still
            // re-issued under the current one (no store I/O).
            let cookie = match (state.resign, state.origin) {
                (true, Origin::Stored { .. }) => self.reference_cookie(state.id.as_ref(), record),
                (true, Origin::Cookie) => CookieUpdate::Set {
                    value: self.config.codec().encode_inline(record),
                    expires_at: record.expires_at,
                },
                _ => CookieUpdate::Keep,
            };
            state.resign = false;
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, cookie));
        }
        let data_size = record::encode_data(&record.data).len();
        if data_size > self.config.max_size {
            return Err(Error::TooLarge { size: data_size, limit: self.config.max_size });
        }
        let new_user = if state.user_changed { record.user_id.clone() } else { None };
        let outcome = if self.fits_cookie(record) {
            self.save_in_cookie(state, now).await?
        } else {
            self.save_stored(state, now).await?
        };
        if let (Some(user_id), Some(limit), Some(saved)) = (
            new_user,
            self.config.max_sessions_per_user,
            state.record.as_ref().filter(|_| outcome.status == SaveStatus::Saved),
        ) {
            // The login is saved whatever happens here; a limit not applied
            // now is applied by the user's next login.
            if let Err(error) = self.store.limit_user_sessions(&user_id, &saved.id, limit).await {
                tracing::warn!(%error, "could not apply the per-user session limit");
            }
        }
        Ok(outcome)
    }

    fn fits_cookie(&self, record: &Record) -> bool {
        let threshold = self.config.cookie_only_threshold;
        threshold > 0
            && record.user_id.is_none()
            && CookieCodec::inline_len(record.to_envelope().len(), record.expires_at) <= threshold
    }

    async fn save_terminated(&self, state: &mut State) -> Result<SaveOutcome> {
        if let Some(old) = state.rotate_from.take() {
            self.store.delete(&old).await?;
        }
        if let (Origin::Stored { .. }, Some(record)) = (state.origin, state.record.as_ref()) {
            self.store.delete(&record.id).await?;
        }
        let had_cookie = state.cookie.is_some() || state.stale_cookie;
        state.reset_to_empty();
        state.terminated = false;
        Ok(SaveOutcome::new(SaveStatus::Terminated, if had_cookie { CookieUpdate::Remove } else { CookieUpdate::Keep }))
    }

    async fn save_gone(&self, state: &mut State) -> Result<SaveOutcome> {
        if let Origin::Stored { .. } = state.origin
            && let Some(record) = state.record.as_ref()
        {
            // Expired under us: make sure no copy lingers in any tier.
            self.store.delete(&record.id).await?;
        }
        state.reset_to_empty();
        Ok(SaveOutcome::new(SaveStatus::Gone, CookieUpdate::Remove))
    }

    async fn save_in_cookie(&self, state: &mut State, now: DateTime<Utc>) -> Result<SaveOutcome> {
        // Moving from the store into the cookie: the stored copy goes.
        if let Some(old) = state.rotate_from.take() {
            self.store.delete(&old).await?;
        }
        if let Origin::Stored { .. } = state.origin
            && let Some(record) = state.record.as_ref()
        {
            self.store.delete(&record.id).await?;
        }
        // Carried whole in the cookie now: it has no id of its own (a
        // later move back into the store gives it a fresh one).
        state.id = None;
        let record = state.record.as_mut().expect("checked by save");
        record.updated_at = now;
        record.version += 1;
        let value = self.config.codec().encode_inline(record);
        let expires_at = record.expires_at;
        state.origin = Origin::Cookie;
        state.mark_saved();
        Ok(SaveOutcome::new(SaveStatus::CookieOnly, CookieUpdate::Set { value, expires_at }))
    }

    async fn save_stored(&self, state: &mut State, now: DateTime<Utc>) -> Result<SaveOutcome> {
        let Origin::Stored { version } = state.origin else {
            return self.save_new(state, now).await;
        };
        if state.cleared || state.rotate_from.is_some() {
            return self.save_whole(state, now, version).await;
        }
        // Key-level changes only: applied inside the store, atomically, so
        // a concurrent request's changes to other keys stay.
        let quick_only = !state.dirty && !state.expiry_changed;
        let patch = state.patch(now, !quick_only);
        let base = state.record.as_ref().expect("checked by save");
        if quick_only
            && self.store.has_quick_writes()
            && let PatchOutcome::Patched(fresh) = self.store.write_quick(base, &patch).await?
        {
            // No live cache entry to change (evicted, or the cache failed):
            // fall through and save normally, so nothing is lost.
            let mut unpersisted = std::mem::take(&mut state.unpersisted);
            unpersisted.extend(patch.set.keys().chain(&patch.removed).cloned());
            let outcome = self.saved(state, fresh, false);
            state.unpersisted = unpersisted;
            return Ok(outcome);
        }
        let base = state.record.as_ref().expect("checked by save");
        match self.store.patch(base, &patch).await? {
            PatchOutcome::Patched(fresh) => Ok(self.saved(state, fresh, state.expiry_changed)),
            PatchOutcome::Missing => Ok(self.gone(state)),
        }
    }

    /// After a successful store write: adopt what the store now holds.
    fn saved(&self, state: &mut State, fresh: Record, expiry_changed: bool) -> SaveOutcome {
        let cookie = if expiry_changed || state.resign {
            self.reference_cookie(state.id.as_ref(), &fresh)
        } else {
            CookieUpdate::Keep
        };
        state.origin = Origin::Stored { version: fresh.version };
        state.record = Some(fresh);
        state.rotate_from = None;
        state.mark_saved();
        SaveOutcome::new(SaveStatus::Saved, cookie)
    }

    /// The session was deleted or moved by someone else meanwhile: nothing
    /// is written back, and the cookie is left alone (a login that moved
    /// the session may just have sent the browser its new cookie; only
    /// [`terminate`](Self::terminate) removes it).
    fn gone(&self, state: &mut State) -> SaveOutcome {
        state.reset_to_empty();
        SaveOutcome::new(SaveStatus::Gone, CookieUpdate::Keep)
    }

    /// Whole-session writes (clear, id rotation): version-checked; after a
    /// conflict the stored record is reloaded and this request's changes
    /// are replayed on it.
    async fn save_whole(&self, state: &mut State, now: DateTime<Utc>, version: i64) -> Result<SaveOutcome> {
        let mut expected = version;
        let mut conflicts = 0u32;
        for _ in 0..self.config.max_save_attempts {
            let record = state.record.as_mut().expect("checked by save");
            record.updated_at = now;
            record.version = record::next_version(&record.id, expected)?;
            let result = match state.rotate_from.clone() {
                Some(old) => match self.store.rotate(&old, expected, record).await? {
                    RotateOutcome::Rotated => Ok(()),
                    RotateOutcome::Conflict => Err(UpdateOutcome::Conflict),
                    RotateOutcome::Missing => Err(UpdateOutcome::Missing),
                    RotateOutcome::IdTaken => {
                        let (id, key) = SessionKey::generate();
                        state.id = Some(id);
                        record.id = key;
                        continue;
                    }
                },
                None => self.store.update(record, expected).await?.into_result(),
            };
            match result {
                Ok(()) => {
                    let fresh = record.clone();
                    let rotated = state.rotate_from.is_some();
                    return Ok(self.saved(state, fresh, rotated || state.expiry_changed));
                }
                Err(UpdateOutcome::Missing) => return Ok(self.gone(state)),
                Err(_) => {
                    conflicts += 1;
                    backoff(conflicts).await;
                    let stored_id = state.rotate_from.clone().unwrap_or_else(|| record.id.clone());
                    match self.store.load_fresh(&stored_id, now).await? {
                        None => return Ok(self.gone(state)),
                        Some(fresh) => {
                            expected = fresh.version;
                            state.rebase(fresh);
                        }
                    }
                }
            }
        }
        let id = state.record.as_ref().map(|r| r.id.to_string()).unwrap_or_default();
        Err(Error::Conflict { id, attempts: self.config.max_save_attempts })
    }

    async fn save_new(&self, state: &mut State, now: DateTime<Utc>) -> Result<SaveOutcome> {
        if state.id.is_none() {
            // A cookie-only session moving into the store: it was never
            // stored, so it can take a new id its cookie will carry.
            let key = state.new_id();
            if let Some(record) = state.record.as_mut() {
                record.id = key;
            }
        }
        let record = state.record.as_mut().expect("checked by save");
        record.updated_at = now;
        record.version = 1;
        // Insert-if-absent: a colliding id (astronomically unlikely with
        // 144 random bits) gets a fresh id instead of overwriting.
        for _ in 0..self.config.max_save_attempts {
            if self.store.create(record).await? {
                let cookie = self.reference_cookie(state.id.as_ref(), record);
                state.origin = Origin::Stored { version: record.version };
                state.rotate_from = None;
                state.mark_saved();
                return Ok(SaveOutcome::new(SaveStatus::Saved, cookie));
            }
            let (id, key) = SessionKey::generate();
            state.id = Some(id);
            record.id = key;
        }
        Err(Error::Conflict { id: record.id.to_string(), attempts: self.config.max_save_attempts })
    }

    /// The cookie that points at the stored `record`, whose id is `id`.
    fn reference_cookie(&self, id: Option<&SessionId>, record: &Record) -> CookieUpdate {
        match id {
            Some(id) => CookieUpdate::Set {
                value: self.config.codec().encode_reference(id, record.expires_at),
                expires_at: record.expires_at,
            },
            // Every stored session this request holds came from a cookie or
            // was given an id here; keep whatever cookie there is.
            None => CookieUpdate::Keep,
        }
    }
}

/// A short random pause before retrying after the `n`-th conflict, growing
/// with `n`, so writers racing on one session spread out instead of
/// colliding again in lockstep.
async fn backoff(n: u32) {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    // Full jitter over a window that doubles: 0.5 ms, 1 ms, … up to 32 ms.
    let window_micros = 500u64 << n.clamp(1, 7).saturating_sub(1);
    let micros = u64::from(u32::from_le_bytes(bytes)) % window_micros;
    tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
}

/// A stored value as `T`; a clear error when it holds something else.
fn from_value<T: DeserializeOwned>(key: &str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Config(format!("session value {key:?} has another type: {e}")))
}

fn to_value<T: Serialize>(key: &str, value: T) -> Result<Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::Config(format!("session value {key:?} cannot be stored as JSON: {e}")))
}

impl UpdateOutcome {
    fn into_result(self) -> Result<(), UpdateOutcome> {
        match self {
            UpdateOutcome::Updated => Ok(()),
            other => Err(other),
        }
    }
}

/// Leaves out what would let a log line be replayed as the cookie: the
/// cookie values, the verified payload and the id.
impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("key", &self.record.as_ref().map(|record| &record.id))
            .field("loaded", &self.loaded)
            .field("origin", &self.origin)
            .field("dirty", &self.dirty)
            .field("quick_dirty", &self.quick_dirty)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

impl State {
    fn mark(&mut self, quick: bool) {
        if quick {
            self.quick_dirty = true;
        } else {
            self.dirty = true;
        }
    }

    fn mark_saved(&mut self) {
        self.resign = false;
        self.unpersisted.clear();
        self.changes.clear();
        self.cleared = false;
        self.user_changed = false;
        self.expiry_changed = false;
        self.dirty = false;
        self.quick_dirty = false;
        self.stale_cookie = false;
    }

    /// This request's key-level changes as a store patch; with
    /// `persist_quick`, also the keys earlier quick writes left in the cache
    /// only, as this request sees them.
    fn patch(&self, now: DateTime<Utc>, persist_quick: bool) -> Patch {
        let mut patch = Patch::new(now);
        for (key, change) in &self.changes {
            patch = match change {
                Change::Set(value) => patch.with_set(key.clone(), value.clone()),
                Change::Remove => patch.with_removed(key.clone()),
            };
        }
        if let Some(record) = &self.record {
            if persist_quick {
                for key in self.unpersisted.iter().filter(|key| !self.changes.contains_key(*key)) {
                    patch = match record.data.get(key) {
                        Some(value) => patch.with_set(key.clone(), value.clone()),
                        None => patch.with_removed(key.clone()),
                    };
                }
            }
            if self.user_changed {
                patch = patch.with_user_id(record.user_id.clone());
            }
            if self.expiry_changed {
                patch = patch.with_expires_at(record.expires_at);
            }
        }
        patch
    }

    fn reset_to_empty(&mut self) {
        self.record = None;
        self.id = None;
        self.origin = Origin::New;
        self.rotate_from = None;
        self.mark_saved();
    }

    /// A fresh id for the session: kept for its cookie; the key it is
    /// stored under is returned.
    fn new_id(&mut self) -> SessionKey {
        let (id, key) = SessionKey::generate();
        self.id = Some(id);
        key
    }

    /// Replays this request's changes onto a fresher stored copy.
    fn rebase(&mut self, fresh: Record) {
        let Some(mine) = self.record.as_mut() else { return };
        let mut data = if self.cleared { Data::new() } else { fresh.data };
        for (key, change) in &self.changes {
            match change {
                Change::Set(value) => {
                    data.insert(key.clone(), value.clone());
                }
                Change::Remove => {
                    data.remove(key);
                }
            }
        }
        mine.data = data;
        if !self.user_changed {
            mine.user_id = fresh.user_id;
        }
        if !self.expiry_changed {
            mine.expires_at = fresh.expires_at;
        }
        mine.created_at = fresh.created_at;
        mine.version = fresh.version;
    }
}
