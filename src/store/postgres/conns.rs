//! The connections of the request path: one round trip per statement.
//!
//! sqlx's pool sends a `Sync` and waits for the server's answer when it
//! hands a connection out (unless told not to) and again, always, when it
//! takes one back. On the request path, where a save is one statement, those
//! two round trips cost the server and the app about as much CPU as the
//! statement itself (BENCHMARKS.md, issue #9). [`Conns`] keeps the
//! connections of the per-request statements (load, create, save, delete,
//! device) without them:
//!
//! * a connection idle for [`PING_AFTER_IDLE`] or longer is pinged before
//!   use (one that died while idle is replaced, not handed out);
//! * a connection whose work was cut short (a timeout dropped the future
//!   mid-statement) or failed below SQL (I/O, protocol) is closed, never
//!   reused; the idle ones are then dropped too, since a server that closed
//!   one has usually closed them all (a restart, a failover);
//! * connections idle for ten minutes, or thirty minutes old, are closed,
//!   like sqlx's defaults.
//!
//! Everything else (the CLI's scans, imports, the purge) keeps sqlx's pool.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Semaphore;

/// An idle connection used again within this is not pinged first.
pub(super) const PING_AFTER_IDLE: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_LIFETIME: Duration = Duration::from_secs(1800);

/// A bounded set of connections, opened on demand, most recently used first.
pub(super) struct Conns {
    options: PgConnectOptions,
    permits: Semaphore,
    idle: Mutex<Vec<Idle>>,
    acquire_timeout: Duration,
}

struct Idle {
    conn: PgConnection,
    opened: Instant,
    since: Instant,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").field("idle", &self.lock().len()).finish_non_exhaustive()
    }
}

/// A connection in use: back to the idle set when released, closed when
/// dropped (its work did not finish cleanly).
struct InUse<'a> {
    conns: &'a Conns,
    conn: Option<(PgConnection, Instant)>,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        if let Some((conn, _)) = self.conn.take() {
            // Mid-statement or broken: its protocol state is unknown, so
            // the socket is closed without a goodbye.
            drop(conn);
            self.conns.drop_idle();
        }
    }
}

impl InUse<'_> {
    fn release(mut self) {
        if let Some((conn, opened)) = self.conn.take() {
            self.conns.lock().push(Idle { conn, opened, since: Instant::now() });
        }
    }
}

impl Conns {
    /// At most `max` connections at once; taking one waits at most
    /// `acquire_timeout` (including connecting).
    pub(super) fn new(options: PgConnectOptions, max: usize, acquire_timeout: Duration) -> Conns {
        Conns { options, permits: Semaphore::new(max), idle: Mutex::new(Vec::new()), acquire_timeout }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` on a connection of the set. The connection goes back to
    /// the set when `work` finished with a result or an SQL error (the
    /// server answered; the connection is in a known state) and is closed
    /// otherwise, or when this future is dropped before `work` finished.
    pub(super) async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let _permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let (conn, opened) = match tokio::time::timeout(self.acquire_timeout, self.take()).await {
            Ok(taken) => taken?,
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let mut in_use = InUse { conns: self, conn: Some((conn, opened)) };
        let Some((conn, _)) = in_use.conn.as_mut() else { unreachable!("just set") };
        let result = work(conn).await;
        match &result {
            Ok(_)
            | Err(sqlx::Error::Database(_) | sqlx::Error::RowNotFound | sqlx::Error::ColumnNotFound(_))
            | Err(sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. }) => {
                in_use.release()
            }
            Err(_) => drop(in_use),
        }
        result
    }

    /// The most recently used live connection, or a new one.
    async fn take(&self) -> Result<(PgConnection, Instant), sqlx::Error> {
        loop {
            let Some(idle) = self.pop_idle() else { break };
            let Idle { mut conn, opened, since } = idle;
            if since.elapsed() < PING_AFTER_IDLE || conn.ping().await.is_ok() {
                return Ok((conn, opened));
            }
        }
        let conn = PgConnection::connect_with(&self.options).await?;
        Ok((conn, Instant::now()))
    }

    fn pop_idle(&self) -> Option<Idle> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.lock();
            // The least recently used sit at the bottom.
            let keep_from = idle.iter().position(|i| i.since.elapsed() < IDLE_TIMEOUT).unwrap_or(idle.len());
            stale.extend(idle.drain(..keep_from));
            let mut found = None;
            while let Some(top) = idle.pop() {
                if top.opened.elapsed() < MAX_LIFETIME {
                    found = Some(top);
                    break;
                }
                stale.push(top);
            }
            found
        };
        close_gracefully(stale);
        found
    }

    /// Drops every idle connection (after one failed below SQL).
    fn drop_idle(&self) {
        let stale = std::mem::take(&mut *self.lock());
        drop(stale);
    }
}

/// Says goodbye to the server on connections closed for their age, in the
/// background when a runtime is there to run it.
fn close_gracefully(stale: Vec<Idle>) {
    if stale.is_empty() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(async move {
                for idle in stale {
                    let _ = tokio::time::timeout(Duration::from_secs(5), idle.conn.close()).await;
                }
            });
        }
        Err(_) => drop(stale),
    }
}
