//! Databases for the tests: a SQLite file in a temp dir, or a fresh
//! database on a throwaway PostgreSQL server (see `tests/support/pg_server.rs`).

use std::sync::Arc;

use sessionctl::store::{postgres::PostgresDatabase, sqlite::SqliteDatabase};
use sessionctl::{DatabaseTier, Keys, SessionConfig, Store};

#[path = "../support/pg_server.rs"]
pub mod pg_server;

pub use pg_server::free_port;

/// The keys every test signs with.
pub fn keys() -> Keys {
    Keys::new([b"test key 0123456789 0123456789 0123456789".as_slice()]).unwrap()
}

/// Server-side sessions only (cookie-only disabled), so tests exercise the
/// store.
pub fn config() -> SessionConfig {
    SessionConfig::new(keys()).with_cookie_only_threshold(0)
}

/// A database for one test, removed with it.
pub struct TestDb {
    pub store: Store,
    pub database: Arc<dyn DatabaseTier>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database file in a temp dir.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let database: Arc<dyn DatabaseTier> = Arc::new(SqliteDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    TestDb { store: Store::new(database.clone()), database, url, _dir: Some(dir) }
}

/// A fresh database on the shared throwaway PostgreSQL server, or `None`
/// (with a message) when PostgreSQL is not installed and `CI` is not set.
pub async fn postgres() -> Option<TestDb> {
    let server = pg_server::shared()?;
    let url = tokio::task::spawn_blocking(|| server.create_database()).await.unwrap();
    let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    Some(TestDb { store: Store::new(database.clone()), database, url, _dir: None })
}
