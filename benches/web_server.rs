//! The request-path benchmark's app on sessionctl: `/noop`, `/read`,
//! `/write` behind `SessionLayer`, or the floors (no layer; a handler doing
//! one raw Redis GET). Started by `benches/benches/web.rs`.
//!
//! `bench-web-server ours-redis-pg REDIS_URL PG_URL ADDR`
//! `bench-web-server ours-sqlite PATH ADDR`
//! `bench-web-server ours-redis REDIS_URL ADDR` (Redis only, `no_database`)
//! `bench-web-server none ADDR`
//! `bench-web-server rawget REDIS_URL ADDR` (`/read`: one GET; `/hgetall6`,
//! `/hgetall10`: one HGETALL of a hash of 3 or 5 fields)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use redis::AsyncCommands as _;
use sessionctl::web::SessionLayer;
use sessionctl::{Keys, MemoryCacheConfig, Session, SessionConfig, StoreConfig};

async fn read(session: Session) -> String {
    session.get::<u64>("n").await.unwrap().unwrap_or(0).to_string()
}

async fn write(session: Session) -> String {
    let n = session.get::<u64>("n").await.unwrap().unwrap_or(0) + 1;
    session.insert("n", n).await.unwrap();
    n.to_string()
}

/// Sets one key of the session (for the disjoint-keys check).
async fn set_key(session: Session, axum::extract::Path(key): axum::extract::Path<String>) -> String {
    session.insert(&key, true).await.unwrap();
    key
}

/// How many of the keys `k0`…`k99` the session holds.
async fn keys(session: Session) -> String {
    let mut held = 0;
    for i in 0..100 {
        if session.get::<bool>(&format!("k{i}")).await.unwrap().is_some() {
            held += 1;
        }
    }
    held.to_string()
}

fn routes() -> Router {
    Router::new()
        .route("/noop", get(|| async { "ok" }))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/set/{key}", get(set_key))
        .route("/keys", get(keys))
}

fn layer(store: sessionctl::Store) -> SessionLayer {
    let keys = Keys::new([b"bench key 0123456789 0123456789 0123456789".as_slice()]).unwrap();
    let mut config = SessionConfig::new(keys).with_cookie_only_threshold(0);
    config.cookie.secure = false;
    // DEVICES=1: record each session's device (last seen, address, user
    // agent), throttled as the library's default says, to measure its cost.
    if std::env::var("DEVICES").is_ok_and(|v| v == "1") {
        config = config.with_device_tracking(sessionctl::DeviceTracking::default());
    }
    SessionLayer::new(store, Arc::new(config)).expect("a valid session config")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (router, addr) = match &args[1..] {
        [mode, redis, pg, addr] if mode == "ours-redis-pg" => {
            let store = StoreConfig::new().with_database_url(pg.clone()).with_redis_url(redis.clone());
            (routes().layer(layer(store.open().await.unwrap())), addr)
        }
        [mode, path, addr] if mode == "ours-sqlite" => {
            let store = StoreConfig::new()
                .with_database_url(format!("sqlite://{path}"))
                .with_memory_cache(MemoryCacheConfig::default());
            (routes().layer(layer(store.open().await.unwrap())), addr)
        }
        [mode, redis, addr] if mode == "ours-redis" => {
            let store = StoreConfig::new().with_redis_url(redis.clone());
            (routes().layer(layer(store.open().await.unwrap())), addr)
        }
        [mode, addr] if mode == "none" => (routes(), addr),
        [mode, redis, addr] if mode == "rawget" => {
            let client = redis::Client::open(redis.as_str()).unwrap();
            let connection = redis::aio::ConnectionManager::new(client).await.unwrap();
            let mut seed = connection.clone();
            let _: () = seed.set("bench:raw", "x".repeat(100)).await.unwrap();
            // Two more floors, for the cost of a hash read's fields: a
            // session of one key as the Redis tier writes it now (`v`, `m`,
            // a data field: six values in the reply) and as it did before
            // (`v`, `c`, `t`, `e`, a data field: ten).
            let times = "1796736177000 1796736177000 1796736177000";
            let _: () = seed.hset_multiple("bench:hash6", &[("v", "1"), ("m", times), ("d:n", "1")]).await.unwrap();
            let earlier =
                [("v", "1"), ("c", "1796736177000"), ("t", "1796736177000"), ("e", "1796736177000"), ("d:n", "1")];
            let _: () = seed.hset_multiple("bench:hash10", &earlier).await.unwrap();
            let hgetall = |key: &'static str| {
                let connection = connection.clone();
                get(move || {
                    let mut connection = connection.clone();
                    async move {
                        let fields: Vec<Vec<u8>> =
                            redis::cmd("HGETALL").arg(key).query_async(&mut connection).await.unwrap();
                        fields.len().to_string()
                    }
                })
            };
            let router = Router::new()
                .route("/noop", get(|| async { "ok" }))
                .route("/hgetall6", hgetall("bench:hash6"))
                .route("/hgetall10", hgetall("bench:hash10"))
                .route(
                    "/read",
                    get(move || {
                        let mut connection = connection.clone();
                        async move {
                            let value: Option<String> = connection.get("bench:raw").await.unwrap();
                            value.map_or(0, |v| v.len()).to_string()
                        }
                    }),
                );
            (router, addr)
        }
        _ => panic!("usage: see the file's header"),
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
}
