//! The PostgreSQL tier's request-path connections (`store/postgres/conns.rs`):
//! kept and reused, replaced when the server dropped them, never handed out
//! mid-statement, and back in service after a server restart.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sessionctl::store::postgres::PostgresDatabase;
use sessionctl::{DatabaseTier, Session, SessionConfig, Store, StoreOptions};
use sqlx::PgPool;

use crate::harness::{self, pg_server::PgServer};

/// A store on a fresh database of `server` (the shared one when `None`),
/// with `timeout` on every database call, and an admin pool of its own.
async fn store_on(server: Option<&PgServer>, timeout: Duration) -> Option<(Store, PgPool)> {
    let url = match server {
        Some(server) => server.create_database(),
        None => {
            let server = harness::pg_server::shared()?;
            tokio::task::spawn_blocking(|| server.create_database()).await.unwrap()
        }
    };
    let database: Arc<dyn DatabaseTier> =
        Arc::new(PostgresDatabase::connect_with_timeout(&url, timeout).await.unwrap());
    database.migrate().await.unwrap();
    let store = Store::with_options(database, None, StoreOptions::default().with_database_timeout(timeout));
    let admin = PgPool::connect(&format!("{url}?application_name=admin")).await.unwrap();
    Some((store, admin))
}

/// How many connections were ever opened to the store's database (the
/// server counts them as its backends report; they report within a second).
async fn connections_opened(admin: &PgPool) -> i64 {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut conn = admin.acquire().await.unwrap();
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await.unwrap();
    sqlx::query_scalar("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// A session with a counter; returns its cookie value.
async fn new_session(store: &Store, config: &Arc<SessionConfig>) -> String {
    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("n", 0).await.unwrap();
    harness::cookie_of(&session.save().await.unwrap())
}

async fn new_sessions(store: &Store, config: &Arc<SessionConfig>, count: usize) -> Vec<String> {
    let mut cookies = Vec::new();
    for _ in 0..count {
        cookies.push(new_session(store, config).await);
    }
    cookies
}

/// Ends every connection the store holds (as `pg_terminate_backend` from
/// an admin, an idle reaper or a failover would); returns how many it
/// ended. One the store closed itself between the listing and the kill (it
/// drops its idle connections after a failure: under load, after an earlier
/// cut) is already gone, and `pg_terminate_backend` answers false for it:
/// an assertion that every one was killed failed a CI run that way.
async fn cut_store_connections(admin: &PgPool) -> usize {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'sessionctl'",
    )
    .fetch_all(admin)
    .await
    .unwrap();
    killed.iter().filter(|killed| **killed).count()
}

/// Increments the session's counter: `Ok` when the save landed.
async fn increment(store: &Store, config: &Arc<SessionConfig>, cookie: &str) -> sessionctl::Result<()> {
    let session = Session::new(store.clone(), config.clone(), Some(cookie));
    let n: i64 = session.get("n").await?.unwrap_or(0);
    session.insert("n", n + 1).await?;
    session.save().await.map(|_| ())
}

async fn counter(store: &Store, config: &Arc<SessionConfig>, cookie: &str) -> i64 {
    Session::new(store.clone(), config.clone(), Some(cookie)).get("n").await.unwrap().unwrap()
}

/// Workers incrementing a session each, until stopped.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Worker>>,
}

/// What one worker saw: saves that landed, and for each failed request
/// when it began and when it failed.
struct Worker {
    landed: usize,
    failures: Vec<(Instant, Instant)>,
}

impl Load {
    /// Starts a worker per cookie; after a failure it waits `pause`.
    fn start(store: &Store, config: &Arc<SessionConfig>, cookies: &[String], pause: Duration) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = cookies
            .iter()
            .map(|cookie| {
                let (store, config, cookie, stop) = (store.clone(), config.clone(), cookie.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut worker = Worker { landed: 0, failures: Vec::new() };
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        match increment(&store, &config, &cookie).await {
                            Ok(()) => worker.landed += 1,
                            Err(_) => {
                                worker.failures.push((began, Instant::now()));
                                tokio::time::sleep(pause).await;
                            }
                        }
                    }
                    worker
                })
            })
            .collect();
        Load { stop, workers }
    }

    async fn stop(self) -> Vec<Worker> {
        self.stop.store(true, Ordering::Relaxed);
        let mut workers = Vec::new();
        for worker in self.workers {
            workers.push(worker.await.unwrap());
        }
        workers
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_path_connections_are_kept_and_reused_not_opened_per_request() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let config = Arc::new(harness::config());
    let cookies = new_sessions(&store, &config, 8).await;
    let round = async |store: &Store| {
        let tasks: Vec<_> = cookies
            .iter()
            .map(|cookie| {
                let (store, config, cookie) = (store.clone(), config.clone(), cookie.clone());
                tokio::spawn(async move {
                    for _ in 0..25 {
                        increment(&store, &config, &cookie).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    };
    let before = connections_opened(&admin).await;
    round(&store).await;
    let first = connections_opened(&admin).await - before;
    assert!((1..=12).contains(&first), "{first} connections opened for 200 saves by 8 tasks");
    round(&store).await;
    let second = connections_opened(&admin).await - before - first;
    assert!(second <= 1, "200 more saves opened {second} more connections");
    for cookie in &cookies {
        assert_eq!(counter(&store, &config, cookie).await, 50, "every save landed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_the_server_dropped_are_replaced_without_failing_a_request() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let config = Arc::new(harness::config());
    let cookie = new_session(&store, &config).await;
    for _ in 0..5 {
        increment(&store, &config, &cookie).await.unwrap();
    }
    // An idle-connection reaper (PgBouncer, a firewall, an admin) cuts them.
    assert!(cut_store_connections(&admin).await > 0);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for _ in 0..20 {
        increment(&store, &config, &cookie).await.expect("a connection idle for a second is checked before use");
    }
    assert_eq!(counter(&store, &config, &cookie).await, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_cut_short_by_its_timeout_leaves_no_connection_mid_statement() {
    let Some((store, admin)) = store_on(None, Duration::from_millis(400)).await else { return };
    let config = Arc::new(harness::config());
    let cookie = new_session(&store, &config).await;
    let other = new_session(&store, &config).await;
    let key = Session::new(store.clone(), config.clone(), Some(&cookie)).key().await.unwrap().unwrap();
    // Another transaction holds the first session's row: its save waits on
    // the lock until the store's timeout drops it mid-statement.
    let mut blocker = admin.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(key.as_str())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let error = increment(&store, &config, &cookie).await.unwrap_err();
    assert!(error.to_string().contains("did not answer within"), "{error}");
    // The cut statement still waits on the server. Had its connection gone
    // back to the pool, the next request on it would wait for that answer
    // first (and time out too).
    for _ in 0..30 {
        increment(&store, &config, &other).await.unwrap();
    }
    blocker.commit().await.unwrap();
    assert_eq!(counter(&store, &config, &other).await, 30);
    let n = counter(&store, &config, &cookie).await;
    assert!(n <= 1, "the cut save either landed once or not at all: {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_under_load_every_request_succeeds_again() {
    let Some(server) = PgServer::start_private() else { return };
    let Some((store, _admin)) = store_on(Some(&server), Duration::from_secs(5)).await else { return };
    let config = Arc::new(harness::config());
    let cookies = new_sessions(&store, &config, 8).await;
    let load = Load::start(&store, &config, &cookies, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server.start_again();
        server
    })
    .await
    .unwrap();
    let back_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let workers = load.stop().await;
    // Requests that began after the server was back.
    let failed_after = workers.iter().flat_map(|w| &w.failures).filter(|(began, _)| *began > back_at).count();
    assert_eq!(failed_after, 0, "no request failed once the server was back");
    for (cookie, worker) in cookies.iter().zip(workers) {
        let (landed, failed) = (worker.landed as i64, worker.failures.len() as i64);
        // A save cut by the shutdown after its commit reports a failure.
        let n = counter(&store, &config, cookie).await;
        assert!(
            landed > 0 && (landed..=landed + failed).contains(&n),
            "{landed} saves landed, {failed} failed, n = {n}"
        );
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_under_load_fail_only_the_requests_at_the_cut() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let config = Arc::new(harness::config());
    let cookies = new_sessions(&store, &config, 8).await;
    let load = Load::start(&store, &config, &cookies, Duration::ZERO);
    // Every store connection cut at once, three times, mid-load.
    let mut cuts = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cuts.push(Instant::now());
        assert!(cut_store_connections(&admin).await > 0, "a cut under load ends the connections in use");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let workers = load.stop().await;
    let landed: usize = workers.iter().map(|w| w.landed).sum();
    let failures: Vec<Instant> = workers.iter().flat_map(|w| &w.failures).map(|(_, failed)| *failed).collect();
    eprintln!("connections cut 3 times under load: {} failed, {landed} landed", failures.len());
    // The requests on connections the cut closed fail; then the store is
    // on fresh connections (the idle ones were dropped with the first).
    let late: Vec<_> = failures
        .iter()
        .filter(|failed| {
            !cuts.iter().any(|cut| *failed >= cut && failed.duration_since(*cut) < Duration::from_millis(300))
        })
        .collect();
    assert!(late.is_empty(), "{} of {} failures came 300 ms or more after a cut", late.len(), failures.len());
    assert!(landed > 100, "the load went on: {landed}");
}

/// The most backends the store held at once while `during` ran, sampled
/// every 50 ms.
async fn most_backends_during(admin: &PgPool, during: impl Future<Output = ()>) -> i64 {
    let most = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (admin, most, done) = (admin.clone(), most.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let now: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND application_name = 'sessionctl'",
                )
                .fetch_one(&admin)
                .await
                .unwrap();
                most.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    during.await;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    most.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_cut_by_the_timeout_keep_their_slots_so_a_process_stays_within_its_bound() {
    let Some((store, admin)) = store_on(None, Duration::from_millis(200)).await else { return };
    let config = Arc::new(harness::config());
    let cookies = new_sessions(&store, &config, 16).await;
    // A migration or an admin holds the table for 3 s (15 timeouts): every
    // save waits on the lock until the store's timeout cuts it, again and
    // again, from 16 workers.
    let mut blocker = admin.begin().await.unwrap();
    sqlx::query("LOCK TABLE sessions IN EXCLUSIVE MODE").execute(&mut *blocker).await.unwrap();
    let failed = Arc::new(AtomicUsize::new(0));
    let most = most_backends_during(&admin, async {
        let deadline = Instant::now() + Duration::from_secs(3);
        let workers: Vec<_> = cookies
            .iter()
            .map(|cookie| {
                let (store, config, cookie, failed) = (store.clone(), config.clone(), cookie.clone(), failed.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        if increment(&store, &config, &cookie).await.is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.unwrap();
        }
    })
    .await;
    blocker.commit().await.unwrap();
    assert!(failed.load(Ordering::Relaxed) >= 16, "the saves were cut while the lock was held");
    eprintln!("most backends: {most}, failed {}", failed.load(Ordering::Relaxed));
    assert!(most <= 17, "{most} backends at once: a cut statement's backend must keep its slot");
    // Once the lock is gone the cut connections come back and serve.
    for cookie in &cookies {
        increment(&store, &config, cookie).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_at_its_connection_limit_waits_for_a_connection_instead_of_failing() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&admin).await.unwrap();
    let role = format!("lim_{database}");
    for statement in [
        format!("CREATE ROLE {role} LOGIN CONNECTION LIMIT 3"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&admin).await.unwrap();
    }
    drop(store);
    let url = harness::pg_server::shared().unwrap().url(&database).replacen("postgres@", &format!("{role}@"), 1);
    let limited: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    let store = Store::with_options(limited, None, StoreOptions::default());
    let config = Arc::new(harness::config());
    let cookies = new_sessions(&store, &config, 8).await;
    // 8 workers, 3 connections allowed: "too many connections for role"
    // while the others hold theirs, retried until one is free.
    let workers: Vec<_> = cookies
        .iter()
        .map(|cookie| {
            let (store, config, cookie) = (store.clone(), config.clone(), cookie.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                for _ in 0..20 {
                    if increment(&store, &config, &cookie).await.is_err() {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for worker in workers {
        failed += worker.await.unwrap();
    }
    assert_eq!(failed, 0, "requests failed at the role's connection limit");
    for cookie in &cookies {
        assert_eq!(counter(&store, &config, cookie).await, 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_abandoned_mid_statement_do_not_churn_connections() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let config = Arc::new(harness::config());
    let cookie = new_session(&store, &config).await;
    for _ in 0..5 {
        increment(&store, &config, &cookie).await.unwrap();
    }
    let key = Session::new(store.clone(), config.clone(), Some(&cookie)).key().await.unwrap().unwrap();
    let before = connections_opened(&admin).await;
    // Clients that hang up while their save waits on a row lock: the
    // handler's future is dropped mid-statement, 40 times.
    let mut blocker = admin.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(key.as_str())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let mut cut = 0;
    for _ in 0..40 {
        if tokio::time::timeout(Duration::from_millis(50), increment(&store, &config, &cookie)).await.is_err() {
            cut += 1;
        }
    }
    blocker.commit().await.unwrap();
    let opened = connections_opened(&admin).await - before;
    assert_eq!(cut, 40);
    assert!(opened <= 12, "{opened} connections opened for {cut} abandoned requests");
    increment(&store, &config, &cookie).await.unwrap();
}

/// Connections opened while the server refused writes (a standby, or the
/// old primary during a failover, before the URL reaches the new one) are
/// read-only for life: every save on them failed ("cannot execute … in a
/// read-only transaction") until the 10-minute idle reaper closed them.
/// Now a write refused as read-only closes the connection, and the next
/// one opened writes. Simulated with the database's
/// `default_transaction_read_only`, which a connection takes when it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_opened_read_only_are_replaced_once_the_server_takes_writes() {
    let Some((store, admin)) = store_on(None, Duration::from_secs(15)).await else { return };
    let config = Arc::new(harness::config());
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&admin).await.unwrap();
    let set = |setting: &str| format!("ALTER DATABASE \"{database}\" {setting}");
    sqlx::query(sqlx::AssertSqlSafe(set("SET default_transaction_read_only = on"))).execute(&admin).await.unwrap();
    for _ in 0..4 {
        let session = Session::new(store.clone(), config.clone(), None);
        session.insert("n", 0).await.unwrap();
        let error = session.save().await.expect_err("the server refuses writes");
        assert!(error.to_string().contains("read-only transaction"), "{error}");
    }
    sqlx::query(sqlx::AssertSqlSafe(set("RESET default_transaction_read_only"))).execute(&admin).await.unwrap();
    for n in 0..8 {
        let session = Session::new(store.clone(), config.clone(), None);
        session.insert("n", n).await.unwrap();
        let saved = session.save().await.map(|outcome| outcome.status).map_err(|error| error.to_string());
        assert_eq!(saved, Ok(sessionctl::SaveStatus::Saved), "save {n}, with the server taking writes again");
    }
}
