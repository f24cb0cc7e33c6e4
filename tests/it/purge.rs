//! `sessionctl purge-expired` and `serve-cron`, as real processes against
//! real databases: exact deletion, interruption (SIGKILL, SIGTERM), leader
//! election on PostgreSQL, database outages, metrics, bad arguments.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sessionctl::record::now;
use sessionctl::store::CacheLookup;
use sessionctl::store::postgres::PostgresDatabase;
use sessionctl::{CacheTier, DatabaseTier, Filter, Record, StateFilter, Store, StoreOptions};

use crate::harness::{self, pg_server::PgServer};

pub(crate) fn sessionctl(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESSIONCTL_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").env("SESSIONCTL_DATABASE_URL", database_url).args(args);
    command.stdin(Stdio::null());
    command
}

fn record(expires_in: chrono::Duration) -> Record {
    harness::record(None, expires_in, json!({"n": 1}))
}

/// Seeds `live` and `expired` sessions through the store; returns them.
async fn seed(store: &Store, live: usize, expired: usize) -> (Vec<Record>, Vec<Record>) {
    let mut l = Vec::new();
    let mut e = Vec::new();
    for _ in 0..live {
        let r = record(chrono::Duration::hours(1));
        store.create(&r).await.unwrap();
        l.push(r);
    }
    for _ in 0..expired {
        let r = record(chrono::Duration::seconds(-30));
        store.create(&r).await.unwrap();
        e.push(r);
    }
    (l, e)
}

async fn counts(database: &Arc<dyn DatabaseTier>) -> (u64, u64) {
    let now = now();
    let active = database.count(&Filter::state(StateFilter::Active), now).await.unwrap();
    let expired = database.count(&Filter::state(StateFilter::Expired), now).await.unwrap();
    (active, expired)
}

fn json_output(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn purge_deletes_exactly_the_expired_rows(db: harness::TestDb, redis: Option<(String, String)>) {
    let (live, expired) = seed(&db.store, 150, 120).await;
    let database = db.database.clone().unwrap();
    let mut args = vec!["purge-expired", "--batch-size", "40", "--output", "json"];
    if let Some((url, prefix)) = &redis {
        args.extend(["--redis-url", url, "--redis-prefix", prefix]);
    }
    let dry = json_output(&sessionctl(&db.url, &["purge-expired", "--dry-run", "--output", "json"]).output().unwrap());
    assert_eq!(dry["would_delete"], 120);
    assert_eq!(counts(&database).await, (150, 120), "a dry run deletes nothing");

    let summary = json_output(&sessionctl(&db.url, &args).output().unwrap());
    assert_eq!(summary["deleted"], 120);
    assert_eq!(summary["ended"], "finished");
    assert!(summary["batches"].as_u64().unwrap() >= 2, "{summary}");
    assert_eq!(counts(&database).await, (150, 0));
    for r in &live {
        assert!(database.load(&r.id).await.unwrap().is_some());
    }
    if let Some(cache) = &db.cache {
        for r in &expired {
            assert!(!matches!(cache.get(&r.id).await.unwrap(), CacheLookup::Hit(_)), "purged ids leave the cache too");
        }
        assert!(matches!(cache.get(&live[0].id).await.unwrap(), CacheLookup::Hit(_)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_expired_on_sqlite() {
    purge_deletes_exactly_the_expired_rows(harness::sqlite().await, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_expired_on_postgres() {
    let Some(db) = harness::postgres().await else { return };
    purge_deletes_exactly_the_expired_rows(db, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_expired_on_postgres_with_redis() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Some(mut db) = harness::postgres().await else { return };
    let prefix = format!("purge{}:", harness::new_key());
    let cache: Arc<dyn CacheTier> = Arc::new(
        sessionctl::store::redis::RedisCache::connect(&server.url(), &prefix, Duration::from_secs(1)).unwrap(),
    );
    db.store = Store::tiered(db.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    db.cache = Some(cache);
    purge_deletes_exactly_the_expired_rows(db, Some((server.url(), prefix))).await;
}

#[tokio::test]
async fn grace_period_keeps_recently_expired_sessions() {
    let db = harness::sqlite().await;
    let recent = record(chrono::Duration::minutes(-5));
    let old = record(chrono::Duration::hours(-3));
    db.store.create(&recent).await.unwrap();
    db.store.create(&old).await.unwrap();
    let summary = json_output(
        &sessionctl(&db.url, &["purge-expired", "--older-than", "1h", "--output", "json"]).output().unwrap(),
    );
    assert_eq!(summary["deleted"], 1);
    let database = db.database.clone().unwrap();
    assert!(database.load(&old.id).await.unwrap().is_none());
    assert!(database.load(&recent.id).await.unwrap().is_some());
}

/// `n` ids from the generator, as a JSON array (for `json_each` in SQL
/// that fills a table): ids spread over the id space as real ones do, which
/// the user index's prefixes and the stats sample rely on.
pub fn generated_ids(n: usize) -> String {
    serde_json::to_string(&(0..n).map(|_| harness::new_key().as_str().to_owned()).collect::<Vec<_>>()).unwrap()
}

/// A SQLite database with `rows` sessions, every other one expired, written
/// directly in SQL (fast enough for hundreds of thousands).
async fn big_sqlite(rows: u32) -> harness::TestDb {
    big_sqlite_padded(rows, 0).await
}

/// Like [`big_sqlite`], each session's data padded with `pad` random bytes
/// (written as hex).
async fn big_sqlite_padded(rows: u32, pad: u32) -> harness::TestDb {
    let db = harness::sqlite().await;
    let pool = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    let live_until = (now() + chrono::Duration::hours(1)).timestamp_millis();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT substr(replace(replace(hex(randomblob(18)), 'E', '-'), 'F', '_'), 1, 32),
                json_object('n', 1, 'pad', hex(randomblob(?3))), NULL, 0, 0,
                CASE WHEN i % 2 = 0 THEN 1000 ELSE ?2 END, 1
         FROM n",
    )
    .bind(rows)
    .bind(live_until)
    .bind(pad)
    .execute(pool.pool())
    .await
    .unwrap();
    // Start with an empty WAL, as a database that has been idle for a while.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool.pool()).await.unwrap();
    db
}

/// Starts a purge that will take a while, and waits until it has deleted
/// something.
async fn start_slow_purge(db: &harness::TestDb) -> (Child, u64) {
    let database = db.database.clone().unwrap();
    let (_, expired_before) = counts(&database).await;
    let child = sessionctl(&db.url, &["purge-expired", "--batch-size", "200", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, expired) = counts(&database).await;
        if expired < expired_before {
            break;
        }
        assert!(Instant::now() < deadline, "the purge never started deleting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (child, expired_before)
}

pub(crate) fn signal(child: &Child, signal: &str) {
    assert!(Command::new("kill").arg(signal).arg(child.id().to_string()).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_purge_can_be_rerun_and_loses_no_live_session() {
    let db = big_sqlite(200_000).await;
    let database = db.database.clone().unwrap();
    let (live_before, _) = counts(&database).await;
    let (mut child, expired_before) = start_slow_purge(&db).await;
    signal(&child, "-KILL");
    child.wait().unwrap();
    let (live_after_kill, expired_after_kill) = counts(&database).await;
    assert_eq!(live_after_kill, live_before, "no live session lost");
    assert!(
        expired_after_kill > 0 && expired_after_kill < expired_before,
        "killed mid-way ({expired_after_kill} left)"
    );

    let summary = json_output(&sessionctl(&db.url, &["purge-expired", "--output", "json"]).output().unwrap());
    assert_eq!(summary["deleted"].as_u64(), Some(expired_after_kill), "the rerun finishes the job");
    assert_eq!(counts(&database).await, (live_before, 0));
}

/// An app's write transaction open when the purge wants the lock: the purge
/// waits for it (and finishes), but reports as its write lock only the time
/// it held it, not the wait (it once reported the whole wait as its lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_waits_for_an_app_write_reports_only_the_lock_it_held() {
    let db = big_sqlite(2_000).await;
    let database = db.database.clone().unwrap();
    let mut app = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut app).await.unwrap();
    sqlx::query("UPDATE sessions SET version = version + 1 WHERE expires_at > 1000").execute(&mut app).await.unwrap();
    // One more expired session, visible only once the app commits: the
    // purge deleting it shows its DELETE ran after the app's transaction.
    sqlx::query(
        "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         VALUES ('committed-by-the-app-while-purging', '{}', NULL, 0, 0, 1000, 1)",
    )
    .execute(&mut app)
    .await
    .unwrap();
    let child = sessionctl(&db.url, &["purge-expired", "--output", "json"]).stdout(Stdio::piped()).spawn().unwrap();
    let held = Duration::from_millis(1_500);
    tokio::time::sleep(held).await;
    sqlx::query("COMMIT").execute(&mut app).await.unwrap();
    let summary = json_output(&child.wait_with_output().unwrap());
    assert_eq!(summary["deleted"].as_u64(), Some(1_001));
    assert_eq!(counts(&database).await, (1_000, 0));
    let (batch, lock) =
        (summary["longest_batch_ms"].as_u64().unwrap(), summary["longest_write_lock_ms"].as_u64().unwrap());
    // It did wait for the app (the batch spans the app's transaction) …
    assert!(batch >= 500, "the purge never waited for the app's lock: {summary}");
    // … and deleting 1,000 rows held the lock for a fraction of that.
    assert!(lock < batch / 2, "the wait for the app counted as the purge's lock: {summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn purge_memory_and_wal_stay_bounded_on_a_table_larger_than_the_budget() {
    // ~100 MB of sessions and nobody else writing, so nothing empties the
    // purge's page cache between batches: its peak RSS must stay under the
    // 50 MB budget (a 256 MiB page cache once took it to the table's size),
    // and its background checkpoints must keep the WAL small.
    let db = big_sqlite_padded(150_000, 300).await;
    let file = db.url.trim_start_matches("sqlite://").to_owned();
    let size =
        std::fs::metadata(&file).unwrap().len() + std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len());
    assert!(size > 80 << 20, "the table must outgrow the budget: {size} bytes");
    let child = sessionctl(&db.url, &["purge-expired", "--output", "json"]).stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let wal = format!("{file}-wal");
    let sampler = std::thread::spawn(move || {
        let (mut peak_kib, mut wal_bytes) = (0u64, 0u64);
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) else { break };
            peak_kib = kib.trim().trim_end_matches("kB").trim().parse().unwrap();
            wal_bytes = wal_bytes.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            std::thread::sleep(Duration::from_millis(5));
        }
        (peak_kib, wal_bytes)
    });
    let summary = json_output(&child.wait_with_output().unwrap());
    let (peak_kib, wal_bytes) = sampler.join().unwrap();
    assert_eq!(summary["deleted"].as_u64(), Some(75_000));
    assert!(peak_kib > 0 && peak_kib < 50 * 1024, "peak RSS {} MiB", peak_kib / 1024);
    // Checkpoints keep up: the WAL does not grow with what the purge deletes.
    assert!(wal_bytes < 32 << 20, "the WAL grew to {} MiB", wal_bytes >> 20);
}

/// The same table with an app saving a session every ~2 ms beside the
/// purge. A WAL starts over only when a write begins with all of it copied
/// back, and the app's commits land after every checkpoint: the WAL grew
/// with everything the purge deleted (to 1.6 GB on 10M rows) and kept that
/// size on disk. The purge now restarts it once it passes 8,000 frames (31 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_while_the_app_writes_beside_the_purge() {
    let db = big_sqlite_padded(150_000, 300).await;
    let file = db.url.trim_start_matches("sqlite://").to_owned();
    let database: Arc<dyn DatabaseTier> =
        Arc::new(sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap());
    let mut live = database.scan(&Filter::state(StateFilter::Active), now(), None, 50).await.unwrap();
    assert_eq!(live.len(), 50);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (database, stop) = (database.clone(), stop.clone());
        async move {
            let (mut saves, mut failures) = (0_u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let record = &mut live[saves as usize % 50];
                let expected = record.version;
                record.version += 1;
                record.data.insert("n".into(), json!(saves));
                match database.update(record, expected).await {
                    Ok(sessionctl::store::UpdateOutcome::Updated) => {}
                    other => failures.push(format!("{other:?}")),
                }
                saves += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (saves, failures)
        }
    });
    let wal = format!("{file}-wal");
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = std::thread::spawn({
        let sampling = sampling.clone();
        move || {
            let mut wal_bytes = 0u64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                wal_bytes = wal_bytes.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                std::thread::sleep(Duration::from_millis(5));
            }
            wal_bytes
        }
    });
    let output = tokio::task::spawn_blocking({
        let url = db.url.clone();
        // Small batches: the WAL passes its bound by at most one of them.
        move || sessionctl(&url, &["purge-expired", "--batch-size", "2000", "--output", "json"]).output().unwrap()
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (saves, failures) = writer.await.unwrap();
    let wal_bytes = sampler.join().unwrap();
    assert_eq!(json_output(&output)["deleted"].as_u64(), Some(75_000));
    assert!(saves > 50 && failures.is_empty(), "{saves} saves, failed: {failures:?}");
    assert!(wal_bytes < 40 << 20, "the WAL grew to {} MiB beside the app", wal_bytes >> 20);
}

/// A reader that keeps a transaction open (a long `export`, a report) keeps
/// the WAL from being copied back, so the purge starts it over under the
/// write lock, and that `RESTART` waits up to 10 ms for the reader while
/// holding the lock the app's writes need. The purge reported only its
/// DELETEs' locks (~1 ms for 500 rows here), not those restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_restart_under_the_write_lock_counts_in_the_reported_lock() {
    let db = big_sqlite_padded(150_000, 300).await;
    let mut reader = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions").fetch_one(&mut reader).await.unwrap();
    assert_eq!(rows, 150_000);
    let output = tokio::task::spawn_blocking({
        let url = db.url.clone();
        move || sessionctl(&url, &["purge-expired", "--batch-size", "500", "--output", "json"]).output().unwrap()
    })
    .await
    .unwrap();
    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    let summary = json_output(&output);
    assert_eq!(summary["deleted"].as_u64(), Some(75_000));
    let lock = summary["longest_write_lock_ms"].as_u64().unwrap();
    assert!(lock >= 10, "a restart held the lock while waiting for the reader, not reported: {summary}");
}

/// SQLite keeps a WAL file at its largest size for as long as a connection
/// is open: one that grew (a purge beside the app before the restart, a long
/// reader, one big import) stayed that size on disk. Every connection now
/// sets `journal_size_limit`, so the file is cut back to 64 MiB when the
/// WAL next starts over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_that_grew_is_cut_back_when_it_starts_over() {
    let db = harness::sqlite().await;
    let file = db.url.trim_start_matches("sqlite://").to_owned();
    let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    let wal_mib = || std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len()) >> 20;
    // One transaction of ~80 MB: its frames all go into the WAL.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT substr(replace(replace(hex(randomblob(18)), 'E', '-'), 'F', '_'), 1, 32),
                json_object('pad', hex(randomblob(2000))), NULL, 0, 0, 0, 1
         FROM n",
    )
    .execute(database.pool())
    .await
    .unwrap();
    let grown = wal_mib();
    assert!(grown > 70, "the WAL must outgrow the limit first: {grown} MiB");
    // Copied back, then the next write starts it over.
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(database.pool()).await.unwrap();
    sqlx::query("UPDATE sessions SET version = 2 WHERE id = (SELECT min(id) FROM sessions)")
        .execute(database.pool())
        .await
        .unwrap();
    assert!(wal_mib() <= 64, "the WAL file stayed at {} MiB (it had grown to {grown})", wal_mib());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_and_exits_0_with_what_was_done() {
    let db = big_sqlite(200_000).await;
    let database = db.database.clone().unwrap();
    let (mut child, expired_before) = start_slow_purge(&db).await;
    signal(&child, "-TERM");
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["ended"], "interrupted");
    let (_, expired_after) = counts(&database).await;
    assert!(expired_after > 0, "stopped before the end");
    assert_eq!(
        summary["deleted"].as_u64().unwrap(),
        expired_before - expired_after,
        "what it reports is what stays deleted"
    );
}

/// Ctrl-C: the batch finishes, the summary is printed, and the exit code is
/// 130, so a shell script sees the run was cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_batch_and_exits_130_with_what_was_done() {
    let db = big_sqlite(200_000).await;
    let database = db.database.clone().unwrap();
    let (child, expired_before) = start_slow_purge(&db).await;
    signal(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after the current batch"), "{stderr}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["ended"], "interrupted");
    let (_, expired_after) = counts(&database).await;
    assert!(expired_after > 0, "stopped before the end");
    assert_eq!(summary["deleted"].as_u64().unwrap(), expired_before - expired_after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cron_skips_while_another_replica_holds_the_lock() {
    let Some(db) = harness::postgres().await else { return };
    seed(&db.store, 5, 7).await;
    let database = db.database.clone().unwrap();
    // Another replica: holds the lock until it releases it.
    let other = database.try_purge_lock().await.unwrap().expect("free at first");
    assert!(database.try_purge_lock().await.unwrap().is_none(), "one holder at a time");

    let output = sessionctl(&db.url, &["serve-cron", "--once"]).output().unwrap();
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("skipped: another replica holds the purge lock"), "{log}");
    assert_eq!(counts(&database).await, (5, 7), "the skipping replica deleted nothing");

    other.release().await.unwrap();
    let output = sessionctl(&db.url, &["serve-cron", "--once", "--log-format", "json"]).output().unwrap();
    assert!(output.status.success());
    let line: Value = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "purge run")
        .expect("a JSON log line for the run");
    assert_eq!(line["fields"]["deleted"], 7);
    assert_eq!(counts(&database).await, (5, 0));
    assert!(database.try_purge_lock().await.unwrap().is_some(), "the lock was released");
}

/// Reads the child's stderr lines into a shared buffer in the background.
pub(crate) fn collect_stderr(child: &mut Child) -> Arc<std::sync::Mutex<String>> {
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cron_survives_a_database_outage_and_purges_once_it_is_back() {
    let Some(server) = PgServer::start_private() else { return };
    let url = server.create_database();
    let store = Store::connect(&url).await.unwrap();
    let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    seed(&store, 3, 4).await;

    let mut child = sessionctl(&url, &["serve-cron", "--schedule", "* * * * * *", "--run-on-start"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_stderr(&mut child);
    wait_for("the first purge", Duration::from_secs(20), async || counts(&database).await == (3, 0)).await;

    server.stop();
    wait_for("a failed run to be logged", Duration::from_secs(20), async || {
        log.lock().unwrap().contains("purge run failed")
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "the daemon keeps running: {}", log.lock().unwrap());

    server.start_again();
    let store = Store::connect(&url).await.unwrap();
    let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    seed(&store, 0, 5).await;
    wait_for("a purge after the outage", Duration::from_secs(30), async || counts(&database).await == (3, 0)).await;

    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0), "SIGTERM exits 0");
    wait_for("the last log line", Duration::from_secs(5), async || log.lock().unwrap().contains("serve-cron stopped"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cron_serves_health_and_metrics() {
    let db = harness::sqlite().await;
    seed(&db.store, 1, 3).await;
    let port = harness::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = sessionctl(&db.url, &["serve-cron", "--run-on-start", "--metrics-addr", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The request goes out in two segments with a pause between them, as a slow
    // client's may: the endpoint must wait for the whole head before it answers.
    let get = |path: &str| -> Option<String> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_nodelay(true).ok()?;
        stream.write_all(b"GET ").ok()?;
        std::thread::sleep(Duration::from_millis(20));
        write!(stream, "{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    };
    let mut metrics = String::new();
    wait_for("a run to show in /metrics", Duration::from_secs(20), async || {
        metrics = get("/metrics").unwrap_or_default();
        metrics.contains("sessionctl_purge_runs_total 1")
    })
    .await;
    assert!(metrics.contains("sessionctl_purge_deleted_total 3"), "{metrics}");
    assert!(metrics.contains("# TYPE sessionctl_purge_last_success_timestamp_seconds gauge"));
    assert!(get("/healthz").unwrap().ends_with("ok\n"));
    assert!(get("/nope").unwrap().starts_with("HTTP/1.1 404"));
    // A client that never finishes its request head, or sends one too
    // large, does not hold a connection: dropped after 5 s (this waits
    // up to 30), or answered 431.
    let mut trickle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    trickle.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ").unwrap();
    trickle.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    assert!(trickle.read_to_end(&mut rest).is_ok(), "a trickling client is dropped");
    let mut flood = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = write!(flood, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    let mut answer = String::new();
    let _ = flood.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(get("/healthz").unwrap().ends_with("ok\n"), "still serving");
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn bad_arguments_and_unreachable_databases_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    for (args, code) in [
        (vec!["serve-cron", "--schedule", "every tuesday"], 2),
        (vec!["serve-cron", "--schedule", "61 * * * *"], 2),
        (vec!["purge-expired", "--older-than", "5x"], 2),
        (vec!["purge-expired", "--max-duration", "soon"], 2),
        (vec!["purge-expired", "--batch-size", "0"], 2),
    ] {
        let output = sessionctl(&url, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line: {stderr}");
    }
    let unreachable = format!("postgres://ops:topsecret@127.0.0.1:{}/s", harness::free_port());
    for args in [vec!["purge-expired"], vec!["serve-cron", "--once"]] {
        let output = sessionctl(&unreachable, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("topsecret"), "{stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_cron_replicas_on_one_postgres_one_purges_the_other_skips() {
    let Some(db) = harness::postgres().await else { return };
    let database = db.database.clone().unwrap();
    // Enough rows, in small batches, that the first replica's run lasts.
    let pool = sessionctl::store::postgres::PostgresDatabase::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT lpad(to_hex(i), 32, '0'), '{}'::jsonb, NULL, now(), now(),
                CASE WHEN i % 2 = 0 THEN now() - interval '1 hour' ELSE now() + interval '1 hour' END, 1
         FROM generate_series(1, 200000) AS g(i)",
    )
    .execute(pool.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE sessions").execute(pool.pool()).await.unwrap();
    let (_, expired_before) = counts(&database).await;

    let mut first = sessionctl(&db.url, &["serve-cron", "--run-on-start", "--batch-size", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_log = collect_stderr(&mut first);
    wait_for("the first replica to start purging", Duration::from_secs(30), async || {
        counts(&database).await.1 < expired_before
    })
    .await;
    let second = sessionctl(&db.url, &["serve-cron", "--run-on-start", "--once"]).output().unwrap();
    assert!(second.status.success());
    let second_log = String::from_utf8_lossy(&second.stderr);
    assert!(second_log.contains("skipped: another replica holds the purge lock"), "{second_log}");
    assert!(!second_log.contains("purge run deleted"), "{second_log}");

    wait_for("the first replica to finish", Duration::from_secs(60), async || {
        first_log.lock().unwrap().contains("purge run")
    })
    .await;
    assert_eq!(counts(&database).await.1, 0);
    signal(&first, "-TERM");
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

/// Starts `command` (a `sessionctl` with no arguments yet) as a serve-cron
/// replica purging every second, logging JSON; its stderr is collected.
pub(crate) fn serve_cron_every_second(mut command: Command) -> (Child, Arc<std::sync::Mutex<String>>) {
    let mut child = command
        .args(["serve-cron", "--schedule", "* * * * * *", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect_stderr(&mut child);
    (child, log)
}

/// The JSON log lines of a replica that mention a tick, as (message, tick).
pub(crate) fn tick_lines(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| {
            let tick = l["fields"]["tick"].as_str().filter(|t| !t.is_empty())?.to_owned();
            Some((l["fields"]["message"].as_str()?.to_owned(), tick))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_purge_exactly_once_per_tick_even_after_the_leader_dies() {
    let Some(db) = harness::postgres().await else { return };
    // An empty table: each purge takes milliseconds, which is when a lock
    // held only while purging let a second replica purge the same tick.
    let spawn = || serve_cron_every_second(sessionctl(&db.url, &[]));
    let mut replicas: Vec<_> = (0..3).map(|_| spawn()).collect();
    tokio::time::sleep(Duration::from_secs(6)).await;
    // The leader of the latest tick dies without releasing anything.
    let last_runner = replicas
        .iter()
        .enumerate()
        .filter_map(|(i, (_, log))| {
            tick_lines(&log.lock().unwrap()).into_iter().filter(|(m, _)| m == "purge run").map(|(_, t)| (t, i)).max()
        })
        .max()
        .map(|(_, i)| i)
        .expect("some replica purged");
    let (mut dead, _) = replicas.remove(last_runner);
    dead.kill().unwrap();
    dead.wait().unwrap();
    let killed_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (child, _) in &replicas {
        signal(child, "-TERM");
    }
    for (child, _) in &mut replicas {
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }

    let mut runs: std::collections::BTreeMap<String, usize> = Default::default();
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    let logs: Vec<String> = replicas.iter().map(|(_, log)| log.lock().unwrap().clone()).collect();
    // The dead replica's lines went with it; the table holds its claims.
    for log in &logs {
        for (message, tick) in tick_lines(log) {
            seen.insert(tick.clone());
            if message == "purge run" {
                *runs.entry(tick).or_default() += 1;
            }
        }
    }
    let claims: Vec<(chrono::DateTime<chrono::Utc>, String)> =
        sqlx::query_as("SELECT tick, claimed_by FROM purge_ticks ORDER BY tick")
            .fetch_all(sessionctl::store::postgres::PostgresDatabase::connect(&db.url).await.unwrap().pool())
            .await
            .unwrap();
    assert!(runs.values().all(|&n| n == 1), "a tick purged twice: {runs:?}");
    for tick in &seen {
        let claimed = claims.iter().filter(|(t, _)| t.to_rfc3339() == *tick).count();
        assert_eq!(claimed, 1, "tick {tick} claimed by exactly one replica: {claims:?}");
    }
    assert!(seen.len() >= 8, "ticks every second for ~11 s: {seen:?}");
    let after_kill = runs.keys().filter(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap() > killed_at).count();
    assert!(after_kill >= 3, "the survivors kept purging after the leader died: {runs:?}");
}

#[tokio::test]
async fn a_tick_is_claimed_once_whoever_asks_and_whenever() {
    for db in [Some(harness::sqlite().await), harness::postgres().await].into_iter().flatten() {
        let tick = chrono::DateTime::parse_from_rfc3339("2026-11-30T03:00:00Z").unwrap().to_utc();
        assert!(db.store.try_claim_tick(tick, "a:1").await.unwrap());
        // A replica whose clock runs late asks for the same scheduled tick.
        assert!(!db.store.try_claim_tick(tick, "b:2").await.unwrap());
        // The claimant retrying a claim whose answer it lost keeps it.
        assert!(db.store.try_claim_tick(tick, "a:1").await.unwrap());
        assert!(!db.store.try_claim_tick(tick, "b:2").await.unwrap());
        let next = tick + chrono::Duration::minutes(15);
        assert!(db.store.try_claim_tick(next, "b:2").await.unwrap(), "the next tick is free");
    }
}

/// A TCP server that accepts connections and never answers: a hung
/// database (a stopped process, a full disk, a black-holed network).
fn hung_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((socket, _)) => held.push(socket),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, handle)
}

#[test]
fn a_hung_database_fails_each_command_within_its_timeout() {
    let (port, _server) = hung_server();
    let url = format!("postgres://ops:topsecret@127.0.0.1:{port}/sessions");
    for args in [vec!["list"], vec!["stats"], vec!["purge-expired"], vec!["serve-cron", "--once"], vec!["migrate"]] {
        let started = Instant::now();
        let output = sessionctl(&url, &args).args(["--database-timeout", "1s"]).output().unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: one error line: {stderr}");
        assert!(errors[0].contains("did not answer within 1s"), "{args:?}: {stderr}");
        // … and says how to give a database that is only slow longer.
        assert!(errors[0].contains("(--database-timeout 1s: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("topsecret"), "{stderr}");
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cron_on_a_hung_database_counts_failures_reports_503_and_stops_on_sigterm() {
    let (port, _server) = hung_server();
    let url = format!("postgres://ops@127.0.0.1:{port}/sessions");
    let metrics_port = harness::free_port();
    let addr = format!("127.0.0.1:{metrics_port}");
    let mut child = sessionctl(
        &url,
        &["serve-cron", "--schedule", "* * * * * *", "--metrics-addr", &addr, "--database-timeout", "2s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let log = collect_stderr(&mut child);
    let get = |path: &str| -> String {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", metrics_port)) else { return String::new() };
        let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    };
    wait_for("/healthz to answer 503", Duration::from_secs(30), async || get("/healthz").starts_with("HTTP/1.1 503"))
        .await;
    wait_for("a failed run to be counted", Duration::from_secs(30), async || {
        get("/metrics").lines().any(|l| l.starts_with("sessionctl_purge_failures_total ") && !l.ends_with(" 0"))
    })
    .await;
    // SIGTERM while a call hangs on the database: out within 5 s.
    let started = Instant::now();
    signal(&child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve-cron ignored SIGTERM for 10 s: {}", log.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", log.lock().unwrap());
    assert!(started.elapsed() < Duration::from_secs(5), "stopped in {:?}", started.elapsed());
}

/// A table where a fifth of the sessions belong to users (the shape where
/// the user index used to make the purge rewrite its pages batch after
/// batch): the purge deletes exactly the expired rows, the database and its
/// user index stay consistent, and every remaining session of a user is
/// still found through that index (`list --user`, `revoke --user`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_over_users_sessions_keeps_the_user_index_whole() {
    let db = harness::sqlite().await;
    let pool = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    let pool = pool.pool();
    let now_ms = now().timestamp_millis();
    sqlx::query(
        "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT value, json_object('n', key), CASE WHEN key % 5 = 0 THEN 'user' || (key / 5 % 40) END, ?1, ?1,
                CASE WHEN abs(random()) % 2 = 0 THEN ?1 - 60000 ELSE ?1 + 3600000 END, 1
         FROM json_each(?2)",
    )
    .bind(now_ms)
    .bind(generated_ids(30_000))
    .execute(pool)
    .await
    .unwrap();
    // Ground truth read without the user index.
    let live_of = async |user: &str| -> Vec<String> {
        let mut ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM sessions NOT INDEXED WHERE user_id = ? AND expires_at > ? ORDER BY id")
                .bind(user)
                .bind(now_ms)
                .fetch_all(pool)
                .await
                .unwrap();
        ids.sort();
        ids
    };
    let expired: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions NOT INDEXED WHERE expires_at <= ?")
        .bind(now_ms)
        .fetch_one(pool)
        .await
        .unwrap();
    let before: Vec<Vec<String>> = {
        let mut all = Vec::new();
        for u in 0..40 {
            all.push(live_of(&format!("user{u}")).await);
        }
        all
    };
    assert!(before.iter().all(|ids| !ids.is_empty()), "every user has live sessions to find");

    let summary = json_output(
        &sessionctl(&db.url, &["purge-expired", "--batch-size", "1000", "--output", "json"]).output().unwrap(),
    );
    assert_eq!(summary["deleted"], expired, "{summary}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions NOT INDEXED WHERE expires_at <= ?")
        .bind(now_ms)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await.unwrap();
    assert_eq!(check, ["ok"]);

    for (u, expected) in before.iter().enumerate() {
        let user = format!("user{u}");
        assert_eq!(&live_of(&user).await, expected, "the purge kept {user}'s live sessions");
        let listed = sessionctl(&db.url, &["list", "--user", &user, "--output", "json"]).output().unwrap();
        assert!(listed.status.success());
        let mut ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        assert_eq!(&ids, expected, "list --user {user} finds every remaining session");
        if u % 4 == 0 {
            let revoked = json_output(
                &sessionctl(&db.url, &["revoke", "--user", &user, "-y", "--output", "json"]).output().unwrap(),
            );
            assert_eq!(revoked["revoked"], expected.len(), "revoke --user {user}");
            assert!(live_of(&user).await.is_empty(), "nothing of {user} left");
        }
    }
}

/// Runs `first`, then puts the schema back to version 2 (the user index on
/// `user_id` alone), all on one connection: another one of the pool may
/// still see the index it had cached.
async fn back_to_schema_2(pool: &sqlx::SqlitePool, first: &[&str]) {
    let mut connection = pool.acquire().await.unwrap();
    let schema_2 = [
        "DROP INDEX sessions_user_id",
        "CREATE INDEX sessions_user_id ON sessions (user_id) WHERE user_id IS NOT NULL",
        "DROP TABLE session_cache_tier",
        "DROP INDEX sessions_under_ids",
        "ALTER TABLE sessions DROP COLUMN last_seen_at",
        "ALTER TABLE sessions DROP COLUMN client_ip",
        "ALTER TABLE sessions DROP COLUMN user_agent",
        "DELETE FROM _sqlx_migrations WHERE version >= 3",
    ];
    for sql in first.iter().chain(&schema_2) {
        sqlx::query(sqlx::AssertSqlSafe(*sql)).execute(&mut *connection).await.unwrap();
    }
}

/// A database made before the user index was keyed by id prefix is
/// upgraded in place by `migrate`, and keeps its users' sessions findable.
#[tokio::test]
async fn migrate_rebuilds_the_old_user_index() {
    let db = harness::sqlite().await;
    let alice = Record { user_id: Some("alice".into()), ..record(chrono::Duration::hours(1)) };
    db.store.create(&alice).await.unwrap();
    let pool = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    let pool = pool.pool();
    back_to_schema_2(pool, &[]).await;

    let output = sessionctl(&db.url, &["migrate"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'sessions_user_id'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(sql.contains("substr(id, 1, 2), user_id"), "{sql}");
    let listed = sessionctl(&db.url, &["list", "--user", "alice", "--output", "json"]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(alice.id.as_str()));
}

/// Several processes upgrading one database at once (replicas starting
/// together run the migrations themselves): every one succeeds, and the
/// index is rebuilt once. The loser used to fail with `UNIQUE constraint
/// failed: _sqlx_migrations.version` after rebuilding it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_all_succeed() {
    let db = big_sqlite(100_000).await;
    let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    let pool = database.pool();
    back_to_schema_2(pool, &["UPDATE sessions SET user_id = 'u' || substr(id, 1, 3) WHERE substr(id, 2, 1) < 'N'"])
        .await;
    // Eight at once: a process can lose the race for one step, retry, and
    // meet another process applying the next (under load that happened
    // with four: the loser failed on its second loss).
    let children: Vec<Child> = (0..8)
        .map(|_| sessionctl(&db.url, &["migrate"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(pool).await.unwrap();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    let check: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await.unwrap();
    assert_eq!(check, ["ok"]);
}
