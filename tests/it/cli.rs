//! The `sessionctl` binary, run as a user would: hermetic environment (no
//! inherited `SESSIONCTL_*`, `NO_COLOR=1`), a temp dir, sessions seeded
//! through the library, output and resulting state both checked.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use sessionctl::record::now;
use sessionctl::{Record, SessionConfig, SessionKey, Store};

use crate::harness;

const KEY_NEW: &str = "cli test key, new ............................";
const KEY_OLD: &str = "cli test key, old ............................";

/// Runs the binary in `dir` with only the given environment.
pub(crate) struct Run {
    pub(crate) dir: PathBuf,
    pub(crate) env: Vec<(String, String)>,
}

impl Run {
    pub(crate) fn new(dir: &Path, database_url: &str) -> Run {
        Run { dir: dir.to_owned(), env: vec![("SESSIONCTL_DATABASE_URL".into(), database_url.into())] }
    }

    /// The same run with the tests' cookie keys (`regenerate` needs them).
    pub(crate) fn keyed(&self) -> Run {
        Run { dir: self.dir.clone(), env: self.env.clone() }
            .with("SESSIONCTL_SECRET", "test key 0123456789 0123456789 0123456789")
    }

    pub(crate) fn with(mut self, key: &str, value: &str) -> Run {
        self.env.push((key.into(), value.into()));
        self
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("SESSIONCTL_") || key == "EDITOR" || key == "VISUAL" {
                command.env_remove(key);
            }
        }
        command.env("NO_COLOR", "1").current_dir(&self.dir).args(args);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    pub(crate) fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and expects `code`; returns stderr.
    pub(crate) fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        stderr
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }
}

pub(crate) use crate::harness::record;

/// A SQLite database in a temp dir with three sessions: alice's live one,
/// alice's expired one, and an anonymous live one.
async fn seeded_sqlite() -> (tempfile::TempDir, String, Store, [Record; 3]) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let store = Store::connect(&url).await.unwrap();
    let records = [
        record(Some("alice"), Duration::hours(2), json!({"cart": ["book"], "n": 1})),
        record(Some("alice"), Duration::hours(-1), json!({"old": true})),
        record(None, Duration::days(3), json!({"theme": "dark"})),
    ];
    for r in &records {
        assert!(store.create(r).await.unwrap());
    }
    (dir, url, store, records)
}

async fn stored(store: &Store, id: &SessionKey) -> Option<Record> {
    store.stored(id).await.unwrap()
}

#[tokio::test]
async fn show_prints_metadata_tiers_and_data_and_exit_3_when_unknown() {
    let (dir, url, _store, [alice, _, _]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let out = cli.ok(&["show", alice.id.as_str()]);
    for expected in [alice.id.as_str(), "alice", "in 1 h", "version", "\"cart\": [", "database", "not configured"] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    let doc = cli.json(&["show", alice.id.as_str()]);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["session"]["data"], json!({"cart": ["book"], "n": 1}));
    assert_eq!(doc["session"]["user_id"], "alice");
    assert_eq!(doc["tiers"]["database"], true);
    assert_eq!(doc["expired"], false);

    let stderr = cli.fails(&["show", harness::new_key().as_str()], 3);
    assert!(stderr.contains("no session"), "{stderr}");
    let stderr = cli.fails(&["show", "not-an-id"], 2);
    assert!(stderr.contains("neither a session id") && stderr.contains("nor a cookie value"), "{stderr}");
}

#[tokio::test]
async fn ids_starting_with_a_dash_are_reachable_after_double_dash() {
    // sessionctl never makes such keys, but an imported one may be one.
    let (dir, url, store, _) = seeded_sqlite().await;
    let mut dashed = record(None, Duration::hours(1), json!({"from": "elsewhere"}));
    dashed.id = SessionKey::parse("-dashed-key-from-elsewhere-01234").unwrap();
    assert!(store.create(&dashed).await.unwrap());
    let cli = Run::new(dir.path(), &url);
    let stderr = cli.fails(&["show", dashed.id.as_str()], 2);
    assert!(stderr.contains("'--"), "the usage error says how: {stderr}");
    assert!(cli.ok(&["show", "--", dashed.id.as_str()]).contains("elsewhere"));
}

#[tokio::test]
async fn show_reads_cookies_verified_with_the_keys() {
    let (dir, url, _store, [alice, _, _]) = seeded_sqlite().await;
    let sign = |keys: &str| {
        SessionConfig::new(sessionctl::Keys::from_text(keys).unwrap())
            .codec()
            .encode_reference(&crate::harness::id_of(&alice.id), alice.expires_at)
    };
    let good = sign(KEY_NEW);
    let old = sign(KEY_OLD);
    let cli = Run::new(dir.path(), &url).with("SESSIONCTL_SECRET", KEY_NEW);

    assert!(
        cli.ok(&["show", &format!("sid={good}")]).contains(alice.id.as_str()),
        "a whole Cookie header pair works too"
    );
    let doc = cli.json(&["show", &good]);
    assert_eq!(doc["session"]["id"], alice.id.as_str());

    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let stderr = cli.fails(&["show", &String::from_utf8(tampered).unwrap()], 1);
    assert!(stderr.contains("bad signature"), "{stderr}");

    let stderr = cli.fails(&["show", &old], 1);
    assert!(stderr.contains("bad signature"), "a rotated-out key no longer verifies: {stderr}");
    let rotating = Run::new(dir.path(), &url).with("SESSIONCTL_SECRET", &format!("{KEY_NEW}\n{KEY_OLD}\n"));
    assert!(rotating.ok(&["show", &old]).contains(alice.id.as_str()), "while still listed, it does");

    let secret_file = dir.path().join("keys");
    std::fs::write(&secret_file, format!("# newest first\n{KEY_NEW}\n")).unwrap();
    let from_file = Run::new(dir.path(), &url);
    assert!(from_file.ok(&["show", "--secret-file", secret_file.to_str().unwrap(), &good]).contains("alice"));

    let stderr = Run::new(dir.path(), &url).fails(&["show", &good], 1);
    assert!(stderr.contains("needs the cookie keys"), "{stderr}");
    let stderr = Run::new(dir.path(), &url).with("SESSIONCTL_SECRET", "short").fails(&["show", &good], 1);
    assert!(stderr.contains("at least 32 bytes") && !stderr.contains("short\""), "{stderr}");
}

#[tokio::test]
async fn list_filters_sorts_by_expiry_and_streams_json_lines() {
    let (dir, url, _store, [alice, alice_old, anon]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        cli.ok(&args)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = ids(&["list"]);
    assert_eq!(all, [alice_old.id.to_string(), alice.id.to_string(), anon.id.to_string()], "sorted by expiry");
    assert_eq!(ids(&["list", "--active"]), [alice.id.to_string(), anon.id.to_string()]);
    assert_eq!(ids(&["list", "--expired"]), [alice_old.id.to_string()]);
    assert_eq!(ids(&["list", "--user", "alice"]), [alice_old.id.to_string(), alice.id.to_string()]);
    assert_eq!(ids(&["list", "--key", "theme"]), [anon.id.to_string()]);
    assert_eq!(ids(&["list", "--limit", "1"]), [alice_old.id.to_string()]);
    let table = cli.ok(&["list", "--active"]);
    assert!(
        table.contains(alice.id.as_str()) && table.contains("cart, n") && !table.contains(alice_old.id.as_str()),
        "{table}"
    );
}

/// Past 10,000 sessions a listing by expiry goes in pages, each a scan of
/// the table: 500 first (what `| head` needs), then larger ones, so a
/// listing of 5M sessions is ~500 scans rather than 10,000. Every session
/// once, in expiry order.
#[tokio::test]
async fn a_long_listing_takes_larger_pages_after_the_first() {
    let (_dir, _url, store, seeded) = seeded_sqlite().await;
    for n in 0..2_600_i64 {
        let expires_in = Duration::seconds(60 + (n * 7_919) % 100_000);
        assert!(store.create(&record(None, expires_in, json!({ "n": n }))).await.unwrap());
    }
    let admin = sessionctl::admin::Admin::new(store, None);
    let mut lister = admin.list(sessionctl::Filter::default(), None);
    let (mut sizes, mut listed) = (Vec::new(), Vec::new());
    loop {
        let page = lister.next_page().await.unwrap();
        if page.is_empty() {
            break;
        }
        sizes.push(page.len());
        listed.extend(page.into_iter().map(|r| (r.expires_at, r.id.to_string())));
    }
    assert_eq!(sizes, [500, 2_000, 103]);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "in expiry order, each once");
    assert!(seeded.iter().all(|r| listed.iter().any(|(_, id)| *id == r.id.to_string())));
}

#[tokio::test]
async fn list_into_a_closed_pipe_exits_0() {
    let (dir, url, store, _) = seeded_sqlite().await;
    for _ in 0..3000 {
        store.create(&record(None, Duration::hours(1), json!({"pad": "x".repeat(50)}))).await.unwrap();
    }
    let cli = Run::new(dir.path(), &url);
    let mut child =
        cli.command(&["list", "--output", "json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    // stdout is closed now (the reader was dropped), like `| head -1`.
    let output = child.wait_with_output().unwrap();
    assert!(first.starts_with('{'));
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "no error printed: {}", String::from_utf8_lossy(&output.stderr));
}

/// An export a backup script writes to a full disk must fail loudly: a
/// truncated file with exit 0 would pass for a backup.
#[tokio::test]
async fn output_to_a_full_disk_is_one_line_and_exit_1() {
    let (dir, url, _store, _) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").expect("Linux has /dev/full");
    for args in [&["export"][..], &["list", "--output", "json"], &["stats"], &["purge-expired", "--dry-run"]] {
        let output = cli.command(args).stdout(full()).stderr(Stdio::piped()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write the output") && stderr.contains("No space left"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn stats_counts_sizes_and_expiry_range() {
    let (dir, url, _store, [_, alice_old, anon]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let doc = cli.json(&["stats"]);
    assert_eq!((doc["total"].as_u64(), doc["active"].as_u64(), doc["expired"].as_u64()), (Some(3), Some(2), Some(1)));
    assert_eq!(doc["with_user"], 2);
    assert_eq!(doc["size"]["max"], json!(r#"{"cart":["book"],"n":1}"#.len()));
    assert_eq!(doc["size"]["min"], json!(r#"{"old":true}"#.len()));
    assert_eq!(doc["oldest_expiry"], json!(sessionctl_rfc3339(alice_old.expires_at)));
    assert_eq!(doc["newest_expiry"], json!(sessionctl_rfc3339(anon.expires_at)));
    assert_eq!((doc["exact"].as_bool(), &doc["sample"]), (Some(true), &Value::Null), "a small table is read whole");
    assert!(cli.ok(&["stats"]).contains("expired (not purged yet)"));
}

/// A large table's figures are estimated from a sample and say so; its
/// user count stays exact, and `--exact` reads every row.
#[tokio::test]
async fn stats_estimates_a_large_table_from_a_labelled_sample() {
    let (dir, url, _store, _) = seeded_sqlite().await;
    let database = sessionctl::store::sqlite::SqliteDatabase::connect(&url).await.unwrap();
    let now_ms = now().timestamp_millis();
    sqlx::query(
        "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT value, json_object('n', key), CASE WHEN key % 4 = 0 THEN 'u' || key END, ?1, ?1,
                CASE WHEN key % 3 = 0 THEN ?1 - 60000 ELSE ?1 + 3600000 END, 1
         FROM json_each(?2)",
    )
    .bind(now_ms)
    .bind(crate::purge::generated_ids(6000))
    .execute(database.pool())
    .await
    .unwrap();
    // 6,003 rows: 2,001 expired, 1,502 with a user.
    let cli = Run::new(dir.path(), &url);
    let doc = cli.json(&["stats", "--sample", "300"]);
    assert_eq!(doc["exact"], false, "{doc}");
    let rows = doc["sample"]["rows"].as_u64().unwrap();
    assert!((300..=320).contains(&rows), "16 runs of about 300 / 16 rows: {rows}");
    let share = doc["sample"]["share"].as_f64().unwrap();
    assert!((0.02..0.1).contains(&share), "300 of ~6,000 rows: {share}");
    let total = doc["total"].as_u64().unwrap();
    assert!((4000..8000).contains(&total), "estimated {total} of 6003");
    let expired = doc["expired"].as_u64().unwrap() as f64 / total as f64;
    assert!((0.2..0.47).contains(&expired), "a third expired, estimated {expired}");
    assert_eq!(doc["with_user"], 1502, "counted on the index, exact");
    let table = cli.ok(&["stats", "--sample", "300"]);
    assert!(table.contains("≈") && table.contains(&format!("sample of {rows} rows")), "{table}");

    let exact = cli.json(&["stats", "--sample", "300", "--exact"]);
    assert_eq!(
        (exact["exact"].as_bool(), exact["total"].as_u64(), exact["expired"].as_u64()),
        (Some(true), Some(6003), Some(2001))
    );
    assert_eq!(exact["sample"], Value::Null);
    // Tables up to ten samples large are read whole without asking.
    assert_eq!(cli.json(&["stats", "--sample", "1000"])["total"], 6003);
    assert_eq!(cli.fails(&["stats", "--sample", "0"], 2).lines().count(), 1);
}

/// A purge stopped halfway has cleaned the low ids only: the estimate
/// must not take that region for the table (it reported 0 expired of a
/// third), and a table whose ids are not spread like generated ones (hex,
/// or with a leading `-`) is counted exactly rather than scaled wrong.
#[tokio::test]
async fn stats_estimates_hold_after_a_partial_purge_and_fall_back_on_foreign_ids() {
    let (dir, url, _store, _) = seeded_sqlite().await;
    let database = sessionctl::store::sqlite::SqliteDatabase::connect(&url).await.unwrap();
    let now_ms = now().timestamp_millis();
    // Rows whose id sorts below "W" (about half) were purged: all live. Of
    // the others, every second one is expired.
    sqlx::query(
        "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
         SELECT value, json_object('n', key), NULL, ?1, ?1,
                CASE WHEN value >= 'W' AND key % 2 = 0 THEN ?1 - 60000 ELSE ?1 + 3600000 END, 1
         FROM json_each(?2)",
    )
    .bind(now_ms)
    .bind(crate::purge::generated_ids(8000))
    .execute(database.pool())
    .await
    .unwrap();
    let cli = Run::new(dir.path(), &url);
    let exact = cli.json(&["stats", "--exact"]);
    let truth = exact["expired"].as_f64().unwrap() / exact["total"].as_f64().unwrap();
    let doc = cli.json(&["stats", "--sample", "400"]);
    assert_eq!(doc["exact"], false, "{doc}");
    let estimated = doc["expired"].as_f64().unwrap() / doc["total"].as_f64().unwrap();
    assert!((estimated - truth).abs() < 0.1, "expired share {estimated:.3}, truly {truth:.3}");

    // Hex ids (a 16-character alphabet) and ids with a leading '-': exact.
    for (name, id_sql) in [("hex", "lower(hex(randomblob(16)))"), ("dashed", "'-' || substr(value, 2)")] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let store = Store::connect(&url).await.unwrap();
        drop(store);
        let database = sessionctl::store::sqlite::SqliteDatabase::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sessions (id, data, user_id, created_at, updated_at, expires_at, version)
             SELECT {id_sql}, '{{}}', NULL, ?1, ?1, ?1 + 3600000, 1 FROM json_each(?2)"
        )))
        .bind(now_ms)
        .bind(crate::purge::generated_ids(5000))
        .execute(database.pool())
        .await
        .unwrap();
        let doc = Run::new(dir.path(), &url).json(&["stats", "--sample", "300"]);
        assert_eq!((doc["exact"].as_bool(), doc["total"].as_u64()), (Some(true), Some(5000)), "{name}: {doc}");
    }
}

fn sessionctl_rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test]
async fn edit_with_flags_validates_and_writes_with_the_version() {
    let (dir, url, store, [alice, _, _]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let id = alice.id.as_str();
    cli.ok(&["edit", id, "--set", "theme=\"light\"", "--set", "cart=[\"book\",\"pen\"]", "--unset", "n"]);
    let after = stored(&store, &alice.id).await.unwrap();
    assert_eq!(Value::from(after.data.clone()), json!({"cart": ["book", "pen"], "theme": "light"}));
    assert_eq!(after.version, 2);

    // Invalid input: a clear error, nothing written.
    let output = cli.run(&["edit", id, "--set", "theme=light"]);
    assert_eq!(output.status.code(), Some(2), "a bad --set value is a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid JSON"));
    let file = dir.path().join("data.json");
    std::fs::write(&file, "[1, 2]").unwrap();
    let stderr = cli.fails(&["edit", id, "--replace", file.to_str().unwrap()], 1);
    assert!(stderr.contains("must be an object"), "{stderr}");
    std::fs::write(&file, "{\"a\": ").unwrap();
    assert!(cli.fails(&["edit", id, "--replace", file.to_str().unwrap()], 1).contains("not valid JSON"));
    assert_eq!(stored(&store, &alice.id).await.unwrap(), after, "nothing written");

    let output = cli.run_with_stdin(&["edit", id, "--replace", "-"], r#"{"fresh": 1}"#);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(Value::from(stored(&store, &alice.id).await.unwrap().data), json!({"fresh": 1}));
    cli.fails(&["edit", harness::new_key().as_str(), "--set", "a=1"], 3);
}

#[tokio::test]
async fn edit_through_the_editor() {
    let (dir, url, store, [alice, _, _]) = seeded_sqlite().await;
    let id = alice.id.as_str();
    // The editor setting is run through the shell, so it may carry arguments: `sh SCRIPT`. Running
    // the script through `sh` instead of executing a file just written also avoids ETXTBSY ("text
    // file busy") when a parallel test forks while the write descriptor is still open.
    let editor = |name: &str, script: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{script}\n")).unwrap();
        format!("sh '{}'", path.display())
    };
    let valid = editor("valid.sh", r#"sed -i 's/"book"/"lamp"/' "$1""#);
    let cli = Run::new(dir.path(), &url).with("EDITOR", &valid);
    cli.ok(&["edit", id]);
    assert_eq!(stored(&store, &alice.id).await.unwrap().data["cart"], json!(["lamp"]));

    let before = stored(&store, &alice.id).await.unwrap();
    let invalid = editor("invalid.sh", r#"echo '{"broken": ' > "$1""#);
    let stderr = Run::new(dir.path(), &url).with("VISUAL", &invalid).with("EDITOR", &valid).fails(&["edit", id], 1);
    assert!(stderr.contains("not valid JSON"), "VISUAL wins over EDITOR: {stderr}");
    let array = editor("array.sh", r#"echo '["not", "an", "object"]' > "$1""#);
    let stderr = Run::new(dir.path(), &url).with("EDITOR", &array).fails(&["edit", id], 1);
    assert!(stderr.contains("must be an object"), "{stderr}");
    let failing = editor("failing.sh", "exit 3");
    assert!(Run::new(dir.path(), &url).with("EDITOR", &failing).fails(&["edit", id], 1).contains("nothing written"));
    assert_eq!(stored(&store, &alice.id).await.unwrap(), before, "nothing written by the failed edits");
    let untouched = editor("untouched.sh", "true");
    Run::new(dir.path(), &url).with("EDITOR", &untouched).ok(&["edit", id]);
    assert_eq!(stored(&store, &alice.id).await.unwrap().version, before.version, "an unchanged file writes nothing");
}

#[tokio::test]
async fn expire_delete_revoke_and_regenerate() {
    let (dir, url, store, [alice, alice_old, anon]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url).with("SESSIONCTL_SECRET", KEY_NEW);
    let live = |id: &SessionKey| {
        let store = store.clone();
        let id = id.clone();
        async move { store.load(&id, now()).await.unwrap().is_some() }
    };

    // regenerate: new id printed (and its cookie), old one gone, same data and user.
    let doc = cli.json(&["regenerate", anon.id.as_str()]);
    let new_id = SessionKey::parse(doc["id"].as_str().unwrap()).unwrap();
    assert!(stored(&store, &anon.id).await.is_none());
    let moved = stored(&store, &new_id).await.unwrap();
    assert_eq!((moved.data, moved.user_id), (anon.data.clone(), anon.user_id.clone()));
    let cookie = doc["cookie"].as_str().unwrap();
    assert!(cli.ok(&["show", cookie]).contains(new_id.as_str()));

    // expire
    cli.ok(&["expire", new_id.as_str()]);
    assert!(!live(&new_id).await && stored(&store, &new_id).await.is_some(), "expired, not deleted");
    cli.fails(&["expire", harness::new_key().as_str()], 3);

    // delete: confirmation required off a terminal; --dry-run changes nothing.
    let stderr = cli.fails(&["delete", alice_old.id.as_str()], 1);
    assert!(stderr.contains("pass -y"), "{stderr}");
    assert!(cli.ok(&["delete", "--dry-run", alice_old.id.as_str()]).contains("would delete 1 session"));
    assert!(stored(&store, &alice_old.id).await.is_some());
    cli.ok(&["delete", "-y", alice_old.id.as_str()]);
    assert!(stored(&store, &alice_old.id).await.is_none());
    cli.fails(&["delete", "-y", alice_old.id.as_str()], 3);

    // revoke
    let doc = cli.json(&["revoke", "--user", "alice", "--dry-run"]);
    assert_eq!(doc["revoked"], 1);
    assert!(live(&alice.id).await);
    assert_eq!(cli.json(&["revoke", "--user", "alice", "-y"])["revoked"], 1);
    assert!(stored(&store, &alice.id).await.is_none());

    // expire --user
    store.create(&record(Some("bob"), Duration::hours(1), json!({}))).await.unwrap();
    assert_eq!(cli.json(&["expire", "--user", "bob"])["expired"].as_array().unwrap().len(), 1);
    cli.fails(&["expire", "--user", "bob"], 3);
}

#[tokio::test]
async fn import_validates_every_line_before_writing() {
    let (dir, url, store, [alice, _, _]) = seeded_sqlite().await;
    let cli = Run::new(dir.path(), &url);
    let good = record(Some("carol"), Duration::hours(1), json!({"a": 1}));
    let good_line = sessionctl::admin::ExportLine::from_record(&good).to_json();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, format!("{good_line}\n{{\"id\": \"short\"}}\n")).unwrap();
    let stderr = cli.fails(&["import", file.to_str().unwrap()], 1);
    assert!(stderr.contains("line 2") && stderr.contains("nothing imported"), "{stderr}");
    assert!(stored(&store, &good.id).await.is_none(), "a file with a bad line writes nothing");

    let output = cli.run(&["import", "--skip-invalid", file.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("skipped line 2"));
    assert_eq!(stored(&store, &good.id).await.unwrap(), good);

    // Existing sessions are kept unless --replace.
    let mut changed = alice.clone();
    changed.data = json!({"replaced": true}).as_object().cloned().unwrap().into();
    let line = sessionctl::admin::ExportLine::from_record(&changed).to_json();
    let output = cli.run_with_stdin(&["import", "-", "--output", "json"], &line);
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(doc["kept"], 1);
    assert_eq!(stored(&store, &alice.id).await.unwrap().data, alice.data);
    let output = cli.run_with_stdin(&["import", "-", "--replace"], &line);
    assert!(output.status.success());
    assert_eq!(stored(&store, &alice.id).await.unwrap().data, changed.data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_redis_and_back() {
    let Some(pg) = harness::postgres().await else { return };
    let Some(redis) = harness::redis_server::shared() else { return };
    let (dir, sqlite_url, _store, [alice, _, _]) = seeded_sqlite().await;
    let exported = Run::new(dir.path(), &sqlite_url).ok(&["export"]);
    assert_eq!(exported.lines().count(), 3);

    let prefix = format!("cli{}:", std::process::id());
    let pg_cli = Run::new(dir.path(), &pg.url)
        .with("SESSIONCTL_REDIS_URL", &redis.url())
        .with("SESSIONCTL_REDIS_PREFIX", &prefix);
    let output = pg_cli.run_with_stdin(&["import", "-"], &exported);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(pg_cli.ok(&["export"]), exported, "export → import → export gives the same lines");

    // The same commands against PostgreSQL + Redis, checked through a tiered store.
    let cache = sessionctl::store::redis::RedisCache::connect(&redis.url(), &prefix, std::time::Duration::from_secs(1))
        .unwrap();
    let tiered = Store::tiered(pg.database.clone().unwrap(), Arc::new(cache), Default::default());
    assert!(tiered.load(&alice.id, now()).await.unwrap().is_some(), "fills the cache");
    let doc = pg_cli.json(&["show", alice.id.as_str()]);
    assert_eq!((doc["tiers"]["database"].as_bool(), doc["tiers"]["cache"].as_str()), (Some(true), Some("cached")));
    assert!(pg_cli.ok(&["stats"]).contains("in cache and database"));

    pg_cli.ok(&["edit", alice.id.as_str(), "--set", "n=42"]);
    assert_eq!(
        tiered.load(&alice.id, now()).await.unwrap().unwrap().data["n"],
        json!(42),
        "the cache does not serve the old copy"
    );
    pg_cli.ok(&["delete", "-y", alice.id.as_str()]);
    assert!(tiered.load(&alice.id, now()).await.unwrap().is_none(), "deleted in both tiers");

    let listed: Vec<Value> =
        pg_cli.ok(&["list", "--output", "json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 2);
    let anon =
        SessionKey::parse(listed.iter().find(|l| l["user_id"].is_null()).unwrap()["id"].as_str().unwrap()).unwrap();
    assert!(tiered.load(&anon, now()).await.unwrap().is_some());
    let new_id = SessionKey::parse(pg_cli.keyed().ok(&["regenerate", anon.as_str()]).lines().next().unwrap()).unwrap();
    assert!(tiered.load(&anon, now()).await.unwrap().is_none(), "old id gone from both tiers");
    assert!(tiered.load(&new_id, now()).await.unwrap().is_some());
    pg_cli.ok(&["expire", new_id.as_str()]);
    assert!(tiered.load(&new_id, now()).await.unwrap().is_none(), "expired in both tiers");
    tiered.create(&record(Some("dave"), Duration::hours(1), json!({"x": 1}))).await.unwrap();
    assert_eq!(pg_cli.json(&["revoke", "--user", "dave", "-y"])["revoked"], 1);
}

#[test]
fn migrate_creates_the_default_sqlite_database_with_its_table_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Run { dir: dir.path().to_owned(), env: Vec::new() };
    let out = cli.ok(&["migrate"]);
    assert!(out.contains("schema up to date"));
    let db = dir.path().join("sessions.db");
    assert!(db.exists(), "the default database is ./sessions.db");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (tables, indexes) = runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&pool).await.unwrap();
        let indexes: Vec<String> =
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
                .fetch_all(&pool)
                .await
                .unwrap();
        (tables, indexes)
    });
    assert!(tables.contains(&"sessions".to_owned()), "{tables:?}");
    assert!(
        indexes.iter().any(|sql| sql.contains("user_id") && sql.contains("WHERE user_id IS NOT NULL")),
        "{indexes:?}"
    );
    assert_eq!(cli.json(&["migrate"])["migrated"], true, "running it again is a no-op that succeeds");
}

#[test]
fn unreachable_database_or_redis_is_one_line_exit_1_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    let url = format!("postgres://app:hunter2secret@127.0.0.1:{port}/sessions");
    let stderr = Run::new(dir.path(), &url).fails(&["list"], 1);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "password leaked: {stderr}");
    assert!(stderr.contains("app:***@127.0.0.1"), "{stderr}");

    // Passwords a URL parser trips over, and in the query string.
    for (url, secret) in [
        (format!("postgres://app:hun/ter@2@127.0.0.1:{port}/sessions"), "hun/ter@2"),
        (format!("postgres://app:p%2Fw%40secret9@127.0.0.1:{port}/sessions"), "secret9"),
        (format!("postgres://127.0.0.1:{port}/sessions?user=app&password=qu3rysecret"), "qu3rysecret"),
        (format!("postgres://127.0.0.1:{port}/sessions?user=app&password=x@secretTAIL9&port={port}"), "secretTAIL9"),
        (format!("postgres:/app:typ0secret@127.0.0.1:{port}/sessions"), "typ0secret"),
    ] {
        let stderr = Run::new(dir.path(), &url).fails(&["list"], 1);
        assert!(!stderr.contains(secret), "password leaked: {stderr}");
        let out = Run::new(dir.path(), &url).run(&["serve-cron", "--once"]);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!log.contains(secret) && log.contains("***"), "password leaked: {log}");
    }

    let sqlite = format!("sqlite://{}", dir.path().join("s.db").display());
    Run::new(dir.path(), &sqlite).ok(&["migrate"]);
    let redis = format!("redis://:redissecret@127.0.0.1:{}/", harness::free_port());
    let stderr =
        Run::new(dir.path(), &sqlite).with("SESSIONCTL_REDIS_URL", &redis).fails(&["revoke", "--user", "u", "-y"], 1);
    assert!(stderr.contains("Redis"), "{stderr}");
    assert!(!stderr.contains("redissecret"), "password leaked: {stderr}");
}

#[test]
fn unsupported_scheme_and_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = Run::new(dir.path(), "mysql://x@y/z").fails(&["migrate"], 1);
    assert!(stderr.contains("unsupported database URL scheme"));
    assert_eq!(Run::new(dir.path(), "sqlite://x.db").run(&["migrate", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(Run::new(dir.path(), "sqlite://x.db").run(&["list", "--active", "--expired"]).status.code(), Some(2));
}

#[test]
fn completions_and_man_pages_are_in_sync_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut generate = Run { dir: dir.path().to_owned(), env: Vec::new() }.command(&[
        "generate",
        "--out-dir",
        dir.path().to_str().unwrap(),
    ]);
    // A packager's SOURCE_DATE_EPOCH would date the pages unlike the committed ones.
    let output = generate.env_remove("SOURCE_DATE_EPOCH").output().unwrap();
    assert!(output.status.success(), "generate: {}", String::from_utf8_lossy(&output.stderr));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["completions", "man"] {
        let mut generated: Vec<_> =
            std::fs::read_dir(dir.path().join(folder)).unwrap().map(|e| e.unwrap().file_name()).collect();
        generated.sort();
        let mut committed: Vec<_> = std::fs::read_dir(repo.join(folder))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        committed.sort();
        assert_eq!(generated, committed, "{folder}/ is stale: run `cargo run -- generate` and commit the result");
        for name in generated {
            let fresh = std::fs::read(dir.path().join(folder).join(&name)).unwrap();
            let old = std::fs::read(repo.join(folder).join(&name)).unwrap();
            assert!(
                fresh == old,
                "{folder}/{} is stale: run `cargo run -- generate` and commit the result",
                name.to_string_lossy()
            );
        }
    }
}
