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
//! at once agree on one token. Each app asks once a second, and after a
//! failed call (a restart breaks its connection) before its next read, so
//! entries restored by a restart are served for at most about a second, not
//! until they expire.
//!
//! An entry of another epoch reads as absent: the store reads the database
//! and refills it, and the refill replaces it (`INSERT_IF_EMPTY` takes it
//! for an empty slot, unless it is newer and written in the last 5 s:
//! `replaceable` in `scripts.rs`). Tombstones are kept whatever their
//! epoch: a session deleted before the restart is still deleted. After a
//! failed call (a read, a write, or an ask) the token is forgotten, and
//! every read waits for one ask, sent one at a time, before it reads. A
//! cache-only store (Redis holds the only copy) and a Redis Cluster (one
//! epoch key could not speak for every primary) have no epoch.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an app asks for the epoch.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The hash field holding an entry's epoch.
pub(super) const FIELD: &str = "g";

/// How long the mark of apps that cannot tell the run id (a Redis user
/// refused `INFO`) lasts after their last ask, and the epoch key after the
/// last ask that renews it while they are about (see [`EPOCH`]): for them
/// only a snapshot older than this, restored at a restart, is told apart.
const UNTOLD_TTL_MS: u64 = 60_000;

/// Returns the current epoch's token, starting a new epoch when the server
/// that holds the data is not the one that made the stored one. KEYS[1]
/// the epoch key, KEYS[2] the mark of callers that cannot tell the run id;
/// ARGV[1] a new token, used when a new epoch starts; ARGV[2] the lifetime
/// in ms of the mark, and of the epoch key while the mark is there.
///
/// - A caller that cannot tell the run id (`-` stands for it) trusts what
///   is stored and renews the mark; one that can adopts a token stored
///   without one: apps under Redis users with and without `INFO` agree,
///   rather than start new epochs in turn.
/// - While the mark is there the epoch key has a lifetime, renewed only by
///   asks that can be trusted with it: a caller that cannot tell renews a
///   key stored without a run id (and gives one with none a lifetime), one
///   that can renews a key of its run id. So a run-id key such callers
///   trust lapses a minute after the last caller that could tell asked (an
///   admin tool run once, say), and a restart is told apart again. Once
///   the mark has lapsed, a caller that can tell takes the lifetime off:
///   apps that can tell keep their epoch through a quiet night.
/// - Nothing is written when nothing changes, and a write refused as
///   `READONLY` (the URL names a replica, or a primary demoted a moment
///   ago) leaves the stored token in force: a replica's data is its
///   primary's, and so is its epoch.
/// - The stale key is deleted before the new one is set, so a server at its
///   memory limit (`noeviction`) can still start an epoch; one that cannot
///   fails the call, and the reads go to the database meanwhile.
/// - Anything but a string at the key (set by hand) is replaced.
pub(super) const EPOCH: &str = r#"
local info = redis.pcall('INFO', 'server')
local run = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or '-'
if run == '-' then redis.pcall('SET', KEYS[2], '1', 'PX', ARGV[2]) end
local marked = run == '-' or redis.call('EXISTS', KEYS[2]) == 1
local stored = redis.pcall('GET', KEYS[1])
local by, kept
if type(stored) == 'string' then
  local at = string.find(stored, ' ', 1, true)
  if at then by, kept = string.sub(stored, 1, at - 1), string.sub(stored, at + 1) end
end
if kept and (by == run or run == '-') then
  local ttl = redis.call('PTTL', KEYS[1])
  if run == '-' then
    if by == '-' or ttl == -1 then redis.pcall('PEXPIRE', KEYS[1], ARGV[2]) end
  elseif marked then
    redis.pcall('PEXPIRE', KEYS[1], ARGV[2])
  elseif ttl >= 0 then
    redis.pcall('PERSIST', KEYS[1])
  end
  return kept
end
local token = ARGV[1]
if kept and by == '-' then token = kept end
local done = redis.pcall('DEL', KEYS[1])
if not (type(done) == 'table' and done.err) then
  if marked then
    done = redis.pcall('SET', KEYS[1], run .. ' ' .. token, 'PX', ARGV[2])
  else
    done = redis.pcall('SET', KEYS[1], run .. ' ' .. token)
  end
end
if type(done) == 'table' and done.err then
  if kept and string.find(done.err, 'READONLY', 1, true) then return kept end
  return redis.error_reply(done.err)
end
return token
"#;

/// The epoch key: under the prefix, where a Redis user limited to the
/// prefix's keys may write it, and never taken for a session (a session's
/// key is 32 characters).
pub(super) fn key(prefix: &str) -> String {
    format!("{prefix}epoch")
}

/// The mark of callers that cannot tell the run id (see [`EPOCH`]), beside
/// the epoch key.
pub(super) fn untold_key(prefix: &str) -> String {
    format!("{prefix}epoch:untold")
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
    /// Held by the ask in flight: one at a time, so a failure (when every
    /// read is given an ask) sends one script to the server, not one per
    /// read, and those queued behind it take its answer.
    one_ask: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    /// The token in force; none until first asked, and after a failure.
    token: Option<Arc<str>>,
    /// When the server was last asked (or a call claimed the asking).
    asked_at: Option<Instant>,
    /// How many answers were learned: tells an ask queued behind another
    /// that it was answered meanwhile.
    answers: u64,
    /// How many failures were met: an answer sent before one (by the
    /// server that failed, maybe) is not learned.
    failures: u64,
}

/// What [`Epoch::claim`] leaves the caller to do.
pub(super) enum Claim<'a> {
    /// Use this token.
    Known(Arc<str>),
    /// Ask the server, and [`Asking::learn`] the answer.
    Ask(Asking<'a>),
}

/// An ask in flight. Dropped without an answer (the call failed, or was cut
/// off by the cache's timeout), it leaves the epoch unknown, so the next
/// call asks again rather than trust the token from before.
pub(super) struct Asking<'a> {
    epoch: &'a Epoch,
    learned: bool,
    /// [`State::answers`] when it was claimed.
    answers: u64,
    /// [`State::failures`] when its turn came, before it is sent.
    failures: u64,
}

impl<'a> Asking<'a> {
    /// Waits for the ask in flight, if any (see [`Epoch::one_ask`]); the
    /// token when that ask was answered meanwhile, so none is needed.
    pub(super) async fn queue(&mut self) -> (tokio::sync::MutexGuard<'a, ()>, Option<Arc<str>>) {
        let epoch: &'a Epoch = self.epoch;
        let turn = epoch.one_ask.lock().await;
        let state = self.epoch.state();
        let answered = state.token.clone().filter(|_| state.answers != self.answers);
        self.failures = state.failures;
        drop(state);
        self.learned |= answered.is_some();
        (turn, answered)
    }

    /// The server's answer, unless a call failed while it was on its way
    /// (it may come from the server that failed): then none, and the epoch
    /// stays unknown.
    pub(super) fn learn(mut self, token: &str) -> Option<Arc<str>> {
        let mut state = self.epoch.state();
        if state.failures != self.failures {
            return None;
        }
        self.learned = true;
        let token: Arc<str> = token.into();
        state.token = Some(token.clone());
        state.answers += 1;
        Some(token)
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        if !self.learned {
            self.epoch.suspect();
        }
    }
}

/// A read in flight: dropped without [`answered`](Self::answered) (it
/// failed, or was cut off), it makes the epoch [`suspect`](Epoch::suspect).
pub(super) struct Unanswered<'a>(Option<&'a Epoch>);

impl Unanswered<'_> {
    pub(super) fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(epoch) = self.0 {
            epoch.suspect();
        }
    }
}

impl Epoch {
    /// A read about to be sent (see [`Unanswered`]).
    pub(super) fn unanswered(&self) -> Unanswered<'_> {
        Unanswered(Some(self))
    }

    pub(super) fn switch_on(&self) {
        self.on.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn is_on(&self) -> bool {
        self.on.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The token to use, or the task of asking for it. Once a second one
    /// caller is given the task while the others use the token in force;
    /// while no token is (at first, and after a failure) every caller asks:
    /// after a restart none may read with the token from before.
    pub(super) fn claim(&self) -> Claim<'_> {
        let mut state = self.state();
        let due = state.asked_at.is_none_or(|at| at.elapsed() >= CHECK_EVERY);
        match &state.token {
            Some(token) if !due => Claim::Known(token.clone()),
            _ => {
                state.asked_at = Some(Instant::now());
                Claim::Ask(Asking { epoch: self, learned: false, answers: state.answers, failures: state.failures })
            }
        }
    }

    /// A call failed: the server may have restarted. The token from before
    /// is not used again until the server is asked.
    pub(super) fn suspect(&self) {
        let mut state = self.state();
        state.token = None;
        state.failures += 1;
    }
}

/// A token for a new epoch: 12 random characters.
fn new_token() -> String {
    let id = crate::id::SessionId::generate();
    id.as_str()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(claim: Claim<'_>) -> Option<Arc<str>> {
        match claim {
            Claim::Known(token) => Some(token),
            Claim::Ask(_) => None,
        }
    }

    #[test]
    fn after_a_failure_every_caller_asks_until_one_is_answered() {
        let epoch = Epoch::default();
        let Claim::Ask(asking) = epoch.claim() else { panic!("the first caller asks") };
        assert_eq!(asking.learn("one").as_deref(), Some("one"));
        // Within the second, the token in force.
        assert_eq!(known(epoch.claim()).as_deref(), Some("one"));
        // A read that failed: nobody reads with the token from before.
        drop(epoch.unanswered());
        let (first, second) = (epoch.claim(), epoch.claim());
        assert!(matches!((&first, &second), (Claim::Ask(_), Claim::Ask(_))));
        // An ask cut off leaves it unknown: the next caller asks too.
        drop(first);
        drop(second);
        assert!(known(epoch.claim()).is_none());
        let Claim::Ask(asking) = epoch.claim() else { panic!() };
        asking.learn("two");
        assert_eq!(known(epoch.claim()).as_deref(), Some("two"));
        // An answered read changes nothing.
        epoch.unanswered().answered();
        assert_eq!(known(epoch.claim()).as_deref(), Some("two"));
    }

    #[tokio::test]
    async fn an_ask_queued_behind_another_takes_its_answer_and_sends_none() {
        let epoch = Epoch::default();
        let (Claim::Ask(mut first), Claim::Ask(mut second)) = (epoch.claim(), epoch.claim()) else { panic!() };
        let (turn, answered) = first.queue().await;
        assert!(answered.is_none(), "the first asks");
        first.learn("one");
        drop(turn);
        let (_turn, answered) = second.queue().await;
        assert_eq!(answered.as_deref(), Some("one"), "the second takes its answer");
        drop(second);
        assert_eq!(known(epoch.claim()).as_deref(), Some("one"), "and does not make it suspect");
    }

    #[tokio::test]
    async fn an_answer_sent_before_a_failure_is_not_learned() {
        let epoch = Epoch::default();
        let Claim::Ask(mut asking) = epoch.claim() else { panic!() };
        let (turn, _) = asking.queue().await;
        // A read fails while the ask is on its way: the answer may be the
        // failed server's.
        drop(epoch.unanswered());
        drop(turn);
        assert!(asking.learn("before").is_none());
        assert!(known(epoch.claim()).is_none(), "still unknown: asked again");
    }

    #[test]
    fn once_a_second_one_caller_asks_while_the_others_use_the_token() {
        let epoch = Epoch::default();
        let Claim::Ask(asking) = epoch.claim() else { panic!() };
        asking.learn("one");
        epoch.state().asked_at = Some(Instant::now() - CHECK_EVERY);
        let Claim::Ask(asking) = epoch.claim() else { panic!("due") };
        assert_eq!(known(epoch.claim()).as_deref(), Some("one"), "the others meanwhile");
        asking.learn("one");
    }
}
