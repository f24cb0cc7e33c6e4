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
