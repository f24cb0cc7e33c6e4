//! The `sessionctl` binary, run as a user would: hermetic environment, temp
//! dir, exit codes and output checked.

use std::path::Path;
use std::process::{Command, Output};

fn sessionctl(dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESSIONCTL_") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").current_dir(dir).args(args).output().unwrap()
}

#[test]
fn migrate_creates_the_default_sqlite_database_with_its_table_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let output = sessionctl(dir.path(), &["migrate"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("schema up to date"));
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

    // Running it again is a no-op that still succeeds.
    let again = sessionctl(dir.path(), &["migrate", "--output", "json"]);
    assert!(again.status.success());
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["migrated"], true);
}

#[test]
fn unreachable_database_is_one_line_exit_1_and_hides_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    let url = format!("postgres://app:hunter2secret@127.0.0.1:{port}/sessions");
    let output = sessionctl(dir.path(), &["--database-url", &url, "migrate"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("hunter2secret"), "password leaked: {stderr}");
    assert!(stderr.contains("app:***@127.0.0.1"), "{stderr}");
}

#[test]
fn unsupported_scheme_and_bad_usage() {
    let dir = tempfile::tempdir().unwrap();
    let output = sessionctl(dir.path(), &["--database-url", "mysql://x@y/z", "migrate"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL scheme"));
    let output = sessionctl(dir.path(), &["migrate", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
}
