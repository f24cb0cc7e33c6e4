//! Cached load of a 1 KB session, side by side in one run:
//!
//! * `raw GET` — the floor: one GET of the same bytes our store keeps, on
//!   the same kind of connection (a redis-rs `ConnectionManager`);
//! * `raw GET + decode` — the floor plus decoding the envelope, what any
//!   store must at least do;
//! * `sessionctl` — `Store::load` with Redis in front of SQLite (a cache hit:
//!   one GET, the envelope decoded, the timeout and staleness checks);
//! * `tower-sessions` — the peer (tower-sessions-redis-store 0.16: fred,
//!   MessagePack) loading a session with the same data.
//!
//! The machine's noise drifts over seconds, so instead of measuring each
//! variant in its own block (criterion's way), the variants are interleaved:
//! in every round each runs a batch, and the figures are the medians over
//! rounds. Ratios are taken between medians of the same run.
//!
//! Redis is a throwaway `redis-server` on loopback started by the bench.
//! Run: `cargo bench -p sessionctl-benches --bench cached_load`

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use sessionctl::record::now;
use sessionctl::store::redis::RedisCache;
use sessionctl::store::sqlite::SqliteDatabase;
use sessionctl::{DatabaseTier, Record, SessionKey, Store, StoreOptions};
use tower_sessions_core::SessionStore as _;
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};

#[path = "../fixtures.rs"]
mod fixtures;
#[path = "../../tests/support/pg_server.rs"]
#[allow(dead_code)]
mod pg_server;
#[path = "../../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

const ROUNDS: usize = 60;
const BATCH: usize = 400;

type Op<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(server) = redis_server::RedisServer::start() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let (store, id, key) = runtime.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let database: Arc<dyn DatabaseTier> = Arc::new(SqliteDatabase::connect(&url).await.unwrap());
        database.migrate().await.unwrap();
        let cache = RedisCache::connect(&server.url(), "bench:", StoreOptions::default().cache_timeout).unwrap();
        let t = now();
        let record = Record {
            id: SessionKey::generate().1,
            user_id: None,
            data: fixtures::one_kb_data().into(),
            created_at: t,
            updated_at: t,
            expires_at: t + chrono::Duration::days(1),
            version: 1,
        };
        // The floor reads the session's bytes as one string (its envelope)
        // under a key of its own: the store's entry is a hash.
        let key = (format!("bench:raw:{}", record.id), record.to_envelope());
        let store = Store::tiered(database, Arc::new(cache), StoreOptions::default());
        assert!(store.create(&record).await.unwrap());
        store.load(&record.id, now()).await.unwrap().unwrap();
        let before = store.ops();
        store.load(&record.id, now()).await.unwrap().unwrap();
        let ops = store.ops() - before;
        assert_eq!((ops.database, ops.cache), (0, 1), "the measured load is one cache round trip");
        (store, record.id, key)
    });

    let (key, envelope) = key;
    let raw = runtime.block_on(async {
        let client = redis::Client::open(server.url()).unwrap();
        let mut raw = redis::aio::ConnectionManager::new(client).await.unwrap();
        let () = raw.set(&key, envelope).await.unwrap();
        raw
    });

    let (peer, peer_id) = runtime.block_on(async {
        let pool = Pool::new(Config::from_url(&server.url()).unwrap(), None, None, None, 1).unwrap();
        pool.init().await.unwrap();
        let peer = RedisStore::new(pool);
        let mut record = tower_sessions_core::session::Record {
            id: tower_sessions_core::session::Id::default(),
            data: fixtures::one_kb_data().into_iter().collect(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(1),
        };
        peer.create(&mut record).await.unwrap();
        assert_eq!(peer.load(&record.id).await.unwrap().unwrap().data.len(), 3);
        (peer, record.id)
    });

    let mut variants: Vec<(&str, Op)> = vec![
        (
            "raw GET (floor)",
            Box::new(|| {
                let (mut c, key) = (raw.clone(), key.clone());
                Box::pin(async move {
                    let bytes: Vec<u8> = c.get(key).await.unwrap();
                    assert!(!bytes.is_empty());
                })
            }),
        ),
        (
            "raw GET + envelope decode",
            Box::new(|| {
                let (mut c, key) = (raw.clone(), key.clone());
                Box::pin(async move {
                    let bytes: Vec<u8> = c.get(key).await.unwrap();
                    Record::from_envelope(&bytes).unwrap();
                })
            }),
        ),
        (
            "sessionctl Store::load (Redis+SQLite)",
            Box::new(|| {
                Box::pin(async {
                    store.load(&id, now()).await.unwrap().unwrap();
                })
            }),
        ),
        (
            "tower-sessions RedisStore::load (peer)",
            Box::new(|| {
                Box::pin(async {
                    peer.load(&peer_id).await.unwrap().unwrap();
                })
            }),
        ),
    ];

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    runtime.block_on(async {
        for round in 0..=ROUNDS {
            for (i, (_, op)) in variants.iter_mut().enumerate() {
                let start = Instant::now();
                for _ in 0..BATCH {
                    op().await;
                }
                // Round 0 warms up.
                if round > 0 {
                    samples[i].push(start.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
                }
            }
        }
    });

    let floor = median(&mut samples[0].clone());
    println!("cached load of a 1 KB session: {ROUNDS} interleaved rounds of {BATCH} loads each");
    println!("{:<42} {:>10} {:>10} {:>10} {:>9}", "variant", "median µs", "p10 µs", "p90 µs", "× floor");
    for ((name, _), values) in variants.iter().zip(samples.iter_mut()) {
        let m = median(values);
        let p10 = values[values.len() / 10];
        let p90 = values[values.len() * 9 / 10];
        println!("{name:<42} {m:>10.1} {p10:>10.1} {p90:>10.1} {:>8.2}×", m / floor);
    }
    std::thread::sleep(Duration::from_millis(10));
}
