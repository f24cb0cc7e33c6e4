//! The demo app, like gae-sessions' demo: a visit counter, login with id
//! rotation, logout, and the session as JSON.
//!
//! ```sh
//! cargo run --example demo                       # SQLite sessions.db + in-process cache, 127.0.0.1:3000
//! SESSIONCTL_DATABASE_URL=postgres://… SESSIONCTL_REDIS_URL=redis://… cargo run --example demo -- --addr 127.0.0.1:8080
//! curl -c jar -b jar localhost:3000/              # visit 1, 2, 3…
//! curl -c jar -b jar 'localhost:3000/login?user=alice'
//! cargo run -- list --user alice                  # the admin tool sees the same sessions
//! ```
//!
//! Uses the same `SESSIONCTL_DATABASE_URL`, `SESSIONCTL_REDIS_URL`,
//! `SESSIONCTL_REDIS_PREFIX` and `SESSIONCTL_SECRET` as the CLI; without a secret it makes a development
//! key (cookies then stop working at restart) and says so.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::get;
use serde_json::json;
use sessionctl::web::SessionLayer;
use sessionctl::{DeviceTracking, Keys, MemoryCacheConfig, Session, SessionConfig, StoreConfig};

/// A session error as a response: a value the session refuses (a NUL in a
/// user name, say) is the client's mistake, a 400; anything else a 500 (the
/// layer also refuses to save on a 500).
fn internal(error: sessionctl::Error) -> Response {
    match error {
        sessionctl::Error::InvalidInput(reason) => (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response(),
        error => (StatusCode::INTERNAL_SERVER_ERROR, format!("session error: {error}")).into_response(),
    }
}

async fn counter(session: Session) -> Response {
    let visits: u64 = match session.get("visits").await {
        Ok(visits) => visits.unwrap_or(0) + 1,
        // Written as something else (by an earlier version of this page):
        // counted again from here rather than failing every request.
        Err(sessionctl::Error::WrongType { .. }) => 1,
        Err(e) => return internal(e),
    };
    if let Err(e) = session.insert("visits", visits).await {
        return internal(e);
    }
    let user = session.user_id().await.ok().flatten().unwrap_or_else(|| "anonymous".into());
    format!("Hello, {user}: this is visit {visits} of this session.\n").into_response()
}

/// `/remember?key=K&value=V`: one key of this session's notes, changed on
/// its own (requests changing different keys never undo each other).
async fn remember(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    let (Some(key), Some(value)) = (query.get("key"), query.get("value")) else {
        return (StatusCode::BAD_REQUEST, "use /remember?key=K&value=V\n").into_response();
    };
    match session.insert(&format!("note:{key}"), value).await {
        Ok(()) => "Remembered.\n".into_response(),
        Err(e) => internal(e),
    }
}

async fn login(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    let Some(user) = query.get("user").filter(|u| !u.is_empty()).cloned() else {
        return (StatusCode::BAD_REQUEST, "use /login?user=NAME\n").into_response();
    };
    // The user first: a name the session refuses changes nothing. Then a
    // new id at login, against session fixation; the data comes along.
    if let Err(e) = session.set_user_id(Some(user)).await {
        return internal(e);
    }
    if let Err(e) = session.regenerate_id().await {
        return internal(e);
    }
    Redirect::to("/").into_response()
}

async fn logout(session: Session) -> Response {
    match session.terminate().await {
        Ok(()) => "Logged out.\n".into_response(),
        Err(e) => internal(e),
    }
}

/// "Active sessions": this user's sessions (without their data), this one marked.
async fn active_sessions(session: Session) -> Response {
    match session.user_sessions().await {
        Ok(sessions) => Json(json!({
            "sessions": sessions.iter().map(|(s, current)| json!({
                "id": s.id.to_string(),
                "created_at": s.created_at,
                "updated_at": s.updated_at,
                "expires_at": s.expires_at,
                "last_seen_at": s.device.last_seen_at,
                "client_ip": s.device.client_ip,
                "user_agent": s.device.user_agent,
                "current": current,
            })).collect::<Vec<_>>(),
            "log_out_others": "/logout-others",
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

/// "Log out my other devices": every other session of this user goes, this one stays.
async fn logout_others(session: Session) -> Response {
    match session.revoke_other_sessions().await {
        Ok(n) => format!("Logged out {n} other session(s).\n").into_response(),
        Err(e) => internal(e),
    }
}

async fn show(session: Session) -> Response {
    let (id, user_id, expires_at, data) =
        match (session.key().await, session.user_id().await, session.expires_at().await, session.data().await) {
            (Ok(id), Ok(user), Ok(expires), Ok(data)) => (id, user, expires, data),
            (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return internal(e),
        };
    // The key the session is stored under (what `sessionctl` and the
    // sessions list show), not the id in the cookie.
    Json(json!({
        "key": id.map(|key| key.to_string()),
        "user_id": user_id,
        "expires_at": expires_at,
        "data": data,
    }))
    .into_response()
}

/// The demo's routes over any store and config (the tests use it too).
pub fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/", get(counter))
        .route("/login", get(login))
        .route("/remember", get(remember))
        .route("/logout", get(logout))
        .route("/logout-others", get(logout_others))
        .route("/sessions", get(active_sessions))
        .route("/session", get(show))
        .layer(layer)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One line, as the error's own message says it (not its debug form).
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The library's warnings and errors on stderr (a save that failed, a
    // Redis cache that keeps its data on disk); RUST_LOG=debug for more.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).init();
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = "127.0.0.1:3000".parse()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs HOST:PORT")?.parse()?,
            other => return Err(format!("unknown argument {other:?}; usage: demo [--addr HOST:PORT]").into()),
        }
    }
    let keys = match std::env::var("SESSIONCTL_SECRET") {
        Ok(text) => Keys::from_text(&text)?,
        Err(_) => {
            eprintln!(
                "note: SESSIONCTL_SECRET is not set; using a development key made for this run (cookies die at restart)"
            );
            Keys::new([Keys::generate_secret()])?
        }
    };
    let mut store = StoreConfig::new()
        .with_database_url(std::env::var("SESSIONCTL_DATABASE_URL").unwrap_or_else(|_| "sqlite://sessions.db".into()))
        .with_memory_cache(MemoryCacheConfig::default());
    store.redis_url = std::env::var("SESSIONCTL_REDIS_URL").ok();
    store.redis_prefix = std::env::var("SESSIONCTL_REDIS_PREFIX").ok();
    let store = store.open().await?;
    // Devices for the "active sessions" page: last seen, address, browser.
    let mut config = SessionConfig::new(keys).with_device_tracking(DeviceTracking::default());
    // Plain http on a local address: a Secure cookie would not come back.
    config.cookie.secure = !addr.ip().is_loopback();
    let app = app(SessionLayer::new(store, Arc::new(config))?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("demo listening on http://{addr}");
    // With the peer's address in each request, for device tracking.
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
