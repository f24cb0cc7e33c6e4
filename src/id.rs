//! Session ids and the keys sessions are stored under.
//!
//! A [`SessionId`] is 144 random bits from the operating system's CSPRNG,
//! written as 24 characters of base64url (no padding). Only the cookie
//! carries it. Every tier stores a session under its [`SessionKey`]: the
//! first 192 bits of the id's SHA-256, 32 characters of base64url. A leaked
//! database dump, Redis snapshot, export file or log line holds keys, and a
//! key does not give back the id a cookie needs.
//!
//! Why a plain SHA-256 and not a keyed hash: the id is 144 uniformly random
//! bits, so there is nothing to guess from a key (the preimage search is
//! 2^144 whatever the hash), and a key-less digest lets the admin tool turn
//! an id into its key without the cookie secret, and keeps every stored key
//! valid when that secret is rotated. Rack did the same after
//! CVE-2019-16782. Truncating to 192 bits keeps the primary key and the
//! indexes small and leaves collisions out of reach (2^96 sessions).
//!
//! Ids and keys are only ever created here or parsed (and validated) from
//! outside, so one in hand is always well formed: safe to put in a cache
//! key, a log line or a SQL parameter. Their lengths differ, so text that is
//! one cannot be taken for the other.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

/// Random bytes in an id: comfortably over the 128 bits that make guessing
/// hopeless, and a multiple of 3 so the text has no padding.
const ID_BYTES: usize = 18;
/// Length of the textual form.
pub const ID_LEN: usize = ID_BYTES / 3 * 4;

/// A session id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh id from the OS CSPRNG.
    ///
    /// A generated id never starts with `-`, so an operator can paste it as an
    /// argument (`sessionctl show <ID>`) without it being read as a flag. The
    /// first character is redrawn until it is not `-` (the first six bits are
    /// not 62), which keeps the ids uniform over the rest and costs 0.02 bits.
    ///
    /// # Panics
    /// Only if the operating system cannot supply randomness at all, in which
    /// case no secure session can be issued.
    pub fn generate() -> Self {
        const DASH: u8 = 62; // '-' in the base64url alphabet
        let mut bytes = [0u8; ID_BYTES];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        while bytes[0] >> 2 == DASH {
            getrandom::fill(&mut bytes[..1]).expect("the OS random number generator failed");
        }
        SessionId(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Parses and validates an id given as text (from a cookie, a flag or a
    /// database row).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] when the text is not a session id (length, alphabet).
    pub fn parse(text: &str) -> Result<Self> {
        let valid = text.len() == ID_LEN && is_base64url(text);
        if valid {
            Ok(SessionId(text.to_owned()))
        } else {
            let shown: String = text.chars().take(40).collect();
            Err(Error::InvalidId(format!("{shown:?} is not a session id ({ID_LEN} characters of A-Z a-z 0-9 - _)")))
        }
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shows the id's key, not the id: a `{:?}` in a log line or a panic
/// message must not hand out what a cookie carries. (`Display` writes the
/// id itself, for the cookie.)
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(key {})", SessionKey::of(self))
    }
}

impl std::str::FromStr for SessionId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SessionId::parse(s)
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Bytes of the SHA-256 digest a key keeps.
const KEY_BYTES: usize = 24;
/// Length of a key's textual form.
pub const KEY_LEN: usize = KEY_BYTES / 3 * 4;

/// The key a session is stored under in every tier: a digest of its
/// [`SessionId`] (see the [module](self) docs).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    /// The key of a session id.
    ///
    /// Like a generated id, a key never starts with `-`, so an operator can
    /// paste one from `sessionctl list` as an argument. When the digest's
    /// first six bits would write `-` (value 62), they are redrawn from the
    /// digest's unused bytes: keys stay uniform over the other 63 first
    /// characters, and the same id always gives the same key.
    pub fn of(id: &SessionId) -> Self {
        SessionKey::of_stored_id(id.as_str())
    }

    /// The key of an id as a row written before ids were hashed holds it:
    /// [`of`](Self::of) for a well-formed id, the same digest of the text
    /// for one written by hand.
    pub(crate) fn of_stored_id(text: &str) -> Self {
        use sha2::Digest as _;
        const DASH: u8 = 62; // '-' in the base64url alphabet
        let digest = sha2::Sha256::digest(text.as_bytes());
        let mut bytes = [0u8; KEY_BYTES];
        bytes.copy_from_slice(&digest[..KEY_BYTES]);
        if bytes[0] >> 2 == DASH {
            let spare = u64::from_be_bytes(digest[KEY_BYTES..].try_into().unwrap_or_default());
            let first = (0..10).map(|k| ((spare >> (6 * k)) & 63) as u8).find(|&v| v != DASH).unwrap_or(0);
            bytes[0] = (first << 2) | (bytes[0] & 3);
        }
        SessionKey(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A fresh session: a new id and its key.
    pub fn generate() -> (SessionId, Self) {
        let id = SessionId::generate();
        let key = SessionKey::of(&id);
        (id, key)
    }

    /// Parses and validates a stored key given as text (from a flag, a file
    /// or a database row).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] when the text is not a stored key (length, alphabet).
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() == KEY_LEN && is_base64url(text) {
            Ok(SessionKey(text.to_owned()))
        } else {
            let shown: String = text.chars().take(40).collect();
            Err(Error::InvalidId(format!(
                "{shown:?} is not a stored session key ({KEY_LEN} characters of A-Z a-z 0-9 - _)"
            )))
        }
    }

    /// Reads text that is either a session id (as a cookie carries it) or a
    /// stored key, and gives the key: an id is digested, a key is taken as
    /// it is. For what an operator pastes and for files written before ids
    /// were hashed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidId`] when the text is neither.
    pub fn from_id_or_key(text: &str) -> Result<Self> {
        match text.len() {
            ID_LEN => SessionId::parse(text).map(|id| SessionKey::of(&id)),
            KEY_LEN => SessionKey::parse(text),
            _ => {
                let shown: String = text.chars().take(40).collect();
                Err(Error::InvalidId(format!(
                    "{shown:?} is neither a session id ({ID_LEN} characters) nor a stored key ({KEY_LEN} characters)"
                )))
            }
        }
    }

    /// The textual form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({})", self.0)
    }
}

impl std::str::FromStr for SessionKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SessionKey::parse(s)
    }
}

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_base64url(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// base64url characters in byte order, as databases compare them.
const ORDERED_ALPHABET: &[u8] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// The four-character key prefix at `fraction` (0 to 1) of the key
/// space: the inverse of [`key_fraction`], to seek to a point of it.
pub(crate) fn key_at_fraction(fraction: f64) -> String {
    let mut rest = fraction.clamp(0.0, 1.0 - 1e-12) * 63.0;
    let first = rest.floor();
    let mut prefix = String::from(ORDERED_ALPHABET[1 + first as usize] as char);
    rest -= first;
    for _ in 0..3 {
        rest *= 64.0;
        let digit = rest.floor();
        prefix.push(ORDERED_ALPHABET[(digit as usize).min(63)] as char);
        rest -= digit;
    }
    prefix
}

/// Where a stored key sits in the key space, from 0 to 1. Keys are
/// digests, uniform over the alphabet, so this is also the share of the
/// table walked so far. Keys never start with `-` (the lowest character),
/// so the first character spans the other 63; keys from elsewhere that do
/// count as 0.
pub(crate) fn key_fraction(id: &str) -> f64 {
    let rank = |byte: u8| ORDERED_ALPHABET.iter().position(|&c| c == byte).unwrap_or(0) as f64;
    let mut bytes = id.bytes();
    let Some(first) = bytes.next() else { return 0.0 };
    if first == b'-' {
        return 0.0;
    }
    let mut scale = 1.0 / 63.0;
    let mut fraction = (rank(first) - 1.0) * scale;
    for byte in bytes.take(3) {
        scale /= 64.0;
        fraction += rank(byte) * scale;
    }
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_distinct_and_parse() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), ID_LEN);
        assert_eq!(SessionId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn generated_ids_never_start_with_a_dash() {
        // One in 64 would without the redraw: 4,096 ids all pass by chance with
        // probability (63/64)^4096, about 1e-28.
        for _ in 0..4096 {
            let id = SessionId::generate();
            assert!(!id.as_str().starts_with('-'), "{id}");
        }
        let dashed = "-".repeat(ID_LEN);
        assert!(SessionId::parse(&dashed).is_ok(), "ids from elsewhere may still start with '-'");
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "",
            "short",
            "x".repeat(25).as_str(),
            "aaaaaaaaaaaaaaaaaaaaaaa=",
            "aaaaaaaaaaaaaaaaaaaaaa/a",
            "ééééééééééé",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
        }
    }

    const FIXED_KEY: &str = "B9Jdr8J-ydaFlCooDNm-dpIIp6lZ4rDq";

    #[test]
    fn keys_are_digests_of_ids_and_never_ids() {
        let id = SessionId::generate();
        let key = SessionKey::of(&id);
        assert_eq!(key.as_str().len(), KEY_LEN);
        assert_eq!(SessionKey::of(&id), key, "the same id always has the same key");
        assert_ne!(SessionKey::of(&SessionId::generate()), key);
        assert!(!key.as_str().contains(id.as_str()));
        assert!(SessionId::parse(key.as_str()).is_err(), "a key is not an id");
        assert!(SessionKey::parse(id.as_str()).is_err(), "an id is not a key");
        assert_eq!(SessionKey::from_id_or_key(id.as_str()).unwrap(), key);
        assert_eq!(SessionKey::from_id_or_key(key.as_str()).unwrap(), key);
        assert!(SessionKey::from_id_or_key("nope").is_err());
        // SHA-256("0-----------------------"), first 24 bytes, base64url: a
        // stored key must never change with a dependency upgrade.
        let fixed = SessionKey::of(&SessionId::parse("0-----------------------").unwrap());
        assert_eq!(fixed.as_str(), FIXED_KEY);
        // This id's digest starts "-OagR5…": the first character is redrawn
        // from the digest's spare bytes, the rest kept.
        let redrawn = SessionKey::of(&SessionId::parse("Wy9oqTAK_zIEYorwDs8w-zGQ").unwrap());
        assert_eq!(redrawn.as_str(), "wOagR5HJ6zzrXhK7-d7dBkwv1bgnjAjo");
    }

    #[test]
    fn key_at_fraction_inverts_key_fraction() {
        for f in [0.0, 0.001, 0.25, 0.5, 0.777, 0.999_999] {
            let prefix = key_at_fraction(f);
            assert_eq!(prefix.len(), 4);
            assert!((key_fraction(&prefix) - f).abs() < 1e-6, "{f} -> {prefix}");
        }
        assert_eq!(key_at_fraction(0.0), "0---");
        assert_eq!(key_at_fraction(1.0), "zzzz");
    }

    #[test]
    fn key_fraction_spans_the_key_space() {
        assert_eq!(key_fraction("0-------------------------------"), 0.0, "the lowest key");
        assert_eq!(key_fraction("-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), 0.0);
        assert!(key_fraction("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz") > 0.9999);
        let keys: Vec<String> = (0..2000).map(|_| SessionKey::generate().1.as_str().to_owned()).collect();
        let below_half = keys.iter().filter(|key| key_fraction(key) < 0.5).count();
        assert!((800..1200).contains(&below_half), "{below_half} of 2000 below the middle");
    }

    #[test]
    fn debug_output_shows_the_key_not_the_id() {
        let id = SessionId::generate();
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.as_str()) && shown.contains(SessionKey::of(&id).as_str()), "{shown}");
    }

    #[test]
    fn keys_never_start_with_a_dash() {
        // One in 64 would without the redraw: 4,096 keys all pass by chance
        // with probability (63/64)^4096, about 1e-28.
        for _ in 0..4096 {
            let (_, key) = SessionKey::generate();
            assert!(!key.as_str().starts_with('-'), "{key}");
        }
    }
}
