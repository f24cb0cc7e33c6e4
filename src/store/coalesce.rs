//! Concurrent patches of one session, combined into one database write.
//!
//! A session hammered by many concurrent requests (a page firing a burst of
//! API calls, a double-clicked form) would otherwise send one UPDATE per
//! request at a single row: each waits on the row lock of the one before,
//! and the connection pool fills with writers queued on it (in cache-only
//! mode, one script per request on one key). Instead, while
//! one patch of a session is being written, later patches of the same
//! session in this process wait in a queue; when the write ends, everything
//! queued is merged in arrival order (so the last writer of a key still
//! wins, and every key set by anyone lands) and written at once. Each
//! request's save still returns only after its own change is in the
//! database. Nothing here talks to a server: the writes go through the
//! store's tiers, each bounded by its timeout, and `Store::patch` bounds a
//! waiter's wait (twice the database timeout) in case the writing task dies.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::Patch;
use crate::error::{Error, Result};
use crate::id::SessionKey;

/// Where a waiting request learns how the combined write went: the
/// session's version after it, or `None` when the session is gone.
pub(crate) type Sender = oneshot::Sender<Result<Option<i64>>>;

/// A request waiting for a combined write, and where to send its outcome.
type Waiter = (Patch, Sender);

/// The sessions with a patch being written, and the patches queued behind it.
#[derive(Debug, Default)]
pub(crate) struct PatchQueues {
    queues: Mutex<HashMap<SessionKey, Vec<Waiter>>>,
}

/// What a caller of [`PatchQueues::enter`] does next.
pub(crate) enum Turn {
    /// No write of this session is under way: write it, then call
    /// [`PatchQueues::next_batch`] until it returns `None`.
    Write,
    /// Another request is writing this session: the combined outcome
    /// arrives here.
    Wait(oneshot::Receiver<Result<Option<i64>>>),
}

impl PatchQueues {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Vec<Waiter>>> {
        self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the queue of `id` with `patch`, or starts writing it.
    pub(crate) fn enter(&self, id: &SessionKey, patch: &Patch) -> Turn {
        let mut queues = self.locked();
        match queues.get_mut(id) {
            Some(waiting) => {
                let (sender, receiver) = oneshot::channel();
                waiting.push((patch.clone(), sender));
                Turn::Wait(receiver)
            }
            None => {
                queues.insert(id.clone(), Vec::new());
                Turn::Write
            }
        }
    }

    /// After a write of `id`: the patches queued meanwhile, merged, with the
    /// senders of their outcomes; `None` (and the session leaves the map)
    /// when nothing was queued.
    pub(crate) fn next_batch(&self, id: &SessionKey) -> Option<(Patch, Vec<Sender>)> {
        let mut queues = self.locked();
        let waiting = std::mem::take(queues.get_mut(id)?);
        if waiting.is_empty() {
            queues.remove(id);
            return None;
        }
        drop(queues);
        let mut merged: Option<Patch> = None;
        let mut senders = Vec::with_capacity(waiting.len());
        for (patch, sender) in waiting {
            merged = Some(match merged {
                None => patch,
                Some(earlier) => earlier.then(patch),
            });
            senders.push(sender);
        }
        merged.map(|patch| (patch, senders))
    }
}

impl PatchQueues {
    /// Answers whatever is still queued for `id` with an error and frees
    /// the session (the task writing it ended early). Harmless after a
    /// normal end, when nothing is queued and the session is already free.
    pub(crate) fn abandon(&self, id: &SessionKey) {
        let waiting = self.locked().remove(id).unwrap_or_default();
        let senders = waiting.into_iter().map(|(_, sender)| sender).collect();
        deliver(senders, &Err(abandoned()));
    }
}

/// What a request queued behind a combined write that ended without an
/// outcome is told.
pub(crate) fn abandoned() -> Error {
    Error::Interrupted("a combined write of this session was abandoned".into())
}

/// Sends one combined outcome to every waiter. An error is shared: each
/// waiter gets the same failure, described once.
pub(crate) fn deliver(senders: Vec<Sender>, outcome: &Result<Option<i64>>) {
    for sender in senders {
        let copy = match outcome {
            Ok(version) => Ok(*version),
            Err(error) => Err(Error::shared(error)),
        };
        // A waiter that went away (its request was cancelled) needs nothing.
        let _ = sender.send(copy);
    }
}

impl Patch {
    /// This patch followed by `later`: what applying both in turn does.
    pub(crate) fn then(mut self, later: Patch) -> Patch {
        for key in later.removed {
            self.set.remove(&key);
            if !self.removed.contains(&key) {
                self.removed.push(key);
            }
        }
        for (key, value) in later.set {
            self.removed.retain(|removed| removed != &key);
            self.set.insert(key, value);
        }
        if later.user_id.is_some() {
            self.user_id = later.user_id;
        }
        if later.expires_at.is_some() {
            self.expires_at = later.expires_at;
        }
        self.updated_at = self.updated_at.max(later.updated_at);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record;
    use serde_json::json;

    #[test]
    fn merged_patches_apply_in_arrival_order() {
        let now = record::now();
        let a = Patch::new(now).with_set("x", json!(1)).with_set("y", json!(1)).with_removed("z");
        let b = Patch::new(now).with_removed("x").with_set("z", json!(2)).with_user_id(Some("u".into()));
        let c = Patch::new(now).with_set("x", json!(3));
        let merged = a.then(b).then(c);
        assert_eq!(serde_json::Value::from(merged.set.clone()), json!({"x": 3, "y": 1, "z": 2}));
        assert!(merged.removed.is_empty(), "{:?}", merged.removed);
        assert_eq!(merged.user_id, Some(Some("u".into())));
    }

    /// The task writing a session's combined save ended early: the requests
    /// queued behind it learn that it was interrupted (they were told
    /// "invalid configuration", which sent operators after their config).
    #[test]
    fn requests_queued_behind_an_abandoned_write_are_told_it_was_interrupted() {
        let queues = PatchQueues::default();
        let id = SessionKey::generate().1;
        let patch = Patch::new(record::now()).with_set("x", json!(1));
        assert!(matches!(queues.enter(&id, &patch), Turn::Write));
        let Turn::Wait(mut waiting) = queues.enter(&id, &patch) else { panic!("the second request must wait") };
        queues.abandon(&id);
        match waiting.try_recv() {
            Ok(Err(error)) => {
                assert!(matches!(error, Error::Interrupted(_)), "{error:?}");
                assert!(!error.to_string().contains("configuration"), "{error}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        // The session is free for the next request to write.
        assert!(matches!(queues.enter(&id, &patch), Turn::Write));
    }
}
