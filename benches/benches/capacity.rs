//! Bytes per session in each tier, for docs/SCALING.md: sessions of about
//! 0.2 KB, 1 KB and 10 KB of data (four keys of random letters, which no
//! compression shrinks: an upper bound), a fifth of them with a user id,
//! written through the library into a throwaway Redis and PostgreSQL.
//!
//! - Redis: the growth of `used_memory` over the sessions written (their
//!   hashes, keys and expiry entries), and `MEMORY USAGE` of one of them.
//! - PostgreSQL: after `VACUUM ANALYZE`, the table's heap, its TOAST and
//!   its indexes, each divided by the number of rows.
//!
//! Run: `cargo bench -p sessionctl-benches --bench capacity` (`SESSIONS=N`
//! for another count; default 20,000 per size).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sessionctl::store::postgres::PostgresDatabase;
use sessionctl::store::redis::RedisCache;
use sessionctl::{DatabaseCore as _, Record, SessionKey, Store, StoreOptions};

#[path = "../../tests/support/pg_server.rs"]
#[allow(dead_code)]
mod pg_server;
#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

/// A tiny xorshift: the same letters every run, none compressible.
struct Letters(u64);

impl Letters {
    fn text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                char::from(b'a' + (self.0 % 26) as u8)
            })
            .collect()
    }
}

fn data(letters: &mut Letters, size: usize) -> Map<String, Value> {
    (0..4).map(|k| (format!("key{k}"), Value::String(letters.text(size / 4 - 10)))).collect()
}

async fn redis_used_memory(connection: &mut redis::aio::ConnectionManager) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(connection).await.unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
}

async fn pg_sizes(pool: &sqlx::PgPool) -> (i64, i64, i64) {
    sqlx::query("VACUUM ANALYZE sessions").execute(pool).await.unwrap();
    sqlx::query_as(
        "SELECT pg_relation_size('sessions'),
                pg_total_relation_size('sessions') - pg_relation_size('sessions') - pg_indexes_size('sessions'),
                pg_indexes_size('sessions')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(redis) = redis_server::RedisServer::start() else { return };
    let Some(pg) = pg_server::shared() else { return };
    let count: usize = std::env::var("SESSIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        println!("{count} sessions per size, a fifth with a user id; bytes per session");
        println!("| data | Redis (used_memory growth) | Redis MEMORY USAGE of one | PostgreSQL heap | TOAST | indexes | PostgreSQL total |");
        println!("| --- | --- | --- | --- | --- | --- | --- |");
        let mut letters = Letters(0x9E37_79B9_7F4A_7C15);
        for size in [200usize, 1024, 10 * 1024] {
            let url = pg.create_database();
            let database = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
            database.migrate().await.unwrap();
            let cache = Arc::new(RedisCache::connect(&redis.url(), &format!("cap{size}:"), Duration::from_secs(5)).unwrap());
            let store = Store::tiered(database.clone(), cache.clone(), StoreOptions::default());
            let client = redis::Client::open(redis.url()).unwrap();
            let mut connection = redis::aio::ConnectionManager::new(client).await.unwrap();
            let _: () = redis::cmd("FLUSHALL").query_async(&mut connection).await.unwrap();
            let before = redis_used_memory(&mut connection).await;
            let mut sample = None;
            let mut writes = Vec::new();
            for i in 0..count {
                let user = (i % 5 == 0).then(|| format!("user{}", i % 1000));
                let t = sessionctl::record::now();
                let record = Record {
                    id: SessionKey::generate().1,
                    user_id: user,
                    data: data(&mut letters, size).into(),
                    created_at: t,
                    updated_at: t,
                    expires_at: t + chrono::Duration::days(7),
                    version: 1,
                };
                sample.get_or_insert_with(|| record.id.clone());
                writes.push(record);
            }
            for chunk in writes.chunks(64) {
                let calls = chunk.iter().map(|record| store.create(record));
                for created in futures_util::future::join_all(calls).await {
                    assert!(created.unwrap());
                }
            }
            let after = redis_used_memory(&mut connection).await;
            let key = cache.key(&sample.unwrap());
            let one: i64 = redis::cmd("MEMORY").arg("USAGE").arg(&key).query_async(&mut connection).await.unwrap();
            let (heap, toast, indexes) = pg_sizes(database.pool()).await;
            let n = count as f64;
            let data_len = serde_json::to_string(&data(&mut Letters(1), size)).unwrap().len();
            println!(
                "| {:.1} KB ({} B of JSON) | {:.0} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                size as f64 / 1024.0,
                data_len,
                (after - before) as f64 / n,
                one,
                heap as f64 / n,
                toast as f64 / n,
                indexes as f64 / n,
                (heap + toast + indexes) as f64 / n,
            );
        }
    });
}
