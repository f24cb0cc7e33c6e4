//! The PostgreSQL database tier: for several app servers and large tables.
//!
//! Every write is one statement (or, for id rotation, one short transaction),
//! relying on PostgreSQL's row locks: a versioned UPDATE that races another
//! waits for it, re-reads the row and then misses on the version, which the
//! session turns into a reload-and-reapply. The request path's statements run
//! on connections of its own (`conns.rs`), one round trip each; the rest on sqlx's pool.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection as _, Postgres, QueryBuilder, Row};

use super::faults::FaultClock;
use super::migrations::AppliedRow;
use super::{
    AppCache, DatabaseAccounts, DatabaseCore, DatabaseMaintenance, DatabasePurge, Device, Filter, ImportCounts,
    ImportWriter, Patch, PurgeBatch, RawRow, RotateOutcome, ScanCursor, SchemaStatus, SessionSummary, StateFilter,
    StatsRow, UpdateOutcome, parse_ids,
};
use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};

mod conns;

const BACKEND: &str = "postgres";
const COLUMNS: &str = "id, data::text AS data, user_id, created_at, updated_at, expires_at, version";
/// The INSERT of a whole record (bound by [`bind_record`]), followed by the
/// given conflict clause.
macro_rules! insert_sql {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
             VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7) ",
            $on_conflict
        )
    };
}

/// The advisory lock key that elects the purging replica ("sessionctl purge").
const PURGE_LOCK_KEY: i64 = 0x5345_5353_4354_4c50;

/// The purge leadership: an advisory lock held on one pooled connection.
#[derive(Debug)]
struct AdvisoryLock {
    connection: sqlx::pool::PoolConnection<Postgres>,
}

#[async_trait]
impl super::PurgeLock for AdvisoryLock {
    async fn release(mut self: Box<Self>) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PURGE_LOCK_KEY)
            .execute(&mut *self.connection)
            .await
            .map_err(db_error("releasing the purge lock"))?;
        // Closing (see `try_purge_lock`) also ends the session cleanly.
        Ok(())
    }
}

/// PostgreSQL behind a connection pool.
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    /// The per-request statements' connections (load, save, delete, device).
    conns: conns::Conns,
    /// Everything else: the CLI's and the maintenance statements.
    pool: PgPool,
    /// One connection with `synchronous_commit = off`, for purge batches only.
    purge_pool: PgPool,
}

impl PostgresDatabase {
    /// Whether any session is still stored under its id (found through
    /// migration 5's partial index; `false` before it is applied, when the
    /// pending migration says enough).
    async fn ids_to_move(&self) -> Result<bool> {
        let read = async {
            let indexed: bool = sqlx::query_scalar("SELECT to_regclass('sessions_under_ids') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
            if !indexed {
                return Ok(false);
            }
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sessions WHERE length(id) = 24)")
                .fetch_one(&self.pool)
                .await
        };
        read.await.map_err(db_error("reading the schema version"))
    }

    /// Connects to the database a `postgres://` URL names.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout.
    pub async fn connect(url: &str) -> Result<PostgresDatabase> {
        PostgresDatabase::connect_with_timeout(url, super::DEFAULT_DATABASE_TIMEOUT).await
    }

    /// Like [`connect`](Self::connect), with `timeout` bounding the first
    /// connection and every later pool acquisition (a server that accepts
    /// TCP but never answers fails here instead of hanging).
    ///
    /// # Errors
    ///
    /// Fails with [`Error::UnsupportedUrl`] for a scheme other than
    /// `sqlite:`/`postgres:`, [`Error::Database`] when the URL does not parse or the
    /// database cannot be opened, and [`Error::Timeout`] when connecting takes longer
    /// than the timeout.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<PostgresDatabase> {
        let options = PgConnectOptions::from_str(url)
            .map_err(db_error("parsing the database URL"))?
            .application_name("sessionctl");
        // One direct connection first: an unreachable server or a refused
        // login is reported as such, at once, instead of as a pool timeout.
        let probe = super::timed::bounded(BACKEND, "connecting", timeout, async {
            PgConnection::connect_with(&options).await.map_err(db_error("connecting"))
        })
        .await?;
        probe.close().await.ok();
        // The purge's DELETEs commit without waiting for the WAL flush: if the
        // server crashes, the last few batches come back as expired rows for
        // the next purge, which is harmless, and a walk of thousands of
        // batches does not wait for thousands of flushes. Its connection
        // closes a minute after the purge.
        let purge_pool = READ_ONLY_FAULTS
            .retire_opened_before(PgPoolOptions::new())
            .max_connections(1)
            .min_connections(0)
            .idle_timeout(Duration::from_secs(60))
            .acquire_timeout(timeout)
            .connect_lazy_with(options.clone().options([("synchronous_commit", "off")]));
        // 16 connections at most, as with one pool: 12 for the request
        // path, 4 for logins' id rotation, accounts and the admin tool.
        let conns = conns::Conns::new(options.clone(), 12, timeout);
        let pool = READ_ONLY_FAULTS
            .retire_opened_before(PgPoolOptions::new())
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(PostgresDatabase { conns, pool, purge_pool })
    }

    /// The underlying pool, for callers that need raw SQL (benchmarks).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// [`Error::db`] for PostgreSQL, noting a write the server refused as
/// read-only ([`READ_ONLY_FAULTS`]).
fn db_error(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
    move |source| {
        READ_ONLY_FAULTS.note_if(&source, |code| code == "25006");
        Error::db(BACKEND, operation)(source)
    }
}

/// Writes refused as read-only (25006, `read_only_sql_transaction`): a
/// connection opened on a server that takes no writes (a standby, a primary
/// demoted by a failover) keeps that state for life. The pools retire the
/// connections opened before the last one as they hand them out, so new
/// ones may reach the new primary; the request path's own connections are
/// closed on the error itself (`conns.rs`).
static READ_ONLY_FAULTS: FaultClock = FaultClock::new();

fn row_to_record(row: &PgRow) -> Result<Record> {
    let raw = (|| -> std::result::Result<RawRow, sqlx::Error> {
        Ok(RawRow {
            id: row.try_get("id")?,
            data: row.try_get("data")?,
            user_id: row.try_get("user_id")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            expires_at: row.try_get("expires_at")?,
            version: row.try_get("version")?,
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

fn bind_record<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    record: &'q Record,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(record.id.as_str())
        .bind(record.data_json())
        .bind(record.user_id.as_deref())
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind(record.expires_at)
        .bind(record.version)
}

/// The rows a scan walks: those matching `filter`, less the rows an older
/// build stored under their id, left out until moved (`sessionctl
/// migrate`): read under their key, they would break a walk in key order.
/// (Counts include them.)
fn scan_query(filter: &Filter, now: DateTime<Utc>) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM sessions"));
    push_filter(&mut query, filter, now);
    query.push(" AND length(id) <> 24");
    query
}

fn push_filter(query: &mut QueryBuilder<Postgres>, filter: &Filter, now: DateTime<Utc>) {
    query.push(" WHERE TRUE");
    match filter.state {
        StateFilter::All => {}
        StateFilter::Active => {
            query.push(" AND expires_at > ").push_bind(now);
        }
        StateFilter::Expired => {
            query.push(" AND expires_at <= ").push_bind(now);
        }
    }
    if let Some(user_id) = &filter.user_id {
        query.push(" AND user_id = ").push_bind(user_id.clone());
    }
    if let Some(key) = &filter.key {
        query.push(" AND data ? ").push_bind(key.clone());
    }
}

/// A device from its three columns.
fn device_of(seen: Option<DateTime<Utc>>, client_ip: Option<String>, user_agent: Option<String>) -> Device {
    Device { last_seen_at: seen.map(record::truncate_millis), client_ip, user_agent }
}

/// Orders what deletes a user's sessions (exclusive) after what moves one
/// of them to a new id (shared). A rotation deletes the old row and inserts
/// the new one in one transaction; a DELETE of the user's sessions running
/// meanwhile would wait on the old row, find it gone, and never see the new
/// one (its snapshot predates it), so the session would escape a "log out
/// everywhere". A transaction-scoped advisory lock per user (the
/// two-integer form, class `SESS`, a key space apart from the purge's)
/// makes the DELETE start after the rotation commits.
async fn lock_user(tx: &mut sqlx::Transaction<'static, Postgres>, user_id: &str, exclusive: bool) -> sqlx::Result<()> {
    const CLASS: i32 = 0x5345_5353; // "SESS"
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock($1, hashtext($2))::text"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1, hashtext($2))::text"
    };
    sqlx::query(sql).bind(CLASS).bind(user_id).execute(&mut **tx).await?;
    Ok(())
}

/// An import's transaction (rolled back when dropped).
struct PostgresImport {
    tx: sqlx::Transaction<'static, Postgres>,
}

#[async_trait]
impl ImportWriter for PostgresImport {
    async fn write(&mut self, records: &[Record], devices: &[Device], replace: bool) -> Result<ImportCounts> {
        const OP: &str = "importing sessions";
        if records.is_empty() {
            return Ok(ImportCounts::default());
        }
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let existing: std::collections::HashSet<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db_error(OP))?
                .into_iter()
                .collect();
        let blank = Device::default();
        let (written, written_devices): (Vec<&Record>, Vec<&Device>) = records
            .iter()
            .zip(devices.iter().chain(std::iter::repeat(&blank)))
            .filter(|(r, _)| replace || !existing.contains(r.id.as_str()))
            .unzip();
        if !written.is_empty() {
            // Columns as arrays: one statement and ten parameters for the
            // whole batch.
            let column = |f: &dyn Fn(&Record) -> String| written.iter().map(|r| f(r)).collect::<Vec<String>>();
            let ids = column(&|r| r.id.to_string());
            let data = column(&|r| r.data_json());
            let users: Vec<Option<&str>> = written.iter().map(|r| r.user_id.as_deref()).collect();
            let time = |f: fn(&Record) -> DateTime<Utc>| written.iter().map(|r| f(r)).collect::<Vec<DateTime<Utc>>>();
            let versions: Vec<i64> = written.iter().map(|r| r.version).collect();
            let seen: Vec<Option<DateTime<Utc>>> = written_devices.iter().map(|d| d.last_seen_at).collect();
            let ips: Vec<Option<&str>> = written_devices.iter().map(|d| d.client_ip.as_deref()).collect();
            let agents: Vec<Option<&str>> = written_devices.iter().map(|d| d.user_agent.as_deref()).collect();
            sqlx::query(
                "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version,
                                       last_seen_at, client_ip, user_agent)
                 SELECT id, data::jsonb, user_id, created_at, updated_at, expires_at, version,
                        last_seen_at, client_ip, user_agent
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                             $6::timestamptz[], $7::bigint[], $8::timestamptz[], $9::text[], $10::text[])
                      AS t (id, data, user_id, created_at, updated_at, expires_at, version,
                            last_seen_at, client_ip, user_agent)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, user_id = excluded.user_id,
                     created_at = excluded.created_at, updated_at = excluded.updated_at,
                     expires_at = excluded.expires_at, version = excluded.version,
                     last_seen_at = excluded.last_seen_at, client_ip = excluded.client_ip,
                     user_agent = excluded.user_agent",
            )
            .bind(&ids)
            .bind(&data)
            .bind(&users)
            .bind(time(|r| r.created_at))
            .bind(time(|r| r.updated_at))
            .bind(time(|r| r.expires_at))
            .bind(&versions)
            .bind(&seen)
            .bind(&ips)
            .bind(&agents)
            .execute(&mut *self.tx)
            .await
            .map_err(db_error(OP))?;
        }
        Ok(ImportCounts::of_batch(records.len(), existing.len(), replace))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await.map_err(db_error("committing an import"))
    }
}

#[async_trait]
impl DatabaseCore for PostgresDatabase {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn migrate(&self) -> Result<()> {
        super::migrations::postgres()
            .run(&self.pool)
            .await
            .map_err(|source| Error::Migrate { backend: BACKEND, source: Box::new(source) })
    }

    async fn schema_status(&self) -> Result<SchemaStatus> {
        let read = async {
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&self.pool).await?;
            if !exists {
                return Ok(Vec::new());
            }
            sqlx::query_as::<_, AppliedRow>("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await
        };
        let applied = read.await.map_err(db_error("reading the schema version"))?;
        let ids_to_move = self.ids_to_move().await?;
        super::migrations::status(BACKEND, super::migrations::POSTGRES_STEPS, &applied, ids_to_move)
    }

    async fn move_id_to_key(&self, id: &crate::SessionId) -> Result<bool> {
        const OP: &str = "moving a session to its key";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        if found.is_none() {
            return Ok(false);
        }
        let key = SessionKey::of(id).as_str().to_owned();
        move_rows(&mut tx, &[id.as_str().to_owned()], &[key]).await?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(true)
    }

    async fn move_to_keys_batch(&self, limit: u32) -> Result<u64> {
        const OP: &str = "moving sessions to their keys";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        // Locked as they are read, so an older app's write to one of them
        // waits for the move instead of racing it.
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE length(id) = 24 ORDER BY id LIMIT $1 FOR UPDATE")
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error(OP))?;
        let found = ids.len() as u64;
        if ids.is_empty() {
            return Ok(0);
        }
        let (old, keys): (Vec<String>, Vec<String>) = super::migrations::keys_to_move(ids).into_iter().unzip();
        move_rows(&mut tx, &old, &keys).await?;
        tx.commit().await.map_err(db_error(OP))?;
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
            "INSERT INTO session_cache_tier (singleton, kind, key_prefix, recorded_at) VALUES (1, $1, $2, now())
             ON CONFLICT (singleton) DO UPDATE SET kind = excluded.kind, key_prefix = excluded.key_prefix,
                 recorded_at = excluded.recorded_at
             WHERE session_cache_tier.kind IS DISTINCT FROM excluded.kind
                OR session_cache_tier.key_prefix IS DISTINCT FROM excluded.key_prefix",
        )
        .bind(kind)
        .bind(prefix)
        .execute(&self.pool)
        .await
        .map_err(db_error("recording the cache tier"))?;
        Ok(())
    }

    async fn insert_if_absent(&self, record: &Record) -> Result<bool> {
        let result = self
            .conns
            .run(async |conn| {
                bind_record(sqlx::query(insert_sql!("ON CONFLICT (id) DO NOTHING")), record).execute(conn).await
            })
            .await
            .map_err(db_error("creating a session"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn load(&self, id: &SessionKey) -> Result<Option<Record>> {
        let sql = "SELECT id, data::text AS data, user_id, created_at, updated_at, expires_at, version FROM sessions WHERE id = $1";
        let row = self
            .conns
            .run(async |conn| sqlx::query(sql).bind(id.as_str()).fetch_optional(conn).await)
            .await
            .map_err(db_error("loading a session"))?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        // One round trip tells all three outcomes: the CTE sees the row as it
        // was before this statement, the UPDATE only if the version matched.
        let query = sqlx::query(
            "WITH updated AS (
                 UPDATE sessions SET data = $2::jsonb, user_id = $3, updated_at = $4, expires_at = $5, version = $6
                 WHERE id = $1 AND version = $7 RETURNING 1
             )
             SELECT (SELECT count(*) FROM updated) AS updated,
                    EXISTS (SELECT 1 FROM sessions WHERE id = $1) AS present",
        )
        .bind(record.id.as_str())
        .bind(record.data_json())
        .bind(record.user_id.as_deref())
        .bind(record.updated_at)
        .bind(record.expires_at)
        .bind(record.version)
        .bind(expected_version);
        let row =
            self.conns.run(async |conn| query.fetch_one(conn).await).await.map_err(db_error("saving a session"))?;
        let updated: i64 = row.try_get("updated").map_err(db_error("saving a session"))?;
        let present: bool = row.try_get("present").map_err(db_error("saving a session"))?;
        Ok(match (updated, present) {
            (1.., _) => UpdateOutcome::Updated,
            (_, true) => UpdateOutcome::Conflict,
            (_, false) => UpdateOutcome::Missing,
        })
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch) -> Result<Option<i64>> {
        const OP: &str = "saving a session";
        // The row lock makes concurrent patches queue: each one sees the
        // row as the one before left it, so none loses another's keys.
        let query = sqlx::query_scalar(
            "UPDATE sessions SET data = (data - $2::text[]) || $3::jsonb,
                 user_id = CASE WHEN $4 THEN $5 ELSE user_id END,
                 expires_at = COALESCE($6, expires_at),
                 updated_at = $7, version = version + 1
             WHERE id = $1 AND version < $8 AND expires_at > $7
             RETURNING version",
        )
        .bind(id.as_str())
        .bind(&patch.removed)
        .bind(record::encode_data(&patch.set))
        .bind(patch.user_id.is_some())
        .bind(patch.user_id.clone().flatten())
        .bind(patch.expires_at)
        .bind(patch.updated_at)
        .bind(record::MAX_VERSION);
        let row: Option<i64> =
            self.conns.run(async |conn| query.fetch_optional(conn).await).await.map_err(db_error(OP))?;
        if let Some(version) = row {
            return Ok(Some(version));
        }
        let version: Option<i64> = self
            .conns
            .run(async |conn| {
                sqlx::query_scalar("SELECT version FROM sessions WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(conn)
                    .await
            })
            .await
            .map_err(db_error(OP))?;
        // Gone, expired (a patch never brings an expired session back: an
        // admin's `expire` must hold against saves already under way), or
        // at the version limit.
        match version {
            None => Ok(None),
            Some(version) => record::next_version(id, version).map(|_| None),
        }
    }

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        const OP: &str = "moving a session to a new id";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        if let Some(user_id) = &record.user_id {
            lock_user(&mut tx, user_id, false).await.map_err(db_error(OP))?;
        }
        let deleted = sqlx::query("DELETE FROM sessions WHERE id = $1 AND version = $2")
            .bind(old.as_str())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        if deleted.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = $1")
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
        let result = self
            .conns
            .run(async |conn| sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id.as_str()).execute(conn).await)
            .await
            .map_err(db_error("deleting a session"))?;
        Ok(result.rows_affected() > 0)
    }
}

#[async_trait]
impl DatabaseAccounts for PostgresDatabase {
    async fn delete_by_user(&self, user_id: &str) -> Result<Vec<SessionKey>> {
        const OP: &str = "deleting a user's sessions";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        lock_user(&mut tx, user_id, true).await.map_err(db_error(OP))?;
        let ids: Vec<String> = sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING id")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error(OP))?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(parse_ids(ids))
    }

    async fn touch(&self, id: &SessionKey, device: &Device) -> Result<bool> {
        let query = sqlx::query("UPDATE sessions SET last_seen_at = $1, client_ip = $2, user_agent = $3 WHERE id = $4")
            .bind(device.last_seen_at)
            .bind(device.client_ip.as_deref())
            .bind(device.user_agent.as_deref())
            .bind(id.as_str());
        let result =
            self.conns.run(async |conn| query.execute(conn).await).await.map_err(db_error("recording a device"))?;
        Ok(result.rows_affected() == 1)
    }

    async fn device(&self, id: &SessionKey) -> Result<Device> {
        let row: Option<(Option<DateTime<Utc>>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT last_seen_at, client_ip, user_agent FROM sessions WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("reading a device"))?;
        Ok(row.map_or_else(Device::default, |(seen, client_ip, user_agent)| device_of(seen, client_ip, user_agent)))
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>, limit: u32) -> Result<Vec<SessionSummary>> {
        type Row = (
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, created_at, updated_at, expires_at, last_seen_at, client_ip, user_agent FROM sessions
             WHERE user_id = $1 AND expires_at > $2
             ORDER BY greatest(last_seen_at, updated_at) DESC, id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("listing a user's sessions"))?;
        rows.into_iter()
            .map(|(id, created_at, updated_at, expires_at, seen, client_ip, user_agent)| {
                Ok(SessionSummary {
                    id: super::row::stored_key(&id)
                        .map_err(|e| Error::Corrupt { id: id.clone(), reason: e.to_string() })?,
                    created_at: record::truncate_millis(created_at),
                    updated_at: record::truncate_millis(updated_at),
                    expires_at: record::truncate_millis(expires_at),
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
        const OP: &str = "limiting a user's sessions";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        lock_user(&mut tx, user_id, true).await.map_err(db_error(OP))?;
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 AND id NOT IN (
                 SELECT id FROM sessions WHERE user_id = $1 AND id <> $2 AND expires_at > $4
                 ORDER BY greatest(last_seen_at, updated_at) DESC, id DESC LIMIT $3)
             RETURNING id",
        )
        .bind(user_id)
        .bind(keep.as_str())
        .bind(i64::from(newest))
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error(OP))?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(parse_ids(ids))
    }

    async fn delete_by_user_except(&self, user_id: &str, keep: &SessionKey) -> Result<Vec<SessionKey>> {
        const OP: &str = "deleting a user's other sessions";
        let mut tx = self.pool.begin().await.map_err(db_error(OP))?;
        lock_user(&mut tx, user_id, true).await.map_err(db_error(OP))?;
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE user_id = $1 AND id <> $2
                 AND EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND user_id = $1)
             RETURNING id",
        )
        .bind(user_id)
        .bind(keep.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error(OP))?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(parse_ids(ids))
    }
}

#[async_trait]
impl DatabaseMaintenance for PostgresDatabase {
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
        let ids: Vec<&str> = ids.iter().map(SessionKey::as_str).collect();
        let rows: Vec<(String, Option<DateTime<Utc>>, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT id, last_seen_at, client_ip, user_agent FROM sessions WHERE id = ANY($1)
                 AND (last_seen_at IS NOT NULL OR client_ip IS NOT NULL OR user_agent IS NOT NULL)",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("reading devices"))?;
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
        let mut query = scan_query(filter, now);
        // Records carry milliseconds; a row written by other means can hold
        // microseconds, so the walk orders and compares at the precision of
        // the cursor, or it would return such rows again and again.
        if let Some(after) = after {
            query.push(" AND (date_trunc('milliseconds', expires_at), id) > (").push_bind(after.expires_at).push(", ");
            query.push_bind(after.id.as_str().to_owned()).push(")");
        }
        query.push(" ORDER BY date_trunc('milliseconds', expires_at), id LIMIT ").push_bind(i64::from(limit));
        let rows = query.build().fetch_all(&self.pool).await.map_err(db_error("listing sessions"))?;
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
        let tx = self.pool.begin().await.map_err(db_error("starting an import"))?;
        Ok(Box::new(PostgresImport { tx }))
    }

    async fn count(&self, filter: &Filter, now: DateTime<Utc>) -> Result<u64> {
        let mut query = QueryBuilder::<Postgres>::new("SELECT count(*) FROM sessions");
        push_filter(&mut query, filter, now);
        let count: i64 =
            query.build_query_scalar().fetch_one(&self.pool).await.map_err(db_error("counting sessions"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn expire(&self, ids: &[SessionKey], now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        let expired: Vec<String> = sqlx::query_scalar(
            "UPDATE sessions SET expires_at = least(expires_at, $1), updated_at = $1, version = version + 1
             WHERE id = ANY($2) RETURNING id",
        )
        .bind(now)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("expiring sessions"))?;
        Ok(parse_ids(expired))
    }

    async fn expire_by_user(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE sessions SET expires_at = $1, updated_at = $1, version = version + 1
             WHERE user_id = $2 AND expires_at > $1 RETURNING id",
        )
        .bind(now)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("expiring a user's sessions"))?;
        Ok(parse_ids(ids))
    }

    async fn existing(&self, ids: &[SessionKey]) -> Result<Vec<SessionKey>> {
        let ids: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        let found: Vec<String> = sqlx::query_scalar("SELECT id FROM sessions WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("looking up sessions"))?;
        Ok(parse_ids(found))
    }

    async fn stats_rows(&self, after: Option<&str>, limit: u32) -> Result<Vec<StatsRow>> {
        let rows: Vec<(String, i32, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT id, octet_length(data::text), expires_at, user_id IS NOT NULL
             FROM sessions WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error("computing statistics"))?;
        Ok(rows
            .into_iter()
            .map(|(id, size, expires_at, has_user)| StatsRow { id, size: size.max(0) as u64, expires_at, has_user })
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

#[async_trait]
impl DatabasePurge for PostgresDatabase {
    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        const OP: &str = "claiming a purge tick";
        let claimed = sqlx::query(
            "WITH pruned AS (DELETE FROM purge_ticks WHERE tick < $1 - interval '1 day')
             INSERT INTO purge_ticks (tick, claimed_by, claimed_at) VALUES ($1, $2, now())
             ON CONFLICT (tick) DO UPDATE SET claimed_at = EXCLUDED.claimed_at
             WHERE purge_ticks.claimed_by = EXCLUDED.claimed_by",
        )
        .bind(tick)
        .bind(claimant)
        .execute(&self.pool)
        .await
        .map_err(db_error(OP))?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn try_purge_lock(&self) -> Result<Option<Box<dyn super::PurgeLock>>> {
        const OP: &str = "taking the purge lock";
        let mut connection = self.pool.acquire().await.map_err(db_error(OP))?;
        // Should the guard be dropped without `release` (an error, a panic,
        // or a timeout that cancels this call after the server granted the
        // lock), the connection is closed instead of going back to the pool
        // still holding the lock, and the server releases it.
        connection.close_on_drop();
        let granted: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(PURGE_LOCK_KEY)
            .fetch_one(&mut *connection)
            .await
            .map_err(db_error(OP))?;
        Ok(granted.then(|| Box::new(AdvisoryLock { connection }) as Box<dyn super::PurgeLock>))
    }

    async fn purge_expired_batch(
        &self,
        now: DateTime<Utc>,
        after: Option<&str>,
        window: u32,
        return_ids: bool,
    ) -> Result<PurgeBatch> {
        const OP: &str = "purging expired sessions";
        // Walk the heap in ranges of blocks (a TID range scan): each batch
        // reads only its own pages, whatever the expiry order, with no index
        // on expires_at. The cursor is "<first block>:<blocks this batch>:<table
        // size in blocks when the walk started>:<blocks per `window` rows>".
        let bad_cursor = || Error::InvalidInput(format!("bad purge cursor {after:?}"));
        let (start, step, mut blocks, base) = match after {
            Some(cursor) => {
                let parts: Vec<i64> =
                    cursor.split(':').map(|p| p.parse().map_err(|_| bad_cursor())).collect::<Result<_>>()?;
                let [start, step, blocks, base] = parts[..] else { return Err(bad_cursor()) };
                (start, step.max(1), blocks, base.max(1))
            }
            None => {
                let row = sqlx::query(
                    "SELECT CASE WHEN relpages > 0 AND reltuples > 0 THEN (reltuples / relpages)::float8 END AS per_block,
                            pg_relation_size(oid) / current_setting('block_size')::bigint AS blocks
                     FROM pg_class WHERE oid = 'sessions'::regclass",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(db_error(OP))?;
                let per_block: Option<f64> = row.try_get("per_block").map_err(db_error(OP))?;
                let blocks: i64 = row.try_get("blocks").map_err(db_error(OP))?;
                let per_block = per_block.unwrap_or(30.0).max(1.0);
                let base = ((f64::from(window) / per_block).ceil() as i64).max(1);
                (0, base, blocks, base)
            }
        };
        if start >= blocks {
            // The table may have grown since the walk began.
            blocks = sqlx::query_scalar("SELECT pg_relation_size('sessions') / current_setting('block_size')::bigint")
                .fetch_one(&self.pool)
                .await
                .map_err(db_error(OP))?;
            if start >= blocks {
                return Ok(PurgeBatch {
                    deleted: Vec::new(),
                    deleted_count: 0,
                    next: None,
                    progress: 1.0,
                    write_lock: Duration::ZERO,
                });
            }
        }
        let end = start + step;
        const WHERE: &str =
            "WHERE ctid >= format('(%s,0)', $1::bigint)::tid AND ctid < format('(%s,0)', $2::bigint)::tid
               AND expires_at <= $3";
        let locked_at = std::time::Instant::now();
        let (deleted, deleted_count) = if return_ids {
            let ids: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("DELETE FROM sessions {WHERE} RETURNING id")))
                    .bind(start)
                    .bind(end)
                    .bind(now)
                    .fetch_all(&self.purge_pool)
                    .await
                    .map_err(db_error(OP))?;
            let count = ids.len() as u64;
            (parse_ids(ids), count)
        } else {
            let result = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM sessions {WHERE}")))
                .bind(start)
                .bind(end)
                .bind(now)
                .execute(&self.purge_pool)
                .await
                .map_err(db_error(OP))?;
            (Vec::new(), result.rows_affected())
        };
        let write_lock = locked_at.elapsed();
        // Few expired rows in the range and a quick statement: take a wider
        // range next (up to 8 windows), so a table with little to purge costs
        // fewer round trips and commits; a slow statement narrows it back.
        const QUICK: Duration = Duration::from_millis(10);
        let next_step = if write_lock > QUICK {
            (step / 2).max(base)
        } else if deleted_count.saturating_mul(8) < u64::from(window) && write_lock < QUICK / 2 {
            (step * 2).min(base * 8)
        } else {
            step
        };
        let next = Some(format!("{end}:{next_step}:{blocks}:{base}"));
        let progress = (end as f64 / blocks as f64).min(1.0);
        Ok(PurgeBatch { deleted, deleted_count, next, progress, write_lock })
    }
}

/// Moves rows from their id (`old`) to their key (`keys`, pairwise). A row
/// already under the key (an app that hashes wrote it meanwhile) is the
/// newer one: the row under the id goes.
async fn move_rows(tx: &mut sqlx::Transaction<'_, Postgres>, old: &[String], keys: &[String]) -> Result<()> {
    const OP: &str = "moving sessions to their keys";
    sqlx::query(
        "UPDATE sessions AS s SET id = m.key FROM unnest($1::text[], $2::text[]) AS m(id, key) \
         WHERE s.id = m.id AND NOT EXISTS (SELECT 1 FROM sessions AS t WHERE t.id = m.key)",
    )
    .bind(old)
    .bind(keys)
    .execute(&mut **tx)
    .await
    .map_err(db_error(OP))?;
    sqlx::query("DELETE FROM sessions WHERE id = ANY($1::text[])")
        .bind(old)
        .execute(&mut **tx)
        .await
        .map_err(db_error(OP))?;
    Ok(())
}
