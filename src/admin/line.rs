//! One session as a line of `export`, `import` and `list --output json`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::record::{self, Record};

/// One session as a line of `export` (and of `list --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportLine {
    /// The session id.
    pub id: String,
    /// The user, if any.
    pub user_id: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: DateTime<Utc>,
    /// RFC 3339, UTC.
    pub updated_at: DateTime<Utc>,
    /// RFC 3339, UTC.
    pub expires_at: DateTime<Utc>,
    /// The optimistic-concurrency version.
    pub version: i64,
    /// The data object.
    pub data: Value,
}

impl ExportLine {
    /// The line for a record.
    pub fn from_record(record: &Record) -> ExportLine {
        ExportLine {
            id: record.id.to_string(),
            user_id: record.user_id.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            expires_at: record.expires_at,
            version: record.version,
            data: Value::Object(record.data.clone()),
        }
    }

    /// The line of `record`, written straight from it: the text
    /// [`ExportLine::to_json`] gives for [`ExportLine::from_record`],
    /// without copying the data into a JSON tree first (export writes a
    /// million of them).
    pub fn of_record(record: &Record) -> String {
        use std::fmt::Write as _;
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let data = record.data_json();
        let mut line = String::with_capacity(data.len() + 200);
        // Keys in the order `to_json` gives them (sorted).
        let _ = write!(
            line,
            r#"{{"created_at":"{}","data":{data},"expires_at":"{}","id":{},"updated_at":"{}","user_id":{},"version":{}}}"#,
            time(&record.created_at),
            time(&record.expires_at),
            string(record.id.as_str()),
            time(&record.updated_at),
            record.user_id.as_deref().map_or_else(|| "null".to_owned(), string),
            record.version
        );
        line
    }

    /// The JSON text of the line (RFC 3339 times with milliseconds, `Z`).
    pub fn to_json(&self) -> String {
        let time = |t: &DateTime<Utc>| Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true));
        let mut object = serde_json::Map::new();
        object.insert("id".into(), Value::String(self.id.clone()));
        object.insert("user_id".into(), self.user_id.clone().map_or(Value::Null, Value::String));
        object.insert("created_at".into(), time(&self.created_at));
        object.insert("updated_at".into(), time(&self.updated_at));
        object.insert("expires_at".into(), time(&self.expires_at));
        object.insert("version".into(), Value::from(self.version));
        object.insert("data".into(), self.data.clone());
        Value::Object(object).to_string()
    }

    /// Parses and validates one line into a record.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the line is not a session line: not JSON,
    /// unknown fields, a malformed id, data not an object, a version outside 0..=2^53, NUL characters.
    pub fn parse(line: &str) -> Result<Record> {
        let parsed: ExportLine =
            serde_json::from_str(line).map_err(|e| Error::InvalidInput(format!("not a session line: {e}")))?;
        let id = SessionId::parse(&parsed.id).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let Value::Object(data) = parsed.data else {
            return Err(Error::InvalidInput(format!(
                "data is a JSON {}, not an object",
                record::json_kind(&parsed.data)
            )));
        };
        let version = record::check_version(&parsed.id, parsed.version)
            .map_err(|_| Error::InvalidInput(format!("version {} is outside 0..=2^53", parsed.version)))?;
        if let Some(user_id) = &parsed.user_id {
            record::check_storable_str("user id", user_id)?;
        }
        record::check_storable("data", &Value::Object(data.clone()))?;
        Ok(Record {
            id,
            user_id: parsed.user_id,
            data,
            created_at: record::truncate_millis(parsed.created_at),
            updated_at: record::truncate_millis(parsed.updated_at),
            expires_at: record::truncate_millis(parsed.expires_at),
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ExportLine;
    use crate::record::Record;

    #[test]
    fn a_line_written_straight_from_the_record_is_the_same_text() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:34:56.789Z").unwrap().to_utc();
        let data = serde_json::json!({"z": [1, "two\n"], "a": {"é": null}, "quote\"d": true});
        for user_id in [None, Some("alice \"the\" admin".to_owned())] {
            let record = Record {
                id: crate::id::SessionId::generate(),
                user_id,
                data: data.as_object().cloned().unwrap(),
                created_at: t,
                updated_at: t,
                expires_at: t,
                version: 42,
            };
            assert_eq!(ExportLine::of_record(&record), ExportLine::from_record(&record).to_json());
            assert_eq!(ExportLine::parse(&ExportLine::of_record(&record)).unwrap(), record);
        }
    }
}
