//! Many app nodes at once: four demo processes sharing PostgreSQL and a
//! Redis Cluster, three `serve-cron` replicas, a logout storm and
//! `sessionctl revoke` while requests run on every node.
//!
//! Run under `--release -- --nocapture` it prints requests/s per node
//! (BENCHMARKS.md, "Many app nodes").

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{self, redis_cluster};
use crate::purge::{serve_cron_every_second, sessionctl, signal, tick_lines};

const SECRET: &str = "scale-out test key 0123456789 0123456789 0123456789";

/// The demo's binary, built by `cargo test` beside this one (or now, when
/// only this test binary was built).
fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_owned();
    let demo = profile_dir.join("examples").join("demo");
    if !demo.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--example", "demo"]).current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "cannot build the demo");
    }
    demo
}

/// A demo started with a configuration it cannot use says why in one line,
/// as the error's message (it printed `Error: UnsupportedUrl("")`, the
/// debug form), and exits 1.
#[test]
fn a_misconfigured_demo_says_why_in_one_line() {
    let output = Command::new(demo_binary())
        .env("SESSIONCTL_DATABASE_URL", "")
        .env("SESSIONCTL_SECRET", SECRET)
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: unsupported database URL scheme \"\""), "{stderr}");
}

/// One demo process on a free port, killed when dropped.
struct AppNode {
    base: String,
    child: Child,
}

impl AppNode {
    fn start(binary: &PathBuf, database_url: &str, redis_url: &str, prefix: &str) -> AppNode {
        let port = harness::free_port();
        let mut command = Command::new(binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SESSIONCTL_") {
                command.env_remove(key);
            }
        }
        let child = command
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("SESSIONCTL_DATABASE_URL", database_url)
            .env("SESSIONCTL_REDIS_URL", redis_url)
            .env("SESSIONCTL_REDIS_PREFIX", prefix)
            .env("SESSIONCTL_SECRET", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the demo did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        AppNode { base: format!("http://127.0.0.1:{port}"), child }
    }
}

impl Drop for AppNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reply: status, the cookie it set (as a Cookie header), its body.
struct Reply {
    status: u16,
    cookie: Option<String>,
    body: String,
}

async fn get(client: &reqwest::Client, node: &AppNode, path: &str, cookie: Option<&str>) -> Reply {
    let mut request = client.get(format!("{}{path}", node.base));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .map(str::to_owned);
    Reply { status, cookie, body: response.text().await.unwrap() }
}

async fn session_on(client: &reqwest::Client, node: &AppNode, cookie: &str) -> Value {
    let reply = get(client, node, "/session", Some(cookie)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    serde_json::from_str(&reply.body).unwrap()
}

/// A new session on `node`, logged in as `user` when given; its cookie.
async fn start_session(client: &reqwest::Client, node: &AppNode, user: Option<&str>) -> String {
    let cookie = get(client, node, "/", None).await.cookie.expect("a new session sets a cookie");
    let Some(user) = user else { return cookie };
    let reply = get(client, node, &format!("/login?user={user}"), Some(&cookie)).await;
    assert_eq!(reply.status, 303, "{}", reply.body);
    reply.cookie.expect("login sets the rotated id")
}

/// Sends every request at once; returns how many did not answer 200.
async fn all_at_once(client: &reqwest::Client, nodes: &[AppNode], requests: Vec<(usize, String, String)>) -> usize {
    let calls = requests.iter().map(|(node, path, cookie)| get(client, &nodes[*node], path, Some(cookie)));
    futures_util::future::join_all(calls).await.iter().filter(|r| r.status != 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_app_nodes_on_a_cluster_lose_nothing_resurrect_nothing_and_purge_once_per_tick() {
    let Some(cluster) = tokio::task::spawn_blocking(redis_cluster::shared_cluster).await.unwrap() else { return };
    let Some(pg) = harness::postgres().await else { return };
    let demo = tokio::task::spawn_blocking(demo_binary).await.unwrap();
    let prefix = format!("scale{}:", std::process::id());
    let nodes: Arc<Vec<AppNode>> =
        Arc::new((0..4).map(|_| AppNode::start(&demo, &pg.url, &cluster.url(), &prefix)).collect());
    let replicas: Vec<(Child, Arc<std::sync::Mutex<String>>)> = (0..3)
        .map(|_| {
            let mut command = sessionctl(&pg.url, &[]);
            command.env("SESSIONCTL_REDIS_URL", cluster.url()).env("SESSIONCTL_REDIS_PREFIX", &prefix);
            serve_cron_every_second(command)
        })
        .collect();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let started = Instant::now();

    // Disjoint keys of one session, written from every node at once (a
    // logged-in session: an anonymous one this small lives in its cookie).
    let mut shared = Vec::new();
    for i in 0..8 {
        shared.push(start_session(&client, &nodes[i % 4], Some("writer")).await);
    }
    let writes: Vec<(usize, String, String)> = shared
        .iter()
        .flat_map(|cookie| (0..40).map(move |j| (j % 4, format!("/remember?key=k{j}&value={j}"), cookie.clone())))
        .collect();
    assert_eq!(all_at_once(&client, &nodes, writes).await, 0, "every write answers 200");
    for cookie in &shared {
        for node in nodes.iter() {
            let data = &session_on(&client, node, cookie).await["data"];
            let kept = (0..40).filter(|j| data[format!("note:k{j}")] == Value::String(j.to_string())).count();
            assert_eq!(kept, 40, "every node sees all 40 notes: {data}");
        }
    }

    // Logged-in users on every node: u0 logs out (storm), u1 is revoked by
    // the operator, u2 keeps writing; all while requests hit their sessions.
    let mut users: Vec<Vec<String>> = vec![Vec::new(); 3];
    for i in 0..24 {
        users[i % 3].push(start_session(&client, &nodes[i % 4], Some(&format!("u{}", i % 3))).await);
    }
    let mut storm = Vec::new();
    for (i, cookie) in users[0].iter().enumerate() {
        storm.push((i % 4, "/logout".to_owned(), cookie.clone()));
    }
    for (user, cookies) in users.iter().enumerate() {
        for (i, cookie) in cookies.iter().enumerate() {
            for j in 0..10 {
                storm.push(((i + j + 1) % 4, format!("/remember?key=s{user}x{j}&value={j}"), cookie.clone()));
            }
        }
    }
    let revoke = tokio::task::spawn_blocking({
        let (url, redis, prefix) = (pg.url.clone(), cluster.url(), prefix.clone());
        move || {
            sessionctl(&url, &["revoke", "--user", "u1", "-y", "--output", "json"])
                .env("SESSIONCTL_REDIS_URL", redis)
                .env("SESSIONCTL_REDIS_PREFIX", prefix)
                .output()
                .unwrap()
        }
    });
    let storm = tokio::spawn({
        let (client, nodes) = (client.clone(), nodes.clone());
        async move { all_at_once(&client, &nodes, storm).await }
    });
    let revoked = revoke.await.unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    // Refused by every node as soon as the command returns, storm or not.
    for cookie in &users[1] {
        for node in nodes.iter() {
            let session = session_on(&client, node, cookie).await;
            assert_eq!(session["user_id"], Value::Null, "revoked everywhere at once: {session}");
        }
    }
    let revoked: Value = serde_json::from_slice(&revoked.stdout).unwrap();
    assert_eq!(revoked["revoked"], 8, "{revoked}");
    assert_eq!(storm.await.unwrap(), 0, "every request of the storm answers 200");
    // Logged out or revoked on every node, and nothing brought back.
    for cookie in users[0].iter().chain(&users[1]) {
        for node in nodes.iter() {
            let session = session_on(&client, node, cookie).await;
            assert_eq!(session["user_id"], Value::Null, "logged out or revoked everywhere: {session}");
            assert_eq!(session["data"], serde_json::json!({}), "nothing resurrected: {session}");
        }
    }
    for cookie in &users[2] {
        for node in nodes.iter() {
            let session = session_on(&client, node, cookie).await;
            assert_eq!(session["user_id"], "u2", "{session}");
            let kept =
                (0..10).filter(|j| session["data"][format!("note:s2x{j}")] == Value::String(j.to_string())).count();
            assert_eq!(kept, 10, "u2's writes all landed: {session}");
        }
    }

    // Throughput, node by node: a session per node, 8 clients each.
    let seconds = 3;
    let mut per_node = Vec::new();
    let load_started = Instant::now();
    let loads = nodes.iter().map(|node| {
        let client = client.clone();
        async move {
            let mut done = 0u64;
            let workers = (0..8).map(|_| async {
                let cookie = start_session(&client, node, Some("load")).await;
                let mut n = 0u64;
                while load_started.elapsed() < Duration::from_secs(seconds) {
                    let reply =
                        get(&client, node, &format!("/remember?key=k{}&value={n}", n % 16), Some(&cookie)).await;
                    assert_eq!(reply.status, 200);
                    n += 1;
                }
                n
            });
            for n in futures_util::future::join_all(workers).await {
                done += n;
            }
            done
        }
    });
    for done in futures_util::future::join_all(loads).await {
        per_node.push(done as f64 / seconds as f64);
    }
    eprintln!(
        "scale-out /remember requests/s per node: {:?}; total {:.0}",
        per_node.iter().map(|r| r.round()).collect::<Vec<_>>(),
        per_node.iter().sum::<f64>()
    );

    // Make sure the replicas saw a few ticks, then stop them.
    let ran_for = started.elapsed();
    if ran_for < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_secs(5) - ran_for).await;
    }
    for (child, _) in &replicas {
        signal(child, "-TERM");
    }
    let mut runs: std::collections::BTreeMap<String, usize> = Default::default();
    for (mut child, log) in replicas {
        assert_eq!(child.wait().unwrap().code(), Some(0));
        for (message, tick) in tick_lines(&log.lock().unwrap()) {
            if message == "purge run" {
                *runs.entry(tick).or_default() += 1;
            }
        }
    }
    assert!(runs.len() >= 3, "the replicas purged every second: {runs:?}");
    assert!(runs.values().all(|&n| n == 1), "a tick purged twice: {runs:?}");
}
