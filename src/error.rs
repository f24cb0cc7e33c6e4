//! The library's one error type.
//!
//! Every backend maps its own failures into [`Error`], so callers match on what
//! went wrong in session terms (a bad cookie, a version conflict, a database
//! that is down) rather than on sqlx or redis types. Messages never contain
//! secrets: connection URLs are redacted before they reach an error.

use std::fmt;

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

    /// A stored record (database row or cache entry) cannot be decoded.
    #[error("stored session {id} is corrupt: {reason}")]
    Corrupt {
        /// The session id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The database tier failed.
    #[error("database error ({backend}) during {operation}: {source}")]
    Database {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What the library was doing.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
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
        source: sqlx::migrate::MigrateError,
    },

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

    /// A database URL names a scheme this build does not support.
    #[error("unsupported database URL scheme {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
}

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
    pub(crate) fn db(backend: &'static str, operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { backend, operation, source }
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
    /// operation.
    pub(crate) fn shared(error: &Error) -> Error {
        match error {
            Error::Shared(inner) => Error::Shared(inner.clone()),
            // Cheap, cloneable kinds are copied as they are.
            Error::Timeout { backend, operation, after } => Error::Timeout { backend, operation, after: *after },
            Error::Corrupt { id, reason } => Error::Corrupt { id: id.clone(), reason: reason.clone() },
            Error::Cache { backend, operation, message } => {
                Error::Cache { backend, operation, message: message.clone() }
            }
            other => Error::Shared(std::sync::Arc::new(Error::Config(other.to_string()))),
        }
    }
}

/// Removes the password from a connection URL so it can be shown.
///
/// `postgres://app:hunter2@db/sessions` becomes `postgres://app:***@db/sessions`.
pub fn redact_url(url: &str) -> String {
    RedactedUrl(url).to_string()
}

struct RedactedUrl<'a>(&'a str);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        let Some(scheme_end) = url.find("://") else {
            return f.write_str(url);
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split(':').next().unwrap_or("");
                let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
                write!(f, "{}{}{}", &url[..scheme_end + 3], masked, &rest[at..])
            }
            None => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(redact_url("postgres://app:hunter2@db:5432/s"), "postgres://app:***@db:5432/s");
        assert_eq!(redact_url("redis://:pw@127.0.0.1/0"), "redis://:***@127.0.0.1/0");
        assert_eq!(redact_url("postgres://app@db/s"), "postgres://app@db/s");
        assert_eq!(redact_url("sqlite://sessions.db"), "sqlite://sessions.db");
        assert_eq!(redact_url("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
    }
}
