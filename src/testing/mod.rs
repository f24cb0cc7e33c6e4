//! The conformance kit: the behaviour every store must have, runnable
//! against any tiers (feature `testing`).
//!
//! The same cases run the in-tree tiers in every combination (SQLite,
//! PostgreSQL, Redis, in-process) in this crate's own test suite; a crate
//! implementing a tier of its own ([`DatabaseTier`] or [`CacheTier`], see
//! [`crate::store`]'s "Implementing a backend") runs them with a macro,
//! one `#[test]` per case, as tower-sessions-stores' `route_tests!` does:
//!
//! ```
//! // tests/conformance.rs of a crate with a tier of its own (here the
//! // built-in SQLite one stands in for it).
//! use std::sync::Arc;
//! use sessionctl::DatabaseCore as _;
//! use sessionctl::testing::Tiers;
//!
//! async fn my_tiers() -> Tiers {
//!     let dir = tempfile::tempdir().unwrap();
//!     let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
//!     let database = sessionctl::store::sqlite::SqliteDatabase::connect(&url).await.unwrap();
//!     database.migrate().await.unwrap();
//!     Tiers::new(Some(Arc::new(database)), None).keep(dir)
//! }
//!
//! sessionctl::session_conformance!(mine, my_tiers);
//! sessionctl::database_conformance!(mine_with_maintenance, my_tiers);
//! # fn main() {}
//! ```
//!
//! [`session_conformance!`](crate::session_conformance) covers the request
//! path, on any tiers (a cache alone too), and needs only
//! [`DatabaseCore`](crate::DatabaseCore) of a database tier.
//! [`database_conformance!`](crate::database_conformance) needs its
//! maintenance and purge parts too (the SQLite tier above has them): versions,
//! the purge walk, filters and deletion by user; on a tier that leaves them
//! to their defaults its cases fail on `Error::Unsupported`.
//!
//! The dev-dependency that turns the kit on without building the admin
//! tool: `sessionctl = { version = "0.1", default-features = false, features = ["testing"] }`. A factory may return
//! `Option<Tiers>`, `None` skipping the cases (a server that is not
//! installed). Cases start a multi-threaded runtime of their own, so no
//! test attribute or runtime is needed in the calling crate.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::store::CacheLookup;
use crate::{CacheTier, DatabaseTier, Filter, Keys, Record, SessionConfig, SessionId, SessionKey, Store, StoreOptions};

pub mod cases;

/// The tiers one case runs on, and the store over them. Whatever
/// [`Tiers::keep`] was given (a temp dir, a server handle) lives as long as
/// they do.
pub struct Tiers {
    /// The store the case talks to.
    pub store: Store,
    /// The database tier, when there is one (cases look behind the store
    /// through it).
    pub database: Option<Arc<dyn DatabaseTier>>,
    /// The cache tier, when there is one.
    pub cache: Option<Arc<dyn CacheTier>>,
    /// The database's URL, for cases that run the admin tool; empty when
    /// there is none.
    pub url: String,
    _kept: Option<Box<dyn Any + Send + Sync>>,
}

impl Tiers {
    /// A store over these tiers: a database alone, a cache in front of a
    /// database, or a cache alone (`no_database`), with the default options.
    ///
    /// # Panics
    ///
    /// With neither tier.
    pub fn new(database: Option<Arc<dyn DatabaseTier>>, cache: Option<Arc<dyn CacheTier>>) -> Tiers {
        let store = store_over(&database, &cache);
        Tiers { store, database, cache, url: String::new(), _kept: None }
    }

    /// The database's URL, for the cases that run the admin tool.
    pub fn with_url(mut self, url: impl Into<String>) -> Tiers {
        self.url = url.into();
        self
    }

    /// Keeps `guard` (a temp dir, a server handle) alive as long as the tiers.
    pub fn keep(mut self, guard: impl Any + Send + Sync) -> Tiers {
        self._kept = Some(Box::new(guard));
        self
    }

    /// A second store over the same tiers, as another app process has
    /// (its own in-process state: combined writes, "moved" marks).
    pub fn twin_store(&self) -> Store {
        store_over(&self.database, &self.cache)
    }

    /// The database tier (for cases that only make sense with one).
    ///
    /// # Panics
    ///
    /// When there is none.
    pub fn db(&self) -> &Arc<dyn DatabaseTier> {
        self.database.as_ref().expect("this case needs a database tier")
    }

    /// What the authoritative tier holds (the database, else the cache),
    /// expired or not.
    ///
    /// # Panics
    ///
    /// When the tier fails.
    pub async fn stored(&self, key: &SessionKey) -> Option<Record> {
        match (&self.database, &self.cache) {
            (Some(db), _) => db.load(key).await.unwrap(),
            (None, Some(cache)) => match cache.get(key).await.unwrap() {
                CacheLookup::Hit(record) => Some(record),
                _ => None,
            },
            (None, None) => unreachable!("Tiers::new needs a tier"),
        }
    }

    /// Asserts the session is in no tier.
    ///
    /// # Panics
    ///
    /// When it is, or a tier fails.
    pub async fn assert_gone(&self, key: &SessionKey) {
        if let Some(db) = &self.database {
            assert!(db.load(key).await.unwrap().is_none(), "{key} still in the database");
        }
        if let Some(cache) = &self.cache {
            assert!(!matches!(cache.get(key).await.unwrap(), CacheLookup::Hit(_)), "{key} still in the cache");
        }
    }

    /// Replaces what is stored, behind the session's back (an admin edit):
    /// written over the stored version in the authoritative tier, and the
    /// cache entry dropped. `record.version` must be above the stored one.
    ///
    /// # Panics
    ///
    /// When nothing is stored under the record's key, or a tier fails.
    pub async fn overwrite(&self, record: &Record) {
        let stored = self.stored(&record.id).await.expect("overwrite replaces a stored session").version;
        if let Some(db) = &self.database {
            let outcome = db.update(record, stored).await.unwrap();
            assert_eq!(outcome, crate::store::UpdateOutcome::Updated, "overwriting {}", record.id);
        }
        if let Some(cache) = &self.cache {
            cache.evict(std::slice::from_ref(&record.id)).await.unwrap();
            if self.database.is_none() {
                assert!(cache.put(record).await.unwrap());
            }
        }
    }

    /// Sessions in the database.
    ///
    /// # Panics
    ///
    /// Without a database tier, or when it fails.
    pub async fn count(&self) -> u64 {
        self.db().count(&Filter::default(), chrono::Utc::now()).await.unwrap()
    }
}

fn store_over(database: &Option<Arc<dyn DatabaseTier>>, cache: &Option<Arc<dyn CacheTier>>) -> Store {
    let options = StoreOptions::default();
    match (database, cache) {
        (Some(db), None) => Store::new(db.clone()),
        (Some(db), Some(cache)) => Store::tiered(db.clone(), cache.clone(), options),
        (None, Some(cache)) => Store::cache_only(cache.clone(), options),
        (None, None) => panic!("Tiers::new needs a database tier, a cache tier or both"),
    }
}

/// What a factory of [`Tiers`] may return: the tiers, or `None` to skip.
pub trait IntoTiers {
    /// The tiers, or `None` to skip the case.
    fn into_tiers(self) -> Option<Tiers>;
}

impl IntoTiers for Tiers {
    fn into_tiers(self) -> Option<Tiers> {
        Some(self)
    }
}

impl IntoTiers for Option<Tiers> {
    fn into_tiers(self) -> Option<Tiers> {
        self
    }
}

/// Runs one case on the tiers `factory` makes, on a multi-threaded runtime
/// of two workers (what the macros expand to).
///
/// # Panics
///
/// When the case fails, or the runtime cannot start.
pub fn run<T, F, C>(factory: impl FnOnce() -> F, case: impl FnOnce(Tiers) -> C)
where
    T: IntoTiers,
    F: Future<Output = T>,
    C: Future<Output = ()>,
{
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        if let Some(tiers) = factory().await.into_tiers() {
            case(tiers).await;
        }
    });
}

/// A session record under a fresh key (its id remembered for
/// [`id_of`]): version 1, written now, expiring `expires_in` from now.
///
/// # Panics
///
/// When `data` is not a JSON object.
pub fn record(user: Option<&str>, expires_in: chrono::Duration, data: serde_json::Value) -> Record {
    let t = crate::record::now();
    Record {
        id: new_key(),
        user_id: user.map(str::to_owned),
        data: data.as_object().cloned().expect("session data is a JSON object").into(),
        created_at: t,
        updated_at: t,
        expires_at: t + expires_in,
        version: 1,
    }
}

/// The cookie value a save set.
///
/// # Panics
///
/// When the save did not set one.
pub fn cookie_of(outcome: &crate::SaveOutcome) -> String {
    match &outcome.cookie {
        crate::CookieUpdate::Set { value, .. } => value.clone(),
        other => panic!("expected a cookie to be set, got {other:?}"),
    }
}

/// The keys every case signs with.
///
/// # Panics
///
/// Never: the key is long enough.
pub fn keys() -> Keys {
    Keys::new([b"test key 0123456789 0123456789 0123456789".as_slice()]).expect("a valid key")
}

/// Server-side sessions only (cookie-only disabled), so cases exercise the
/// store.
pub fn config() -> SessionConfig {
    SessionConfig::new(keys()).with_cookie_only_threshold(0)
}

/// The ids behind the keys [`new_key`] and [`remember`] made: a stored
/// record keeps only its key, and a case that sends its cookie needs the id.
static IDS: LazyLock<Mutex<HashMap<SessionKey, SessionId>>> = LazyLock::new(Default::default);

/// A fresh session's key, its id remembered for [`id_of`].
pub fn new_key() -> SessionKey {
    remember(SessionId::generate())
}

/// The key of a session `id`, remembered for [`id_of`].
pub fn remember(id: SessionId) -> SessionKey {
    let key = SessionKey::of(&id);
    IDS.lock().unwrap_or_else(PoisonError::into_inner).insert(key.clone(), id);
    key
}

/// The id of a key [`new_key`] or [`remember`] made (what the session's
/// cookie carries).
///
/// # Panics
///
/// For a key they did not make.
pub fn id_of(key: &SessionKey) -> SessionId {
    let id = IDS.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned();
    id.expect("a key made by testing::new_key or testing::remember")
}

/// One `#[test]` per request-path case of the kit, in a module `$name`,
/// on the tiers `$factory` (an async fn returning [`Tiers`] or
/// `Option<Tiers>`) makes afresh for each.
#[macro_export]
macro_rules! session_conformance {
    ($name:ident, $factory:expr) => {
        $crate::__conformance_cases!($name, $factory;
            create_load_update_delete,
            untouched_and_unchanged_sessions_do_no_writes,
            insert_if_absent_never_overwrites,
            concurrent_changes_to_different_keys_both_land,
            many_concurrent_writers_all_land,
            stale_save_after_delete_is_not_resurrected,
            a_key_change_never_revives_an_expired_session,
            a_stale_whole_session_write_is_a_conflict,
            hundred_writers_of_different_keys_all_land_without_errors,
            hundred_writers_of_one_key_end_with_one_of_their_values,
            concurrent_quick_writes_to_different_keys_all_land,
            a_request_changing_hundreds_of_keys_lands_whole,
            a_double_submitted_login_keeps_the_user_logged_in_with_the_data,
            values_a_database_cannot_hold_are_refused_when_set,
            writes_to_missing_sessions_create_nothing,
            regenerate_id_moves_data_and_deletes_old,
            regenerate_racing_a_write_keeps_both,
            size_limit_is_a_clear_error_and_writes_nothing,
            idle_sessions_refresh_at_most_once_per_interval,
            browser_session_cookie_still_has_a_server_expiry,
            quick_and_normal_changes_mixed_in_one_request_all_persist,
            a_whole_session_conflict_is_reapplied,
            a_rotation_onto_a_taken_id_changes_nothing,
        );
    };
}

/// One `#[test]` per database case of the kit (versions, purge, filters,
/// deletion by user), in a module `$name`: the tiers need a database with
/// its maintenance and purge parts.
#[macro_export]
macro_rules! database_conformance {
    ($name:ident, $factory:expr) => {
        $crate::__conformance_cases!($name, $factory;
            versions_never_wrap_and_stop_at_two_to_the_53,
            a_save_under_way_never_revives_a_session_an_admin_expired,
            purge_deletes_only_expired_rows,
            purge_of_a_sparse_table_deletes_only_expired_rows,
            purge_from_dense_to_sparse_windows_deletes_only_expired_rows,
            delete_by_user_and_filters,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($name:ident, $factory:expr; $($case:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::testing::run($factory, $crate::testing::cases::$case);
                }
            )*
        }
    };
}
