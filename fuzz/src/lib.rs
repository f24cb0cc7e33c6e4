//! The checks behind the fuzz targets: one function per parser of untrusted
//! input, each fed raw bytes.
//!
//! Every `fuzz_targets/<target>.rs` is a single call into this file, and the
//! main crate's `tests/it/fuzz_corpus.rs` includes this same file (`#[path]`)
//! to replay `corpus/<target>/` on every `cargo test`: an input the fuzzer
//! kept, or one that once crashed, is checked in CI by exactly the code that
//! found it. So this file uses only the main crate's own dependencies.
//!
//! Beyond "never panics", each check asserts something a user would notice
//! if it broke: a cookie we issue again reads back the same, an exported line
//! imports as the same session, a header never yields a value we could not
//! have set. Time is pinned to [`now`] so a replay in ten years behaves as
//! the fuzzing run did.

use std::sync::LazyLock;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone as _, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use sessionctl::admin::ExportLine;
use sessionctl::record::{self, Record};
use sessionctl::{CookieCodec, CookieError, CookiePayload, Keys};

/// The key that signs, first in the codec's list.
pub const CURRENT_KEY: &[u8] = b"fuzz: current key, 32+ bytes, never used anywhere real";
/// A rotated-out key the codec still accepts.
pub const OLD_KEY: &[u8] = b"fuzz: old key, 32+ bytes, also never used anywhere real";
/// The cookie name `cookie_header` looks for (the library's default).
pub const COOKIE_NAME: &str = "sid";
/// Separates the `Cookie` headers of one `cookie_header` input: a header
/// value cannot hold a newline, so every other byte is the fuzzer's.
pub const HEADER_SEPARATOR: u8 = b'\n';

/// The fixed "now" of every check: 2026-01-01T00:00:00Z.
pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600, 0).unwrap()
}

/// The codec under test: [`CURRENT_KEY`] signs, [`OLD_KEY`] still verifies.
pub fn codec() -> &'static CookieCodec {
    static CODEC: LazyLock<CookieCodec> =
        LazyLock::new(|| CookieCodec::new(Keys::new([CURRENT_KEY, OLD_KEY]).expect("both keys are 32+ bytes")));
    &CODEC
}

/// Target `cookie_decode`: any text as a cookie value.
pub fn cookie_decode(data: &[u8]) {
    if let Ok(value) = std::str::from_utf8(data) {
        check_cookie(value, None);
    }
}

/// Target `cookie_signed`: a validly signed or sealed cookie around a payload
/// the fuzzer chose, so the checks after authentication (id, expiry,
/// envelope) see hostile input too, which no forger could reach.
///
/// Byte 0: bit 0 picks the format (0: `1.` reference, 1: `2.` inline), bit 1
/// the key (0: current, 1: old). The rest, for a reference, is the signed
/// text `<id>.<expires>`; for an inline cookie, `<expires>.<plaintext>` with
/// the plaintext sealed as is (the codec reads it as a record envelope).
pub fn cookie_signed(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let old_key = mode & 2 != 0;
    let secret = if old_key { OLD_KEY } else { CURRENT_KEY };
    let value = if mode & 1 == 0 {
        let Ok(signed) = std::str::from_utf8(rest) else { return };
        sign_reference(secret, signed)
    } else {
        let dot = rest.iter().position(|&b| b == b'.').unwrap_or(rest.len());
        let Ok(expires) = std::str::from_utf8(&rest[..dot]) else { return };
        seal_inline(secret, expires, rest.get(dot + 1..).unwrap_or_default())
    };
    check_cookie(&value, Some(old_key));
}

/// Target `cookie_header`: `Cookie` headers as raw bytes, several separated
/// by [`HEADER_SEPARATOR`], read the way the layer reads a request.
pub fn cookie_header(data: &[u8]) {
    let values = sessionctl::web::cookie_values(data.split(|&b| b == HEADER_SEPARATOR), COOKIE_NAME);
    for value in &values {
        // Could not have been set by us, or could break the cookie decoder's
        // assumptions: empty, a space, a quote, a separator, non-ASCII.
        assert!(
            !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b';'),
            "cookie_values returned {value:?}"
        );
        assert!(data.windows(value.len()).any(|w| w == value.as_bytes()), "{value:?} is not in the header");
        check_cookie(value, None);
    }
}

/// Target `record_envelope`: bytes as a cache entry or cookie-only payload
/// (`Record::from_envelope`), and as a database data column
/// (`record::decode_data`).
pub fn record_envelope(data: &[u8]) {
    if let Ok(record) = Record::from_envelope(data) {
        // What the cache tier writes back must read back the same.
        let again = Record::from_envelope(&record.to_envelope());
        assert_eq!(again.as_ref().ok(), Some(&record), "envelope does not round-trip: {again:?}");
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(object) = record::decode_data("fuzz", text)
    {
        // What the database tier writes back must read back the same.
        let again = record::decode_data("fuzz", &record::encode_data(&object));
        assert_eq!(again.as_ref().ok(), Some(&object), "data column does not round-trip: {again:?}");
    }
}

/// Target `export_line`: one line of a `sessionctl import` file.
pub fn export_line(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else { return };
    if let Ok(record) = ExportLine::parse(line) {
        // `export` of what `import` accepted must import as the same session.
        let exported = ExportLine::from_record(&record).to_json();
        let again = ExportLine::parse(&exported);
        assert_eq!(again.as_ref().ok(), Some(&record), "{exported} does not import back: {again:?}");
    }
}

/// Target `duration`: `--older-than`, `--max-duration` and the like.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(parsed) = sessionctl::purge::parse_duration(text) {
        // Whole milliseconds, and the same when written in seconds and ms.
        assert_eq!(parsed.subsec_nanos() % 1_000_000, 0, "{text:?} gave {parsed:?}");
        let canonical = format!("{}s{}ms", parsed.as_secs(), parsed.subsec_millis());
        assert_eq!(sessionctl::purge::parse_duration(&canonical), Ok(parsed), "{text:?} vs {canonical:?}");
    }
}

/// Target `cron_schedule`: `serve-cron --schedule`, and the next run the
/// daemon then waits for.
pub fn cron_schedule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(schedule) = sessionctl::purge::parse_schedule(text) {
        let mut upcoming = schedule.after(&now());
        let first = upcoming.next();
        if let (Some(first), Some(second)) = (first, upcoming.next()) {
            assert!(now() < first && first < second, "{text:?}: runs at {first} then {second}");
        }
    }
}

/// Decodes `value` and checks what a decoded cookie promises. `signed_with_old_key`
/// is `Some` when the value was signed or sealed here with a real key, so it
/// can never be refused as forged and must report rotation truthfully.
fn check_cookie(value: &str, signed_with_old_key: Option<bool>) {
    let codec = codec();
    let decoded = codec.decode_with_rotation(value, now());
    assert_eq!(codec.decode(value, now()), decoded.clone().map(|(payload, _)| payload));
    match decoded {
        Ok((payload, rotated)) => {
            if let Some(old_key) = signed_with_old_key {
                assert_eq!(rotated, old_key, "rotation flag wrong for {value:?}");
            }
            check_reissue(&payload);
        }
        Err(CookieError::BadSignature) => {
            assert!(signed_with_old_key.is_none(), "{value:?} was signed with a configured key")
        }
        Err(_) => {}
    }
}

/// A session read from a cookie is re-issued under the current key when
/// saved; that cookie must bring back the same session.
fn check_reissue(payload: &CookiePayload) {
    let codec = codec();
    let (reissued, expires_at) = match payload {
        CookiePayload::Reference { id, expires_at } => (codec.encode_reference(id, *expires_at), *expires_at),
        CookiePayload::Inline(record) => (codec.encode_inline(record), record.expires_at),
    };
    match codec.decode_with_rotation(&reissued, now()) {
        Ok(again) => assert_eq!(again, (payload.clone(), false), "{reissued:?} reads back differently"),
        // The cookie's own expiry is in whole seconds, rounded down: a
        // session in its last second is refused a fraction of a second early.
        Err(CookieError::Expired) if expires_at - now() < chrono::Duration::seconds(1) => {}
        Err(error) => panic!("re-issued cookie {reissued:?} for {payload:?} is refused: {error}"),
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The codec's key derivation, written out again: a sub-key per purpose,
/// HMAC-SHA256 of a fixed label under the configured secret.
fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// `1.<signed>.<mac>`, the MAC taken over `1.<signed>` as the codec does
/// over `1.<id>.<expires>`.
fn sign_reference(secret: &[u8], signed: &str) -> String {
    let key = derive(secret, b"sessionctl cookie signing v1");
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(b"1.");
    mac.update(signed.as_bytes());
    format!("1.{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// `2.<expires>.<nonce ‖ AES-256-GCM(plaintext)>`, with `2.<expires>` as the
/// associated data. A fixed nonce is fine here: nothing is kept secret.
pub fn seal_inline(secret: &[u8], expires: &str, plaintext: &[u8]) -> String {
    let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(derive(secret, b"sessionctl cookie encryption v1")));
    let nonce = [7u8; 12];
    let aad = format!("2.{expires}");
    let sealed = aead
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
        .expect("AES-GCM encrypts any message under 64 GiB");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&sealed);
    format!("2.{expires}.{}", URL_SAFE_NO_PAD.encode(blob))
}

/// The realistic inputs each target starts from, as `(target, name, bytes)`:
/// cookies the codec really issues, browser `Cookie` headers, real export
/// lines and envelopes, everyday durations and schedules.
/// `tests/it/fuzz_corpus.rs`'s ignored `write_seed_corpus` writes them into
/// `corpus/<target>/`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use serde_json::json;
    use sessionctl::{SessionId, SessionKey};

    let at = |seconds: i64| now() + chrono::Duration::seconds(seconds);
    let id = SessionId::parse("q3Jd_8x-Lp0aZ1vB2nC4mE6t").expect("seed ids are well formed");
    let record = |user: Option<&str>, data: serde_json::Value, expires_in: i64| Record {
        id: SessionKey::of(&id),
        user_id: user.map(str::to_owned),
        data: data.as_object().cloned().unwrap_or_default().into(),
        created_at: at(-3600) + chrono::Duration::milliseconds(123),
        updated_at: at(-60),
        expires_at: at(expires_in) + chrono::Duration::milliseconds(456),
        version: 3,
    };
    let records = [
        record(None, json!({}), 3600),
        record(Some("alice"), json!({"cart": ["tea", "milk"], "n": 3, "flash": null}), 7 * 86_400),
        record(
            Some("josé@example.org"),
            json!({"name": "José", "emoji": "🍪", "ratio": 0.1, "big": 18446744073709551615u64, "neg": -42, "nested": {"a": [true, false, {"b": 1e-7}]}}),
            86_400,
        ),
        record(None, json!({"visits": 1}), -10),
    ];
    let current = CookieCodec::new(Keys::new([CURRENT_KEY]).expect("a 32+ byte key"));
    let old = CookieCodec::new(Keys::new([OLD_KEY]).expect("a 32+ byte key"));

    let mut seeds: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add =
        |target: &'static str, name: &str, bytes: &[u8]| seeds.push((target, name.to_owned(), bytes.to_vec()));

    let reference = current.encode_reference(&id, at(7200));
    let cookies = [
        ("reference", reference.clone()),
        ("reference-old-key", old.encode_reference(&id, at(7200))),
        ("reference-expired", current.encode_reference(&id, at(-1))),
        ("inline-empty", current.encode_inline(&records[0])),
        ("inline-data", current.encode_inline(&records[1])),
        ("inline-unicode-old-key", old.encode_inline(&records[2])),
        ("inline-expired", current.encode_inline(&records[3])),
        ("tampered", reference.replacen("q3J", "q3K", 1)),
        ("unknown-version", "3.1767229200.AAAA".to_owned()),
        ("bare-tag", "1.".to_owned()),
    ];
    for (name, cookie) in &cookies {
        add("cookie_decode", name, cookie.as_bytes());
    }

    for (mode, name) in [(0u8, "reference"), (2, "reference-old-key")] {
        for (suffix, signed) in
            [("", format!("{}.{}", records[1].id, at(7200).timestamp())), ("-expired", format!("{}.1", records[1].id))]
        {
            let mut bytes = vec![mode];
            bytes.extend_from_slice(signed.as_bytes());
            add("cookie_signed", &format!("{name}{suffix}"), &bytes);
        }
    }
    for (mode, name) in [(1u8, "inline"), (3, "inline-old-key")] {
        for (i, record) in records.iter().enumerate() {
            let mut bytes = vec![mode];
            bytes.extend_from_slice(format!("{}.", record.expires_at.timestamp().max(0)).as_bytes());
            bytes.extend_from_slice(&record.to_envelope());
            add("cookie_signed", &format!("{name}-{i}"), &bytes);
        }
    }

    let inline = &cookies[4].1;
    let headers: [(&str, Vec<u8>); 9] = [
        ("alone", format!("sid={reference}").into_bytes()),
        ("among-others", format!("_ga=GA1.2.1234567890.1700000000; sid={reference}; theme=dark").into_bytes()),
        ("utf8-neighbour", format!("name=José; sid={inline}; lang=fr-FR").into_bytes()),
        ("obs-text-neighbour", [b"legacy=caf\xe9; sid=".as_slice(), reference.as_bytes(), b"; x=\xff\xfe"].concat()),
        ("quoted", format!("sid=\"{reference}\"; q=\"a b\"").into_bytes()),
        ("empty-pairs", format!(";; =; sid=; =x; sid ; sid={reference};").into_bytes()),
        ("two-of-ours", format!("sid={}; sid={reference}", cookies[1].1).into_bytes()),
        ("several-headers", format!("a=1; b=2\nsid={reference}\nsid=\"\"; c=3").into_bytes()),
        ("spaces-and-tabs", format!("  sid \t= {reference}\t;  other = v ").into_bytes()),
    ];
    for (name, header) in &headers {
        add("cookie_header", name, header);
    }

    for (i, record) in records.iter().enumerate() {
        add("record_envelope", &format!("envelope-{i}"), &record.to_envelope());
        add("record_envelope", &format!("data-{i}"), record.data_json().as_bytes());
        add("export_line", &format!("line-{i}"), ExportLine::from_record(record).to_json().as_bytes());
    }
    let offset_line = r#"{"id":"q3Jd_8x-Lp0aZ1vB2nC4mE6t","user_id":null,"created_at":"2025-12-31T23:00:00.123+02:00","updated_at":"2025-12-31T23:59:00Z","expires_at":"2026-01-08T00:00:00.456789Z","version":0,"data":{"k":[1,2.5,"v"]}}"#;
    add("export_line", "offset-times", offset_line.as_bytes());

    for text in ["90s", "1h30m", "15m", "2h", "7d", "250ms", "1w", "10sec", "5min", " 30s ", "0s", "2h30m15s500ms"] {
        add("duration", text.trim(), text.as_bytes());
    }
    let schedules = [
        "*/15 * * * *",
        "0 */5 * * * *",
        "0 3 * * *",
        "0 0 3 * * Mon-Fri",
        "0 30 9,12,15 1,15 May-Aug Mon,Wed,Fri 2026/2",
        "* * * * * *",
        "0 0 0 29 2 * *",
        "@daily",
        "@hourly",
        "0 0 12 L * ? *",
    ];
    for (i, text) in schedules.iter().enumerate() {
        add("cron_schedule", &format!("schedule-{i}"), text.as_bytes());
    }
    seeds
}
