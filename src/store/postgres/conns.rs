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
//! * connecting retries, until the acquire timeout, what sqlx's pool
//!   retries: a refused connection, "too many clients", "starting up";
//! * a connection whose work was cut short (a timeout or a client gone
//!   dropped the future mid-statement) keeps its slot until the server has
//!   answered the cut statement (its backend may still be waiting on a
//!   lock: a new connection in its place would let a process hold more
//!   backends than its bound), then goes back to the idle set;
//! * a connection that failed below SQL (I/O, protocol) or was ended by the
//!   server (a FATAL error: a restart, `pg_terminate_backend`) is closed,
//!   and the idle ones with it, since a server that closed one has usually
//!   closed them all;
//! * so is one whose write the server refused as read-only (a standby, or
//!   a primary demoted by a failover): a connection takes the server's
//!   read-only state when it opens and keeps it, so it would fail every
//!   later write; a new one may reach the new primary;
//! * connections idle for ten minutes, or thirty minutes old, are closed,
//!   like sqlx's defaults (checked every minute).
//!
//! Everything else (id rotation, accounts, the CLI's scans and imports, the
//! purge) keeps sqlx's pools.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// An idle connection used again within this is not pinged first.
pub(super) const PING_AFTER_IDLE: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_LIFETIME: Duration = Duration::from_secs(1800);
const REAP_EVERY: Duration = Duration::from_secs(60);

/// A bounded set of connections, opened on demand, most recently used first.
#[derive(Clone)]
pub(super) struct Conns {
    shared: Arc<Shared>,
}

struct Shared {
    options: PgConnectOptions,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    /// Told when a connection goes back to the idle set.
    released: Notify,
    acquire_timeout: Duration,
}

struct Idle {
    conn: PgConnection,
    opened: Instant,
    since: Instant,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").field("idle", &self.shared.lock().len()).finish_non_exhaustive()
    }
}

/// A connection in use and its slot. Dropped before its work finished (a
/// cancelled future), it is settled in the background.
struct InUse {
    shared: Arc<Shared>,
    conn: Option<(PgConnection, Instant)>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let (Some((conn, opened)), Some(permit)) = (self.conn.take(), self.permit.take()) else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let shared = self.shared.clone();
        // The cut statement may still run on the server (waiting on a lock
        // for as long as a migration builds an index): wait for its answer
        // (a ping reads past it), holding the slot meanwhile. Closing the
        // socket would not stop the backend, so a new connection in its
        // place would exceed the bound. (sqlx's pool waits the same way.)
        runtime.spawn(async move {
            let mut conn = conn;
            if conn.ping().await.is_ok() {
                shared.put(conn, opened);
            }
            drop(permit);
        });
    }
}

impl InUse {
    fn release(mut self) {
        if let Some((conn, opened)) = self.conn.take() {
            self.shared.put(conn, opened);
        }
    }

    /// Closes the connection and drops the idle ones (the server ended it,
    /// or it broke below SQL: the others are likely gone too).
    fn discard(mut self) {
        self.conn = None;
        drop(std::mem::take(&mut *self.shared.lock()));
    }
}

impl Conns {
    /// At most `max` connections at once; taking one waits at most
    /// `acquire_timeout` (including connecting). Call it inside a tokio
    /// runtime: a task closes connections idle for too long.
    pub(super) fn new(options: PgConnectOptions, max: usize, acquire_timeout: Duration) -> Conns {
        let shared = Arc::new(Shared {
            options,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
            released: Notify::new(),
            acquire_timeout,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap(Arc::downgrade(&shared)));
        }
        Conns { shared }
    }

    /// Runs `work` on a connection of the set. The connection goes back to
    /// the set when `work` finished with a result or an SQL error (the
    /// server answered; the connection is in a known state), is closed when
    /// it broke or the server ended it, and is settled in the background
    /// when this future is dropped before `work` finished.
    pub(super) async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let shared = &self.shared;
        let permit = match tokio::time::timeout(shared.acquire_timeout, shared.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let (conn, opened) = match tokio::time::timeout(shared.acquire_timeout, shared.take()).await {
            Ok(taken) => taken?,
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let mut in_use = InUse { shared: shared.clone(), conn: Some((conn, opened)), permit: Some(permit) };
        let Some((conn, _)) = in_use.conn.as_mut() else { unreachable!("just set") };
        let result = work(conn).await;
        match &result {
            Err(error) if ended(error) => in_use.discard(),
            _ => in_use.release(),
        }
        result
    }
}

/// Whether the connection is unusable after `error`: it broke below SQL,
/// the server ended the session (a FATAL error: class 57P, operator
/// intervention, or 08, connection exception), or it is read-only (25006,
/// `read_only_sql_transaction`: opened on a server that takes no writes).
fn ended(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(error) => {
            error.code().is_some_and(|code| code.starts_with("57P") || code.starts_with("08") || code == "25006")
        }
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::Encode(_)
        | sqlx::Error::TypeNotFound { .. } => false,
        _ => true,
    }
}

/// Whether connecting failed in a way sqlx's pool retries: the server is
/// starting up, or full for the moment.
fn transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(error) => error.kind() == std::io::ErrorKind::ConnectionRefused,
        sqlx::Error::Database(error) => error.is_transient_in_connect_phase(),
        _ => false,
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, conn: PgConnection, opened: Instant) {
        self.lock().push(Idle { conn, opened, since: Instant::now() });
        self.released.notify_one();
    }

    /// The most recently used live connection, or a new one; a refused or
    /// transiently failed connect is retried after a connection is given
    /// back or the backoff ends (the caller bounds the time).
    async fn take(&self) -> Result<(PgConnection, Instant), sqlx::Error> {
        let mut backoff = Duration::from_millis(10);
        loop {
            while let Some(Idle { mut conn, opened, since }) = self.pop_idle() {
                if since.elapsed() < PING_AFTER_IDLE || conn.ping().await.is_ok() {
                    return Ok((conn, opened));
                }
            }
            match PgConnection::connect_with(&self.options).await {
                Ok(conn) => return Ok((conn, Instant::now())),
                Err(error) if transient(&error) => {
                    // A connection given back meanwhile beats a new one: a
                    // full server is not asked again until the backoff ends.
                    tokio::select! {
                        () = self.released.notified() => {}
                        () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(Duration::from_secs(1)),
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn pop_idle(&self) -> Option<Idle> {
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.lock();
            // The least recently used sit at the bottom.
            let fresh_from = idle.iter().position(|i| i.since.elapsed() < IDLE_TIMEOUT).unwrap_or(idle.len());
            stale.extend(idle.drain(..fresh_from));
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
}

/// Removes the connections idle for [`IDLE_TIMEOUT`] or older than
/// [`MAX_LIFETIME`].
fn take_stale(idle: &mut Vec<Idle>) -> Vec<Idle> {
    let (stale, kept): (Vec<Idle>, Vec<Idle>) = std::mem::take(idle)
        .into_iter()
        .partition(|i| i.since.elapsed() >= IDLE_TIMEOUT || i.opened.elapsed() >= MAX_LIFETIME);
    *idle = kept;
    stale
}

/// Closes stale idle connections every [`REAP_EVERY`] while the set exists.
async fn reap(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(shared) = shared.upgrade() else { return };
        let stale = take_stale(&mut shared.lock());
        close_gracefully(stale);
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
