//! Throwaway servers and databases for the tests.
//!
//! PostgreSQL is real: the first test that needs it runs `initdb` and
//! `pg_ctl` in a temp dir on a free loopback port (as the unprivileged user
//! `nobody` when the tests run as root, since PostgreSQL refuses root). A
//! watchdog process stops the server and removes its files as soon as the
//! test process exits, however it exits. When the binaries are missing the
//! tests say so and skip, except under `CI`, where that is a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sessionctl::store::{postgres::PostgresDatabase, sqlite::SqliteDatabase};
use sessionctl::{DatabaseTier, Keys, SessionConfig, Store};
use sqlx::Connection as _;

/// The keys every test signs with.
pub fn keys() -> Keys {
    Keys::new([b"test key 0123456789 0123456789 0123456789".as_slice()]).unwrap()
}

/// Server-side sessions only (cookie-only disabled), so tests exercise the
/// store.
pub fn config() -> SessionConfig {
    SessionConfig::new(keys()).with_cookie_only_threshold(0)
}

/// A database for one test, removed with it.
pub struct TestDb {
    pub store: Store,
    pub database: Arc<dyn DatabaseTier>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database file in a temp dir.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let database: Arc<dyn DatabaseTier> = Arc::new(SqliteDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    TestDb { store: Store::new(database.clone()), database, url, _dir: Some(dir) }
}

/// A fresh database on the shared throwaway PostgreSQL server, or `None`
/// (with a message) when PostgreSQL is not installed and `CI` is not set.
pub async fn postgres() -> Option<TestDb> {
    let server = PG.get_or_init(PgServer::start).as_ref()?;
    let url = server.create_database().await;
    let database: Arc<dyn DatabaseTier> = Arc::new(PostgresDatabase::connect(&url).await.unwrap());
    database.migrate().await.unwrap();
    Some(TestDb { store: Store::new(database.clone()), database, url, _dir: None })
}

static PG: OnceLock<Option<PgServer>> = OnceLock::new();
static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct PgServer {
    port: u16,
}

/// Says a server is missing: fails under CI, skips locally.
pub fn missing(what: &str) -> Option<PgServer> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not installed, and CI is set: install it (see .ci/run) instead of skipping these tests");
    }
    eprintln!("SKIPPED: {what} is not installed; tests that need it are skipped (they fail under CI)");
    None
}

fn find_pg_bin() -> Option<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return Some(dir);
        }
    }
    // Debian keeps the server binaries off PATH, one directory per version.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A command run as the server's owner (`nobody` when we are root).
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.arg("-u").arg("nobody").arg("--").arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgServer {
    fn start() -> Option<PgServer> {
        let Some(bin) = find_pg_bin() else {
            return missing("PostgreSQL (initdb, pg_ctl; Debian package `postgresql`)");
        };
        let root = is_root();
        let dir = tempfile::Builder::new().prefix("sessionctl-pg-").tempdir().unwrap().keep();
        if root {
            let status = Command::new("chown").arg("-R").arg("nobody").arg(&dir).status().unwrap();
            assert!(status.success(), "chown of the PostgreSQL temp dir failed");
        }
        let data = dir.join("data");
        let output = as_owner(&bin.join("initdb"), root)
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let output = as_owner(&bin.join("pg_ctl"), root)
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(&options)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        assert!(output.status.success(), "pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&output.stderr));
        // Stop the server and remove its files when this process ends.
        let watchdog = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; '{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = bin.join("pg_ctl").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let mut sh = as_owner(Path::new("/bin/sh"), root);
        sh.arg("-c").arg(watchdog).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        // Deliberately never waited for: it must outlive this process.
        #[allow(clippy::zombie_processes)]
        let _watchdog = sh.spawn().expect("cannot start the PostgreSQL watchdog");
        Some(PgServer { port })
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    async fn create_database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), DB_COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut conn = connect_retrying(&self.url("postgres")).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        conn.close().await.ok();
        self.url(&name)
    }
}

async fn connect_retrying(url: &str) -> sqlx::PgConnection {
    let mut last = None;
    for _ in 0..50 {
        match sqlx::PgConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to the test PostgreSQL: {last:?}");
}
