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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::codec::CookiePayload;
use crate::config::SessionConfig;
use crate::error::{Error, Result};
use crate::id::{SessionId, SessionKey};
use crate::record::{self, Data, Record};
use crate::store::{Lookup, SessionSummary, Store};

mod save;
mod state;

use state::{Candidates, Change, Origin, State};

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
#[non_exhaustive]
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

/// The store and the configuration, shared by every session a layer
/// hands out behind one reference count: a request's handle costs one
/// increment of a count every worker thread writes, not two.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) store: Store,
    pub(crate) config: Arc<SessionConfig>,
}

/// What the clones of one request's session share.
#[derive(Debug)]
struct Shared {
    /// Set by the first use (read or write, loaded or failing to): an
    /// untouched session is skipped after the handler without a lock.
    touched: AtomicBool,
    state: Mutex<State>,
    setup: Arc<Setup>,
}

/// A session, as one request sees it. Cheap to clone (one reference count
/// of the request's own); clones share state.
#[derive(Clone, Debug)]
pub struct Session {
    shared: Arc<Shared>,
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
        Session::with_state(Arc::new(Setup { store, config }), Candidates::Values(cookie_candidates))
    }

    /// The layer's handle: the request's `Cookie` headers, parsed on first
    /// use.
    #[cfg(feature = "axum")]
    pub(crate) fn with_cookie_headers<'a>(
        setup: Arc<Setup>,
        mut headers: impl Iterator<Item = &'a http::HeaderValue>,
    ) -> Session {
        let candidates = match headers.next() {
            None => Candidates::None,
            Some(first) => Candidates::Headers(first.clone(), headers.cloned().collect()),
        };
        Session::with_state(setup, candidates)
    }

    fn with_state(setup: Arc<Setup>, candidates: Candidates) -> Session {
        let shared = Shared { touched: AtomicBool::new(false), state: Mutex::new(State::new(candidates)), setup };
        Session { shared: Arc::new(shared) }
    }

    /// Tells the session who is asking (the client's address and user
    /// agent), for device tracking; the web layer does this for each
    /// request when [`SessionConfig::devices`] is set.
    pub fn with_client(self, client_ip: Option<String>, user_agent: Option<String>) -> Session {
        if let Ok(mut state) = self.shared.state.try_lock() {
            state.client = Some((client_ip, user_agent));
        }
        self
    }

    /// The configuration this session was made with.
    pub(crate) fn config(&self) -> &SessionConfig {
        &self.shared.setup.config
    }

    /// The store this session lives in.
    pub fn store(&self) -> &Store {
        &self.shared.setup.store
    }

    /// Loads the session on first use; later calls return at once.
    async fn loaded(&self) -> Result<tokio::sync::MutexGuard<'_, State>> {
        self.shared.touched.store(true, Ordering::Relaxed);
        let mut state = self.shared.state.lock().await;
        if state.loaded {
            return Ok(state);
        }
        let now = record::now();
        // Verify the cookie (signature, expiry) before any store I/O.
        let candidates = std::mem::take(&mut state.cookie.candidates);
        let cookie = &mut state.cookie;
        candidates.visit(&self.config().cookie.name, |value| {
            match self.config().codec().decode_with_rotation(value, now) {
                Ok((payload, old_key)) => {
                    cookie.payload = Some(payload);
                    cookie.resign = old_key;
                    cookie.stale = false;
                    true
                }
                Err(reason) => {
                    tracing::debug!(%reason, "ignoring session cookie");
                    cookie.stale = true;
                    false
                }
            }
        });
        match state.cookie.payload.clone() {
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
                Lookup::Missing => state.cookie.stale = true,
                Lookup::Moved => state.cookie.moved = true,
            },
        }
        state.loaded = true;
        if let Some(record) = state.record.as_mut()
            && self.config().needs_refresh(record.created_at, record.expires_at, now)
        {
            record.expires_at = self.config().expiry_for(record.created_at, now);
            state.pending.expiry_changed = true;
        }
        Ok(state)
    }

    /// Finds the session a cookie's id names: under its key, or, when an
    /// app of an older build still writes sessions under their id (a
    /// rolling deploy), moved there first.
    async fn lookup_id(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Lookup> {
        let key = SessionKey::of(id);
        match self.store().lookup(&key, now).await? {
            Lookup::Missing if self.store().move_id_to_key(id).await => self.store().lookup(&key, now).await,
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
                    expires_at: self.config().expiry_for(now, now),
                    version: 0,
                }
            }
        };
        state.record.insert(record)
    }

    /// Whether the handler used the session at all (without waiting for a
    /// lock): when not, there is nothing to save or vary on.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // the web layer's
    pub(crate) fn was_touched(&self) -> bool {
        self.shared.touched.load(Ordering::Relaxed)
    }

    /// Whether the session was loaded (read or written) during this
    /// request; the web layer adds `Vary: Cookie` to such responses.
    pub async fn is_loaded(&self) -> bool {
        self.shared.state.lock().await.loaded
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
    /// fails is bypassed), or [`Error::WrongType`] when the value is not a
    /// `T` (a value written by an earlier release of the app, say: match it
    /// to drop or convert the value rather than fail the request).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        // From the stored value itself, not a copy of it.
        let state = self.loaded().await?;
        let read = state.record.as_ref().and_then(|r| r.data.get_as(key));
        read.map(|value| value.map_err(|e| wrong_type(key, e))).transpose()
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
    /// fails is bypassed), [`Error::Unserializable`] for a value its type cannot
    /// serialize to JSON (a map keyed by tuples, say), [`Error::InvalidInput`] for
    /// one holding a NUL character.
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
    /// fails is bypassed), [`Error::Unserializable`] for a value its type cannot
    /// serialize to JSON (a map keyed by tuples, say), [`Error::InvalidInput`] for
    /// one holding a NUL character.
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
        self.record_mut(state).data.set(key.to_owned(), value.clone());
        state.pending.changes.insert(key.to_owned(), Change::Set(value));
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
        self.take_value(key, false).await
    }

    /// Removes a key and returns its value deserialized as `T`.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), or [`Error::WrongType`] when the value is not a
    /// `T`: it is then left in the session (a flash message of an earlier
    /// release, say), and [`remove`](Self::remove) drops it.
    pub async fn pop<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.take(key, false).await
    }

    /// [`pop`](Self::pop) as a quick (cache-only) change.
    ///
    /// # Errors
    ///
    /// Fails when the session must be loaded and the store cannot be read
    /// ([`Error::Database`], [`Error::Timeout`]; a cache that
    /// fails is bypassed), or [`Error::WrongType`] when the value is not a
    /// `T`: it is then left in the session (a flash message of an earlier
    /// release, say), and [`remove`](Self::remove) drops it.
    pub async fn pop_quick<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.take(key, true).await
    }

    /// Removes `key` and returns its value as `T`. A value that is not a
    /// `T` stays where it is: the caller's error must not cost the user it.
    async fn take<T: DeserializeOwned>(&self, key: &str, quick: bool) -> Result<Option<T>> {
        let mut state = self.loaded().await?;
        let Some(value) = state.record.as_ref().and_then(|record| record.data.get_as(key)) else { return Ok(None) };
        let value = value.map_err(|e| wrong_type(key, e))?;
        state.remove(key, quick);
        Ok(Some(value))
    }

    /// Removes `key` and returns its value as it is (moved out, not copied).
    async fn take_value(&self, key: &str, quick: bool) -> Result<Option<Value>> {
        Ok(self.loaded().await?.remove(key, quick))
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
        if record.data.is_empty() && state.pending.changes.is_empty() {
            return Ok(());
        }
        record.data.clear();
        state.pending.changes.clear();
        state.pending.cleared = true;
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
        state.pending.user_changed = true;
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
            (user_id, state.pending.rotate_from.clone().unwrap_or_else(|| record.id.clone()))
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
            (user_id, state.pending.rotate_from.clone().unwrap_or_else(|| record.id.clone()))
        };
        let sessions = self.store().user_sessions(&user_id, record::now()).await?;
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
        state.pending.expiry_changed = true;
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
            if state.pending.rotate_from.is_none() {
                state.pending.rotate_from = old;
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
        state.pending.terminated = true;
        Ok(())
    }
}

/// A stored value that is not the type asked for (often one written by an
/// earlier release of the app).
fn wrong_type(key: &str, error: serde_json::Error) -> Error {
    Error::WrongType { key: key.to_owned(), reason: error.to_string() }
}

/// A value the app's own type cannot serialize (a map keyed by tuples, a
/// poisoned lock, a `Serialize` that fails): the app's fault, not the
/// client's, so not [`Error::InvalidInput`].
fn to_value<T: Serialize>(key: &str, value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Unserializable { key: key.to_owned(), reason: e.to_string() })
}
