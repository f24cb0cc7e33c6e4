//! The one save at the end of a request: what it writes, to which tier,
//! and how it settles a conflict, from the [`State`] the request left.

use chrono::{DateTime, Utc};

use super::state::{Origin, State};
use super::{CookieUpdate, SaveOutcome, SaveStatus, Session};
use crate::codec::CookieCodec;
use crate::error::{Error, Result};
use crate::id::{SessionId, SessionKey};
use crate::record::{self, Record};
use crate::store::{PatchOutcome, RotateOutcome, UpdateOutcome};

impl Session {
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
    /// [`Error::Interrupted`] when its changes were combined into another
    /// request's write that never ended (that task died, or the runtime shut
    /// down): whether they landed is not known.
    pub async fn save(&self) -> Result<SaveOutcome> {
        let outcome = self.save_changes().await?;
        if let Some(tracking) = &self.config().devices {
            self.record_device(tracking.throttle).await;
        }
        Ok(outcome)
    }

    /// Records the device behind a stored session this request loaded; a
    /// failure is logged, never the request's.
    async fn record_device(&self, throttle: std::time::Duration) {
        let (id, client) = {
            let state = self.shared.state.lock().await;
            let stored = matches!(state.origin, Origin::Stored { .. }) && state.loaded && !state.pending.terminated;
            match (&state.record, &state.client) {
                (Some(record), Some(client)) if stored => (record.id.clone(), client.clone()),
                _ => return,
            }
        };
        let device = crate::store::Device::seen(record::now(), client.0, client.1);
        if let Err(error) = self.store().record_device(&id, device, throttle).await {
            tracing::warn!(%error, "could not record the session's device");
        }
    }

    /// Without waiting: `Some(loaded)` when [`save`](Self::save) would do
    /// nothing (no I/O, `Unchanged` and the cookie kept) — a session only
    /// read, or used and left empty — so the web layer answers at once;
    /// `None` when a save is needed (or the state is busy). The conditions
    /// are `save_changes`' own early returns.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))] // the web layer's
    pub(crate) fn needs_no_save(&self) -> Option<bool> {
        let state = self.shared.state.try_lock().ok()?;
        if !state.loaded {
            return Some(false);
        }
        if state.pending.terminated || state.cookie.moved || state.cookie.resign || self.config().devices.is_some() {
            return None;
        }
        let quiet = match &state.record {
            None => !state.cookie.stale,
            Some(record) => !state.pending.has_writes() && !record.is_expired_at(record::now()),
        };
        quiet.then_some(true)
    }

    async fn save_changes(&self) -> Result<SaveOutcome> {
        let mut state = self.shared.state.lock().await;
        let state = &mut *state;
        if !state.loaded {
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, CookieUpdate::Keep));
        }
        if state.pending.terminated {
            return self.save_terminated(state).await;
        }
        if state.cookie.moved {
            // Another request moved this session to a new id and sent the
            // browser the new cookie: writing here would start an empty
            // session whose cookie could replace it.
            let status = if state.record.is_some() { SaveStatus::Gone } else { SaveStatus::Unchanged };
            state.reset_to_empty();
            return Ok(SaveOutcome::new(status, CookieUpdate::Keep));
        }
        let Some(record) = state.record.as_ref() else {
            let cookie = if state.cookie.stale { CookieUpdate::Remove } else { CookieUpdate::Keep };
            state.cookie.stale = false;
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, cookie));
        };
        let now = record::now();
        if record.is_expired_at(now) {
            return self.save_gone(state).await;
        }
        if !state.pending.has_writes() {
            // Nothing to write; a cookie signed with a retired key is still
            // re-issued under the current one (no store I/O).
            let cookie = match (state.cookie.resign, state.origin) {
                (true, Origin::Stored { .. }) => self.reference_cookie(state.id.as_ref(), record),
                (true, Origin::Cookie) => CookieUpdate::Set {
                    value: self.config().codec().encode_inline(record),
                    expires_at: record.expires_at,
                },
                _ => CookieUpdate::Keep,
            };
            state.cookie.resign = false;
            return Ok(SaveOutcome::new(SaveStatus::Unchanged, cookie));
        }
        let data_size = record::encode_data(&record.data).len();
        if data_size > self.config().max_size {
            return Err(Error::TooLarge { size: data_size, limit: self.config().max_size });
        }
        let new_user = if state.pending.user_changed { record.user_id.clone() } else { None };
        let outcome = if self.fits_cookie(record) {
            self.save_in_cookie(state, now).await?
        } else {
            self.save_stored(state, now).await?
        };
        if let (Some(user_id), Some(limit), Some(saved)) = (
            new_user,
            self.config().max_sessions_per_user,
            state.record.as_ref().filter(|_| outcome.status == SaveStatus::Saved),
        ) {
            // The login is saved whatever happens here; a limit not applied
            // now is applied by the user's next login.
            if let Err(error) = self.store().limit_user_sessions(&user_id, &saved.id, limit).await {
                tracing::warn!(%error, "could not apply the per-user session limit");
            }
        }
        Ok(outcome)
    }

    fn fits_cookie(&self, record: &Record) -> bool {
        let threshold = self.config().cookie_only_threshold;
        threshold > 0
            && record.user_id.is_none()
            && CookieCodec::inline_len(record.to_envelope().len(), record.expires_at) <= threshold
    }

    async fn save_terminated(&self, state: &mut State) -> Result<SaveOutcome> {
        if let Some(old) = state.pending.rotate_from.take() {
            self.store().delete(&old).await?;
        }
        if let (Origin::Stored { .. }, Some(record)) = (state.origin, state.record.as_ref()) {
            self.store().delete(&record.id).await?;
        }
        let had_cookie = state.cookie.payload.is_some() || state.cookie.stale;
        state.reset_to_empty();
        state.pending.terminated = false;
        Ok(SaveOutcome::new(SaveStatus::Terminated, if had_cookie { CookieUpdate::Remove } else { CookieUpdate::Keep }))
    }

    async fn save_gone(&self, state: &mut State) -> Result<SaveOutcome> {
        if let Origin::Stored { .. } = state.origin
            && let Some(record) = state.record.as_ref()
        {
            // Expired under us: make sure no copy lingers in any tier.
            self.store().delete(&record.id).await?;
        }
        state.reset_to_empty();
        Ok(SaveOutcome::new(SaveStatus::Gone, CookieUpdate::Remove))
    }

    async fn save_in_cookie(&self, state: &mut State, now: DateTime<Utc>) -> Result<SaveOutcome> {
        // Moving from the store into the cookie: the stored copy goes.
        if let Some(old) = state.pending.rotate_from.take() {
            self.store().delete(&old).await?;
        }
        if let Origin::Stored { .. } = state.origin
            && let Some(record) = state.record.as_ref()
        {
            self.store().delete(&record.id).await?;
        }
        // Carried whole in the cookie now: it has no id of its own (a
        // later move back into the store gives it a fresh one).
        state.id = None;
        let record = state.record.as_mut().expect("checked by save");
        record.updated_at = now;
        record.version += 1;
        let value = self.config().codec().encode_inline(record);
        let expires_at = record.expires_at;
        state.origin = Origin::Cookie;
        state.mark_saved();
        Ok(SaveOutcome::new(SaveStatus::CookieOnly, CookieUpdate::Set { value, expires_at }))
    }

    async fn save_stored(&self, state: &mut State, now: DateTime<Utc>) -> Result<SaveOutcome> {
        let Origin::Stored { version } = state.origin else {
            return self.save_new(state, now).await;
        };
        if state.pending.cleared || state.pending.rotate_from.is_some() {
            return self.save_whole(state, now, version).await;
        }
        // Key-level changes only: applied inside the store, atomically, so
        // a concurrent request's changes to other keys stay.
        let quick_only = state.pending.quick_only();
        let patch = state.patch(now, !quick_only);
        let base = state.record.as_ref().expect("checked by save");
        if quick_only
            && self.store().has_quick_writes()
            && let PatchOutcome::Patched(fresh) = self.store().write_quick(base, &patch).await?
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
        match self.store().patch(base, &patch).await? {
            PatchOutcome::Patched(fresh) => Ok(self.saved(state, fresh, state.pending.expiry_changed)),
            PatchOutcome::Missing => Ok(self.gone(state)),
        }
    }

    /// After a successful store write: adopt what the store now holds.
    fn saved(&self, state: &mut State, fresh: Record, expiry_changed: bool) -> SaveOutcome {
        let cookie = if expiry_changed || state.cookie.resign {
            self.reference_cookie(state.id.as_ref(), &fresh)
        } else {
            CookieUpdate::Keep
        };
        state.origin = Origin::Stored { version: fresh.version };
        state.record = Some(fresh);
        state.pending.rotate_from = None;
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
        for _ in 0..self.config().max_save_attempts {
            let record = state.record.as_mut().expect("checked by save");
            record.updated_at = now;
            record.version = record::next_version(&record.id, expected)?;
            let result = match state.pending.rotate_from.clone() {
                Some(old) => match self.store().rotate(&old, expected, record).await? {
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
                None => self.store().update(record, expected).await?.into_result(),
            };
            match result {
                Ok(()) => {
                    let fresh = record.clone();
                    let rotated = state.pending.rotate_from.is_some();
                    return Ok(self.saved(state, fresh, rotated || state.pending.expiry_changed));
                }
                Err(UpdateOutcome::Missing) => return Ok(self.gone(state)),
                Err(_) => {
                    conflicts += 1;
                    backoff(conflicts).await;
                    let stored_id = state.pending.rotate_from.clone().unwrap_or_else(|| record.id.clone());
                    match self.store().load_fresh(&stored_id, now).await? {
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
        Err(Error::Conflict { id, attempts: self.config().max_save_attempts })
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
        for _ in 0..self.config().max_save_attempts {
            if self.store().create(record).await? {
                let cookie = self.reference_cookie(state.id.as_ref(), record);
                state.origin = Origin::Stored { version: record.version };
                state.pending.rotate_from = None;
                state.mark_saved();
                return Ok(SaveOutcome::new(SaveStatus::Saved, cookie));
            }
            let (id, key) = SessionKey::generate();
            state.id = Some(id);
            record.id = key;
        }
        Err(Error::Conflict { id: record.id.to_string(), attempts: self.config().max_save_attempts })
    }

    /// The cookie that points at the stored `record`, whose id is `id`.
    fn reference_cookie(&self, id: Option<&SessionId>, record: &Record) -> CookieUpdate {
        match id {
            Some(id) => CookieUpdate::Set {
                value: self.config().codec().encode_reference(id, record.expires_at),
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

impl UpdateOutcome {
    fn into_result(self) -> Result<(), UpdateOutcome> {
        match self {
            UpdateOutcome::Updated => Ok(()),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::{ExpiryPolicy, Keys, SessionConfig, Store};

    fn keys(secret: &[u8]) -> Keys {
        Keys::new([secret]).unwrap()
    }

    /// `needs_no_save` is a copy of `save_changes`' quiet early returns:
    /// wherever it says "nothing to save", the real save must do no I/O and
    /// answer (Unchanged, Keep), and `Some(loaded)` must be `is_loaded`.
    /// Where a save has something to do, it must say so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn needs_no_save_agrees_with_the_save() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let old = keys(b"an old key that is being rotated out .....");
        let new = keys(b"the new key that signs from now on ........");
        let idle = ExpiryPolicy::Idle { timeout: Duration::from_secs(3600), refresh_after: Duration::from_millis(200) };
        let plain = Arc::new(SessionConfig::new(new.clone()).with_cookie_only_threshold(0).with_expiry(idle));
        let inline = Arc::new(SessionConfig::new(new.clone()).with_expiry(idle));
        let rotating = Arc::new(
            SessionConfig::new(
                Keys::new([
                    b"the new key that signs from now on ........".as_slice(),
                    b"an old key that is being rotated out .....".as_slice(),
                ])
                .unwrap(),
            )
            .with_cookie_only_threshold(0),
        );
        let cookie_of = |outcome: SaveOutcome| match outcome.cookie {
            CookieUpdate::Set { value, .. } => value,
            other => panic!("no cookie: {other:?}"),
        };
        let start = |config: &Arc<SessionConfig>| {
            let session = Session::new(store.clone(), config.clone(), None);
            async move {
                session.insert("n", 1).await.unwrap();
                cookie_of(session.save().await.unwrap())
            }
        };
        let stored = start(&plain).await;
        let small = start(&inline).await;
        let old_config = Arc::new(SessionConfig::new(old).with_cookie_only_threshold(0));
        let signed_old = start(&old_config).await;
        let gone = start(&plain).await;
        let logout = Session::new(store.clone(), plain.clone(), Some(&gone));
        logout.terminate().await.unwrap();
        assert_eq!(logout.save().await.unwrap().status, SaveStatus::Terminated);

        type Step = fn(&Session) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
        let read: Step = |s| {
            Box::pin(async move {
                s.get_value("n").await.unwrap();
            })
        };
        let write: Step = |s| Box::pin(async move { s.insert("n", 2).await.unwrap() });
        let rewrite: Step = |s| Box::pin(async move { s.insert("n", 1).await.unwrap() });
        let end: Step = |s| Box::pin(async move { s.terminate().await.unwrap() });
        let nothing: Step = |_| Box::pin(async {});
        // Name, config, cookie, what the handler does, whether the save is quiet.
        type Case<'a> = (&'a str, &'a Arc<SessionConfig>, Option<&'a str>, Step, bool);
        let cases: Vec<Case> = vec![
            ("untouched", &plain, Some(&stored), nothing, true),
            ("read", &plain, Some(&stored), read, true),
            ("same value", &plain, Some(&stored), rewrite, true),
            ("read, no cookie", &plain, None, read, true),
            ("read, cookie-only", &inline, Some(&small), read, true),
            ("write", &plain, Some(&stored), write, false),
            ("terminate", &plain, Some(&stored), end, false),
            ("read, deleted", &plain, Some(&gone), read, false),
            ("read, old key", &rotating, Some(&signed_old), read, false),
        ];
        for (name, config, cookie, step, quiet) in cases {
            let session = Session::new(store.clone(), (*config).clone(), cookie);
            step(&session).await;
            let verdict = session.needs_no_save();
            assert_eq!(verdict.is_some(), quiet, "{name}: needs_no_save said {verdict:?}");
            let before = store.ops();
            let loaded = session.is_loaded().await;
            let outcome = session.save().await.unwrap();
            if let Some(said_loaded) = verdict {
                assert_eq!(said_loaded, loaded, "{name}");
                assert_eq!((outcome.status, outcome.cookie), (SaveStatus::Unchanged, CookieUpdate::Keep), "{name}");
                assert_eq!(store.ops() - before, Default::default(), "{name}: the save did I/O");
            }
        }
        // Idle past the refresh interval: a read has a cookie to send.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let session = Session::new(store.clone(), plain.clone(), Some(&stored));
        read(&session).await;
        assert_eq!(session.needs_no_save(), None, "an idle refresh is a write");
    }
}
