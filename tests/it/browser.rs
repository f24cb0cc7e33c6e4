//! The demo app in a real browser: headless Chromium, driven over
//! WebDriver, against the demo's routes served from this process.
//!
//! What only a browser shows: the bytes it really puts in a Cookie header
//! (other apps' cookies as raw UTF-8), which of two racing Set-Cookie
//! headers it keeps, and that it keeps our Secure cookie from
//! `http://127.0.0.1` (a secure context).

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::header::COOKIE;
use serde_json::{Value, json};
use sessionctl::SessionConfig;
use sessionctl::web::SessionLayer;

use crate::harness::chromium::Chromium;
use crate::harness::{self, TestDb};

use crate::demo;

/// The demo's routes on a loopback socket, over SQLite with the in-process
/// cache (the demo's defaults), recording the Cookie headers it receives.
struct Demo {
    base: String,
    cookie_headers: Arc<Mutex<Vec<Vec<u8>>>>,
    _db: TestDb,
}

impl Demo {
    async fn start(config: SessionConfig) -> Demo {
        let db = harness::memory_sqlite().await;
        let cookie_headers = Arc::new(Mutex::new(Vec::new()));
        let recorder = cookie_headers.clone();
        let app = demo::app(SessionLayer::new(db.store.clone(), Arc::new(config)).unwrap()).layer(
            axum::middleware::map_request(move |request: Request| {
                let recorder = recorder.clone();
                async move {
                    if let Some(header) = request.headers().get(COOKIE) {
                        recorder.lock().unwrap().push(header.as_bytes().to_vec());
                    }
                    request
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Demo { base: format!("http://{addr}"), cookie_headers, _db: db }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// `/session` as the browser sees it (a fetch from the page, with its
/// cookies).
async fn session(browser: &Chromium) -> Value {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/session', { credentials: 'same-origin', cache: 'no-store' })
                 .then(r => r.json()).then(done, e => done({ error: String(e) }));",
            json!([]),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_utf8_cookie_set_by_the_page_does_not_log_the_user_out() {
    let Some(browser) = Chromium::start().await else { return };
    // The demo as it runs: small anonymous sessions in the cookie alone,
    // and the cookie `Secure` although this is plain http.
    let demo = Demo::start(SessionConfig::new(harness::keys())).await;

    browser.goto(&demo.url("/")).await;
    assert_eq!(browser.text().await.trim(), "Hello, anonymous: this is visit 1 of this session.");
    browser.goto(&demo.url("/login?user=alice")).await;
    assert_eq!(browser.text().await.trim(), "Hello, alice: this is visit 2 of this session.");
    let cookies = browser.cookies().await;
    let sid = cookies.iter().find(|c| c.name == "sid").expect("the browser keeps the session cookie");
    assert!(sid.secure && sid.http_only, "Chromium keeps a Secure cookie from http://127.0.0.1: {sid:?}");

    // Another app on this host stores a non-ASCII value; Chromium sends it
    // as raw UTF-8 bytes in the same Cookie header as ours.
    let visible: String = browser.execute("document.cookie = 'name=José'; return document.cookie", json!([])).await;
    assert_eq!(visible, "name=José", "the page sees its own cookie, not the HttpOnly session cookie");

    browser.goto(&demo.url("/")).await;
    let sent = demo.cookie_headers.lock().unwrap().clone();
    let has = |header: &[u8], part: &[u8]| header.windows(part.len()).any(|w| w == part);
    assert!(
        sent.iter().any(|h| has(h, "name=José".as_bytes()) && has(h, b"sid=")),
        "Chromium sent the UTF-8 cookie with ours: {:?}",
        sent.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect::<Vec<_>>()
    );
    assert_eq!(browser.text().await.trim(), "Hello, alice: this is visit 3 of this session.", "still logged in");
    let session = session(&browser).await;
    assert_eq!(session["user_id"], "alice", "{session}");
    assert_eq!(session["data"]["visits"], 3, "{session}");
    browser.quit().await;
}

/// One trial, in the page: three counter visits (the data), two logins at
/// once (not following their redirects, so nothing else touches the
/// session), then `/session`.
const DOUBLE_LOGIN: &str = "
    const done = arguments[arguments.length - 1];
    const get = (path, options) => fetch(path, { credentials: 'same-origin', cache: 'no-store', ...options });
    (async () => {
        let counter = '';
        for (let i = 0; i < 3; i++) counter = await (await get('/')).text();
        const login = () => get('/login?user=alice', { redirect: 'manual' });
        const logins = await Promise.all([login(), login()]);
        const session = await (await get('/session')).json();
        return {
            counter,
            logins: logins.map(r => r.type === 'opaqueredirect' ? 'redirect' : String(r.status)),
            session,
        };
    })().then(done, e => done({ error: String(e) }));
";

const TRIALS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_submitted_login_keeps_the_user_logged_in_with_the_data() {
    let Some(browser) = Chromium::start().await else { return };
    // Every session stored server-side, so the login rotates a stored
    // session: the case where two rotations race (a user already logged
    // in, or with more data than fits the cookie). With cookie-only
    // sessions each login would just create a session of its own.
    let demo = Demo::start(harness::config()).await;
    browser.goto(&demo.url("/session")).await;

    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for trial in 0..TRIALS {
        browser.delete_cookies().await;
        let outcome: Value = browser.execute_async(DOUBLE_LOGIN, json!([])).await;
        assert!(outcome.get("error").is_none(), "trial {trial}: {outcome}");
        assert_eq!(
            outcome["counter"].as_str().map(str::trim),
            Some("Hello, anonymous: this is visit 3 of this session."),
            "trial {trial}: the counter before the logins: {outcome}"
        );
        let session = &outcome["session"];
        let failure = if outcome["logins"] != json!(["redirect", "redirect"]) {
            Some("a login failed")
        } else if session["user_id"] != "alice" {
            Some("logged out")
        } else if session["data"]["visits"] != 3 {
            Some("logged in, but the data was lost")
        } else {
            None
        };
        if let Some(failure) = failure {
            *kinds.entry(failure).or_default() += 1;
            failures.push(format!("trial {trial}: {failure}: {outcome}"));
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{} of {TRIALS} double-submitted logins failed {kinds:?} ({:.0} ms a trial)",
        failures.len(),
        elapsed.as_secs_f64() * 1000.0 / TRIALS as f64
    );
    assert!(
        failures.is_empty(),
        "{} of {TRIALS} double-submitted logins did not leave the browser logged in with its data {kinds:?}; \
         first ones:\n{}",
        failures.len(),
        failures.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
    browser.quit().await;
}
