//! A session record as the fields of a Redis hash, and back: `v` the
//! version, `m` the created, updated and expiry times in Unix ms
//! (`<created> <updated> <expiry>`), `u` the user, `d:<key>` each value's
//! JSON, `q:<key>` a quick write not yet persisted, `x` a tombstone's reason
//! and `n` where a rotation moved the session.
//!
//! Entries of earlier releases hold the times in three fields, `c`, `t`
//! and `e`. They are read, and a script rewrites them in this layout when
//! it next changes them. A process of an earlier release still running
//! (a rolling deploy) patches an entry of this layout by its `v`, writing
//! `t` (and `e`) beside `m`: a time in a field of its own wins over `m`'s,
//! and the next script of this release folds it back into `m`. Such a
//! process cannot read this layout (it takes the entry for a corrupt one:
//! in front of a database it reads the database instead).
//!
//! One field for the three times is what makes a read cheap: a client
//! parses each field of an `HGETALL` reply as a value of its own (measured:
//! ten fields cost the request path ~6 µs of CPU more than four).

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

/// The three numbers of an `m` field, separated by single spaces.
fn times_in(text: &str) -> Option<[i64; 3]> {
    let mut parts = text.split(' ');
    let mut numbers = [0; 3];
    for number in &mut numbers {
        *number = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(numbers)
}

/// The `m` field's value: created, updated and expiry times.
fn times(record: &Record) -> Vec<u8> {
    format!(
        "{} {} {}",
        record.created_at.timestamp_millis(),
        record.updated_at.timestamp_millis(),
        record.expires_at.timestamp_millis()
    )
    .into_bytes()
}

/// The record as hash field/value pairs: `v` its version, `m` its times,
/// `u` the user (absent when none), and `d:<key>` the JSON text of each
/// value. One field per key is what lets a script change one key without
/// parsing the others.
pub(super) fn record_fields(record: &Record) -> Vec<Vec<u8>> {
    let mut fields = Vec::with_capacity(6 + 2 * record.data.len());
    fields.extend([b"v".to_vec(), record.version.to_string().into_bytes(), b"m".to_vec(), times(record)]);
    if let Some(user_id) = &record.user_id {
        fields.extend([b"u".to_vec(), user_id.clone().into_bytes()]);
    }
    for (key, value) in &record.data {
        fields.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    fields
}

/// A patch as the fields it removes and the field/value items it sets (the
/// scripts rewrite `m` from the patch's times, passed on their own).
pub(super) fn patch_fields(patch: &Patch) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut removed: Vec<Vec<u8>> = patch.removed.iter().map(|key| data_field(key)).collect();
    let mut items = Vec::with_capacity(2 * patch.set.len() + 2);
    for (key, value) in &patch.set {
        items.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    match &patch.user_id {
        Some(Some(user_id)) => items.extend([b"u".to_vec(), user_id.clone().into_bytes()]),
        Some(None) => removed.push(b"u".to_vec()),
        None => {}
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
    // The times in `m`; a time in a field of its own (the earlier layout,
    // or an earlier release's patch of this one) wins.
    let mut packed = None;
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
            b"m" => {
                let times = std::str::from_utf8(&value).ok().and_then(times_in).ok_or_else(|| {
                    corrupt(format!("times {:?} are not three numbers", String::from_utf8_lossy(&value)))
                })?;
                packed = Some(times);
            }
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
    if let Some([c, t, e]) = packed {
        (created, updated, expires) = (created.or(Some(c)), updated.or(Some(t)), expires.or(Some(e)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(fields: &[(&str, &str)]) -> Vec<Vec<u8>> {
        fields.iter().flat_map(|(name, value)| [name.as_bytes().to_vec(), value.as_bytes().to_vec()]).collect()
    }

    #[test]
    fn every_layout_of_the_times_decodes_to_the_same_record() {
        let id = SessionKey::generate().1;
        let current =
            flat(&[("v", "7"), ("m", "1700000000000 1700000001000 1800000000000"), ("u", "ada"), ("d:n", "1")]);
        let earlier = flat(&[
            ("v", "7"),
            ("c", "1700000000000"),
            ("t", "1700000001000"),
            ("e", "1800000000000"),
            ("u", "ada"),
            ("d:n", "1"),
        ]);
        // What a process of an earlier release leaves after patching an
        // entry of this layout: its `t` (and `e`) beside `m`.
        let patched_by_earlier = flat(&[
            ("v", "7"),
            ("m", "1700000000000 1600000000000 1700000000000"),
            ("u", "ada"),
            ("d:n", "1"),
            ("t", "1700000001000"),
            ("e", "1800000000000"),
        ]);
        let CacheLookup::Hit(record) = decode_fields(&id, current).unwrap() else { panic!("not a hit") };
        assert_eq!((record.version, record.user_id.as_deref(), record.data["n"].as_i64()), (7, Some("ada"), Some(1)));
        assert_eq!(record.updated_at.timestamp_millis(), 1_700_000_001_000);
        assert_eq!(record.expires_at.timestamp_millis(), 1_800_000_000_000);
        assert_eq!(decode_fields(&id, earlier).unwrap(), CacheLookup::Hit(record.clone()));
        assert_eq!(decode_fields(&id, patched_by_earlier).unwrap(), CacheLookup::Hit(record.clone()));
        // What `record_fields` writes reads back as the record.
        assert_eq!(decode_fields(&id, record_fields(&record)).unwrap(), CacheLookup::Hit(record));
    }

    #[test]
    fn damaged_times_are_a_corrupt_entry_not_a_panic() {
        let id = SessionKey::generate().1;
        for times in ["", "1", "1 2", "1 2 3 4", "1  2 3", "x 1 2", "1 2 99999999999999999999", "1 2 3 "] {
            let error = decode_fields(&id, flat(&[("v", "1"), ("m", times), ("d:n", "1")])).unwrap_err();
            assert!(matches!(error, Error::Corrupt { .. }), "{times:?}: {error}");
        }
        let error = decode_fields(&id, flat(&[("m", "1 2 3"), ("d:n", "1")])).unwrap_err();
        assert!(error.to_string().contains("no version"), "{error}");
    }
}
