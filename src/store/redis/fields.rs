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

use std::io::Write as _;

use redis::{Cmd, RedisWrite as _};

use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};
use crate::store::{CacheLookup, Patch};

pub(super) fn expiry_ms(record: &Record) -> i64 {
    record.expires_at.timestamp_millis()
}

/// Appends a data key's hash field (`d:<key>`) to `cmd` as one argument.
fn write_data_field(cmd: &mut Cmd, key: &str) {
    let mut field = cmd.writer_for_next_arg();
    // Writes into the command's own buffer: they cannot fail.
    let _ = field.write_all(b"d:");
    let _ = field.write_all(key.as_bytes());
}

/// Appends a value's JSON text to `cmd` as one argument.
fn write_value(cmd: &mut Cmd, value: &impl serde::Serialize) {
    let _ = serde_json::to_writer(cmd.writer_for_next_arg(), value);
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

/// Appends the record's hash field/value pairs to `cmd`: `v` its version,
/// `m` its times (created, updated, expiry), `u` the user (absent when
/// none), and `d:<key>` the JSON text of each value. One field per key is
/// what lets a script change one key without parsing the others. Written
/// straight into the command's buffer (a field or value of its own cost
/// two allocations each: measured, BENCHMARKS.md issue #9).
pub(super) fn write_record(cmd: &mut Cmd, record: &Record, epoch: Option<&str>) {
    cmd.arg("v").arg(record.version).arg("m");
    let _ = write!(
        cmd.writer_for_next_arg(),
        "{} {} {}",
        record.created_at.timestamp_millis(),
        record.updated_at.timestamp_millis(),
        record.expires_at.timestamp_millis()
    );
    // Third, where `INSERT_IF_EMPTY` looks for it.
    if let Some(epoch) = epoch {
        cmd.arg(super::epoch::FIELD).arg(epoch);
    }
    if let Some(user_id) = &record.user_id {
        cmd.arg("u").arg(user_id.as_str());
    }
    // A value never read is written as the text it was read as.
    for (key, value) in record.data.entries() {
        write_data_field(cmd, key);
        write_value(cmd, &value);
    }
}

/// How many fields a patch removes and how many field/value items it sets
/// (what [`write_patch`] appends, counted first for the scripts).
pub(super) fn patch_counts(patch: &Patch) -> (usize, usize) {
    let user = |removal: bool| usize::from(matches!(&patch.user_id, Some(user) if user.is_none() == removal));
    (patch.removed.len() + user(true), 2 * (patch.set.len() + user(false)))
}

/// Appends a patch to `cmd`: the fields it removes, then the field/value
/// items it sets (the scripts rewrite `m` from the patch's times, passed on
/// their own).
pub(super) fn write_patch(cmd: &mut Cmd, patch: &Patch) {
    for key in &patch.removed {
        write_data_field(cmd, key);
    }
    if let Some(None) = &patch.user_id {
        cmd.arg("u");
    }
    for (key, value) in &patch.set {
        write_data_field(cmd, key);
        write_value(cmd, value);
    }
    if let Some(Some(user_id)) = &patch.user_id {
        cmd.arg("u").arg(user_id.as_str());
    }
}

/// Decodes an entry's fields (as HGETALL returns them, flat). With an
/// epoch, a live entry of another (or none) reads as absent (`epoch.rs`).
pub(super) fn decode_fields(id: &SessionKey, flat: Vec<Vec<u8>>, epoch: Option<&str>) -> Result<CacheLookup> {
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
    let mut entry_epoch = None;
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
            b"g" => entry_epoch = Some(value),
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
                // Kept as its text, checked to be JSON, until it is read.
                let text = String::from_utf8(value).map_err(|_| corrupt(format!("value of {key:?} is not UTF-8")))?;
                if !data.insert_text(key.to_owned(), text) {
                    return Err(corrupt(format!("value of {key:?} is not JSON")));
                }
            }
        }
    }
    if let Some(epoch) = epoch
        && entry_epoch.as_deref() != Some(epoch.as_bytes())
    {
        return Ok(CacheLookup::Miss);
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

    fn args_of(cmd: &Cmd) -> Vec<Vec<u8>> {
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => panic!("a script's arguments are plain values"),
            })
            .collect()
    }

    #[test]
    fn a_patch_writes_as_many_fields_as_it_counts_removal_first() {
        let mut patch = Patch::default();
        patch.set.insert("cart".into(), serde_json::json!([1, 2]));
        patch.set.insert("n".into(), serde_json::json!(3));
        patch.removed.push("gone".into());
        for (user_id, removed_fields, items) in [
            (None, vec!["d:gone"], vec!["d:cart", "[1,2]", "d:n", "3"]),
            (Some(None), vec!["d:gone", "u"], vec!["d:cart", "[1,2]", "d:n", "3"]),
            (Some(Some("ada".to_owned())), vec!["d:gone"], vec!["d:cart", "[1,2]", "d:n", "3", "u", "ada"]),
        ] {
            patch.user_id = user_id;
            let mut cmd = Cmd::new();
            write_patch(&mut cmd, &patch);
            let args: Vec<String> = args_of(&cmd).into_iter().map(|a| String::from_utf8(a).unwrap()).collect();
            assert_eq!(patch_counts(&patch), (removed_fields.len(), items.len()));
            assert_eq!(args[..removed_fields.len()], removed_fields[..]);
            assert_eq!(args[removed_fields.len()..], items[..]);
        }
    }

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
        let CacheLookup::Hit(record) = decode_fields(&id, current, None).unwrap() else { panic!("not a hit") };
        assert_eq!((record.version, record.user_id.as_deref(), record.data["n"].as_i64()), (7, Some("ada"), Some(1)));
        assert_eq!(record.updated_at.timestamp_millis(), 1_700_000_001_000);
        assert_eq!(record.expires_at.timestamp_millis(), 1_800_000_000_000);
        assert_eq!(decode_fields(&id, earlier, None).unwrap(), CacheLookup::Hit(record.clone()));
        assert_eq!(decode_fields(&id, patched_by_earlier, None).unwrap(), CacheLookup::Hit(record.clone()));
        // What `write_record` writes reads back as the record.
        let mut cmd = Cmd::new();
        write_record(&mut cmd, &record, None);
        assert_eq!(decode_fields(&id, args_of(&cmd), None).unwrap(), CacheLookup::Hit(record));
    }

    #[test]
    fn in_an_epoch_only_entries_of_that_epoch_are_hits_and_tombstones_stay() {
        let id = SessionKey::generate().1;
        let live = [("v", "7"), ("m", "1700000000000 1700000001000 1800000000000"), ("d:n", "1")];
        let with = |epoch: &'static str| {
            let mut fields = live.to_vec();
            fields.push(("g", epoch));
            flat(&fields)
        };
        let CacheLookup::Hit(record) = decode_fields(&id, with("AbC"), Some("AbC")).unwrap() else { panic!() };
        assert_eq!(record.version, 7);
        // Another epoch's, or written outside one (an earlier release, or
        // before the cache was put in front of a database): absent.
        assert_eq!(decode_fields(&id, with("XyZ"), Some("AbC")).unwrap(), CacheLookup::Miss);
        assert_eq!(decode_fields(&id, flat(&live), Some("AbC")).unwrap(), CacheLookup::Miss);
        // Without an epoch (cache only) the field is ignored.
        assert!(matches!(decode_fields(&id, with("XyZ"), None).unwrap(), CacheLookup::Hit(_)));
        // A deletion is one whatever its epoch.
        let tombstone = flat(&[("x", "deleted"), ("g", "XyZ")]);
        assert_eq!(decode_fields(&id, tombstone, Some("AbC")).unwrap(), CacheLookup::Deleted);
        // `write_record` writes the epoch third, where the refill script looks.
        let mut cmd = Cmd::new();
        write_record(&mut cmd, &record, Some("AbC"));
        let written = args_of(&cmd);
        assert_eq!((written[4].as_slice(), written[5].as_slice()), (&b"g"[..], &b"AbC"[..]));
        assert_eq!(decode_fields(&id, written, Some("AbC")).unwrap(), CacheLookup::Hit(record));
    }

    #[test]
    fn damaged_times_are_a_corrupt_entry_not_a_panic() {
        let id = SessionKey::generate().1;
        for times in ["", "1", "1 2", "1 2 3 4", "1  2 3", "x 1 2", "1 2 99999999999999999999", "1 2 3 "] {
            let error = decode_fields(&id, flat(&[("v", "1"), ("m", times), ("d:n", "1")]), None).unwrap_err();
            assert!(matches!(error, Error::Corrupt { .. }), "{times:?}: {error}");
        }
        let error = decode_fields(&id, flat(&[("m", "1 2 3"), ("d:n", "1")]), None).unwrap_err();
        assert!(error.to_string().contains("no version"), "{error}");
    }

    #[test]
    fn a_value_that_is_not_json_is_a_corrupt_entry_though_values_are_parsed_on_read() {
        let id = SessionKey::generate().1;
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for value in ["{", "", "[1,", deep.as_str()] {
            let entry = flat(&[("v", "1"), ("m", "1700000000000 1700000000000 1800000000000"), ("d:n", value)]);
            let error = decode_fields(&id, entry, None).unwrap_err();
            assert!(matches!(error, Error::Corrupt { .. }), "{value:?}: {error}");
        }
        let mut entry = flat(&[("v", "1"), ("m", "1700000000000 1700000000000 1800000000000")]);
        entry.extend([b"d:n".to_vec(), vec![0xff, b'1']]);
        assert!(decode_fields(&id, entry, None).unwrap_err().to_string().contains("not UTF-8"));
    }
}
