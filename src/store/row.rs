//! Database rows as both SQL backends produce them, checked into records.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};

/// A database row in the shape both SQL backends produce, before checks.
pub(crate) struct RawRow {
    pub id: String,
    pub data: String,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub version: i64,
}

impl RawRow {
    /// Validates a row into a record: a bad id or data is reported as a
    /// corrupt session, never a panic.
    pub(crate) fn into_record(self) -> Result<Record> {
        let id = stored_key(&self.id).map_err(|e| Error::Corrupt { id: self.id.clone(), reason: e.to_string() })?;
        let data = record::decode_data(id.as_str(), &self.data)?;
        let shown = id.to_string();
        let fields = Record {
            id,
            user_id: self.user_id,
            data,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
            version: self.version,
        };
        fields.checked().map_err(|reason| Error::Corrupt { id: shown, reason })
    }
}

/// The key of a row's id column: a stored key, or the key of an id an
/// older build stored the session under (not moved yet: `sessionctl
/// migrate`), so nothing read from a row shows or passes on an id.
pub(crate) fn stored_key(text: &str) -> Result<SessionKey> {
    if text.len() == crate::id::ID_LEN {
        return Ok(SessionKey::of_stored_id(text));
    }
    SessionKey::parse(text)
}

/// Parses ids returned by a DELETE … RETURNING, skipping any that are not
/// valid ids (they cannot be in the cache either).
pub(crate) fn parse_ids(ids: Vec<String>) -> Vec<SessionKey> {
    ids.into_iter().filter_map(|id| stored_key(&id).ok()).collect()
}
