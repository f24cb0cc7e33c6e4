//! `sessionctl purge-expired` against one raw `DELETE … WHERE expires_at < now`
//! on 2,000,000 sessions of which 1,000,000 are expired, in SQLite and
//! PostgreSQL, in two shapes: expiry following insertion order (a fixed
//! lifetime) and expired rows randomly interleaved (sliding expiry).
//!
//! A third shape, Sparse, has only 1% expired (random): the case where a
//! walk of the whole table must not cost more than the raw DELETE's scan.
//!
//! For each: wall time and its ratio to the raw DELETE, rows/s, the longest
//! batch, the purging process's peak RSS, and the p99 latency of session
//! saves made by a concurrent writer while the purge runs versus while the
//! raw DELETE runs. The purge runs as the release `sessionctl` binary, as an
//! operator would run it.
//!
//! Run: `cargo build --release && cargo bench -p sessionctl-benches --bench purge`
//! (`ROWS=200000` for a quick pass, `ONLY=sqlite` or `ONLY=postgres` for one backend,
//! `SHAPES=sparse` for some shapes, `PG=fast` for a PostgreSQL without fsync,
//! `USERS=20` for the share of sessions with a user id, `TEMPLATES=dir` to keep
//! the filled tables between runs, `CLI=0` to skip the read-only commands,
//! `BEFORE_BIN=path` to run an earlier build's purge beside this one's and
//! `ROUNDS=3` to repeat the methods, interleaved; `WRITER=1` or `WRITER=0` for
//! only the runs beside the writer or only the idle ones). Each SQLite copy is synced
//! to disk before its method starts, and each SQLite purge is compared with the raw
//! DELETE run as it was: beside the writer, or idle (PostgreSQL's raw DELETE runs
//! beside the writer only).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sessionctl::store::postgres::PostgresDatabase;
use sessionctl::store::sqlite::SqliteDatabase;
use sessionctl::{DatabaseTier, Record};

#[path = "../../tests/support/pg_server.rs"]
#[allow(dead_code)]
mod pg_server;

#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Expired rows are the oldest rows (a fixed lifetime).
    Ordered,
    /// Expired rows are spread at random (sliding expiry).
    Random,
    /// Only 1% expired, at random (a purge that runs often).
    Sparse,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Run {
    wall: Duration,
    deleted: u64,
    longest_batch_ms: Option<u64>,
    batch_p99_ms: Option<u64>,
    longest_lock_ms: Option<u64>,
    peak_rss_kb: Option<u64>,
    writer_p99: Duration,
    writer_max: Duration,
    writer_saves: usize,
    writer_failures: usize,
}

fn rows() -> u64 {
    std::env::var("ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(2_000_000)
}

/// Percent of the sessions that have a user id (`USERS=20`; default 10).
fn users_percent() -> u64 {
    std::env::var("USERS").ok().and_then(|r| r.parse().ok()).filter(|p| *p <= 100).unwrap_or(10)
}

/// A SQLite expression for a 32-character base64url stored key like the
/// library's (a digest: uniform over the alphabet, never starting with `-`),
/// from the four random integers `a`, `b`, `c` and `d`: keys must spread
/// over the key space as real ones do, or the user index's prefixes and
/// the stats sample would not be those of a real table.
fn sqlite_random_id() -> String {
    const ALPHABET: &str = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    // The first character uniform over the 63 that are not `-`, as the
    // library draws it (`(a & 63) % 63` made `0` twice as likely, which
    // `stats` rightly took for keys not spread like real ones).
    let mut parts = vec![format!("substr('{}', 1 + abs(d % 63), 1)", &ALPHABET[1..])];
    for k in 1..32 {
        // d's low bits drew the first character: its others serve k >= 30.
        let (var, shift) = (["a", "b", "c", "d"][k / 10], 6 * (k % 10) + if k >= 30 { 12 } else { 0 });
        parts.push(format!("substr('{ALPHABET}', 1 + (({var} >> {shift}) & 63), 1)"));
    }
    parts.join(" || ")
}

fn expired_sql(shape: Shape, backend: Backend) -> &'static str {
    match (shape, backend) {
        (Shape::Ordered, _) => "i <= n / 2",
        (Shape::Random, Backend::Sqlite) => "abs(random()) % 2 = 0",
        (Shape::Random, Backend::Postgres) => "random() < 0.5",
        (Shape::Sparse, Backend::Sqlite) => "abs(random()) % 100 = 0",
        (Shape::Sparse, Backend::Postgres) => "random() < 0.01",
    }
}

/// Fills a fresh database with `rows` sessions, half expired; returns ids of
/// some live ones for the writer.
async fn fill(backend: Backend, url: &str, shape: Shape) -> (Arc<dyn DatabaseTier>, Vec<Record>) {
    let n = rows();
    let users = users_percent();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let database: Arc<dyn DatabaseTier> = match backend {
        Backend::Sqlite => Arc::new(SqliteDatabase::connect(url).await.unwrap()),
        Backend::Postgres => Arc::new(PostgresDatabase::connect(url).await.unwrap()),
    };
    database.migrate().await.unwrap();
    let cond = expired_sql(shape, backend);
    match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(url).await.unwrap();
            sqlx::query("PRAGMA synchronous = OFF").execute(&mut conn).await.unwrap();
            let id = sqlite_random_id();
            let sql = format!(
                "WITH RECURSIVE s(i, n) AS (SELECT 1, {n} UNION ALL SELECT i + 1, n FROM s WHERE i < n),
                      r(i, n, a, b, c, d) AS (SELECT i, n, random(), random(), random(), random() FROM s)
                 INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
                 SELECT {id},
                        json_object('cart', json_array('SKU-' || i), 'n', i, 'csrf', hex(randomblob(24))),
                        CASE WHEN i % 100 < {users} THEN 'user' || (i % 100000) END,
                        {now_ms}, {now_ms},
                        CASE WHEN {cond} THEN {now_ms} - 3600000 ELSE {now_ms} + 86400000 END, 1
                 FROM r"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await.unwrap();
            let sql = format!(
                "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
                 SELECT substr(translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_'), 1, 32),
                        jsonb_build_object('cart', jsonb_build_array('SKU-' || i), 'n', i, 'csrf', md5(i::text) || md5((i + 1)::text)),
                        CASE WHEN i % 100 < {users} THEN 'user' || (i % 100000) END,
                        to_timestamp({now_ms} / 1000.0), to_timestamp({now_ms} / 1000.0),
                        CASE WHEN {cond} THEN to_timestamp({now_ms} / 1000.0) - interval '1 hour'
                             ELSE to_timestamp({now_ms} / 1000.0) + interval '1 day' END, 1
                 FROM generate_series(1, {n}) AS g(i), (SELECT {n} AS n) AS c"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
            sqlx::query("VACUUM ANALYZE sessions").execute(&mut conn).await.unwrap();
        }
    }
    let live = live_sessions(database.as_ref()).await;
    (database, live)
}

/// Some live sessions for the writer to save.
async fn live_sessions(database: &dyn DatabaseTier) -> Vec<Record> {
    database
        .scan(&sessionctl::Filter::state(sessionctl::StateFilter::Active), chrono::Utc::now(), None, 500)
        .await
        .unwrap()
}

/// Saves live sessions in a loop until `stop`, one at a time, like a busy
/// app server; returns each save's latency and the failures.
async fn writer(
    database: Arc<dyn DatabaseTier>,
    mut live: Vec<Record>,
    recording: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    let mut i = 0;
    while !live.is_empty() && !stop.load(Ordering::Relaxed) {
        let count = live.len();
        let record = &mut live[i % count];
        let expected = record.version;
        record.version += 1;
        record.data.insert("n".into(), Value::from(i as u64));
        let started = Instant::now();
        let counted = recording.load(Ordering::Relaxed);
        let result = database.update(record, expected).await;
        if counted {
            latencies.push(started.elapsed());
        }
        if result.is_err() {
            failures += usize::from(counted);
            record.version = expected;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (latencies, failures)
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    values[((values.len() as f64 * p).ceil() as usize).clamp(1, values.len()) - 1]
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// (deleted, (longest batch ms, longest write lock ms, batch p99 ms), peak RSS KiB)
type JobResult = (u64, Option<(u64, u64, u64)>, Option<u64>);

/// Runs `job`, beside the concurrent writer unless `idle`.
async fn measure(
    database: Arc<dyn DatabaseTier>,
    live: Vec<Record>,
    idle: bool,
    job: impl Future<Output = JobResult>,
) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let live = if idle { Vec::new() } else { live };
    let writer = tokio::spawn(writer(database, live, recording.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let (deleted, longest, peak_rss_kb) = job.await;
    let (longest_batch_ms, longest_lock_ms, batch_p99_ms) =
        (longest.map(|l| l.0), longest.map(|l| l.1), longest.map(|l| l.2));
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, writer_failures) = writer.await.unwrap();
    let writer_saves = latencies.len();
    let writer_max = latencies.iter().max().copied().unwrap_or_default();
    Run {
        wall,
        deleted,
        longest_batch_ms,
        batch_p99_ms,
        longest_lock_ms,
        peak_rss_kb,
        writer_p99: percentile(&mut latencies, 0.99),
        writer_max,
        writer_saves,
        writer_failures,
    }
}

/// The `sessionctl` binary that purges: `SESSIONCTL_BIN`, else this
/// checkout's release build; with `before`, `BEFORE_BIN` (an earlier build,
/// run in the same rounds).
fn sessionctl_binary(before: bool) -> String {
    let own = || {
        std::env::var("SESSIONCTL_BIN")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/sessionctl").to_owned())
    };
    if before { std::env::var("BEFORE_BIN").unwrap_or_else(|_| own()) } else { own() }
}

async fn purge_with_binary(url: String, binary: String) -> JobResult {
    let child = tokio::process::Command::new(&binary)
        .env("SESSIONCTL_DATABASE_URL", &url)
        .args(["purge-expired", "--output", "json", "--quiet"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary} (cargo build --release first): {e}"));
    let pid = child.id().unwrap();
    let sampler = std::thread::spawn(move || {
        let mut peak = None;
        while let Some(kb) = peak_rss_kb(pid) {
            peak = Some(kb);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let longest = (
        summary["longest_batch_ms"].as_u64().unwrap(),
        summary["longest_write_lock_ms"].as_u64().unwrap(),
        summary["batch_p99_ms"].as_u64().unwrap_or_default(),
    );
    (summary["deleted"].as_u64().unwrap(), Some(longest), sampler.join().unwrap())
}

/// Times `stats`, `stats --exact` and `list --limit 10` on the table at `url`.
async fn cli_timings(url: &str, shape: Shape) -> Vec<(Shape, String, Duration)> {
    let binary = sessionctl_binary(false);
    let mut timings = Vec::new();
    for args in
        [&["stats"][..], &["stats", "--exact"], &["list", "--limit", "10"], &["list", "--active", "--limit", "10"]]
    {
        let started = Instant::now();
        let output = tokio::process::Command::new(&binary)
            .env("SESSIONCTL_DATABASE_URL", url)
            .args(args)
            .args(["--output", "json"])
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        timings.push((shape, format!("sessionctl {}", args.join(" ")), started.elapsed()));
    }
    timings
}

async fn raw_delete(backend: Backend, url: String, vacuum: bool) -> JobResult {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let deleted = match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
                .bind(now_ms)
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected();
            // The whole process, as `sqlite3 file 'DELETE …'` runs it: its
            // last connection copies the WAL back into the database on
            // close, as the purge's checkpoints do (without this the floor
            // left ~2 GB in the WAL for the app's commits to copy). A
            // writer's read snapshot can hold the copy back: retried until
            // the whole WAL is in the database, so the floor never skips
            // work the purge does.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut conn).await.unwrap();
                if busy == 0 && copied >= log {
                    break;
                }
                assert!(Instant::now() < deadline, "the WAL is never copied back: busy {busy}, {copied} of {log}");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            deleted
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
            let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at < now()")
                .execute(&mut conn)
                .await
                .unwrap()
                .rows_affected();
            if vacuum {
                sqlx::query("VACUUM sessions").execute(&mut conn).await.unwrap();
            }
            deleted
        }
    };
    (deleted, None, None)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // Durable, as in production: the purge's many small commits would cost
    // nothing on a server that does not wait for the disk. `PG=fast` uses the
    // tests' server instead (no fsync): CPU-bound figures, far less noise.
    let pg = if std::env::var("PG").is_ok_and(|v| v == "fast") { pg_server::shared() } else { pg_server::durable() };
    let dir = tempfile::tempdir().unwrap();
    println!("{} sessions; the writer saves one live session every ~2 ms", rows());
    println!(
        "| backend | shape | method | wall | × raw | rows/s | longest batch (lock; batch p99) | peak RSS | writer p99 | writer max | saves (failed) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut case = 0;
    let mut timings = Vec::new();
    let only = std::env::var("ONLY").unwrap_or_default().to_lowercase();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if !only.is_empty() && !format!("{backend:?}").to_lowercase().contains(&only) {
            continue;
        }
        let shapes = std::env::var("SHAPES").unwrap_or_else(|_| "ordered,random,sparse".into()).to_lowercase();
        for shape in [Shape::Ordered, Shape::Random, Shape::Sparse] {
            if !shapes.contains(&format!("{shape:?}").to_lowercase()) {
                continue;
            }
            let mut raw_wall = None;
            // SQLite: one table per shape, copied for each method (filling
            // ten million rows takes minutes).
            // `TEMPLATES=dir` keeps them there between runs of the bench.
            let templates = std::env::var("TEMPLATES").map(std::path::PathBuf::from);
            let template = templates.as_deref().unwrap_or(dir.path()).join(format!(
                "template-{shape:?}-{}-{}.db",
                rows(),
                users_percent()
            ));
            let template_live: Option<Vec<Record>>;
            // PostgreSQL: likewise, each run on `CREATE DATABASE … TEMPLATE`.
            let mut pg_template = None;
            match (backend, pg) {
                (Backend::Sqlite, _) => {
                    let url = format!("sqlite://{}", template.display());
                    let (database, live) = if template.exists() {
                        let database = SqliteDatabase::connect(&url).await.unwrap();
                        let live = live_sessions(&database).await;
                        (Arc::new(database) as Arc<dyn DatabaseTier>, live)
                    } else {
                        let filled = fill(backend, &url, shape).await;
                        // On disk before the first copy is timed.
                        std::fs::File::open(&template).and_then(|f| f.sync_all()).unwrap();
                        filled
                    };
                    drop(database);
                    template_live = Some(live);
                    if std::env::var("CLI").map_or(true, |v| v != "0") {
                        timings.extend(cli_timings(&url, shape).await);
                    }
                }
                (Backend::Postgres, Some(server)) => {
                    let url = server.create_database();
                    let (database, live) = fill(backend, &url, shape).await;
                    drop(database);
                    template_live = Some(live);
                    pg_template = Some((server, url.rsplit('/').next().unwrap_or_default().to_owned()));
                }
                (Backend::Postgres, None) => continue,
            }
            // The last: no writer, so nothing invalidates the purge's page
            // cache between batches (a quiet night); its peak RSS is the one
            // that matters for the memory budget.
            let mut methods: Vec<&str> = match backend {
                Backend::Sqlite => vec!["raw DELETE", "purge-expired", "raw DELETE, idle", "purge-expired, idle"],
                // What an operator runs by hand reclaims the space too.
                Backend::Postgres => vec!["raw DELETE", "raw DELETE + VACUUM", "purge-expired", "purge-expired, idle"],
            };
            // `BEFORE_BIN=path`: an earlier build's purge after each of
            // this one's, against the same raw DELETE; `ROUNDS=n` runs the
            // whole sequence n times, interleaved.
            if std::env::var_os("BEFORE_BIN").is_some() {
                methods = methods
                    .into_iter()
                    .flat_map(|m| match m {
                        "purge-expired" => vec![m, "purge-expired (before)"],
                        "purge-expired, idle" => vec![m, "purge-expired, idle (before)"],
                        _ => vec![m],
                    })
                    .collect();
            }
            // `WRITER=1`: only the methods beside the writer; `WRITER=0`: only the idle ones.
            match std::env::var("WRITER").as_deref() {
                Ok("1") => methods.retain(|m| !m.contains("idle")),
                Ok("0") => methods.retain(|m| m.contains("idle")),
                _ => {}
            }
            let rounds = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1usize);
            // Every other round runs the earlier build's purge first, so
            // neither build always follows the other.
            let round = |r: usize| {
                let mut order = methods.clone();
                if r % 2 == 1 {
                    for i in 1..order.len() {
                        if order[i].ends_with("(before)") {
                            order.swap(i - 1, i);
                        }
                    }
                }
                order
            };
            for method in (0..rounds).flat_map(round) {
                case += 1;
                let (url, database, live) = match (&template_live, &pg_template) {
                    (Some(live), Some((server, template))) => {
                        let mut admin =
                            <sqlx::PgConnection as sqlx::Connection>::connect(&server.url("postgres")).await.unwrap();
                        let name = format!("{template}_{case}");
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"
                        )))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                        let url = server.url(&name);
                        let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
                        (url, database, live.clone())
                    }
                    (Some(live), None) => {
                        let path = dir.path().join(format!("bench{case}.db"));
                        std::fs::copy(&template, &path).unwrap();
                        // On disk before the clock starts: otherwise the
                        // first checkpoint's fsync writes the whole copy
                        // back (2 GB at 10M rows), inside the figure.
                        std::fs::File::open(&path).and_then(|f| f.sync_all()).unwrap();
                        let url = format!("sqlite://{}", path.display());
                        let database: Arc<dyn DatabaseTier> = Arc::new(SqliteDatabase::connect(&url).await.unwrap());
                        (url, database, live.clone())
                    }
                    (None, _) => continue,
                };
                let idle = method.contains("idle");
                let run = if method.starts_with("raw DELETE") {
                    let vacuum = method.ends_with("VACUUM");
                    measure(database, live, idle, raw_delete(backend, url.clone(), vacuum)).await
                } else {
                    let binary = sessionctl_binary(method.ends_with("(before)"));
                    measure(database, live, idle, purge_with_binary(url.clone(), binary)).await
                };
                // Each purge against the raw DELETE run as it was: beside
                // the writer, or idle.
                if method.starts_with("raw DELETE") && !method.ends_with("VACUUM") {
                    raw_wall = Some(run.wall);
                }
                let ratio =
                    raw_wall.map_or("-".into(), |raw| format!("{:.2}", run.wall.as_secs_f64() / raw.as_secs_f64()));
                println!(
                    "| {backend:?} | {shape:?} | {method} | {:.2} s | {ratio} | {:.0} | {} | {} | {} | {} | {} ({}) |",
                    run.wall.as_secs_f64(),
                    run.deleted as f64 / run.wall.as_secs_f64(),
                    run.longest_batch_ms
                        .zip(run.longest_lock_ms)
                        .zip(run.batch_p99_ms)
                        .map_or("(one statement)".into(), |((batch, lock), p99)| format!(
                            "{batch} ms ({lock} ms; p99 {p99} ms)"
                        )),
                    run.peak_rss_kb.map_or("-".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
                    if idle { "-".into() } else { format!("{} ms", run.writer_p99.as_millis()) },
                    if idle { "-".into() } else { format!("{} ms", run.writer_max.as_millis()) },
                    run.writer_saves,
                    run.writer_failures,
                );
                if backend == Backend::Sqlite {
                    let _ = std::fs::remove_file(url.trim_start_matches("sqlite://"));
                }
            }
        }
    }
    if !timings.is_empty() {
        println!();
        println!("Read-only commands on the same SQLite tables (before the purge), whole processes:");
        println!("| shape | command | wall |");
        println!("| --- | --- | --- |");
        for (shape, command, wall) in timings {
            println!("| {shape:?} | `{command}` | {:.2} s |", wall.as_secs_f64());
        }
    }
}
