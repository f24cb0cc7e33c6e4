//! A throwaway PostgreSQL server for tests and benchmarks (std only, so the
//! test binary and the bench crate can both include it with `#[path]`).
//!
//! `initdb` and `pg_ctl` run in a temp dir on a free loopback port, as the
//! unprivileged user `nobody` when the caller is root (PostgreSQL refuses
//! root). A watchdog process stops the server and removes its files as soon
//! as the calling process exits, however it exits. When the binaries are
//! missing the caller is told so, and `CI` turns that into a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A running server.
pub struct PgServer {
    port: u16,
    bin: PathBuf,
    root: bool,
    data: PathBuf,
    dir: PathBuf,
    /// Whether commits wait for the disk, as in production.
    durable: bool,
}

static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
#[allow(dead_code)] // used by the purge bench only
static DURABLE: OnceLock<Option<PgServer>> = OnceLock::new();
static DB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The process-wide server, started on first use; `None` (after saying so)
/// when PostgreSQL is not installed and `CI` is not set.
pub fn shared() -> Option<&'static PgServer> {
    SERVER.get_or_init(|| PgServer::start(false)).as_ref()
}

/// Like [`shared`], but with fsync and synchronous commits on, as in
/// production: for benchmarks whose figures depend on commit cost.
#[allow(dead_code)] // used by the purge bench only
pub fn durable() -> Option<&'static PgServer> {
    DURABLE.get_or_init(|| PgServer::start(true)).as_ref()
}

/// Says a server is missing: fails under CI, skips locally.
pub fn missing<T>(what: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is not installed, and CI is set: install it (see .ci/run) instead of skipping these tests");
    }
    eprintln!("SKIPPED: {what} is not installed; tests that need it are skipped (they fail under CI)");
    None
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

impl PgServer {
    /// A server of its own (for tests that stop and start it).
    pub fn start_private() -> Option<PgServer> {
        PgServer::start(false)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = self.options();
        let output = as_owner(&self.bin.join("pg_ctl"), self.root)
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(&options)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "pg_ctl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn options(&self) -> String {
        let durability =
            if self.durable { "" } else { "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" };
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 {durability}",
            self.port,
            self.dir.display()
        )
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["-w", "-t", "60", "start"]);
    }

    fn start(durable: bool) -> Option<PgServer> {
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
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
            .output()
            .unwrap();
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        let server =
            PgServer { port: free_port(), bin: bin.clone(), root, data: data.clone(), dir: dir.clone(), durable };
        server.start_again();
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
        Some(server)
    }

    /// The URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), DB_COUNTER.fetch_add(1, Ordering::Relaxed));
        let output = as_owner(&self.bin.join("createdb"), self.root)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", &name])
            .output()
            .unwrap();
        assert!(output.status.success(), "createdb failed: {}", String::from_utf8_lossy(&output.stderr));
        self.url(&name)
    }
}
