//! Session ids: 144 random bits from the operating system's CSPRNG, written as
//! 24 characters of base64url (no padding).
//!
//! An id is only ever created here or parsed (and validated) from outside, so
//! a `SessionId` in hand is always well formed: safe to put in a cache key, a
//! log line or a SQL parameter.

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
        let valid = text.len() == ID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
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

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
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

/// base64url characters in byte order, as databases compare them.
const ORDERED_ALPHABET: &[u8] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// The four-character id prefix at `fraction` (0 to 1) of the generated id
/// space: the inverse of [`id_fraction`], to seek to a point of it.
pub(crate) fn id_at_fraction(fraction: f64) -> String {
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

/// Where an id sits in the id space, from 0 to 1. Ids are uniformly
/// random, so this is also the share of the table walked so far. Generated
/// ids never start with `-` (the lowest character), so the first character
/// spans the other 63; ids from elsewhere that do count as 0.
pub(crate) fn id_fraction(id: &str) -> f64 {
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

    #[test]
    fn id_at_fraction_inverts_id_fraction() {
        for f in [0.0, 0.001, 0.25, 0.5, 0.777, 0.999_999] {
            let prefix = id_at_fraction(f);
            assert_eq!(prefix.len(), 4);
            assert!((id_fraction(&prefix) - f).abs() < 1e-6, "{f} -> {prefix}");
        }
        assert_eq!(id_at_fraction(0.0), "0---");
        assert_eq!(id_at_fraction(1.0), "zzzz");
    }

    #[test]
    fn id_fraction_spans_the_generated_id_space() {
        assert_eq!(id_fraction("0-----------------------"), 0.0, "the lowest id a generator makes");
        assert_eq!(id_fraction("-zzzzzzzzzzzzzzzzzzzzzzz"), 0.0);
        assert!(id_fraction("zzzzzzzzzzzzzzzzzzzzzzzz") > 0.9999);
        // 'W' is the 33rd of the 63 first characters: 32/63 of the space lies below it.
        let middle = id_fraction("W-----------------------");
        assert!((middle - 0.5).abs() < 0.01, "{middle}");
        let ids: Vec<String> = (0..2000).map(|_| crate::SessionId::generate().as_str().to_owned()).collect();
        let below_half = ids.iter().filter(|id| id_fraction(id) < 0.5).count();
        assert!((800..1200).contains(&below_half), "{below_half} of 2000 below the middle");
    }
}
