//! The Redis cache tier: standalone Redis, Redis Cluster, or the primary
//! Sentinels name, chosen by the URL (see [`RedisCache::connect`]).
//!
//! Key `<prefix><id>`, a hash per session: `m` the version and the created,
//! updated and expiry times in one field, `u` the user, and one `d:<key>`
//! field per data key holding that value's JSON (`fields.rs`). Expiry is set on the key at the
//! session's `expires_at` (`PEXPIREAT`), so Redis needs no purge. One field
//! per key is what lets a small Lua script apply a request's key-level
//! changes atomically without parsing JSON in Lua (whose cjson turns `[]`
//! into `{}` and rounds numbers): concurrent changes to different keys of
//! one session all land. Writes that must not go backwards are scripts too:
//! a write after a database save never replaces a newer version or a
//! deletion marker ("tombstone", a hash with one field `x`), a refill only
//! fills an empty slot, and cache-only updates compare-and-set on the version.
//! Entries in the string format of earlier releases are read (and rewritten
//! as hashes) so an upgrade does not lose cache-only sessions. In front of a
//! database each entry also holds the epoch it was written in (`g`), and
//! entries of another epoch, restored by a restart of the server, read as
//! absent (`epoch.rs`).
//!
//! The connection is created lazily (an app starts even while Redis is
//! down) and re-established by itself after a failure. The URL, which may
//! hold a password, is never logged or put in an error.
//!
//! On a Redis Cluster every key carries its session key as a hash tag
//! (`<prefix>{<key>}`), and every script touches one key, so no call
//! crosses slots. The one operation on two sessions, a cache-only id
//! rotation, is two scripts there: the new entry is written first (refused
//! when the id is taken), then the old one is compare-and-set to a "moved"
//! marker; when that fails the new entry is removed and the rotation
//! reports the conflict. A process that dies between the two leaves the
//! old session in place and an unreferenced copy that expires with it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::io::Write as _;

use redis::{AsyncCommands as _, Cmd, FromRedisValue, RedisWrite as _, Script};

use super::{CacheLookup, CacheTier, Patch, RotateOutcome, Tombstone, UpdateOutcome};
use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};

mod epoch;
mod fields;
mod link;
mod scripts;
mod slots;

use fields::{decode_fields, expiry_ms, patch_counts, write_patch, write_record};
use link::Link;
use scripts::{INSERT_IF_EMPTY, LIVE_KEYS, PATCH, PUT, PUT_PATCHED, ROTATE, ROTATE_IN, ROTATE_OUT, TOMBSTONE, UPDATE};
use slots::{DIGEST_MASK, DIGEST_SHIFT, NODE_CURSOR, SLOT_SHIFT, serving_primaries};

const BACKEND: &str = "redis";
/// The value that marked a deleted session in the string format (read only).
const OLD_TOMBSTONE: &str = "!deleted";
/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "sessionctl:";
/// How long a cache-only rotation marks the old id as moved.
const MOVED_MARKER_TTL_MS: u64 = 60_000;

/// Session records in Redis.
#[derive(Clone)]
pub struct RedisCache {
    connection: Link,
    prefix: String,
    /// Keys carry a hash tag (on a cluster).
    tagged: bool,
    insert_if_empty: Script,
    put: Script,
    put_patched: Script,
    patch: Script,
    update: Script,
    rotate: Script,
    rotate_in: Script,
    rotate_out: Script,
    tombstone: Script,
    live_keys: Script,
    /// In front of a database: the epoch entries are written in and read
    /// back from (`epoch.rs`).
    epoch: Arc<epoch::Epoch>,
    epoch_script: Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .field("cluster", &self.tagged)
            .finish_non_exhaustive()
    }
}

fn cache_error(operation: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |e| Error::Cache { backend: BACKEND, operation, message: e.to_string() }
}

impl RedisCache {
    /// Removes the entries an older build cached under a session id (the
    /// prefix, then 24 characters) rather than its key, so a snapshot of
    /// this Redis holds no id; their sessions are read from the database
    /// under their key from now on. Returns how many were removed.
    ///
    /// # Errors
    ///
    /// [`Error::Cache`] when Redis fails or does not answer in time.
    pub async fn evict_entries_under_ids(&self) -> Result<u64> {
        if self.tagged {
            // No build ever cached under ids on a cluster.
            return Ok(0);
        }
        let mut connection = self.connection();
        let mut cursor = 0u64;
        let mut removed = 0;
        loop {
            let (next, keys) = self.scan_page(cursor, 1000).await.map_err(cache_error("listing cached sessions"))?;
            let under_ids: Vec<&String> = keys
                .iter()
                .filter(|key| key.strip_prefix(&self.prefix).is_some_and(|rest| rest.len() == crate::id::ID_LEN))
                .collect();
            if !under_ids.is_empty() {
                let count: u64 = redis::cmd("UNLINK")
                    .arg(&under_ids)
                    .query_async(&mut connection)
                    .await
                    .map_err(cache_error("removing entries cached under an id"))?;
                removed += count;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// A client for the Redis a URL names: `redis://` or `rediss://` (one
    /// server), `redis+cluster://[user:password@]host:port,host:port…`
    /// (Redis Cluster seed nodes; `rediss+cluster://` for TLS), or
    /// `redis+sentinel://[user:password@]host:port,…/<primary's name>[/<db>]`
    /// (the user and password are the data nodes'; `?sentinel_username=…&sentinel_password=…`
    /// for Sentinels that require them). No connection is made until first
    /// use; `timeout` bounds each connection attempt and each command. Call
    /// it inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL the Redis client does not accept (it connects
    /// lazily: an unreachable server fails the first call).
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<RedisCache> {
        let target = link::parse(url).map_err(|reason| Error::Config(format!("invalid Redis URL: {reason}")))?;
        let tagged = matches!(target, link::Target::Cluster(_));
        if tagged && prefix.contains(['{', '}']) {
            return Err(Error::Config(format!(
                "the Redis key prefix {prefix:?} holds a brace: on a cluster each key's hash tag is its session's"
            )));
        }
        let connection = Link::open(&target, timeout)?;
        let script = |body: &str| Script::new(&scripts::source(body));
        Ok(RedisCache {
            connection,
            prefix: prefix.to_owned(),
            tagged,
            insert_if_empty: script(INSERT_IF_EMPTY),
            put: script(PUT),
            put_patched: script(PUT_PATCHED),
            patch: script(PATCH),
            update: script(UPDATE),
            rotate: script(ROTATE),
            rotate_in: script(ROTATE_IN),
            rotate_out: script(ROTATE_OUT),
            tombstone: script(TOMBSTONE),
            live_keys: script(LIVE_KEYS),
            epoch: Arc::default(),
            epoch_script: Script::new(epoch::EPOCH),
        })
    }

    /// The forms of URL [`connect`](Self::connect) accepts, for messages.
    pub const URL_FORMS: &'static str = link::URL_FORMS;

    /// The key a session is stored under.
    pub fn key(&self, id: &SessionKey) -> String {
        self.key_of(id).to_string()
    }

    /// The key a session is stored under, to write where it goes: the
    /// prefix, then the session key (as a hash tag on a cluster).
    fn key_of<'a>(&'a self, id: &'a SessionKey) -> impl std::fmt::Display + 'a {
        struct Key<'a>(&'a RedisCache, &'a SessionKey);
        impl std::fmt::Display for Key<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let Key(cache, id) = self;
                if cache.tagged { write!(f, "{}{{{id}}}", cache.prefix) } else { write!(f, "{}{id}", cache.prefix) }
            }
        }
        Key(self, id)
    }

    /// Appends the key a session is stored under to `cmd`.
    fn write_key(&self, cmd: &mut Cmd, id: &SessionKey) {
        // Writes into the command's own buffer: it cannot fail.
        let _ = write!(cmd.writer_for_next_arg(), "{}", self.key_of(id));
    }

    /// An `EVALSHA` of `script` on the keys of `ids`; the caller appends
    /// the arguments. Built as one command buffer: `Script::key`/`arg` hold
    /// each argument in an allocation of its own and copy them all again
    /// into the command (~12 allocations per save; BENCHMARKS.md, issue #9).
    fn eval(&self, script: &Script, ids: &[&SessionKey]) -> Cmd {
        let mut cmd = Cmd::with_capacity(16, 256);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(ids.len());
        for id in ids {
            self.write_key(&mut cmd, id);
        }
        cmd
    }

    /// Sends a call [`eval`](Self::eval) built; when Redis does not know
    /// the script (restarted, `SCRIPT FLUSH`, a failover to a replica that
    /// never loaded it) loads it and sends the call again, as
    /// `Script::invoke_async` does. Twice at most: the link may reach a new
    /// primary while this runs (`link.rs`), which has not loaded it either.
    async fn invoke<T: FromRedisValue>(&self, script: &Script, cmd: &Cmd) -> redis::RedisResult<T> {
        let mut connection = self.connection();
        let no_script = |e: &redis::RedisError| e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript);
        let mut loads = 0;
        loop {
            let sent = match cmd.query_async(&mut connection).await {
                Err(e) if no_script(&e) && loads < 2 => {
                    loads += 1;
                    script.load_async(&mut connection).await.map(|_| None)
                }
                result => result.map(Some),
            };
            match sent {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) => {
                    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                        // A write that met a restarted server, too: the
                        // reads after it ask for the epoch first.
                        self.epoch.suspect();
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The epoch to write entries in and require of them (`epoch.rs`), or
    /// none when the cache is not in front of a database; asked of the
    /// server once a second, and after a failed read.
    async fn epoch_token(&self) -> redis::RedisResult<Option<Arc<str>>> {
        if !self.epoch.is_on() {
            return Ok(None);
        }
        match self.epoch.claim() {
            epoch::Claim::Known(token) => Ok(Some(token)),
            epoch::Claim::Ask(mut asking) => {
                let (_turn, answered) = asking.queue().await;
                if answered.is_some() {
                    return Ok(answered);
                }
                let mut call = Cmd::with_capacity(6, 96);
                call.arg("EVALSHA").arg(self.epoch_script.get_hash()).arg(2);
                call.arg(epoch::key(&self.prefix)).arg(epoch::untold_key(&self.prefix));
                let (token, ttl_ms) = epoch::arguments();
                call.arg(token).arg(ttl_ms);
                let token: String = self.invoke(&self.epoch_script, &call).await?;
                match asking.learn(&token) {
                    Some(token) => Ok(Some(token)),
                    None => Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a call failed while the epoch was asked; it is asked again",
                    ))),
                }
            }
        }
    }

    /// The session key a Redis key holds, if it is one of ours.
    fn id_of(&self, key: &str) -> Option<SessionKey> {
        let rest = key.strip_prefix(&self.prefix)?;
        let rest = if self.tagged { rest.strip_prefix('{')?.strip_suffix('}')? } else { rest };
        SessionKey::parse(rest).ok()
    }

    fn connection(&self) -> Link {
        self.connection.clone()
    }

    /// One page of `SCAN` over every key of this prefix. On a cluster the
    /// pages walk each primary in turn, in the order of the first slot
    /// each serves, each page sent to the address `CLUSTER NODES` gives
    /// for it. The cursor holds that slot (bits 50–63), a 10-bit digest of
    /// which primary serves which slots (bits 40–49) and the primary's own
    /// cursor (bits 0–39): a failover or a resharding between two pages
    /// changes the digest, and the listing stops with an error rather than
    /// skip or repeat keys (1 chance in 1,024 that a change goes unseen).
    /// Slots no primary serves are an error too, not a shorter listing.
    async fn scan_page(&self, cursor: u64, count: usize) -> redis::RedisResult<(u64, Vec<String>)> {
        let mut scan = redis::cmd("SCAN");
        let pattern = format!("{}*", escape_glob(&self.prefix));
        let Some(cluster) = self.connection.cluster() else {
            scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
            return scan.query_async(&mut self.connection()).await;
        };
        let failed = |message: &'static str| redis::RedisError::from((redis::ErrorKind::Client, message));
        let mut cluster = cluster.clone();
        let route = redis::cluster_routing::RoutingInfo::SingleNode(
            redis::cluster_routing::SingleNodeRoutingInfo::RandomPrimary,
        );
        let nodes: String =
            redis::from_redis_value(cluster.route_command(redis::cmd("CLUSTER").arg("NODES").clone(), route).await?)?;
        let (primaries, digest) = serving_primaries(&nodes).map_err(failed)?;
        let slot = u16::try_from(cursor >> SLOT_SHIFT).unwrap_or(u16::MAX);
        let moved = "the cluster's slots moved during the listing; run it again";
        if cursor != 0 && (cursor >> DIGEST_SHIFT) & DIGEST_MASK != digest {
            return Err(failed(moved));
        }
        let Some(place) = primaries.iter().position(|p| p.first_slot == slot) else { return Err(failed(moved)) };
        let primary = &primaries[place];
        scan.arg(cursor & NODE_CURSOR).arg("MATCH").arg(pattern).arg("COUNT").arg(count);
        let route =
            redis::cluster_routing::RoutingInfo::SingleNode(redis::cluster_routing::SingleNodeRoutingInfo::ByAddress {
                host: primary.host.clone(),
                port: primary.port,
            });
        let (next, keys): (u64, Vec<String>) = redis::from_redis_value(cluster.route_command(scan, route).await?)?;
        if next > NODE_CURSOR {
            return Err(failed("a SCAN cursor too large to walk a cluster"));
        }
        let at = |slot: u16| (u64::from(slot) << SLOT_SHIFT) | (digest << DIGEST_SHIFT);
        let next = match (next, primaries.get(place + 1)) {
            (0, Some(following)) => at(following.first_slot),
            (0, None) => 0,
            (next, _) => at(slot) | next,
        };
        Ok((next, keys))
    }

    async fn insert_if_empty(&self, record: &Record, operation: &'static str) -> Result<bool> {
        let epoch = self.epoch_token().await.map_err(cache_error(operation))?;
        let mut call = self.eval(&self.insert_if_empty, &[&record.id]);
        call.arg(expiry_ms(record));
        write_record(&mut call, record, epoch.as_deref());
        let written: i64 = self.invoke(&self.insert_if_empty, &call).await.map_err(cache_error(operation))?;
        Ok(written == 1)
    }

    /// A cache-only rotation on a cluster, where the two keys live in
    /// different slots: the new entry first, then the old one moved (see
    /// the module's docs).
    async fn rotate_across_slots(
        &self,
        old: &SessionKey,
        expected_version: i64,
        record: &Record,
    ) -> Result<RotateOutcome> {
        let mut call = self.eval(&self.rotate_in, &[&record.id]);
        call.arg(expiry_ms(record));
        // A cluster has no epoch.
        write_record(&mut call, record, None);
        let written: i64 =
            self.invoke(&self.rotate_in, &call).await.map_err(cache_error("moving a session to a new id"))?;
        if written == -2 {
            return Ok(RotateOutcome::IdTaken);
        }
        let new_key = self.key(&record.id);
        let mut call = self.eval(&self.rotate_out, &[old]);
        call.arg(expected_version).arg(MOVED_MARKER_TTL_MS).arg(&new_key);
        let moved: std::result::Result<i64, _> = self.invoke(&self.rotate_out, &call).await;
        let outcome = match moved {
            Ok(1) => return Ok(RotateOutcome::Rotated),
            Ok(0) => RotateOutcome::Conflict,
            Ok(_) => RotateOutcome::Missing,
            Err(e) => {
                // The move may have happened (a reply lost with its
                // connection): the marker says whether it points here.
                let marker: redis::RedisResult<Option<String>> = self.connection().hget(self.key(old), "n").await;
                if matches!(&marker, Ok(Some(key)) if *key == new_key) {
                    return Ok(RotateOutcome::Rotated);
                }
                // Not known to have moved: the new entry stays (nobody has
                // its id; it expires with the session) rather than risk
                // removing the only copy.
                return Err(cache_error("moving a session to a new id")(e));
            }
        };
        // Nobody has the new id yet: its entry goes.
        let _: std::result::Result<i64, _> = self.connection().del(&new_key).await;
        Ok(outcome)
    }

    /// Reads an entry left in the string format of earlier releases, and
    /// rewrites it as a hash (unless something newer got there first).
    async fn read_old_format(&self, id: &SessionKey, in_an_epoch: bool) -> Result<CacheLookup> {
        let value: Option<Vec<u8>> =
            self.connection().get(self.key(id)).await.map_err(cache_error("reading a session"))?;
        let lookup = match value {
            None => CacheLookup::Miss,
            Some(bytes) if bytes == OLD_TOMBSTONE.as_bytes() => CacheLookup::Deleted,
            // Of no epoch: the database's copy replaces it.
            Some(_) if in_an_epoch => CacheLookup::Miss,
            Some(bytes) => Record::from_envelope(&bytes)
                .map(CacheLookup::Hit)
                .map_err(|e| Error::Corrupt { id: id.to_string(), reason: format!("cache entry: {e}") })?,
        };
        if let CacheLookup::Hit(record) = &lookup {
            self.fill(record).await?;
        }
        Ok(lookup)
    }
}

/// Appends a patch's new expiry (Unix ms), or an empty argument when the
/// patch leaves the expiry alone.
fn write_expiry(cmd: &mut Cmd, patch: &Patch) {
    match patch.expires_at {
        Some(expiry) => cmd.arg(expiry.timestamp_millis()),
        None => cmd.arg(""),
    };
}

/// Escapes a literal for a Redis glob pattern.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[async_trait]
impl CacheTier for RedisCache {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get(&self, id: &SessionKey) -> Result<CacheLookup> {
        let epoch = self.epoch_token().await.map_err(cache_error("reading a session"))?;
        let mut read = Cmd::with_capacity(2, 64);
        read.arg("HGETALL");
        self.write_key(&mut read, id);
        // A read that fails, or is cut off by the cache's timeout, may have
        // met a restarted server: the epoch is asked again before the next.
        let unanswered = epoch.is_some().then(|| self.epoch.unanswered());
        let fields: std::result::Result<Vec<Vec<u8>>, redis::RedisError> =
            read.query_async(&mut self.connection()).await;
        let old_format = matches!(&fields, Err(e) if e.code() == Some("WRONGTYPE"));
        if let Some(read) = unanswered.filter(|_| fields.is_ok() || old_format) {
            read.answered();
        }
        match fields {
            Ok(fields) => decode_fields(id, fields, epoch.as_deref()),
            Err(_) if old_format => self.read_old_format(id, epoch.is_some()).await,
            Err(e) => Err(cache_error("reading a session")(e)),
        }
    }

    fn in_front_of_database(&self) {
        // A cluster has no epoch (`epoch.rs`).
        if !self.tagged {
            self.epoch.switch_on();
        }
    }

    async fn fill(&self, record: &Record) -> Result<()> {
        self.insert_if_empty(record, "refilling a session").await.map(|_| ())
    }

    async fn put(&self, record: &Record) -> Result<bool> {
        let epoch = self.epoch_token().await.map_err(cache_error("writing a session"))?;
        let mut call = self.eval(&self.put, &[&record.id]);
        call.arg(expiry_ms(record)).arg(record.version);
        write_record(&mut call, record, epoch.as_deref());
        let stored: i64 = self.invoke(&self.put, &call).await.map_err(cache_error("writing a session"))?;
        Ok(stored == 1)
    }

    async fn put_patched(&self, id: &SessionKey, patch: &Patch, version: i64) -> Result<bool> {
        let epoch = self.epoch_token().await.map_err(cache_error("writing a session"))?;
        let (removed, items) = patch_counts(patch);
        let mut call = self.eval(&self.put_patched, &[id]);
        write_expiry(&mut call, patch);
        call.arg(version).arg(patch.updated_at.timestamp_millis()).arg(removed).arg(items);
        write_patch(&mut call, patch);
        call.arg(epoch.as_deref().unwrap_or(""));
        let applied: i64 = self.invoke(&self.put_patched, &call).await.map_err(cache_error("writing a session"))?;
        Ok(applied == 1)
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch, bump: bool) -> Result<Option<i64>> {
        let epoch = self.epoch_token().await.map_err(cache_error("saving a session"))?;
        let (removed, items) = patch_counts(patch);
        let mut call = self.eval(&self.patch, &[id]);
        call.arg(if bump { "1" } else { "0" }).arg(record::MAX_VERSION).arg(removed).arg(items);
        write_expiry(&mut call, patch);
        call.arg(patch.updated_at.timestamp_millis());
        write_patch(&mut call, patch);
        call.arg(epoch.as_deref().unwrap_or(""));
        let version: i64 = self.invoke(&self.patch, &call).await.map_err(cache_error("saving a session"))?;
        Ok((version >= 0).then_some(version))
    }

    async fn evict(&self, ids: &[SessionKey]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let _: i64 = self.connection().del(keys).await.map_err(cache_error("evicting sessions"))?;
        Ok(())
    }

    async fn tombstone(&self, id: &SessionKey, ttl: Duration, reason: Tombstone) -> Result<()> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut call = self.eval(&self.tombstone, &[id]);
        call.arg(match reason {
            Tombstone::Deleted => "deleted",
            Tombstone::Moved => "moved",
        })
        .arg(ttl_ms);
        let _: i64 = self.invoke(&self.tombstone, &call).await.map_err(cache_error("deleting a session"))?;
        Ok(())
    }

    async fn create(&self, record: &Record) -> Result<bool> {
        self.insert_if_empty(record, "creating a session").await
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        let epoch = self.epoch_token().await.map_err(cache_error("saving a session"))?;
        let mut call = self.eval(&self.update, &[&record.id]);
        call.arg(expiry_ms(record)).arg(expected_version);
        write_record(&mut call, record, epoch.as_deref());
        let outcome: i64 = self.invoke(&self.update, &call).await.map_err(cache_error("saving a session"))?;
        Ok(match outcome {
            1 => UpdateOutcome::Updated,
            0 => UpdateOutcome::Conflict,
            _ => UpdateOutcome::Missing,
        })
    }

    async fn rotate(&self, old: &SessionKey, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        if self.tagged {
            return self.rotate_across_slots(old, expected_version, record).await;
        }
        let epoch = self.epoch_token().await.map_err(cache_error("moving a session to a new id"))?;
        let mut call = self.eval(&self.rotate, &[old, &record.id]);
        call.arg(expiry_ms(record)).arg(expected_version).arg(MOVED_MARKER_TTL_MS);
        write_record(&mut call, record, epoch.as_deref());
        let outcome: i64 =
            self.invoke(&self.rotate, &call).await.map_err(cache_error("moving a session to a new id"))?;
        Ok(match outcome {
            1 => RotateOutcome::Rotated,
            0 => RotateOutcome::Conflict,
            -2 => RotateOutcome::IdTaken,
            _ => RotateOutcome::Missing,
        })
    }

    async fn scan_ids(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionKey>)> {
        let (next, keys) = self.scan_page(cursor, count).await.map_err(cache_error("listing cached sessions"))?;
        if keys.is_empty() {
            return Ok((next, Vec::new()));
        }
        let live: Vec<String> = if self.tagged {
            // One key per call: keys of different slots cannot share a script.
            let calls = keys.iter().map(|key| async move {
                let live: Vec<String> = self.live_keys.key(key).invoke_async(&mut self.connection()).await?;
                Ok::<_, redis::RedisError>(live)
            });
            let pages = futures_util::future::try_join_all(calls).await;
            pages.map_err(cache_error("listing cached sessions"))?.into_iter().flatten().collect()
        } else {
            let mut live = self.live_keys.prepare_invoke();
            for key in &keys {
                live.key(key);
            }
            live.invoke_async(&mut self.connection()).await.map_err(cache_error("listing cached sessions"))?
        };
        let ids = live.iter().filter_map(|key| self.id_of(key)).collect();
        Ok((next, ids))
    }

    async fn delete(&self, id: &SessionKey) -> Result<bool> {
        let deleted: i64 = self.connection().del(self.key(id)).await.map_err(cache_error("deleting a session"))?;
        Ok(deleted > 0)
    }
}
