//! The session handle on the embedded default: cookie-only sessions and
//! their migration across the threshold, bad cookies, database failures.

use std::sync::Arc;

use serde_json::json;
use sessionctl::{CookieUpdate, SaveStatus, Session, SessionConfig};

use crate::harness;

fn set_value(outcome: &sessionctl::SaveOutcome) -> String {
    match &outcome.cookie {
        CookieUpdate::Set { value, .. } => value.clone(),
        other => panic!("expected a Set-Cookie, got {other:?}"),
    }
}

async fn stored_count(db: &harness::TestDb) -> u64 {
    db.count().await
}

#[tokio::test]
async fn small_sessions_live_in_the_cookie_and_move_to_the_store_when_they_grow() {
    let db = harness::sqlite().await;
    let config = Arc::new(SessionConfig::new(harness::keys()).with_cookie_only_threshold(600));

    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let outcome = session.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::CookieOnly);
    let cookie = set_value(&outcome);
    assert!(cookie.starts_with("2."), "an encrypted cookie-only value");
    assert_eq!(stored_count(&db).await, 0, "nothing stored for a small session");
    let before = db.store.ops();

    // Grows past the threshold: moves to the store, cookie becomes a reference.
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    assert_eq!(db.store.ops() - before, Default::default(), "reading a cookie-only session does no I/O");
    session.insert("blob", "x".repeat(800)).await.unwrap();
    let outcome = session.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::Saved);
    let cookie = set_value(&outcome);
    assert!(cookie.starts_with("1."));
    assert_eq!(stored_count(&db).await, 1);

    // Shrinks again: back into the cookie, and the stored copy is removed.
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(session.get::<i32>("n").await.unwrap(), Some(1));
    session.remove("blob").await.unwrap();
    let outcome = session.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::CookieOnly);
    let cookie = set_value(&outcome);
    assert_eq!(stored_count(&db).await, 0, "the stored copy is cleaned up");

    let session = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(session.data().await.unwrap(), json!({"n": 1}).as_object().cloned().unwrap());
}

#[tokio::test]
async fn sessions_with_a_user_are_always_stored() {
    let db = harness::sqlite().await;
    let config = Arc::new(SessionConfig::new(harness::keys()));
    let session = Session::new(db.store.clone(), config, None);
    session.insert("n", 1).await.unwrap();
    session.set_user_id(Some("alice".into())).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(stored_count(&db).await, 1, "revocable, so server-side");
}

#[tokio::test]
async fn bad_cookies_give_no_session_and_a_fresh_one_only_on_write() {
    let db = harness::sqlite().await;
    let config = Arc::new(harness::config());
    let other_keys =
        SessionConfig::new(sessionctl::Keys::new([b"some other key of at least 32 bytes....".as_slice()]).unwrap());
    let forged = other_keys
        .codec()
        .encode_reference(&sessionctl::SessionId::generate(), chrono::Utc::now() + chrono::Duration::hours(1));
    for bad in ["", "garbage", "1.a.b.c", forged.as_str(), &"A".repeat(10_000)] {
        let session = Session::new(db.store.clone(), config.clone(), Some(bad));
        assert_eq!(session.get_value("n").await.unwrap(), None);
        let outcome = session.save().await.unwrap();
        assert_eq!(outcome.status, SaveStatus::Unchanged);
        assert_eq!(outcome.cookie, CookieUpdate::Remove, "a bad cookie is cleared");

        let session = Session::new(db.store.clone(), config.clone(), Some(bad));
        session.insert("n", 1).await.unwrap();
        let outcome = session.save().await.unwrap();
        assert_eq!(outcome.status, SaveStatus::Saved, "a write starts a fresh session");
        assert_ne!(set_value(&outcome), bad);
    }
}

#[tokio::test]
async fn a_cookie_for_a_deleted_session_is_cleared() {
    let db = harness::sqlite().await;
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let cookie = set_value(&session.save().await.unwrap());
    let id = session.key().await.unwrap().unwrap();
    db.store.delete(&id).await.unwrap();

    let session = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(session.get_value("n").await.unwrap(), None);
    assert_eq!(session.save().await.unwrap().cookie, CookieUpdate::Remove);
}

#[tokio::test]
async fn database_errors_fail_the_request_instead_of_an_empty_session() {
    let db = harness::sqlite().await;
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("cart", json!(["book"])).await.unwrap();
    let cookie = set_value(&session.save().await.unwrap());

    let pool = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    sqlx::query("ALTER TABLE sessions RENAME TO sessions_gone").execute(pool.pool()).await.unwrap();

    let session = Session::new(db.store.clone(), config, Some(&cookie));
    let error = session.get_value("cart").await.unwrap_err();
    assert!(error.is_database(), "{error}");
    assert!(error.to_string().contains("loading a session"), "{error}");
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let db = harness::sqlite().await;
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let cookie = set_value(&session.save().await.unwrap());

    let pool = sessionctl::store::sqlite::SqliteDatabase::connect(&db.url).await.unwrap();
    for (data, expires) in [("not json", 4102444800000i64), ("[1,2]", 4102444800000), ("{}", i64::MAX)] {
        sqlx::query("UPDATE sessions SET data = ?, expires_at = ?")
            .bind(data)
            .bind(expires)
            .execute(pool.pool())
            .await
            .unwrap();
        let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
        let error = session.get_value("n").await.unwrap_err();
        assert!(error.to_string().contains("corrupt"), "{error}");
    }
}

#[tokio::test]
async fn quick_writes_persist_and_mixing_persists_everything() {
    let db = harness::sqlite().await;
    let config = Arc::new(harness::config());
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("n", 1).await.unwrap();
    let cookie = set_value(&session.save().await.unwrap());

    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    session.insert_quick("seen", true).await.unwrap();
    session.insert("n", 2).await.unwrap();
    assert_eq!(session.pop_quick::<bool>("missing").await.unwrap(), None);
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);

    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.data().await.unwrap(), json!({"n": 2, "seen": true}).as_object().cloned().unwrap());
}

#[test]
fn import_lines_the_library_would_refuse_are_refused() {
    let line = |version: &str, user: &str, data: &str| {
        format!(
            r#"{{"id":"{}","user_id":{user},"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","expires_at":"2030-01-01T00:00:00Z","version":{version},"data":{data}}}"#,
            crate::harness::new_key()
        )
    };
    let parse = sessionctl::admin::ExportLine::parse;
    assert!(parse(&line("3", "null", r#"{"a":1}"#)).is_ok());
    for bad in [
        line("9007199254740993", "null", "{}"),
        line("-1", "null", "{}"),
        line("1", r#""a\u0000b""#, "{}"),
        line("1", "null", r#"{"k":"x\u0000"}"#),
    ] {
        assert!(matches!(parse(&bad), Err(sessionctl::Error::InvalidInput(_))), "{bad}");
    }
}

/// Held by the tests that fault SQLite connections: the library retires
/// every pooled connection opened before a fault that can leave one
/// read-only, process-wide, so one such test would retire the other's.
static CONNECTION_FAULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every connection of the pool, held at once (eight), so a setting made
/// on each reaches them all.
async fn every_connection(
    database: &sessionctl::store::sqlite::SqliteDatabase,
) -> Vec<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(database.pool().acquire().await.unwrap());
    }
    held
}

/// Sets SQLite's page limit on every connection of the pool: `None` caps
/// the file at its size now, which fails the next write that grows it as a
/// full disk does.
async fn cap_pages(database: &sessionctl::store::sqlite::SqliteDatabase, pages: Option<i64>) {
    for mut connection in every_connection(database).await {
        let pages = match pages {
            Some(pages) => pages,
            None => sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *connection).await.unwrap(),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {pages}")))
            .execute(&mut *connection)
            .await
            .unwrap();
    }
}

/// An app on a fresh SQLite file, with one session whose cart each save
/// replaces with a slightly longer one: the database (for its pool), and
/// the save of number `n`.
async fn sqlite_app() -> (
    tempfile::TempDir,
    Arc<sessionctl::store::sqlite::SqliteDatabase>,
    impl Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SaveStatus, String>>>>,
) {
    use sessionctl::store::sqlite::SqliteDatabase;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let database =
        Arc::new(SqliteDatabase::connect_with(&url, std::time::Duration::from_secs(10), true).await.unwrap());
    sessionctl::DatabaseCore::migrate(&*database).await.unwrap();
    let store = sessionctl::Store::new(database.clone());
    let config = Arc::new(SessionConfig::new(harness::keys()));
    let first = Session::new(store.clone(), config.clone(), None);
    first.insert("cart", "x".repeat(20_000)).await.unwrap();
    let cookie = set_value(&first.save().await.unwrap());
    let save = move |n: usize| {
        let session = Session::new(store.clone(), config.clone(), Some(&cookie));
        Box::pin(async move {
            session.insert("cart", "x".repeat(20_000 + n)).await.unwrap();
            session.save().await.map(|outcome| outcome.status).map_err(|error| error.to_string())
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>
    };
    (dir, database, save)
}

/// A full disk fails the saves it meets, and only those: once there is
/// room again, every save goes through. Before, SQLite's own rollback of a
/// failed write left sqlx counting a transaction open on that connection,
/// which then refused every later save ("attempted to call begin_with at
/// non-zero transaction depth") until the app restarted.
#[tokio::test]
async fn saves_go_through_again_once_a_full_disk_has_room() {
    let _alone = CONNECTION_FAULTS.lock().await;
    let (_dir, database, save) = sqlite_app().await;
    cap_pages(&database, None).await;
    let mut failed = 0;
    for n in 1..=16 {
        // A connection the pool replaced has no cap (it is per connection),
        // where a disk would still be full: only the failures are checked.
        if let Err(error) = save(n).await {
            assert!(error.contains("full"), "{error}");
            failed += 1;
        }
    }
    assert!(failed >= 1, "the capped connections fail the saves: {failed} of 16 failed");
    cap_pages(&database, Some(1_073_741_823)).await;
    for n in 17..=48 {
        assert_eq!(save(n).await, Ok(SaveStatus::Saved), "save {n}, with room again");
    }
}

/// Connections SQLite opened read-only (a file it could not open for
/// writing: a filesystem remounted read-only after an error, an immutable
/// file, a WAL another user created) stay read-only for life, after the
/// file is writable again: every save on them failed ("attempt to write a
/// readonly database") until the pool retired them, 10 minutes idle or an
/// hour old. Simulated with `query_only`, which fails writes the same way;
/// the first such failure now retires the connections opened before it.
#[tokio::test]
async fn saves_go_through_again_once_connections_left_read_only_are_replaced() {
    let _alone = CONNECTION_FAULTS.lock().await;
    let (_dir, database, save) = sqlite_app().await;
    for mut connection in every_connection(&database).await {
        sqlx::query("PRAGMA query_only = 1").execute(&mut *connection).await.unwrap();
    }
    let error = save(1).await.expect_err("every connection is read-only");
    assert!(error.contains("readonly"), "{error}");
    for n in 2..=33 {
        assert_eq!(save(n).await, Ok(SaveStatus::Saved), "save {n}: the read-only connections are retired");
    }
}

/// A value of another type than the handler asks for, as a deploy that
/// changed a struct finds in every older session: a typed error naming the
/// key (it was "invalid configuration"), and a `pop` of it leaves it in the
/// session, where it was removed, and saved removed, before — a handler
/// that ignored the error lost the user's value.
#[tokio::test]
async fn a_value_of_another_type_is_a_typed_error_and_a_pop_of_it_loses_nothing() {
    let db = harness::sqlite().await;
    let config = Arc::new(SessionConfig::new(harness::keys()).with_cookie_only_threshold(0));
    let session = Session::new(db.store.clone(), config.clone(), None);
    session.insert("cart", json!({"items": [1, 2]})).await.unwrap();
    let cookie = set_value(&session.save().await.unwrap());

    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    match session.get::<u64>("cart").await {
        Err(sessionctl::Error::WrongType { key, .. }) => assert_eq!(key, "cart"),
        other => panic!("expected a WrongType error, got {other:?}"),
    }
    let popped = session.pop::<Vec<u64>>("cart").await;
    assert!(matches!(popped, Err(sessionctl::Error::WrongType { .. })), "{popped:?}");
    assert!(matches!(session.pop_quick::<String>("cart").await, Err(sessionctl::Error::WrongType { .. })));
    // The handler went on (the error ignored) and the request was saved.
    session.insert("seen", true).await.unwrap();
    session.save().await.unwrap();

    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(session.get::<serde_json::Value>("cart").await.unwrap(), Some(json!({"items": [1, 2]})));
    assert_eq!(session.pop::<serde_json::Value>("cart").await.unwrap(), Some(json!({"items": [1, 2]})));
    assert_eq!(session.get::<serde_json::Value>("cart").await.unwrap(), None, "a pop of the right type removes");

    // A value its type cannot serialize is the app's fault (not a 400).
    let tuples: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    match session.insert("grid", tuples).await {
        Err(sessionctl::Error::Unserializable { key, .. }) => assert_eq!(key, "grid"),
        other => panic!("expected Unserializable, got {other:?}"),
    }
    session.save().await.unwrap();
    let session = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(session.get::<serde_json::Value>("cart").await.unwrap(), None, "the pop was saved");
    assert_eq!(session.get::<bool>("seen").await.unwrap(), Some(true));
}
