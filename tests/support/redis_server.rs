//! Throwaway `redis-server` processes for tests and benchmarks (std only).
//!
//! Each listens on 127.0.0.1 at a free port, persists nothing outside a
//! directory of its own (a replica's received dataset), and is killed
//! when dropped; a watchdog also kills it if the calling process dies first.
//! Fault tests can stop it, start it again on the same port, or pause it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Starts `redis-server` on 127.0.0.1 with `args` (after a config file,
/// when the first argument is one) and waits until `port` accepts
/// connections. A watchdog kills it if the calling process dies first.
pub fn spawn(args: &[&str], port: u16) -> Child {
    let binary = find_redis().expect("redis-server disappeared");
    let child = Command::new(binary)
        .args(args)
        .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start redis-server");
    let watchdog = format!(
        "while [ -d /proc/{} ] && [ -d /proc/{} ]; do sleep 0.5; done; kill -9 {} 2>/dev/null",
        std::process::id(),
        child.id(),
        child.id()
    );
    // Deliberately never waited for: it must outlive this process.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("/bin/sh").arg("-c").arg(watchdog).stdin(Stdio::null()).spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Whether redis-server is installed (saying so, or failing under `CI`,
/// when it is not).
pub fn available() -> bool {
    find_redis().is_some() || super::pg_server::missing::<()>("redis-server (Debian package `redis-server`)").is_some()
}

/// A running (or deliberately stopped) server.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Its working directory: a server made a replica writes the dataset it
    /// receives there (`dump.rdb`), and loads it when it starts again. Not
    /// the tests' working directory, whose `dump.rdb` every later server
    /// would load.
    dir: PathBuf,
}

static SHARED: OnceLock<Option<RedisServer>> = OnceLock::new();

fn find_redis() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("redis-server")).find(|p| p.exists())
}

/// One server shared by every caller in this process (tests keep apart by
/// key prefix); `None` (after saying so) when redis-server is not installed
/// and `CI` is not set.
pub fn shared() -> Option<&'static RedisServer> {
    SHARED.get_or_init(RedisServer::start).as_ref()
}

impl RedisServer {
    /// A new server of its own, or `None` when redis-server is missing.
    pub fn start() -> Option<RedisServer> {
        if !available() {
            return None;
        }
        let port = super::pg_server::free_port();
        let dir = std::env::temp_dir().join(format!("sessionctl-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer { port, child: None, dir };
        server.start_again();
        Some(server)
    }

    /// Starts the server (again) on its port.
    pub fn start_again(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        self.child = Some(spawn(&["--port", &port, "--save", "", "--appendonly", "no", "--dir", &dir], self.port));
    }

    /// Kills the server (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("server not running");
        let status = Command::new("kill").arg(signal).arg(child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// The port it listens on (loopback).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").arg("-CONT").arg(child.id().to_string()).status();
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
