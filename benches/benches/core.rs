//! Core costs: the cookie codec, and one load / one versioned save of a 1 KB
//! session on SQLite and on a throwaway PostgreSQL (started like the tests'
//! one; skipped with a message when PostgreSQL is not installed).
//!
//! Run: `cargo bench -p sessionctl-benches --bench core`

use std::sync::Arc;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use sessionctl::record::now;
use sessionctl::store::{postgres::PostgresDatabase, sqlite::SqliteDatabase};
use sessionctl::{CookieCodec, DatabaseTier, Keys, Record, SessionId, SessionKey};

#[path = "../fixtures.rs"]
mod fixtures;
#[path = "../../tests/support/pg_server.rs"]
#[allow(dead_code)]
mod pg_server;

/// A session whose data encodes to about 1 KB.
fn one_kb_record() -> Record {
    let data = fixtures::one_kb_data().into();
    let t = now();
    let record = Record {
        id: SessionKey::generate().1,
        user_id: None,
        data,
        created_at: t,
        updated_at: t,
        expires_at: t + chrono::Duration::days(7),
        version: 1,
    };
    let size = record.data_json().len();
    assert!((900..=1200).contains(&size), "bench record is {size} bytes, not ~1 KB");
    record
}

fn codec(c: &mut Criterion) {
    let codec = CookieCodec::new(Keys::new([b"bench key 0123456789 0123456789 0123456789".as_slice()]).unwrap());
    let record = one_kb_record();
    let mut group = c.benchmark_group("codec");
    let id = SessionId::generate();
    group.bench_function("reference encode+verify", |b| {
        b.iter(|| {
            let value = codec.encode_reference(&id, record.expires_at);
            codec.decode(&value, Utc::now()).unwrap()
        })
    });
    group.bench_function("stored key of an id (SHA-256)", |b| b.iter(|| SessionKey::of(std::hint::black_box(&id))));
    group.bench_function("inline 1KB encrypt+decrypt", |b| {
        b.iter(|| {
            let value = codec.encode_inline(&record);
            codec.decode(&value, Utc::now()).unwrap()
        })
    });
    let envelope = record.to_envelope();
    group.bench_function("envelope 1KB decode", |b| b.iter(|| Record::from_envelope(&envelope).unwrap()));
    group.finish();
}

fn database_benches(c: &mut Criterion, name: &str, runtime: &tokio::runtime::Runtime, database: Arc<dyn DatabaseTier>) {
    let mut record = one_kb_record();
    runtime.block_on(async {
        database.migrate().await.unwrap();
        assert!(database.insert_if_absent(&record).await.unwrap());
    });
    let mut group = c.benchmark_group(name);
    group.bench_function("load 1KB", |b| {
        b.to_async(runtime).iter(|| async { database.load(&record.id).await.unwrap().unwrap() })
    });
    group.bench_function("save 1KB (versioned update)", |b| {
        b.iter(|| {
            let expected = record.version;
            record.version += 1;
            record.updated_at = now();
            runtime.block_on(database.update(&record, expected)).unwrap()
        })
    });
    group.finish();
}

fn sqlite(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let database = Arc::new(runtime.block_on(SqliteDatabase::connect(&url)).unwrap());
    database_benches(c, "sqlite", &runtime, database);
}

fn postgres(c: &mut Criterion) {
    let Some(server) = pg_server::shared() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = server.create_database();
    let database = Arc::new(runtime.block_on(PostgresDatabase::connect(&url)).unwrap());
    database_benches(c, "postgres", &runtime, database);
}

criterion_group!(benches, codec, sqlite, postgres);
criterion_main!(benches);
