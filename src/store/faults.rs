//! When a tier's connections last met a fault that can leave a connection
//! unable to write for the rest of its life, so that a pool retires the
//! connections opened before it as it hands them out:
//!
//! - SQLite opens a file it may not write read-only (a filesystem
//!   remounted read-only after an error, an immutable file, a WAL another
//!   user created), and such a connection stays read-only once the file is
//!   writable again;
//! - PostgreSQL: a connection opened on a server that takes no writes (a
//!   standby, a primary demoted by a failover) keeps that state.
//!
//! Process-wide per backend: a second database of the same kind in the
//! process reconnects too, which costs it nothing else. No I/O here (a
//! clock and an atomic), so nothing to time out: the pools' own acquire
//! timeouts bound the reconnects it causes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The last such fault of one backend, in µs after [`base`] (0: none).
pub(crate) struct FaultClock {
    last_us: AtomicU64,
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

impl FaultClock {
    pub(crate) const fn new() -> FaultClock {
        FaultClock { last_us: AtomicU64::new(0) }
    }

    /// A fault happened now.
    pub(crate) fn note(&self) {
        self.last_us.fetch_max(micros(base().elapsed()).max(1), Ordering::Relaxed);
    }

    /// Notes `error` as a fault when the database's code for it is one
    /// `is_fault` names.
    pub(crate) fn note_if(&self, error: &sqlx::Error, is_fault: impl Fn(&str) -> bool) {
        if error.as_database_error().and_then(|e| e.code()).is_some_and(|code| is_fault(&code)) {
            self.note();
        }
    }

    /// `options` handing out no connection opened before the last fault
    /// (closed instead, and a new one opened).
    pub(crate) fn retire_opened_before<DB: sqlx::Database>(
        &'static self,
        options: sqlx::pool::PoolOptions<DB>,
    ) -> sqlx::pool::PoolOptions<DB> {
        options
            .before_acquire(move |_, meta| Box::pin(std::future::ready(Ok(!self.opened_before_last_fault(meta.age)))))
    }

    /// Whether a connection opened `age` ago was opened before the last
    /// fault (or in the same microsecond).
    pub(crate) fn opened_before_last_fault(&self, age: Duration) -> bool {
        let fault = self.last_us.load(Ordering::Relaxed);
        fault != 0 && micros(base().elapsed().saturating_sub(age)) <= fault
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_fault_are_told_from_those_opened_after() {
        let clock = FaultClock::new();
        assert!(!clock.opened_before_last_fault(Duration::from_secs(3600)), "no fault yet");
        std::thread::sleep(Duration::from_millis(5));
        clock.note();
        assert!(clock.opened_before_last_fault(Duration::from_millis(3)), "opened 3 ms before the fault");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!clock.opened_before_last_fault(Duration::from_millis(1)), "opened after it");
        assert!(clock.opened_before_last_fault(Duration::from_millis(20)));
    }
}
