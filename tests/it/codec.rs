//! The cookie codec: signatures, encryption, expiry, rotation, hostile input.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone as _, Timelike as _, Utc};
use proptest::prelude::*;
use serde_json::json;
use sessionctl::record::now;
use sessionctl::{CookieCodec, CookieError, CookiePayload, Error, Keys, Record, SessionId};

const OLD: &[u8] = b"old key ....................... 32+ bytes";
const NEW: &[u8] = b"new key ....................... 32+ bytes";

fn codec(keys: &[&[u8]]) -> CookieCodec {
    CookieCodec::new(Keys::new(keys.iter().copied()).unwrap())
}

fn inline_record() -> Record {
    crate::harness::record(None, Duration::hours(1), json!({"cart": ["tea"], "n": 3}))
}

/// Found by fuzzing: an expiry after the year 33658 was written with 13
/// digits, which the parser refused as malformed, so such a session could
/// never be read back from its cookie.
#[test]
fn cookies_of_sessions_expiring_far_in_the_future_decode() {
    let codec = codec(&[NEW]);
    let id = SessionId::generate();
    for far in [Utc.with_ymd_and_hms(50_000, 1, 1, 0, 0, 0).unwrap(), DateTime::<Utc>::MAX_UTC] {
        let value = codec.encode_reference(&id, far);
        let expected = CookiePayload::Reference { id: id.clone(), expires_at: far.with_nanosecond(0).unwrap() };
        assert_eq!(codec.decode(&value, Utc::now()), Ok(expected), "{value}");
    }
    let mut record = inline_record();
    record.expires_at = Utc.with_ymd_and_hms(50_000, 1, 1, 0, 0, 0).unwrap();
    let value = codec.encode_inline(&record);
    assert_eq!(codec.decode(&value, Utc::now()), Ok(CookiePayload::Inline(record)), "{value}");
}

#[test]
fn reference_round_trip() {
    let codec = codec(&[NEW]);
    let id = SessionId::generate();
    let expires = now() + Duration::hours(2);
    let value = codec.encode_reference(&id, expires);
    match codec.decode(&value, Utc::now()).unwrap() {
        CookiePayload::Reference { id: got, expires_at } => {
            assert_eq!(got, id);
            assert_eq!(expires_at.timestamp(), expires.timestamp());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn inline_round_trip_is_encrypted() {
    let codec = codec(&[NEW]);
    let record = inline_record();
    let value = codec.encode_inline(&record);
    assert!(!value.contains("tea"), "cookie-only payloads are encrypted, not just signed");
    assert_eq!(CookieCodec::inline_len(record.to_envelope().len(), record.expires_at), value.len());
    assert_eq!(codec.decode(&value, Utc::now()).unwrap(), CookiePayload::Inline(record));
}

/// Flips one character of the value at `index` to another base64url one.
fn tamper(value: &str, index: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn tampering_with_any_part_is_rejected() {
    let codec = codec(&[NEW]);
    let id = SessionId::generate();
    let value = codec.encode_reference(&id, now() + Duration::hours(2));
    let parts: Vec<&str> = value.split('.').collect();
    // id, expiry (a digit changed), signature
    let other_id = format!("1.{}.{}.{}", SessionId::generate(), parts[2], parts[3]);
    let later = format!("1.{}.{}.{}", parts[1], parts[2].parse::<i64>().unwrap() + 86400, parts[3]);
    let bad_sig = tamper(&value, value.len() - 3);
    for forged in [other_id, later, bad_sig] {
        assert_eq!(codec.decode(&forged, Utc::now()), Err(CookieError::BadSignature), "{forged}");
    }
    let inline = codec.encode_inline(&inline_record());
    for index in [2, 15, 30, inline.len() - 2] {
        assert!(codec.decode(&tamper(&inline, index), Utc::now()).is_err(), "inline tampered at {index}");
    }
    // Changing the plaintext expiry of an inline cookie breaks its tag.
    let (_, rest) = inline.split_once('.').unwrap();
    let (exp, blob) = rest.split_once('.').unwrap();
    let stretched = format!("2.{}.{blob}", exp.parse::<i64>().unwrap() + 86400);
    assert_eq!(codec.decode(&stretched, Utc::now()), Err(CookieError::BadSignature));
}

#[test]
fn expired_cookies_are_rejected() {
    let codec = codec(&[NEW]);
    let value = codec.encode_reference(&SessionId::generate(), now() - Duration::seconds(1));
    assert_eq!(codec.decode(&value, Utc::now()), Err(CookieError::Expired));
    let value = codec.encode_reference(&SessionId::generate(), now() + Duration::hours(1));
    assert_eq!(codec.decode(&value, Utc::now() + Duration::hours(2)), Err(CookieError::Expired));
    let mut record = inline_record();
    record.expires_at = now() - Duration::seconds(5);
    assert_eq!(codec.decode(&codec.encode_inline(&record), Utc::now()), Err(CookieError::Expired));
}

#[test]
fn rotated_out_key_verifies_while_listed_and_not_after() {
    let id = SessionId::generate();
    let expires = now() + Duration::hours(1);
    let old_cookie = codec(&[OLD]).encode_reference(&id, expires);
    let old_inline = codec(&[OLD]).encode_inline(&inline_record());

    let rotating = codec(&[NEW, OLD]);
    assert!(rotating.decode(&old_cookie, Utc::now()).is_ok(), "old key still listed: accepted");
    assert!(rotating.decode(&old_inline, Utc::now()).is_ok());
    let resigned = rotating.encode_reference(&id, expires);
    assert!(codec(&[NEW]).decode(&resigned, Utc::now()).is_ok(), "the first key signs");

    let rotated = codec(&[NEW]);
    assert_eq!(rotated.decode(&old_cookie, Utc::now()), Err(CookieError::BadSignature), "old key dropped: rejected");
    assert_eq!(rotated.decode(&old_inline, Utc::now()), Err(CookieError::BadSignature));
}

#[test]
fn short_keys_are_refused_with_a_clear_error() {
    let error = Keys::new([b"too short".as_slice()]).unwrap_err();
    assert!(matches!(error, Error::Key(_)));
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
    assert!(!error.to_string().contains("too short"), "the key itself is never echoed");
    assert!(Keys::new(Vec::<&[u8]>::new()).is_err());
    assert!(Keys::from_text("# comment only\n\n").is_err());
    let keys = Keys::from_text(
        "# newest first\nnew key ....................... 32+ bytes\nold key ....................... 32+ bytes\n",
    )
    .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(!format!("{keys:?}").contains("key ..."), "Debug output redacts keys");
}

#[test]
fn malformed_values_are_errors() {
    let codec = codec(&[NEW]);
    let id = SessionId::generate();
    let sig = URL_SAFE_NO_PAD.encode([0u8; 32]);
    for bad in [
        String::new(),
        ".".into(),
        "1".into(),
        "1...".into(),
        "9.abc".into(),
        format!("1.{id}.123"),
        format!("1.{id}.-5.{sig}"),
        format!("1.{id}.99999999999999999999.{sig}"),
        format!("1.{id}.123.{sig}.extra"),
        format!("1.{id}.123.!!!"),
        format!("1.{id}.123.{}", URL_SAFE_NO_PAD.encode([0u8; 31])),
        "2.123.".into(),
        "2.123.AAAA".into(),
        "x".repeat(100_000),
    ] {
        assert!(codec.decode(&bad, Utc::now()).is_err(), "{bad:.60}");
    }
    assert_eq!(codec.decode(&"1.".repeat(5000), Utc::now()), Err(CookieError::TooLong));
    // A signature one byte short or long (decoded into a 32-byte buffer) is
    // malformed, not a wrong signature and not a panic.
    for len in [0, 31, 33, 64] {
        let value = format!("1.{id}.4102444800.{}", URL_SAFE_NO_PAD.encode(vec![7u8; len]));
        assert_eq!(codec.decode(&value, Utc::now()), Err(CookieError::Malformed), "{len} bytes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(value in ".{0,300}") {
        let codec = codec(&[NEW]);
        prop_assert!(codec.decode(&value, Utc::now()).is_err());
    }

    #[test]
    fn arbitrary_cookie_shaped_strings_never_panic(version in "[0-9]", a in "[A-Za-z0-9_-]{0,40}", b in "[0-9]{0,14}", c in "[A-Za-z0-9_-]{0,200}") {
        let codec = codec(&[NEW]);
        for value in [format!("{version}.{a}.{b}.{c}"), format!("{version}.{b}.{c}")] {
            prop_assert!(codec.decode(&value, Utc::now()).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_as_envelopes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Record::from_envelope(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(codec(&[NEW]).decode(&text, Utc::now()).is_err());
    }

    #[test]
    fn single_character_changes_are_rejected(index in 0usize..81) {
        let codec = codec(&[NEW]);
        let value = codec.encode_reference(&SessionId::generate(), now() + Duration::hours(1));
        let index = index % value.len();
        let original = value.as_bytes()[index];
        for replacement in [b'A', b'0', b'.', b'_'] {
            if replacement == original { continue; }
            let mut bytes = value.clone().into_bytes();
            bytes[index] = replacement;
            let forged = String::from_utf8(bytes).unwrap();
            // A changed last character can decode to the same MAC bytes only
            // if it differs in padding bits, which the strict decoder refuses.
            prop_assert!(codec.decode(&forged, Utc::now()).is_err(), "{}", forged);
        }
    }
}

/// JSON text built from pieces that a JSON check accepts but a parser may
/// refuse (unpaired surrogate escapes, numbers past a double, nesting past
/// the parser's bound), among ordinary ones, with and without whitespace.
fn json_text() -> impl Strategy<Value = String> {
    let deep = (124usize..=128).prop_map(|levels| format!("{}{}", "[".repeat(levels), "]".repeat(levels)));
    let leaf = prop_oneof![
        Just("0".to_owned()),
        Just("-1.50".to_owned()),
        Just("1e10".to_owned()),
        Just("2.5E-3".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e309".to_owned()),
        Just("123456789012345678901234567890".to_owned()),
        Just("9".repeat(300)),
        Just("9".repeat(400)),
        Just(r#""plain""#.to_owned()),
        Just(r#""sp ace, [x]""#.to_owned()),
        Just(r#""q\"u{o}te\\""#.to_owned()),
        Just(r#""\ud800""#.to_owned()),
        Just(r#""x\uDC00""#.to_owned()),
        Just(r#""\ud83d\ude00""#.to_owned()),
        Just(r#""\u0041\n""#.to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        deep,
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        let space = prop_oneof![Just(""), Just(" "), Just("\n\t ")];
        prop_oneof![
            (proptest::collection::vec(inner.clone(), 0..4), space.clone())
                .prop_map(|(items, sp)| format!("[{sp}{}{sp}]", items.join(&format!(",{sp}")))),
            (proptest::collection::vec(("[a-c]", inner), 0..4), space).prop_map(|(entries, sp)| {
                let entries: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\"{sp}:{sp}{v}")).collect();
                format!("{{{sp}{}{sp}}}", entries.join(&format!(",{sp}")))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Values are kept as text and parsed on first read; a data column is
    /// accepted exactly when parsing it whole would have been, and reads as
    /// the same values: never a value that fails to parse later. (Keys are
    /// distinct: of a key given twice only the last value is kept, so a
    /// broken earlier one no longer refuses the whole column.)
    #[test]
    fn a_data_column_reads_as_parsing_it_whole_would(entries in proptest::collection::btree_map("[a-e]", json_text(), 0..4)) {
        let text = format!("{{{}}}", entries.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect::<Vec<_>>().join(", "));
        let whole = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text);
        let lazy = sessionctl::record::decode_data("x", &text);
        prop_assert_eq!(lazy.is_ok(), whole.is_ok(), "{}", text);
        if let (Ok(lazy), Ok(whole)) = (lazy, whole) {
            prop_assert_eq!(serde_json::Value::from(lazy), serde_json::Value::Object(whole));
        }
    }
}
