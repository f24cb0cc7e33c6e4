//! The tiered store itself: round trips per path, cache refill, cache
//! outages and their recovery, expiry of cache entries, the in-process
//! cache's staleness bound.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sessionctl::store::memory::MemoryCache;
use sessionctl::store::{CacheLookup, OpSnapshot};
use sessionctl::{CacheTier, SaveStatus, Session, SessionConfig, SessionKey, Store, StoreOptions};

use crate::harness::{self, TestDb, redis_server::RedisServer};

async fn start(store: &Store, config: &Arc<SessionConfig>) -> (String, SessionKey) {
    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let value = harness::cookie_of(&session.save().await.unwrap());
    (value, session.key().await.unwrap().unwrap())
}

fn ops(database: u64, cache: u64) -> OpSnapshot {
    OpSnapshot { database, cache, cache_errors: 0 }
}

async fn round_trips(db: TestDb) {
    let config = Arc::new(harness::config());
    let (value, id) = start(&db.store, &config).await;

    // Cached read: one cache call, no database.
    let before = db.store.ops();
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Unchanged);
    assert_eq!(db.store.ops() - before, ops(0, 1), "cached read");

    // Changed session: the cached read, then one database write and one cache write.
    let before = db.store.ops();
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    session.insert("n", 2).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(db.store.ops() - before, ops(1, 2), "read + one database write + one cache write");

    // Quick change: the cached read, then one cache write; the database keeps the old data.
    let before = db.store.ops();
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    session.insert_quick("seen", true).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(db.store.ops() - before, ops(0, 2), "read + one cache write");
    assert_eq!(db.db().load(&id).await.unwrap().unwrap().data.get("seen"), None, "quick writes skip the database");
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<bool>("seen").await.unwrap(), Some(true), "but are read back from the cache");

    // A normal change after a quick one persists both.
    session.insert("n", 3).await.unwrap();
    session.save().await.unwrap();
    let stored = db.db().load(&id).await.unwrap().unwrap();
    assert_eq!(serde_json::Value::from(stored.data), json!({"n": 3, "seen": true}));

    // Database hit: a cache miss, the database, then a refill.
    db.cache.as_ref().unwrap().evict(std::slice::from_ref(&id)).await.unwrap();
    let before = db.store.ops();
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(3));
    assert_eq!(db.store.ops() - before, ops(1, 2), "miss + database + refill");
    let before = db.store.ops();
    let session = Session::new(db.store.clone(), config, Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(3));
    assert_eq!(db.store.ops() - before, ops(0, 1), "the refill serves the next read");
}

#[tokio::test]
async fn round_trips_redis_sqlite() {
    if let Some(db) = harness::redis_sqlite().await {
        round_trips(db).await;
    }
}

#[tokio::test]
async fn round_trips_redis_postgres() {
    if let Some(db) = harness::redis_postgres().await {
        round_trips(db).await;
    }
}

#[tokio::test]
async fn round_trips_memory_sqlite() {
    round_trips(harness::memory_sqlite().await).await;
}

/// PostgreSQL hands a `jsonb` column back with spaces (`[1, 2]`). Values are
/// kept as their text until read, without those spaces: the text a save
/// measures against the size limit, and writes to the cache, is what it
/// was before values were parsed on first read.
#[tokio::test]
async fn values_read_from_postgresql_are_kept_compact() {
    let Some(db) = harness::redis_postgres().await else { return };
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("cart", json!([{"sku": "A 1", "qty": 2}, {"sku": "B", "qty": 1}])).await.unwrap();
    session.insert("n", 1).await.unwrap();
    session.save().await.unwrap();
    let id = session.key().await.unwrap().unwrap();
    let compact = r#"{"cart":[{"qty":2,"sku":"A 1"},{"qty":1,"sku":"B"}],"n":1}"#;
    let stored = db.db().load(&id).await.unwrap().unwrap();
    assert_eq!(stored.data_json(), compact);
    // Through the cache, refilled from the row.
    db.cache.as_ref().unwrap().evict(std::slice::from_ref(&id)).await.unwrap();
    let loaded = db.store.load(&id, sessionctl::record::now()).await.unwrap().unwrap();
    assert_eq!(loaded.data_json(), compact);
    let CacheLookup::Hit(cached) = db.cache.as_ref().unwrap().get(&id).await.unwrap() else { panic!("refilled") };
    assert_eq!(cached.data_json(), compact);
}

/// A store whose Redis is a server of its own, for fault tests.
async fn own_redis() -> Option<(RedisServer, TestDb)> {
    let server = RedisServer::start()?;
    let mut db = harness::sqlite().await;
    let cache = harness::redis_cache_at(&server.url());
    let options = StoreOptions::default().with_cache_timeout(Duration::from_millis(300));
    db.store = Store::tiered(db.database.clone().unwrap(), cache.clone(), options);
    db.cache = Some(cache);
    Some((server, db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_down_falls_back_to_the_database_and_recovers() {
    let Some((mut server, db)) = own_redis().await else { return };
    let config = Arc::new(harness::config());
    let (value, id) = start(&db.store, &config).await;

    server.stop();
    // Loads and saves keep working from the database.
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    session.insert("n", 2).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    let fresh = Session::new(db.store.clone(), config.clone(), None);
    fresh.insert("new", true).await.unwrap();
    let fresh_value = harness::cookie_of(&fresh.save().await.unwrap());
    assert!(db.store.ops().cache_errors > 0, "the outage is counted");
    assert_eq!(db.db().load(&id).await.unwrap().unwrap().data["n"], json!(2));

    server.start_again();
    // The cache is used again (after the manager reconnects) and serves the
    // current values, not ones from before the outage.
    let mut cached = false;
    for _ in 0..50 {
        let before = db.store.ops();
        let session = Session::new(db.store.clone(), config.clone(), Some(&value));
        assert_eq!(session.get::<i32>("n").await.unwrap(), Some(2), "no stale value");
        if db.store.ops() - before == ops(0, 1) {
            cached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cached, "reads are served from the cache again after Redis comes back");
    let session = Session::new(db.store.clone(), config, Some(&fresh_value));
    assert_eq!(session.get::<bool>("new").await.unwrap(), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_is_bypassed_and_never_serves_a_stale_value() {
    let Some((server, db)) = own_redis().await else { return };
    let config = Arc::new(harness::config());
    let (value, id) = start(&db.store, &config).await;

    server.pause();
    let session = Session::new(db.store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "read from the database after the cache timeout");
    session.insert("n", 2).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved, "the save persists despite the cache");
    server.resume();

    // Whatever Redis did with the commands that timed out, no read may see n = 1.
    for _ in 0..20 {
        let session = Session::new(db.store.clone(), config.clone(), Some(&value));
        assert_eq!(session.get::<i32>("n").await.unwrap(), Some(2));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    match db.cache.as_ref().unwrap().get(&id).await.unwrap() {
        CacheLookup::Hit(record) | CacheLookup::Quick(record, _) => assert_eq!(record.data["n"], json!(2)),
        CacheLookup::Miss => {}
        CacheLookup::Deleted | CacheLookup::Moved => panic!("a live session is not a tombstone"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_only_sessions_fail_clearly_while_redis_is_down() {
    let Some(server) = RedisServer::start() else { return };
    let mut server = server;
    let cache = harness::redis_cache_at(&server.url());
    let store = Store::cache_only(cache, StoreOptions::default().with_cache_timeout(Duration::from_millis(300)));
    let config = Arc::new(harness::config());
    let (value, _) = start(&store, &config).await;
    server.stop();
    let session = Session::new(store.clone(), config, Some(&value));
    let error = session.get_value("n").await.unwrap_err();
    assert!(error.to_string().contains("cache error (redis)"), "{error}");
}

#[tokio::test]
async fn redis_entries_expire_with_their_session() {
    let Some(db) = harness::redis_sqlite().await else { return };
    let config = Arc::new(harness::config().with_lifetime(Duration::from_millis(1500)));
    let (value, id) = start(&db.store, &config).await;
    let cache = db.cache.as_ref().unwrap();
    assert!(matches!(cache.get(&id).await.unwrap(), CacheLookup::Hit(_)));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(cache.get(&id).await.unwrap(), CacheLookup::Miss, "Redis dropped the entry at the session's expiry");
    let session = Session::new(db.store.clone(), config, Some(&value));
    assert_eq!(session.get_value("n").await.unwrap(), None);
}

#[tokio::test]
async fn a_tombstone_stops_a_late_refill_from_resurrecting_a_deleted_session() {
    for db in [harness::redis_sqlite().await, Some(harness::memory_sqlite().await)].into_iter().flatten() {
        let config = Arc::new(harness::config());
        let (value, id) = start(&db.store, &config).await;
        let loaded = db.db().load(&id).await.unwrap().unwrap();
        // Another request read the row, then `delete` ran, then its refill lands.
        db.store.delete(&id).await.unwrap();
        let cache = db.cache.as_ref().unwrap();
        cache.fill(&loaded).await.unwrap();
        assert!(!cache.put(&loaded).await.unwrap(), "a write-back is refused too");
        assert_eq!(cache.get(&id).await.unwrap(), CacheLookup::Deleted);
        let session = Session::new(db.store.clone(), config, Some(&value));
        assert_eq!(session.get_value("n").await.unwrap(), None, "{}: stays deleted", cache.backend());
    }
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_cache_entry() {
    for db in [harness::redis_sqlite().await, Some(harness::memory_sqlite().await)].into_iter().flatten() {
        let config = Arc::new(harness::config());
        let (_, id) = start(&db.store, &config).await;
        let cache = db.cache.as_ref().unwrap();
        let CacheLookup::Hit(v1) = cache.get(&id).await.unwrap() else { panic!() };
        let mut v2 = v1.clone();
        v2.version += 1;
        v2.data.insert("n".into(), json!(2));
        assert!(cache.put(&v2).await.unwrap());
        assert!(!cache.put(&v1).await.unwrap(), "{}: a slower writer's older version is refused", cache.backend());
        cache.fill(&v1).await.unwrap();
        let CacheLookup::Hit(cached) = cache.get(&id).await.unwrap() else { panic!() };
        assert_eq!(cached.version, v2.version);
    }
}

#[tokio::test]
async fn the_in_process_cache_sees_outside_deletes_within_its_staleness_bound() {
    let db = harness::sqlite().await;
    let database = db.database.clone().unwrap();
    // A bound wide enough that a busy CI machine's stall between the write and
    // the first read cannot use it up.
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(1000, Some(Duration::from_secs(2))));
    let store = Store::tiered(database.clone(), cache, StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;

    // `sessionctl delete` from another process: this process's cache cannot hear it.
    database.delete(&id).await.unwrap();
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "served from the cache within the bound");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let session = Session::new(store, config, Some(&value));
    assert_eq!(session.get_value("n").await.unwrap(), None, "gone once the bound has passed");
}

#[tokio::test]
async fn purge_drops_the_purged_ids_from_the_cache() {
    let Some(db) = harness::redis_sqlite().await else { return };
    let now = sessionctl::record::now();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let record = sessionctl::Record {
            id: harness::new_key(),
            user_id: None,
            data: json!({"n": 1}).as_object().cloned().unwrap().into(),
            created_at: now,
            updated_at: now,
            expires_at: now + chrono::Duration::milliseconds(300),
            version: 1,
        };
        db.store.create(&record).await.unwrap();
        ids.push(record.id);
    }
    tokio::time::sleep(Duration::from_millis(350)).await;
    let batch = db.store.purge_expired_batch(sessionctl::record::now(), None, 100, false).await.unwrap();
    assert_eq!(batch.deleted.len(), 5);
    for id in &ids {
        db.assert_gone(id).await;
    }
}

/// 100 requests of one session, loaded, then saving at once: their changes
/// go to the database in a few combined writes, not one each queued on the
/// row, and every change lands.
async fn concurrent_saves_of_one_session_are_combined(db: TestDb) {
    let config = Arc::new(harness::config());
    let (value, _) = start(&db.store, &config).await;
    let mut sessions = Vec::new();
    for i in 0..100 {
        let session = Session::new(db.store.clone(), config.clone(), Some(&value));
        session.insert(&format!("k{i}"), i).await.unwrap();
        sessions.push(session);
    }
    let before = db.store.ops();
    let saves: Vec<_> =
        sessions.into_iter().map(|session| tokio::spawn(async move { session.save().await.unwrap().status })).collect();
    for save in saves {
        assert_eq!(save.await.unwrap(), SaveStatus::Saved);
    }
    // Where the session is stored: the database, or the cache of a cache-only store.
    let spent = db.store.ops() - before;
    let writes = if db.database.is_some() { spent.database } else { spent.cache };
    assert!(writes <= 10, "{writes} writes for 100 concurrent saves of one session");
    let check = Session::new(db.store.clone(), config, Some(&value));
    assert_eq!(check.keys().await.unwrap().len(), 101, "every change landed");
}

#[tokio::test]
async fn concurrent_saves_of_one_session_are_combined_on_sqlite() {
    concurrent_saves_of_one_session_are_combined(harness::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_saves_of_one_session_are_combined_on_redis_alone() {
    if let Some(db) = harness::redis_only().await {
        concurrent_saves_of_one_session_are_combined(db).await;
    }
}

#[tokio::test]
async fn concurrent_saves_of_one_session_are_combined_on_redis_postgres() {
    if let Some(db) = harness::redis_postgres().await {
        concurrent_saves_of_one_session_are_combined(db).await;
    }
}

#[tokio::test]
async fn an_old_releases_deletion_marker_is_not_refilled_over() {
    let Some(server) = harness::redis_server::shared() else { return };
    let db = harness::sqlite().await;
    let prefix = format!("old-marker:{}:", harness::new_key());
    let redis = sessionctl::store::redis::RedisCache::connect(&server.url(), &prefix, Duration::from_secs(5)).unwrap();
    let cache: Arc<dyn CacheTier> = Arc::new(redis.clone());
    let store = Store::tiered(db.db().clone(), cache.clone(), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;
    // A process of the previous release deleted the session: its marker is
    // the string "!deleted", and this release's refill must respect it.
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET").arg(redis.key(&id)).arg("!deleted").query_async(&mut connection).await.unwrap();
    let record = db.db().load(&id).await.unwrap().unwrap();
    cache.fill(&record).await.unwrap();
    assert!(!cache.put(&record).await.unwrap(), "refused");
    let session = Session::new(store, config, Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), None, "still deleted");
}

/// Rewrites a session's entry in the layout of releases before the `m`
/// field (`c`, `t`, `e` apart), as a running cache would hold it on the day
/// of an upgrade.
async fn to_earlier_layout(connection: &mut redis::aio::MultiplexedConnection, key: &str) {
    let fields: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(key).query_async(connection).await.unwrap();
    let pttl: i64 = redis::cmd("PTTL").arg(key).query_async(connection).await.unwrap();
    let times: Vec<&str> = fields["m"].split(' ').collect();
    let mut earlier = redis::cmd("HSET");
    earlier.arg(key);
    for (name, value) in ["c", "t", "e"].iter().zip(&times) {
        earlier.arg(*name).arg(*value);
    }
    for (name, value) in fields.iter().filter(|(name, _)| *name != "m") {
        earlier.arg(name).arg(value);
    }
    let () = redis::pipe()
        .atomic()
        .del(key)
        .ignore()
        .add_command(earlier)
        .ignore()
        .pexpire(key, pttl)
        .ignore()
        .query_async(connection)
        .await
        .unwrap();
}

async fn entry_fields(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let fields: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(key).query_async(connection).await.unwrap();
    let mut names: Vec<String> = fields.into_keys().collect();
    names.sort();
    names
}

/// An upgrade keeps the sessions a cache holds in the earlier layout of
/// their metadata: they are read, and the next change rewrites them with
/// the one `m` field, their data, creation time and version carried over.
async fn earlier_layout_entries_are_read_and_rewritten(
    store: Store,
    redis: sessionctl::store::redis::RedisCache,
    mut connection: redis::aio::MultiplexedConnection,
    in_front_of_database: bool,
) {
    // In front of a database every entry holds its epoch, `g`.
    let fields = |names: &[&str]| {
        let mut names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        if in_front_of_database {
            names.push("g".into());
            names.sort();
        }
        names
    };
    let config = Arc::new(harness::config());
    let session = Session::new(store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    session.insert("a", "x").await.unwrap();
    session.set_user_id(Some("ada".into())).await.unwrap();
    let value = harness::cookie_of(&session.save().await.unwrap());
    let id = session.key().await.unwrap().unwrap();
    let created = store.load(&id, sessionctl::record::now()).await.unwrap().unwrap();
    let key = redis.key(&id);
    to_earlier_layout(&mut connection, &key).await;
    assert_eq!(entry_fields(&mut connection, &key).await, fields(&["c", "d:a", "d:n", "e", "t", "u", "v"]));

    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "read in the earlier layout");
    session.insert("n", 2).await.unwrap();
    session.save().await.unwrap();
    let rewritten = fields(&["d:a", "d:n", "m", "u", "v"]);
    assert_eq!(entry_fields(&mut connection, &key).await, rewritten, "rewritten by the change");

    let session = Session::new(store.clone(), config, Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(2));
    assert_eq!(session.get::<String>("a").await.unwrap().as_deref(), Some("x"));
    assert_eq!(session.user_id().await.unwrap().as_deref(), Some("ada"));
    let now = store.load(&id, sessionctl::record::now()).await.unwrap().unwrap();
    assert_eq!(
        (now.version, now.created_at, now.expires_at),
        (created.version + 1, created.created_at, created.expires_at)
    );
    assert!(
        matches!(redis.get(&id).await.unwrap(), CacheLookup::Hit(cached) if cached == now),
        "the cache holds the saved record"
    );
}

/// A Redis tier under a prefix of its own on the shared server, and a
/// connection of the test's own for looking at the entries.
async fn redis_tier(server: &RedisServer) -> (sessionctl::store::redis::RedisCache, redis::aio::MultiplexedConnection) {
    let prefix = format!("earlier:{}:", harness::new_key());
    let redis = sessionctl::store::redis::RedisCache::connect(&server.url(), &prefix, Duration::from_secs(5)).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    (redis, client.get_multiplexed_async_connection().await.unwrap())
}

#[tokio::test]
async fn earlier_layout_entries_are_read_and_rewritten_on_redis_alone() {
    let Some(server) = harness::redis_server::shared() else { return };
    let (redis, connection) = redis_tier(server).await;
    let store = Store::cache_only(Arc::new(redis.clone()), StoreOptions::default());
    earlier_layout_entries_are_read_and_rewritten(store, redis, connection, false).await;
}

#[tokio::test]
async fn earlier_layout_entries_are_read_and_rewritten_in_front_of_a_database() {
    let Some(server) = harness::redis_server::shared() else { return };
    let db = harness::sqlite().await;
    let (redis, connection) = redis_tier(server).await;
    let store = Store::tiered(db.db().clone(), Arc::new(redis.clone()), StoreOptions::default());
    earlier_layout_entries_are_read_and_rewritten(store, redis, connection, true).await;
}

/// A session saved through Redis in front of SQLite, with what the Redis
/// layout tests look at: the tier, a connection of their own, the cookie,
/// the session's key and its Redis key.
struct Tiered {
    db: TestDb,
    redis: sessionctl::store::redis::RedisCache,
    connection: redis::aio::MultiplexedConnection,
    store: Store,
    config: Arc<SessionConfig>,
    value: String,
    id: SessionKey,
    key: String,
}

async fn tiered_session(server: &RedisServer) -> Tiered {
    let db = harness::sqlite().await;
    let (redis, connection) = redis_tier(server).await;
    let store = Store::tiered(db.db().clone(), Arc::new(redis.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;
    let key = redis.key(&id);
    Tiered { db, redis, connection, store, config, value, id, key }
}

/// A cache entry the decoder refuses (damaged by hand in a trial; a future
/// layout would look the same) is replaced from the database by the next
/// read, instead of sending every read to the database until it expires;
/// the scripts do not take damaged times for a live entry either. Values
/// are parsed on their first read, but one that is not JSON, or nested
/// deeper than it parses, still makes the entry corrupt when it is read, as
/// when every value was parsed then (never a value that fails later).
#[tokio::test]
async fn a_damaged_cache_entry_is_replaced_from_the_database() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db, redis, mut connection, store, config, value, id, key } = tiered_session(server).await;
    let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
    let times = ["garbage", "1 2", "1796136360872 1796136361080 1796136360872 1796741160872", "x 2 3", " 2 3"];
    let values = ["{", "", "[1,", "\"open", deep.as_str()];
    let damage = times.iter().map(|t| ("m", *t)).chain(values.iter().map(|v| ("d:n", *v)));
    for (field, damaged) in damage {
        let () = redis::cmd("HSET").arg(&key).arg(field).arg(damaged).query_async(&mut connection).await.unwrap();
        let error = redis.get(&id).await.unwrap_err();
        assert!(matches!(error, sessionctl::Error::Corrupt { .. }), "{field} {damaged:?}: {error}");
        if field == "m" {
            let patch = sessionctl::store::Patch::new(sessionctl::record::now()).with_set("n", json!(9));
            assert_eq!(
                redis.patch(&id, &patch, true).await.unwrap(),
                None,
                "{damaged:?}: not a live entry to the scripts"
            );
        }

        let session = Session::new(store.clone(), config.clone(), Some(&value));
        assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "{field} {damaged:?}: read from the database");
        let stored = db.db().load(&id).await.unwrap().unwrap();
        assert_eq!(
            redis.get(&id).await.unwrap(),
            CacheLookup::Hit(stored),
            "{field} {damaged:?}: the entry was replaced"
        );
    }
}

/// A save after a database write unmarks the keys it persisted as quick
/// writes, by their fields only: a user id that reads like a data field
/// (`d:foo`) is a value, and a quick write of `foo` another request made
/// stays marked until it is persisted.
#[tokio::test]
async fn a_user_id_that_looks_like_a_field_does_not_unmark_a_quick_write() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { redis: _, mut connection, store, config, value, key, .. } = tiered_session(server).await;
    let earlier = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(earlier.get::<i32>("n").await.unwrap(), Some(1));
    let quick = Session::new(store.clone(), config.clone(), Some(&value));
    quick.insert_quick("foo", 1).await.unwrap();
    quick.save().await.unwrap();
    assert!(entry_fields(&mut connection, &key).await.contains(&"q:foo".to_owned()));

    earlier.set_user_id(Some("d:foo".into())).await.unwrap();
    assert_eq!(earlier.save().await.unwrap().status, SaveStatus::Saved);
    let fields = entry_fields(&mut connection, &key).await;
    assert!(fields.contains(&"q:foo".to_owned()), "the quick write is still unpersisted: {fields:?}");
}

/// A time in a field of its own wins over `m`'s for the decoder, and the
/// scripts take it the same way: the next save folds it into `m`, so what
/// is served before and after agrees (a trial found a lone `e` kept apart).
#[tokio::test]
async fn a_lone_time_field_is_read_and_folded_into_m() {
    let Some(server) = harness::redis_server::shared() else { return };
    let (redis, mut connection) = redis_tier(server).await;
    let store = Store::cache_only(Arc::new(redis.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;
    let key = redis.key(&id);
    let CacheLookup::Hit(before) = redis.get(&id).await.unwrap() else { panic!("not cached") };
    let later = before.expires_at + chrono::Duration::hours(1);
    let () =
        redis::cmd("HSET").arg(&key).arg("e").arg(later.timestamp_millis()).query_async(&mut connection).await.unwrap();
    let CacheLookup::Hit(read) = redis.get(&id).await.unwrap() else { panic!("not cached") };
    assert_eq!(read.expires_at, later);

    let session = Session::new(store, config, Some(&value));
    session.insert("n", 2).await.unwrap();
    session.save().await.unwrap();
    assert_eq!(entry_fields(&mut connection, &key).await, ["d:n", "m", "v"]);
    let CacheLookup::Hit(after) = redis.get(&id).await.unwrap() else { panic!("not cached") };
    assert_eq!((after.expires_at, after.created_at, after.version), (later, before.created_at, before.version + 1));
}

/// A rolling deploy: a process of the earlier release saves a key-level
/// change (the database patch, then its own script on the cache entry this
/// release wrote). The cache stays in step with the database, this release
/// reads the change, and its next save folds the earlier release's fields
/// back into `m`.
#[tokio::test]
async fn a_patch_by_an_earlier_release_keeps_the_cache_in_step() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db, redis, mut connection, store, config, value, id, key } = tiered_session(server).await;

    let at = sessionctl::record::now() + chrono::Duration::seconds(1);
    let expires = at + chrono::Duration::days(2);
    let patch = sessionctl::store::Patch::new(at).with_set("n", json!(5)).with_expires_at(expires);
    let version = db.db().patch(&id, &patch).await.unwrap().unwrap();
    // The earlier release's arguments: expiry, version, removed count, item
    // count, then `t`, `d:n` and `e` as items.
    let (at_ms, expires_ms) = (at.timestamp_millis().to_string(), expires.timestamp_millis().to_string());
    let items = ["t", at_ms.as_str(), "d:n", "5", "e", expires_ms.as_str()];
    let applied: i64 = redis::Script::new(include_str!("earlier_put_patched.lua"))
        .key(&key)
        .arg(&expires_ms)
        .arg(version)
        .arg(0)
        .arg(items.len())
        .arg(&items[..])
        .invoke_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(applied, 1, "the earlier release's script patched this release's entry");
    let stored = db.db().load(&id).await.unwrap().unwrap();
    assert_eq!(
        redis.get(&id).await.unwrap(),
        CacheLookup::Hit(stored.clone()),
        "the cache holds what the database does"
    );

    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(5));
    session.insert("n", 6).await.unwrap();
    session.save().await.unwrap();
    assert_eq!(
        entry_fields(&mut connection, &key).await,
        ["d:n", "g", "m", "v"],
        "the earlier release's fields folded into m, the epoch kept"
    );
    let stored = db.db().load(&id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.expires_at), (version + 1, expires));
    assert_eq!(redis.get(&id).await.unwrap(), CacheLookup::Hit(stored));
}

#[tokio::test]
async fn a_database_write_that_times_out_evicts_the_cached_copy() {
    use sqlx::Connection as _;
    let db = harness::sqlite().await;
    let cache: Arc<dyn CacheTier> = Arc::new(MemoryCache::new(1000, Some(Duration::from_secs(60))));
    let options = StoreOptions::default().with_database_timeout(Duration::from_millis(300));
    let store = Store::tiered(db.db().clone(), cache.clone(), options);
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;
    assert!(matches!(cache.get(&id).await.unwrap(), CacheLookup::Hit(_)));

    // Another writer holds SQLite's write lock: the save times out, and
    // whether it committed is unknown to the store.
    let mut blocker = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut blocker).await.unwrap();
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    session.insert("n", 2).await.unwrap();
    let error = session.save().await.unwrap_err();
    assert!(matches!(error, sessionctl::Error::Timeout { .. }), "{error}");
    assert_eq!(cache.get(&id).await.unwrap(), CacheLookup::Miss, "the possibly stale copy was evicted");
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();

    let session = Session::new(store, config, Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "read from the database");
}

/// Redis forgets its scripts when it restarts, fails over to a replica
/// that never loaded them, or is told `SCRIPT FLUSH`: every write that runs
/// one (a key-level save, an id rotation, a whole-session save, a
/// deletion) loads it again and lands, on Redis alone and in front of a
/// database.
#[tokio::test]
async fn writes_land_after_redis_forgets_its_scripts() {
    let Some((server, tiered)) = own_redis().await else { return };
    let cache_only = Store::cache_only(harness::redis_cache_at(&server.url()), StoreOptions::default());
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    for store in [cache_only, tiered.store.clone()] {
        let config = Arc::new(harness::config());
        let (value, _) = start(&store, &config).await;
        let forget = async |admin: &mut redis::aio::MultiplexedConnection| {
            let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(admin).await.unwrap();
        };

        forget(&mut admin).await;
        let session = Session::new(store.clone(), config.clone(), Some(&value));
        session.insert("n", 2).await.unwrap();
        assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);

        forget(&mut admin).await;
        let session = Session::new(store.clone(), config.clone(), Some(&value));
        session.clear().await.unwrap();
        session.insert("n", 3).await.unwrap();
        session.regenerate_id().await.unwrap();
        let rotated = harness::cookie_of(&session.save().await.unwrap());
        let session = Session::new(store.clone(), config.clone(), Some(&rotated));
        assert_eq!(session.get_value("n").await.unwrap(), Some(json!(3)));
        let old = Session::new(store.clone(), config.clone(), Some(&value));
        assert_eq!(old.get_value("n").await.unwrap(), None, "the old id leads nowhere");

        forget(&mut admin).await;
        let session = Session::new(store.clone(), config.clone(), Some(&rotated));
        session.terminate().await.unwrap();
        session.save().await.unwrap();
        let session = Session::new(store.clone(), config.clone(), Some(&rotated));
        assert_eq!(session.get_value("n").await.unwrap(), None, "deleted");
    }
}

/// Sets a Redis server's configuration parameter with redis-cli.
fn redis_config(url: &str, parameter: &str, value: &str) {
    let status = std::process::Command::new("redis-cli")
        .args(["-u", url, "config", "set", parameter, value])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli comes with redis-server");
    assert!(status.success());
}

/// Redis at its memory limit (`maxmemory` with `noeviction`, the default
/// policy): on Redis alone a key-level save fails with Redis' own error,
/// never reported saved, and reads are served; in front of a database the
/// save lands there and the next read sees it, not the cached copy the
/// cache could not update. Once Redis has room, saves go through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_out_of_memory_fails_only_what_it_cannot_hold() {
    let Some(server) = RedisServer::start() else { return };
    let url = server.url();
    let cache = harness::redis_cache_at(&url);
    let options = StoreOptions::default().with_cache_timeout(Duration::from_millis(500));
    let alone = Store::cache_only(cache.clone(), options.clone());
    let mut db = harness::sqlite().await;
    db.store = Store::tiered(db.database.clone().unwrap(), cache, options);
    let config = Arc::new(harness::config());
    let (alone_cookie, _) = start(&alone, &config).await;
    let (tiered_cookie, _) = start(&db.store, &config).await;
    let session = |store: &Store, cookie: &str| Session::new(store.clone(), config.clone(), Some(cookie));

    redis_config(&url, "maxmemory", "1");
    let full = session(&alone, &alone_cookie);
    assert_eq!(full.get::<u64>("n").await.unwrap(), Some(1), "reads are served");
    full.insert("n", 2).await.unwrap();
    let error = full.save().await.expect_err("Redis alone has nowhere to keep it");
    assert!(error.to_string().contains("OOM"), "{error}");
    let tiered = session(&db.store, &tiered_cookie);
    tiered.insert("n", 2).await.unwrap();
    assert_eq!(tiered.save().await.unwrap().status, SaveStatus::Saved);
    for _ in 0..2 {
        assert_eq!(session(&db.store, &tiered_cookie).get::<u64>("n").await.unwrap(), Some(2), "not the cached 1");
    }
    assert_eq!(session(&alone, &alone_cookie).get::<u64>("n").await.unwrap(), Some(1), "the refused save is not there");

    redis_config(&url, "maxmemory", "0");
    let room = session(&alone, &alone_cookie);
    room.insert("n", 3).await.unwrap();
    assert_eq!(room.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(session(&alone, &alone_cookie).get::<u64>("n").await.unwrap(), Some(3));
}

/// Runs redis-cli against the server on `port`; its output.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli comes with redis-server");
    assert!(output.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A TCP proxy on a free loopback port to the port `target` holds when a
/// connection opens (a DNS name a failover points elsewhere); connections
/// already open stay where they were.
async fn proxy(target: Arc<std::sync::Mutex<u16>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let to = *target.lock().unwrap();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

/// A failover behind one name (a managed Redis's endpoint): the replica is
/// promoted, the old primary demoted, and the name now reaches the new
/// primary, while the app's open connection still reaches the old one,
/// which answers every write `READONLY`. Before, every save failed for as
/// long as that connection stayed open; now the link reconnects and the
/// save goes to the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_behind_one_name_reaches_the_new_primary() {
    let (Some(old), Some(new)) = (RedisServer::start(), RedisServer::start()) else { return };
    let ready = |port: u16| async move {
        for _ in 0..100 {
            if redis_cli(port, &["ping"]).contains("PONG") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis on {port} does not answer");
    };
    ready(old.port()).await;
    ready(new.port()).await;
    // Each is a primary in turn: no 5 s wait (Redis' default) before it
    // sends a replica its first copy, which took all of the waits below.
    for port in [old.port(), new.port()] {
        redis_cli(port, &["config", "set", "repl-diskless-sync-delay", "0"]);
    }
    redis_cli(new.port(), &["replicaof", "127.0.0.1", &old.port().to_string()]);
    let target = Arc::new(std::sync::Mutex::new(old.port()));
    let url = format!("redis://127.0.0.1:{}/", proxy(target.clone()).await);
    let store = Store::cache_only(harness::redis_cache_at(&url), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (cookie, _) = start(&store, &config).await;
    // The replica has the session before the failover (15 s at most: a
    // loaded machine's fork and copy).
    for _ in 0..300 {
        if redis_cli(new.port(), &["dbsize"]).trim() != "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(redis_cli(new.port(), &["dbsize"]).trim(), "0", "the replica never caught up");

    redis_cli(new.port(), &["replicaof", "no", "one"]);
    redis_cli(old.port(), &["replicaof", "127.0.0.1", &new.port().to_string()]);
    // Once the old primary has synced from the new one (reads through the
    // open connection see the session again), the name moves.
    for _ in 0..300 {
        if redis_cli(old.port(), &["info", "replication"]).contains("master_link_status:up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(redis_cli(old.port(), &["info", "replication"]).contains("master_link_status:up"));
    *target.lock().unwrap() = new.port();
    for n in 2..5 {
        let session = Session::new(store.clone(), config.clone(), Some(&cookie));
        session.insert("n", n).await.unwrap();
        let saved = session.save().await.map(|outcome| outcome.status).map_err(|error| error.to_string());
        assert_eq!(saved, Ok(SaveStatus::Saved), "save {n}, after the failover");
        let read = Session::new(store.clone(), config.clone(), Some(&cookie));
        assert_eq!(read.get::<u64>("n").await.unwrap(), Some(n), "read back from the new primary");
    }
}

/// Connections the server on `port` has accepted since it started.
fn connections_received(port: u16) -> u64 {
    let info = redis_cli(port, &["info", "stats"]);
    let line = info.lines().find_map(|line| line.strip_prefix("total_connections_received:"));
    line.expect("INFO stats names it").trim().parse().unwrap()
}

/// A URL that names a replica for good (a mistake, not a failover): every
/// write fails with the replica's own message, and the link does not open
/// a connection for each (it tries a new one at most once a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_naming_a_replica_fails_writes_without_a_connection_each() {
    let (Some(primary), Some(replica)) = (RedisServer::start(), RedisServer::start()) else { return };
    redis_cli(primary.port(), &["config", "set", "repl-diskless-sync-delay", "0"]);
    redis_cli(replica.port(), &["replicaof", "127.0.0.1", &primary.port().to_string()]);
    let store = Store::cache_only(harness::redis_cache_at(&replica.url()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let before = connections_received(replica.port());
    for n in 0..30 {
        let session = Session::new(store.clone(), config.clone(), None);
        session.insert("n", n).await.unwrap();
        let error = session.save().await.expect_err("a replica takes no writes");
        assert!(error.to_string().contains("read only replica"), "{error}");
    }
    // Less the INFO call of this count.
    let opened = connections_received(replica.port()) - before - 1;
    assert!(opened <= 3, "{opened} connections opened for 30 refused saves");
}

/// `contrib/redis/redis-cache.conf` is a file redis-server starts from, and
/// a Redis run from it keeps nothing on disk, whatever came before it.
#[test]
fn a_redis_run_from_the_shipped_cache_config_keeps_nothing_on_disk() {
    if !harness::redis_server::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Redis' own defaults, which keep snapshots, then the shipped file.
    let config = dir.path().join("redis.conf");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/redis/redis-cache.conf");
    std::fs::write(&config, format!("save 3600 1\nappendonly yes\ninclude {}\n", shipped.display())).unwrap();
    let port = harness::free_port();
    let (port_text, dir_text) = (port.to_string(), dir.path().display().to_string());
    let mut child =
        harness::redis_server::spawn(&[config.to_str().unwrap(), "--port", &port_text, "--dir", &dir_text], port);
    assert_eq!(redis_cli(port, &["config", "get", "save"]).lines().nth(1).map(str::trim), Some(""));
    assert_eq!(redis_cli(port, &["config", "get", "appendonly"]).lines().nth(1), Some("no"));
    let _ = child.kill();
    let _ = child.wait();
}

/// Redis in front of SQLite restarted from a snapshot taken before two
/// logouts and a change (a crash of a Redis that keeps its data on disk):
/// the restored entries are of the epoch before, so the sessions ended
/// since stay ended, the one changed since reads as the database has it,
/// and the one untouched is served, and cached again. Before the epoch the
/// restored entries were served as they were (15 of 15 ended sessions
/// logged in again in a trial, RELIABILITY.md). The apps ask for the epoch
/// once a second, hence the pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_before_redis_restarts_from_a_snapshot_stay_ended() {
    let Some(mut redis) = RedisServer::start() else { return };
    let db = harness::sqlite().await;
    let cache = harness::redis_cache_at(&redis.url());
    let store = Store::tiered(db.database.clone().unwrap(), cache.clone(), StoreOptions::default());
    let config = Arc::new(harness::config());
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(start(&store, &config).await);
    }
    assert_eq!(redis_cli(redis.port(), &["save"]).trim(), "OK");
    for (cookie, _) in &sessions[..2] {
        let session = Session::new(store.clone(), config.clone(), Some(cookie));
        session.terminate().await.unwrap();
        session.save().await.unwrap();
    }
    let session = Session::new(store.clone(), config.clone(), Some(&sessions[2].0));
    session.insert("n", 2).await.unwrap();
    session.save().await.unwrap();

    redis.stop();
    redis.start_again();
    assert_ne!(redis_cli(redis.port(), &["dbsize"]).trim(), "0", "the snapshot was loaded");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let n = |cookie: &str| {
        let session = Session::new(store.clone(), config.clone(), Some(cookie));
        async move { session.get::<u64>("n").await.unwrap() }
    };
    for _round in 0..2 {
        assert_eq!(n(&sessions[0].0).await, None, "logged out before the restart");
        assert_eq!(n(&sessions[1].0).await, None, "logged out before the restart");
        assert_eq!(n(&sessions[2].0).await, Some(2), "changed before the restart");
        assert_eq!(n(&sessions[3].0).await, Some(1), "untouched");
    }
    // Served from the cache again, refilled in the new epoch.
    assert!(matches!(cache.get(&sessions[3].1).await.unwrap(), CacheLookup::Hit(_)));
    assert!(matches!(cache.get(&sessions[2].1).await.unwrap(), CacheLookup::Hit(r) if r.version > 1));
}

/// An entry with no epoch in front of a database (what a process of an
/// earlier release refills during a rolling deploy) is not trusted: the
/// session is read from the database, and the refill replaces the entry
/// with one of the current epoch, served from the cache from then on.
#[tokio::test]
async fn an_entry_of_no_epoch_in_front_of_a_database_is_replaced_by_the_databases_copy() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db: _db, redis, mut connection, store, config, value, id, key: _ } = tiered_session(server).await;
    let key = redis.key(&id);
    let () = redis::cmd("HDEL").arg(&key).arg("g").query_async(&mut connection).await.unwrap();
    let () = redis::cmd("HSET").arg(&key).arg("d:n").arg("99").query_async(&mut connection).await.unwrap();
    assert_eq!(redis.get(&id).await.unwrap(), CacheLookup::Miss, "taken for absent");
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1), "the database's copy");
    assert!(entry_fields(&mut connection, &key).await.contains(&"g".to_owned()), "refilled in the epoch");
    assert!(matches!(redis.get(&id).await.unwrap(), CacheLookup::Hit(r) if r.data["n"] == 1));
}

/// A least-privilege Redis user on `server`, limited to the keys of a
/// prefix of its own and refused `INFO` (`-@dangerous`): an admin
/// connection (to delete the user), the user's name, the prefix, its URL.
async fn user_without_info(server: &RedisServer) -> (redis::aio::MultiplexedConnection, String, String, String) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let user = format!("limited{}", harness::new_key().to_string().to_lowercase());
    let prefix = format!("{user}:");
    let keys = format!("~{prefix}*");
    let setuser = ["SETUSER", user.as_str(), "on", ">limitedpw", keys.as_str(), "+@all", "-@dangerous"];
    let () = redis::cmd("ACL").arg(&setuser[..]).query_async(&mut admin).await.unwrap();
    let url = server.url().replacen("redis://", &format!("redis://{user}:limitedpw@"), 1);
    (admin, user, prefix, url)
}

/// The epoch key of the prefix `redis` writes `id` under.
fn epoch_key(redis: &sessionctl::store::redis::RedisCache, id: &SessionKey) -> String {
    format!("{}epoch", redis.key(id).strip_suffix(&id.to_string()).unwrap())
}

/// A least-privilege Redis user, limited to the prefix's keys and refused
/// `INFO` (`-@dangerous`): the epoch lives under the prefix and does without
/// the run id (its key then expires a minute after the apps last ask), so
/// sessions are still served from the cache, with no cache error.
#[tokio::test]
async fn a_redis_user_limited_to_the_prefix_and_refused_info_still_caches() {
    let Some(server) = harness::redis_server::shared() else { return };
    let (mut admin, user, prefix, url) = user_without_info(server).await;
    let cache = sessionctl::store::redis::RedisCache::connect(&url, &prefix, Duration::from_secs(5)).unwrap();
    let db = harness::sqlite().await;
    let store = Store::tiered(db.db().clone(), Arc::new(cache.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&store, &config).await;
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    assert!(matches!(cache.get(&id).await.unwrap(), CacheLookup::Hit(_)), "served from the cache");
    assert_eq!(store.ops().cache_errors, 0);
    let stored: String = redis::cmd("GET").arg(format!("{prefix}epoch")).query_async(&mut admin).await.unwrap();
    assert!(stored.starts_with("- "), "no run id: {stored}");
    let ttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}epoch")).query_async(&mut admin).await.unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{ttl}");
    let () = redis::cmd("ACL").arg(&["DELUSER", user.as_str()][..]).query_async(&mut admin).await.unwrap();
}

/// The database restored from a backup under a running Redis, by other
/// means than `sessionctl import` (`pg_restore`, a file copy): the cache
/// still holds copies newer than the database and would serve them (a
/// write then lands in the database behind a copy that hides it).
/// Deleting the epoch key, as README's restore steps say, has the apps read
/// every session from the database again within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_database_restore_deleting_the_epoch_key_serves_what_was_restored() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db, redis, mut connection, store, config, value: kept, id: kept_id, key: _ } =
        tiered_session(server).await;
    let epoch_key = epoch_key(&redis, &kept_id);
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("VACUUM INTO ?").bind(backup.display().to_string()).execute(&pool).await.unwrap();

    let session = Session::new(store.clone(), config.clone(), Some(&kept));
    session.insert("n", 2).await.unwrap();
    session.save().await.unwrap();
    let (later, _) = start(&store, &config).await;
    // The restore: the table as the backup has it.
    let mut restore = pool.acquire().await.unwrap();
    sqlx::query("ATTACH ? AS backup").bind(backup.display().to_string()).execute(&mut *restore).await.unwrap();
    for step in ["BEGIN", "DELETE FROM sessions", "INSERT INTO sessions SELECT * FROM backup.sessions", "COMMIT"] {
        sqlx::query(sqlx::AssertSqlSafe(step)).execute(&mut *restore).await.unwrap();
    }
    let n = |cookie: &str| {
        let session = Session::new(store.clone(), config.clone(), Some(cookie));
        async move { session.get::<u64>("n").await.unwrap() }
    };
    assert_eq!(n(&kept).await, Some(2), "the cache's copy, newer than the restored row");

    let deleted: i64 = redis::cmd("DEL").arg(&epoch_key).query_async(&mut connection).await.unwrap();
    assert_eq!(deleted, 1, "{epoch_key}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(n(&kept).await, Some(1), "as restored");
    assert_eq!(n(&later).await, None, "created after the backup");
    // The entry of the epoch before, newer than the restored row, is kept
    // from refills for 5 s after it was written (a process still on that
    // epoch may have written it), then replaced: the session is cached again.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    assert_eq!(n(&kept).await, Some(1));
    assert!(matches!(redis.get(&kept_id).await.unwrap(), CacheLookup::Hit(r) if r.version == 1), "cached again");
    let session = Session::new(store.clone(), config.clone(), Some(&kept));
    session.insert("n", 5).await.unwrap();
    session.save().await.unwrap();
    assert_eq!(n(&kept).await, Some(5), "a write after the restore is read back");
}

/// The epoch key overwritten by hand with another type of value: the next
/// ask replaces it with a new epoch rather than fail every read after it.
#[tokio::test]
async fn an_epoch_key_overwritten_with_a_hash_is_replaced_not_an_error() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db: _db, redis, mut connection, store, config, value, id, key: _ } = tiered_session(server).await;
    let epoch_key = epoch_key(&redis, &id);
    let () = redis::cmd("DEL").arg(&epoch_key).query_async(&mut connection).await.unwrap();
    let () = redis::cmd("HSET").arg(&epoch_key).arg("by").arg("hand").query_async(&mut connection).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    assert!(matches!(redis.get(&id).await.unwrap(), CacheLookup::Hit(_)), "cached again, in a new epoch");
    assert_eq!(store.ops().cache_errors, 0);
    let kind: String = redis::cmd("TYPE").arg(&epoch_key).query_async(&mut connection).await.unwrap();
    assert_eq!(kind, "string");
}

/// Right after Redis restarts from a snapshot, many reads at once: the
/// first read fails on the broken connection, and from then on no read
/// uses the epoch from before the restart until the server has been asked
/// (before, one read asked while the others went on with the old token:
/// a review's trial served 15–26 ended sessions within 0.15 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_at_once_after_a_restart_from_a_snapshot_serve_no_ended_session() {
    let Some(mut redis) = RedisServer::start() else { return };
    let db = harness::sqlite().await;
    let cache = harness::redis_cache_at(&redis.url());
    let store = Store::tiered(db.database.clone().unwrap(), cache, StoreOptions::default());
    let config = Arc::new(harness::config());
    let mut ended = Vec::new();
    for _ in 0..8 {
        ended.push(start(&store, &config).await.0);
    }
    assert_eq!(redis_cli(redis.port(), &["save"]).trim(), "OK");
    for cookie in &ended {
        let session = Session::new(store.clone(), config.clone(), Some(cookie));
        session.terminate().await.unwrap();
        session.save().await.unwrap();
    }
    redis.stop();
    redis.start_again();
    let n = |cookie: String| {
        let session = Session::new(store.clone(), config.clone(), Some(&cookie));
        async move { session.get::<u64>("n").await.unwrap() }
    };
    assert_eq!(n(ended[0].clone()).await, None, "the first read, on the broken connection");
    let reads = (0..64).map(|i| tokio::spawn(n(ended[i % ended.len()].clone())));
    let served = futures_util::future::join_all(reads).await.into_iter().filter(|r| r.as_ref().unwrap().is_some());
    assert_eq!(served.count(), 0, "ended sessions served after the restart");
}

/// Entries the refill must not replace, and a quick write that must not be
/// reported saved into an entry no read takes: a live entry of another
/// epoch with a version above the database's (a process still on the epoch
/// before wrote it since this read) stays; a quick write then finds no
/// entry of its epoch and is saved to the database instead.
#[tokio::test]
async fn an_entry_of_another_epoch_newer_than_the_refill_stays_and_takes_no_quick_write() {
    let Some(server) = harness::redis_server::shared() else { return };
    let Tiered { db, redis, mut connection, store, config, value, id, key: _ } = tiered_session(server).await;
    let key = redis.key(&id);
    let () =
        redis::cmd("HSET").arg(&key).arg(&["g", "other", "v", "9"][..]).query_async(&mut connection).await.unwrap();
    let record = db.db().load(&id).await.unwrap().unwrap();
    redis.fill(&record).await.unwrap();
    let entry: Vec<Option<String>> =
        redis::cmd("HMGET").arg(&key).arg(&["g", "v"][..]).query_async(&mut connection).await.unwrap();
    assert_eq!(entry, [Some("other".to_owned()), Some("9".to_owned())], "not replaced by an older refill");

    let session = Session::new(store.clone(), config.clone(), Some(&value));
    session.insert_quick("seen", true).await.unwrap();
    let saved = session.save().await.unwrap();
    assert_eq!(saved.status, SaveStatus::Saved);
    let stored = db.db().load(&id).await.unwrap().unwrap();
    assert_eq!(stored.data.get("seen").and_then(|v| v.as_bool()), Some(true), "in the database, not lost");

    // The same in an earlier release's layout (its times in fields of
    // their own, no epoch), written just now: kept too.
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let earlier = [("v", "9"), ("c", now.as_str()), ("t", now.as_str()), ("e", "4102444800000")];
    let () = redis::pipe()
        .del(&key)
        .ignore()
        .hset_multiple(&key, &earlier)
        .ignore()
        .query_async(&mut connection)
        .await
        .unwrap();
    redis.fill(&stored).await.unwrap();
    let v: String = redis::cmd("HGET").arg(&key).arg("v").query_async(&mut connection).await.unwrap();
    assert_eq!(v, "9", "an earlier release's newer entry, not replaced by an older refill");

    // An older entry of another epoch is replaced.
    let () =
        redis::cmd("HSET").arg(&key).arg(&["g", "other", "v", "1"][..]).query_async(&mut connection).await.unwrap();
    redis.fill(&stored).await.unwrap();
    assert!(matches!(redis.get(&id).await.unwrap(), CacheLookup::Hit(r) if r.version == stored.version));
}

/// A URL naming a replica (or a primary demoted a moment ago) in front of a
/// database: the replica cannot store an epoch, so it serves its primary's,
/// and reads are served from its cache. Before, every read's ask was
/// refused `READONLY` and went to the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_front_of_a_database_serves_its_primarys_epoch() {
    let (Some(primary), Some(replica)) = (RedisServer::start(), RedisServer::start()) else { return };
    redis_cli(primary.port(), &["config", "set", "repl-diskless-sync-delay", "0"]);
    redis_cli(replica.port(), &["replicaof", "127.0.0.1", &primary.port().to_string()]);
    let db = harness::sqlite().await;
    let prefix = format!("replica{}:", std::process::id());
    let connect = |url: String| sessionctl::store::redis::RedisCache::connect(&url, &prefix, Duration::from_secs(5));
    let (on_primary, on_replica) = (connect(primary.url()).unwrap(), connect(replica.url()).unwrap());
    let writer = Store::tiered(db.db().clone(), Arc::new(on_primary), StoreOptions::default());
    let reader = Store::tiered(db.db().clone(), Arc::new(on_replica.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, id) = start(&writer, &config).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while redis_cli(replica.port(), &["exists", &on_replica.key(&id)]).trim() != "1" {
        assert!(std::time::Instant::now() < deadline, "the replica never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..3 {
        let session = Session::new(reader.clone(), config.clone(), Some(&value));
        assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    }
    assert!(matches!(on_replica.get(&id).await.unwrap(), CacheLookup::Hit(_)), "a hit on the replica");
    assert_eq!(reader.ops().cache_errors, 0);
}

/// Apps under a Redis user that may run `INFO` and under one that may not
/// (a canary, or the admin tool, with a least-privilege user) share one
/// epoch: before, each took the other's for a restart and started a new
/// one, in turn, so entries kept reading as absent (17 epochs in 8 s, 103
/// stale reads in 15 s in a review's trial).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_with_and_without_info_share_one_epoch() {
    let Some(server) = harness::redis_server::shared() else { return };
    let (mut admin, user, prefix, limited_url) = user_without_info(server).await;
    let connect = |url: &str| sessionctl::store::redis::RedisCache::connect(url, &prefix, Duration::from_secs(5));
    let (full, limited) = (connect(&server.url()).unwrap(), connect(&limited_url).unwrap());
    let db = harness::sqlite().await;
    let one = Store::tiered(db.db().clone(), Arc::new(full.clone()), StoreOptions::default());
    let other = Store::tiered(db.db().clone(), Arc::new(limited.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (_, by_full) = start(&one, &config).await;
    let (_, by_limited) = start(&other, &config).await;
    // The key, stored by an app that cannot tell the run id, then adopted
    // by one that can, keeps a lifetime, which the first does not renew:
    // without the second (an admin tool run once) it lapses, and a restart
    // is told apart again.
    let epoch_key = format!("{prefix}epoch");
    let pttl = |mut admin: redis::aio::MultiplexedConnection| {
        let key = epoch_key.clone();
        async move {
            let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut admin).await.unwrap();
            ttl
        }
    };
    for round in 0..2 {
        for (cache, name) in [(&full, "with INFO"), (&limited, "without")] {
            for id in [&by_full, &by_limited] {
                let lookup = cache.get(id).await.unwrap();
                assert!(matches!(lookup, CacheLookup::Hit(_)), "round {round}, {name}: {lookup:?}");
            }
        }
        let before = pttl(admin.clone()).await;
        assert!(before > 0, "round {round}: a lifetime");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let () = limited.get(&by_full).await.map(drop).unwrap();
        let after = pttl(admin.clone()).await;
        assert!(after > 0 && after <= before - 1000, "round {round}: not renewed ({before} → {after})");
    }
    // Once no app that cannot tell has asked for a minute (its mark lapsed),
    // an app that can takes the lifetime off: no new epoch on a quiet night.
    let () = redis::cmd("DEL").arg(format!("{prefix}epoch:untold")).query_async(&mut admin).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let () = full.get(&by_full).await.map(drop).unwrap();
    assert_eq!(pttl(admin.clone()).await, -1, "no lifetime without the mark");
    let () = redis::cmd("ACL").arg(&["DELUSER", user.as_str()][..]).query_async(&mut admin).await.unwrap();
}

/// A server at its memory limit (`noeviction`) that needs a new epoch (as
/// after a restart from a full snapshot) can still start one: the stale
/// key goes first. Before, its `SET` was refused and every read went to
/// the database until there was room.
#[tokio::test]
async fn a_server_at_its_memory_limit_can_start_a_new_epoch() {
    let Some(redis) = RedisServer::start() else { return };
    let db = harness::sqlite().await;
    let cache = sessionctl::store::redis::RedisCache::connect(&redis.url(), "full:", Duration::from_secs(5)).unwrap();
    let store = Store::tiered(db.db().clone(), Arc::new(cache.clone()), StoreOptions::default());
    let config = Arc::new(harness::config());
    let (value, _) = start(&store, &config).await;
    // The epoch of a server that is no more, then no room left.
    redis_cli(redis.port(), &["set", "full:epoch", "0123456789abcdef0123456789abcdef01234567 stale1234567"]);
    let info = redis_cli(redis.port(), &["info", "memory"]);
    let used: u64 = info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    redis_cli(redis.port(), &["config", "set", "maxmemory", &(used / 2).to_string()]);
    let refused = redis_cli(redis.port(), &["set", "full:other", "x"]);
    assert!(refused.starts_with("OOM"), "at its limit: {refused}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let session = Session::new(store.clone(), config.clone(), Some(&value));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    let run = redis_cli(redis.port(), &["info", "server"]);
    let run = run.lines().find_map(|l| l.strip_prefix("run_id:")).unwrap().trim().to_owned();
    let stored = redis_cli(redis.port(), &["get", "full:epoch"]);
    assert!(stored.starts_with(&run), "a new epoch, of this server: {stored}");
    redis_cli(redis.port(), &["config", "set", "maxmemory", "0"]);
}
