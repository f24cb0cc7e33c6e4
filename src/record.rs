//! The stored form of a session: a JSON object of data plus the metadata every
//! tier needs, and its versioned envelope.
//!
//! The database keeps the metadata in columns and the data object in one
//! compact JSON text field; the cache tier and cookie-only sessions carry the
//! whole record as one envelope, `{"v":1,…}`, so a future format can be told
//! apart from this one. Only JSON is ever deserialized: never a
//! language-specific serializer that can be made to run code.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::id::SessionKey;

mod data;

use data::VerbatimData;
pub use data::{Data, DataIntoIter, DataIter};

/// Envelope format version written by this build.
pub const ENVELOPE_VERSION: u32 = 1;

/// The largest session version any tier accepts: 2^53, the largest integer
/// every JSON reader (and Redis' Lua) holds exactly. A save that would go
/// past it is refused instead of wrapping to a negative version, which would
/// lose to every cached copy forever.
pub const MAX_VERSION: i64 = 1 << 53;

/// The version after `version`, or an error at the limit.
///
/// # Errors
///
/// [`Error::Corrupt`] when the version is already at 2^53.
pub fn next_version(id: &SessionKey, version: i64) -> Result<i64> {
    version.checked_add(1).filter(|v| (1..=MAX_VERSION).contains(v)).ok_or_else(|| Error::Corrupt {
        id: id.to_string(),
        reason: format!("version {version} is at the limit ({MAX_VERSION}); the session cannot be saved again"),
    })
}

fn version_in_range(version: i64) -> std::result::Result<i64, String> {
    if (0..=MAX_VERSION).contains(&version) {
        Ok(version)
    } else {
        Err(format!("version {version} is outside 0..=2^53"))
    }
}

/// What data written from outside a request (an imported line, an admin
/// edit) must be as well, as a request's save would have it: storable by
/// every database, readable back, and within `max_size`. Returns its size.
///
/// # Errors
///
/// [`Error::InvalidInput`] for a NUL character in the user id or the data,
/// or a value nested too deep ([`check_storable`]); [`Error::TooLarge`] for
/// data over `max_size`.
pub(crate) fn check_writable(user_id: Option<&str>, data: &Data, max_size: usize) -> Result<usize> {
    if let Some(user_id) = user_id {
        check_storable_str("user id", user_id)?;
    }
    for (key, value) in data {
        check_storable_str("a data key", key)?;
        check_storable(&format!("data value {key:?}"), value)?;
    }
    let text = encode_data(data);
    if text.len() > max_size {
        return Err(Error::TooLarge { size: text.len(), limit: max_size });
    }
    Ok(text.len())
}

/// Refuses what one of the databases cannot hold, or what could not be read
/// back, so every backend behaves the same: a NUL character (PostgreSQL's
/// `text` and `jsonb` refuse it) in a user id, a data key or any string
/// inside a value, and arrays and objects nested more than
/// [`MAX_VALUE_NESTING`] deep (saved, such a session could no longer be
/// loaded, or not exported and imported back).
/// Checked when the value is set, so the handler gets a typed error it can
/// answer with a 400 rather than a failed save, or a session lost on its
/// next read, after the response was decided.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the value holds a NUL character (in a key or a
/// string), which not every database can store, or nests too deep.
pub fn check_storable(what: &str, value: &Value) -> Result<()> {
    // Walked with a stack of its own, not by recursion: the value may be
    // deeper than the thread's stack allows.
    let mut pending = vec![(value, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        let nested = match value {
            Value::String(s) if s.contains('\0') => return Err(nul_in(what)),
            Value::Array(items) => {
                pending.extend(items.iter().map(|item| (item, depth + 1)));
                true
            }
            Value::Object(map) => {
                if map.keys().any(|key| key.contains('\0')) {
                    return Err(nul_in(what));
                }
                pending.extend(map.values().map(|item| (item, depth + 1)));
                true
            }
            _ => false,
        };
        if nested && depth + 1 > MAX_VALUE_NESTING {
            return Err(Error::InvalidInput(format!(
                "{what} nests arrays and objects more than {MAX_VALUE_NESTING} deep, which sessions cannot read back"
            )));
        }
    }
    Ok(())
}

/// How deep a value set in a session may nest arrays and objects: JSON's
/// parser refuses a 128th level, and an export line holds a value two
/// levels down (the line, its data), so 125. Values already stored are read
/// up to one level deeper, as before this bound.
pub const MAX_VALUE_NESTING: usize = data::MAX_NESTING - 1;

fn nul_in(what: &str) -> Error {
    Error::InvalidInput(format!("{what} contains a NUL character, which sessions cannot store"))
}

/// [`check_storable`] for a key or a user id.
///
/// # Errors
///
/// [`Error::InvalidInput`] when the text holds a NUL character.
pub fn check_storable_str(what: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::InvalidInput(format!("{what} contains a NUL character, which sessions cannot store")));
    }
    Ok(())
}

/// One session as the tiers store it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The session id.
    pub id: SessionKey,
    /// The user the session belongs to, if the app set one.
    pub user_id: Option<String>,
    /// The session's data.
    pub data: Data,
    /// When the session was first saved.
    pub created_at: DateTime<Utc>,
    /// When it was last saved.
    pub updated_at: DateTime<Utc>,
    /// When it stops being valid. Every session has one, including those
    /// behind a "until the browser closes" cookie.
    pub expires_at: DateTime<Utc>,
    /// Optimistic concurrency counter, bumped on every database save.
    pub version: i64,
}

impl Record {
    /// The one validation of a record read from outside the library (a
    /// database row, a cache entry or envelope, an export line): its
    /// version within 0..=2^53 and its times to the millisecond (what every
    /// tier stores); the reason otherwise, for the caller to report as a
    /// corrupt row or a bad line.
    pub(crate) fn checked(mut self) -> std::result::Result<Record, String> {
        self.version = version_in_range(self.version)?;
        self.created_at = truncate_millis(self.created_at);
        self.updated_at = truncate_millis(self.updated_at);
        self.expires_at = truncate_millis(self.expires_at);
        Ok(self)
    }

    /// True once `expires_at` has passed.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// The data as compact JSON text, as the database stores it.
    pub fn data_json(&self) -> String {
        encode_data(&self.data)
    }

    /// Encodes the whole record in its versioned envelope (cache entries,
    /// cookie-only payloads, export).
    pub fn to_envelope(&self) -> Vec<u8> {
        let envelope = EnvelopeRef {
            v: ENVELOPE_VERSION,
            version: self.version,
            id: self.id.as_str(),
            user_id: self.user_id.as_deref(),
            created_at: self.created_at.timestamp_millis(),
            updated_at: self.updated_at.timestamp_millis(),
            expires_at: self.expires_at.timestamp_millis(),
            data: VerbatimData(&self.data),
        };
        // Serializing a map of JSON values to a Vec cannot fail.
        serde_json::to_vec(&envelope).unwrap_or_default()
    }

    /// Decodes an envelope. Any malformation is an error, never a panic.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`] when the bytes are not an envelope of a known version.
    pub fn from_envelope(bytes: &[u8]) -> Result<Record> {
        let corrupt = |reason: String| Error::Corrupt { id: "(envelope)".into(), reason };
        let envelope: EnvelopeOwned =
            serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not a session envelope: {e}")))?;
        if envelope.v != ENVELOPE_VERSION {
            return Err(corrupt(format!("envelope version {} is not supported", envelope.v)));
        }
        let data = Data::from_object_text(envelope.data.get())
            .ok_or_else(|| corrupt("not a session envelope: its data is not a JSON object".into()))?;
        // An envelope written before ids were hashed (a cookie-only cookie
        // a browser still holds, an old cache entry) names the id: read
        // it as the id's key.
        let id = SessionKey::from_id_or_key(&envelope.id).map_err(|e| corrupt(e.to_string()))?;
        let time = |ms: i64, what: &str| from_millis(ms).ok_or_else(|| corrupt(format!("{what} {ms} is out of range")));
        let fields = Record {
            created_at: time(envelope.created_at, "created_at")?,
            updated_at: time(envelope.updated_at, "updated_at")?,
            expires_at: time(envelope.expires_at, "expires_at")?,
            id,
            user_id: envelope.user_id,
            version: envelope.version,
            data,
        };
        fields.checked().map_err(corrupt)
    }
}

/// Field order matters: `v` then `version` come first so the Redis tier's
/// scripts can read an entry's version with a prefix match instead of
/// parsing the whole record.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    v: u32,
    version: i64,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    data: VerbatimData<'a>,
}

#[derive(Deserialize)]
struct EnvelopeOwned {
    v: u32,
    id: String,
    #[serde(default)]
    user_id: Option<String>,
    created_at: i64,
    updated_at: i64,
    expires_at: i64,
    version: i64,
    /// Split into its keys by [`Data::from_object_text`], which keeps each
    /// value's text until it is read.
    data: Box<RawValue>,
}

/// Compact JSON text of a data object; a value never changed is the text
/// it was read as.
pub fn encode_data(data: &Data) -> String {
    serde_json::to_string(&VerbatimData(data)).unwrap_or_else(|_| "{}".to_owned())
}

/// Parses a data column; it must hold a JSON object. Each value is kept as
/// its text until it is read ([`Data`]).
///
/// # Errors
///
/// [`Error::Corrupt`] when the text is not a JSON object.
pub fn decode_data(id: &str, text: &str) -> Result<Data> {
    if let Some(data) = Data::from_object_text(text) {
        return Ok(data);
    }
    // Not an object: parsed again to say what it is instead.
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map.into()),
        Ok(other) => Err(Error::Corrupt {
            id: id.to_owned(),
            reason: format!("data is a JSON {}, not an object", json_kind(&other)),
        }),
        Err(e) => Err(Error::Corrupt { id: id.to_owned(), reason: format!("data is not valid JSON: {e}") }),
    }
}

/// "object", "array", … for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The current time at the millisecond precision every tier stores.
///
/// Read as milliseconds from the system clock and converted once: going
/// through `Utc::now()` and then truncating converted to a calendar date
/// twice, on every request's hot path.
pub fn now() -> DateTime<Utc> {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    match since_epoch.ok().and_then(|d| i64::try_from(d.as_millis()).ok()).and_then(from_millis) {
        Some(now) => now,
        None => truncate_millis(Utc::now()),
    }
}

/// Drops sub-millisecond precision so a time round-trips through every tier
/// unchanged.
pub fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(t.timestamp_millis()).unwrap_or(t)
}

/// A UTC time from Unix milliseconds, `None` when out of chrono's range.
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Record {
        let t = now();
        Record {
            id: SessionKey::generate().1,
            user_id: Some("alice".into()),
            data: json!({"cart": [1, 2], "n": 3}).as_object().cloned().unwrap().into(),
            created_at: t,
            updated_at: t,
            expires_at: t + chrono::Duration::days(7),
            version: 4,
        }
    }

    #[test]
    fn now_is_the_clock_at_whole_milliseconds() {
        let before = Utc::now();
        let now = now();
        let after = Utc::now();
        assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0);
        assert_eq!(truncate_millis(now), now);
        assert!(truncate_millis(before) <= now && now <= after, "{before} <= {now} <= {after}");
    }

    #[test]
    fn envelope_round_trips() {
        let r = sample();
        assert_eq!(Record::from_envelope(&r.to_envelope()).unwrap(), r);
    }

    #[test]
    fn envelope_starts_with_its_version() {
        let mut r = sample();
        r.version = 42;
        assert!(String::from_utf8(r.to_envelope()).unwrap().starts_with(r#"{"v":1,"version":42,"#));
    }

    #[test]
    fn envelope_rejects_garbage_and_other_versions() {
        assert!(Record::from_envelope(b"").is_err());
        assert!(Record::from_envelope(b"[1]").is_err());
        let mut v: Value = serde_json::from_slice(&sample().to_envelope()).unwrap();
        v["v"] = json!(2);
        assert!(Record::from_envelope(&serde_json::to_vec(&v).unwrap()).is_err());
        v["v"] = json!(1);
        v["expires_at"] = json!(i64::MAX);
        assert!(Record::from_envelope(&serde_json::to_vec(&v).unwrap()).is_err());
    }

    #[test]
    fn numbers_in_data_read_back_unchanged_after_a_save() {
        // Found by fuzzing: without serde_json's float_roundtrip, the big
        // number was read as 1.844674420737095e20, which written and read
        // again (one save and load) became 1.8446744207370954e20.
        let data = decode_data("x", r#"{"big":184467442073709551615,"f":0.1,"tiny":5e-324}"#).unwrap();
        assert_eq!(decode_data("x", &encode_data(&data)).unwrap(), data);
        let mut r = sample();
        r.data = data;
        assert_eq!(Record::from_envelope(&r.to_envelope()).unwrap(), r);
    }

    #[test]
    fn data_column_must_be_an_object() {
        assert!(decode_data("x", "[1]").unwrap_err().to_string().contains("array"));
        assert!(decode_data("x", "{").is_err());
        assert_eq!(decode_data("x", r#"{"a":1}"#).unwrap()["a"], json!(1));
    }

    #[test]
    fn every_source_of_a_record_gets_the_same_checks() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z").unwrap().to_utc();
        let fields = |version| Record {
            id: SessionKey::generate().1,
            user_id: None,
            data: Data::new(),
            created_at: t,
            updated_at: t,
            expires_at: t,
            version,
        };
        let record = fields(MAX_VERSION).checked().unwrap();
        assert_eq!(record.created_at.timestamp_subsec_micros(), 123_000, "times are kept to the millisecond");
        for version in [-1, MAX_VERSION + 1] {
            assert_eq!(fields(version).checked().unwrap_err(), format!("version {version} is outside 0..=2^53"));
        }
        let nul: Data = json!({"a": ["x\u{0}"]}).as_object().cloned().unwrap().into();
        assert!(matches!(check_writable(None, &nul, usize::MAX), Err(Error::InvalidInput(_))));
        assert!(matches!(check_writable(Some("u\u{0}"), &Data::new(), usize::MAX), Err(Error::InvalidInput(_))));
        let text: Data = json!({"a": "\\u0000"}).as_object().cloned().unwrap().into();
        assert_eq!(check_writable(None, &text, 100).unwrap(), 15, "an escaped text is not a NUL");
        assert!(matches!(check_writable(None, &text, 14), Err(Error::TooLarge { size: 15, limit: 14 })));
    }
}
