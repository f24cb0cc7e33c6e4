//! A session record as the fields of a Redis hash, and back: `v` version,
//! `c`/`t`/`e` created, updated and expiry times (Unix ms), `u` the user,
//! `d:<key>` each value's JSON, `q:<key>` a quick write not yet persisted,
//! `x` a tombstone's reason and `n` where a rotation moved the session.

use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};
use crate::store::{CacheLookup, Patch};

pub(super) fn expiry_ms(record: &Record) -> i64 {
    record.expires_at.timestamp_millis()
}

/// A data key's hash field.
pub(super) fn data_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 2);
    field.extend_from_slice(b"d:");
    field.extend_from_slice(key.as_bytes());
    field
}

pub(super) fn ms_arg(t: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    t.timestamp_millis().to_string().into_bytes()
}

/// The record as hash field/value pairs: `v` version, `c`/`t`/`e` created,
/// updated and expiry times (Unix ms), `u` the user (absent when none), and
/// `d:<key>` the JSON text of each value. One field per key is what lets a
/// script change one key without parsing the others.
pub(super) fn record_fields(record: &Record) -> Vec<Vec<u8>> {
    let mut fields = Vec::with_capacity(8 + 2 * record.data.len());
    fields.extend([
        b"v".to_vec(),
        record.version.to_string().into_bytes(),
        b"c".to_vec(),
        ms_arg(record.created_at),
        b"t".to_vec(),
        ms_arg(record.updated_at),
        b"e".to_vec(),
        ms_arg(record.expires_at),
    ]);
    if let Some(user_id) = &record.user_id {
        fields.extend([b"u".to_vec(), user_id.clone().into_bytes()]);
    }
    for (key, value) in &record.data {
        fields.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    fields
}

/// A patch as the fields it removes and the field/value items it sets.
pub(super) fn patch_fields(patch: &Patch) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut removed: Vec<Vec<u8>> = patch.removed.iter().map(|key| data_field(key)).collect();
    let mut items = vec![b"t".to_vec(), ms_arg(patch.updated_at)];
    for (key, value) in &patch.set {
        items.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    match &patch.user_id {
        Some(Some(user_id)) => items.extend([b"u".to_vec(), user_id.clone().into_bytes()]),
        Some(None) => removed.push(b"u".to_vec()),
        None => {}
    }
    if let Some(expires_at) = patch.expires_at {
        items.extend([b"e".to_vec(), ms_arg(expires_at)]);
    }
    (removed, items)
}

/// Decodes an entry's fields (as HGETALL returns them, flat).
pub(super) fn decode_fields(id: &SessionKey, flat: Vec<Vec<u8>>) -> Result<CacheLookup> {
    if flat.is_empty() {
        return Ok(CacheLookup::Miss);
    }
    let corrupt = |reason: String| Error::Corrupt { id: id.to_string(), reason: format!("cache entry: {reason}") };
    let mut data = crate::record::Data::new();
    let mut quick = Vec::new();
    let (mut version, mut created, mut updated, mut expires, mut user_id) = (None, None, None, None, None);
    let mut pairs = flat.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        let number = || -> Result<i64> {
            std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| corrupt(format!("field {:?} is not a number", String::from_utf8_lossy(&field))))
        };
        match field.as_slice() {
            b"x" if value == b"moved" => return Ok(CacheLookup::Moved),
            b"x" => return Ok(CacheLookup::Deleted),
            // Where a rotation on a cluster moved the session (in its marker).
            b"n" => {}
            b"v" => version = Some(number()?),
            b"c" => created = Some(number()?),
            b"t" => updated = Some(number()?),
            b"e" => expires = Some(number()?),
            b"u" => user_id = Some(String::from_utf8(value).map_err(|_| corrupt("user id is not UTF-8".into()))?),
            _ if field.starts_with(b"q:") => {
                quick.push(String::from_utf8_lossy(&field[2..]).into_owned());
            }
            _ => {
                let key = field
                    .strip_prefix(b"d:")
                    .and_then(|key| std::str::from_utf8(key).ok())
                    .ok_or_else(|| corrupt(format!("unknown field {:?}", String::from_utf8_lossy(&field))))?;
                let value = serde_json::from_slice(&value).map_err(|e| corrupt(format!("value of {key:?}: {e}")))?;
                data.insert(key.to_owned(), value);
            }
        }
    }
    let time = |ms: Option<i64>, what: &str| {
        ms.and_then(record::from_millis).ok_or_else(|| corrupt(format!("{what} is missing or out of range")))
    };
    let version = version.ok_or_else(|| corrupt("no version".into()))?;
    let fields = Record {
        id: id.clone(),
        user_id,
        data,
        created_at: time(created, "created_at")?,
        updated_at: time(updated, "updated_at")?,
        expires_at: time(expires, "expires_at")?,
        version,
    };
    let record = fields.checked().map_err(corrupt)?;
    Ok(if quick.is_empty() { CacheLookup::Hit(record) } else { CacheLookup::Quick(record, quick) })
}
