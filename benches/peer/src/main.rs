//! The request-path benchmark's peer: `/noop`, `/read`, `/write` on
//! tower-sessions 0.14, with its Redis store, a CachingSessionStore (moka)
//! over its SQLite store, or a CachingSessionStore (its Redis store) over
//! its PostgreSQL store.
//!
//! `peer-tower-sessions redis URL ADDR` | `peer-tower-sessions sqlite PATH ADDR` |
//! `peer-tower-sessions redis-pg REDIS_URL,PG_URL ADDR`

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tower_sessions::{CachingSessionStore, Session, SessionManagerLayer, SessionStore};
use tower_sessions_moka_store::MokaStore;
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore, sqlx::PgPool, sqlx::SqlitePool};

async fn read(session: Session) -> String {
    let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0);
    n.to_string()
}

async fn write(session: Session) -> String {
    let n: u64 = session.get("n").await.ok().flatten().unwrap_or(0) + 1;
    session.insert("n", n).await.unwrap();
    n.to_string()
}

async fn set_key(session: Session, axum::extract::Path(key): axum::extract::Path<String>) -> String {
    session.insert(&key, true).await.unwrap();
    key
}

/// How many of the keys `k0`…`k99` the session holds.
async fn keys(session: Session) -> String {
    let mut held = 0;
    for i in 0..100 {
        if session.get::<bool>(&format!("k{i}")).await.ok().flatten().is_some() {
            held += 1;
        }
    }
    held.to_string()
}

fn app<S: SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/noop", get(|| async { "ok" }))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/set/{key}", get(set_key))
        .route("/keys", get(keys))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, target, addr] = &args[..] else {
        panic!("usage: peer-tower-sessions redis|sqlite URL|PATH ADDR");
    };
    let addr: SocketAddr = addr.parse().unwrap();
    let router = match kind.as_str() {
        "redis" => {
            let pool = Pool::new(Config::from_url(target).unwrap(), None, None, None, 6).unwrap();
            pool.init().await.unwrap();
            app(RedisStore::new(pool))
        }
        "sqlite" => {
            let pool = SqlitePool::connect(&format!("sqlite://{target}?mode=rwc")).await.unwrap();
            let sqlite = SqliteStore::new(pool);
            sqlite.migrate().await.unwrap();
            app(CachingSessionStore::new(MokaStore::new(Some(100_000)), sqlite))
        }
        "redis-pg" => {
            let (redis, pg) = target.split_once(',').expect("REDIS_URL,PG_URL");
            let pool = Pool::new(Config::from_url(redis).unwrap(), None, None, None, 6).unwrap();
            pool.init().await.unwrap();
            let pg = PgPool::connect(pg).await.unwrap();
            let postgres = PostgresStore::new(pg);
            postgres.migrate().await.unwrap();
            app(CachingSessionStore::new(RedisStore::new(pool), postgres))
        }
        other => panic!("unknown store {other}"),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    axum::serve(listener, router).await.unwrap();
}
