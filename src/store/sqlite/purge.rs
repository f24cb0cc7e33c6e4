//! The SQLite purge engine: its own connection and page cache, windows
//! of the primary key sized by how long they held the write lock, sparse
//! windows deleted by id, and passive checkpoints in the background so the
//! app's commits never copy the purge's pages back.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Connection as _, Row, SqliteConnection};

use super::{SqliteDatabase, TICK_RETENTION_MS, db_error, ms};
use crate::error::Result;
use crate::id::key_fraction;
use crate::record;
use crate::store::{DatabasePurge, PurgeBatch, parse_ids};

/// The purge's own connection: its own page cache, and passive checkpoints
/// on its own schedule rather than SQLite's automatic ones.
#[derive(Debug)]
pub(super) struct PurgeConnection {
    connection: SqliteConnection,
    checkpointer: Checkpointer,
    /// Whether the last window was dense (see [`purge_batch`]).
    dense: bool,
    /// `PRAGMA data_version` after the last batch: it moves when another
    /// connection commits, so an unchanged one means no one else wrote.
    data_version: Option<i64>,
    /// The WAL lag the next batch allows its checkpoints.
    lag: i64,
    /// The WAL sizes past which the next batch tries to start it over.
    restart_bounds: RestartBounds,
    /// The window the next batch walks, at most the one asked for: halved
    /// after a batch held the write lock over [`LOCK_CEILING`], grown back
    /// after one under [`LOCK_FLOOR`].
    window: Option<u32>,
}

/// A batch that held the write lock longer than this halves the next
/// window; one shorter than [`LOCK_FLOOR`] grows it by a quarter, back up
/// to the batch size asked for. Windows of 10,000 rows hold it ~7 ms at the
/// median on ten million rows. With 12 ms here, now and then a DELETE held
/// it 29–61 ms (2 of 8 idle purges of 2M rows, 2 of 12 on the bench's 2M
/// shapes); with 8 ms the longest was 15 and 12 ms (0 of 8, 0 of 12), in the
/// same time within noise. Beside an app writing, stalls of 27–161 ms remain
/// now and then with either bound: DELETEs that read as many pages as a
/// 4 ms one, held back by the machine (a CPU shared or slowed), not by more
/// work (BENCHMARKS.md, issue #15).
const LOCK_CEILING: Duration = Duration::from_millis(8);
const LOCK_FLOOR: Duration = Duration::from_millis(3);
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
    /// Running, with the WAL size the one before it reported and how many
    /// batches have committed since it started.
    Running(tokio::task::JoinHandle<(SqliteConnection, i64)>, i64, u32),
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

/// Batches the purge commits while one checkpoint runs before it waits for
/// it. The WAL size it knows is the one the checkpoint before reported, so
/// without this a checkpoint slowed down by other processes let the WAL grow
/// for as long as it ran: 35–41 MiB on a 100 MB table under a load average
/// of 14, where the quiet bound is 16 MiB (RELIABILITY.md).
const MAX_BATCHES_PER_CHECKPOINT: u32 = 2;

impl Checkpointer {
    /// Before a write: waits for the running checkpoint if the WAL has
    /// grown past `lag` frames, or it has run through
    /// [`MAX_BATCHES_PER_CHECKPOINT`] batches. A WAL then past both `lag`
    /// and `bounds.unlocked` (at first [`UNLOCKED_RESTART_FRAMES`]) is
    /// copied whole so the DELETE starts it over; one past `bounds.locked`
    /// (at first [`RESTART_FRAMES`]) is started over under the lock
    /// ([`restart`]). When either way finds a reader holding on to the WAL,
    /// its next try waits for the WAL to grow by another
    /// `RESTART_FRAMES / 2`, so a long reader costs neither the app a held
    /// lock nor the purge futile checkpoints every batch. Once the WAL has
    /// started over, both bounds are back where they began.
    ///
    /// Returns how long a restart held the write lock (zero when none
    /// ran): the app's writes wait that long, so the batch reports it.
    async fn settle_if_behind(&mut self, lag: i64, bounds: &mut RestartBounds) -> Duration {
        let behind = |frames: i64, batches: u32| frames > lag || batches >= MAX_BATCHES_PER_CHECKPOINT;
        if matches!(self, Checkpointer::Running(_, frames, batches) if behind(*frames, *batches)) {
            self.settle().await;
        }
        let Checkpointer::Idle(connection, frames) = self else { return Duration::ZERO };
        if *frames <= lag.max(UNLOCKED_RESTART_FRAMES) {
            *bounds = RestartBounds::default();
            return Duration::ZERO;
        }
        if *frames <= bounds.locked {
            if *frames > bounds.unlocked {
                unlocked_restart(connection, frames, bounds).await;
            }
            return Duration::ZERO;
        }
        match restart(connection).await {
            Some(Restarted { frames: 0, held }) => {
                *frames = 0;
                *bounds = RestartBounds::default();
                // App writers that met the lock sleep in SQLite's back-off
                // (1, 2, 5, 10, 15, 20, 25 ms …): let them in before the
                // purge's next DELETE takes it again.
                tokio::time::sleep(held.clamp(Duration::from_millis(1), Duration::from_millis(25))).await;
                held
            }
            Some(Restarted { frames: left, held }) => {
                *frames = left;
                bounds.locked = left + RESTART_FRAMES / 2;
                held
            }
            // Another connection's checkpoint was running (an app commit's
            // automatic one): nothing was refused, the next batch tries again.
            None => Duration::ZERO,
        }
    }

    /// Waits for the running checkpoint, if any.
    async fn settle(&mut self) {
        if let Checkpointer::Running(task, _, _) = self {
            *self = match task.await {
                Ok((connection, frames)) => Checkpointer::Idle(connection, frames),
                Err(_) => Checkpointer::Gone,
            };
        }
    }

    /// After a batch (`wrote`: it deleted rows): starts a checkpoint
    /// unless one is still running. Returns false when there is no
    /// checkpoint connection any more.
    async fn kick(&mut self, wrote: bool) -> bool {
        if matches!(self, Checkpointer::Running(task, _, _) if task.is_finished()) {
            self.settle().await; // collects its connection at once
        }
        match std::mem::replace(self, Checkpointer::Gone) {
            Checkpointer::Idle(mut connection, frames) => {
                *self = Checkpointer::Running(
                    tokio::spawn(async move {
                        let mut reported = checkpoint(&mut connection).await;
                        if reported.is_none() {
                            // An app commit's automatic checkpoint was
                            // running: once it is done, the size is known
                            // again (kept stale, the WAL outgrew its bounds).
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            reported = checkpoint(&mut connection).await;
                        }
                        let reported = reported.unwrap_or(frames);
                        tracing::trace!(frames = reported, "purge: WAL size");
                        (connection, reported)
                    }),
                    frames,
                    0,
                );
                true
            }
            Checkpointer::Running(task, frames, batches) => {
                *self = Checkpointer::Running(task, frames, batches + u32::from(wrote));
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
/// blocking, anyone); returns the WAL size in frames. `None` when unknown:
/// a checkpoint refused because another connection's runs (an app commit's
/// automatic one) reports -1, as does a database not in WAL mode.
async fn checkpoint(connection: &mut SqliteConnection) -> Option<i64> {
    wal_checkpoint(connection, "PASSIVE").await.map(|done| done.frames).filter(|frames| *frames >= 0)
}

/// The WAL sizes (frames) past which a batch tries to start the WAL over:
/// without the lock ([`unlocked_restart`]), then with it ([`restart`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct RestartBounds {
    unlocked: i64,
    locked: i64,
}

impl Default for RestartBounds {
    fn default() -> RestartBounds {
        RestartBounds { unlocked: UNLOCKED_RESTART_FRAMES, locked: RESTART_FRAMES }
    }
}

/// Has the whole WAL copied back, without the write lock, so that the next
/// write (the DELETE that follows at once, or an app's) starts it over,
/// unless a transaction begun before still reads it; the next checkpoint's
/// report tells. Up to [`UNLOCKED_RESTART_TRIES`] passive checkpoints: an
/// app commit between two leaves a few frames. One that leaves most of the
/// WAL uncopied met a reader holding on to it (each such checkpoint still
/// sorts the whole WAL: ~3 ms at 57,000 frames, 10 ms at 320,000), and the
/// next try waits for the WAL to grow by another `RESTART_FRAMES / 2`.
async fn unlocked_restart(connection: &mut SqliteConnection, frames: &mut i64, bounds: &mut RestartBounds) {
    for _ in 0..UNLOCKED_RESTART_TRIES {
        match wal_checkpoint(connection, "PASSIVE").await {
            Some(Checkpointed { busy: false, frames: log, copied }) if log >= 0 && copied == log => {
                *frames = log;
                return;
            }
            Some(Checkpointed { frames: log, copied, .. }) if log >= 0 && copied >= 0 => {
                *frames = log;
                if log - copied > CHECKPOINT_LAG_FRAMES {
                    bounds.unlocked = log + RESTART_FRAMES / 2;
                    return;
                }
            }
            // Another connection's checkpoint ran: the next try may copy.
            _ => {}
        }
    }
}

/// What `PRAGMA wal_checkpoint` answered.
struct Checkpointed {
    /// Refused: another checkpoint ran, or (`RESTART`) the lock or the
    /// readers were not had in time.
    busy: bool,
    /// The WAL's size in frames (-1 when unknown).
    frames: i64,
    /// How many of them are now copied into the database (-1 when unknown).
    copied: i64,
}

/// `PRAGMA wal_checkpoint(mode)`.
async fn wal_checkpoint(connection: &mut SqliteConnection, mode: &'static str) -> Option<Checkpointed> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA wal_checkpoint({mode})"))).fetch_one(connection).await.ok()?;
    Some(Checkpointed {
        busy: row.try_get::<i64, _>(0).ok()? != 0,
        frames: row.try_get::<i64, _>(1).ok()?,
        copied: row.try_get::<i64, _>(2).ok()?,
    })
}

/// What a [`restart`] did: the WAL size the next batch goes by (0 once it
/// will start over, the size as it stands when refused), and how long the
/// `RESTART` held the write lock: its whole run, which also counts its wait
/// for the lock (at most [`RESTART_BUSY_MS`]; SQLite tells the two apart to
/// no one), so the figure may be that much over.
struct Restarted {
    frames: i64,
    held: Duration,
}

/// Makes the next write start the WAL over. A passive checkpoint copies
/// what it can, but a WAL only starts over when a write begins with all of
/// it copied, and an app committing every few milliseconds adds frames
/// after every checkpoint: beside such an app the WAL grew with everything
/// the purge deleted (1.6 GB on 10M rows), stayed that size on disk, and
/// every batch waited for a checkpoint (RELIABILITY.md). After a passive
/// checkpoint, `RESTART` copies the few frames committed since, holding the
/// write lock for that and its fsyncs, then waits at most
/// [`RESTART_BUSY_MS`] for readers to leave the WAL, still holding it (at
/// a 500-frame bound on 10M rows here: under 1 ms at the median, 36 ms at
/// the 90th percentile, 84 ms at worst). `None` when the figures are
/// unknown (an error, or another connection's checkpoint running).
async fn restart(connection: &mut SqliteConnection) -> Option<Restarted> {
    // A passive one first: what the purge wrote while the last one ran is
    // copied without holding the lock.
    checkpoint(connection).await;
    let set_busy = |ms: u64| sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}"));
    sqlx::query(set_busy(RESTART_BUSY_MS)).execute(&mut *connection).await.ok()?;
    let started = std::time::Instant::now();
    let outcome = wal_checkpoint(connection, "RESTART").await;
    let held = started.elapsed();
    tracing::debug!(held_ms = held.as_secs_f64() * 1e3, "purge: WAL restarted under the write lock");
    sqlx::query(set_busy(0)).execute(&mut *connection).await.ok()?;
    match outcome? {
        Checkpointed { busy: false, .. } => Some(Restarted { frames: 0, held }),
        Checkpointed { frames, .. } if frames >= 0 => Some(Restarted { frames, held }),
        Checkpointed { .. } => None,
    }
}

/// WAL size (frames, 31 MiB) past which the purge starts it over. Each
/// restart may hold the app's writes for its fsyncs, so not much less: at
/// 500 frames (every few batches) the app's saves beside a 10M-row purge
/// had a p99 of 79 ms, at 6,000 33–55 ms, at 8,000 18–34 ms (12–18 ms
/// with the WAL left to grow; BENCHMARKS.md). [`super::JOURNAL_SIZE_LIMIT`]
/// is twice this.
const RESTART_FRAMES: i64 = 8_000;

/// WAL size (frames, 16 MiB) past which the purge has it copied whole
/// before its DELETE, so that the DELETE (or the app's next write) starts
/// it over with no lock held for it; past [`RESTART_FRAMES`] it is started
/// over under the write lock ([`restart`]), which holds the app's writes
/// for its fsyncs (25–76 ms in 5 of 99 on ten million rows). Beside an app
/// saving every ~2 ms the first way usually worked within a few batches
/// (~400 frames each), and the second ran 13 times per purge instead of
/// ~50 (BENCHMARKS.md).
const UNLOCKED_RESTART_FRAMES: i64 = RESTART_FRAMES / 2;

/// Passive checkpoints a batch runs to have the WAL copied whole.
const UNLOCKED_RESTART_TRIES: u32 = 2;

/// How long a checkpoint that restarts the WAL waits for the write lock
/// and for readers to leave the WAL (app writes wait behind it).
const RESTART_BUSY_MS: u64 = 10;

/// Page cache of the purge connection (16 MiB, in KiB as SQLite wants): room
/// for a window's pages between the read that finds its end and the DELETE.
/// Pages are read once per walk, so more does not help: 256 MiB made an idle
/// purge of 2M rows no faster and its RSS 281 MB instead of 27 MB (with
/// traffic, every commit of the app empties this cache anyway).
const PURGE_CACHE_KIB: i64 = 16 * 1024;

#[async_trait]
impl DatabasePurge for SqliteDatabase {
    async fn try_claim_tick(&self, tick: DateTime<Utc>, claimant: &str) -> Result<bool> {
        const OP: &str = "claiming a purge tick";
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_error(OP))?;
        sqlx::query("DELETE FROM purge_ticks WHERE tick < ?")
            .bind(ms(tick) - TICK_RETENTION_MS)
            .execute(&mut *tx)
            .await
            .map_err(db_error(OP))?;
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
        .map_err(db_error(OP))?;
        tx.commit().await.map_err(db_error(OP))?;
        Ok(claimed.rows_affected() == 1)
    }

    async fn try_purge_lock(&self) -> Result<Option<Box<dyn crate::store::PurgeLock>>> {
        Ok(Some(Box::new(crate::store::LocalPurgeLock)))
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
            let mut connection = self.pool.acquire().await.map_err(db_error(OP))?;
            let batch = purge_batch(&mut connection, now, after, window, return_ids, &mut false, None).await;
            return batch.map(|(batch, _)| batch);
        };
        let mut purge = self.purge.lock().await;
        if purge.is_none() {
            let open = async || -> std::result::Result<SqliteConnection, sqlx::Error> {
                let mut connection = SqliteConnection::connect_with(options).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = -{PURGE_CACHE_KIB}")))
                    .execute(&mut connection)
                    .await?;
                sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut connection).await?;
                // In WAL mode, waits for the write lock are the purge's own
                // (`while_busy!`). In a rollback journal SQLite's handler
                // keeps the pending lock while readers drain; it stays.
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut connection).await?;
                if mode.eq_ignore_ascii_case("wal") {
                    sqlx::query("PRAGMA busy_timeout = 0").execute(&mut connection).await?;
                }
                Ok(connection)
            };
            let connection = open().await.map_err(db_error(OP))?;
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
                restart_bounds: RestartBounds::default(),
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
            Some((&mut state.checkpointer, state.lag, &mut state.restart_bounds)),
        )
        .await;
        let version = sqlx::query_scalar::<_, i64>("PRAGMA data_version").fetch_one(&mut state.connection).await.ok();
        let quiet = version.is_some() && version == state.data_version;
        state.lag = if quiet { QUIET_CHECKPOINT_LAG_FRAMES } else { CHECKPOINT_LAG_FRAMES };
        state.data_version = version;
        if let Ok((batch, delete_lock)) = &result {
            tracing::trace!(
                window,
                deleted = batch.deleted_count,
                delete_lock_ms = delete_lock.as_secs_f64() * 1e3,
                reported_lock_ms = batch.write_lock.as_secs_f64() * 1e3,
                "purge: batch"
            );
            state.window = if *delete_lock > LOCK_CEILING {
                Some((window / 2).max(MIN_WINDOW.min(window)))
            } else if *delete_lock < LOCK_FLOOR {
                Some(window.saturating_add(window / 4))
            } else {
                Some(window)
            };
        }
        let result = result.map(|(batch, _)| batch);
        let walk_over = !matches!(&result, Ok(batch) if batch.next.is_some());
        // A passive checkpoint after every batch, in the background: the
        // app's own commits then find the WAL already copied back and never
        // pay for the purge's writes (writer p99 ~18 ms instead of ~200 ms
        // with one every 20 batches; BENCHMARKS.md).
        let wrote = matches!(&result, Ok(batch) if batch.deleted_count > 0);
        if !state.checkpointer.kick(wrote).await {
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

/// Runs a statement (`$attempt`, an awaited expression) again while SQLite
/// refuses it for a lock another connection holds (`SQLITE_BUSY`), for at
/// most the busy timeout, sleeping between tries as SQLite's own busy
/// handler does ([`BUSY_BACKOFF_MS`]); evaluates to its result and how long
/// the attempt that ran took.
///
/// On WAL databases the purge's connection has no busy timeout: with
/// SQLite's handler the lock time it reported (and sized its next window by)
/// counted the wait for an app's write lock, so an app transaction held 1.5 s
/// made a purge of 5,000 rows report a lock of 1,535 ms (BENCHMARKS.md,
/// issue #15). A write statement takes the lock in its first step, so the
/// attempt that runs holds it from start to end. The same back-off as the
/// app's connections keeps the purge from jumping ahead of an app writer
/// waiting for the same lock.
macro_rules! while_busy {
    ($attempt:expr) => {{
        let deadline = std::time::Instant::now() + super::BUSY_TIMEOUT;
        let mut tries = 0;
        loop {
            let started = std::time::Instant::now();
            match $attempt {
                Err(error) if is_busy(&error) && std::time::Instant::now() < deadline => {
                    let pause = BUSY_BACKOFF_MS[tries.min(BUSY_BACKOFF_MS.len() - 1)];
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                outcome => break (outcome, started.elapsed()),
            }
        }
    }};
}

/// The pauses between tries of SQLite's default busy handler (`sqlite3.c`,
/// `sqliteDefaultBusyCallback`), in milliseconds; the last repeats.
const BUSY_BACKOFF_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// Whether SQLite refused a statement for a lock another connection holds
/// (`SQLITE_BUSY` and its extended codes).
fn is_busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(database)
        if database.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5))
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
    checkpointer: Option<(&mut Checkpointer, i64, &mut RestartBounds)>,
) -> Result<(PurgeBatch, Duration)> {
    const OP: &str = "purging expired sessions";
    let after = after.unwrap_or("");
    let window = i64::from(window.max(1));
    // The window's end, the ids to delete by id (sparse windows only), and
    // whether the read found nothing expired before the table's end.
    let (upper, expired_ids, none_expired) = if *dense {
        let (upper, _) = while_busy!(
            sqlx::query_scalar::<_, String>("SELECT id FROM sessions WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?")
                .bind(after)
                .bind(window - 1)
                .fetch_optional(&mut *connection)
                .await
        );
        (upper.map_err(db_error(OP))?, None, false)
    } else {
        let (read, _) = while_busy!(
            sqlx::query_as::<_, (i64, Option<String>, i64, Option<String>)>(
                "SELECT count(*), max(id), count(*) FILTER (WHERE expires_at <= ?3), \
                        json_group_array(id) FILTER (WHERE expires_at <= ?3) \
                 FROM (SELECT id, expires_at FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2)",
            )
            .bind(after)
            .bind(window)
            .bind(ms(now))
            .fetch_one(&mut *connection)
            .await
        );
        let (rows, upper, expired, ids) = read.map_err(db_error(OP))?;
        let upper = if rows < window { None } else { upper };
        let sparse = upper.is_some() && expired <= window / SPARSE_WINDOW_SHARE;
        let none_expired = upper.is_some() && expired == 0;
        (upper, ids.filter(|_| sparse), none_expired)
    };
    let progress = upper.as_deref().map_or(1.0, key_fraction);
    if none_expired {
        let write_lock = Duration::ZERO;
        return Ok((
            PurgeBatch { deleted: Vec::new(), deleted_count: 0, next: upper, progress, write_lock },
            write_lock,
        ));
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
    let restart_held = match checkpointer {
        Some((checkpointer, lag, restart_bounds)) => checkpointer.settle_if_behind(lag, restart_bounds).await,
        None => Duration::ZERO,
    };
    // The DELETE is its own transaction: a write statement takes the write
    // lock when it starts, as `BEGIN IMMEDIATE` would, but outside an
    // explicit transaction SQLite keeps no statement journal of the pages it
    // changes (the expression index makes it keep one otherwise): windows of
    // 10,000 rows on ten million took 7.7 ms instead of 10.7 ms at the median
    // (BENCHMARKS.md, issue #15). The attempt that runs holds the lock
    // throughout; the ones refused before it only waited (`while_busy!`).
    let bind = || sqlx::query(sql).bind(after).bind(second).bind(ms(now));
    let ((deleted, deleted_count), write_lock) = if return_ids {
        let (rows, write_lock) = while_busy!(bind().fetch_all(&mut *connection).await);
        let rows = rows.map_err(db_error(OP))?;
        let ids: Vec<String> = rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()).collect();
        let count = ids.len() as u64;
        ((parse_ids(ids), count), write_lock)
    } else {
        let (result, write_lock) = while_busy!(bind().execute(&mut *connection).await);
        ((Vec::new(), result.map_err(db_error(OP))?.rows_affected()), write_lock)
    };
    *dense = deleted_count.saturating_mul(SPARSE_WINDOW_SHARE as u64) > window as u64;
    // The window is sized by the DELETE's own lock; what the batch reports
    // also counts a restart's, which the app's writes waited for as well.
    let batch = PurgeBatch { deleted, deleted_count, next: upper, progress, write_lock: write_lock.max(restart_held) };
    Ok((batch, write_lock))
}
