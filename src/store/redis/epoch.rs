//! The epoch of a Redis cache in front of a database: a token the apps
//! write into every entry (field `g`) and require of the entries they read.
//!
//! A Redis that restores its data from disk after a crash (snapshots, an
//! append-only file), or a replica promoted while it lagged, holds entries
//! as they were at some earlier moment: sessions deleted or revoked since
//! are live there, others older than the database's copy. Nothing in such
//! an entry tells it from one written since, so the apps agree on a token
//! that changes whenever the server holding the data changes: the epoch key
//! (`<prefix>epoch`) holds the server's run id (new at every start, and a
//! promoted replica's is its own) beside the token. The script that reads
//! it compares the run id with the server's own (`INFO server`) and, when
//! they differ, starts a new epoch; being one script, two apps that notice
//! at once agree on one token. Each app asks at most once a second, and
//! before its next read after a failed call (the restart broke its
//! connection), so entries restored by a restart are served for at most
//! about a second, not until they expire.
//!
//! An entry of another epoch reads as absent: the store reads the database
//! and refills it, and the refill replaces it (`INSERT_IF_EMPTY` takes it
//! for an empty slot). Tombstones are kept whatever their epoch: a session
//! deleted before the restart is still deleted. A cache-only store (Redis
//! holds the only copy) and a Redis Cluster (one epoch key could not speak
//! for every primary) have no epoch.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an app asks for the epoch.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The hash field holding an entry's epoch.
pub(super) const FIELD: &str = "g";

/// How long the epoch key outlives the last app's asking when the server
/// does not tell its run id (a Redis user refused `INFO`): then only a
/// snapshot older than this, restored at a restart, is seen for what it is.
const UNTOLD_TTL_MS: u64 = 60_000;

/// Returns the current epoch's token, starting a new epoch when the server
/// that holds the data is not the one that made the stored one. KEYS[1]
/// the epoch key; ARGV[1] a new token, used when a new epoch starts; ARGV[2]
/// the epoch key's lifetime in ms when the server does not tell its run id
/// (`-` stands for it then).
pub(super) const EPOCH: &str = r#"
local info = redis.pcall('INFO', 'server')
local run = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or '-'
-- Anything but a string there (a key of another type set by hand) is
-- replaced, not an error that would leave every read without the cache.
local stored = redis.pcall('GET', KEYS[1])
local token
if type(stored) == 'string' then
  local at = string.find(stored, ' ', 1, true)
  if at and string.sub(stored, 1, at - 1) == run then token = string.sub(stored, at + 1) end
end
if not token then
  token = ARGV[1]
  redis.call('SET', KEYS[1], run .. ' ' .. token)
end
if run == '-' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else redis.call('PERSIST', KEYS[1]) end
return token
"#;

/// The epoch key: under the prefix, where a Redis user limited to the
/// prefix's keys may write it, and never taken for a session (a session's
/// key is 32 characters).
pub(super) fn key(prefix: &str) -> String {
    format!("{prefix}epoch")
}

/// The arguments of [`EPOCH`] after the key.
pub(super) fn arguments() -> (String, u64) {
    (new_token(), UNTOLD_TTL_MS)
}

/// What an app knows of the epoch.
#[derive(Debug, Default)]
pub(super) struct Epoch {
    /// Whether the cache is in front of a database.
    on: std::sync::atomic::AtomicBool,
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    token: Option<Arc<str>>,
    /// When the server was last asked (or a call claimed the asking).
    asked_at: Option<Instant>,
    /// A call failed since: ask before the next read.
    suspect: bool,
}

/// What [`Epoch::claim`] leaves the caller to do.
pub(super) enum Claim {
    /// Use this token.
    Known(Arc<str>),
    /// Ask the server (and [`Epoch::learn`] the answer); the token known so
    /// far, if any, is no longer to be trusted.
    Ask,
}

impl Epoch {
    pub(super) fn switch_on(&self) {
        self.on.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn is_on(&self) -> bool {
        self.on.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token to use, or the task of asking for it: once a second, and
    /// before the next read after a failure. One caller is given the task;
    /// the others meanwhile use the token known (when there is one: the
    /// first callers all ask). A task dropped halfway is claimed again a
    /// second later.
    pub(super) fn claim(&self) -> Claim {
        let mut state = self.state();
        let due = state.suspect || state.asked_at.is_none_or(|at| at.elapsed() >= CHECK_EVERY);
        match &state.token {
            Some(token) if !due => Claim::Known(token.clone()),
            _ => {
                state.asked_at = Some(Instant::now());
                state.suspect = false;
                Claim::Ask
            }
        }
    }

    /// The server's answer to a claimed task.
    pub(super) fn learn(&self, token: &str) -> Arc<str> {
        let token: Arc<str> = token.into();
        self.state().token = Some(token.clone());
        token
    }

    /// A call failed: the server may have restarted.
    pub(super) fn suspect(&self) {
        self.state().suspect = true;
    }
}

/// A token for a new epoch: 12 random characters.
fn new_token() -> String {
    let id = crate::id::SessionId::generate();
    id.as_str()[..12].to_owned()
}
