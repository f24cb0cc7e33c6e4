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

use super::migrations::AppliedRow;
use super::{
    AppCache, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, DatabasePurge, Device, Filter, ImportCounts,
    ImportWriter, Patch, PurgeBatch, RawRow, RotateOutcome, ScanCursor, SchemaStatus, SessionSummary, StateFilter,
    StatsRow, UpdateOutcome, parse_ids,
};
use crate::error::{Error, Result};
use crate::id::{SessionKey, key_fraction};
use crate::record::{self, Record};

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
}

/// The purge's own connection: its own page cache, and passive checkpoints
/// on its own schedule rather than SQLite's automatic ones.
#[derive(Debug)]
struct PurgeConnection {
    connection: SqliteConnection,
    checkpointer: Checkpointer,
    /// Whether the last window was dense (see [`purge_batch`]).
    dense: bool,
    /// `PRAGMA data_version` after the last batch: it moves when another
    /// connection commits, so an unchanged one means no one else wrote.
    data_version: Option<i64>,
    /// The WAL lag the next batch allows its checkpoints.
    lag: i64,
    /// The window the next batch walks, at most the one asked for: halved
    /// after a batch held the write lock over [`LOCK_CEILING`], grown back
    /// after one under [`LOCK_FLOOR`].
    window: Option<u32>,
}

/// A batch that held the write lock longer than this halves the next
/// window; one shorter than [`LOCK_FLOOR`] grows it by a quarter, back up
/// to the batch size asked for. Windows of 10,000 rows hold it ~8 ms at the
/// median on ten million rows, with outliers past 25 ms (BENCHMARKS.md).
const LOCK_CEILING: Duration = Duration::from_millis(12);
const LOCK_FLOOR: Duration = Duration::from_millis(4);
/// The smallest window the lock bound shrinks to.
const MIN_WINDOW: u32 = 1_000;

/// Passive checkpoints on a second connection, run in the background while
/// the purge reads and deletes its next window: a checkpoint waits on two
/// fsyncs, which cost more than a batch itself when run in line (2M rows,
/// 1% expired, idle: 1.7 s instead of 0.9 s; BENCHMARKS.md). The checkpoints copy
/// the purge's pages back into the database file, so the app's own commits
/// never inherit that work from SQLite's automatic checkpoint.
#[derive(Debug)]
enum Checkpointer {
    /// Idle, with the WAL size (frames) the last checkpoint reported.
    Idle(SqliteConnection, i64),
    /// Running, with the WAL size the one before it reported.
    Running(tokio::task::JoinHandle<(SqliteConnection, i64)>, i64),
    /// Its connection was lost (a failed task): checkpoints run in line.
    Gone,
}

/// WAL size (frames of 4 KiB pages) beyond which the purge waits for the
/// running checkpoint before its next write, so that the write starts the
/// WAL over instead of growing it (left to itself the WAL grew to 590 MB over
/// 1M deletions). Kept under SQLite's automatic checkpoint threshold (1,000
/// frames), which would otherwise make the app's commits do the copying:
/// with 2,000 the purge of 1M rows took 2.7 s instead of 4.3 s when idle, but
/// under traffic the app's slowest save went from 20 ms to 190 ms and one
/// purge write lock to 42 ms (BENCHMARKS.md).
const CHECKPOINT_LAG_FRAMES: i64 = 500;

/// The bound when no one else wrote since the last batch (a quiet night):
/// no app commit would have to copy the WAL back, so the purge lets the
/// checkpoints run behind it instead of waiting on their fsyncs after
/// nearly every batch. 4,000 frames is a 16 MB WAL. Should the app write
/// again, the next batch sees it and goes back to the tight bound.
const QUIET_CHECKPOINT_LAG_FRAMES: i64 = 4_000;

impl Checkpointer {
    /// Before a write: waits for the running checkpoint if the WAL has
    /// grown past `lag` frames.
    async fn settle_if_behind(&mut self, lag: i64) {
        if matches!(self, Checkpointer::Running(task, frames) if *frames > lag && !task.is_finished()) {
            self.settle().await;
        }
    }

    /// Waits for the running checkpoint, if any.
    async fn settle(&mut self) {
        if let Checkpointer::Running(task, _) = self {
            *self = match task.await {
                Ok((connection, frames)) => Checkpointer::Idle(connection, frames),
                Err(_) => Checkpointer::Gone,
            };
        }
    }

    /// After a commit: starts a checkpoint unless one is still running.
    /// Returns false when there is no checkpoint connection any more.
    async fn kick(&mut self) -> bool {
        if matches!(self, Checkpointer::Running(task, _) if task.is_finished()) {
            self.settle().await; // collects its connection at once
        }
        match std::mem::replace(self, Checkpointer::Gone) {
            Checkpointer::Idle(mut connection, frames) => {
                *self = Checkpointer::Running(
                    tokio::spawn(async move {
                        let reported = checkpoint(&mut connection).await.unwrap_or(frames);
                        (connection, reported)
                    }),
                    frames,
                );
                true
            }
            running @ Checkpointer::Running(..) => {
                *self = running;
                true
            }
            Checkpointer::Gone => false,
        }
    }

    /// Waits for the running checkpoint, then closes its connection.
    async fn close(mut self) {
        self.settle().await;
        if let Checkpointer::Idle(connection, _) = self {
            let _ = connection.close().await;
        }
    }
}

/// One passive checkpoint (copies what it can without waiting for, or
/// blocking, anyone); returns the WAL size in frames.
async fn checkpoint(connection: &mut SqliteConnection) -> Option<i64> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(connection).await.ok()?;
    row.try_get::<i64, _>(1).ok()
}

/// Page cache of the purge connection (16 MiB, in KiB as SQLite wants): room
/// for a window's pages between the read that finds its end and the DELETE.
/// Pages are read once per walk, so more does not help: 256 MiB made an idle
/// purge of 2M rows no faster and its RSS 281 MB instead of 27 MB (with
/// traffic, every commit of the app empties this cache anyway).
const PURGE_CACHE_KIB: i64 = 16 * 1024;

impl SqliteDatabase {
    /// Moves rows from their id to their key. The ids must not stay
    /// readable in the file's free space: a connection of its own zeroes
    /// what it deletes (secure_delete), and is closed afterwards rather
    /// than handed back to the pool so set.
    async fn move_rows_securely(&self, moves: &[(String, String)]) -> Result<()> {
        const OP: &str = "moving sessions to their keys";
        let connection = self.pool.acquire().await.map_err(Error::db(BACKEND, OP))?;
        let mut connection = connection.detach();
        sqlx::query("PRAGMA secure_delete = ON").execute(&mut connection).await.map_err(Error::db(BACKEND, OP))?;
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
        read.await.map_err(Error::db(BACKEND, "reading the schema version"))
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
            .map_err(Error::db(BACKEND, "parsing the database URL"))?
            .create_if_missing(create)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
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
            .acquire_timeout(timeout);
        let pool = super::timed::bounded(BACKEND, "opening the database", timeout, async {
            pool.connect_with(options).await.map_err(Error::db(BACKEND, "opening the database"))
        })
        .await?;
        Ok(SqliteDatabase { pool, purge_options, purge: Arc::default() })
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
        let existing: std::collections::HashSet<String> = query
            .build_query_scalar()
            .fetch_all(&mut *self.tx)
            .await
            .map_err(Error::db(BACKEND, OP))?
            .into_iter()
            .collect();
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
            query.build().execute(&mut *self.tx).await.map_err(Error::db(BACKEND, OP))?;
        }
        Ok(ImportCounts::of_batch(records.len(), existing.len(), replace))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(Error::db(BACKEND, "committing an import"))
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
        // sqlx's migration lock does nothing on SQLite: two processes
        // starting at once both find a step pending, and the second fails
        // to record it after the first did (rebuilding the user index on a
        // large table makes that window seconds long). The step itself is
        // one transaction, so the loser changed nothing: run again, and
        // find everything applied.
        let migrator = super::migrations::sqlite();
        match migrator.run(&self.pool).await {
            Ok(()) => Ok(()),
            Err(first) => match migrator.run(&self.pool).await {
                Ok(()) => Ok(()),
                Err(_) => Err(Error::Migrate { backend: BACKEND, source: Box::new(first) }),
            },
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
        let applied = read.await.map_err(Error::db(BACKEND, "reading the schema version"))?;
        let ids_to_move = self.ids_to_move().await?;
        super::migrations::status(BACKEND, super::migrations::SQLITE_STEPS, &applied, ids_to_move)
    }

    async fn move_id_to_key(&self, id: &crate::SessionId) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "moving a session to its key"))?;
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
            .map_err(Error::db(BACKEND, OP))?;
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
                .map_err(Error::db(BACKEND, "reading the apps' cache tier"))?;
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
        .map_err(Error::db(BACKEND, "recording the cache tier"))?;
        Ok(())
    }

    async fn insert_if_absent(&self, record: &Record) -> Result<bool> {
        let result = bind_record(sqlx::query(insert_sql!("ON CONFLICT (id) DO NOTHING")), record)
            .execute(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "creating a session"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn load(&self, id: &SessionKey) -> Result<Option<Record>> {
        let row = sqlx::query(LOAD_SQL)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "loading a session"))?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        // The version check and the existence check in one statement: a row
        // that is missing cannot be brought back by a stale save.
        let row = bind_update(sqlx::query(concat!(update_sql!(), " AND version = ? RETURNING 1")), record)
            .bind(expected_version)
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "saving a session"))?;
        if row.is_some() {
            return Ok(UpdateOutcome::Updated);
        }
        let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = ?")
            .bind(record.id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "saving a session"))?;
        Ok(if exists.is_some() { UpdateOutcome::Conflict } else { UpdateOutcome::Missing })
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>> {
        const OP: &str = "saving a session";
        // Read, apply and write under the write lock (`BEGIN IMMEDIATE`):
        // concurrent patches queue on it, so none loses another's keys.
        // SQLite's JSON functions cannot do this faithfully in the UPDATE
        // itself: `json_patch` merges nested objects and drops keys whose
        // value is null, and `json_set` paths cannot name every key.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::db(BACKEND, OP))?;
        let row =
            sqlx::query(LOAD_SQL).bind(id.as_str()).fetch_optional(&mut *tx).await.map_err(Error::db(BACKEND, OP))?;
        let Some(row) = row else { return Ok(None) };
        let mut record = row_to_record(&row)?;
        // A patch never brings an expired session back: an admin's `expire`
        // must hold against saves already under way.
        if record.is_expired_at(patch.updated_at) {
            return Ok(None);
        }
        patch.apply(&mut record, true)?;
        bind_update(sqlx::query(update_sql!()), &record).execute(&mut *tx).await.map_err(Error::db(BACKEND, OP))?;
        tx.commit().await.map_err(Error::db(BACKEND, OP))?;
        Ok(Some(record.version))
    }

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        const OP: &str = "moving a session to a new id";
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::db(BACKEND, OP))?;
        let deleted = sqlx::query("DELETE FROM sessions WHERE id = ? AND version = ?")
            .bind(old.as_str())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(BACKEND, OP))?;
        if deleted.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = ?")
                .bind(old.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(Error::db(BACKEND, OP))?;
            return Ok(if exists.is_some() { RotateOutcome::Conflict } else { RotateOutcome::Missing });
        }
        let inserted = bind_record(sqlx::query(insert_sql!("ON CONFLICT (id) DO NOTHING")), record)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(BACKEND, OP))?;
        if inserted.rows_affected() == 0 {
            return Ok(RotateOutcome::IdTaken);
        }
        tx.commit().await.map_err(Error::db(BACKEND, OP))?;
        Ok(RotateOutcome::Rotated)
    }

    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        let result = sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "deleting a session"))?;
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
                .map_err(Error::db(BACKEND, "deleting a user's sessions"))?;
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
            .map_err(Error::db(BACKEND, "recording a device"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn device(&self, id: &SessionKey) -> Result<Device> {
        let row: Option<(Option<i64>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT last_seen_at, client_ip, user_agent FROM sessions WHERE id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::db(BACKEND, "reading a device"))?;
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
        .map_err(Error::db(BACKEND, "listing a user's sessions"))?;
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
        .map_err(Error::db(BACKEND, "limiting a user's sessions"))?;
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
        .map_err(Error::db(BACKEND, "deleting a user's other sessions"))?;
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
        .map_err(Error::db(BACKEND, "writing a session"))?;
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
            query.build_query_as().fetch_all(&self.pool).await.map_err(Error::db(BACKEND, "reading devices"))?;
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
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM sessions"));
        push_filter(&mut query, filter, now);
        // Rows an older build stored under their id are left out until
        // moved (`sessionctl migrate`): read under their key, they would
        // break a walk in key order.
        query.push(" AND length(id) <> 24");
        if let Some(after) = after {
            query.push(" AND (expires_at, id) > (").push_bind(ms(after.expires_at)).push(", ");
            query.push_bind(after.id.as_str().to_owned()).push(")");
        }
        query.push(" ORDER BY expires_at, id LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await.map_err(Error::db(BACKEND, "listing sessions"))?;
        rows.iter().map(row_to_record).collect()
    }

    async fn scan_by_id(
        &self,
        filter: &Filter,
        now: DateTime<Utc>,
        after: Option<&SessionKey>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM sessions"));
        push_filter(&mut query, filter, now);
        // Rows an older build stored under their id are left out until
        // moved (`sessionctl migrate`): read under their key, they would
        // break a walk in key order.
        query.push(" AND length(id) <> 24");
        if let Some(after) = after {
            query.push(" AND id > ").push_bind(after.as_str().to_owned());
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await.map_err(Error::db(BACKEND, "listing sessions"))?;
        rows.iter().map(row_to_record).collect()
    }

    async fn begin_import(&self) -> Result<Box<dyn ImportWriter>> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::db(BACKEND, "starting an import"))?;
        Ok(Box::new(SqliteImport { tx }))
    }

    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut query = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM sessions");
        push_filter(&mut query, filter, now);
        let count: i64 =
            query.build_query_scalar().fetch_one(&self.pool).await.map_err(Error::db(BACKEND, "counting sessions"))?;
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
            .map_err(Error::db(BACKEND, "expiring a session"))?;
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
        .map_err(Error::db(BACKEND, "expiring a user's sessions"))?;
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
        let found: Vec<String> = query
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(Error::db(BACKEND, "looking up sessions"))?;
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
        .map_err(Error::db(BACKEND, OP))?;
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
            .map_err(Error::db(BACKEND, "counting sessions with a user"))?;
        Ok(count.max(0) as u64)
    }
}

#[async_trait]
impl DatabasePurge for SqliteDatabase {
    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        const OP: &str = "claiming a purge tick";
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(Error::db(BACKEND, OP))?;
        sqlx::query("DELETE FROM purge_ticks WHERE tick < ?")
            .bind(ms(tick) - TICK_RETENTION_MS)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(BACKEND, OP))?;
        let claimed = sqlx::query(
            "INSERT INTO purge_ticks (tick, claimed_by, claimed_at) VALUES (?, ?, ?)
             ON CONFLICT (tick) DO UPDATE SET claimed_at = excluded.claimed_at
             WHERE purge_ticks.claimed_by = excluded.claimed_by",
        )
        .bind(ms(tick))
        .bind(claimant)
        .bind(ms(record::now()))
        .execute(&mut *tx)
        .await
        .map_err(Error::db(BACKEND, OP))?;
        tx.commit().await.map_err(Error::db(BACKEND, OP))?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn try_purge_lock(&self) -> Result<Option<Box<dyn super::PurgeLock>>> {
        Ok(Some(Box::new(super::LocalPurgeLock)))
    }

    async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
        return_ids: bool,
    ) -> Result<PurgeBatch> {
        const OP: &str = "purging expired sessions";
        let Some(options) = &self.purge_options else {
            // In memory: the pool's one connection is the database.
            let mut connection = self.pool.acquire().await.map_err(Error::db(BACKEND, OP))?;
            return purge_batch(&mut connection, now, after, window, return_ids, &mut false, None).await;
        };
        let mut purge = self.purge.lock().await;
        if purge.is_none() {
            let open = async || -> std::result::Result<SqliteConnection, sqlx::Error> {
                let mut connection = SqliteConnection::connect_with(options).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{PURGE_CACHE_KIB}")))
                    .execute(&mut connection)
                    .await?;
                sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut connection).await?;
                Ok(connection)
            };
            let connection = open().await.map_err(Error::db(BACKEND, OP))?;
            let checkpointer = match open().await {
                Ok(connection) => Checkpointer::Idle(connection, 0),
                Err(_) => Checkpointer::Gone,
            };
            *purge = Some(PurgeConnection {
                connection,
                checkpointer,
                dense: false,
                data_version: None,
                lag: CHECKPOINT_LAG_FRAMES,
                window: None,
            });
        }
        let state = purge.as_mut().expect("just opened");
        let window = state.window.map_or(window, |shrunk| shrunk.min(window)).max(1);
        let result = purge_batch(
            &mut state.connection,
            now,
            after,
            window,
            return_ids,
            &mut state.dense,
            Some((&mut state.checkpointer, state.lag)),
        )
        .await;
        let version = sqlx::query_scalar::<_, i64>("PRAGMA data_version").fetch_one(&mut state.connection).await.ok();
        let quiet = version.is_some() && version == state.data_version;
        state.lag = if quiet { QUIET_CHECKPOINT_LAG_FRAMES } else { CHECKPOINT_LAG_FRAMES };
        state.data_version = version;
        if let Ok(batch) = &result {
            state.window = if batch.write_lock > LOCK_CEILING {
                Some((window / 2).max(MIN_WINDOW.min(window)))
            } else if batch.write_lock < LOCK_FLOOR {
                Some(window.saturating_add(window / 4))
            } else {
                Some(window)
            };
        }
        let walk_over = !matches!(&result, Ok(batch) if batch.next.is_some());
        // A passive checkpoint after every batch, in the background: the
        // app's own commits then find the WAL already copied back and never
        // pay for the purge's writes (writer p99 ~18 ms instead of ~200 ms
        // with one every 20 batches; BENCHMARKS.md).
        if !state.checkpointer.kick().await {
            checkpoint(&mut state.connection).await;
        }
        if walk_over {
            // Done (or failed): checkpoint what is left, give the page cache back.
            if let Some(mut state) = purge.take() {
                state.checkpointer.close().await;
                checkpoint(&mut state.connection).await;
                let _ = state.connection.close().await;
            }
        }
        result
    }
}

/// Windows in which at most 1 row in this many is expired delete those rows
/// by id rather than by range.
const SPARSE_WINDOW_SHARE: i64 = 8;

/// One purge batch on `connection`. A read outside the write lock finds the
/// window's upper end (the `window`-th id after the cursor, or the end of
/// the table); then one DELETE, its own short write transaction, deletes the
/// window's expired rows, re-checking expiry row by row.
///
/// How depends on the last window (`dense`), as expired rows are spread
/// evenly over random ids. After a sparse one, the read also counts and lists
/// the window's expired rows: with none the batch takes no write lock at
/// all, with few (at most 1 in 8) it deletes them by id, so the locked part
/// touches only their pages. After a dense one, the read only skips to the
/// window's end (no per-row work) and the DELETE takes the whole range.
async fn purge_batch(
    connection: &mut SqliteConnection,
    now: DateTime<Utc>,
    after: Option<&str>,
    window: u32,
    return_ids: bool,
    dense: &mut bool,
    checkpointer: Option<(&mut Checkpointer, i64)>,
) -> Result<PurgeBatch> {
    const OP: &str = "purging expired sessions";
    let after = after.unwrap_or("");
    let window = i64::from(window.max(1));
    // The window's end, the ids to delete by id (sparse windows only), and
    // whether the read found nothing expired before the table's end.
    let (upper, expired_ids, none_expired) = if *dense {
        let upper: Option<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?")
                .bind(after)
                .bind(window - 1)
                .fetch_optional(&mut *connection)
                .await
                .map_err(Error::db(BACKEND, OP))?;
        (upper, None, false)
    } else {
        let (rows, upper, expired, ids): (i64, Option<String>, i64, Option<String>) = sqlx::query_as(
            "SELECT count(*), max(id), count(*) FILTER (WHERE expires_at <= ?3), \
                    json_group_array(id) FILTER (WHERE expires_at <= ?3) \
             FROM (SELECT id, expires_at FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2)",
        )
        .bind(after)
        .bind(window)
        .bind(ms(now))
        .fetch_one(&mut *connection)
        .await
        .map_err(Error::db(BACKEND, OP))?;
        let upper = if rows < window { None } else { upper };
        let sparse = upper.is_some() && expired <= window / SPARSE_WINDOW_SHARE;
        let none_expired = upper.is_some() && expired == 0;
        (upper, ids.filter(|_| sparse), none_expired)
    };
    let progress = upper.as_deref().map_or(1.0, key_fraction);
    if none_expired {
        let write_lock = Duration::ZERO;
        return Ok(PurgeBatch { deleted: Vec::new(), deleted_count: 0, next: upper, progress, write_lock });
    }
    // Range statements in two shapes, so the primary key bounds the range on
    // both ends (an `upper IS NULL OR` would make every batch scan to the end).
    let by_id = expired_ids.is_some();
    let sql = match (by_id, &upper, return_ids) {
        (true, _, true) => {
            "DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?2)) AND expires_at <= ?3 RETURNING id"
        }
        (true, _, false) => "DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?2)) AND expires_at <= ?3",
        (false, Some(_), true) => "DELETE FROM sessions WHERE id > ?1 AND id <= ?2 AND expires_at <= ?3 RETURNING id",
        (false, Some(_), false) => "DELETE FROM sessions WHERE id > ?1 AND id <= ?2 AND expires_at <= ?3",
        (false, None, true) => "DELETE FROM sessions WHERE id > ?1 AND expires_at <= ?3 RETURNING id",
        (false, None, false) => "DELETE FROM sessions WHERE id > ?1 AND expires_at <= ?3",
    };
    let second = if by_id { expired_ids.as_deref() } else { upper.as_deref() };
    if let Some((checkpointer, lag)) = checkpointer {
        checkpointer.settle_if_behind(lag).await;
    }
    // The DELETE is its own transaction: a write statement takes the write
    // lock when it starts (waiting out the busy timeout), as `BEGIN
    // IMMEDIATE` would, but outside an explicit transaction SQLite keeps no
    // statement journal of the pages it changes (the expression index makes
    // it keep one otherwise): windows of 10,000 rows on ten million took
    // 7.7 ms instead of 10.7 ms at the median (BENCHMARKS.md, issue #15).
    let locked_at = std::time::Instant::now();
    let query = sqlx::query(sql).bind(after).bind(second).bind(ms(now));
    let (deleted, deleted_count) = if return_ids {
        let rows = query.fetch_all(&mut *connection).await.map_err(Error::db(BACKEND, OP))?;
        let ids: Vec<String> = rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect();
        let count = ids.len() as u64;
        (parse_ids(ids), count)
    } else {
        let result = query.execute(&mut *connection).await.map_err(Error::db(BACKEND, OP))?;
        (Vec::new(), result.rows_affected())
    };
    let write_lock = locked_at.elapsed();
    *dense = deleted_count.saturating_mul(SPARSE_WINDOW_SHARE as u64) > window as u64;
    Ok(PurgeBatch { deleted, deleted_count, next: upper, progress, write_lock })
}

/// Moves rows from their id to their key in one write transaction.
async fn move_rows(connection: &mut SqliteConnection, moves: &[(String, String)]) -> Result<()> {
    const OP: &str = "moving sessions to their keys";
    let mut tx = connection.begin_with("BEGIN IMMEDIATE").await.map_err(Error::db(BACKEND, OP))?;
    for (id, key) in moves {
        // A row already under the key (an app that hashes wrote it
        // meanwhile) is the newer one: the row under the id goes.
        sqlx::query("UPDATE OR IGNORE sessions SET id = ? WHERE id = ?")
            .bind(key)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(BACKEND, OP))?;
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(Error::db(BACKEND, OP))?;
    }
    tx.commit().await.map_err(Error::db(BACKEND, OP))
}
