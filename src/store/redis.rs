//! The Redis cache tier (standalone Redis).
//!
//! Key `<prefix><id>`, value the record's envelope, expiry on the key at the
//! session's `expires_at` (`PXAT`), so Redis needs no purge. Writes that must
//! not go backwards run as small Lua scripts: a write after a database save
//! never replaces a newer version or a deletion marker ("tombstone"), a
//! refill after a database read only fills an empty slot, and in cache-only
//! mode updates compare-and-set on the version. Scripts read the version
//! from the envelope's first bytes (`{"v":1,"version":N,…`), never parsing
//! the whole record.
//!
//! The connection is a `ConnectionManager`: created lazily (an app starts
//! even while Redis is down) and re-established by itself after a failure.
//! The URL, which may hold a password, is never logged or put in an error.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};

use super::{CacheLookup, CacheTier, RotateOutcome, UpdateOutcome};
use crate::error::{Error, Result};
use crate::id::SessionId;
use crate::record::Record;

const BACKEND: &str = "redis";
/// The value that marks a deleted session.
const TOMBSTONE: &str = "!deleted";
/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "sessionctl:";

/// Reads the version at the head of an envelope; nil for anything else.
const VERSION_OF: &str = r#"
local function version_of(value)
  if not value then return nil end
  return tonumber(string.match(value, '^{"v":1,"version":(%-?%d+)'))
end
"#;

/// Cache-only update: KEYS[1]; ARGV value, expected version, expiry ms.
/// Returns 1 updated, 0 conflict, -1 missing.
const UPDATE: &str = r#"
local current = redis.call('GET', KEYS[1])
local v = version_of(current)
if not v then return -1 end
if v ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
return 1
"#;

/// After a database write: KEYS[1]; ARGV value, version, expiry ms,
/// tombstone. Returns 1 stored, 0 refused (newer version or tombstone).
const PUT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current == ARGV[4] then return 0 end
local v = version_of(current)
if v and v > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
return 1
"#;

/// Cache-only id rotation: KEYS old, new; ARGV value, expected version,
/// expiry ms. Returns 1 rotated, 0 conflict, -1 missing, -2 id taken.
const ROTATE: &str = r#"
local v = version_of(redis.call('GET', KEYS[1]))
if not v then return -1 end
if v ~= tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[3])
return 1
"#;

/// Session records in Redis.
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
    update: Script,
    put: Script,
    rotate: Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn cache_error(operation: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |e| Error::Cache { backend: BACKEND, operation, message: e.to_string() }
}

impl RedisCache {
    /// A client for the Redis a `redis://` or `rediss://` URL names. No
    /// connection is made until first use; `timeout` bounds each connection
    /// attempt and each command.
    pub fn connect(url: &str, prefix: &str, timeout: Duration) -> Result<RedisCache> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::Config(format!("invalid Redis URL: {}", e.kind_description())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(cache_error("connecting"))?;
        let script = |body: &str| Script::new(&format!("{VERSION_OF}\n{body}"));
        Ok(RedisCache {
            connection,
            prefix: prefix.to_owned(),
            update: script(UPDATE),
            put: script(PUT),
            rotate: script(ROTATE),
        })
    }

    /// The key a session is stored under.
    pub fn key(&self, id: &SessionId) -> String {
        format!("{}{}", self.prefix, id)
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }
}

trait ErrorKindDescription {
    fn kind_description(&self) -> &'static str;
}

impl ErrorKindDescription for redis::RedisError {
    /// The error's category without its detail, which for a bad URL could
    /// echo the URL (and its password).
    fn kind_description(&self) -> &'static str {
        match self.kind() {
            redis::ErrorKind::InvalidClientConfig => "not a valid redis:// or rediss:// URL",
            _ => "cannot be used",
        }
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

fn expiry_ms(record: &Record) -> i64 {
    record.expires_at.timestamp_millis()
}

#[async_trait]
impl CacheTier for RedisCache {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get(&self, id: &SessionId) -> Result<CacheLookup> {
        let value: Option<Vec<u8>> =
            self.connection().get(self.key(id)).await.map_err(cache_error("reading a session"))?;
        match value {
            None => Ok(CacheLookup::Miss),
            Some(bytes) if bytes == TOMBSTONE.as_bytes() => Ok(CacheLookup::Deleted),
            Some(bytes) => Record::from_envelope(&bytes)
                .map(CacheLookup::Hit)
                .map_err(|e| Error::Corrupt { id: id.to_string(), reason: format!("cache entry: {e}") }),
        }
    }

    async fn fill(&self, record: &Record) -> Result<()> {
        let _: Option<String> = redis::cmd("SET")
            .arg(self.key(&record.id))
            .arg(record.to_envelope())
            .arg("PXAT")
            .arg(expiry_ms(record))
            .arg("NX")
            .query_async(&mut self.connection())
            .await
            .map_err(cache_error("refilling a session"))?;
        Ok(())
    }

    async fn put(&self, record: &Record) -> Result<bool> {
        let stored: i64 = self
            .put
            .key(self.key(&record.id))
            .arg(record.to_envelope())
            .arg(record.version)
            .arg(expiry_ms(record))
            .arg(TOMBSTONE)
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("writing a session"))?;
        Ok(stored == 1)
    }

    async fn evict(&self, ids: &[SessionId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        let _: i64 = self.connection().del(keys).await.map_err(cache_error("evicting sessions"))?;
        Ok(())
    }

    async fn tombstone(&self, id: &SessionId, ttl: Duration) -> Result<()> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let _: () = redis::cmd("SET")
            .arg(self.key(id))
            .arg(TOMBSTONE)
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.connection())
            .await
            .map_err(cache_error("deleting a session"))?;
        Ok(())
    }

    async fn create(&self, record: &Record) -> Result<bool> {
        let created: Option<String> = redis::cmd("SET")
            .arg(self.key(&record.id))
            .arg(record.to_envelope())
            .arg("PXAT")
            .arg(expiry_ms(record))
            .arg("NX")
            .query_async(&mut self.connection())
            .await
            .map_err(cache_error("creating a session"))?;
        Ok(created.is_some())
    }

    async fn update(&self, record: &Record, expected_version: i64) -> Result<UpdateOutcome> {
        let outcome: i64 = self
            .update
            .key(self.key(&record.id))
            .arg(record.to_envelope())
            .arg(expected_version)
            .arg(expiry_ms(record))
            .invoke_async(&mut self.connection())
            .await
            .map_err(cache_error("saving a session"))?;
        Ok(match outcome {
            1 => UpdateOutcome::Updated,
            0 => UpdateOutcome::Conflict,
            _ => UpdateOutcome::Missing,
        })
    }

    async fn rotate(&self, old: &SessionId, expected_version: i64, record: &Record) -> Result<RotateOutcome> {
        let outcome: i64 = self
            .rotate
            .key(self.key(old))
            .key(self.key(&record.id))
            .arg(record.to_envelope())
            .arg(expected_version)
            .arg(expiry_ms(record))
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

    async fn scan_ids(&self, cursor: u64, count: usize) -> Result<(u64, Vec<SessionId>)> {
        let mut connection = self.connection();
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", escape_glob(&self.prefix)))
            .arg("COUNT")
            .arg(count)
            .query_async(&mut connection)
            .await
            .map_err(cache_error("listing cached sessions"))?;
        // Tombstones are short values; a record never is.
        let mut lengths = redis::pipe();
        for key in &keys {
            lengths.strlen(key);
        }
        let lengths: Vec<usize> =
            lengths.query_async(&mut connection).await.map_err(cache_error("listing cached sessions"))?;
        let ids = keys
            .iter()
            .zip(lengths)
            .filter(|(_, len)| *len != TOMBSTONE.len())
            .filter_map(|(key, _)| SessionId::parse(key.strip_prefix(&self.prefix)?).ok())
            .collect();
        Ok((next, ids))
    }

    async fn delete(&self, id: &SessionId) -> Result<bool> {
        let deleted: i64 = self.connection().del(self.key(id)).await.map_err(cache_error("deleting a session"))?;
        Ok(deleted > 0)
    }
}
