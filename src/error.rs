//! The library's one error type.
//!
//! Every backend maps its own failures into [`Error`], so callers match on what
//! went wrong in session terms (a bad cookie, a version conflict, a database
//! that is down) rather than on sqlx or redis types. Messages never contain
//! secrets: connection URLs are redacted before they reach an error.

/// The cause of a tier's failure, whatever the driver: what a backend not
/// built on sqlx (DynamoDB, MongoDB…) puts in [`Error::Database`].
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the session library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cookie value could not be accepted. Callers treat this as "no
    /// session"; the reason is for logs and for `sessionctl show`.
    #[error("cookie rejected: {0}")]
    Cookie(#[from] CookieError),

    /// A key given to the codec is unusable (too short, none given…).
    #[error("invalid cookie key: {0}")]
    Key(String),

    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A string is not a session id.
    #[error("invalid session id: {0}")]
    InvalidId(String),

    /// The session's encoded data is larger than the configured limit.
    #[error("session data is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the data.
        size: usize,
        /// The configured limit.
        limit: usize,
    },

    /// Another writer kept changing the session and the save gave up after
    /// its bounded retries.
    #[error("session {id} was changed concurrently {attempts} times in a row; retry the request")]
    Conflict {
        /// The session id.
        id: String,
        /// How many attempts were made.
        attempts: u32,
    },

    /// A session value is not of the type the handler asked for (a value
    /// written by an earlier release of the app, say). The session is left
    /// as it was.
    #[error("session value {key:?} has another type: {reason}")]
    WrongType {
        /// The session key.
        key: String,
        /// What serde found instead.
        reason: String,
    },

    /// A value given to the session cannot be serialized to JSON by its
    /// type (a map keyed by tuples, a poisoned lock, a `Serialize` that
    /// fails): a fault of the app's, refused at `insert`.
    #[error("session value {key:?} cannot be stored as JSON: {reason}")]
    Unserializable {
        /// The session key.
        key: String,
        /// serde's message.
        reason: String,
    },

    /// The work a call waited on ended without an outcome: the task writing
    /// a combined save of this session died, or the runtime shut down
    /// first. Whether the change landed is not known; nothing was wrong
    /// with the request or the configuration.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A stored record (database row or cache entry) cannot be decoded.
    #[error("stored session {id} is corrupt: {reason}")]
    Corrupt {
        /// The session id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The database tier failed.
    #[error("database error ({backend}) during {operation}: {}", without_server_line(&source.to_string()))]
    Database {
        /// `sqlite`, `postgres`, or another tier's name.
        backend: &'static str,
        /// What the library was doing.
        operation: &'static str,
        /// The driver's error (any driver's: a tier not built on sqlx
        /// reports its own).
        #[source]
        source: BoxedError,
    },

    /// A tier did not answer within its timeout (a hung server, a
    /// partitioned network). Nothing is assumed about whether the call took
    /// effect.
    #[error("{backend} did not answer within {after:?} during {operation}")]
    Timeout {
        /// `sqlite`, `postgres`, `redis`.
        backend: &'static str,
        /// What the library was doing.
        operation: &'static str,
        /// The timeout that passed.
        after: std::time::Duration,
    },

    /// Applying the schema failed.
    #[error("schema migration failed ({backend}): {source}")]
    Migrate {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The migrator's error.
        #[source]
        source: BoxedError,
    },

    /// The database's schema is not the one this build uses (absent,
    /// behind, or newer), and the store was opened without applying it.
    #[error("{message}")]
    Schema {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What is wrong and what to run, in one line.
        message: String,
    },

    /// A SQLite database file that must exist does not.
    #[error("no SQLite database at {0}: check the path, or create it with `sessionctl migrate`")]
    NoDatabase(String),

    /// The cache tier failed. The tiered store normally absorbs this (falls
    /// back to the database); it surfaces only in cache-only mode.
    #[error("cache error ({backend}) during {operation}: {message}")]
    Cache {
        /// `redis` or `memory`.
        backend: &'static str,
        /// What the library was doing.
        operation: &'static str,
        /// The client's message.
        message: String,
    },

    /// No such session (or user) in the store.
    #[error("{0}")]
    NotFound(String),

    /// Input from outside (an edit, an import file, a flag) is not valid.
    #[error("{0}")]
    InvalidInput(String),

    /// One failure shared by several requests: a write that combined their
    /// changes (concurrent saves of one session) failed for all of them.
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),

    /// The tier does not implement this operation (a third-party tier may
    /// leave the maintenance, accounts and purge parts to their defaults).
    #[error("the {backend} database tier does not support {operation}")]
    Unsupported {
        /// The tier's backend name.
        backend: &'static str,
        /// What was asked of it.
        operation: &'static str,
    },

    /// A database URL names a scheme this build does not support.
    #[error("unsupported database URL scheme {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

/// A driver's error as another request that shared the call sees it: its
/// message.
#[derive(Debug)]
struct SharedMessage(String);

impl std::fmt::Display for SharedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SharedMessage {}

/// Why a cookie value was rejected. None of these leak key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// Not of the shape `<version>.<fields…>`.
    #[error("malformed cookie")]
    Malformed,
    /// The version tag is not one this build understands.
    #[error("unknown cookie format version")]
    UnknownVersion,
    /// Longer than any cookie this library issues.
    #[error("cookie too long")]
    TooLong,
    /// The signature or AEAD tag did not verify with any configured key.
    #[error("bad signature (forged, tampered with, or signed by a key no longer configured)")]
    BadSignature,
    /// The embedded absolute expiry has passed.
    #[error("cookie expired")]
    Expired,
}

impl Error {
    /// An operation the tier `backend` does not implement.
    pub fn unsupported(backend: &'static str, operation: &'static str) -> Error {
        Error::Unsupported { backend, operation }
    }

    pub(crate) fn db(backend: &'static str, operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { backend, operation, source: Box::new(source) }
    }

    /// True when the error came from the database tier (the request must
    /// fail rather than continue with an empty session).
    pub fn is_database(&self) -> bool {
        match self {
            Error::Shared(error) => error.is_database(),
            other => matches!(other, Error::Database { .. } | Error::Migrate { .. } | Error::Timeout { .. }),
        }
    }

    /// A copy of this error for another request that shared the failed
    /// operation: the same kind and message. A driver's error is not
    /// cloneable: the copy carries its message (the request that made the
    /// call keeps the driver's error itself).
    pub(crate) fn shared(error: &Error) -> Error {
        let message = |source: &BoxedError| -> BoxedError { Box::new(SharedMessage(source.to_string())) };
        match error {
            Error::Shared(inner) => Error::Shared(inner.clone()),
            Error::Cookie(reason) => Error::Cookie(reason.clone()),
            Error::Key(reason) => Error::Key(reason.clone()),
            Error::Config(reason) => Error::Config(reason.clone()),
            Error::InvalidId(reason) => Error::InvalidId(reason.clone()),
            Error::TooLarge { size, limit } => Error::TooLarge { size: *size, limit: *limit },
            Error::Conflict { id, attempts } => Error::Conflict { id: id.clone(), attempts: *attempts },
            Error::Interrupted(reason) => Error::Interrupted(reason.clone()),
            Error::Unserializable { key, reason } => Error::Unserializable { key: key.clone(), reason: reason.clone() },
            Error::WrongType { key, reason } => Error::WrongType { key: key.clone(), reason: reason.clone() },
            Error::Corrupt { id, reason } => Error::Corrupt { id: id.clone(), reason: reason.clone() },
            Error::Database { backend, operation, source } => {
                Error::Database { backend, operation, source: message(source) }
            }
            Error::Timeout { backend, operation, after } => Error::Timeout { backend, operation, after: *after },
            Error::Migrate { backend, source } => Error::Migrate { backend, source: message(source) },
            Error::Schema { backend, message } => Error::Schema { backend, message: message.clone() },
            Error::NoDatabase(path) => Error::NoDatabase(path.clone()),
            Error::Cache { backend, operation, message } => {
                Error::Cache { backend, operation, message: message.clone() }
            }
            Error::NotFound(what) => Error::NotFound(what.clone()),
            Error::InvalidInput(reason) => Error::InvalidInput(reason.clone()),
            Error::Unsupported { backend, operation } => Error::Unsupported { backend, operation },
            Error::UnsupportedUrl(scheme) => Error::UnsupportedUrl(scheme.clone()),
        }
    }
}

/// A driver's message without the server's source line that sqlx appends
/// to PostgreSQL errors (`permission denied for table sessions at line
/// 2457`): a location in PostgreSQL's C code, noise to an operator.
pub fn without_server_line(message: &str) -> &str {
    match message.rsplit_once(" at line ") {
        Some((head, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => message,
    }
}

/// Removes the secrets from a connection URL so it can be shown: the
/// password of its user part, and the values of query parameters that name
/// one (`password`, `sslpassword`, `token`…), each replaced by `***`.
///
/// `postgres://app:hunter2@db/sessions` becomes `postgres://app:***@db/sessions`.
/// A URL does not always say where a password ends (an unencoded `/`, `@`,
/// `?`, `#` or `&` in it, a `//` missing): every reading of it is masked,
/// since masking too much is harmless and too little is not.
pub fn redact_url(url: &str) -> String {
    // Every reading's secrets first: the structural pass alone can cut a
    // secret in two (an `@` in the query looks like the end of a user part).
    redact_structure(&mask(url, &url_secrets(url)))
}

/// `text` with every occurrence of every secret replaced by `***`;
/// overlapping occurrences are masked as one.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut ranges: Vec<(usize, usize)> = secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .flat_map(|secret| text.match_indices(secret.as_str()).map(|(at, found)| (at, at + found.len())))
        .collect();
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut shown = String::with_capacity(text.len());
    let mut done = 0;
    for (start, end) in ranges {
        if start >= done {
            shown.push_str(&text[done..start]);
            shown.push_str("***");
            done = end;
        } else if end > done {
            done = end;
        }
    }
    shown.push_str(&text[done..]);
    shown
}

/// The password of the user part (up to the last `@` before the query)
/// and the values of secret query parameters, masked however short.
fn redact_structure(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let query_start = rest.rfind('@').map_or(0, |at| at);
    let (authority_and_path, query) = match rest[query_start..].find('?') {
        Some(q) => rest.split_at(query_start + q),
        None => (rest, ""),
    };
    let mut shown = String::from(head);
    match authority_and_path.rfind('@') {
        Some(at) => {
            let userinfo = &authority_and_path[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    shown.push_str(user);
                    shown.push_str(":***");
                }
                None => shown.push_str(userinfo),
            }
            shown.push_str(&authority_and_path[at..]);
        }
        None => shown.push_str(authority_and_path),
    }
    if let Some(query) = query.strip_prefix('?') {
        shown.push('?');
        let pairs = query.split('&').map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_parameter(key) => format!("{key}=***"),
            _ => pair.to_owned(),
        });
        shown.push_str(&pairs.collect::<Vec<_>>().join("&"));
    }
    shown
}

/// The secret parts of a URL, under every reading of it, as written,
/// percent-decoded and JSON-escaped, longest first: what must not appear in
/// any message, whatever a driver or a log quotes of the URL.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    // With its scheme or without (`postgres:/u:p@h`, `u:p@h`).
    let after_scheme = url.find("://").map_or_else(
        || url.split_once(':').map_or(url, |(scheme, rest)| if scheme.contains('@') { url } else { rest }),
        |at| &url[at + 3..],
    );
    let rest = after_scheme.trim_start_matches('/');
    // The user part ends at some `@`: a password for each reading (from
    // the first `:` after the scheme, and from the last `:` before the `@`,
    // for a URL whose `//` went missing).
    for (at, _) in rest.match_indices('@') {
        let userinfo = &rest[..at];
        if let Some((_, password)) = userinfo.split_once(':') {
            found.push(password.to_owned());
        }
        if !url.contains("://")
            && let Some((_, password)) = url[..url.len() - rest.len() + at].rsplit_once(':')
        {
            found.push(password.to_owned());
        }
    }
    // Query parameters, from each `?` that may start the query.
    for (q, _) in url.match_indices('?') {
        let query = &url[q + 1..];
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && is_secret_parameter(key)
            {
                found.push(value.to_owned());
            }
        }
    }
    let mut secrets = Vec::new();
    for secret in found {
        let decoded = percent_decode(&secret);
        for form in [secret.clone(), decoded] {
            // The part before a `#` (a fragment to a URL parser).
            if let Some((head, _)) = form.split_once('#') {
                secrets.push(head.to_owned());
            }
            let escaped = serde_json::to_string(&form).unwrap_or_default();
            secrets.push(escaped.trim_matches('"').to_owned());
            secrets.push(form);
        }
    }
    // Too short to mask without garbling the message (and not a password
    // anyone should keep).
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "auth", "key"].iter().any(|word| key.contains(word))
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{Error, redact_url};

    /// Concurrent saves of one session share one write; when it fails,
    /// each request's error reads as the one that made the call did.
    /// (Before, the others read "invalid configuration: database error …",
    /// and were not taken for database errors.)
    #[test]
    fn a_shared_failure_keeps_its_kind_and_message() {
        let failed = Error::Database {
            backend: "sqlite",
            operation: "saving a session",
            source: Box::new(sqlx::Error::Protocol("disk I/O error".into())),
        };
        let shared = Error::shared(&failed);
        assert_eq!(shared.to_string(), failed.to_string());
        assert!(shared.is_database(), "{shared:?}");
        let conflict = Error::Conflict { id: "abc".into(), attempts: 3 };
        assert!(matches!(Error::shared(&conflict), Error::Conflict { attempts: 3, .. }));
        assert_eq!(Error::shared(&conflict).to_string(), conflict.to_string());
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(redact_url("postgres://app:hunter2@db:5432/s"), "postgres://app:***@db:5432/s");
        assert_eq!(redact_url("redis://:pw@127.0.0.1/0"), "redis://:***@127.0.0.1/0");
        assert_eq!(redact_url("postgres://app@db/s"), "postgres://app@db/s");
        assert_eq!(redact_url("sqlite://sessions.db"), "sqlite://sessions.db");
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }

    #[test]
    fn passwords_with_unencoded_delimiters_and_in_the_query_are_masked() {
        assert_eq!(redact_url("postgres://app:pa/ss@db/s"), "postgres://app:***@db/s");
        assert_eq!(redact_url("postgres://app:p?a#s@db/s?sslmode=require"), "postgres://app:***@db/s?sslmode=require");
        assert_eq!(
            redact_url("postgres://db/s?user=app&password=hunter2&sslmode=require"),
            "postgres://db/s?user=app&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://app@db/s?sslpassword=x1y2"), "postgres://app@db/s?sslpassword=***");
        assert_eq!(redact_url("redis://:pw@127.0.0.1/0?protocol=resp3"), "redis://:***@127.0.0.1/0?protocol=resp3");
    }

    /// The review's forms: an `@` in a query value, no `//`, a `#` or an
    /// unencoded `&` in a password.
    #[test]
    fn every_reading_of_an_ambiguous_url_is_masked() {
        for (url, secret) in [
            ("postgres://127.0.0.1/s?user=r6&password=x@SECRETTAIL&port=55499", "SECRETTAIL"),
            ("postgres://127.0.0.1:1/s?user=r6&password=x@SECRETTAIL&port=1", "SECRETTAIL"),
            ("postgres://127.0.0.1:1/s?password=a@b@SECRETTWO", "SECRETTWO"),
            ("postgres:/ro:TYPOSECRET1@127.0.0.1/s", "TYPOSECRET1"),
            ("postgres:ro:TYPOSECRET2@127.0.0.1/s", "TYPOSECRET2"),
            ("postgres//ro:TYPOSECRET3@127.0.0.1/s", "TYPOSECRET3"),
            ("ro:TYPOSECRET6@127.0.0.1/s", "TYPOSECRET6"),
            ("postgres://dml@h/s?sslpassword=key@SECRET2", "SECRET2"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} shown as {shown}");
        }
        let secrets = super::url_secrets("postgres://h/s?sslpassword=S3cr%t?#qz");
        assert!(secrets.contains(&"S3cr%t?".to_owned()), "{secrets:?}");
        let secrets = super::url_secrets("postgres://h/s?sslpassword=ab%22cdSECRET");
        assert!(secrets.contains(&"ab\\\"cdSECRET".to_owned()), "the JSON-escaped form: {secrets:?}");
    }

    #[test]
    fn the_servers_source_line_is_dropped() {
        use super::without_server_line;
        assert_eq!(
            without_server_line("permission denied for table sessions at line 2457"),
            "permission denied for table sessions"
        );
        assert_eq!(without_server_line("at line 3 of the file"), "at line 3 of the file");
        assert_eq!(without_server_line("no line"), "no line");
    }

    #[test]
    fn secrets_are_found_as_written_and_decoded() {
        let secrets = super::url_secrets("postgres://app:p%40ss/w@db/s?password=hunter2&x=1");
        assert!(secrets.contains(&"p%40ss/w".to_owned()) && secrets.contains(&"p@ss/w".to_owned()), "{secrets:?}");
        assert!(secrets.contains(&"hunter2".to_owned()), "{secrets:?}");
        assert!(super::url_secrets("sqlite://sessions.db").is_empty());
    }
}
