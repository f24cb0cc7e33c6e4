//! The SQLite database tier: the embedded default.
//!
//! A file database in WAL mode (readers never block the writer), with a busy
//! timeout so concurrent writers queue instead of failing, and every
//! multi-statement write in a `BEGIN IMMEDIATE` transaction so it takes the
//! write lock up front rather than failing to upgrade a read lock halfway.
//! Single-statement writes are atomic on their own.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, QueryBuilder, Row, Sqlite, SqliteConnection};

use super::faults::FaultClock;
use super::migrations::AppliedRow;
use super::{
    AppCache, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, Device, Filter, ImportCounts, ImportWriter, Patch,
    RawRow, RotateOutcome, ScanCursor, SchemaStatus, SessionSummary, StateFilter, StatsRow, UpdateOutcome, parse_ids,
};
use crate::error::{Error, Result};
use crate::id::{self, SessionKey};
use crate::record::{self, Record};

mod purge;

use purge::PurgeConnection;

const BACKEND: &str = "sqlite";
/// How long claimed purge ticks are kept (a day).
const TICK_RETENTION_MS: i64 = 24 * 3600 * 1000;
const COLUMNS: &str = "id, data, user_id, created_at, updated_at, expires_at, version";

/// `id IN (…)`: the sessions of the user bound where `{user}` stands.
///
/// The user index is keyed by `(substr(id, 1, 2), user_id)` (migration 0003:
/// it keeps the purge from rewriting the whole index over and over), so a
/// lookup by user alone would scan the table. This walks the index's id
/// prefixes with a recursive skip (each step one seek to the next prefix
/// present) and seeks the user under each: ~8,000 seeks at most, 20-30 ms
/// on ten million rows, growing with the prefixes present, not the rows.
macro_rules! user_ids {
    ($user:literal) => {
        concat!(
            "id IN (WITH RECURSIVE prefix(p) AS (",
            "SELECT min(substr(id, 1, 2)) FROM sessions WHERE user_id IS NOT NULL ",
            "UNION ALL SELECT (SELECT min(substr(id, 1, 2)) FROM sessions ",
            "WHERE user_id IS NOT NULL AND substr(id, 1, 2) > prefix.p) FROM prefix WHERE prefix.p IS NOT NULL) ",
            "SELECT s.id FROM prefix JOIN sessions AS s ON substr(s.id, 1, 2) = prefix.p AND s.user_id = ",
            $user,
            ")"
        )
    };
}
const LOAD_SQL: &str =
    "SELECT id, data, user_id, created_at, updated_at, expires_at, version FROM sessions WHERE id = ?";
/// How long a writer waits for the write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite behind a small connection pool.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    pool: SqlitePool,
    /// For file databases: how to open the purge's own connection.
    purge_options: Option<SqliteConnectOptions>,
    purge: Arc<tokio::sync::Mutex<Option<PurgeConnection>>>,
    /// How many parts of the id space a listing that reads the whole table
    /// scans side by side (1 for an app's database, opened with `create`).
    scan_parts: usize,
}

/// The WAL size, in bytes, a restarted WAL is truncated to (64 MiB: twice
/// the size past which the purge restarts it, so the purge's own cycles
/// never truncate and grow it again).
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

/// At most this many scans side by side (the pool holds 8 connections).
const SCAN_PARTS_MAX: usize = 4;

/// [`Error::db`] for SQLite, noting a failure after which a pooled
/// connection may never write again ([`CONNECTION_FAULTS`]).
fn db_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| {
        note_failure(&source);
        Error::db(BACKEND, operation)(source)
    }
}

/// Faults after which a pooled connection may never write again: a call
/// failed read-only (`SQLITE_READONLY`), with an I/O error, or on a file
/// SQLite could not open ([`crate::store::faults`]). Any I/O error counts,
/// a read's too: the pool is then reopened once, which is cheap.
static CONNECTION_FAULTS: FaultClock = FaultClock::new();

fn note_failure(error: &sqlx::Error) {
    const READONLY: i64 = 8;
    const IOERR: i64 = 10;
    const CANTOPEN: i64 = 14;
    // The extended code; its low byte is the primary one.
    CONNECTION_FAULTS.note_if(error, |code| {
        code.parse::<i64>().is_ok_and(|code| matches!(code & 0xff, READONLY | IOERR | CANTOPEN))
    });
}

impl SqliteDatabase {
    /// How many migrations the database has recorded (0 before the first).
    async fn applied_steps(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&self.pool).await.unwrap_or(0)
    }

    /// Moves rows from their id to their key. The ids must not stay
    /// readable in the file's free space: a connection of its own zeroes
    /// what it deletes (secure_delete), and is closed afterwards rather
    /// than handed back to the pool so set.
    async fn move_rows_securely(&self, moves: &[(String, String)]) -> Result<()> {
        const OP: &str = "moving sessions to their keys";
        let connection = self.pool.acquire().await.map_err(db_error(OP))?;
        let mut connection = connection.detach();
        sqlx::query("PRAGMA secure_delete = ON").execute(&mut connection).await.map_err(db_error(OP))?;
        let moved = move_rows(&mut connection, moves).await;
        let _ = connection.close().await;
        moved
    }

    /// Whether the schema has the table or index (`kind`) named `name`.
    async fn schema_has(&self, kind: &str, name: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?)")
            .bind(kind)
            .bind(name)
            .fetch_one(&self.pool)
            .await
    }

    /// Whether any session is still stored under its id (found through
    /// migration 6's partial index; `false` before it is applied, when the
    /// pending migration says enough).
    async fn ids_to_move(&self) -> Result<bool> {
        let read = async {
            if !self.schema_has("index", "sessions_under_ids").await? {
                return Ok(false);
            }
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sessions WHERE length(id) = 24)")
                .fetch_one(&self.pool)
                .await
        };
        read.await.map_err(db_error("reading the schema version"))
    }

    /// Opens (creating if missing) the database a `sqlite:` URL names.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout.
    pub async fn connect(url: &str) -> Result<SqliteDatabase> {
        SqliteDatabase::connect_with_timeout(url, super::DEFAULT_DATABASE_TIMEOUT).await
    }

    /// Like [`connect`](Self::connect), with `timeout` bounding pool
    /// acquisition (a database file on a hung network filesystem).
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<SqliteDatabase> {
        SqliteDatabase::connect_with(url, timeout, true).await
    }

    /// Like [`SqliteDatabase::connect_with_timeout`]; `create` says whether
    /// a missing file is created (else opening it fails).
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout.
    pub async fn connect_with(url: &str, timeout: Duration, create: bool) -> Result<SqliteDatabase> {
        let mut options = SqliteConnectOptions::from_str(url)
            .map_err(db_error("parsing the database URL"))?
            .create_if_missing(create)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            // A WAL that grew (a purge beside the app, a long reader) is cut
            // back to this when it next starts over; SQLite keeps it at its
            // largest size otherwise, for as long as a connection is open.
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string());
        if create {
            // The app's database: WAL, so readers never wait for a writer.
            options = options.journal_mode(SqliteJournalMode::Wal);
        } else if !url.contains(":memory:") && !url.contains("mode=memory") && !writable(options.get_filename()) {
            // An admin tool on a database it may only read (a backup, a
            // file of another user): read it as it is, journal mode and all.
            options = options.read_only(true);
        }
        // Every connection to `:memory:` is its own database: keep one.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let purge_options = (!in_memory).then(|| options.clone());
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(if in_memory { 1 } else { 0 })
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(3600)) })
            // A file has no server to lose: the ping sqlx sends when it
            // hands a connection out is only a hop to its worker thread.
            .test_before_acquire(false)
            .acquire_timeout(timeout);
        // Connections that would fail every later write are closed, not
        // reused (RELIABILITY.md; each kept the app from saving a session
        // again until it restarted):
        // - when handed out, one opened before a fault that can leave it
        //   read-only for life ([`CONNECTION_FAULTS`]);
        // - when handed back, one whose transaction is still open: when a
        //   write fails on a full disk or an I/O error, SQLite rolls the
        //   transaction back itself; the rollback sqlx sends when the
        //   transaction is dropped then finds none and fails, sqlx's count
        //   of open transactions stays at one, and every later `BEGIN` is
        //   refused. The rollback sqlx queued runs before the ping.
        // `:memory:` keeps its one connection: closing it would drop the
        // database.
        let pool = match in_memory {
            true => pool,
            false => CONNECTION_FAULTS.retire_opened_before(pool).after_release(|connection, _| {
                Box::pin(async move {
                    if connection.is_in_transaction() {
                        connection.ping().await?;
                    }
                    Ok(!connection.is_in_transaction())
                })
            }),
        };
        let pool = super::timed::bounded(BACKEND, "opening the database", timeout, async {
            pool.connect_with(options).await.map_err(db_error("opening the database"))
        })
        .await?;
        // Each part of a whole-table listing takes a core and a connection:
        // for the admin tool only (an app's connections serve its requests).
        let scan_parts = match in_memory || create {
            true => 1,
            false => std::thread::available_parallelism().map_or(1, |cores| cores.get().min(SCAN_PARTS_MAX)),
        };
        Ok(SqliteDatabase { pool, purge_options, purge: Arc::default(), scan_parts })
    }

    /// The underlying pool, for callers that need raw SQL (benchmarks).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// An import's transaction (`BEGIN IMMEDIATE`, rolled back when dropped).
struct SqliteImport {
    tx: sqlx::Transaction<'static, Sqlite>,
}

#[async_trait]
impl ImportWriter for SqliteImport {
    async fn write(&mut self, records: &[Record], devices: &[Device], replace: bool) -> Result<ImportCounts> {
        const OP: &str = "importing sessions";
        if records.is_empty() {
            return Ok(ImportCounts::default());
        }
        let mut query = QueryBuilder::<Sqlite>::new("SELECT id FROM sessions WHERE id IN (");
        let mut ids = query.separated(", ");
        for record in records {
            ids.push_bind(record.id.as_str());
        }
        query.push(")");
        let existing: std::collections::HashSet<String> =
            query.build_query_scalar().fetch_all(&mut *self.tx).await.map_err(db_error(OP))?.into_iter().collect();
        let blank = Device::default();
        let written: Vec<(&Record, &Device)> = records
            .iter()
            .zip(devices.iter().chain(std::iter::repeat(&blank)))
            .filter(|(r, _)| replace || !existing.contains(r.id.as_str()))
            .collect();
        if !written.is_empty() {
            let mut query = QueryBuilder::<Sqlite>::new(
                "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version,
                     last_seen_at, client_ip, user_agent) ",
            );
            query.push_values(&written, |mut row, (record, device)| {
                row.push_bind(record.id.as_str())
                    .push_bind(record.data_json())
                    .push_bind(record.user_id.as_deref())
                    .push_bind(ms(record.created_at))
                    .push_bind(ms(record.updated_at))
                    .push_bind(ms(record.expires_at))
                    .push_bind(record.version)
                    .push_bind(device.last_seen_at.map(ms))
                    .push_bind(device.client_ip.as_deref())
                    .push_bind(device.user_agent.as_deref());
            });
            query.push(
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_id = excluded.user_id,
                  created_at = excluded.created_at, updated_at = excluded.updated_at,
                  expires_at = excluded.expires_at, version = excluded.version,
                  last_seen_at = excluded.last_seen_at, client_ip = excluded.client_ip,
                  user_agent = excluded.user_agent",
            );
            query.build().execute(&mut *self.tx).await.map_err(db_error(OP))?;
        }
        Ok(ImportCounts::of_batch(records.len(), existing.len(), replace))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_error("committing an import"))
    }
}

/// A device from its three columns (a time out of range reads as none).
fn device_of(seen: Option<i64>, client_ip: Option<String>, user_agent: Option<String>) -> Device {
    Device { last_seen_at: seen.and_then(record::from_millis), client_ip, user_agent }
}

/// Whether this process may write the file (and so open it read-write).
fn writable(path: &std::path::Path) -> bool {
    std::fs::OpenOptions::new().write(true).open(path).is_ok()
}

/// The file a `sqlite:` URL names, when it does not exist (`None` for an
/// in-memory database, another scheme, or a file that exists).
pub(crate) fn missing_file(url: &str) -> Option<String> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.exists()).then(|| path.display().to_string())
}

fn row_to_record(row: &SqliteRow) -> Result<Record> {
    let raw = (|| -> std::result::Result<RawRow, sqlx::Error> {
        let id: String = row.try_get("id")?;
        let time = |column: &str| -> std::result::Result<DateTime<Utc>, sqlx::Error> {
            let ms: i64 = row.try_get(column)?;
            record::from_millis(ms).ok_or_else(|| sqlx::Error::Decode(format!("{column} {ms} is out of range").into()))
        };
        Ok(RawRow {
            data: row.try_get("data")?,
            user_id: row.try_get("user_id")?,
            created_at: time("created_at")?,
            updated_at: time("updated_at")?,
            expires_at: time("expires_at")?,
            version: row.try_get("version")?,
            id,
        })
    })();
    match raw {
        Ok(raw) => raw.into_record(),
        Err(e) => {
            let id: String = row.try_get("id").unwrap_or_default();
            Err(Error::Corrupt { id, reason: e.to_string() })
        }
    }
}

/// The INSERT of a whole record (bound by [`bind_record`]), followed by the
/// given conflict clause.
macro_rules! insert_sql {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
             VALUES (?, ?, ?, ?, ?, ?, ?) ",
            $on_conflict
        )
    };
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_record<'q>(query: SqliteQuery<'q>, record: &'q Record) -> SqliteQuery<'q> {
    query
        .bind(record.id.as_str())
        .bind(record.data_json())
        .bind(record.user_id.as_deref())
        .bind(ms(record.created_at))
        .bind(ms(record.updated_at))
        .bind(ms(record.expires_at))
        .bind(record.version)
}

/// The UPDATE of a record's columns by id (bound by [`bind_update`]); a
/// caller may append conditions.
macro_rules! update_sql {
    () => {
        "UPDATE sessions SET data = ?, user_id = ?, updated_at = ?, expires_at = ?, version = ? WHERE id = ?"
    };
}

fn bind_update<'q>(query: SqliteQuery<'q>, record: &'q Record) -> SqliteQuery<'q> {
    query
        .bind(record.data_json())
        .bind(record.user_id.as_deref())
        .bind(ms(record.updated_at))
        .bind(ms(record.expires_at))
        .bind(record.version)
        .bind(record.id.as_str())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The rows a scan walks: those matching `filter`, less the rows an older
/// build stored under their id, left out until moved (`sessionctl
/// migrate`): read under their key, they would break a walk in key order.
/// (Counts include them.)
fn scan_query(filter: &Filter, now: DateTime<Utc>) -> QueryBuilder<Sqlite> {
    let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM sessions"));
    push_filter(&mut query, filter, now);
    query.push(" AND length(id) <> 24");
    query
}

fn push_filter(query: &mut QueryBuilder<Sqlite>, filter: &Filter, now: DateTime<Utc>) {
    query.push(" WHERE 1 = 1");
    match filter.state {
        StateFilter::All => {}
        StateFilter::Active => {
            query.push(" AND expires_at > ").push_bind(ms(now));
        }
        StateFilter::Expired => {
            query.push(" AND expires_at <= ").push_bind(ms(now));
        }
    }
    if let Some(user_id) = &filter.user_id {
        let (before, after) = user_ids!("?").split_once('?').expect("one placeholder");
        query.push(" AND ").push(before).push_bind(user_id.clone()).push(after);
    }
    if let Some(key) = &filter.key {
        query
            .push(" AND EXISTS (SELECT 1 FROM json_each(sessions.data) WHERE json_each.key = ")
            .push_bind(key.clone())
            .push(")");
    }
}

#[async_trait]
impl DatabaseCore for SqliteDatabase {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        // sqlx's migration lock does nothing on SQLite: processes starting
        // at once all find a step pending, and all but one fail to record
        // it after the first did (rebuilding the user index on a large
        // table makes that window seconds long). A step is one transaction,
        // so a loser changed nothing: it runs again and finds that step
        // applied, but may meet the next one being applied by another
        // process. So it goes again as long as the applied steps grew since
        // its last try (another process got further), and fails only when
        // a try failed with no one making progress.
        let migrator = super::migrations::sqlite();
        let mut applied = self.applied_steps().await;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    let now = self.applied_steps().await;
                    if now <= applied {
                        return Err(Error::Migrate { backend: BACKEND, source: Box::new(error) });
                    }
                    applied = now;
                }
            }
        }
    }

    async fn schema_status(&self) -> Result<SchemaStatus> {
        let read = async {
            if !self.schema_has("table", "_sqlx_migrations").await? {
                return Ok(Vec::new());
            }
            sqlx::query_as::<_, AppliedRow>("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await
        };
        let applied = read.await.map_err(db_error("reading the schema version"))?;
        let ids_to_move = self.ids_to_move().await?;
        super::migrations::status(BACKEND, super::migrations::SQLITE_STEPS, &applied, ids_to_move)
    }

    async fn move_id_to_key(&self, id: &crate::SessionId) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("moving a session to its key"))?;
        if found.is_none() {
            return Ok(false);
        }
        let key = SessionKey::of(id).as_str().to_owned();
        self.move_rows_securely(&[(id.as_str().to_owned(), key)]).await?;
        Ok(true)
    }

    async fn move_to_keys_batch(&self, limit: u32) -> Result<u64> {
        const OP: &str = "moving sessions to their keys";
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions WHERE length(id) = 24 ORDER BY id LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error(OP))?;
        let found = ids.len() as u64;
        if ids.is_empty() {
            return Ok(0);
        }
        let moves = super::migrations::keys_to_move(ids);
        self.move_rows_securely(&moves).await?;
        if found < u64::from(limit) {
            // The last batch: the WAL still holds the pages as they were
            // before each batch; copy the moved pages into the file and
            // empty it (best effort: a reader in the middle of a long read
            // keeps it for now, and the next checkpoint finishes the job).
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await;
        }
        Ok(found)
    }

    async fn recorded_cache(&self) -> Result<Option<AppCache>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT kind, key_prefix FROM session_cache_tier WHERE singleton = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("reading the apps' cache tier"))?;
        Ok(row.map(|(kind, prefix)| AppCache::from_columns(&kind, prefix)))
    }

    async fn record_cache(&self, cache: &AppCache) -> Result<()> {
        let (kind, prefix) = cache.to_columns();
        // Written only when it changes: every app start reads it, few change it.
        sqlx::query(
            "INSERT INTO session_cache_tier (singleton, kind, key_prefix, recorded_at) VALUES (1, ?, ?, ?)
             ON CONFLICT (singleton) DO UPDATE SET kind = excluded.kind, key_prefix = excluded.key_prefix,
                 recorded_at = excluded.recorded_at
             WHERE session_cache_tier.kind IS NOT excluded.kind OR session_cache_tier.key_prefix IS NOT excluded.key_prefix",
        )
        .bind(kind)
        .bind(prefix)
        .bind(ms(crate::record::now()))
        .execute(&self.pool)
        .await
        .map_err(db_error("recording the cache tier"))?;
        Ok(())
    }

    async fn insert_if_absent(&self, record: &Record) -> Result<bool> {
        let result = bind_record(sqlx::query(insert_sql!("ON CONFLICT (id) DO NOTHING")), record)
            .execute(&self.pool)
            .await
            .map_err(db_error("creating a session"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn load(&self, id: &SessionKey) -> Result<Option<Record>> {
        let row = sqlx::query(LOAD_SQL)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("loading a session"))?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        // The version check and the existence check in one statement: a row
        // that is missing cannot be brought back by a stale save.
        let row = bind_update(sqlx::query(concat!(update_sql!(), " AND version = ? RETURNING 1")), record)
            .bind(expected_version)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("saving a session"))?;
        if row.is_some() {
            return Ok(UpdateOutcome::Updated);
        }
        let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = ?")
            .bind(record.id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("saving a session"))?;
        Ok(if exists.is_some() { UpdateOutcome::Conflict } else { UpdateOutcome::Missing })
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>> {
        const OP: &str = "saving a session";
        // Read, apply and write under the write lock (`BEGIN IMMEDIATE`):
        // concurrent patches queue on it, so none loses another's keys.
        // SQLite's JSON functions cannot do this faithfully in the UPDATE
        // itself: `json_patch` merges nested objects and drops keys whose
        // value is null, and `json_set` paths cannot name every key.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error(OP))?;
        let row = sqlx::query(LOAD_SQL).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(db_error(OP))?;
        let Some(row) = row else { return Ok(None) };
        let mut record = row_to_record(&row)?;
        // A patch never brings an expired session back: an admin's `expire`
        // must hold against saves already under way.
        if record.is_expired_at(patch.updated_at) {
            return Ok(None);
        }
        patch.apply(&mut record, true)?;
        bind_update(sqlx::query(update_sql!()), &record).execute(&mut *tx).await.map_err(db_error(OP))?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(Some(record.version))
    }

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        const OP: &str = "moving a session to a new id";
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error(OP))?;
        let deleted = sqlx::query("DELETE FROM sessions WHERE id = ? AND version = ?")
            .bind(old.as_str())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        if deleted.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = ?")
                .bind(old.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error(OP))?;
            return Ok(if exists.is_some() { RotateOutcome::Conflict } else { RotateOutcome::Missing });
        }
        let inserted = bind_record(sqlx::query(insert_sql!("ON CONFLICT (id) DO NOTHING")), record)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        if inserted.rows_affected() == 0 {
            return Ok(RotateOutcome::IdTaken);
        }
        tx.commit().await.map_err(db_error(OP))?;
        Ok(RotateOutcome::Rotated)
    }

    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        let result = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error("deleting a session"))?;
        Ok(result.rows_affected() > 0)
    }
}

#[async_trait]
impl DatabaseAccounts for SqliteDatabase {
    async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> =
            sqlx::query_scalar(concat!("DELETE FROM sessions WHERE ", user_ids!("?"), " RETURNING id"))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error("deleting a user's sessions"))?;
        Ok(parse_ids(ids))
    }

    async fn touch(&self, id: &SessionKey, device: &Device) -> Result<bool> {
        let result = sqlx::query("UPDATE sessions SET last_seen_at = ?, client_ip = ?, user_agent = ? WHERE id = ?")
            .bind(device.last_seen_at.map(ms))
            .bind(device.client_ip.as_deref())
            .bind(device.user_agent.as_deref())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_error("recording a device"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn device(&self, id: &SessionKey) -> Result<Device> {
        let row: Option<(Option<i64>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT last_seen_at, client_ip, user_agent FROM sessions WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("reading a device"))?;
        Ok(row.map_or_else(Device::default, |(seen, client_ip, user_agent)| device_of(seen, client_ip, user_agent)))
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<SessionSummary>> {
        type Row = (String, i64, i64, i64, Option<i64>, Option<String>, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT id, created_at, updated_at, expires_at, last_seen_at, client_ip, user_agent FROM sessions WHERE ",
            user_ids!("?1"),
            " AND expires_at > ?2 ORDER BY max(coalesce(last_seen_at, updated_at), updated_at) DESC, id DESC LIMIT ?3"
        ))
        .bind(user_id)
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("listing a user's sessions"))?;
        rows.into_iter()
            .map(|(id, created, updated, expires, seen, client_ip, user_agent)| {
                let time = |ms: i64| {
                    record::from_millis(ms)
                        .ok_or_else(|| Error::Corrupt { id: id.clone(), reason: format!("time {ms} is out of range") })
                };
                Ok(SessionSummary {
                    id: super::row::stored_key(&id)
                        .map_err(|e| Error::Corrupt { id: id.clone(), reason: e.to_string() })?,
                    created_at: time(created)?,
                    updated_at: time(updated)?,
                    expires_at: time(expires)?,
                    device: device_of(seen, client_ip, user_agent),
                })
            })
            .collect()
    }

    async fn delete_user_sessions_beyond(
        &self,
        user_id: &str,
        keep: &SessionKey,
        newest: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = sqlx::query_scalar(concat!(
            "DELETE FROM sessions WHERE ",
            user_ids!("?1"),
            " AND id <> ?2 AND id NOT IN (SELECT id FROM sessions WHERE ",
            user_ids!("?1"),
            " AND id <> ?2 AND expires_at > ?4",
            " ORDER BY max(coalesce(last_seen_at, updated_at), updated_at) DESC, id DESC LIMIT ?3) RETURNING id"
        ))
        .bind(user_id)
        .bind(keep.as_str())
        .bind(i64::from(newest))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("limiting a user's sessions"))?;
        Ok(parse_ids(ids))
    }

    async fn delete_by_user_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = sqlx::query_scalar(concat!(
            "DELETE FROM sessions WHERE ",
            user_ids!("?1"),
            " AND id <> ?2 AND EXISTS (SELECT 1 FROM sessions WHERE id = ?2 AND user_id = ?1) RETURNING id"
        ))
        .bind(user_id)
        .bind(keep.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("deleting a user's other sessions"))?;
        Ok(parse_ids(ids))
    }
}

#[async_trait]
impl DatabaseMaintenance for SqliteDatabase {
    async fn upsert(&self, record: &Record) -> Result<()> {
        bind_record(
            sqlx::query(insert_sql!(
                "ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_id = excluded.user_id,
                 created_at = excluded.created_at, updated_at = excluded.updated_at,
                 expires_at = excluded.expires_at, version = excluded.version"
            )),
            record,
        )
        .execute(&self.pool)
        .await
        .map_err(db_error("writing a session"))?;
        Ok(())
    }

    async fn devices(&self, ids: &[SessionKey]) -> Result<Vec<(SessionKey, Device)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT id, last_seen_at, client_ip, user_agent FROM sessions WHERE id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_str());
        }
        query.push(") AND (last_seen_at IS NOT NULL OR client_ip IS NOT NULL OR user_agent IS NOT NULL)");
        let rows: Vec<(String, Option<i64>, Option<String>, Option<String>)> =
            query.build_query_as().fetch_all(&self.pool).await.map_err(db_error("reading devices"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, seen, client_ip, user_agent)| {
                Some((super::row::stored_key(&id).ok()?, device_of(seen, client_ip, user_agent)))
            })
            .collect())
    }

    async fn scan(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&ScanCursor>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        // Without a user (whose index finds the rows) this reads the whole
        // table: one scan of each part of the id space, side by side on
        // connections of their own, each keeping its first `limit`. Only
        // the rows listed are decoded (a damaged row another part kept but
        // the page does not list fails nothing). Each part reads its own
        // snapshot: like two pages, a page may see a session moved between
        // them twice or not at all.
        let parts = if filter.user_id.is_some() { 1 } else { self.scan_parts };
        let bounds: Vec<String> = (1..parts).map(|part| id::key_at_fraction(part as f64 / parts as f64)).collect();
        let scans = (0..parts).map(|part| {
            let mut query = scan_query(filter, now);
            if let Some(from) = part.checked_sub(1).map(|below| &bounds[below]) {
                query.push(" AND id >= ").push_bind(from.clone());
            }
            if let Some(to) = bounds.get(part) {
                query.push(" AND id < ").push_bind(to.clone());
            }
            if let Some(after) = after {
                query.push(" AND (expires_at, id) > (").push_bind(ms(after.expires_at)).push(", ");
                query.push_bind(after.id.as_str().to_owned()).push(")");
            }
            query.push(" ORDER BY expires_at, id LIMIT ").push_bind(i64::from(limit));
            async move { query.build().fetch_all(&self.pool).await.map_err(db_error("listing sessions")) }
        });
        let mut rows: Vec<SqliteRow> = futures_util::future::try_join_all(scans).await?.into_iter().flatten().collect();
        if parts > 1 {
            // What the query sorted by; a row without them is decoded (and
            // reported) first.
            fn order(row: &SqliteRow) -> (Option<i64>, Option<&str>) {
                (row.try_get("expires_at").ok(), row.try_get("id").ok())
            }
            rows.sort_by(|a, b| order(a).cmp(&order(b)));
            rows.truncate(limit as usize);
        }
        rows.iter().map(row_to_record).collect()
    }

    async fn scan_by_id(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionKey>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let mut query = scan_query(filter, now);
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.as_str().to_owned());
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error("listing sessions"))?;
        rows.iter().map(row_to_record).collect()
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportWriter>> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error("starting an import"))?;
        Ok(Box::new(SqliteImport { tx }))
    }

    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM sessions");
        push_filter(&mut query, filter, now);
        let count: i64 =
            query.build_query_scalar().fetch_one(&self.pool).await.map_err(db_error("counting sessions"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn expire(&self, ids: &[SessionKey], now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let mut expired = Vec::new();
        for id in ids {
            let row = sqlx::query(
                "UPDATE sessions SET expires_at = min(expires_at, ?1), updated_at = ?1, version = version + 1
                 WHERE id = ?2 RETURNING id",
            )
            .bind(ms(now))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("expiring a session"))?;
            if row.is_some() {
                expired.push(id.clone());
            }
        }
        Ok(expired)
    }

    async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE sessions SET expires_at = ?1, updated_at = ?1, version = version + 1 WHERE ",
            user_ids!("?2"),
            " AND expires_at > ?1 RETURNING id"
        ))
        .bind(ms(now))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("expiring a user's sessions"))?;
        Ok(parse_ids(ids))
    }

    async fn existing(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new("SELECT id FROM sessions WHERE id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.as_str().to_owned());
        }
        query.push(")");
        let found: Vec<String> =
            query.build_query_scalar().fetch_all(&self.pool).await.map_err(db_error("looking up sessions"))?;
        Ok(parse_ids(found))
    }

    async fn stats_rows(&self, after: Option<&str>, limit: u32) -> Result<Vec<StatsRow>> {
        const OP: &str = "computing statistics";
        let rows: Vec<(String, i64, i64, bool)> = sqlx::query_as(
            "SELECT id, length(CAST(data AS BLOB)), expires_at, user_id IS NOT NULL
             FROM sessions WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error(OP))?;
        Ok(rows
            .into_iter()
            .map(|(id, size, expires_at, has_user)| StatsRow {
                id,
                size: size.max(0) as u64,
                // A row whose expiry is out of range counts as long expired.
                expires_at: record::from_millis(expires_at).unwrap_or(DateTime::<Utc>::MIN_UTC),
                has_user,
            })
            .collect())
    }

    async fn count_with_user(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error("counting sessions with a user"))?;
        Ok(count.max(0) as u64)
    }
}

/// Moves rows from their id to their key in one write transaction.
async fn move_rows(connection: &mut SqliteConnection, moves: &[(String, String)]) -> Result<()> {
    const OP: &str = "moving sessions to their keys";
    let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(db_error(OP))?;
    for (id, key) in moves {
        // A row already under the key (an app that hashes wrote it
        // meanwhile) is the newer one: the row under the id goes.
        sqlx::query("UPDATE OR IGNORE sessions SET id = ? WHERE id = ?")
            .bind(key)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        sqlx::query("DELETE FROM sessions WHERE id = ?").bind(id).execute(&mut *tx).await.map_err(db_error(OP))?;
    }
    tx.commit().await.map_err(db_error(OP))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An app's database file, migrated, in a temp dir kept while it lives.
    async fn file_database() -> (tempfile::TempDir, SqliteDatabase) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
        let database = SqliteDatabase::connect_with(&url, Duration::from_secs(15), true).await.unwrap();
        database.migrate().await.unwrap();
        (dir, database)
    }

    /// A damaged row that one part keeps but the page does not list fails
    /// nothing: only the rows listed are decoded (when every part's rows
    /// were, `list --limit 1` failed on a row it would never have shown).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_row_the_page_does_not_list_fails_nothing() {
        let (_dir, mut database) = file_database().await;
        database.scan_parts = 2;
        let now = record::truncate_millis(record::now());
        let insert = |id: String, data: &'static str, expires_in: i64| {
            sqlx::query(
                "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
                 VALUES (?1, ?2, NULL, ?3, ?3, ?4, 1)",
            )
            .bind(id)
            .bind(data)
            .bind(ms(now))
            .bind(ms(now) + expires_in)
        };
        // One in each half of the id space: the first to expire is sound,
        // the other's data is not JSON.
        insert("A".repeat(32), r#"{"n":1}"#, 1_000).execute(&database.pool).await.unwrap();
        insert("z".repeat(32), "{", 60_000).execute(&database.pool).await.unwrap();
        let page = database.scan(&Filter::default(), now, None, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id.as_str(), "A".repeat(32));
        let error = database.scan(&Filter::default(), now, None, 2).await.unwrap_err();
        assert!(matches!(error, Error::Corrupt { .. }), "{error}");
    }

    /// A listing that reads the whole table is split into parts of the id
    /// space scanned side by side: whatever the number of parts, each page
    /// is the next `limit` sessions by expiry, then id, and the pages
    /// together are every matching session once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listing_split_by_id_reads_as_one_sorted_scan() {
        let (_dir, mut database) = file_database().await;
        let now = record::truncate_millis(record::now());
        let mut all = Vec::new();
        for n in 0..600_i64 {
            let (_, id) = SessionKey::generate();
            // Expiries repeat (ties are ordered by id) and half have passed.
            let expires_at = now + chrono::Duration::seconds(n % 40 - 20);
            let record = Record {
                id,
                user_id: None,
                data: serde_json::Map::from_iter([("n".to_owned(), n.into())]).into(),
                created_at: now,
                updated_at: now,
                expires_at,
                version: 1,
            };
            assert!(database.insert_if_absent(&record).await.unwrap());
            all.push(record);
        }
        all.sort_by(|a, b| (a.expires_at, a.id.as_str()).cmp(&(b.expires_at, b.id.as_str())));
        let active: Vec<&Record> = all.iter().filter(|r| r.expires_at > now).collect();
        let ids = |records: &[&Record]| records.iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
        for parts in [1, 2, 3, 4] {
            database.scan_parts = parts;
            for (filter, expected) in [
                (Filter::default(), all.iter().collect::<Vec<_>>()),
                (Filter { state: StateFilter::Active, ..Filter::default() }, active.clone()),
            ] {
                for limit in [1, 7, 250, 1000] {
                    let mut listed = Vec::new();
                    let mut cursor = None;
                    loop {
                        let page = database.scan(&filter, now, cursor.as_ref(), limit).await.unwrap();
                        assert!(page.len() <= limit as usize, "{parts} parts, limit {limit}");
                        let Some(last) = page.last() else { break };
                        cursor = Some(ScanCursor::after(last));
                        listed.extend(page.iter().map(|r| r.id.to_string()));
                    }
                    assert_eq!(listed, ids(&expected), "{parts} parts, limit {limit}, {:?}", filter.state);
                }
            }
        }
    }
}
