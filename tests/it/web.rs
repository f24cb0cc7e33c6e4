//! The tower layer and axum extractor: driven with `oneshot` (no socket)
//! and over a real socket with a real HTTP client.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sessionctl::web::SessionLayer;
use sessionctl::{Keys, Session, SessionConfig, Store};
use tower::ServiceExt as _;

use crate::harness;

async fn get_value(session: Session, Path(key): Path<String>) -> String {
    session.get::<String>(&key).await.unwrap().unwrap_or_else(|| "none".into())
}

async fn set_value(session: Session, Path((key, value)): Path<(String, String)>) -> &'static str {
    session.insert(&key, value).await.unwrap();
    "ok"
}

fn app(store: Store, config: SessionConfig) -> Router {
    Router::new()
        .route("/noop", get(|| async { "ok" }))
        .route("/get/{key}", get(get_value))
        .route("/set/{key}/{value}", get(set_value))
        .route(
            "/remove/{key}",
            get(|session: Session, Path(key): Path<String>| async move {
                session.remove(&key).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/cycle",
            get(|session: Session| async move {
                session.regenerate_id().await.unwrap();
                "ok"
            }),
        )
        .route(
            "/terminate",
            get(|session: Session| async move {
                session.terminate().await.unwrap();
                "ok"
            }),
        )
        .route(
            "/expire_in/{seconds}",
            get(|session: Session, Path(seconds): Path<i64>| async move {
                session.set_expires_at(chrono::Utc::now() + chrono::Duration::seconds(seconds)).await.unwrap();
                "ok"
            }),
        )
        .route(
            "/fail",
            get(|session: Session| async move {
                session.insert("lost", "yes").await.unwrap();
                (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
            }),
        )
        .route(
            "/id",
            get(|session: Session| async move { session.key().await.unwrap().map(|id| id.to_string()).unwrap_or_default() }),
        )
        .layer(SessionLayer::new(store, Arc::new(config)).unwrap())
}

struct Reply {
    status: StatusCode,
    set_cookie: Option<String>,
    vary: Option<String>,
    body: String,
}

impl Reply {
    /// The `sid=…` pair of the Set-Cookie, to send back.
    fn cookie(&self) -> String {
        let header = self.set_cookie.as_deref().expect("a Set-Cookie");
        header.split(';').next().unwrap().to_owned()
    }

    fn attribute(&self, name: &str) -> Option<String> {
        self.set_cookie.as_deref()?.split(';').map(str::trim).find_map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            key.eq_ignore_ascii_case(name).then(|| value.to_owned())
        })
    }
}

async fn call(app: &Router, uri: &str, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let set_cookie = response.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
    let vary = response.headers().get(header::VARY).map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Reply { status, set_cookie, vary, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

#[tokio::test]
async fn untouched_handlers_do_no_io_and_send_no_cookie() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let before = db.store.ops();
    let reply = call(&app, "/noop", None).await;
    assert_eq!((reply.status, reply.set_cookie.as_deref(), reply.vary.as_deref()), (StatusCode::OK, None, None));
    let first = call(&app, "/set/a/1", None).await;
    let cookie = first.cookie();
    let before_noop = db.store.ops();
    let reply = call(&app, "/noop", Some(&cookie)).await;
    assert_eq!(reply.set_cookie, None, "no Set-Cookie for an untouched session");
    assert_eq!(db.store.ops() - before_noop, Default::default(), "zero store calls");
    assert!(db.store.ops().database > before.database);
}

#[tokio::test]
async fn insert_then_get_across_requests_with_cookie_attributes() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let reply = call(&app, "/get/a", None).await;
    assert_eq!((reply.body.as_str(), reply.set_cookie.as_deref()), ("none", None), "reading creates nothing");
    assert_eq!(reply.vary.as_deref(), Some("cookie"), "a read session varies on the cookie");

    let reply = call(&app, "/set/a/1", None).await;
    let max_age: i64 = reply.attribute("Max-Age").unwrap().parse().unwrap();
    assert!((max_age - 7 * 24 * 3600).abs() <= 1, "Max-Age {max_age} is the 7-day policy");
    for flag in ["HttpOnly", "Secure"] {
        assert!(reply.attribute(flag).is_some(), "{flag}");
    }
    assert_eq!(reply.attribute("SameSite").as_deref(), Some("Lax"));
    assert_eq!(reply.attribute("Path").as_deref(), Some("/"));
    let cookie = reply.cookie();
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "1");

    // Removing the last value keeps an empty session; the cookie still works.
    let reply = call(&app, "/remove/a", Some(&cookie)).await;
    assert_eq!(reply.set_cookie, None, "a data change keeps the cookie");
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "none");
}

/// A cookie attribute that would make a malformed `Set-Cookie` (or none:
/// a name `HeaderValue` refuses was silently never sent, so no visitor
/// could keep a session) is refused when the layer is built.
#[tokio::test]
async fn a_cookie_config_browsers_would_misread_is_refused_at_startup() {
    let db = harness::sqlite().await;
    let refused = |change: fn(&mut sessionctl::CookieConfig)| {
        let mut config = harness::config();
        change(&mut config.cookie);
        let error = SessionLayer::new(db.store.clone(), Arc::new(config)).unwrap_err().to_string();
        assert!(!error.contains('\n'), "one line: {error}");
        error
    };
    assert!(refused(|c| c.name = "séssion".into()).contains("cookie name \"séssion\" is not a cookie token"));
    assert!(refused(|c| c.name = "my session".into()).contains("cookie name"));
    assert!(refused(|c| c.name = "sid=1".into()).contains("cookie name"));
    assert!(refused(|c| c.name = String::new()).contains("cookie name"));
    assert!(refused(|c| c.path = "/app; Domain=evil.example".into()).contains("cookie path"));
    assert!(refused(|c| c.path = "app".into()).contains("must start with /"));
    assert!(refused(|c| c.domain = Some("example.com;".into())).contains("cookie domain"));
    assert!(
        refused(|c| {
            c.same_site = sessionctl::SameSite::None;
            c.secure = false;
        })
        .contains("must be Secure")
    );

    // What browsers take is accepted, and sent as written.
    let mut config = harness::config();
    config.cookie.name = "__Host-sid".into();
    config.cookie.path = "/app/v1".into();
    let reply = call(&app(db.store.clone(), config), "/set/a/1", None).await;
    assert!(reply.set_cookie.as_deref().unwrap().starts_with("__Host-sid="));
    assert_eq!(reply.attribute("Path").as_deref(), Some("/app/v1"));
}

#[tokio::test]
async fn bogus_cookies_never_500_and_get_a_fresh_session_only_on_write() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    for bogus in
        ["sid=garbage", "sid=1.AAAAAAAAAAAAAAAAAAAAAAAA.99999999999.AAAA", "sid=", "sid=2.1.%%%", "other=1; sid=\"x\""]
    {
        let reply = call(&app, "/get/a", Some(bogus)).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "none"));
        assert!(reply.attribute("Max-Age").is_none_or(|age| age == "0"), "at most a removal: {:?}", reply.set_cookie);
        let reply = call(&app, "/set/a/1", Some(bogus)).await;
        assert_eq!(reply.status, StatusCode::OK);
        let fresh = reply.cookie();
        assert_ne!(format!("sid={}", fresh.trim_start_matches("sid=")), bogus);
        assert_eq!(call(&app, "/get/a", Some(&fresh)).await.body, "1");
    }
}

/// One request whose `Cookie` header is these raw bytes (a browser sends
/// other applications' cookies as they are: UTF-8, obs-text, quotes).
async fn call_with_raw_cookie(app: &Router, uri: &str, raw: &[u8]) -> Reply {
    let value = header::HeaderValue::from_bytes(raw).unwrap();
    let request = Request::builder().uri(uri).header(header::COOKIE, value).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let set_cookie = response.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Reply { status, set_cookie, vary: None, body: String::from_utf8(bytes.to_vec()).unwrap() }
}

#[tokio::test]
async fn foreign_cookies_with_utf8_odd_bytes_or_several_kb_never_hide_ours() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let ours = call(&app, "/set/a/1", None).await.cookie();
    let big = format!("tracking={}", "x".repeat(6000));
    let headers: Vec<Vec<u8>> = vec![
        format!("name=José; {ours}").into_bytes(),
        format!("{ours}; name=José").into_bytes(),
        [b"latin=caf\xe9; ".as_slice(), ours.as_bytes()].concat(),
        format!("q=\"quoted; value\"; ;; =; lonely; {ours}; ; ").into_bytes(),
        format!("{big}; other=\u{1F36A}; {ours}").into_bytes(),
        format!("sid_other=1; xsid=2; {ours}").into_bytes(),
    ];
    for raw in headers {
        let reply = call_with_raw_cookie(&app, "/get/a", &raw).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "1", "our cookie is read from {:?}", String::from_utf8_lossy(&raw));
        assert_eq!(reply.set_cookie, None, "and not replaced or removed");
    }
}

#[tokio::test]
async fn of_several_cookies_with_our_name_the_one_that_verifies_wins() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let ours = call(&app, "/set/a/mine", None).await.cookie();
    // A sibling subdomain tossed a cookie of our name; browsers send it
    // first (longer path) or last, and in a second Cookie header too.
    let tossed = "sid=1.AAAAAAAAAAAAAAAAAAAAAAAA.99999999999.AAAA";
    for header in [format!("{tossed}; {ours}"), format!("{ours}; {tossed}"), format!("sid=garbage; {ours}")] {
        let reply = call(&app, "/get/a", Some(&header)).await;
        assert_eq!((reply.body.as_str(), reply.set_cookie.as_deref()), ("mine", None), "{header}");
        let reply = call(&app, "/set/b/2", Some(&header)).await;
        assert_eq!(reply.set_cookie, None, "a write keeps the real session: {header}");
    }
    assert_eq!(call(&app, "/get/b", Some(&ours)).await.body, "2");
}

#[tokio::test]
async fn cycle_id_keeps_data_and_invalidates_the_old_cookie() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let old = call(&app, "/set/a/1", None).await.cookie();
    let new = call(&app, "/cycle", Some(&old)).await.cookie();
    assert_ne!(old, new);
    assert_eq!(call(&app, "/get/a", Some(&new)).await.body, "1");
    assert_eq!(call(&app, "/get/a", Some(&old)).await.body, "none", "the old id is gone");
}

#[tokio::test]
async fn terminate_sends_a_removal_cookie_with_path_and_domain() {
    let db = harness::sqlite().await;
    let mut config = harness::config();
    config.cookie.path = "/app".into();
    config.cookie.domain = Some("example.com".into());
    let app = app(db.store.clone(), config);
    let cookie = call(&app, "/set/a/1", None).await.cookie();
    let reply = call(&app, "/terminate", Some(&cookie)).await;
    assert_eq!(reply.attribute("Max-Age").as_deref(), Some("0"));
    assert_eq!(reply.attribute("Path").as_deref(), Some("/app"));
    assert_eq!(reply.attribute("Domain").as_deref(), Some("example.com"));
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "none");
}

#[tokio::test]
async fn changing_the_expiry_reissues_the_cookie() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let cookie = call(&app, "/set/a/1", None).await.cookie();
    let reply = call(&app, "/expire_in/60", Some(&cookie)).await;
    let max_age: i64 = reply.attribute("Max-Age").unwrap().parse().unwrap();
    assert!((max_age - 60).abs() <= 1, "{max_age}");
    let cookie = reply.cookie();
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "1");
}

#[tokio::test]
async fn a_500_response_is_not_saved() {
    let db = harness::sqlite().await;
    let app = app(db.store.clone(), harness::config());
    let cookie = call(&app, "/set/a/1", None).await.cookie();
    let reply = call(&app, "/fail", Some(&cookie)).await;
    assert_eq!((reply.status, reply.set_cookie), (StatusCode::INTERNAL_SERVER_ERROR, None));
    assert_eq!(call(&app, "/get/lost", Some(&cookie)).await.body, "none");
    let reply = call(&app, "/fail", None).await;
    assert_eq!(reply.set_cookie, None, "a new session is not started by a failing request");
}

#[tokio::test]
async fn cookie_only_sessions_move_across_the_threshold_both_ways() {
    let db = harness::sqlite().await;
    let config = SessionConfig::new(harness::keys()).with_cookie_only_threshold(700);
    let app = app(db.store.clone(), config);
    let before = db.store.ops();
    let cookie = call(&app, "/set/a/small", None).await.cookie();
    assert!(cookie.starts_with("sid=2."), "{cookie}");
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "small");
    assert_eq!(db.store.ops() - before, Default::default(), "cookie-only: no store I/O");

    let big = "x".repeat(900);
    let cookie = call(&app, &format!("/set/b/{big}"), Some(&cookie)).await.cookie();
    assert!(cookie.starts_with("sid=1."), "moved to the store");
    assert_eq!(db.count().await, 1);
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "small");

    let cookie = call(&app, "/remove/b", Some(&cookie)).await.cookie();
    assert!(cookie.starts_with("sid=2."), "back into the cookie");
    assert_eq!(db.count().await, 0, "the stored copy is cleaned up");
    assert_eq!(call(&app, "/get/a", Some(&cookie)).await.body, "small");
}

#[tokio::test]
async fn a_cookie_signed_with_an_older_key_is_accepted_then_resigned() {
    let db = harness::sqlite().await;
    let old_key = b"an old key that is being rotated out .....".as_slice();
    let new_key = b"the new key that signs from now on ........".as_slice();
    let old_app =
        app(db.store.clone(), SessionConfig::new(Keys::new([old_key]).unwrap()).with_cookie_only_threshold(0));
    let cookie = call(&old_app, "/set/a/1", None).await.cookie();

    let rotating =
        app(db.store.clone(), SessionConfig::new(Keys::new([new_key, old_key]).unwrap()).with_cookie_only_threshold(0));
    let reply = call(&rotating, "/get/a", Some(&cookie)).await;
    assert_eq!(reply.body, "1", "still accepted while listed");
    let resigned = reply.cookie();
    assert_ne!(resigned, cookie, "re-issued under the new key");

    let rotated =
        app(db.store.clone(), SessionConfig::new(Keys::new([new_key]).unwrap()).with_cookie_only_threshold(0));
    assert_eq!(call(&rotated, "/get/a", Some(&resigned)).await.body, "1");
    assert_eq!(
        call(&rotated, "/get/a", Some(&cookie)).await.body,
        "none",
        "the old cookie is refused once the key is gone"
    );
}

/// The layer answers a read-only request without a save when there is
/// nothing to save; these reads still have something to say in a cookie.
#[tokio::test]
async fn reads_that_must_answer_with_a_cookie_still_do() {
    let db = harness::sqlite().await;
    let config = harness::config().with_expiry(sessionctl::ExpiryPolicy::Idle {
        timeout: Duration::from_secs(3600),
        refresh_after: Duration::from_secs(1),
    });
    let app = app(db.store.clone(), config);
    let cookie = call(&app, "/set/a/1", None).await.cookie();
    let reply = call(&app, "/get/a", Some(&cookie)).await;
    assert_eq!((reply.body.as_str(), reply.set_cookie.as_deref()), ("1", None), "a fresh read says nothing");

    // Idle past the refresh interval: the read pushes the expiry and re-issues the cookie.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = call(&app, "/get/a", Some(&cookie)).await;
    assert_eq!(reply.body, "1");
    let refreshed = reply.cookie();
    assert!(reply.attribute("Max-Age").is_some_and(|age| age != "0"), "{:?}", reply.set_cookie);

    // Deleted meanwhile (a logout elsewhere): the read removes the cookie.
    let key = call(&app, "/id", Some(&refreshed)).await.body;
    assert!(db.store.delete(&sessionctl::SessionKey::parse(&key).unwrap()).await.unwrap());
    let reply = call(&app, "/get/a", Some(&refreshed)).await;
    assert_eq!(reply.body, "none");
    assert_eq!(reply.attribute("Max-Age").as_deref(), Some("0"), "{:?}", reply.set_cookie);
}

/// Serves the app on a free loopback port.
async fn serve(store: Store) -> String {
    let mut config = harness::config();
    config.cookie.secure = false;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(store, config);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_real_socket_with_a_real_client() {
    let db = harness::sqlite().await;
    let base = serve(db.store.clone()).await;
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let text = |path: &str| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("/get/a").await, "none");
    assert_eq!(text("/set/a/1").await, "ok");
    assert_eq!(text("/get/a").await, "1");
    let id = text("/id").await;
    assert_eq!(text("/cycle").await, "ok");
    assert_ne!(text("/id").await, id);
    assert_eq!(text("/get/a").await, "1");
    assert_eq!(text("/terminate").await, "ok");
    assert_eq!(text("/get/a").await, "none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_session_over_redis_and_postgres() {
    let Some(db) = harness::redis_postgres().await else { return };
    let base = serve(db.store.clone()).await;
    let client = reqwest::Client::new();
    let first = client.get(format!("{base}/set/init/1")).send().await.unwrap();
    let set_cookie = first.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // Many requests at once, each setting its own key: every key lands.
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            client.get(format!("{base}/set/k{i}/v{i}")).header("cookie", cookie).send().await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), reqwest::StatusCode::OK);
    }
    for i in 0..24 {
        let value = client
            .get(format!("{base}/get/k{i}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(value, format!("v{i}"), "key k{i}");
    }

    // A logout racing writes: once it has landed, the session stays gone.
    let id = client.get(format!("{base}/id")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let id = sessionctl::SessionKey::parse(&id).unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let path = if i == 5 { "/terminate".to_owned() } else { format!("/set/late{i}/x") };
            client.get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap().status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), reqwest::StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let value =
        client.get(format!("{base}/get/init")).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert_eq!(value, "none", "the session stays gone after the logout");
    // (A write that arrived after the logout starts a new, empty session
    // under a new id: that is a new visitor session, not the old one.)
    db.assert_gone(&id).await;
}

#[tokio::test]
async fn the_demo_answers_400_to_a_user_name_with_nul_on_every_backend() {
    let stores = [
        Some(harness::sqlite().await),
        harness::postgres().await,
        harness::redis_postgres().await,
        Some(harness::memory_sqlite().await),
        harness::redis_only().await,
        harness::cluster_postgres().await,
        harness::cluster_only().await,
        harness::sentinel_sqlite().await,
    ];
    for db in stores.into_iter().flatten() {
        let app = crate::demo::app(SessionLayer::new(db.store.clone(), Arc::new(harness::config())).unwrap());
        let cookie = call(&app, "/", None).await.cookie();
        let reply = call(&app, "/login?user=a%00b", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}: {}", db.url, reply.body);
        assert!(reply.body.contains("NUL"), "{}", reply.body);
        assert_eq!(reply.set_cookie, None, "a refused login changes nothing");
        let reply = call(&app, "/login?user=alice", Some(&cookie)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", db.url);
        let reply = call(&app, "/session", Some(&reply.cookie())).await;
        assert!(reply.body.contains(r#""user_id":"alice""#), "{}", reply.body);
    }
}

/// The demo's "log out other devices": alice logged in on two browsers,
/// the first logs the second out and stays logged in.
#[tokio::test]
async fn the_demo_logs_out_other_devices() {
    let stores = [
        Some(harness::sqlite().await),
        harness::redis_postgres().await,
        harness::cluster_postgres().await,
        harness::sentinel_sqlite().await,
    ];
    for db in stores.into_iter().flatten() {
        let app = crate::demo::app(SessionLayer::new(db.store.clone(), Arc::new(harness::config())).unwrap());
        let mut browsers = Vec::new();
        for _ in 0..2 {
            let cookie = call(&app, "/", None).await.cookie();
            browsers.push(call(&app, "/login?user=alice", Some(&cookie)).await.cookie());
        }
        let listed: serde_json::Value =
            serde_json::from_str(&call(&app, "/sessions", Some(&browsers[0])).await.body).unwrap();
        let sessions = listed["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2, "{listed}");
        assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1, "{listed}");
        let reply = call(&app, "/logout-others", Some(&browsers[0])).await;
        assert!(reply.body.contains("Logged out 1 other"), "{}: {}", db.url, reply.body);
        let first = call(&app, "/session", Some(&browsers[0])).await;
        assert!(first.body.contains(r#""user_id":"alice""#), "{}", first.body);
        let second = call(&app, "/session", Some(&browsers[1])).await;
        assert!(second.body.contains(r#""user_id":null"#), "the other device is logged out: {}", second.body);
        let listed: serde_json::Value =
            serde_json::from_str(&call(&app, "/sessions", Some(&browsers[0])).await.body).unwrap();
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    }
}
