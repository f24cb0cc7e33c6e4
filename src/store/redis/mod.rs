//! The Redis cache tier: standalone Redis, Redis Cluster, or the primary
//! Sentinels name, chosen by the URL (see [`RedisCache::connect`]).
//!
//! Key `<prefix><id>`, a hash per session: `v` the version, `c`/`t`/`e` the
//! created, updated and expiry times, `u` the user, and one `d:<key>` field
//! per data key holding that value's JSON. Expiry is set on the key at the
//! session's `expires_at` (`PEXPIREAT`), so Redis needs no purge. One field
//! per key is what lets a small Lua script apply a request's key-level
//! changes atomically without parsing JSON in Lua (whose cjson turns `[]`
//! into `{}` and rounds numbers): concurrent changes to different keys of
//! one session all land. Writes that must not go backwards are scripts too:
//! a write after a database save never replaces a newer version or a
//! deletion marker ("tombstone", a hash with one field `x`), a refill only
//! fills an empty slot, and cache-only updates compare-and-set on `v`.
//! Entries in the string format of earlier releases are read (and rewritten
//! as hashes) so an upgrade does not lose cache-only sessions.
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

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands as _, Script};

use super::{CacheLookup, CacheTier, Patch, RotateOutcome, Tombstone, UpdateOutcome};
use crate::error::{Error, Result};
use crate::id::SessionKey;
use crate::record::{self, Record};

mod link;
use link::Link;

const BACKEND: &str = "redis";
/// The value that marked a deleted session in the string format (read only).
const OLD_TOMBSTONE: &str = "!deleted";
/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "sessionctl:";
/// How long a cache-only rotation marks the old id as moved.
const MOVED_MARKER_TTL_MS: u64 = 60_000;

/// Helpers every script starts with. `kind` tells a live entry from a
/// tombstone, an absent key, or an entry in the older string format (which
/// reads convert and writes replace). `hset_from` writes the field/value
/// pairs of ARGV from index `first` (in chunks: `unpack` has a stack limit).
const COMMON: &str = r#"
local function kind(key)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' then return 'none' end
  if t ~= 'hash' then
    if redis.call('GET', key) == '!deleted' then return 'tomb' end
    return 'old'
  end
  if redis.call('HEXISTS', key, 'x') == 1 then return 'tomb' end
  return 'live'
end
-- Runs `command` on `key` with ARGV[first..last], in chunks (`unpack` has
-- a stack limit).
local function call_range(command, key, first, last)
  local i = first
  while i <= last do
    local stop = math.min(i + 399, last)
    redis.call(command, key, unpack(ARGV, i, stop))
    i = stop + 1
  end
end
local function hset_range(key, first, last) call_range('HSET', key, first, last) end
local function hdel_range(key, first, last) call_range('HDEL', key, first, last) end
local function write_whole(key, first, expiry)
  redis.call('DEL', key)
  hset_range(key, first, #ARGV)
  redis.call('PEXPIREAT', key, expiry)
end
local function version(key)
  return tonumber(redis.call('HGET', key, 'v'))
end
-- The version of a live entry in one call; nil for an absent key, a
-- tombstone (a hash without 'v') or an entry in the older string format.
local function live_version(key)
  local v = redis.pcall('HGET', key, 'v')
  if type(v) ~= 'string' then return nil end
  return tonumber(v)
end
-- Unmarks, in one call, the quick marks of the data fields among
-- ARGV[first..last] (every `step`th).
local function unmark_quick(key, first, last, step)
  local flags = {}
  for i = first, last, step do
    if string.sub(ARGV[i], 1, 2) == 'd:' then flags[#flags + 1] = 'q:' .. string.sub(ARGV[i], 3) end
  end
  for i = 1, #flags, 400 do
    redis.call('HDEL', key, unpack(flags, i, math.min(i + 399, #flags)))
  end
end
-- For each data field ('d:<key>') among ARGV[first..last] (every `step`th):
-- mark its key as changed by a quick write ('q:<key>'), or unmark it.
local function mark_quick(key, first, last, step, mark)
  for i = first, last, step do
    local field = ARGV[i]
    if string.sub(field, 1, 2) == 'd:' then
      local flag = 'q:' .. string.sub(field, 3)
      if mark then redis.call('HSET', key, flag, '1') else redis.call('HDEL', key, flag) end
    end
  end
end
"#;

/// Refill after a database read, and cache-only creation: only into an
/// empty slot (never over a live entry or a tombstone). KEYS[1]; ARGV
/// expiry ms, then the record's fields. Returns 1 written, 0 refused.
const INSERT_IF_EMPTY: &str = r#"
local k = kind(KEYS[1])
if k == 'live' or k == 'tomb' then return 0 end
write_whole(KEYS[1], 2, ARGV[1])
return 1
"#;

/// After a database write: KEYS[1]; ARGV expiry ms, version, fields.
/// Returns 1 stored, 0 refused (the same or a newer version, which may hold
/// quick writes the record does not, or a tombstone).
const PUT: &str = r#"
local k = kind(KEYS[1])
if k == 'tomb' then return 0 end
if k == 'live' and version(KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
write_whole(KEYS[1], 3, ARGV[1])
return 1
"#;

/// After a database patch: KEYS[1]; ARGV expiry ms or '', new version,
/// count of removed fields, count of patch items, the removed fields, the
/// patch items. When the entry is the version just before, the patch is
/// applied to it (keeping quick writes, unmarking the keys it persisted),
/// and the script returns 1. An older entry is deleted (the next read
/// refills it): -1. The same or a newer version, a tombstone, or no entry:
/// 0, untouched.
const PUT_PATCHED: &str = r#"
local current = live_version(KEYS[1])
local new = tonumber(ARGV[2])
if current == nil or current >= new then return 0 end
if current ~= new - 1 then
  redis.call('DEL', KEYS[1])
  return -1
end
local removed = tonumber(ARGV[3])
local items = tonumber(ARGV[4])
hdel_range(KEYS[1], 5, 4 + removed)
hset_range(KEYS[1], 5 + removed, 4 + removed + items)
unmark_quick(KEYS[1], 5, 4 + removed + items, 1)
redis.call('HSET', KEYS[1], 'v', ARGV[2])
if ARGV[1] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return 1
"#;

/// Key-level changes to a live entry: KEYS[1]; ARGV bump (1/0), largest
/// version, count of removed fields, count of patch items, expiry ms or '',
/// the removed fields, the patch items. Without bump (a quick write) the
/// changed keys are marked `q:<key>` until a database save persists them.
/// Returns the entry's version after the change, or -1 when there is no
/// live entry.
const PATCH: &str = r#"
local current = live_version(KEYS[1])
if current == nil then return -1 end
local removed = tonumber(ARGV[3])
local items = tonumber(ARGV[4])
if ARGV[1] == '1' then
  if current >= tonumber(ARGV[2]) then
    return redis.error_reply('session version is at its limit')
  end
  current = redis.call('HINCRBY', KEYS[1], 'v', 1)
end
hdel_range(KEYS[1], 6, 5 + removed)
hset_range(KEYS[1], 6 + removed, 5 + removed + items)
if ARGV[1] == '0' then
  mark_quick(KEYS[1], 6, 5 + removed, 1, true)
  mark_quick(KEYS[1], 6 + removed, 5 + removed + items, 2, true)
end
if ARGV[5] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[5]) end
return current
"#;

/// Cache-only update: KEYS[1]; ARGV expiry ms, expected version, fields.
/// Returns 1 updated, 0 conflict, -1 missing.
const UPDATE: &str = r#"
if kind(KEYS[1]) ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
write_whole(KEYS[1], 3, ARGV[1])
return 1
"#;

/// Cache-only id rotation: KEYS old, new; ARGV expiry ms, expected version,
/// marker ttl ms, fields. The old id becomes a "moved" tombstone. Returns 1
/// rotated, 0 conflict, -1 missing, -2 id taken.
const ROTATE: &str = r#"
if kind(KEYS[1]) ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', 'moved')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
write_whole(KEYS[2], 4, ARGV[1])
return 1
"#;

/// The first step of a rotation on a cluster: KEYS[1] the new id's key;
/// ARGV expiry ms, then the record's fields (`v`, version, `c`, created,
/// `t`, updated, …). Returns 1 written, -2 id taken. Idempotent: the cluster
/// client resends a call whose connection dropped, and an entry with this
/// very version, creation and update time is this call's own.
const ROTATE_IN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if kind(KEYS[1]) == 'live' then
    local mine = redis.call('HMGET', KEYS[1], 'v', 'c', 't')
    if mine[1] == ARGV[3] and mine[2] == ARGV[5] and mine[3] == ARGV[7] then return 1 end
  end
  return -2
end
write_whole(KEYS[1], 2, ARGV[1])
return 1
"#;

/// The second step: KEYS[1] the old id's key; ARGV expected version, marker
/// ttl ms, the new id's key (kept in the marker). Returns 1 moved, 0
/// conflict, -1 missing. Idempotent: a marker pointing at this new key is
/// this call's own, resent.
const ROTATE_OUT: &str = r#"
local k = kind(KEYS[1])
if k == 'tomb' and redis.call('HGET', KEYS[1], 'n') == ARGV[3] then return 1 end
if k ~= 'live' then return -1 end
if version(KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', 'moved', 'n', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS[1]; ARGV reason ('deleted' or 'moved'), ttl ms. A deletion keeps an
/// existing "moved" marker.
const TOMBSTONE: &str = r#"
if ARGV[1] == 'deleted' and kind(KEYS[1]) == 'tomb' and redis.call('HGET', KEYS[1], 'x') == 'moved' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'x', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: keys found by SCAN. Returns those holding a live session.
const LIVE_KEYS: &str = r#"
local live = {}
for _, key in ipairs(KEYS) do
  local k = kind(key)
  if k == 'live' or (k == 'old' and redis.call('GET', key) ~= '!deleted') then table.insert(live, key) end
end
return live
"#;

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
        let script = |body: &str| Script::new(&format!("{COMMON}\n{body}"));
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
        })
    }

    /// The forms of URL [`connect`](Self::connect) accepts, for messages.
    pub const URL_FORMS: &'static str = link::URL_FORMS;

    /// The key a session is stored under.
    pub fn key(&self, id: &SessionKey) -> String {
        if self.tagged { format!("{}{{{}}}", self.prefix, id) } else { format!("{}{}", self.prefix, id) }
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
        let written: i64 = self
            .insert_if_empty
            .key(self.key(&record.id))
            .arg(expiry_ms(record))
            .arg(record_fields(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error(operation))?;
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
        let written: i64 = self
            .rotate_in
            .key(self.key(&record.id))
            .arg(expiry_ms(record))
            .arg(record_fields(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("moving a session to a new id"))?;
        if written == -2 {
            return Ok(RotateOutcome::IdTaken);
        }
        let new_key = self.key(&record.id);
        let moved: std::result::Result<i64, _> = self
            .rotate_out
            .key(self.key(old))
            .arg(expected_version)
            .arg(MOVED_MARKER_TTL_MS)
            .arg(&new_key)
            .invoke_async(&mut self.connection())
            .await;
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
    async fn read_old_format(&self, id: &SessionKey) -> Result<CacheLookup> {
        let value: Option<Vec<u8>> =
            self.connection().get(self.key(id)).await.map_err(cache_error("reading a session"))?;
        let lookup = match value {
            None => CacheLookup::Miss,
            Some(bytes) if bytes == OLD_TOMBSTONE.as_bytes() => CacheLookup::Deleted,
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

/// A cluster SCAN cursor: the slot, a digest of the slot map, and the
/// primary's own cursor (see `RedisCache::scan_page`).
const SLOT_SHIFT: u32 = 50;
const DIGEST_SHIFT: u32 = 40;
const DIGEST_MASK: u64 = (1 << 10) - 1;
const NODE_CURSOR: u64 = (1 << DIGEST_SHIFT) - 1;

/// A primary that serves slots, as `CLUSTER NODES` lists it.
#[derive(Debug, PartialEq)]
struct Primary {
    first_slot: u16,
    host: String,
    port: u16,
}

/// The primaries serving slots in `CLUSTER NODES` output, by the lowest slot
/// each serves, and a 10-bit digest of which node serves which slots. An
/// error when some slot has no serving primary (a listing would miss its
/// sessions). A primary only suspected of failing (`fail?`) still serves:
/// if it is down, the call routed to it fails. Migration entries
/// (`[slot->-node]`, `[slot-<-node]`) are left out: a migrating slot is
/// still listed in its source's ranges.
fn serving_primaries(nodes: &str) -> std::result::Result<(Vec<Primary>, u64), &'static str> {
    let mut primaries = Vec::new();
    let mut map = Vec::new();
    let mut covered = 0u32;
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(address), Some(flags)) = (fields.first(), fields.get(1), fields.get(2)) else { continue };
        let serving = flags.split(',').any(|f| f == "master") && !flags.split(',').any(|f| f == "fail");
        if !serving {
            continue;
        }
        let ranges: Vec<(u16, u16)> = fields
            .iter()
            .skip(8)
            .filter(|range| !range.starts_with('['))
            .filter_map(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                let (low, high): (u16, u16) = (low.parse().ok()?, high.parse().ok()?);
                (low <= high && high < 16384).then_some((low, high))
            })
            .collect();
        let Some(first_slot) = ranges.iter().map(|(low, _)| *low).min() else { continue };
        covered += ranges.iter().map(|(low, high)| u32::from(high - low) + 1).sum::<u32>();
        let endpoint = address.split(['@', ',']).next().unwrap_or_default();
        let Some((host, port)) = endpoint.rsplit_once(':') else {
            return Err("CLUSTER NODES gave an address without a port");
        };
        let port = port.parse().map_err(|_| "CLUSTER NODES gave an address without a port")?;
        map.push(format!("{id} {ranges:?}"));
        primaries.push(Primary { first_slot, host: host.trim_matches(['[', ']']).to_owned(), port });
    }
    if covered < 16384 {
        return Err("some of the cluster's slots have no primary serving them: a listing would miss their sessions");
    }
    primaries.sort_by_key(|p| p.first_slot);
    map.sort();
    // FNV-1a over the slot map: the same map gives the same digest on
    // every call and every process.
    let digest =
        map.join("\n").bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    Ok((primaries, digest & DIGEST_MASK))
}

fn expiry_ms(record: &Record) -> i64 {
    record.expires_at.timestamp_millis()
}

/// A data key's hash field.
fn data_field(key: &str) -> Vec<u8> {
    let mut field = Vec::with_capacity(key.len() + 2);
    field.extend_from_slice(b"d:");
    field.extend_from_slice(key.as_bytes());
    field
}

fn ms_arg(t: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    t.timestamp_millis().to_string().into_bytes()
}

/// The record as hash field/value pairs: `v` version, `c`/`t`/`e` created,
/// updated and expiry times (Unix ms), `u` the user (absent when none), and
/// `d:<key>` the JSON text of each value. One field per key is what lets a
/// script change one key without parsing the others.
fn record_fields(record: &Record) -> Vec<Vec<u8>> {
    let mut fields = Vec::with_capacity(8 + 2 * record.data.len());
    fields.extend([
        b"v".to_vec(),
        record.version.to_string().into_bytes(),
        b"c".to_vec(),
        ms_arg(record.created_at),
        b"t".to_vec(),
        ms_arg(record.updated_at),
        b"e".to_vec(),
        ms_arg(record.expires_at),
    ]);
    if let Some(user_id) = &record.user_id {
        fields.extend([b"u".to_vec(), user_id.clone().into_bytes()]);
    }
    for (key, value) in &record.data {
        fields.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    fields
}

/// A patch as the fields it removes and the field/value items it sets.
fn patch_fields(patch: &Patch) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut removed: Vec<Vec<u8>> = patch.removed.iter().map(|key| data_field(key)).collect();
    let mut items = vec![b"t".to_vec(), ms_arg(patch.updated_at)];
    for (key, value) in &patch.set {
        items.extend([data_field(key), serde_json::to_vec(value).unwrap_or_default()]);
    }
    match &patch.user_id {
        Some(Some(user_id)) => items.extend([b"u".to_vec(), user_id.clone().into_bytes()]),
        Some(None) => removed.push(b"u".to_vec()),
        None => {}
    }
    if let Some(expires_at) = patch.expires_at {
        items.extend([b"e".to_vec(), ms_arg(expires_at)]);
    }
    (removed, items)
}

/// Decodes an entry's fields (as HGETALL returns them, flat).
fn decode_fields(id: &SessionKey, flat: Vec<Vec<u8>>) -> Result<CacheLookup> {
    if flat.is_empty() {
        return Ok(CacheLookup::Miss);
    }
    let corrupt = |reason: String| Error::Corrupt { id: id.to_string(), reason: format!("cache entry: {reason}") };
    let mut data = crate::record::Data::new();
    let mut quick = Vec::new();
    let (mut version, mut created, mut updated, mut expires, mut user_id) = (None, None, None, None, None);
    let mut pairs = flat.into_iter();
    while let (Some(field), Some(value)) = (pairs.next(), pairs.next()) {
        let number = || -> Result<i64> {
            std::str::from_utf8(&value)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| corrupt(format!("field {:?} is not a number", String::from_utf8_lossy(&field))))
        };
        match field.as_slice() {
            b"x" if value == b"moved" => return Ok(CacheLookup::Moved),
            b"x" => return Ok(CacheLookup::Deleted),
            // Where a rotation on a cluster moved the session (in its marker).
            b"n" => {}
            b"v" => version = Some(number()?),
            b"c" => created = Some(number()?),
            b"t" => updated = Some(number()?),
            b"e" => expires = Some(number()?),
            b"u" => user_id = Some(String::from_utf8(value).map_err(|_| corrupt("user id is not UTF-8".into()))?),
            _ if field.starts_with(b"q:") => {
                quick.push(String::from_utf8_lossy(&field[2..]).into_owned());
            }
            _ => {
                let key = field
                    .strip_prefix(b"d:")
                    .and_then(|key| std::str::from_utf8(key).ok())
                    .ok_or_else(|| corrupt(format!("unknown field {:?}", String::from_utf8_lossy(&field))))?;
                let value = serde_json::from_slice(&value).map_err(|e| corrupt(format!("value of {key:?}: {e}")))?;
                data.insert(key.to_owned(), value);
            }
        }
    }
    let time = |ms: Option<i64>, what: &str| {
        ms.and_then(record::from_millis).ok_or_else(|| corrupt(format!("{what} is missing or out of range")))
    };
    let version = version.ok_or_else(|| corrupt("no version".into()))?;
    let fields = Record {
        id: id.clone(),
        user_id,
        data,
        created_at: time(created, "created_at")?,
        updated_at: time(updated, "updated_at")?,
        expires_at: time(expires, "expires_at")?,
        version,
    };
    let record = fields.checked().map_err(corrupt)?;
    Ok(if quick.is_empty() { CacheLookup::Hit(record) } else { CacheLookup::Quick(record, quick) })
}

#[async_trait]
impl CacheTier for RedisCache {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get(&self, id: &SessionKey) -> Result<CacheLookup> {
        let fields: std::result::Result<Vec<Vec<u8>>, redis::RedisError> =
            redis::cmd("HGETALL").arg(self.key(id)).query_async(&mut self.connection()).await;
        match fields {
            Ok(fields) => decode_fields(id, fields),
            Err(e) if e.code() == Some("WRONGTYPE") => self.read_old_format(id).await,
            Err(e) => Err(cache_error("reading a session")(e)),
        }
    }

    async fn fill(&self, record: &Record) -> Result<()> {
        self.insert_if_empty(record, "refilling a session").await.map(|_| ())
    }

    async fn put(&self, record: &Record) -> Result<bool> {
        let stored: i64 = self
            .put
            .key(self.key(&record.id))
            .arg(expiry_ms(record))
            .arg(record.version)
            .arg(record_fields(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("writing a session"))?;
        Ok(stored == 1)
    }

    async fn put_patched(&self, id: &SessionKey, patch: &Patch, version: i64) -> Result<bool> {
        let (removed, items) = patch_fields(patch);
        let applied: i64 = self
            .put_patched
            .key(self.key(id))
            .arg(patch.expires_at.map(|t| t.timestamp_millis().to_string()).unwrap_or_default())
            .arg(version)
            .arg(removed.len())
            .arg(items.len())
            .arg(removed)
            .arg(items)
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("writing a session"))?;
        Ok(applied == 1)
    }

    async fn patch(&self, id: &SessionKey, patch: &Patch, bump: bool) -> Result<Option<i64>> {
        let (removed, items) = patch_fields(patch);
        let version: i64 = self
            .patch
            .key(self.key(id))
            .arg(if bump { "1" } else { "0" })
            .arg(record::MAX_VERSION)
            .arg(removed.len())
            .arg(items.len())
            .arg(patch.expires_at.map(|t| t.timestamp_millis().to_string()).unwrap_or_default())
            .arg(removed)
            .arg(items)
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("saving a session"))?;
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
        let _: i64 = self
            .tombstone
            .key(self.key(id))
            .arg(match reason {
                Tombstone::Deleted => "deleted",
                Tombstone::Moved => "moved",
            })
            .arg(ttl_ms)
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("deleting a session"))?;
        Ok(())
    }

    async fn create(&self, record: &Record) -> Result<bool> {
        self.insert_if_empty(record, "creating a session").await
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        let outcome: i64 = self
            .update
            .key(self.key(&record.id))
            .arg(expiry_ms(record))
            .arg(expected_version)
            .arg(record_fields(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("saving a session"))?;
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
        let outcome: i64 = self
            .rotate
            .key(self.key(old))
            .key(self.key(&record.id))
            .arg(expiry_ms(record))
            .arg(expected_version)
            .arg(MOVED_MARKER_TTL_MS)
            .arg(record_fields(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("moving a session to a new id"))?;
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

#[cfg(test)]
mod tests {
    use super::{Primary, serving_primaries};

    const NODES: &str = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,host-b master - 0 0 2 connected 5461-10922 [93->-c3]
c3 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383 [93-<-b2]
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected
";

    fn primary(first_slot: u16, port: u16) -> Primary {
        Primary { first_slot, host: "127.0.0.1".into(), port }
    }

    #[test]
    fn primaries_are_read_in_slot_order_with_a_digest_of_the_slot_map() {
        let (primaries, digest) = serving_primaries(NODES).unwrap();
        assert_eq!(primaries, vec![primary(0, 7001), primary(5461, 7002), primary(10923, 7003)]);
        // The same map in another order gives the same digest; a moved slot another.
        let reordered: String = NODES.lines().rev().map(|l| format!("{l}\n")).collect();
        assert_eq!(serving_primaries(&reordered).unwrap().1, digest);
        let resharded = NODES.replace("0-5460", "0-5459").replace("5461-10922", "5460-10922");
        assert_ne!(serving_primaries(&resharded).unwrap().1, digest);
        // A primary only suspected of failing still serves.
        assert!(serving_primaries(&NODES.replace("myself,master", "myself,master,fail?")).is_ok());
    }

    #[test]
    fn slots_without_a_serving_primary_are_an_error() {
        let failed = NODES.replace("myself,master", "myself,master,fail");
        assert!(serving_primaries(&failed).unwrap_err().contains("no primary serving them"));
        let gap = NODES.replace("10923-16383", "10923-16000");
        assert!(serving_primaries(&gap).is_err());
        assert!(serving_primaries("").is_err());
    }
}
