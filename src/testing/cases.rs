//! The cases of the conformance kit (see [`super`]): each takes fresh
//! [`Tiers`] and panics when the store behind them misbehaves.
//!
//! Where to look in a tier of your own when a case fails (the methods of
//! [`DatabaseCore`](crate::DatabaseCore), or of [`CacheTier`](crate::CacheTier)
//! for a cache):
//!
//! | case | most often |
//! | --- | --- |
//! | `insert_if_absent_never_overwrites` | `insert_if_absent` (cache: `create`) overwrote an existing id |
//! | `a_stale_whole_session_write_is_a_conflict` | `update` ignored the expected version, or answered `Updated` for a missing session; `load` hid an expired row |
//! | `a_key_change_never_revives_an_expired_session` | `patch` wrote into a session expired at `patch.updated_at` |
//! | `stale_save_after_delete_is_not_resurrected` | `patch` created a missing session |
//! | `writes_to_missing_sessions_create_nothing` | `update` or `rotate` of a missing session created it, or answered other than `Missing` |
//! | `a_rotation_onto_a_taken_id_changes_nothing` | `rotate` overwrote the new id instead of answering `IdTaken` |
//! | `regenerate_racing_a_write_keeps_both`, `regenerate_id_moves_data_and_deletes_old` | `rotate` ignored the expected version, or left the old id |
//! | `a_whole_session_conflict_is_reapplied` | `update` ignored the expected version |
//! | `concurrent_changes_to_different_keys_both_land`, `many_concurrent_writers_all_land`, `hundred_writers_…` | `patch` is not atomic: two patches of one session read the same copy |
//! | `concurrent_quick_writes_…`, `quick_and_normal_changes_…` | the cache's `patch` without `bump`, or `put_patched` |
//! | `versions_never_wrap_…` | a version past 2^53 accepted |
//! | `purge_…` | `purge_expired_batch` deleted a live row, or one refreshed during the walk |
//! | `delete_by_user_and_filters` | `delete_by_user`, or `scan`/`count` with a `Filter` |

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::{Tiers, cookie_of};
use crate::record::now;
use crate::store::{RotateOutcome, ScanCursor, UpdateOutcome};
use crate::{
    CookieUpdate, Error, ExpiryPolicy, Filter, Record, SaveStatus, Session, SessionConfig, SessionKey, StateFilter,
};

/// A record under `id` when it is a key (else a fresh one), holding `id`.
fn record(id: &str, expires_in: chrono::Duration, user: Option<&str>) -> Record {
    let mut record = super::record(user, expires_in, json!({"k": id}));
    if let Ok(key) = SessionKey::parse(id) {
        record.id = key;
    }
    record
}

/// Starts a session with some data and returns its cookie.
async fn start(db: &Tiers, config: &Arc<SessionConfig>, data: serde_json::Value) -> String {
    let session = Session::new(db.store.clone(), config.clone(), None);
    for (k, v) in data.as_object().unwrap() {
        session.insert(k, v).await.unwrap();
    }
    cookie_of(&session.save().await.unwrap())
}

/// Create load update delete.
pub async fn create_load_update_delete(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"cart": [1, 2]})).await;

    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(session.get::<Vec<i32>>("cart").await.unwrap(), Some(vec![1, 2]));
    session.insert("cart", vec![1, 2, 3]).await.unwrap();
    let saved = session.save().await.unwrap();
    assert_eq!(saved.status, SaveStatus::Saved);
    assert_eq!(saved.cookie, CookieUpdate::Keep, "a data change keeps the same cookie");

    let id = session.key().await.unwrap().unwrap();
    let stored = db.stored(&id).await.unwrap();
    assert_eq!(stored.data["cart"], json!([1, 2, 3]));
    assert_eq!(stored.version, 2);

    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    session.terminate().await.unwrap();
    let outcome = session.save().await.unwrap();
    assert_eq!((outcome.status, outcome.cookie), (SaveStatus::Terminated, CookieUpdate::Remove));
    db.assert_gone(&id).await;

    let session = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(session.get_value("cart").await.unwrap(), None, "a terminated session's cookie finds nothing");
}

/// Untouched and unchanged sessions do no writes.
pub async fn untouched_and_unchanged_sessions_do_no_writes(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let before = db.store.ops();

    let untouched = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(untouched.save().await.unwrap().status, SaveStatus::Unchanged);
    assert_eq!(db.store.ops() - before, Default::default(), "an untouched session does no I/O");

    let read_only = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(read_only.get::<i32>("n").await.unwrap(), Some(1));
    read_only.insert("n", 1).await.unwrap();
    assert_eq!(read_only.save().await.unwrap().status, SaveStatus::Unchanged);
    let ops = db.store.ops() - before;
    assert_eq!(ops.database + ops.cache, 1, "one load, no write: {ops:?}");

    let before = db.store.ops();
    let fresh = Session::new(db.store.clone(), config, None);
    assert_eq!(fresh.get_value("n").await.unwrap(), None);
    let outcome = fresh.save().await.unwrap();
    assert_eq!(
        (outcome.status, outcome.cookie),
        (SaveStatus::Unchanged, CookieUpdate::Keep),
        "no cookie until a write"
    );
    assert_eq!(db.store.ops() - before, Default::default(), "no cookie, no read, no write");
}

/// Insert if absent never overwrites.
pub async fn insert_if_absent_never_overwrites(db: Tiers) {
    let first = record("", chrono::Duration::hours(1), None);
    assert!(db.store.create(&first).await.unwrap());
    let mut second = first.clone();
    second.data = json!({"other": true}).as_object().cloned().unwrap().into();
    assert!(!db.store.create(&second).await.unwrap());
    assert_eq!(db.stored(&first.id).await.unwrap().data, first.data);
}

/// Concurrent changes to different keys both land.
pub async fn concurrent_changes_to_different_keys_both_land(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"shared": 0})).await;

    // Two requests load the same version, then save one after the other.
    let a = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    let b = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    a.insert("cart", json!(["book"])).await.unwrap();
    b.insert("theme", "dark").await.unwrap();
    b.remove("shared").await.unwrap();
    assert_eq!(a.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(b.save().await.unwrap().status, SaveStatus::Saved, "the stale save re-applies its own changes");

    let check = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(check.data().await.unwrap(), json!({"cart": ["book"], "theme": "dark"}).as_object().cloned().unwrap());

    // Same key: the last writer wins.
    let c = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    let d = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    c.insert("theme", "light").await.unwrap();
    d.insert("theme", "blue").await.unwrap();
    c.save().await.unwrap();
    d.save().await.unwrap();
    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.get::<String>("theme").await.unwrap().as_deref(), Some("blue"));
    assert_eq!(check.get_value("cart").await.unwrap(), Some(json!(["book"])));
}

/// Many concurrent writers all land.
pub async fn many_concurrent_writers_all_land(db: Tiers) {
    let mut config = super::config();
    config.max_save_attempts = 64;
    let config = Arc::new(config);
    let cookie = start(&db, &config, json!({"init": true})).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, config, cookie) = (db.store.clone(), config.clone(), cookie.clone());
        tasks.push(tokio::spawn(async move {
            let session = Session::new(store, config, Some(&cookie));
            session.insert(&format!("k{i}"), i).await.unwrap();
            session.save().await.unwrap().status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), SaveStatus::Saved);
    }
    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.keys().await.unwrap().len(), 17, "every writer's key is present");
}

/// `n` requests load one session, wait for each other, then each sets a
/// key (its own, or one shared key) and saves: with the default retry bound.
/// Every save must succeed; returns a reader of the session afterwards.
/// Every other request goes through a second `Store` over the same tiers
/// (another app process), so the tiers' own atomicity is what keeps the
/// changes, not one process combining them.
async fn hammer(db: &Tiers, n: usize, shared_key: bool, quick: bool) -> Session {
    let config = Arc::new(super::config());
    let cookie = start(db, &config, json!({"init": true})).await;
    let other_process = db.twin_store();
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = if i % 2 == 0 { db.store.clone() } else { other_process.clone() };
        let (config, cookie, barrier) = (config.clone(), cookie.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let session = Session::new(store, config, Some(&cookie));
            let key = if shared_key { "same".to_owned() } else { format!("k{i}") };
            assert_eq!(session.get::<bool>("init").await.unwrap(), Some(true));
            barrier.wait().await;
            if quick {
                session.insert_quick(&key, i).await.unwrap();
            } else {
                session.insert(&key, i).await.unwrap();
            }
            session.save().await.map(|outcome| outcome.status)
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().expect("no save fails"));
    }
    assert!(statuses.iter().all(|s| *s == SaveStatus::Saved), "{statuses:?}");
    Session::new(db.store.clone(), config, Some(&cookie))
}

/// Hundred writers of different keys all land without errors.
pub async fn hundred_writers_of_different_keys_all_land_without_errors(db: Tiers) {
    let check = hammer(&db, 100, false, false).await;
    let data = check.data().await.unwrap();
    let landed = (0..100).filter(|i| data.get(&format!("k{i}")) == Some(&json!(i))).count();
    assert_eq!(landed, 100, "every writer's key is present");
    assert_eq!(data.get("init"), Some(&json!(true)), "and what was there before");
}

/// Hundred writers of one key end with one of their values.
pub async fn hundred_writers_of_one_key_end_with_one_of_their_values(db: Tiers) {
    let check = hammer(&db, 100, true, false).await;
    let value = check.get::<i64>("same").await.unwrap().expect("one writer's value");
    assert!((0..100).contains(&value));
}

/// Concurrent quick writes to different keys all land.
pub async fn concurrent_quick_writes_to_different_keys_all_land(db: Tiers) {
    let check = hammer(&db, 500, false, true).await;
    let data = check.data().await.unwrap();
    let landed = (0..500).filter(|i| data.get(&format!("k{i}")) == Some(&json!(i))).count();
    assert_eq!(landed, 500, "every quick change reported saved is there");
    // A normal save persists them all.
    check.insert("final", true).await.unwrap();
    check.save().await.unwrap();
    if let Some(database) = &db.database {
        let id = check.key().await.unwrap().unwrap();
        let stored = database.load(&id).await.unwrap().unwrap();
        assert_eq!(stored.data.len(), 502, "quick keys persisted by the next normal save");
    }
}

/// Requests changing hundreds of keys at once, more than a Redis call
/// takes (the scripts send them in chunks): 450 set, then 450 changed and
/// 30 removed, then 450 changed by quick writes, then a normal save, then
/// 420 removed at once. Every change is served, and persisted.
pub async fn a_request_changing_hundreds_of_keys_lands_whole(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"a": 1})).await;
    let rounds: [(u32, std::ops::Range<u32>, std::ops::Range<u32>, bool); 3] =
        [(1, 0..450, 0..0, false), (2, 30..480, 0..30, false), (3, 30..480, 0..0, true)];
    for (round, set, removed, quick) in rounds {
        let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
        for i in set {
            let key = format!("k{i}");
            if quick {
                session.insert_quick(&key, round * 1000 + i).await.unwrap();
            } else {
                session.insert(&key, round * 1000 + i).await.unwrap();
            }
        }
        for i in removed {
            session.remove(&format!("k{i}")).await.unwrap();
        }
        assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved, "round {round}");
    }
    let expected = |data: &crate::record::Data| {
        (0..30).all(|i| !data.contains_key(&format!("k{i}")))
            && (30..450).all(|i| data.get(&format!("k{i}")) == Some(&json!(3000 + i)))
            && (450..480).all(|i| data.get(&format!("k{i}")) == Some(&json!(3000 + i)))
            && data.len() == 451
    };
    let served = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert!(expected(&served.data().await.unwrap()), "every change served");
    served.insert("a", 2).await.unwrap();
    served.save().await.unwrap();
    let id = served.key().await.unwrap().unwrap();
    let stored = db.stored(&id).await.unwrap().data;
    assert!(expected(&stored) && stored["a"] == json!(2), "every change persisted by the normal save");

    // More removals than one chunk of a script's call.
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    for i in 30..450 {
        session.remove(&format!("k{i}")).await.unwrap();
    }
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    let left = |data: &crate::record::Data| {
        data.len() == 31 && (450..480).all(|i| data.get(&format!("k{i}")) == Some(&json!(3000 + i)))
    };
    let served = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert!(left(&served.data().await.unwrap()), "420 removals served");
    assert!(left(&db.stored(&id).await.unwrap().data), "420 removals persisted");
}

/// Quick and normal changes in one request, then a quick change alone and a
/// normal one in a later request: on a store with quick writes (a cache in
/// front of a database) the quick-only change stays in the cache until the
/// next normal save persists it; every change reported saved is served.
pub async fn quick_and_normal_changes_mixed_in_one_request_all_persist(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"a": 1})).await;
    let both = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    both.insert_quick("views", 1).await.unwrap();
    both.insert("cart", json!(["pen"])).await.unwrap();
    assert_eq!(both.save().await.unwrap().status, SaveStatus::Saved);
    let id = both.key().await.unwrap().unwrap();
    let stored = db.stored(&id).await.unwrap();
    assert_eq!((stored.data.get("views"), stored.data.get("cart")), (Some(&json!(1)), Some(&json!(["pen"]))));

    let quick = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    quick.insert_quick("views", 2).await.unwrap();
    quick.save().await.unwrap();
    let served = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(served.get::<u32>("views").await.unwrap(), Some(2), "a quick change is served at once");
    if db.store.has_quick_writes() {
        assert_eq!(db.stored(&id).await.unwrap().data["views"], json!(1), "not written to the database yet");
    }
    let normal = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    normal.insert("theme", "dark").await.unwrap();
    normal.save().await.unwrap();
    let stored = db.stored(&id).await.unwrap();
    assert_eq!((stored.data["views"].clone(), stored.data["theme"].clone()), (json!(2), json!("dark")));
}

/// Two requests replace the whole session (`clear` then set) at once: the
/// second to save meets a version conflict, reloads, re-applies its own
/// changes and wins, without an error.
pub async fn a_whole_session_conflict_is_reapplied(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"a": 1, "b": 2})).await;
    let first = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    let second = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    first.clear().await.unwrap();
    first.insert("first", true).await.unwrap();
    second.clear().await.unwrap();
    second.insert("second", true).await.unwrap();
    assert_eq!(first.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(second.save().await.unwrap().status, SaveStatus::Saved);
    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.data().await.unwrap(), json!({"second": true}).as_object().cloned().unwrap());
}

/// A rotation onto an id already taken changes nothing: the old session
/// stays whole, the other one untouched.
pub async fn a_rotation_onto_a_taken_id_changes_nothing(db: Tiers) {
    let old = record("", chrono::Duration::hours(1), None);
    let taken = record("", chrono::Duration::hours(1), None);
    assert!(db.store.create(&old).await.unwrap());
    assert!(db.store.create(&taken).await.unwrap());
    let mut moved = old.clone();
    moved.id = taken.id.clone();
    moved.version = old.version + 1;
    assert_eq!(db.store.rotate(&old.id, old.version, &moved).await.unwrap(), RotateOutcome::IdTaken);
    assert_eq!(db.stored(&old.id).await.unwrap(), old);
    assert_eq!(db.stored(&taken.id).await.unwrap(), taken);
}

/// Two requests with the same cookie both log in (set the user, rotate the
/// id), as a double-clicked login form does.
pub async fn a_double_submitted_login_keeps_the_user_logged_in_with_the_data(db: Tiers) {
    let config = Arc::new(super::config());
    for _ in 0..10 {
        let cookie = start(&db, &config, json!({"visits": 3})).await;
        let login = |cookie: String| {
            let (store, config) = (db.store.clone(), config.clone());
            tokio::spawn(async move {
                let session = Session::new(store, config, Some(&cookie));
                session.set_user_id(Some("alice".into())).await.unwrap();
                session.regenerate_id().await.unwrap();
                session.save().await.unwrap()
            })
        };
        let (a, b) = (login(cookie.clone()), login(cookie.clone()));
        let outcomes = [a.await.unwrap(), b.await.unwrap()];
        assert!(
            outcomes.iter().all(|o| o.cookie != CookieUpdate::Remove),
            "no response logs the browser out: {outcomes:?}"
        );
        let winners: Vec<_> = outcomes.iter().filter(|o| matches!(o.cookie, CookieUpdate::Set { .. })).collect();
        assert_eq!(winners.len(), 1, "one rotation wins, the other leaves the cookie alone: {outcomes:?}");
        let new_cookie = cookie_of(winners[0]);
        let check = Session::new(db.store.clone(), config.clone(), Some(&new_cookie));
        assert_eq!(check.user_id().await.unwrap().as_deref(), Some("alice"));
        assert_eq!(check.get::<i64>("visits").await.unwrap(), Some(3), "the data came along");

        // A request still carrying the old cookie that arrives afterwards
        // (the browser sent both at once) neither learns the new session nor
        // starts an empty one whose cookie could replace it.
        let late = Session::new(db.store.clone(), config.clone(), Some(&cookie));
        assert_eq!(late.user_id().await.unwrap(), None, "the pre-login id never leads to the new session");
        late.set_user_id(Some("alice".into())).await.unwrap();
        late.regenerate_id().await.unwrap();
        let outcome = late.save().await.unwrap();
        assert_eq!(outcome.cookie, CookieUpdate::Keep, "{outcome:?}");
    }
}

/// Values a database cannot hold are refused when set.
pub async fn values_a_database_cannot_hold_are_refused_when_set(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    // Arrays nested `levels` deep; the deepest a session can hold and read
    // back (and export and import) is `MAX_VALUE_NESTING`.
    let nested = |levels: usize| {
        let text = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        serde_json::from_str::<serde_json::Value>(&text).expect("within the parser's bound")
    };
    let deepest = crate::record::MAX_VALUE_NESTING;
    for result in [
        session.set_user_id(Some("a\0b".into())).await,
        session.insert("k", "a\0b").await,
        session.insert("k\0", 1).await,
        session.insert("k", json!({"nested": ["x\0"]})).await,
        session.insert("k", nested(deepest + 1)).await,
        session.insert("k", json!({"a": nested(deepest)})).await,
    ] {
        assert!(matches!(result, Err(Error::InvalidInput(_))), "{result:?}");
    }
    session.insert("ok", "fine").await.unwrap();
    session.insert("deep", nested(deepest)).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved, "the rest of the request still saves");
    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.user_id().await.unwrap(), None);
    assert_eq!(
        check.data().await.unwrap(),
        json!({"deep": nested(deepest), "n": 1, "ok": "fine"}).as_object().cloned().unwrap()
    );
}

/// Versions never wrap and stop at two to the 53.
pub async fn versions_never_wrap_and_stop_at_two_to_the_53(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let id = Session::new(db.store.clone(), config.clone(), Some(&cookie)).key().await.unwrap().unwrap();
    let mut stored = db.stored(&id).await.unwrap();
    stored.version = crate::record::MAX_VERSION - 1;
    db.db().upsert(&stored).await.unwrap();
    // The last version there is: saved.
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    session.insert("n", 2).await.unwrap();
    assert_eq!(session.save().await.unwrap().status, SaveStatus::Saved);
    assert_eq!(db.stored(&id).await.unwrap().version, crate::record::MAX_VERSION);
    // Past it: a clear error, nothing written, nothing wrapped negative.
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    session.insert("n", 3).await.unwrap();
    assert!(matches!(session.save().await, Err(Error::Corrupt { .. })));
    let after = db.stored(&id).await.unwrap();
    assert_eq!((after.version, after.data["n"].clone()), (crate::record::MAX_VERSION, json!(2)));
    // A row holding a version beyond the bound (written by hand, or by a
    // build that wrapped) is reported, not served or overwritten.
    stored.version = i64::MAX;
    db.db().upsert(&stored).await.unwrap();
    if let Some(cache) = &db.cache {
        cache.evict(std::slice::from_ref(&id)).await.unwrap();
    }
    let session = Session::new(db.store.clone(), config, Some(&cookie));
    assert!(matches!(session.get_value("n").await, Err(Error::Corrupt { .. })));
}

/// A save under way never revives a session an admin expired.
pub async fn a_save_under_way_never_revives_a_session_an_admin_expired(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;
    // A request loads the session and asks for "remember me"...
    let slow = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    slow.set_expires_at(Utc::now() + chrono::Duration::days(30)).await.unwrap();
    slow.insert("n", 2).await.unwrap();
    let id = slow.key().await.unwrap().unwrap();
    // ...while `sessionctl expire` ends it.
    assert_eq!(db.store.expire(std::slice::from_ref(&id), now()).await.unwrap(), vec![id.clone()]);
    let outcome = slow.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::Gone, "{outcome:?}");
    let stored = db.stored(&id).await.expect("expired rows stay until purged");
    assert!(stored.is_expired_at(now()), "still expired: {stored:?}");
    assert_eq!(stored.data["n"], json!(1), "nothing written");
    let reader = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(reader.get_value("n").await.unwrap(), None);
}

/// A session that expired while a request held it (an admin's `expire`,
/// a clock reaching its expiry) is not written back by that request's
/// key-level save: [`DatabaseCore::patch`](crate::DatabaseCore::patch)
/// (or the cache tier's, alone) refuses an expired session. Needs only the
/// request path: the expiry is written with a versioned update.
pub async fn a_key_change_never_revives_an_expired_session(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let slow = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(slow.get_value("n").await.unwrap(), Some(json!(1)));
    let key = slow.key().await.unwrap().unwrap();
    let mut expired = db.stored(&key).await.unwrap();
    expired.expires_at = now() - chrono::Duration::seconds(5);
    expired.version += 1;
    db.overwrite(&expired).await;
    slow.insert("n", 2).await.unwrap();
    let outcome = slow.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::Gone, "a patch must refuse an expired session (patch revived it?)");
    if let Some(stored) = db.stored(&key).await {
        assert_eq!(stored.data["n"], json!(1), "patch wrote into an expired session");
        assert!(stored.is_expired_at(now()), "patch moved an expired session's expiry");
    }
}

/// The version check of a whole-session write, at the tier: an update
/// expecting another version answers `Conflict` and changes nothing, one
/// of a missing session `Missing`; and an expired row still loads
/// (expired or not, [`DatabaseCore::load`](crate::DatabaseCore::load)
/// returns what is stored, so an expired session is never mistaken for a
/// free id).
pub async fn a_stale_whole_session_write_is_a_conflict(db: Tiers) {
    let stored = record("", chrono::Duration::hours(1), None);
    assert!(db.store.create(&stored).await.unwrap());
    let mut next = stored.clone();
    next.data.insert("changed".into(), json!(true));
    next.version = 3;
    let (outcome, missing) = match (&db.database, &db.cache) {
        (Some(database), _) => {
            let outcome = database.update(&next, 2).await.unwrap();
            let mut gone = next.clone();
            gone.id = super::new_key();
            (outcome, database.update(&gone, 1).await.unwrap())
        }
        (None, Some(cache)) => {
            let outcome = cache.update(&next, 2).await.unwrap();
            let mut gone = next.clone();
            gone.id = super::new_key();
            (outcome, cache.update(&gone, 1).await.unwrap())
        }
        (None, None) => unreachable!("Tiers::new needs a tier"),
    };
    assert_eq!(outcome, UpdateOutcome::Conflict, "update must refuse a write expecting another version");
    assert_eq!(db.stored(&stored.id).await.unwrap(), stored, "a refused update changed the session");
    assert_eq!(missing, UpdateOutcome::Missing, "update of a session that does not exist");
    if let Some(database) = &db.database {
        let expired = record("", chrono::Duration::seconds(-5), None);
        assert!(database.insert_if_absent(&expired).await.unwrap());
        assert_eq!(database.load(&expired.id).await.unwrap(), Some(expired.clone()), "load must return expired rows");
        assert!(!database.insert_if_absent(&expired).await.unwrap(), "an expired row's id is still taken");
    }
}

/// Stale save after delete is not resurrected.
pub async fn stale_save_after_delete_is_not_resurrected(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"n": 1})).await;

    let writer = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    writer.insert("n", 2).await.unwrap();
    let id = writer.key().await.unwrap().unwrap();

    // Logout in another request (or `sessionctl delete`) lands first.
    let logout = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    logout.terminate().await.unwrap();
    logout.save().await.unwrap();

    // Not written back, and no removal cookie: only `terminate` removes it
    // (a login that moved the session may just have set the browser's).
    let outcome = writer.save().await.unwrap();
    assert_eq!((outcome.status, outcome.cookie), (SaveStatus::Gone, CookieUpdate::Keep));
    db.assert_gone(&id).await;
    let reader = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(reader.get_value("n").await.unwrap(), None, "the deleted session stays deleted");
}

/// Writes to missing sessions create nothing.
pub async fn writes_to_missing_sessions_create_nothing(db: Tiers) {
    let r = record("", chrono::Duration::hours(1), None);
    assert_eq!(db.store.update(&r, 0).await.unwrap(), UpdateOutcome::Missing);
    let new = record("", chrono::Duration::hours(1), None);
    assert_eq!(db.store.rotate(&r.id, 0, &new).await.unwrap(), RotateOutcome::Missing);
    db.assert_gone(&r.id).await;
    db.assert_gone(&new.id).await;
}

/// Regenerate id moves data and deletes old.
pub async fn regenerate_id_moves_data_and_deletes_old(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"cart": [7]})).await;
    let session = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    let old_id = session.key().await.unwrap().unwrap();
    session.regenerate_id().await.unwrap();
    session.set_user_id(Some("alice".into())).await.unwrap();
    let outcome = session.save().await.unwrap();
    let new_cookie = cookie_of(&outcome);
    let new_id = session.key().await.unwrap().unwrap();
    assert_ne!(old_id, new_id);
    db.assert_gone(&old_id).await;

    let old = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    assert_eq!(old.get_value("cart").await.unwrap(), None, "the old cookie no longer works");
    let new = Session::new(db.store.clone(), config, Some(&new_cookie));
    assert_eq!(new.get_value("cart").await.unwrap(), Some(json!([7])));
    assert_eq!(new.user_id().await.unwrap().as_deref(), Some("alice"));
}

/// Regenerate racing a write keeps both.
pub async fn regenerate_racing_a_write_keeps_both(db: Tiers) {
    let config = Arc::new(super::config());
    let cookie = start(&db, &config, json!({"a": 1})).await;
    let login = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    let other = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    login.regenerate_id().await.unwrap();
    other.insert("b", 2).await.unwrap();
    other.save().await.unwrap();
    let old_id = other.key().await.unwrap().unwrap();
    let new_cookie = cookie_of(&login.save().await.unwrap());
    let check = Session::new(db.store.clone(), config, Some(&new_cookie));
    assert_eq!(check.data().await.unwrap(), json!({"a": 1, "b": 2}).as_object().cloned().unwrap());
    db.assert_gone(&old_id).await;
}

/// Purge deletes only expired rows.
pub async fn purge_deletes_only_expired_rows(db: Tiers) {
    purge_walk(db, |i| (String::new(), i % 3 == 0)).await;
}

/// Few expired rows per window: SQLite deletes them by id, and skips the
/// windows that hold none.
pub async fn purge_of_a_sparse_table_deletes_only_expired_rows(db: Tiers) {
    purge_walk(db, |i| (String::new(), i % 40 == 0)).await;
}

/// Half expired among the lowest ids (and the first rows stored), one in 40
/// among the rest: the walk changes how it deletes on the way.
pub async fn purge_from_dense_to_sparse_windows_deletes_only_expired_rows(db: Tiers) {
    purge_walk(db, |i| {
        let id = super::new_key();
        let tail = &id.as_str()[1..];
        if i < 300 { (format!("0{tail}"), i % 2 == 0) } else { (format!("z{tail}"), i % 40 == 0) }
    })
    .await;
}

/// Purges a table of 600 rows, `row(i)` giving each one's id (empty: a
/// generated one) and whether it is expired, in windows of 50, refreshing an
/// expired row the walk has not reached yet after the first batch; checks
/// that exactly the other expired rows went.
async fn purge_walk(db: Tiers, row: impl Fn(usize) -> (String, bool)) {
    let mut live = Vec::new();
    let mut expired = Vec::new();
    for i in 0..600 {
        let (id, is_expired) = row(i);
        let expires_in = if is_expired { chrono::Duration::seconds(-10) } else { chrono::Duration::hours(1) };
        let r = record(&id, expires_in, None);
        db.store.create(&r).await.unwrap();
        if is_expired { expired.push(r) } else { live.push(r) }
    }
    let now = now();
    let mut cursor: Option<String> = None;
    let mut deleted: Vec<SessionKey> = Vec::new();
    let mut refreshed: Option<Record> = None;
    let mut batches = 0;
    loop {
        let batch = db.store.purge_expired_batch(now, cursor.as_deref(), 50, true).await.unwrap();
        batches += 1;
        deleted.extend(batch.deleted);
        if batches == 1 {
            // A user comes back while the purge is under way: one expired
            // session the walk has not reached yet gets a new expiry.
            let pending = expired.iter().find(|r| !deleted.contains(&r.id)).expect("rows left after the first batch");
            let mut pushed = pending.clone();
            pushed.expires_at = now + chrono::Duration::hours(1);
            pushed.version = 2;
            assert_eq!(db.store.update(&pushed, 1).await.unwrap(), UpdateOutcome::Updated);
            refreshed = Some(pushed);
        }
        assert!((0.0..=1.0).contains(&batch.progress));
        cursor = batch.next;
        if cursor.is_none() {
            assert!(batch.progress >= 0.99, "a finished walk reports it walked everything ({})", batch.progress);
            break;
        }
    }
    let refreshed = refreshed.unwrap();
    assert!(batches >= 3, "the purge ran in windows ({batches} batches)");
    deleted.sort();
    let mut expected: Vec<SessionKey> = expired.iter().map(|r| r.id.clone()).filter(|id| *id != refreshed.id).collect();
    expected.sort();
    assert_eq!(deleted, expected, "exactly the expired rows are reported deleted");
    for r in &live {
        assert!(db.store.load(&r.id, now).await.unwrap().is_some(), "live row kept");
    }
    for id in &expected {
        db.assert_gone(id).await;
    }
    assert!(db.store.load(&refreshed.id, now).await.unwrap().is_some(), "the refreshed session survived the purge");
    assert_eq!(db.db().count(&Filter { state: StateFilter::Expired, ..Filter::default() }, now).await.unwrap(), 0);
}

/// Delete by user and filters.
pub async fn delete_by_user_and_filters(db: Tiers) {
    for (user, expires_in) in [
        (Some("alice"), chrono::Duration::hours(1)),
        (Some("alice"), chrono::Duration::hours(2)),
        (Some("alice"), chrono::Duration::seconds(-5)),
        (Some("bob"), chrono::Duration::hours(1)),
        (None, chrono::Duration::hours(1)),
    ] {
        db.store.create(&record("", expires_in, user)).await.unwrap();
    }
    let now = Utc::now();
    let alice = Filter { user_id: Some("alice".into()), ..Filter::default() };
    assert_eq!(db.db().count(&alice, now).await.unwrap(), 3);
    let alice_active = Filter { state: StateFilter::Active, ..alice.clone() };
    assert_eq!(db.db().count(&alice_active, now).await.unwrap(), 2);
    assert_eq!(db.db().count(&Filter { state: StateFilter::Expired, ..Filter::default() }, now).await.unwrap(), 1);
    assert_eq!(db.db().count(&Filter { key: Some("k".into()), ..Filter::default() }, now).await.unwrap(), 5);
    assert_eq!(db.db().count(&Filter { key: Some("nope".into()), ..Filter::default() }, now).await.unwrap(), 0);

    // Keyset pages cover everything exactly once.
    let mut seen = Vec::new();
    let mut after: Option<ScanCursor> = None;
    loop {
        let page = db.db().scan(&Filter::default(), now, after.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(ScanCursor::after);
        seen.extend(page.into_iter().map(|r| (r.expires_at, r.id)));
    }
    assert_eq!(seen.len(), 5, "every session exactly once");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ordered by expiry, then id");
    let alice_page = db.db().scan(&alice_active, now, None, 10).await.unwrap();
    assert_eq!(alice_page.len(), 2);
    assert!(alice_page.iter().all(|r| r.user_id.as_deref() == Some("alice") && r.expires_at > now));

    let revoked = db.store.delete_by_user("alice").await.unwrap();
    assert_eq!(revoked.len(), 3);
    for id in &revoked {
        db.assert_gone(id).await;
    }
    assert_eq!(db.db().count(&alice, now).await.unwrap(), 0);
    assert_eq!(db.db().count(&Filter::default(), now).await.unwrap(), 2, "other users' sessions untouched");
}

/// Size limit is a clear error and writes nothing.
pub async fn size_limit_is_a_clear_error_and_writes_nothing(db: Tiers) {
    let config = Arc::new(super::config().with_max_size(1000));
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let before = db.store.ops();
    for cookie in [None, Some(cookie.as_str())] {
        let session = Session::new(db.store.clone(), config.clone(), cookie);
        session.insert("blob", "x".repeat(2000)).await.unwrap();
        let error = session.save().await.unwrap_err();
        assert!(matches!(error, Error::TooLarge { limit: 1000, .. }), "{error}");
        assert!(error.to_string().contains("over the limit of 1000 bytes"), "{error}");
    }
    let ops = db.store.ops() - before;
    assert_eq!(ops.database + ops.cache, 1, "only the second session's load; nothing written: {ops:?}");
    let check = Session::new(db.store.clone(), config, Some(&cookie));
    assert_eq!(check.get_value("blob").await.unwrap(), None);
}

/// Idle sessions refresh at most once per interval.
pub async fn idle_sessions_refresh_at_most_once_per_interval(db: Tiers) {
    let config = Arc::new(super::config().with_expiry(ExpiryPolicy::Idle {
        timeout: Duration::from_secs(3600),
        refresh_after: Duration::from_secs(600),
    }));
    let cookie = start(&db, &config, json!({"n": 1})).await;
    let id = Session::new(db.store.clone(), config.clone(), Some(&cookie)).key().await.unwrap().unwrap();
    let first = db.stored(&id).await.unwrap();
    assert!((first.expires_at - first.created_at - chrono::Duration::hours(1)).num_seconds().abs() <= 1);

    // A read soon after does not write.
    let read = Session::new(db.store.clone(), config.clone(), Some(&cookie));
    read.get_value("n").await.unwrap();
    assert_eq!(read.save().await.unwrap().status, SaveStatus::Unchanged);

    // Pretend the last refresh was 20 minutes ago: the next read pushes the
    // expiry forward and re-issues the cookie.
    let mut aged = first.clone();
    aged.expires_at = first.expires_at - chrono::Duration::minutes(20);
    aged.version = first.version + 1;
    db.overwrite(&aged).await;
    let session_id = Session::new(db.store.clone(), config.clone(), Some(&cookie)).id().await.unwrap().unwrap();
    let aged_cookie = super::config().codec().encode_reference(&session_id, aged.expires_at);
    let read = Session::new(db.store.clone(), config, Some(&aged_cookie));
    read.get_value("n").await.unwrap();
    let outcome = read.save().await.unwrap();
    assert_eq!(outcome.status, SaveStatus::Saved);
    let CookieUpdate::Set { expires_at, .. } = outcome.cookie else { panic!("refresh re-issues the cookie") };
    assert!(expires_at > aged.expires_at + chrono::Duration::minutes(19));
    assert_eq!(db.stored(&id).await.unwrap().expires_at, expires_at);
}

/// Browser session cookie still has a server expiry.
pub async fn browser_session_cookie_still_has_a_server_expiry(db: Tiers) {
    let mut config = super::config();
    config.cookie.browser_session = true;
    let config = Arc::new(config);
    let session = Session::new(db.store.clone(), config, None);
    session.insert("n", 1).await.unwrap();
    session.save().await.unwrap();
    let id = session.key().await.unwrap().unwrap();
    let stored = db.stored(&id).await.unwrap();
    let lifetime = stored.expires_at - stored.created_at;
    assert!((lifetime - chrono::Duration::days(7)).num_seconds().abs() <= 1, "real 7-day expiry, got {lifetime}");
}
