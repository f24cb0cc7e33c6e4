//! The tower layer and the axum extractor (feature `axum`).
//!
//! [`SessionLayer`] reads the session cookie into a [`Session`] handle for
//! each request (verifying it, no I/O), hands it to the handler through the
//! request's extensions, and after the handler saves it once, then sets,
//! keeps or removes the cookie:
//!
//! * a handler that never touches the session costs no store I/O and gets
//!   no `Set-Cookie`;
//! * a response with status ≥ 500 is not saved;
//! * a response whose handler read the session gets `Vary: Cookie`;
//! * a failed save (the database is down) turns the response into a 500, so
//!   a user never believes a change was kept when it was not.
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use sessionctl::{Keys, Session, SessionConfig, StoreConfig, web::SessionLayer};
//!
//! async fn counter(session: Session) -> String {
//!     let visits: u64 = session.get("visits").await.ok().flatten().unwrap_or(0) + 1;
//!     let _ = session.insert("visits", visits).await;
//!     format!("visit {visits}")
//! }
//!
//! # async fn app() -> sessionctl::Result<()> {
//! let store = StoreConfig::new().with_database_url("sqlite://sessions.db").open().await?;
//! let keys = Keys::from_text(&std::env::var("SESSIONCTL_SECRET").unwrap_or_default())?;
//! let app: Router = Router::new().route("/", get(counter)).layer(SessionLayer::new(store, Arc::new(SessionConfig::new(keys)))?);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use http::header::{COOKIE, SET_COOKIE, USER_AGENT, VARY};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::config::{CookieConfig, DeviceTracking, MAX_USER_AGENT, SameSite, SessionConfig};
use crate::record;
use crate::session::{CookieUpdate, Session, Setup};
use crate::store::Store;

/// Adds a [`Session`] to every request.
#[derive(Clone, Debug)]
pub struct SessionLayer {
    store: Store,
    config: Arc<SessionConfig>,
}

impl SessionLayer {
    /// A layer over `store` with `config` (keys, expiry, cookie attributes).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when the config does not
    /// validate ([`SessionConfig::validate`]): a misconfigured cookie is
    /// refused at startup rather than sent malformed, or not at all, with
    /// every response.
    pub fn new(store: Store, config: Arc<SessionConfig>) -> crate::Result<SessionLayer> {
        config.validate()?;
        Ok(SessionLayer { store, config })
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        let setup = Setup { store: self.store.clone(), config: self.config.clone() };
        SessionService { inner, setup: Arc::new(setup) }
    }
}

/// The service [`SessionLayer`] wraps around the app.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    /// The store and config behind one reference count: hyper clones the
    /// service for every request, and the request's session takes one more.
    setup: Arc<Setup>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The Cookie headers are handed over as they are (a reference
        // count each): parsed only if the handler uses the session.
        let mut session = Session::with_cookie_headers(self.setup.clone(), request.headers().get_all(COOKIE).iter());
        if let Some(tracking) = &self.setup.config.devices {
            let (client_ip, user_agent) = client_of(&request, tracking);
            session = session.with_client(client_ip, user_agent);
        }
        request.extensions_mut().insert(session.clone());
        // The clone that was driven to readiness handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture { inner: inner.call(request), session: Some(session), saving: None }
    }
}

pin_project_lite::pin_project! {
    /// The response of a [`SessionService`]: the handler's, then, when the
    /// handler used the session, its save and cookie. A request that never
    /// touched its session is answered as the handler answered, with no
    /// lock taken and nothing allocated after it.
    ///
    /// It is `Unpin` when the inner service's future is (axum's `Router`'s
    /// is); pin it (`Box::pin`, `tokio::pin!`) to poll it by hand otherwise.
    /// A [`Session`] kept beyond its request holds the request's `Cookie`
    /// header values until it is first used.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        session: Option<Session>,
        saving: Option<Pin<Box<dyn Future<Output = Response<B>> + Send>>>,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(saving) = this.saving.as_mut() {
            return saving.as_mut().poll(cx).map(Ok);
        }
        let response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(response) => response?,
        };
        let Some(session) = this.session.take() else { return Poll::Ready(Ok(response)) };
        if response.status().is_server_error() || !session.was_touched() {
            return Poll::Ready(Ok(response));
        }
        if let Some(loaded) = session.needs_no_save() {
            let mut response = response;
            if loaded {
                response.headers_mut().append(VARY, HeaderValue::from_static("cookie"));
            }
            return Poll::Ready(Ok(response));
        }
        let mut saving = Box::pin(finish(session, response));
        let poll = saving.as_mut().poll(cx);
        *this.saving = Some(saving);
        poll.map(Ok)
    }
}

/// After a handler that used its session: `Vary: Cookie` if it was read,
/// the one save, and the cookie it calls for; a 500 when the save fails.
async fn finish<B: Default>(session: Session, mut response: Response<B>) -> Response<B> {
    if session.is_loaded().await {
        response.headers_mut().append(VARY, HeaderValue::from_static("cookie"));
    }
    match session.save().await {
        Ok(outcome) => {
            if let Some(header) = set_cookie(&session.config().cookie, &outcome.cookie) {
                response.headers_mut().append(SET_COOKIE, header);
            }
            response
        }
        Err(error) => {
            tracing::error!(%error, "saving the session failed");
            let mut failed = Response::new(B::default());
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            failed
        }
    }
}

/// Every value of the cookie called `name`, in the order the browser sent
/// them, from any number of `Cookie` headers.
///
/// Browsers send other applications' cookies in the same header, as raw
/// bytes: UTF-8 (`name=José`), Latin-1 obs-text, quoted values, empty pairs.
/// None of that may hide ours, so the header is split as bytes and only the
/// pairs named `name` are read; a value of ours is visible ASCII (a quoted
/// one is unquoted), anything else is skipped. Several cookies of our name
/// (one tossed from a sibling subdomain) are all returned: the session keeps
/// the first that verifies.
pub fn cookie_values<'a>(headers: impl IntoIterator<Item = &'a [u8]>, name: &str) -> Vec<String> {
    let mut values = Vec::new();
    for_each_cookie_value(headers, name, |value| {
        values.push(value.to_owned());
        false
    });
    values
}

/// [`cookie_values`] without collecting them: calls `visit` with each, in
/// order, until it returns `true`.
pub(crate) fn for_each_cookie_value<'a>(
    headers: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
    mut visit: impl FnMut(&str) -> bool,
) {
    for header in headers {
        for pair in header.split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|&b| b == b'=') else { continue };
            if pair[..eq].trim_ascii() != name.as_bytes() {
                continue;
            }
            let mut value = pair[eq + 1..].trim_ascii();
            if value.len() >= 2 && value.starts_with(b"\"") && value.ends_with(b"\"") {
                value = &value[1..value.len() - 1];
            }
            if !value.is_empty()
                && value.iter().all(|&b| b.is_ascii_graphic() && b != b'"')
                && let Ok(value) = std::str::from_utf8(value)
                && visit(value)
            {
                return;
            }
        }
    }
}

/// The client's address and user agent, as device tracking records them:
/// the address from the trusted proxy's header when one is named (its last
/// address: the one the proxy added), else from the socket (axum's
/// `ConnectInfo`, when the app serves with it); the user agent truncated to
/// [`MAX_USER_AGENT`] bytes, control characters dropped.
fn client_of<B>(request: &Request<B>, tracking: &DeviceTracking) -> (Option<String>, Option<String>) {
    let printable = |bytes: &[u8], limit: usize| {
        // Controls become spaces; invisible format characters (bidi
        // overrides, zero widths) go: a user agent shown to the user must
        // not be able to disguise itself.
        let text: String = String::from_utf8_lossy(bytes)
            .chars()
            .filter(|&c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'))
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut end = text.len().min(limit);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Some(text[..end].trim().to_owned()).filter(|t| !t.is_empty())
    };
    let socket = || {
        request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip().to_canonical().to_string())
    };
    let client_ip = match &tracking.trusted_proxy_header {
        Some(header) => match request.headers().get_all(header.as_str()).iter().next_back() {
            // An address the proxy added that does not parse is recorded as
            // unknown, never as the text a client may have put there.
            Some(value) => value.as_bytes().rsplit(|&b| b == b',').next().and_then(parse_ip),
            None => socket(),
        },
        None => socket(),
    };
    let user_agent = request.headers().get(USER_AGENT).and_then(|value| printable(value.as_bytes(), MAX_USER_AGENT));
    (client_ip, user_agent)
}

/// An address from a proxy header: `203.0.113.7`, `203.0.113.7:8080`,
/// `2001:db8::1`, `[2001:db8::1]:443`, `for=…` (RFC 7239 style); anything
/// else is `None`.
fn parse_ip(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?.trim();
    let text = text.strip_prefix("for=").unwrap_or(text).trim_matches('"');
    let ip = text
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| text.strip_prefix('[')?.split(']').next()?.parse().ok())?;
    Some(ip.to_canonical().to_string())
}

/// The `Set-Cookie` header for a save's cookie update.
fn set_cookie(cookie: &CookieConfig, update: &CookieUpdate) -> Option<HeaderValue> {
    let mut header = match update {
        CookieUpdate::Keep => return None,
        CookieUpdate::Set { value, expires_at } => {
            let mut header = format!("{}={value}", cookie.name);
            if !cookie.browser_session {
                let max_age = (*expires_at - record::now()).num_seconds().max(0);
                header.push_str(&format!("; Max-Age={max_age}"));
            }
            header
        }
        CookieUpdate::Remove => format!("{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT", cookie.name),
    };
    header.push_str(&format!("; Path={}", cookie.path));
    if let Some(domain) = &cookie.domain {
        header.push_str(&format!("; Domain={domain}"));
    }
    if cookie.secure {
        header.push_str("; Secure");
    }
    if cookie.http_only {
        header.push_str("; HttpOnly");
    }
    header.push_str(match cookie.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    HeaderValue::from_str(&header).ok()
}

/// The session of the request, in an axum handler. Needs [`SessionLayer`].
impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or((StatusCode::INTERNAL_SERVER_ERROR, "sessionctl::web::SessionLayer is not installed"))
    }
}
