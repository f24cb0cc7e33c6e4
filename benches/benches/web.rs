//! The request path under load, side by side in one run: the same three
//! endpoints — `/noop` (never touches the session), `/read` (reads a
//! counter), `/write` (increments it) — on
//!
//! * sessionctl's layer: Redis over PostgreSQL, and SQLite + in-process cache;
//! * tower-sessions 0.14 (`benches/peer`, its own Cargo project): its Redis
//!   store, CachingSessionStore (moka) over its SQLite store, and
//!   CachingSessionStore (its Redis store) over its PostgreSQL store;
//! * the floors: no session layer at all (`/noop`), and a handler doing one
//!   raw Redis GET (`/read`).
//!
//! Load: `wrk` (Debian) on loopback, 2 threads, 32 connections, 10 s per
//! run, each request carrying the cookie of one of N sessions picked at
//! random (a Lua script): N = 1,000 for every endpoint (writes spread like
//! real traffic), and for `/write` also N = 32 and N = 1 (every request on
//! one session: the concurrency case). Errors (non-2xx, socket) are counted.
//! Then 100 concurrent requests on one session each set a key of their own,
//! and the app is asked how many of the 100 keys the session kept.
//! Cookie-only sessions are off for sessionctl, so the stores are measured.
//! Release builds throughout. `ONLY=<part of a name>[,<another>…]` runs only
//! the apps whose name contains one of them; `RUNS=3` repeats everything in interleaved rounds
//! (each round runs every app once) and ends with the medians, since single
//! runs on a small shared machine vary by ±15–20%.
//!
//! Run: `cargo build --release -p sessionctl-benches --bin bench-web-server`,
//! `cargo build --release --manifest-path benches/peer/Cargo.toml`, then
//! `cargo bench -p sessionctl-benches --bench web` (`SECONDS=3` for a quick pass).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../tests/support/pg_server.rs"]
#[allow(dead_code)]
mod pg_server;
#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

const SESSIONS: usize = 1000;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of one of our setups, with a database of its own.
fn fresh_args(args: &[String], redis: &str, pg: &pg_server::PgServer, dir: &Path, tag: &str) -> Vec<String> {
    match args[0].as_str() {
        "ours-redis-pg" => vec![args[0].clone(), redis.to_owned(), pg.create_database()],
        "ours-sqlite" => vec![args[0].clone(), dir.join(format!("ours-{tag}.db")).display().to_string()],
        _ => args.to_vec(),
    }
}

/// Starts an app; `devices` turns device tracking on (our server only).
fn start(program: &Path, args: &[String], devices: bool) -> Server {
    let port = pg_server::free_port();
    let mut args = args.to_vec();
    args.push(format!("127.0.0.1:{port}"));
    let child = Command::new(program)
        .args(&args)
        .env("DEVICES", if devices { "1" } else { "0" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} (build it first, see the header): {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{} did not start", program.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

/// One GET; returns the Set-Cookie pair, if any.
fn get(port: u16, path: &str, cookie: Option<&str>) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: bench\r\n{cookie}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
    response.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("set-cookie").then(|| value.trim().split(';').next().unwrap_or("").to_owned())
    })
}

struct Load {
    requests_per_second: f64,
    p99_ms: f64,
    /// Non-2xx responses plus socket errors.
    errors: u64,
}

fn wrk(port: u16, path: &str, cookies: &Path, seconds: u64) -> Load {
    let script = cookies.with_extension("lua");
    std::fs::write(
        &script,
        format!(
            r#"local cookies = {{}}
for line in io.lines("{cookies}") do cookies[#cookies + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "{path}", {{ ["Cookie"] = cookies[math.random(#cookies)] }})
end
"#,
            cookies = cookies.display()
        ),
    )
    .unwrap();
    let output = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("wrk is needed (Debian package wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let requests_per_second =
        text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0);
    let p99_ms = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            if let Some(us) = v.strip_suffix("us") {
                us.parse::<f64>().unwrap_or(0.0) / 1000.0
            } else if let Some(ms) = v.strip_suffix("ms") {
                ms.parse().unwrap_or(0.0)
            } else if let Some(s) = v.strip_suffix('s') {
                s.parse::<f64>().unwrap_or(0.0) * 1000.0
            } else {
                0.0
            }
        })
        .unwrap_or(0.0);
    let number_after = |label: &str| -> u64 {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix(label))
            .flat_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()))
            .sum()
    };
    let errors = number_after("Non-2xx or 3xx responses:") + number_after("Socket errors:");
    Load { requests_per_second, p99_ms, errors }
}

/// 100 requests at once on one fresh session, each setting a key of its
/// own; returns how many of the 100 keys the session holds afterwards.
fn disjoint_keys_kept(port: u16) -> usize {
    let cookie = get(port, "/write", None).expect("a session cookie");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(100));
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let (cookie, barrier) = (cookie.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                barrier.wait();
                write!(
                    stream,
                    "GET /set/k{i} HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                response.starts_with("HTTP/1.1 200")
            })
        })
        .collect();
    let ok = threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET /keys HTTP/1.1\r\nHost: bench\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let kept = response.rsplit("\r\n\r\n").next().unwrap_or("").trim().parse().unwrap_or(0);
    if ok < 100 {
        eprintln!("{} of 100 requests failed", 100 - ok);
    }
    kept
}

/// One measured shape: app, endpoint, number of sessions (requests/s of
/// each round are kept per shape, for the medians).
type Shape<'a> = (&'a str, &'a str, String);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let seconds: u64 = std::env::var("SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let only: Option<String> = std::env::var("ONLY").ok();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ours = root.join("target/release/bench-web-server");
    let peer = root.join("benches/peer/target/release/peer-tower-sessions");
    let Some(redis) = redis_server::RedisServer::start() else { return };
    let Some(pg) = pg_server::shared() else { return };
    let dir = tempfile::tempdir().unwrap();

    let configs: Vec<(&str, &Path, Vec<String>)> = vec![
        ("no session layer (floor)", &ours, vec!["none".into()]),
        ("raw Redis GET handler (floor)", &ours, vec!["rawget".into(), redis.url()]),
        ("sessionctl: Redis over PostgreSQL", &ours, vec!["ours-redis-pg".into(), redis.url(), pg.create_database()]),
        (
            "tower-sessions: Redis over PostgreSQL (CachingSessionStore)",
            &peer,
            vec!["redis-pg".into(), format!("{},{}", redis.url(), pg.create_database())],
        ),
        (
            "sessionctl: SQLite + in-process cache",
            &ours,
            vec!["ours-sqlite".into(), dir.path().join("ours.db").display().to_string()],
        ),
        (
            "tower-sessions: moka over SqliteStore",
            &peer,
            vec!["sqlite".into(), dir.path().join("peer.db").display().to_string()],
        ),
        ("sessionctl: Redis only (no_database)", &ours, vec!["ours-redis".into(), redis.url()]),
        ("tower-sessions: RedisStore", &peer, vec!["redis".into(), redis.url()]),
    ];
    // BEFORE_BIN=path: another build of bench-web-server, measured beside
    // this one in the same rounds; DEVICES=1 adds this build with device
    // tracking on. Both for what a change costs the request path.
    let mut configs = configs;
    let before = std::env::var("BEFORE_BIN").ok().map(PathBuf::from);
    let with_devices = std::env::var("DEVICES").is_ok_and(|v| v == "1");
    let ours_only: Vec<(&str, Vec<String>)> = configs
        .iter()
        .filter(|(name, program, _)| name.starts_with("sessionctl") && *program == ours.as_path())
        .map(|(name, _, args)| (*name, args.clone()))
        .collect();
    let renamed = |name: &str, what: &str| -> &'static str { Box::leak(format!("{name} [{what}]").into_boxed_str()) };
    for (name, args) in &ours_only {
        if let Some(before) = &before {
            let fresh = fresh_args(args, &redis.url(), pg, dir.path(), "before");
            configs.push((renamed(name, "before"), Box::leak(before.clone().into_boxed_path()), fresh));
        }
        if with_devices {
            let fresh = fresh_args(args, &redis.url(), pg, dir.path(), "devices");
            configs.push((renamed(name, "devices"), &ours, fresh));
        }
    }
    let rounds: usize = std::env::var("RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    println!(
        "wrk -t2 -c32 -d{seconds}s on loopback; each request carries the cookie of one of N sessions, picked at random; {rounds} round(s), the apps interleaved in each"
    );
    println!("| round | app | endpoint | sessions | requests/s | p99 | errors |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut kept = Vec::new();
    let mut measured: Vec<(Shape, Vec<f64>)> = Vec::new();
    for round in 1..=rounds {
        for (name, program, args) in &configs {
            if only.as_ref().is_some_and(|only| !only.split(',').any(|part| name.contains(part))) {
                continue;
            }
            let server = start(program, args, name.ends_with("[devices]"));
            let floor = name.contains("floor");
            let mut sessions = Vec::new();
            if !floor {
                for _ in 0..SESSIONS {
                    sessions.push(get(server.port, "/write", None).expect("a session cookie"));
                }
            } else {
                sessions.push("none=1".into());
            }
            let runs: Vec<(&str, usize)> = match (floor, name.contains("raw")) {
                (true, true) => vec![("/read", 1)],
                (true, false) => vec![("/noop", 1)],
                _ => {
                    vec![("/noop", SESSIONS), ("/read", SESSIONS), ("/write", SESSIONS), ("/write", 32), ("/write", 1)]
                }
            };
            for (endpoint, count) in runs {
                let cookies = dir.path().join(format!("cookies-{}-{count}.txt", server.port));
                std::fs::write(&cookies, sessions[..count.min(sessions.len())].join("\n") + "\n").unwrap();
                let load = wrk(server.port, endpoint, &cookies, seconds);
                let count = if floor { "-".to_owned() } else { count.to_string() };
                println!(
                    "| {round} | {name} | {endpoint} | {count} | {:.0} | {:.2} ms | {} |",
                    load.requests_per_second, load.p99_ms, load.errors
                );
                let key = (*name, endpoint, count);
                match measured.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, values)) => values.push(load.requests_per_second),
                    None => measured.push((key, vec![load.requests_per_second])),
                }
            }
            if !floor {
                kept.push((round, *name, disjoint_keys_kept(server.port)));
            }
        }
    }
    if rounds > 1 {
        println!();
        println!("Medians over the {rounds} rounds (requests/s)");
        println!("| app | endpoint | sessions | median |");
        println!("| --- | --- | --- | --- |");
        for ((name, endpoint, count), mut values) in measured {
            values.sort_by(f64::total_cmp);
            println!("| {name} | {endpoint} | {count} | {:.0} |", values[values.len() / 2]);
        }
    }
    println!();
    println!("100 concurrent requests on one session, each setting a different key: keys kept");
    println!("| round | app | kept of 100 |");
    println!("| --- | --- | --- |");
    for (round, name, kept) in kept {
        println!("| {round} | {name} | {kept} |");
    }
}
