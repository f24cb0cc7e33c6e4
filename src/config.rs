//! Session configuration: lifetime and expiry policy, size limits, cookie
//! attributes and the keys that sign cookies.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::codec::{CookieCodec, Keys};
use crate::error::{Error, Result};

/// Default absolute lifetime of a session: 7 days, as gae-sessions.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default limit on a session's encoded data: 1 MiB.
pub const DEFAULT_MAX_SIZE: usize = 1 << 20;
/// Default bound on save retries after version conflicts.
pub const DEFAULT_MAX_SAVE_ATTEMPTS: u32 = 16;

/// How a session's expiry moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryPolicy {
    /// Expires `lifetime` after it was created, whatever happens (gae-sessions).
    Absolute,
    /// Expires after `timeout` without a request, and in any case `lifetime`
    /// after creation. To keep reads from writing on every request, the
    /// expiry is pushed forward only once `refresh_after` has passed since
    /// the last push.
    Idle {
        /// Inactivity after which the session expires.
        timeout: Duration,
        /// Minimum time between two expiry refreshes.
        refresh_after: Duration,
    },
}

/// Cookie `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`
    Strict,
    /// `SameSite=Lax` (the default)
    Lax,
    /// `SameSite=None` (requires `Secure`)
    None,
}

/// Cookie attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieConfig {
    /// Cookie name (default `sid`).
    pub name: String,
    /// `Path` (default `/`).
    pub path: String,
    /// `Domain`, unset by default.
    pub domain: Option<String>,
    /// `Secure` (default on).
    pub secure: bool,
    /// `HttpOnly` (default on).
    pub http_only: bool,
    /// `SameSite` (default Lax).
    pub same_site: SameSite,
    /// A "browser session" cookie: no `Max-Age`, so the browser drops it when
    /// it closes. The server record still gets its real expiry.
    pub browser_session: bool,
}

impl CookieConfig {
    /// Checks that the attributes make a `Set-Cookie` header browsers read
    /// as written (RFC 6265 §4.1.1): a name that is a token, a path that
    /// starts with `/`, and no `;` or control character that would end an
    /// attribute early.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the attribute.
    pub fn validate(&self) -> Result<()> {
        const SEPARATORS: &[u8] = b"()<>@,;:\\\"/[]?={}";
        let token = |b: u8| b.is_ascii_graphic() && !SEPARATORS.contains(&b);
        if self.name.is_empty() || !self.name.bytes().all(token) {
            return Err(Error::Config(format!(
                "cookie name {:?} is not a cookie token (visible ASCII, without spaces or any of ()<>@,;:\\\"/[]?={{}})",
                self.name
            )));
        }
        let attribute = |b: u8| b.is_ascii_graphic() && b != b';';
        if !self.path.starts_with('/') || !self.path.bytes().all(attribute) {
            return Err(Error::Config(format!(
                "cookie path {:?} must start with / and hold visible ASCII without ;",
                self.path
            )));
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty() || !domain.bytes().all(attribute))
        {
            return Err(Error::Config(format!("cookie domain {domain:?} must be visible ASCII without ;")));
        }
        Ok(())
    }
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "sid".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            browser_session: false,
        }
    }
}

/// Device tracking: for an "active sessions" page and `sessionctl list
/// --user`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceTracking {
    /// Least time between two records of one session's device in one
    /// process (default 5 minutes), so a read does not write on every
    /// request; a change of address or user agent is recorded at once.
    pub throttle: Duration,
    /// A header that a proxy the app trusts sets to the client's address
    /// (e.g. `x-forwarded-for`: its last address is taken, the one the
    /// proxy added). Without it the socket's address is used (axum's
    /// `ConnectInfo`); the header is never read unless named here, since a
    /// client can send any value in it.
    pub trusted_proxy_header: Option<String>,
}

/// Longest user agent recorded, in bytes.
pub const MAX_USER_AGENT: usize = 256;

impl Default for DeviceTracking {
    fn default() -> Self {
        DeviceTracking { throttle: Duration::from_secs(300), trusted_proxy_header: None }
    }
}

impl DeviceTracking {
    /// Sets [`DeviceTracking::throttle`].
    pub fn with_throttle(mut self, throttle: Duration) -> Self {
        self.throttle = throttle;
        self
    }

    /// Sets [`DeviceTracking::trusted_proxy_header`].
    pub fn with_trusted_proxy_header(mut self, header: impl Into<String>) -> Self {
        self.trusted_proxy_header = Some(header.into().to_ascii_lowercase());
        self
    }
}

/// Everything a [`Session`](crate::Session) needs to know besides its store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Absolute lifetime (default 7 days).
    pub lifetime: Duration,
    /// Expiry policy (default absolute).
    pub expiry: ExpiryPolicy,
    /// Limit on the encoded data, checked at save (default 1 MiB).
    pub max_size: usize,
    /// Largest cookie value used for a cookie-only session; 0 disables
    /// cookie-only sessions (default: what fits one 4 KB cookie).
    pub cookie_only_threshold: usize,
    /// Save attempts before a run of version conflicts is reported.
    pub max_save_attempts: u32,
    /// At most this many sessions per user (default: no limit). When a
    /// save gives a session a user beyond it, that user's least recently
    /// written other sessions are revoked.
    pub max_sessions_per_user: Option<u32>,
    /// What to record of the device behind each stored session (default:
    /// nothing).
    pub devices: Option<DeviceTracking>,
    /// Cookie attributes.
    pub cookie: CookieConfig,
    codec: CookieCodec,
}

impl SessionConfig {
    /// Defaults with the given keys.
    pub fn new(keys: Keys) -> SessionConfig {
        SessionConfig {
            lifetime: DEFAULT_LIFETIME,
            expiry: ExpiryPolicy::Absolute,
            max_size: DEFAULT_MAX_SIZE,
            // 4096 bytes per cookie, minus the name, `=` and attributes.
            cookie_only_threshold: 3800,
            max_save_attempts: DEFAULT_MAX_SAVE_ATTEMPTS,
            max_sessions_per_user: None,
            devices: None,
            cookie: CookieConfig::default(),
            codec: CookieCodec::new(keys),
        }
    }

    /// Sets the absolute lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Sets the expiry policy.
    pub fn with_expiry(mut self, expiry: ExpiryPolicy) -> Self {
        self.expiry = expiry;
        self
    }

    /// Records, for each stored session, when it was last seen, the
    /// client's IP address and its user agent (see [`DeviceTracking`]).
    pub fn with_device_tracking(mut self, tracking: DeviceTracking) -> Self {
        self.devices = Some(tracking);
        self
    }

    /// Sets [`SessionConfig::max_sessions_per_user`] (at least 1).
    pub fn with_max_sessions_per_user(mut self, limit: u32) -> Self {
        self.max_sessions_per_user = Some(limit.max(1));
        self
    }

    /// Sets [`SessionConfig::max_size`].
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// Sets the cookie-only threshold (0 disables cookie-only sessions).
    pub fn with_cookie_only_threshold(mut self, threshold: usize) -> Self {
        self.cookie_only_threshold = threshold;
        self
    }

    /// The cookie codec over the configured keys.
    pub fn codec(&self) -> &CookieCodec {
        &self.codec
    }

    /// Checks the settings against each other.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first setting that does not fit the others.
    pub fn validate(&self) -> Result<()> {
        if self.lifetime.is_zero() {
            return Err(Error::Config("lifetime must be longer than zero".into()));
        }
        if let ExpiryPolicy::Idle { timeout, refresh_after } = self.expiry {
            if timeout.is_zero() {
                return Err(Error::Config("idle timeout must be longer than zero".into()));
            }
            if refresh_after >= timeout {
                return Err(Error::Config(format!(
                    "idle refresh interval ({refresh_after:?}) must be shorter than the idle timeout ({timeout:?})"
                )));
            }
        }
        if self.max_save_attempts == 0 {
            return Err(Error::Config("max_save_attempts must be at least 1".into()));
        }
        if self.cookie.same_site == SameSite::None && !self.cookie.secure {
            return Err(Error::Config("SameSite=None cookies must be Secure".into()));
        }
        self.cookie.validate()
    }

    /// Expiry of a session created at `created_at`, touched at `now`.
    pub(crate) fn expiry_for(&self, created_at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        let absolute = add(created_at, self.lifetime);
        match self.expiry {
            ExpiryPolicy::Absolute => absolute,
            ExpiryPolicy::Idle { timeout, .. } => absolute.min(add(now, timeout)),
        }
    }

    /// Whether a session expiring at `expires_at` is due for an idle refresh.
    pub(crate) fn needs_refresh(
        &self,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        match self.expiry {
            ExpiryPolicy::Absolute => false,
            ExpiryPolicy::Idle { timeout, refresh_after } => {
                let last_refresh = expires_at.checked_sub_signed(chrono_duration(timeout)).unwrap_or(expires_at);
                now - last_refresh >= chrono_duration(refresh_after) && self.expiry_for(created_at, now) > expires_at
            }
        }
    }
}

/// `t + d`, saturating at the end of time instead of overflowing.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(chrono_duration(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// std → chrono duration, saturating instead of failing on absurd values.
pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
