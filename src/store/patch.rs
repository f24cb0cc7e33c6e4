//! Key-level changes applied inside the store.
//!
//! A request that only sets or removes keys (and perhaps sets the user or
//! the expiry) does not need to know what else the session holds: the store
//! applies its [`Patch`] atomically to whatever is stored now (PostgreSQL:
//! `data - removed || set` in one UPDATE; SQLite: read, apply and write under
//! its write lock; Redis: a Lua script over the entry's hash fields; the
//! in-process cache: under its write lock), bumps the version and returns
//! the new record. Concurrent requests changing different keys of one
//! session therefore all land, with no version conflict and no retry, and
//! the same key goes to the last writer. Whole-session operations (clear,
//! rotate, terminate) are not patches: they keep the version check.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::Result;
use crate::record::{self, Data, Record};

/// A request's key-level changes to one session.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Patch {
    /// Keys set, with their new values.
    pub set: Data,
    /// Keys removed.
    pub removed: Vec<String>,
    /// `Some` when the request set (or, with `Some(None)`, cleared) the user.
    pub user_id: Option<Option<String>>,
    /// `Some` when the request moved the expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the change was made.
    pub updated_at: DateTime<Utc>,
}

/// What applying a [`Patch`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOutcome {
    /// Applied; the session as it now is, at its new version.
    Patched(Record),
    /// No such session any more (deleted, rotated away, purged, revoked).
    Missing,
}

impl Patch {
    /// An empty patch made at `updated_at`.
    pub fn new(updated_at: DateTime<Utc>) -> Patch {
        Patch { updated_at, ..Patch::default() }
    }

    /// Sets a key.
    pub fn with_set(mut self, key: impl Into<String>, value: Value) -> Patch {
        self.set.insert(key.into(), value);
        self
    }

    /// Removes a key.
    pub fn with_removed(mut self, key: impl Into<String>) -> Patch {
        self.removed.push(key.into());
        self
    }

    /// Sets the user.
    pub fn with_user_id(mut self, user_id: Option<String>) -> Patch {
        self.user_id = Some(user_id);
        self
    }

    /// Moves the expiry.
    pub fn with_expires_at(mut self, expires_at: DateTime<Utc>) -> Patch {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether the patch changes nothing but `updated_at`.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty() && self.user_id.is_none() && self.expires_at.is_none()
    }

    /// Applies the changes to a copy held in memory. With `bump`, the
    /// version moves on (an error at [`record::MAX_VERSION`]); a quick write
    /// leaves it where the database has it.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`](crate::Error::Corrupt) when the version would pass 2^53.
    pub fn apply(&self, record: &mut Record, bump: bool) -> Result<()> {
        if bump {
            record.version = record::next_version(&record.id, record.version)?;
        }
        for key in &self.removed {
            record.data.discard(key);
        }
        for (key, value) in &self.set {
            record.data.set(key.clone(), value.clone());
        }
        if let Some(user_id) = &self.user_id {
            record.user_id.clone_from(user_id);
        }
        if let Some(expires_at) = self.expires_at {
            record.expires_at = expires_at;
        }
        record.updated_at = self.updated_at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionKey;
    use serde_json::json;

    #[test]
    fn apply_sets_removes_and_bumps_without_touching_other_keys() {
        let now = record::now();
        let mut r = Record {
            id: SessionKey::generate().1,
            user_id: None,
            data: json!({"a": 1, "b": 2, "c": 3}).as_object().cloned().unwrap().into(),
            created_at: now,
            updated_at: now,
            expires_at: now,
            version: 7,
        };
        let patch = Patch::new(now).with_set("a", json!(10)).with_removed("b").with_user_id(Some("u".into()));
        patch.apply(&mut r, true).unwrap();
        assert_eq!(Value::from(r.data.clone()), json!({"a": 10, "c": 3}));
        assert_eq!((r.version, r.user_id.as_deref()), (8, Some("u")));
        r.version = record::MAX_VERSION;
        assert!(patch.apply(&mut r, true).is_err(), "versions never pass 2^53");
        patch.apply(&mut r, false).unwrap();
        assert_eq!(r.version, record::MAX_VERSION, "a quick write keeps the version");
    }
}
