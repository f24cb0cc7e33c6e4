//! One session as a line of `export`, `import` and `list --output json`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};
use crate::store::Device;

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
    /// The device: when last seen (only when recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The device: its IP address (only when recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The device: its user agent (only when recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
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
            data: Value::from(record.data.clone()),
            last_seen_at: None,
            client_ip: None,
            user_agent: None,
        }
    }

    /// The line for a record with its device.
    pub fn from_session(record: &Record, device: &Device) -> ExportLine {
        ExportLine {
            last_seen_at: device.last_seen_at,
            client_ip: device.client_ip.clone(),
            user_agent: device.user_agent.clone(),
            ..ExportLine::from_record(record)
        }
    }

    /// The line of `record`, written straight from it: the text
    /// [`ExportLine::to_json`] gives for [`ExportLine::from_record`],
    /// without copying the data into a JSON tree first (export writes a
    /// million of them).
    pub fn of_record(record: &Record) -> String {
        ExportLine::of_session(record, &Device::default())
    }

    /// Like [`ExportLine::of_record`], with the session's device: the text
    /// [`ExportLine::to_json`] gives for [`ExportLine::from_session`].
    pub fn of_session(record: &Record, device: &Device) -> String {
        use std::fmt::Write as _;
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let string = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
        let data = record.data_json();
        let mut line = String::with_capacity(data.len() + 200);
        // Keys in the order `to_json` gives them (sorted); the device's
        // only when recorded.
        line.push('{');
        if let Some(ip) = &device.client_ip {
            let _ = write!(line, r#""client_ip":{},"#, string(ip));
        }
        let _ = write!(
            line,
            r#""created_at":"{}","data":{data},"expires_at":"{}","id":{},"#,
            time(&record.created_at),
            time(&record.expires_at),
            string(record.id.as_str()),
        );
        if let Some(seen) = &device.last_seen_at {
            let _ = write!(line, r#""last_seen_at":"{}","#, time(seen));
        }
        let _ = write!(line, r#""updated_at":"{}","#, time(&record.updated_at));
        if let Some(agent) = &device.user_agent {
            let _ = write!(line, r#""user_agent":{},"#, string(agent));
        }
        let _ = write!(
            line,
            r#""user_id":{},"version":{}}}"#,
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
        if let Some(seen) = &self.last_seen_at {
            object.insert("last_seen_at".into(), time(seen));
        }
        if let Some(ip) = &self.client_ip {
            object.insert("client_ip".into(), Value::String(ip.clone()));
        }
        if let Some(agent) = &self.user_agent {
            object.insert("user_agent".into(), Value::String(agent.clone()));
        }
        Value::Object(object).to_string()
    }

    /// Parses and validates one line into a record.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the line is not a session line: not JSON,
    /// unknown fields, a malformed id, data not an object, a version outside 0..=2^53, NUL characters.
    pub fn parse(line: &str) -> Result<Record> {
        Ok(ExportLine::parse_session(line)?.0)
    }

    /// Like [`ExportLine::parse`], with the device the line carries (empty
    /// for lines written before devices were recorded).
    ///
    /// # Errors
    ///
    /// As [`ExportLine::parse`]; also an address or user agent that is too
    /// long or holds a NUL character.
    pub fn parse_session(line: &str) -> Result<(Record, Device)> {
        let parsed: ExportLine =
            serde_json::from_str(line).map_err(|e| Error::InvalidInput(format!("not a session line: {e}")))?;
        let id = SessionKey::from_id_or_key(&parsed.id).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let Value::Object(data) = parsed.data else {
            return Err(Error::InvalidInput(format!(
                "data is a JSON {}, not an object",
                record::json_kind(&parsed.data)
            )));
        };
        let data = record::Data::from(data);
        // The size limit is the caller's (`Admin::parse_line`).
        record::check_writable(parsed.user_id.as_deref(), &data, usize::MAX)?;
        for (what, text, limit) in
            [("client ip", &parsed.client_ip, 64), ("user agent", &parsed.user_agent, crate::config::MAX_USER_AGENT)]
        {
            if let Some(text) = text {
                record::check_storable_str(what, text)?;
                if text.len() > limit {
                    return Err(Error::InvalidInput(format!("{what} is longer than {limit} bytes")));
                }
            }
        }
        let device = Device {
            last_seen_at: parsed.last_seen_at.map(record::truncate_millis),
            client_ip: parsed.client_ip,
            user_agent: parsed.user_agent,
        };
        let fields = Record {
            id,
            user_id: parsed.user_id,
            data,
            created_at: parsed.created_at,
            updated_at: parsed.updated_at,
            expires_at: parsed.expires_at,
            version: parsed.version,
        };
        let record = fields.checked().map_err(Error::InvalidInput)?;
        Ok((record, device))
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
                id: crate::id::SessionKey::generate().1,
                user_id,
                data: data.as_object().cloned().unwrap().into(),
                created_at: t,
                updated_at: t,
                expires_at: t,
                version: 42,
            };
            assert_eq!(ExportLine::of_record(&record), ExportLine::from_record(&record).to_json());
            assert_eq!(ExportLine::parse(&ExportLine::of_record(&record)).unwrap(), record);
            let device = crate::store::Device::seen(t, Some("2001:db8::1".into()), Some("Firefox \"x\"".into()));
            let line = ExportLine::of_session(&record, &device);
            assert_eq!(line, ExportLine::from_session(&record, &device).to_json());
            assert_eq!(ExportLine::parse_session(&line).unwrap(), (record.clone(), device));
        }
    }

    #[test]
    fn the_deepest_value_a_session_takes_is_exported_and_imported_back() {
        let levels = crate::record::MAX_VALUE_NESTING;
        let deep: serde_json::Value =
            serde_json::from_str(&format!("{}{}", "[".repeat(levels), "]".repeat(levels))).unwrap();
        crate::record::check_storable("deep", &deep).unwrap();
        let t = crate::record::now();
        let mut data = crate::record::Data::new();
        data.insert("deep".into(), deep);
        let record = Record {
            id: crate::id::SessionKey::generate().1,
            user_id: None,
            data,
            created_at: t,
            updated_at: t,
            expires_at: t,
            version: 1,
        };
        assert_eq!(ExportLine::parse(&ExportLine::of_record(&record)).unwrap(), record);
    }
}
