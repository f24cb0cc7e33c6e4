//! Cookie values: signed references to server-side sessions, and encrypted
//! cookie-only sessions, with key rotation.
//!
//! Two formats, told apart by their version tag:
//!
//! * `1.<id>.<expires>.<mac>` — a reference to a stored session. `<expires>`
//!   is the absolute expiry in Unix seconds; `<mac>` is HMAC-SHA256 over the
//!   tag, id and expiry, base64url without padding. The expiry is bound into
//!   the MAC, so an old cookie cannot be stretched, and it is checked before
//!   any store I/O.
//! * `2.<expires>.<sealed>` — a whole session carried in the cookie:
//!   AES-256-GCM over the record envelope with a random 96-bit nonce, the
//!   expiry bound as associated data.
//!
//! A [`Keys`] list holds every key the app accepts: the first signs and
//! encrypts, all verify and decrypt, so a key is rotated by putting the new
//! one first and dropping the old one once its cookies have expired. Each
//! configured secret is never used directly: separate MAC and AEAD keys are
//! derived from it with HMAC-SHA256 and fixed labels. Verification is
//! constant-time (`Mac::verify_slice`); nothing about keys appears in `Debug`
//! output or errors.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{CookieError, Error, Result};
use crate::id::SessionId;
use crate::record::{self, Record};

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Longest cookie value the codec will look at. Browsers cap a cookie near
/// 4 KiB; anything much longer is not ours and is refused before parsing.
pub const MAX_COOKIE_LEN: usize = 8192;

const REFERENCE_TAG: &str = "1";
const INLINE_TAG: &str = "2";
const NONCE_LEN: usize = 12;
const MAC_LEN: usize = 32;

/// The secrets that sign and encrypt cookies. The first one signs; all verify.
#[derive(Clone)]
pub struct Keys {
    keys: Vec<DerivedKey>,
}

#[derive(Clone)]
struct DerivedKey {
    mac: HmacSha256,
    aead: Aes256Gcm,
}

impl Keys {
    /// Builds the key list from raw secrets, newest first.
    ///
    /// Each secret must be at least 32 bytes; an empty list is refused.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when no key is given or one is shorter than 32 bytes.
    pub fn new<I, K>(secrets: I) -> Result<Keys>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let mut keys = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let secret = secret.as_ref();
            if secret.len() < MIN_KEY_LEN {
                return Err(Error::Key(format!(
                    "key #{} is {} bytes; keys must be at least {MIN_KEY_LEN} bytes of random data (generate one with `openssl rand -base64 48`)",
                    index + 1,
                    secret.len()
                )));
            }
            keys.push(DerivedKey::derive(secret));
        }
        if keys.is_empty() {
            return Err(Error::Key("no key given; at least one key of 32 bytes or more is needed".into()));
        }
        Ok(Keys { keys })
    }

    /// Parses a secret file or `SESSIONCTL_SECRET` value: one key per line,
    /// newest first; blank lines and lines starting with `#` are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when the text holds no key or one is shorter than 32 bytes.
    pub fn from_text(text: &str) -> Result<Keys> {
        Keys::new(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')))
    }

    /// A fresh random key as text (64 base64url characters, 384 bits), for
    /// development setups that were given no secret.
    pub fn generate_secret() -> String {
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a key list always has a signing key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn signing(&self) -> &DerivedKey {
        &self.keys[0]
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys([redacted; {}])", self.keys.len())
    }
}

impl DerivedKey {
    fn derive(secret: &[u8]) -> DerivedKey {
        let sub_key = |label: &[u8]| -> [u8; 32] {
            let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let mac_key = sub_key(b"sessionctl cookie signing v1");
        let aead_key = sub_key(b"sessionctl cookie encryption v1");
        DerivedKey {
            mac: <HmacSha256 as KeyInit>::new_from_slice(&mac_key).expect("HMAC takes keys of any length"),
            aead: Aes256Gcm::new(&Key::<Aes256Gcm>::from(aead_key)),
        }
    }

    fn reference_mac(&self, id: &str, expires: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(REFERENCE_TAG.as_bytes());
        mac.update(b".");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(expires.as_bytes());
        mac
    }
}

/// What a verified cookie says.
#[derive(Debug, Clone, PartialEq)]
pub enum CookiePayload {
    /// A reference to a server-side session.
    Reference {
        /// The session id.
        id: SessionId,
        /// The absolute expiry bound into the cookie.
        expires_at: DateTime<Utc>,
    },
    /// A cookie-only session, carried whole.
    Inline(Record),
}

/// Encodes and verifies cookie values with a [`Keys`] list.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    keys: Keys,
}

impl CookieCodec {
    /// A codec over the given keys.
    pub fn new(keys: Keys) -> CookieCodec {
        CookieCodec { keys }
    }

    /// The cookie value that points at a stored session.
    pub fn encode_reference(&self, id: &SessionId, expires_at: DateTime<Utc>) -> String {
        let expires = expires_at.timestamp().max(0).to_string();
        let tag = self.keys.signing().reference_mac(id.as_str(), &expires).finalize().into_bytes();
        format!("{REFERENCE_TAG}.{id}.{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The cookie value that carries a whole session, encrypted.
    pub fn encode_inline(&self, record: &Record) -> String {
        let expires = record.expires_at.timestamp().max(0).to_string();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random number generator failed");
        let aad = inline_aad(&expires);
        let plaintext = record.to_envelope();
        let sealed = self
            .keys
            .signing()
            .aead
            .encrypt(&Nonce::from(nonce), Payload { msg: &plaintext, aad: aad.as_bytes() })
            .expect("AES-GCM encrypts any message under 64 GiB");
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        format!("{INLINE_TAG}.{expires}.{}", URL_SAFE_NO_PAD.encode(blob))
    }

    /// Length in bytes of the inline cookie for an envelope of `envelope_len`
    /// bytes, without encrypting anything.
    pub fn inline_len(envelope_len: usize, expires_at: DateTime<Utc>) -> usize {
        let expires_len = expires_at.timestamp().max(0).to_string().len();
        let blob = NONCE_LEN + envelope_len + 16;
        INLINE_TAG.len() + 1 + expires_len + 1 + (blob * 4).div_ceil(3)
    }

    /// Verifies a cookie value and reads what it says. Expired, forged,
    /// tampered, truncated or oversized values are errors, never panics.
    ///
    /// # Errors
    ///
    /// A [`CookieError`] when the value is malformed, its signature does not verify under
    /// any key, it does not decrypt, or it has expired at `now`.
    pub fn decode(&self, value: &str, now: DateTime<Utc>) -> Result<CookiePayload, CookieError> {
        self.decode_with_rotation(value, now).map(|(payload, _)| payload)
    }

    /// Like [`decode`](Self::decode), and also tells whether the value was
    /// signed with an older key of the list (so it should be re-issued
    /// under the current one).
    ///
    /// # Errors
    ///
    /// As [`CookieCodec::decode`].
    pub fn decode_with_rotation(&self, value: &str, now: DateTime<Utc>) -> Result<(CookiePayload, bool), CookieError> {
        if value.len() > MAX_COOKIE_LEN {
            return Err(CookieError::TooLong);
        }
        let (tag, rest) = value.split_once('.').ok_or(CookieError::Malformed)?;
        match tag {
            REFERENCE_TAG => self.decode_reference(rest, now),
            INLINE_TAG => self.decode_inline(rest, now),
            _ => Err(CookieError::UnknownVersion),
        }
    }

    fn decode_reference(&self, rest: &str, now: DateTime<Utc>) -> Result<(CookiePayload, bool), CookieError> {
        let mut parts = rest.split('.');
        let (Some(id), Some(expires), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CookieError::Malformed);
        };
        let id = SessionId::parse(id).map_err(|_| CookieError::Malformed)?;
        let expires_at = parse_expiry(expires)?;
        // Into a buffer on the stack: a MAC longer than ours does not fit.
        let mut buffer = [0u8; MAC_LEN];
        let decoded = URL_SAFE_NO_PAD.decode_slice(mac, &mut buffer).map_err(|_| CookieError::Malformed)?;
        if decoded != MAC_LEN {
            return Err(CookieError::Malformed);
        }
        let mac = &buffer[..];
        let key_index = self
            .keys
            .keys
            .iter()
            .position(|key| key.reference_mac(id.as_str(), expires).verify_slice(mac).is_ok())
            .ok_or(CookieError::BadSignature)?;
        if expires_at <= now {
            return Err(CookieError::Expired);
        }
        Ok((CookiePayload::Reference { id, expires_at }, key_index > 0))
    }

    fn decode_inline(&self, rest: &str, now: DateTime<Utc>) -> Result<(CookiePayload, bool), CookieError> {
        let (expires, blob) = rest.split_once('.').ok_or(CookieError::Malformed)?;
        let expires_at = parse_expiry(expires)?;
        let blob = URL_SAFE_NO_PAD.decode(blob).map_err(|_| CookieError::Malformed)?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(CookieError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CookieError::Malformed)?;
        let aad = inline_aad(expires);
        let (key_index, plaintext) = self
            .keys
            .keys
            .iter()
            .enumerate()
            .find_map(|(i, key)| {
                key.aead.decrypt(&nonce, Payload { msg: sealed, aad: aad.as_bytes() }).ok().map(|p| (i, p))
            })
            .ok_or(CookieError::BadSignature)?;
        if expires_at <= now {
            return Err(CookieError::Expired);
        }
        // Authenticated, so it is ours; a decode failure here means a format
        // this build does not read.
        let record = Record::from_envelope(&plaintext).map_err(|_| CookieError::UnknownVersion)?;
        if record.is_expired_at(now) {
            return Err(CookieError::Expired);
        }
        Ok((CookiePayload::Inline(record), key_index > 0))
    }
}

fn inline_aad(expires: &str) -> String {
    format!("{INLINE_TAG}.{expires}")
}

/// Digits in the longest expiry the encoders write: Unix seconds of chrono's
/// last representable time (year 262143) are 13 digits.
const MAX_EXPIRY_DIGITS: usize = 13;

fn parse_expiry(text: &str) -> Result<DateTime<Utc>, CookieError> {
    if text.is_empty() || text.len() > MAX_EXPIRY_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CookieError::Malformed);
    }
    let seconds: i64 = text.parse().map_err(|_| CookieError::Malformed)?;
    record::from_millis(seconds.saturating_mul(1000)).ok_or(CookieError::Malformed)
}
