//! `sessionctl` as an operator meets it: least-privilege PostgreSQL roles,
//! a schema behind the binary, a typo in a path, the apps' Redis cache
//! (shared, down, or not passed), a restore from backup.

use std::sync::atomic::{AtomicU32, Ordering};

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use sessionctl::record::now;
use sessionctl::{Store, StoreConfig};

use crate::cli::{Run, record};
use crate::harness;

static ROLE_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs SQL as the server's superuser on the database at `url`.
async fn as_superuser(url: &str, statements: &[String]) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    pool.close().await;
}

/// A login role on the database at `url` with `grant` on every table of
/// `public`; returns the role's URL.
async fn role(url: &str, grant: &str) -> String {
    let name = format!("r{}_{}", std::process::id(), ROLE_COUNTER.fetch_add(1, Ordering::Relaxed));
    let database = url.rsplit('/').next().unwrap();
    as_superuser(
        url,
        &[
            format!("CREATE ROLE {name} LOGIN"),
            format!("GRANT CONNECT ON DATABASE {database} TO {name}"),
            format!("GRANT USAGE ON SCHEMA public TO {name}"),
            format!("GRANT {grant} ON ALL TABLES IN SCHEMA public TO {name}"),
        ],
    )
    .await;
    url.replacen("postgres@", &format!("{name}@"), 1)
}

/// The tables of `public` on the database at `url`.
async fn pg_tables(url: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let tables = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_migrate_changes_the_postgres_schema_and_others_name_it() {
    let Some(server) = harness::pg_server::shared() else { return };
    let url = tokio::task::spawn_blocking(|| server.create_database()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cli = Run::new(dir.path(), &url);

    for command in [&["list"][..], &["stats"], &["show", "0123456789abcdefghijklmn"], &["purge-expired", "--dry-run"]] {
        let stderr = cli.fails(command, 1);
        assert!(stderr.contains("no session schema") && stderr.contains("sessionctl migrate"), "{command:?}: {stderr}");
    }
    assert!(pg_tables(&url).await.is_empty(), "nothing but migrate creates tables");

    let out = cli.run(&["migrate", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pending 1 create sessions") && stdout.contains("pending 3 cache tier"), "{stdout}");
    assert!(pg_tables(&url).await.is_empty(), "--check changes nothing");

    let out = cli.ok(&["migrate"]);
    assert!(out.contains("applied 1 create sessions") && out.contains("schema up to date"), "{out}");
    let check = cli.json(&["migrate", "--check"]);
    assert_eq!((check["up_to_date"].as_bool(), check["pending"].as_array().map(Vec::len)), (Some(true), Some(0)));
    cli.ok(&["list"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_role_reads_and_a_dml_role_runs_everything_but_migrate() {
    let Some(server) = harness::pg_server::shared() else { return };
    let url = tokio::task::spawn_blocking(|| server.create_database()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    Run::new(dir.path(), &url).ok(&["migrate"]);
    let store = Store::connect(&url).await.unwrap();
    let alice = record(Some("alice"), Duration::hours(2), json!({"cart": ["book"]}));
    let bob = record(Some("bob"), Duration::hours(2), json!({"n": 1}));
    let old = record(None, Duration::hours(-1), json!({"old": true}));
    for r in [&alice, &bob, &old] {
        assert!(store.create(r).await.unwrap());
    }

    let reader = Run::new(dir.path(), &role(&url, "SELECT").await);
    assert!(reader.ok(&["show", alice.id.as_str()]).contains("book"));
    assert_eq!(reader.ok(&["list"]).lines().filter(|l| l.contains("alice")).count(), 1);
    assert_eq!(reader.json(&["stats"])["total"], 3);
    let exported = reader.ok(&["export"]);
    assert_eq!(exported.lines().count(), 3);
    reader.ok(&["migrate", "--check"]);
    let stderr = reader.fails(&["delete", "-y", bob.id.as_str()], 1);
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(!stderr.contains(" at line "), "the server's source line is noise: {stderr}");

    let writer = Run::new(dir.path(), &role(&url, "SELECT, INSERT, UPDATE, DELETE").await);
    writer.ok(&["purge-expired", "--dry-run"]);
    writer.ok(&["edit", alice.id.as_str(), "--set", "n=2"]);
    let new_id = writer.keyed().ok(&["regenerate", alice.id.as_str()]).lines().next().unwrap().to_owned();
    writer.ok(&["expire", &new_id]);
    writer.ok(&["revoke", "--user", "bob", "-y"]);
    let out = writer.run_with_stdin(&["import", "--replace", "-"], &exported);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    writer.ok(&["delete", "-y", alice.id.as_str()]);
    assert!(writer.ok(&["purge-expired"]).contains("deleted"));
    writer.ok(&["serve-cron", "--once"]);
    assert!(store.stored(&alice.id).await.unwrap().is_none());
    assert!(store.stored(&bob.id).await.unwrap().is_some(), "restored by the import");
}

/// Takes a SQLite database back to before migration 4.
async fn without_the_last_sqlite_migration(url: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    for statement in ["DROP TABLE session_cache_tier", "DELETE FROM _sqlx_migrations WHERE version = 4"] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_behind_the_binary_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    Store::connect(&url).await.unwrap();
    without_the_last_sqlite_migration(&url).await;
    let cli = Run::new(dir.path(), &url);
    let stderr = cli.fails(&["list"], 1);
    assert!(
        stderr.contains("behind") && stderr.contains("4 cache tier") && stderr.contains("sessionctl migrate"),
        "{stderr}"
    );
    let out = cli.run(&["migrate", "--check", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["pending"], json!([{"version": 4, "description": "cache tier"}]));
    cli.fails(&["list"], 1);
    assert!(cli.ok(&["migrate"]).contains("applied 4 cache tier"));
    cli.ok(&["list"]);
}

#[test]
fn an_explicit_sqlite_path_must_exist_but_the_default_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("sesions.db");
    let cli = Run::new(dir.path(), &format!("sqlite://{}", typo.display()));
    for command in [&["list"][..], &["stats"], &["purge-expired"], &["import", "-"], &["migrate", "--check"]] {
        let stderr = cli.fails(command, 1);
        assert!(stderr.contains("no SQLite database at") && stderr.contains("sesions.db"), "{command:?}: {stderr}");
    }
    assert!(!typo.exists(), "a typo creates no file");
    cli.ok(&["migrate"]);
    assert!(typo.exists());
    cli.ok(&["list"]);

    // The main job on a fresh machine: no URL given, ./sessions.db made.
    let fresh = tempfile::tempdir().unwrap();
    let default = Run { dir: fresh.path().to_owned(), env: Vec::new() };
    let out = default.run(&["purge-expired"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("created sqlite://sessions.db"));
    assert!(fresh.path().join("sessions.db").exists());
    let out = default.run(&["purge-expired"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An app's store on SQLite with Redis in front, under its own prefix, as
/// the app opens it (so it records its cache tier).
async fn app(dir: &std::path::Path, redis_url: &str) -> (String, String, Store) {
    let url = format!("sqlite://{}", dir.join("sessions.db").display());
    let prefix = format!("op{}:{}:", std::process::id(), ROLE_COUNTER.fetch_add(1, Ordering::Relaxed));
    let store = StoreConfig::new()
        .with_database_url(url.clone())
        .with_redis_url(redis_url)
        .with_redis_prefix(prefix.clone())
        .open()
        .await
        .unwrap();
    (url, prefix, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_apps_redis_or_refuse_and_a_restore_is_served_at_once() {
    let Some(redis) = harness::redis_server::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (url, prefix, app) = app(dir.path(), &redis.url()).await;
    let alice = record(Some("alice"), Duration::hours(2), json!({"cart": ["book"]}));
    let bob = record(Some("bob"), Duration::hours(2), json!({"n": 1}));
    for r in [&alice, &bob] {
        assert!(app.create(r).await.unwrap());
        assert!(app.load(&r.id, now()).await.unwrap().is_some(), "cached");
    }

    let bare = Run::new(dir.path(), &url);
    for command in [
        &["delete", "-y", alice.id.as_str()][..],
        &["revoke", "--user", "alice", "-y"],
        &["expire", alice.id.as_str()],
        &["edit", alice.id.as_str(), "--set", "n=2"],
        &["regenerate", alice.id.as_str()],
    ] {
        let stderr = bare.fails(command, 1);
        assert!(
            stderr.contains(&prefix) && stderr.contains("--redis-url") && stderr.contains("--no-cache"),
            "{stderr}"
        );
    }
    assert_eq!(app.load(&alice.id, now()).await.unwrap().unwrap(), alice, "nothing changed");
    assert!(bare.ok(&["show", alice.id.as_str()]).contains("book"), "reads need no cache");

    // With the cache, under the prefix the app recorded: seen at once.
    let cli = Run::new(dir.path(), &url).with("SESSIONCTL_REDIS_URL", &redis.url());
    let backup = cli.ok(&["export"]);
    cli.ok(&["revoke", "--user", "alice", "-y"]);
    assert!(app.load(&alice.id, now()).await.unwrap().is_none(), "revoked in the app's cache too");

    // A restore from backup is what the app serves on its next request.
    let mut changed = app.load(&bob.id, now()).await.unwrap().unwrap();
    changed.data.insert("n".into(), json!(99));
    changed.version += 1;
    app.update(&changed, bob.version).await.unwrap();
    assert_eq!(app.load(&bob.id, now()).await.unwrap().unwrap().data["n"], json!(99));
    let out = cli.run_with_stdin(&["import", "--replace", "-"], &backup);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.load(&bob.id, now()).await.unwrap().unwrap().data["n"], json!(1), "the restored copy is served");
    assert_eq!(app.load(&alice.id, now()).await.unwrap().unwrap().data["cart"], json!(["book"]));

    // --no-cache: the operator accepts stale cache entries.
    let out = bare.run(&["expire", "--no-cache", bob.id.as_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-cache"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_reads_answer_from_the_database_and_changes_refuse() {
    let Some(redis) = harness::redis_server::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (url, _prefix, app) = app(dir.path(), &redis.url()).await;
    let alice = record(Some("alice"), Duration::hours(2), json!({"cart": ["book"]}));
    assert!(app.create(&alice).await.unwrap());

    let down = format!("redis://:downsecret@127.0.0.1:{}/", harness::free_port());
    let cli = Run::new(dir.path(), &url).with("SESSIONCTL_REDIS_URL", &down);
    for command in [&["show", alice.id.as_str()][..], &["list"], &["stats"], &["export"]] {
        let out = cli.run(command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{command:?}: {stderr}");
        assert!(stderr.contains("cannot reach Redis") && stderr.contains("database alone"), "{command:?}: {stderr}");
        assert!(!stderr.contains("downsecret"), "{stderr}");
    }
    assert!(cli.ok(&["show", alice.id.as_str()]).contains("unreachable"));
    assert!(cli.json(&["stats"])["cache"]["unreachable"].is_string());

    let stderr = cli.fails(&["delete", "-y", alice.id.as_str()], 1);
    assert!(stderr.contains("cannot reach Redis") && stderr.contains("nothing was changed"), "{stderr}");
    assert!(!stderr.contains("downsecret"), "{stderr}");
    assert!(app.stored(&alice.id).await.unwrap().is_some(), "nothing deleted");
    cli.ok(&["delete", "-y", "--no-cache", alice.id.as_str()]);
    assert!(app.stored(&alice.id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_counts_a_shared_redis_with_foreign_keys_or_none_of_ours() {
    let Some(redis) = harness::redis_server::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (url, prefix, app) = app(dir.path(), &redis.url()).await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.set(format!("foreign{}:{i}", std::process::id()), "x").ignore();
    }
    let () = pipe.query_async(&mut connection).await.unwrap();

    let cli = Run::new(dir.path(), &url).with("SESSIONCTL_REDIS_URL", &redis.url());
    let doc = cli.json(&["stats"]);
    assert_eq!((doc["total"].as_u64(), doc["cache"]["cached"].as_u64()), (Some(0), Some(0)), "{doc}");
    let alice = record(Some("alice"), Duration::hours(2), json!({"cart": ["book"]}));
    assert!(app.create(&alice).await.unwrap());
    app.load(&alice.id, now()).await.unwrap();
    let doc = cli.json(&["stats"]);
    assert_eq!((doc["cache"]["cached"].as_u64(), doc["cache"]["in_both"].as_u64()), (Some(1), Some(1)), "{doc}");
    assert!(cli.ok(&["stats"]).contains("in cache"), "{prefix}");
}

/// A SQLite database with alice's session, and the CLI on it.
async fn seeded(dir: &std::path::Path) -> (Run, Store, sessionctl::Record) {
    let url = format!("sqlite://{}", dir.join("sessions.db").display());
    let store = Store::connect(&url).await.unwrap();
    let alice = record(Some("alice"), Duration::hours(2), json!({"cart": ["book"], "note": "x".repeat(3000)}));
    assert!(store.create(&alice).await.unwrap());
    (Run::new(dir, &url), store, alice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_matched_is_3_everywhere_a_malformed_id_is_2() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, store, alice) = seeded(dir.path()).await;
    let unknown = crate::harness::new_key();
    for command in [
        &["revoke", "--user", "nobody", "-y"][..],
        &["expire", "--user", "nobody"],
        &["expire", unknown.as_str()],
        &["delete", "-y", unknown.as_str()],
        &["show", unknown.as_str()],
        &["edit", unknown.as_str(), "--set", "n=1"],
        &["regenerate", unknown.as_str()],
    ] {
        cli.fails(command, 3);
        let mut quiet = command.to_vec();
        quiet.push("--ignore-not-found");
        let out = cli.run(&quiet);
        assert_eq!(out.status.code(), Some(0), "{quiet:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for command in
        [&["show", "not-an-id!"][..], &["delete", "-y", "x"], &["expire", "x"], &["edit", "x", "--set", "n=1"]]
    {
        let stderr = cli.fails(command, 2);
        assert!(stderr.contains("invalid session id"), "{stderr}");
    }
    // An edit that changes nothing writes nothing.
    let out = cli.run(&["edit", alice.id.as_str(), "--unset", "missing"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing written"));
    assert_eq!(store.stored(&alice.id).await.unwrap().unwrap().version, alice.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flags_sizes_and_serve_cron_json() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, _store, alice) = seeded(dir.path()).await;
    let short: serde_json::Value = serde_json::from_str(&cli.ok(&["stats", "-o", "json"])).unwrap();
    assert_eq!(short["total"], 1);
    let from_env = Run::new(dir.path(), &cli.env[0].1).with("SESSIONCTL_OUTPUT", "json");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&from_env.ok(&["stats"])).unwrap()["total"], 1);
    assert!(cli.ok(&["show", alice.id.as_str()]).contains(" KiB"), "sizes for people in tables");
    assert_eq!(cli.json(&["show", alice.id.as_str()])["size"], alice.data_json().len());

    let summary: serde_json::Value =
        serde_json::from_str(&cli.ok(&["serve-cron", "--once", "-o", "json", "--metrics-addr", ":0"])).unwrap();
    assert_eq!((summary["deleted"].as_u64(), summary["ended"].as_str()), (Some(0), Some("finished")));

    let stderr = cli.fails(&["serve-cron", "--once", "--schedule", "61 * * * *"], 2);
    assert!(stderr.contains("minute hour day-of-month month day-of-week"), "{stderr}");
    let stderr = cli.fails(&["serve-cron", "--once", "--timezone", "Mars/Olympus"], 2);
    assert!(stderr.contains("IANA"), "{stderr}");
    cli.ok(&["serve-cron", "--once", "--timezone", "Europe/Paris"]);
}

/// A terminal that reports 0 columns (`docker exec -t`, `script`) gets
/// tables 80 columns wide, not one character per column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_fall_back_to_80_columns_on_a_terminal_of_width_0() {
    let Some(script) = which("script") else {
        harness::pg_server::missing::<()>("script (util-linux)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cli, _store, alice) = seeded(dir.path()).await;
    let bin = env!("CARGO_BIN_EXE_sessionctl");
    let command = format!("stty cols 0 rows 0; {bin} show {id}; {bin} list", id = alice.id);
    let output = std::process::Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .current_dir(&cli.dir)
        .env("SESSIONCTL_DATABASE_URL", &cli.env[0].1)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains(alice.id.as_str()), "the id on one line: {stdout}");
    let table: Vec<&str> = stdout.lines().filter(|l| l.starts_with(['┌', '│', '└', '╞', '├'])).collect();
    assert!(table.len() >= 8 && table.iter().all(|l| l.chars().count() <= 80), "{stdout}");
    assert_eq!(stdout.matches(alice.id.as_str()).count(), 2, "the id whole in show and in list: {stdout}");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.exists()))
}

/// `n` session lines with user `user<i>`, as `export` writes them.
fn lines(n: usize) -> (Vec<sessionctl::Record>, String) {
    let records: Vec<_> =
        (0..n).map(|i| record(Some(&format!("user{i}")), Duration::hours(1), json!({"i": i}))).collect();
    let text = records.iter().map(|r| sessionctl::admin::ExportLine::from_record(r).to_json() + "\n").collect();
    (records, text)
}

/// Imports `text` where the database refuses the session of user
/// `evil`: nothing of the file may stay.
async fn import_refused_midway(cli: &Run, store: &Store) {
    let (records, mut text) = lines(2500);
    let mut evil = record(Some("evil"), Duration::hours(1), json!({}));
    evil.id = crate::harness::new_key();
    text.push_str(&(sessionctl::admin::ExportLine::from_record(&evil).to_json() + "\n"));
    let out = cli.run_with_stdin(&["import", "-"], &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing imported") && stderr.trim_end().lines().count() == 1, "{stderr}");
    for r in [&records[0], &records[1999], &records[2499]] {
        assert!(store.stored(&r.id).await.unwrap().is_none(), "a refused line leaves nothing written");
    }
    // Without the refused line, all of it lands, in one pass.
    let (records, text) = lines(2500);
    let doc: serde_json::Value =
        serde_json::from_slice(&cli.run_with_stdin(&["import", "-", "-o", "json"], &text).stdout).unwrap();
    assert_eq!(doc["inserted"], 2500);
    assert_eq!(store.stored(&records[2499].id).await.unwrap().unwrap(), records[2499]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_the_database_refuses_midway_writes_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let store = Store::connect(&url).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER no_evil BEFORE INSERT ON sessions WHEN NEW.user_id = 'evil'
         BEGIN SELECT RAISE(ABORT, 'evil refused'); END",
    )
    .execute(&pool)
    .await
    .unwrap();
    import_refused_midway(&Run::new(dir.path(), &url), &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_the_database_refuses_midway_writes_nothing_on_postgres() {
    let Some(db) = harness::postgres().await else { return };
    as_superuser(&db.url, &["ALTER TABLE sessions ADD CONSTRAINT no_evil CHECK (user_id <> 'evil')".into()]).await;
    let dir = tempfile::tempdir().unwrap();
    import_refused_midway(&Run::new(dir.path(), &db.url), &db.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_what_the_library_would_and_exports_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, store, alice) = seeded(dir.path()).await;
    let big = record(None, Duration::hours(1), json!({"blob": "x".repeat(1 << 20)}));
    let mut line = sessionctl::admin::ExportLine::from_record(&big).to_json();
    let out = cli.run_with_stdin(&["import", "-"], &line);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("over the limit of 1048576 bytes"), "{stderr}");
    assert!(store.stored(&big.id).await.unwrap().is_none());
    line = sessionctl::admin::ExportLine::from_record(&record(None, Duration::hours(1), json!({}))).to_json();
    let huge_version = line.replace("\"version\":1", &format!("\"version\":{}", (1u64 << 53) + 1));
    let out = cli.run_with_stdin(&["import", "-"], &huge_version);
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside 0..=2^53"));

    // Export walks ids in order, whatever the expiries.
    let (_, text) = lines(300);
    cli.run_with_stdin(&["import", "-"], &text);
    let exported = cli.ok(&["export"]);
    let ids: Vec<String> = exported
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 301);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "id order");
    assert!(ids.contains(&alice.id.to_string()));
    assert_eq!(cli.ok(&["export", "--limit", "7"]).lines().count(), 7);
}

/// An app's admin page shares the app's limits: an edit or an import line
/// over the app's size limit is refused, not stored for every later save of
/// the session to fail.
#[tokio::test]
async fn an_apps_admin_applies_the_apps_size_limit() {
    let db = harness::sqlite().await;
    let config = harness::config().with_max_size(64);
    let admin = sessionctl::admin::Admin::for_app(db.store.clone(), &config);
    let alice = record(Some("alice"), Duration::hours(1), json!({"n": 1}));
    assert!(db.store.create(&alice).await.unwrap());
    let edit = sessionctl::admin::Edit::default().with_set("blob", json!("x".repeat(100)));
    let error = admin.edit(&alice.id, &edit).await.unwrap_err();
    assert!(matches!(error, sessionctl::Error::TooLarge { limit: 64, .. }), "{error}");
    let big = record(None, Duration::hours(1), json!({"blob": "x".repeat(100)}));
    let line = sessionctl::admin::ExportLine::from_record(&big).to_json();
    assert!(admin.parse_line(&line).unwrap_err().to_string().contains("over the limit of 64 bytes"));
    assert!(
        sessionctl::admin::Admin::new(db.store.clone(), None).parse_line(&line).is_ok(),
        "the library default is 1 MiB"
    );
}

/// The review of the first version of this work, as tests.
mod review {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redis_user_that_may_only_read_is_refused_before_anything_changes() {
        let Some(redis) = harness::redis_server::shared() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (url, _prefix, app) = app(dir.path(), &redis.url()).await;
        let carol = record(Some("carol"), Duration::hours(1), json!({}));
        assert!(app.create(&carol).await.unwrap());
        let user = format!("reader{}", std::process::id());
        let client = redis::Client::open(redis.url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("ACL")
            .arg(&["SETUSER", user.as_str(), "on", ">readerpw", "~*", "+@read", "+ping", "+hello", "+client"][..])
            .query_async(&mut connection)
            .await
            .unwrap();
        let reader = redis.url().replacen("redis://", &format!("redis://{user}:readerpw@"), 1);
        let cli = Run::new(dir.path(), &url).with("SESSIONCTL_REDIS_URL", &reader);
        let stderr = cli.fails(&["revoke", "--user", "carol", "-y"], 1);
        assert!(stderr.contains("cannot write to Redis") && !stderr.contains("readerpw"), "{stderr}");
        assert!(app.stored(&carol.id).await.unwrap().is_some(), "nothing changed");
        cli.ok(&["list"]);
        cli.ok(&["revoke", "--user", "carol", "--dry-run"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_process_without_redis_does_not_switch_the_refusal_off_and_a_wrong_prefix_is_refused() {
        let Some(redis) = harness::redis_server::shared() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (url, prefix, app) = app(dir.path(), &redis.url()).await;
        let erin = record(Some("erin"), Duration::hours(1), json!({}));
        assert!(app.create(&erin).await.unwrap());
        // A worker on the same database with the in-process cache only.
        let _worker = StoreConfig::new()
            .with_database_url(url.clone())
            .with_memory_cache(Default::default())
            .open()
            .await
            .unwrap();
        let stderr = Run::new(dir.path(), &url).fails(&["revoke", "--user", "erin", "-y"], 1);
        assert!(stderr.contains(&prefix) && stderr.contains("--redis-url"), "{stderr}");
        let wrong = Run::new(dir.path(), &url)
            .with("SESSIONCTL_REDIS_URL", &redis.url())
            .with("SESSIONCTL_REDIS_PREFIX", "wrong:");
        let stderr = wrong.fails(&["revoke", "--user", "erin", "-y"], 1);
        assert!(stderr.contains("not the apps' key prefix"), "{stderr}");
        assert!(app.stored(&erin.id).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_app_that_cannot_record_its_cache_tier_does_not_open() {
        let Some(redis) = harness::redis_server::shared() else { return };
        let Some(db) = harness::postgres().await else { return };
        let dml = role(&db.url, "SELECT, INSERT, UPDATE, DELETE").await;
        as_superuser(&db.url, &[format!("REVOKE INSERT, UPDATE ON session_cache_tier FROM {}", dml_role(&dml))]).await;
        let config = |url: &str| StoreConfig::new().with_database_url(url).with_redis_url(redis.url());
        let error = config(&dml).open().await.unwrap_err().to_string();
        assert!(error.contains("grant the app's role") && error.contains("session_cache_tier"), "{error}");
        // Once recorded (by a role that may), the same role opens: nothing to write.
        config(&db.url).open().await.unwrap();
        config(&dml).open().await.unwrap();
    }

    fn dml_role(url: &str) -> &str {
        url.split("://").nth(1).unwrap().split('@').next().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_plain_import_restores_a_deleted_session_the_app_serves_at_once() {
        let Some(redis) = harness::redis_server::shared() else { return };
        let dir = tempfile::tempdir().unwrap();
        let (url, _prefix, app) = app(dir.path(), &redis.url()).await;
        let dave = record(Some("dave"), Duration::hours(1), json!({"cart": ["pen"]}));
        assert!(app.create(&dave).await.unwrap());
        let cli = Run::new(dir.path(), &url).with("SESSIONCTL_REDIS_URL", &redis.url());
        let backup = cli.ok(&["export"]);
        cli.ok(&["delete", "-y", dave.id.as_str()]);
        assert!(app.load(&dave.id, now()).await.unwrap().is_none());
        let out = cli.run_with_stdin(&["import", "-"], &backup);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            app.load(&dave.id, now()).await.unwrap().unwrap().data["cart"],
            json!(["pen"]),
            "not hidden by the tombstone"
        );
        let stderr = Run::new(dir.path(), &url).fails(&["import", "-"], 1);
        assert!(stderr.contains("--redis-url"), "a plain import needs the cache too: {stderr}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_lines_boms_ages_and_schema_states() {
        let dir = tempfile::tempdir().unwrap();
        let (cli, store, alice) = seeded(dir.path()).await;
        let mut long = vec![b'x'; 20 << 20];
        long.push(b'\n');
        let good =
            sessionctl::admin::ExportLine::from_record(&record(None, Duration::hours(1), json!({"a": 1}))).to_json();
        let file = dir.path().join("in.jsonl");
        std::fs::write(&file, [&long[..], good.as_bytes()].concat()).unwrap();
        let stderr = cli.fails(&["import", file.to_str().unwrap()], 1);
        assert!(stderr.contains("line 1: line longer than 16 MiB"), "{stderr}");
        let out = cli.run_with_stdin(&["import", "-", "-o", "json"], &format!("\u{feff}{good}\n"));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["inserted"], 1, "a byte-order mark is not part of the first line");

        // An age past the calendar purges nothing (it used to purge every expired session).
        let mut old = record(None, Duration::hours(-1), json!({}));
        old.id = crate::harness::new_key();
        assert!(store.create(&old).await.unwrap());
        let doc = cli.json(&["purge-expired", "--dry-run", "--older-than", "1000000000d"]);
        assert_eq!(doc["would_delete"], 0);

        // migrate names a schema newer than this build, and leaves a current one alone.
        let url = cli.env[0].1.clone();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', true, x'00', 0)")
            .execute(&pool)
            .await
            .unwrap();
        let stderr = cli.fails(&["migrate"], 1);
        assert!(stderr.contains("newer than this build knows"), "{stderr}");
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 99").execute(&pool).await.unwrap();
        assert!(cli.ok(&["migrate"]).contains("schema up to date"));
        assert!(cli.ok(&["show", alice.id.as_str()]).contains("alice"));
    }

    /// A database in rollback-journal mode (a copy, a backup) is read as it
    /// is: `list` does not switch it to WAL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reading_a_rollback_journal_database_leaves_its_journal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (cli, store, _alice) = seeded(dir.path()).await;
        drop(store);
        let path = dir.path().join("sessions.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        // The dropped store's connections close in the background; leaving
        // WAL needs them gone (under load that takes a moment).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mode: String = loop {
            match sqlx::query_scalar("PRAGMA journal_mode = DELETE").fetch_one(&pool).await {
                Ok(mode) => break mode,
                Err(error) if std::time::Instant::now() < deadline => {
                    eprintln!("retrying: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(error) => panic!("{error}"),
            }
        };
        assert_eq!(mode, "delete");
        pool.close().await;
        cli.ok(&["list"]);
        cli.ok(&["stats"]);
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await.unwrap();
        assert_eq!(mode, "delete");
    }
}

/// An app's own tiers, given to `StoreConfig` instead of URLs: opened as
/// the URL ones are (migrated by an app, required by an admin), and a cache
/// the admin tool cannot reach makes its changes refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_config_takes_the_apps_own_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let custom: Arc<dyn sessionctl::DatabaseTier> =
        Arc::new(sessionctl::store::sqlite::SqliteDatabase::connect(&url).await.unwrap());
    let admin_open = StoreConfig::new().with_database(custom.clone()).with_open_as(sessionctl::OpenAs::Admin);
    let error = admin_open.open().await.unwrap_err();
    assert!(matches!(error, sessionctl::Error::Schema { .. }), "an admin does not migrate: {error}");
    let cache: Arc<dyn sessionctl::CacheTier> = Arc::new(sessionctl::store::memory::MemoryCache::new(100, None));
    let store = StoreConfig::new().with_database(custom).with_cache(cache).open().await.unwrap();
    let alice = record(Some("alice"), Duration::hours(1), json!({}));
    assert!(store.create(&alice).await.unwrap());
    assert!(store.load(&alice.id, now()).await.unwrap().is_some());
    admin_open.open().await.unwrap();
    let stderr = Run::new(dir.path(), &url).fails(&["revoke", "--user", "alice", "-y"], 1);
    assert!(stderr.contains("custom memory") && stderr.contains("--no-cache"), "{stderr}");
}
