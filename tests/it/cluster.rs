//! Redis Cluster and Sentinel, on real servers: keys spread over every
//! primary and found again by the CLI, and failovers under load (a primary
//! killed while requests run).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sessionctl::store::CacheLookup;
use sessionctl::store::redis::RedisCache;
use sessionctl::{CacheTier, SaveStatus, Session, SessionConfig, Store, StoreOptions};

use crate::cli::Run;
use crate::harness::{self, record, redis_cluster};

fn prefix(name: &str) -> String {
    format!("{name}{}:", std::process::id())
}

/// The keys under `prefix` on one node.
fn keys_on(port: u16, prefix: &str) -> Vec<String> {
    redis_cluster::cli(port, &["--scan", "--pattern", &format!("{prefix}*")])
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Sessions written through a cluster are tagged, spread over all three
/// primaries, and every CLI path that walks or evicts the cache reaches
/// each of them: `stats` counts them all, `show` sees the cached copy,
/// `revoke --user` evicts a user's sessions from whichever slot they are in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_every_primary_of_a_cluster() {
    let Some(cluster) = tokio::task::spawn_blocking(redis_cluster::shared_cluster).await.unwrap() else { return };
    let Some(pg) = harness::postgres().await else { return };
    let prefix = prefix("clustercli");
    let cache = Arc::new(RedisCache::connect(&cluster.url(), &prefix, Duration::from_secs(2)).unwrap());
    let store = Store::tiered(pg.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    let mut dave = Vec::new();
    for i in 0..120 {
        let user = (i % 6 == 0).then_some("dave");
        let session = record(user, chrono::Duration::hours(1), json!({"i": i}));
        assert!(store.create(&session).await.unwrap());
        if user.is_some() {
            dave.push(session.id.clone());
        }
    }
    let per_primary: Vec<Vec<String>> = cluster.primaries().iter().map(|&port| keys_on(port, &prefix)).collect();
    assert_eq!(per_primary.len(), 3);
    assert!(
        per_primary.iter().all(|keys| !keys.is_empty()),
        "every primary holds some: {:?}",
        per_primary.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(per_primary.iter().map(Vec::len).sum::<usize>(), 120);
    assert!(per_primary.iter().flatten().all(|key| key.starts_with(&format!("{prefix}{{")) && key.ends_with('}')));

    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &pg.url)
        .with("SESSIONCTL_REDIS_URL", &cluster.url())
        .with("SESSIONCTL_REDIS_PREFIX", &prefix);
    let stats = cli.json(&["stats"]);
    assert_eq!(
        (stats["cache"]["cached"].as_u64(), stats["cache"]["in_both"].as_u64()),
        (Some(120), Some(120)),
        "{stats}"
    );
    let shown = cli.json(&["show", dave[0].as_str()]);
    assert_eq!(shown["tiers"]["cache"], "cached", "{shown}");
    assert_eq!(cli.json(&["revoke", "--user", "dave", "-y"])["revoked"], 20);
    for id in &dave {
        let lookup = cache.get(id).await.unwrap();
        assert!(matches!(lookup, CacheLookup::Deleted | CacheLookup::Miss), "{lookup:?}");
    }
    let stats = cli.json(&["stats"]);
    assert_eq!(stats["cache"]["cached"].as_u64(), Some(100), "{stats}");
}

/// A cluster URL the client cannot use is one line, exit 1, and never
/// shows its password.
#[test]
fn a_bad_cluster_or_sentinel_url_is_one_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("s.db").display());
    Run::new(dir.path(), &database).ok(&["migrate"]);
    for url in [
        "redis+cluster://:hunter2@127.0.0.1:notaport",
        "redis+cluster://:hunter2@127.0.0.1:7000/3",
        "redis+sentinel://:hunter2@127.0.0.1:26379",
    ] {
        let error = Run::new(dir.path(), &database).with("SESSIONCTL_REDIS_URL", url).fails(&["list"], 1);
        assert!(error.contains("invalid Redis URL"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

/// What a run of requests against sessions saw.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    failed: AtomicU64,
    stale_reads: AtomicU64,
}

/// `workers` tasks, each owning `per_worker` sessions and incrementing a
/// counter in each in turn through the session API, until `stop`. Each
/// task knows what each of its sessions must hold, so a read of less is a
/// stale read, and the counters at the end tell lost updates. Returns the
/// sessions' cookies and the counts they must hold.
async fn hammer(
    store: Store,
    config: Arc<SessionConfig>,
    workers: usize,
    per_worker: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<(String, i64)> {
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (store, config, stop, tally) = (store.clone(), config.clone(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut sessions = Vec::new();
            for _ in 0..per_worker {
                let session = Session::new(store.clone(), config.clone(), None);
                session.insert("n", 0).await.unwrap();
                sessions.push((harness::cookie_of(&session.save().await.unwrap()), 0i64));
            }
            let mut turn = 0;
            while !stop.load(Ordering::Relaxed) {
                let (cookie, expected) = &mut sessions[turn % per_worker];
                turn += 1;
                tally.requests.fetch_add(1, Ordering::Relaxed);
                let session = Session::new(store.clone(), config.clone(), Some(cookie.as_str()));
                let n = match session.get::<i64>("n").await {
                    Ok(Some(n)) => n,
                    Ok(None) | Err(_) => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                if n < *expected {
                    tally.stale_reads.fetch_add(1, Ordering::Relaxed);
                }
                if session.insert("n", n + 1).await.is_err() || session.save().await.is_err() {
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                *expected = n + 1;
            }
            sessions
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

/// How many of `sessions` hold less than they must, read through `store`.
async fn lost_updates(store: &Store, config: &Arc<SessionConfig>, sessions: &[(String, i64)]) -> (usize, usize) {
    let mut lost = 0;
    let mut stale = 0;
    for (cookie, expected) in sessions {
        let session = Session::new(store.clone(), config.clone(), Some(cookie.as_str()));
        let n = session.get::<i64>("n").await.unwrap().unwrap_or(-1);
        if n < *expected {
            stale += 1;
        }
        let fresh = store.load_fresh(&session.key().await.unwrap().unwrap(), sessionctl::record::now()).await;
        if fresh.unwrap().and_then(|r| r.data.get("n").and_then(serde_json::Value::as_i64)).unwrap_or(-1) < *expected {
            lost += 1;
        }
    }
    (lost, stale)
}

/// Lets the load run `settle` more, stops it, and asserts it went on past
/// `since` + `at_least` requests with none failed, no read stale and no
/// update lost; returns the sessions.
async fn stop_and_expect_nothing_lost(
    load: tokio::task::JoinHandle<Vec<(String, i64)>>,
    (stop, tally): (&AtomicBool, &Tally),
    (store, config): (&Store, &Arc<SessionConfig>),
    settle: Duration,
    since: u64,
    at_least: u64,
    what: &str,
) -> Vec<(String, i64)> {
    tokio::time::sleep(settle).await;
    stop.store(true, Ordering::Relaxed);
    let sessions = load.await.unwrap();
    let requests = tally.requests.load(Ordering::Relaxed);
    assert!(requests > since + at_least, "requests went on {what}: {since} then {requests}");
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "failed requests of {requests}");
    assert_eq!(tally.stale_reads.load(Ordering::Relaxed), 0, "stale reads of {requests}");
    assert_eq!(lost_updates(store, config, &sessions).await, (0, 0), "lost updates, stale reads afterwards");
    sessions
}

/// A primary of the cluster is killed (SIGKILL) while requests run over
/// PostgreSQL: its replica takes over, and with the database behind the
/// cache no request fails, no update is lost and no read is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_killed_under_load_loses_nothing_with_a_database_behind() {
    let Some(mut cluster) = tokio::task::spawn_blocking(redis_cluster::RedisCluster::start).await.unwrap() else {
        return;
    };
    let Some(pg) = harness::postgres().await else { return };
    let cache = Arc::new(RedisCache::connect(&cluster.url(), &prefix("failover"), Duration::from_secs(1)).unwrap());
    let store = Store::tiered(pg.database.clone().unwrap(), cache, StoreOptions::default());
    let config = Arc::new(harness::config());
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let load = tokio::spawn(hammer(store.clone(), config.clone(), 8, 8, stop.clone(), tally.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = cluster.primaries()[0];
    let before_kill = tally.requests.load(Ordering::Relaxed);
    cluster.nodes.iter_mut().find(|n| n.port == victim).unwrap().kill();
    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_until_settled(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let settle = Duration::from_millis(1000);
    let counted = (stop.as_ref(), tally.as_ref());
    stop_and_expect_nothing_lost(load, counted, (&store, &config), settle, before_kill, 100, "through the failover")
        .await;
}

/// The same on Redis Cluster alone: requests that fail while the slot has
/// no primary are counted, none succeeds wrongly, and once the replica
/// has taken over every session is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_killed_under_load_cache_only_fails_a_bounded_number_of_requests() {
    let Some(mut cluster) = tokio::task::spawn_blocking(redis_cluster::RedisCluster::start).await.unwrap() else {
        return;
    };
    let timeout = StoreOptions::default().cache_timeout_for(false);
    let cache = Arc::new(RedisCache::connect(&cluster.url(), &prefix("failover-only"), timeout).unwrap());
    let store = Store::cache_only(cache, StoreOptions::default());
    let config = Arc::new(harness::config());
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let load = tokio::spawn(hammer(store.clone(), config.clone(), 8, 8, stop.clone(), tally.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = cluster.primaries()[0];
    let killed_at = Instant::now();
    cluster.nodes.iter_mut().find(|n| n.port == victim).unwrap().kill();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_until_settled(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let settled_after = killed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let sessions = load.await.unwrap();
    let (requests, failed) = (tally.requests.load(Ordering::Relaxed), tally.failed.load(Ordering::Relaxed));
    let stale_reads = tally.stale_reads.load(Ordering::Relaxed);
    let (lost, stale_after) = lost_updates(&store, &config, &sessions).await;
    eprintln!(
        "cache-only failover: {failed} of {requests} requests failed, {stale_reads} stale reads, {lost} sessions \
         lost an update; settled {settled_after:?} after the kill"
    );
    // Observed: 0–8 of 2,800–7,000 (RELIABILITY.md); the bound leaves room for a slow machine.
    assert!(failed <= 100, "{failed} of {requests} failed");
    // Replication is asynchronous: a write acknowledged by the primary an
    // instant before it died may not have reached the replica. Each worker
    // has one request in flight, so at most one such write each; a lost
    // write is read back stale once, then overwritten.
    assert!(stale_reads <= 8 && lost <= 8, "{stale_reads} stale reads, {lost} lost");
    assert_eq!(stale_after, lost, "after the failover a session reads what it holds");
    let served: HashSet<bool> = {
        let mut served = HashSet::new();
        for (cookie, _) in &sessions {
            let session = Session::new(store.clone(), config.clone(), Some(cookie.as_str()));
            served.insert(session.get::<i64>("n").await.unwrap().is_some());
        }
        served
    };
    assert_eq!(served, HashSet::from([true]), "every session is served after the failover");
    drop(cluster);
}

/// The Sentinels' primary is killed while requests run over SQLite: the
/// Sentinels promote the replica, the cache follows them, and nothing
/// fails, is lost or read stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_under_load_loses_nothing_with_a_database_behind() {
    let Some(mut setup) = tokio::task::spawn_blocking(redis_cluster::RedisSentinel::start).await.unwrap() else {
        return;
    };
    let db = harness::sqlite().await;
    let cache = Arc::new(RedisCache::connect(&setup.url(), &prefix("sentinel"), Duration::from_secs(1)).unwrap());
    let store = Store::tiered(db.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let load = tokio::spawn(hammer(store.clone(), config.clone(), 4, 8, stop.clone(), tally.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let old_primary = setup.primary.port;
    setup.primary.kill();
    let setup = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while setup.primary_port() == old_primary {
            assert!(Instant::now() < deadline, "the Sentinels did not promote the replica");
            std::thread::sleep(Duration::from_millis(100));
        }
        setup
    })
    .await
    .unwrap();
    let promoted_at = tally.requests.load(Ordering::Relaxed);
    let settle = Duration::from_millis(1500);
    let counted = (stop.as_ref(), tally.as_ref());
    let sessions =
        stop_and_expect_nothing_lost(load, counted, (&store, &config), settle, promoted_at, 50, "after the promotion")
            .await;
    // And the cache is in use again, on the new primary.
    let (cookie, _) = &sessions[0];
    let key = Session::new(store.clone(), config.clone(), Some(cookie.as_str())).key().await.unwrap().unwrap();
    assert!(matches!(cache.get(&key).await.unwrap(), CacheLookup::Hit(_)));
    assert_eq!(setup.primary_port(), setup.replica.port);
}

/// A Sentinel setup of its own, a cache-only store through it, and the
/// cookie of a session saved there with `n` = 1; `None` without Redis.
async fn sentinels_with_a_session(
    name: &str,
) -> Option<(redis_cluster::RedisSentinel, Store, Arc<SessionConfig>, String)> {
    let setup = tokio::task::spawn_blocking(redis_cluster::RedisSentinel::start).await.unwrap()?;
    let cache = Arc::new(RedisCache::connect(&setup.url(), &prefix(name), Duration::from_secs(2)).unwrap());
    let store = Store::cache_only(cache, StoreOptions::default());
    let config = Arc::new(harness::config());
    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let cookie = harness::cookie_of(&session.save().await.unwrap());
    Some((setup, store, config, cookie))
}

/// A switchover by hand (the replica promoted, the Sentinels pointed at it,
/// the old primary made its replica) closes no client connection, so the
/// one the cache holds to the old primary is answered `READONLY`: the cache
/// asks the Sentinels again and the saves land on the new primary. Before,
/// only an `Err` was checked, and redis-rs hands a `READONLY` reply back
/// as a value: every save failed while that connection stayed open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switchover_that_closes_no_connection_reaches_the_new_primary() {
    let Some((setup, store, config, cookie)) = sentinels_with_a_session("switchover").await else { return };
    let setup = tokio::task::spawn_blocking(move || {
        let mut setup = setup;
        setup.wait_for_the_replica();
        setup.switch_over();
        setup
    })
    .await
    .unwrap();
    assert_eq!(setup.primary_port(), setup.primary.port, "the Sentinels name the new primary");
    for n in 2..5 {
        let session = Session::new(store.clone(), config.clone(), Some(&cookie));
        session.insert("n", n).await.unwrap();
        let saved = session.save().await.map(|outcome| outcome.status).map_err(|error| error.to_string());
        assert_eq!(saved, Ok(SaveStatus::Saved), "save {n}, after the switchover");
        let read = Session::new(store.clone(), config.clone(), Some(&cookie));
        assert_eq!(read.get::<u64>("n").await.unwrap(), Some(n), "read back from the new primary");
    }
}

/// A primary demoted while the Sentinels still name it (they take seconds
/// to notice): its writes fail with its own `READONLY` message, each without
/// a connection of its own (the Sentinels are asked again once a second),
/// and reads are still served on the connection kept meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_primary_the_sentinels_still_name_serves_reads_without_a_connection_per_write() {
    let Some((setup, store, config, cookie)) = sentinels_with_a_session("demoted").await else { return };
    let (old, promoted) = (setup.primary.port, setup.replica.port.to_string());
    tokio::task::block_in_place(|| setup.wait_for_the_replica());
    redis_cluster::cli(setup.replica.port, &["replicaof", "no", "one"]);
    redis_cluster::cli(old, &["replicaof", "127.0.0.1", &promoted]);
    let before = connections_received(old);
    let started = Instant::now();
    for n in 2..32 {
        let session = Session::new(store.clone(), config.clone(), Some(&cookie));
        session.insert("n", n).await.unwrap();
        let error = session.save().await.expect_err("a replica refuses the write").to_string();
        assert!(error.contains("read only replica"), "save {n}: {error}");
        let read = Session::new(store.clone(), config.clone(), Some(&cookie));
        assert_eq!(read.get::<u64>("n").await.unwrap(), Some(1), "read {n} is served");
    }
    let opened = connections_received(old) - before;
    // Asking the Sentinels opens one connection per Sentinel naming it (to
    // check its role): 3 here, 91 for 30 saves before the once-a-second
    // bound, which allows 4 per second begun.
    let allowed = 4 * (1 + started.elapsed().as_secs());
    assert!(opened <= allowed, "{opened} connections for 30 refused saves (at most {allowed})");
    drop(setup);
}

/// Connections the server on `port` has accepted since it started.
fn connections_received(port: u16) -> u64 {
    let info = redis_cluster::cli(port, &["info", "stats"]);
    let line = info.lines().find_map(|line| line.strip_prefix("total_connections_received:"));
    line.expect("INFO stats names it").trim().parse().unwrap()
}

/// The cluster client resends a call whose connection dropped, so either
/// step of a cache-only rotation may run twice: the rotation resent whole
/// after its reply was lost is reported done, not "id taken" or "missing"
/// (which made the caller drop the only copy), and the session is served
/// under the new id only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_rotation_resent_after_a_lost_reply_counts_as_done() {
    let Some(cluster) = tokio::task::spawn_blocking(redis_cluster::shared_cluster).await.unwrap() else { return };
    let cache = RedisCache::connect(&cluster.url(), &prefix("resent"), Duration::from_secs(2)).unwrap();
    let old = record(None, chrono::Duration::hours(1), json!({"cart": ["pen"]}));
    assert!(cache.create(&old).await.unwrap());
    let mut moved = old.clone();
    moved.id = harness::new_key();
    moved.version = old.version + 1;
    for attempt in 0..2 {
        let outcome = cache.rotate(&old.id, old.version, &moved).await.unwrap();
        assert_eq!(outcome, sessionctl::store::RotateOutcome::Rotated, "attempt {attempt}");
    }
    assert!(matches!(cache.get(&old.id).await.unwrap(), CacheLookup::Moved));
    match cache.get(&moved.id).await.unwrap() {
        CacheLookup::Hit(record) => assert_eq!(record.data, moved.data),
        other => panic!("{other:?}"),
    }
    // A different record on a taken id is still refused.
    let mut other = moved.clone();
    other.updated_at += chrono::Duration::milliseconds(5);
    let third = record(None, chrono::Duration::hours(1), json!({}));
    assert!(cache.create(&third).await.unwrap());
    assert_eq!(
        cache.rotate(&third.id, third.version, &other).await.unwrap(),
        sessionctl::store::RotateOutcome::IdTaken
    );
}

/// A cluster that does not answer at all (nothing listens on its ports):
/// a command that reads says so in one note and answers from the database;
/// one that changes sessions refuses in one line. The redis crate's own
/// reconnect warnings (20-odd lines) stay out of the output.
#[test]
fn a_cluster_that_is_down_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("s.db").display());
    Run::new(dir.path(), &database).ok(&["migrate"]);
    let url = format!("redis+cluster://127.0.0.1:{},127.0.0.1:{}", harness::free_port(), harness::free_port());
    let cli = Run::new(dir.path(), &database).with("SESSIONCTL_REDIS_URL", &url);
    let error = cli.fails(&["revoke", "--user", "bob", "-y"], 1);
    assert!(error.contains("Redis"), "{error}");
    let output = cli.run(&["list"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("note:")).count(), 1, "one note: {stderr}");
    assert!(!stderr.contains("WARN") && !stderr.contains("ERROR"), "no log lines: {stderr}");
    assert!(stderr.lines().count() <= 2, "the note and the count: {stderr}");
}

/// Slots move between primaries (`redis-cli --cluster reshard`, there and
/// back) while requests run on Redis Cluster alone: the client follows
/// MOVED and ASK, every script runs on the node that holds its key, and no
/// request fails, no read is stale, no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_moving_between_primaries_under_load_fail_and_lose_nothing() {
    let Some(cluster) = tokio::task::spawn_blocking(redis_cluster::RedisCluster::start).await.unwrap() else {
        return;
    };
    let timeout = StoreOptions::default().cache_timeout_for(false);
    let cache = Arc::new(RedisCache::connect(&cluster.url(), &prefix("reshard"), timeout).unwrap());
    let store = Store::cache_only(cache.clone(), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let load = tokio::spawn(hammer(store.clone(), config.clone(), 8, 8, stop.clone(), tally.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let before = tally.requests.load(Ordering::Relaxed);
    // A listing under way when the slots move...
    let (cursor, _) = cache.scan_ids(0, 10).await.unwrap();
    assert_ne!(cursor, 0, "64 sessions over three primaries take more than one page");
    let reshard = |cluster: redis_cluster::RedisCluster, there: bool| {
        tokio::task::spawn_blocking(move || {
            cluster.wait_until_settled(Duration::from_secs(30));
            let primaries = cluster.primaries();
            let id = |port: u16| redis_cluster::cli(port, &["cluster", "myid"]).trim().to_owned();
            let (a, b) = (id(primaries[0]), id(primaries[1]));
            let (from, to) = if there { (&a, &b) } else { (&b, &a) };
            let target = format!("127.0.0.1:{}", primaries[0]);
            redis_cluster::cli(
                primaries[0],
                &["--cluster", "reshard", &target, "--cluster-from", from, "--cluster-to", to]
                    .into_iter()
                    .chain(["--cluster-slots", "3000", "--cluster-yes", "--cluster-pipeline", "10"])
                    .collect::<Vec<_>>(),
            );
            cluster.wait_until_settled(Duration::from_secs(30));
            cluster
        })
    };
    let cluster = reshard(cluster, true).await.unwrap();
    // ...stops with an error rather than skip or repeat keys.
    let error = cache.scan_ids(cursor, 10).await.unwrap_err().to_string();
    assert!(error.contains("moved during the listing"), "{error}");
    let _cluster = reshard(cluster, false).await.unwrap();
    let settle = Duration::from_millis(500);
    let counted = (stop.as_ref(), tally.as_ref());
    stop_and_expect_nothing_lost(load, counted, (&store, &config), settle, before, 100, "while slots moved").await;
}

/// A cluster whose nodes require a password (of clients and of each
/// other): the library and the CLI reach it with the password in the URL
/// (percent-encoded: it holds a space, `/` and `?`); a wrong one is one
/// line that shows neither password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_a_password_is_reached_with_it_and_refused_without() {
    const PASSWORD: &str = "s3cret pass/?";
    let Some(cluster) =
        tokio::task::spawn_blocking(|| redis_cluster::RedisCluster::start_with_password(Some(PASSWORD))).await.unwrap()
    else {
        return;
    };
    let hosts = cluster.url().trim_start_matches("redis+cluster://").to_owned();
    let url = format!("redis+cluster://:s3cret%20pass%2F%3F@{hosts}");
    let wrong = format!("redis+cluster://:n0t-it@{hosts}");
    let db = harness::sqlite().await;
    let prefix = prefix("authed");
    let cache = Arc::new(RedisCache::connect(&url, &prefix, Duration::from_secs(2)).unwrap());
    let store = Store::tiered(db.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    for i in 0..30 {
        assert!(store.create(&record(Some("erin"), chrono::Duration::hours(1), json!({"i": i}))).await.unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = |url: &str| {
        Run::new(dir.path(), &db.url).with("SESSIONCTL_REDIS_PREFIX", &prefix).with("SESSIONCTL_REDIS_URL", url)
    };
    let stats = cli(&url).json(&["stats"]);
    assert_eq!(
        (stats["cache"]["cached"].as_u64(), stats["cache"]["in_both"].as_u64()),
        (Some(30), Some(30)),
        "{stats}"
    );
    let refused = cli(&wrong).fails(&["revoke", "--user", "erin", "-y"], 1);
    assert!(!refused.contains("n0t-it") && !refused.contains("s3cret"), "{refused}");
    assert_eq!(store.user_sessions("erin", sessionctl::record::now()).await.unwrap().len(), 30, "nothing revoked");
    assert_eq!(cli(&url).json(&["revoke", "--user", "erin", "-y"])["revoked"], 30);
}
