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
        let id =
            SessionKey::parse(&self.id).map_err(|e| Error::Corrupt { id: self.id.clone(), reason: e.to_string() })?;
        let data = record::decode_data(&self.id, &self.data)?;
        Ok(Record {
            id,
            user_id: self.user_id,
            data,
            created_at: record::truncate_millis(self.created_at),
            updated_at: record::truncate_millis(self.updated_at),
            expires_at: record::truncate_millis(self.expires_at),
            version: record::check_version(&self.id, self.version)?,
        })
    }
}

/// Parses ids returned by a DELETE … RETURNING, skipping any that are not
/// valid ids (they cannot be in the cache either).
pub(crate) fn parse_ids(ids: Vec<String>) -> Vec<SessionKey> {
    ids.into_iter().filter_map(|id| SessionKey::parse(&id).ok()).collect()
}
