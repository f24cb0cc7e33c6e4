//! Session ids hashed at rest (issue 14 §1): no tier, export or listing
//! holds the id a cookie carries; the admin tool takes an id, a key or a
//! cookie; databases and export files from before are upgraded in place.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use sessionctl::record::now;
use sessionctl::store::MOVE_TO_KEYS;
use sessionctl::{DatabaseTier, Session, SessionConfig, SessionId, SessionKey};

use crate::cli::Run;
use crate::harness::{self, TestDb};

const SECRET: &[u8] = b"test key 0123456789 0123456789 0123456789";

/// A logged-in session made through the library, as a request would: its
/// id (from the cookie) and key.
async fn login(db: &TestDb, user: &str) -> (SessionId, SessionKey, String) {
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.set_user_id(Some(user.to_owned())).await.unwrap();
    session.insert("cart", json!(["tea"])).await.unwrap();
    let outcome = session.save().await.unwrap();
    let cookie = match outcome.cookie {
        sessionctl::CookieUpdate::Set { value, .. } => value,
        other => panic!("a new session sets its cookie, not {other:?}"),
    };
    let id = session.id().await.unwrap().unwrap();
    let key = session.key().await.unwrap().unwrap();
    (id, key, cookie)
}

/// What a request with `cookie` finds in the session.
async fn cart_of(db: &TestDb, cookie: &str) -> Option<Value> {
    let session = Session::new(db.store.clone(), Arc::new(harness::config()), Some(cookie));
    session.get_value("cart").await.unwrap()
}

/// Every session row as text, as an SQL dump would hold them.
async fn rows_as_text(db: &TestDb) -> String {
    if db.url.starts_with("sqlite:") {
        let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
        let rows: Vec<String> = sqlx::query_scalar("SELECT id || data || coalesce(user_id, '') FROM sessions")
            .fetch_all(database.pool())
            .await
            .unwrap();
        return rows.join("\n");
    }
    database_dump(db).await
}

/// Every key and value on the Redis server, as one text.
async fn redis_dump() -> String {
    let server = harness::redis_server::shared().expect("checked by the caller");
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(&mut connection).await.unwrap();
    let mut dump = keys.join("\n");
    for key in keys {
        let value: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query_async(&mut connection).await.unwrap();
        dump.push_str(&String::from_utf8_lossy(&value.unwrap_or_default()));
    }
    dump
}

/// The database as a dump would hold it: the SQLite file and its WAL, or
/// every PostgreSQL row as text.
async fn database_dump(db: &TestDb) -> String {
    if db.url.starts_with("sqlite:") {
        let path = db.url.trim_start_matches("sqlite://");
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT s::text FROM sessions AS s").fetch_all(&pool).await.unwrap();
    rows.join("\n")
}

async fn nothing_at_rest_yields_the_cookies_id(db: TestDb, redis: bool) {
    let (id, key, cookie) = login(&db, "alice").await;
    assert_eq!(key, SessionKey::of(&id), "stored under the digest of the cookie's id");
    assert!(cookie.contains(id.as_str()), "the cookie carries the id itself");
    assert_eq!(cart_of(&db, &cookie).await, Some(json!(["tea"])), "and finds its session");

    let dump = database_dump(&db).await;
    assert!(dump.contains(key.as_str()), "the dump holds the key (the check can fail)");
    assert!(!dump.contains(id.as_str()), "the database holds the id");
    if redis {
        let dump = redis_dump().await;
        assert!(dump.contains(key.as_str()), "Redis holds the key");
        assert!(!dump.contains(id.as_str()), "Redis holds the id");
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &db.url);
    for args in [&["export"][..], &["list", "--output", "json"], &["show", id.as_str(), "--output", "json"]] {
        let out = cli.ok(args);
        assert!(out.contains(key.as_str()) && !out.contains(id.as_str()), "{args:?}: {out}");
    }
}

#[tokio::test]
async fn nothing_at_rest_yields_the_cookies_id_on_sqlite_behind_redis() {
    let Some(db) = harness::redis_sqlite().await else { return };
    nothing_at_rest_yields_the_cookies_id(db, true).await;
}

#[tokio::test]
async fn nothing_at_rest_yields_the_cookies_id_on_postgres_behind_redis() {
    let Some(db) = harness::redis_postgres().await else { return };
    nothing_at_rest_yields_the_cookies_id(db, true).await;
}

#[tokio::test]
async fn nothing_at_rest_yields_the_cookies_id_on_sqlite_behind_the_in_process_cache() {
    nothing_at_rest_yields_the_cookies_id(harness::memory_sqlite().await, false).await;
}

/// `show`, `edit`, `expire`, `delete` and `regenerate` take the id a cookie
/// carries, the stored key `list` prints, or the cookie itself.
#[tokio::test]
async fn the_admin_tool_takes_an_id_a_key_or_a_cookie() {
    let db = harness::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &db.url).with("SESSIONCTL_SECRET", &String::from_utf8_lossy(SECRET));
    let (id, key, cookie) = login(&db, "bob").await;
    for name in [id.as_str(), key.as_str(), cookie.as_str()] {
        let doc = cli.json(&["show", name]);
        assert_eq!(doc["session"]["id"], key.as_str(), "{name}: {doc}");
    }
    cli.ok(&["edit", id.as_str(), "--set", "n=1"]);
    cli.ok(&["edit", &cookie, "--set", "m=2"]);
    let data = &cli.json(&["show", key.as_str()])["session"]["data"];
    assert_eq!((data["n"].as_i64(), data["m"].as_i64()), (Some(1), Some(2)), "{data}");

    // regenerate by id: the new cookie it prints finds the session, the old does not.
    let doc = cli.json(&["regenerate", id.as_str()]);
    let new_key = doc["id"].as_str().unwrap().to_owned();
    let new_cookie = doc["cookie"].as_str().unwrap().to_owned();
    assert_eq!(new_key.len(), 32, "{doc}");
    assert_eq!(cart_of(&db, &new_cookie).await, Some(json!(["tea"])));
    assert_eq!(cart_of(&db, &cookie).await, None);
    assert!(!new_cookie.contains(&new_key), "the cookie carries the new id, not its key");

    let (id2, key2, cookie2) = login(&db, "bob").await;
    cli.ok(&["expire", &cookie2]);
    assert_eq!(cart_of(&db, &cookie2).await, None, "expired");
    let doc = cli.json(&["delete", id2.as_str(), &new_key, "-y"]);
    assert_eq!(doc["deleted"].as_array().map(Vec::len), Some(2), "{doc}");
    assert!(db.stored(&key2).await.is_none() && db.stored(&SessionKey::parse(&new_key).unwrap()).await.is_none());
    let stderr = cli.fails(&["show", "abc"], 2);
    assert!(stderr.contains("neither a session id"), "{stderr}");
}

/// Rows stored under their id, as a database written before ids were
/// hashed holds them: `n` sessions, every third with a user; returns the ids.
async fn rows_under_their_ids(db: &TestDb, n: usize) -> Vec<SessionId> {
    let ids = insert_under_ids(db, n).await;
    if db.url.starts_with("sqlite:") {
        let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
        for sql in ["DELETE FROM _sqlx_migrations WHERE version = 6", "DROP INDEX sessions_under_ids"] {
            sqlx::query(sql).execute(database.pool()).await.unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        for sql in ["DELETE FROM _sqlx_migrations WHERE version = 5", "DROP INDEX sessions_under_ids"] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
    ids
}

/// `n` sessions stored under their id, as an app of an older build writes
/// them, every third with a user.
async fn insert_under_ids(db: &TestDb, n: usize) -> Vec<SessionId> {
    let ids: Vec<SessionId> = (0..n).map(|_| SessionId::generate()).collect();
    let texts: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
    let now_ms = now().timestamp_millis();
    if db.url.starts_with("sqlite:") {
        let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
             SELECT value, json_object('cart', json_array('tea'), 'n', key),
                    CASE WHEN key % 3 = 0 THEN 'user' || key END, ?1, ?1, ?1 + 3600000, 1
             FROM json_each(?2)",
        )
        .bind(now_ms)
        .bind(serde_json::to_string(&texts).unwrap())
        .execute(database.pool())
        .await
        .unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
             SELECT t.id, jsonb_build_object('cart', jsonb_build_array('tea'), 'n', t.n),
                    CASE WHEN t.n % 3 = 0 THEN 'user' || t.n END, now(), now(), now() + interval '1 hour', 1
             FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)",
        )
        .bind(&texts)
        .execute(&pool)
        .await
        .unwrap();
    }
    ids
}

/// A database from before ids were hashed: the admin tool asks for
/// `migrate`; `migrate` moves every row to its key in batches, resumes
/// after an interruption, keeps users' sessions findable, and every cookie
/// issued before still finds its session.
async fn migrate_moves_sessions_stored_under_their_id(db: TestDb) {
    let ids = rows_under_their_ids(&db, 12_000).await;
    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &db.url);
    let stderr = cli.fails(&["list"], 1);
    assert!(stderr.contains("sessionctl migrate"), "{stderr}");
    assert!(cli.fails(&["migrate", "--check"], 1).contains("pending"));

    // Interrupted after its first batch: the schema step is applied, the
    // rows partly moved. The admin tool lists the moved ones, says what is
    // left to do, and refuses an export that would leave sessions out.
    let database: &Arc<dyn DatabaseTier> = db.db();
    database.migrate().await.unwrap();
    assert!(database.schema_status().await.unwrap().pending.contains(&MOVE_TO_KEYS));
    let moved = database.move_to_keys_batch(5_000).await.unwrap();
    assert_eq!(moved, 5_000);
    let listed = cli.run(&["list", "--output", "json"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    assert!(listed.status.success() && stderr.contains("sessionctl migrate"), "{stderr}");
    assert_eq!(stdout.lines().count(), 5_000, "the moved ones, in key order, once each");
    assert!(ids.iter().step_by(97).all(|id| !stdout.contains(id.as_str())), "list shows no id");
    let export = cli.run(&["export"]);
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(export.status.code() == Some(1) && export.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.lines().last().is_some_and(|l| l.starts_with("error:") && l.contains("sessionctl migrate")),
        "{stderr}"
    );

    let out = cli.ok(&["migrate"]);
    let rest = 12_000 - moved;
    assert!(out.contains(&format!("moved {rest} sessions")), "{out}");
    assert!(database.schema_status().await.unwrap().is_current());
    assert_eq!(db.count().await, 12_000, "no row lost or doubled");
    // No row holds an id. (Pages of the file can, until VACUUM: the
    // B-tree's interior keys on SQLite, dead row versions on PostgreSQL.)
    let rows = rows_as_text(&db).await;
    for id in ids.iter().step_by(97) {
        assert!(!rows.contains(id.as_str()), "{id} still in a row");
    }
    assert!(out.contains("VACUUM"), "migrate says how to clear the file too: {out}");
    if db.url.starts_with("sqlite:") {
        let database = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
        for sql in ["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            sqlx::query(sql).execute(database.pool()).await.unwrap();
        }
        let file = database_dump(&db).await;
        let windows: std::collections::HashSet<&[u8]> = file.as_bytes().windows(24).collect();
        assert!(ids.iter().all(|id| !windows.contains(id.as_str().as_bytes())), "an id left in the file after VACUUM");
    }
    let config = SessionConfig::new(harness::keys());
    for id in ids.iter().step_by(1_001) {
        let cookie = config.codec().encode_reference(id, now() + Duration::hours(1));
        assert_eq!(cart_of(&db, &cookie).await, Some(json!(["tea"])), "{id}'s cookie");
    }
    let doc = cli.json(&["revoke", "--user", "user3", "--dry-run"]);
    assert_eq!(doc["revoked"], 1, "the user index finds moved rows: {doc}");
    assert!(cli.ok(&["migrate"]).contains("schema up to date"), "a second run moves nothing");

    // An app of the older build still running writes sessions under their
    // id after the move: the database says so again, and the next
    // `migrate` moves them.
    let late = insert_under_ids(&db, 3).await;
    let check = cli.run(&["migrate", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.contains("pending move sessions stored under their id"), "{stdout}");
    // Changes by key would miss them (and `migrate` would bring back what
    // a revoke seemed to remove): refused until they are moved.
    let stderr = cli.fails(&["revoke", "--user", "user3", "-y"], 1);
    assert!(stderr.contains("run `sessionctl migrate` first"), "{stderr}");
    // This build finds one through its cookie meanwhile, moving it.
    let cookie = config.codec().encode_reference(&late[1], now() + Duration::hours(1));
    assert_eq!(cart_of(&db, &cookie).await, Some(json!(["tea"])), "a session the old app just wrote");
    assert!(cli.ok(&["migrate"]).contains("moved 2 sessions"));
    let cookie = config.codec().encode_reference(&late[0], now() + Duration::hours(1));
    assert_eq!(cart_of(&db, &cookie).await, Some(json!(["tea"])));
    assert!(database.schema_status().await.unwrap().is_current());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_sessions_stored_under_their_id_on_sqlite() {
    migrate_moves_sessions_stored_under_their_id(harness::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_sessions_stored_under_their_id_on_postgres() {
    let Some(db) = harness::postgres().await else { return };
    migrate_moves_sessions_stored_under_their_id(db).await;
}

/// An app opening a database whose rows are not all moved finishes the
/// move itself (apps upgrade what is pending), as `migrate` would.
#[tokio::test]
async fn an_app_opening_the_database_finishes_the_move() {
    let db = harness::sqlite().await;
    let ids = rows_under_their_ids(&db, 300).await;
    let store = sessionctl::StoreConfig::new().with_database_url(db.url.clone()).open().await.unwrap();
    let config = SessionConfig::new(harness::keys());
    let cookie = config.codec().encode_reference(&ids[7], now() + Duration::hours(1));
    let session = Session::new(store, Arc::new(harness::config()), Some(&cookie));
    assert_eq!(session.get_value("cart").await.unwrap(), Some(json!(["tea"])));
    assert!(db.db().schema_status().await.unwrap().is_current());
}

/// Export files written before ids were hashed carry ids: `import` stores
/// them under their keys, and their cookies find them.
#[tokio::test]
async fn import_reads_files_written_before_ids_were_hashed() {
    let db = harness::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let id = SessionId::generate();
    let expires = (now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let created = now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let line = format!(
        r#"{{"created_at":"{created}","data":{{"cart":["tea"]}},"expires_at":"{expires}","id":"{id}","updated_at":"{created}","user_id":"carol","version":4}}"#
    );
    let file = dir.path().join("old.jsonl");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let cli = Run::new(dir.path(), &db.url);
    cli.ok(&["import", file.to_str().unwrap()]);
    let key = SessionKey::of(&id);
    assert_eq!(db.stored(&key).await.map(|r| r.version), Some(4));
    let cookie = SessionConfig::new(harness::keys()).codec().encode_reference(&id, now() + Duration::hours(1));
    assert_eq!(cart_of(&db, &cookie).await, Some(json!(["tea"])));
    let export = cli.ok(&["export"]);
    assert!(export.contains(key.as_str()) && !export.contains(id.as_str()), "{export}");
}

/// A cookie-only session issued before ids were hashed carries its id in
/// its envelope: the browser keeps it (a cart, a CSRF token) after the
/// upgrade, and a login moves it into the store as any other.
#[tokio::test]
async fn a_cookie_only_session_from_before_is_kept() {
    let db = harness::sqlite().await;
    let expires = now() + Duration::hours(1);
    let envelope = json!({
        "v": 1, "version": 2, "id": SessionId::generate().as_str(),
        "created_at": now().timestamp_millis(), "updated_at": now().timestamp_millis(),
        "expires_at": expires.timestamp_millis(), "data": {"cart": ["tea"]},
    });
    let secret = b"test key 0123456789 0123456789 0123456789";
    let cookie = crate::fuzz_corpus::checks::seal_inline(
        secret,
        &expires.timestamp().to_string(),
        envelope.to_string().as_bytes(),
    );
    let config = Arc::new(SessionConfig::new(harness::keys()));
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(session.get_value("cart").await.unwrap(), Some(json!(["tea"])), "the old cookie still reads");
    session.set_user_id(Some("dan".into())).await.unwrap();
    let outcome = session.save().await.unwrap();
    let sessionctl::CookieUpdate::Set { value, .. } = outcome.cookie else { panic!("a login sets a cookie") };
    let key = session.key().await.unwrap().unwrap();
    assert_eq!(key, SessionKey::of(&session.id().await.unwrap().unwrap()));
    assert!(db.stored(&key).await.is_some(), "stored under the key of a fresh id");
    assert_eq!(cart_of(&db, &value).await, Some(json!(["tea"])));
}

/// `migrate --redis-url` removes what an older build cached under a
/// session id, and leaves entries under keys (and foreign keys) alone.
#[tokio::test]
async fn migrate_removes_entries_cached_under_an_id() {
    let Some(redis) = harness::redis_server::shared() else { return };
    let db = harness::sqlite().await;
    let prefix = format!("hashed{}:", std::process::id());
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let (id, key) = SessionKey::generate();
    let under_id = format!("{prefix}{id}");
    let under_key = format!("{prefix}{key}");
    let foreign = format!("other{}:{}", std::process::id(), SessionId::generate());
    for name in [&under_id, &under_key, &foreign] {
        let () = redis::cmd("SET").arg(name).arg("x").query_async(&mut connection).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &db.url)
        .with("SESSIONCTL_REDIS_URL", &redis.url())
        .with("SESSIONCTL_REDIS_PREFIX", &prefix);
    let out = cli.ok(&["migrate"]);
    assert!(out.contains("removed 1 entries"), "{out}");
    let exists = |name: String| {
        let client = client.clone();
        async move {
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("EXISTS").arg(name).query_async::<i64>(&mut connection).await.unwrap()
        }
    };
    assert_eq!(
        (exists(under_id).await, exists(under_key).await, exists(foreign).await),
        (0, 1, 1),
        "only the entry under an id goes"
    );
}
