//! What one request holds of its session: the record as it sees it, what
//! the browser's cookie said, and what the request changed — the state the
//! save (`save.rs`) works from.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::codec::CookiePayload;
use crate::id::{SessionId, SessionKey};
use crate::record::{Data, Record};
use crate::store::Patch;

/// One key-level change, replayed onto a fresher copy after a conflict.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    Set(Value),
    Remove,
}

/// Where the session was when this request found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// No session yet (or the cookie pointed at nothing).
    New,
    /// A stored session at this version.
    Stored { version: i64 },
    /// Carried whole in the cookie.
    Cookie,
}

/// Which tiers this request's data changes must reach, the highest
/// asked for (ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(super) enum Writes {
    /// No data change.
    #[default]
    None,
    /// Quick changes only: the cache tier alone.
    Quick,
    /// A normal change (which also persists any quick ones): every tier.
    Normal,
}

/// The cookie values of our name a request carried, as given or still in
/// the request's `Cookie` headers: the layer hands the headers over
/// untouched, so a request that never uses its session never parses them.
#[derive(Default)]
pub(super) enum Candidates {
    #[default]
    None,
    Values(Vec<String>),
    /// The request's `Cookie` headers: the first, and any more (HTTP/2
    /// may split the cookies over several), so the common request with one
    /// allocates nothing for them.
    #[cfg(feature = "axum")]
    Headers(http::HeaderValue, Vec<http::HeaderValue>),
}

impl Candidates {
    /// Calls `visit` with each value of the cookie named `name`, in the
    /// order sent, until it returns `true` (read from the headers in place:
    /// nothing allocated).
    #[cfg_attr(not(feature = "axum"), allow(unused_variables))] // `name` is for the headers
    pub(super) fn visit(&self, name: &str, mut visit: impl FnMut(&str) -> bool) {
        match self {
            Candidates::None => {}
            Candidates::Values(values) => {
                for value in values {
                    if visit(value) {
                        return;
                    }
                }
            }
            #[cfg(feature = "axum")]
            Candidates::Headers(first, more) => crate::web::for_each_cookie_value(
                std::iter::once(first).chain(more).map(http::HeaderValue::as_bytes),
                name,
                visit,
            ),
        }
    }
}

/// What the browser's cookie said.
#[derive(Default)]
pub(super) struct CookieState {
    /// The cookie values of our name the browser sent, verified on first
    /// use (so a request that never touches its session does not even pay
    /// for that); the first that verifies is the session's.
    pub(super) candidates: Candidates,
    /// The verified cookie.
    pub(super) payload: Option<CookiePayload>,
    /// The cookie pointed at nothing usable.
    pub(super) stale: bool,
    /// The cookie was signed with an older key: re-issue it under the
    /// current one once the session is used.
    pub(super) resign: bool,
    /// The cookie's session was moved to a new id moments ago by another
    /// request (a login racing itself): this request must neither start a
    /// session in its place nor remove the cookie, or the browser would
    /// drop the session the other request just logged in.
    pub(super) moved: bool,
}

/// What this request asked of its session since it was loaded or last
/// saved.
#[derive(Default)]
pub(super) struct Pending {
    /// Key-level changes, replayed onto a fresher copy after a conflict.
    pub(super) changes: BTreeMap<String, Change>,
    /// Every key removed (`clear`): a whole-session write.
    pub(super) cleared: bool,
    pub(super) user_changed: bool,
    pub(super) expiry_changed: bool,
    pub(super) writes: Writes,
    /// Id rotation requested: the stored id this request started from.
    pub(super) rotate_from: Option<SessionKey>,
    pub(super) terminated: bool,
}

impl Pending {
    /// Whether a save has anything to write.
    pub(super) fn has_writes(&self) -> bool {
        self.writes != Writes::None || self.expiry_changed
    }

    /// Whether everything to write may go to the cache alone.
    pub(super) fn quick_only(&self) -> bool {
        self.writes == Writes::Quick && !self.expiry_changed
    }
}

pub(super) struct State {
    pub(super) cookie: CookieState,
    pub(super) loaded: bool,
    /// The session as this request sees it; `None` until something is stored.
    pub(super) record: Option<Record>,
    /// The id the browser's cookie carries for `record` (stored under its
    /// key, `record.id`); `None` for a session read from a cookie-only
    /// cookie, which gets one when it moves into the store.
    pub(super) id: Option<SessionId>,
    pub(super) origin: Origin,
    pub(super) pending: Pending,
    /// Keys that earlier quick writes changed in the cache only: a normal
    /// save of this request persists them too.
    pub(super) unpersisted: Vec<String>,
    /// The client's address and user agent, for device tracking.
    pub(super) client: Option<(Option<String>, Option<String>)>,
}

/// Leaves out what would let a log line be replayed as the cookie: the
/// cookie values, the verified payload and the id.
impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("key", &self.record.as_ref().map(|record| &record.id))
            .field("loaded", &self.loaded)
            .field("origin", &self.origin)
            .field("writes", &self.pending.writes)
            .field("terminated", &self.pending.terminated)
            .finish_non_exhaustive()
    }
}

impl State {
    pub(super) fn new(candidates: Candidates) -> State {
        State {
            cookie: CookieState { candidates, ..CookieState::default() },
            loaded: false,
            record: None,
            id: None,
            origin: Origin::New,
            pending: Pending::default(),
            unpersisted: Vec::new(),
            client: None,
        }
    }

    /// Notes a data change, quick or normal.
    pub(super) fn mark(&mut self, quick: bool) {
        let writes = if quick { Writes::Quick } else { Writes::Normal };
        self.pending.writes = self.pending.writes.max(writes);
    }

    /// Removes `key` from the data, noting the change; its value, moved out.
    pub(super) fn remove(&mut self, key: &str, quick: bool) -> Option<Value> {
        let value = self.record.as_mut()?.data.remove(key)?;
        self.pending.changes.insert(key.to_owned(), Change::Remove);
        self.mark(quick);
        Some(value)
    }

    pub(super) fn mark_saved(&mut self) {
        self.cookie.resign = false;
        self.cookie.stale = false;
        self.unpersisted.clear();
        // A rotation is settled by the save path itself, and a terminate
        // by its own save.
        let Pending { rotate_from, terminated, .. } = std::mem::take(&mut self.pending);
        self.pending.rotate_from = rotate_from;
        self.pending.terminated = terminated;
    }

    /// This request's key-level changes as a store patch; with
    /// `persist_quick`, also the keys earlier quick writes left in the cache
    /// only, as this request sees them.
    pub(super) fn patch(&self, now: DateTime<Utc>, persist_quick: bool) -> Patch {
        let mut patch = Patch::new(now);
        for (key, change) in &self.pending.changes {
            patch = match change {
                Change::Set(value) => patch.with_set(key.clone(), value.clone()),
                Change::Remove => patch.with_removed(key.clone()),
            };
        }
        if let Some(record) = &self.record {
            if persist_quick {
                for key in self.unpersisted.iter().filter(|key| !self.pending.changes.contains_key(*key)) {
                    patch = match record.data.get(key) {
                        Some(value) => patch.with_set(key.clone(), value.clone()),
                        None => patch.with_removed(key.clone()),
                    };
                }
            }
            if self.pending.user_changed {
                patch = patch.with_user_id(record.user_id.clone());
            }
            if self.pending.expiry_changed {
                patch = patch.with_expires_at(record.expires_at);
            }
        }
        patch
    }

    pub(super) fn reset_to_empty(&mut self) {
        self.record = None;
        self.id = None;
        self.origin = Origin::New;
        self.pending.rotate_from = None;
        self.mark_saved();
    }

    /// A fresh id for the session: kept for its cookie; the key it is
    /// stored under is returned.
    pub(super) fn new_id(&mut self) -> SessionKey {
        let (id, key) = SessionKey::generate();
        self.id = Some(id);
        key
    }

    /// Replays this request's changes onto a fresher stored copy.
    pub(super) fn rebase(&mut self, fresh: Record) {
        let Some(mine) = self.record.as_mut() else { return };
        let mut data = if self.pending.cleared { Data::new() } else { fresh.data };
        for (key, change) in &self.pending.changes {
            match change {
                Change::Set(value) => {
                    data.set(key.clone(), value.clone());
                }
                Change::Remove => {
                    data.discard(key);
                }
            }
        }
        mine.data = data;
        if !self.pending.user_changed {
            mine.user_id = fresh.user_id;
        }
        if !self.pending.expiry_changed {
            mine.expires_at = fresh.expires_at;
        }
        mine.created_at = fresh.created_at;
        mine.version = fresh.version;
    }
}
