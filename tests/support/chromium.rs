//! A headless Chromium for tests, driven over the W3C WebDriver protocol,
//! and the handful of WebDriver commands the tests use (a few calls over
//! `reqwest`: a WebDriver crate would be far more than that).
//!
//! `chromedriver` runs on a free loopback port in a process group of its
//! own, with the browser it starts under it; dropping the [`Chromium`]
//! (a panicking test too) kills the whole group, and a watchdog kills it if
//! the test process dies first. Each browser gets a fresh profile in a temp
//! dir. When the binaries are missing the caller is told so, and `CI` turns
//! that into a failure. Every command is bounded by a timeout.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// How long one WebDriver command may take on a loaded machine (a script or
/// a page load is bounded tighter by the session's own timeouts).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Starting the browser: a cold start on a busy 2-core CI machine is slow.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Chromium's flags: headless, runnable as root (CI), and quiet: no first-run
/// UI, no background traffic that could race the test's own requests.
const ARGS: [&str; 9] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A browser with one WebDriver session.
pub struct Chromium {
    driver: Child,
    base: String,
    http: reqwest::Client,
    /// The profile and chromedriver's log; removed after the processes die.
    dir: tempfile::TempDir,
}

/// A cookie as the browser holds it.
#[derive(Debug, Deserialize)]
pub struct Cookie {
    pub name: String,
    #[serde(default)]
    pub secure: bool,
    #[serde(default, rename = "httpOnly")]
    pub http_only: bool,
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.exists())
}

impl Chromium {
    /// Starts chromedriver and a browser, or `None` when either is missing
    /// (panics instead under `CI`).
    pub async fn start() -> Option<Chromium> {
        let (Some(chromium), Some(chromedriver)) = (find("chromium"), find("chromedriver")) else {
            return super::pg_server::missing("a headless browser (Debian packages `chromium` and `chromium-driver`)");
        };
        let dir = tempfile::tempdir().expect("cannot create a temp dir for the browser");
        let port = super::pg_server::free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.path().join("chromedriver.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so one signal reaches chromedriver and every
            // browser process under it.
            .process_group(0)
            .spawn()
            .expect("cannot start chromedriver");
        let watchdog = format!(
            "while [ -d /proc/{} ] && [ -d /proc/{} ]; do sleep 0.5; done; kill -9 -- -{} 2>/dev/null",
            std::process::id(),
            driver.id(),
            driver.id()
        );
        // Deliberately never waited for: it must outlive this process.
        #[allow(clippy::zombie_processes)]
        let _watchdog = Command::new("/bin/sh").arg("-c").arg(watchdog).stdin(Stdio::null()).spawn();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("cannot build an HTTP client");
        let mut browser = Chromium { driver, base: format!("http://127.0.0.1:{port}"), http, dir };
        browser.wait_until_ready().await;

        let profile = browser.dir.path().join("profile");
        let mut args: Vec<String> = ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "script": 30_000, "pageLoad": 30_000, "implicit": 0 },
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let reply = browser.send(reqwest::Method::POST, "/session", Some(capabilities), START_TIMEOUT).await;
        let session = reply["sessionId"].as_str().unwrap_or_else(|| browser.fail("no sessionId", &reply)).to_owned();
        browser.base = format!("{}/session/{session}", browser.base);
        Some(browser)
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                self.fail(&format!("chromedriver exited ({status})"), &Value::Null);
            }
            let status = self.http.get(format!("{}/status", self.base)).timeout(Duration::from_secs(5)).send().await;
            if let Ok(status) = status
                && let Ok(body) = status.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return;
            }
            if Instant::now() > deadline {
                self.fail("chromedriver did not get ready", &Value::Null);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Panics with what went wrong and the end of chromedriver's log.
    fn fail(&self, what: &str, reply: &Value) -> ! {
        let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("WebDriver: {what}: {reply}\n--- end of chromedriver.log ---\n{tail}");
    }

    /// One command; its `value`, or a panic naming the WebDriver error.
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>, timeout: Duration) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base)).timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = match request.send().await {
            Ok(reply) => reply,
            Err(error) => self.fail(&format!("{method} {path}"), &json!(error.to_string())),
        };
        let status = reply.status();
        let body: Value = match reply.json().await {
            Ok(body) => body,
            Err(error) => self.fail(&format!("{method} {path}: reading the reply"), &json!(error.to_string())),
        };
        if !status.is_success() {
            self.fail(&format!("{method} {path} answered {status}"), &body["value"]);
        }
        body["value"].clone()
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.send(method, path, body, COMMAND_TIMEOUT).await
    }

    /// Opens `url` and waits until it has loaded (redirects followed).
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page
    /// and returns what it returns.
    pub async fn execute<T: DeserializeOwned>(&self, script: &str, args: Value) -> T {
        let value =
            self.command(reqwest::Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args }))).await;
        serde_json::from_value(value).expect("the script returned something else")
    }

    /// Runs `script`, which ends by calling its last argument with the
    /// result (`arguments[arguments.length - 1]`), within the session's
    /// script timeout.
    pub async fn execute_async<T: DeserializeOwned>(&self, script: &str, args: Value) -> T {
        let value = self
            .command(reqwest::Method::POST, "/execute/async", Some(json!({ "script": script, "args": args })))
            .await;
        serde_json::from_value(value).expect("the script returned something else")
    }

    /// The text of the page shown.
    pub async fn text(&self) -> String {
        self.execute("return document.body.innerText", json!([])).await
    }

    /// The cookies the browser would send to the page shown.
    pub async fn cookies(&self) -> Vec<Cookie> {
        let value = self.command(reqwest::Method::GET, "/cookie", None).await;
        serde_json::from_value(value).expect("cookies in an unexpected shape")
    }

    /// Deletes every cookie of the page shown (HttpOnly ones too).
    pub async fn delete_cookies(&self) {
        self.command(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// Ends the WebDriver session, which closes the browser cleanly; the
    /// rest is left to `Drop`.
    pub async fn quit(self) {
        self.command(reqwest::Method::DELETE, "", None).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
