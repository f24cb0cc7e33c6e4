//! Throwaway Redis Clusters (3 primaries, 3 replicas) and Sentinel setups
//! (a primary, a replica, 3 Sentinels) for tests: real `redis-server`
//! processes on free loopback ports, their files in a temp dir, killed
//! when dropped. Needs `redis_server` and `pg_server` beside it.

use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::pg_server::free_port;
use super::redis_server::{available, spawn};

/// One `redis-server` of a set.
pub struct Node {
    pub port: u16,
    child: Option<Child>,
}

impl Node {
    /// Kills the node (SIGKILL, as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the node was killed.
    pub fn is_down(&self) -> bool {
        self.child.is_none()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `redis-cli` against one port; its output, or a panic with what it said.
pub fn cli(port: u16, args: &[&str]) -> String {
    cli_as(None, port, args)
}

/// [`cli`] with a password (passed as `REDISCLI_AUTH`, never on the command line).
pub fn cli_as(password: Option<&str>, port: u16, args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    if let Some(password) = password {
        command.env("REDISCLI_AUTH", password);
    }
    let output =
        command.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().expect("cannot run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Redis Cluster: 3 primaries, each with a replica.
pub struct RedisCluster {
    pub nodes: Vec<Node>,
    /// What every node requires (`requirepass`, `masterauth`), if anything.
    pub password: Option<String>,
    _dir: tempfile::TempDir,
}

static SHARED_CLUSTER: OnceLock<Option<RedisCluster>> = OnceLock::new();

/// One cluster shared by every caller in this process (tests keep apart
/// by key prefix); `None` (after saying so) when redis-server is missing
/// and `CI` is not set.
pub fn shared_cluster() -> Option<&'static RedisCluster> {
    SHARED_CLUSTER.get_or_init(RedisCluster::start).as_ref()
}

impl RedisCluster {
    /// Six nodes made into a cluster, or `None` when redis-server is missing.
    pub fn start() -> Option<RedisCluster> {
        RedisCluster::start_with_password(None)
    }

    /// The same, every node requiring `password` (of clients and of each other).
    pub fn start_with_password(password: Option<&str>) -> Option<RedisCluster> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<Node> = (0..6)
            .map(|i| {
                let port = free_port();
                let bus = free_port();
                let config = dir.path().join(format!("nodes-{i}.conf"));
                let args = [
                    "--port",
                    &port.to_string(),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                    "--cluster-config-file",
                    config.to_str().unwrap(),
                    "--cluster-node-timeout",
                    "1000",
                    "--repl-diskless-sync-delay",
                    "0",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    dir.path().to_str().unwrap(),
                ]
                .map(str::to_owned);
                let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
                if let Some(password) = password {
                    args.extend(["--requirepass", password, "--masterauth", password]);
                }
                Node { port, child: Some(spawn(&args, port)) }
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        cli_as(password, nodes[0].port, &create);
        let cluster = RedisCluster { nodes, password: password.map(str::to_owned), _dir: dir };
        cluster.wait_until_settled(Duration::from_secs(30));
        Some(cluster)
    }

    /// `redis-cli` on one node of this cluster, with its password.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli_as(self.password.as_deref(), port, args)
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Waits until every live node says the cluster is ok, every slot is
    /// served, three live nodes are primaries (after a primary was killed:
    /// until its replica has taken over), and every live replica is in sync
    /// (a replica that never synced would not take over).
    pub fn wait_until_settled(&self, within: Duration) {
        wait_for("the cluster settles", within, || {
            let ok = self.nodes.iter().filter(|n| !n.is_down()).all(|node| {
                let info = self.cli(node.port, &["cluster", "info"]);
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            });
            let synced = self.nodes.iter().filter(|n| !n.is_down()).all(|node| {
                let replication = self.cli(node.port, &["info", "replication"]);
                replication.contains("role:master") || replication.contains("master_link_status:up")
            });
            ok && synced && self.primaries().len() == 3 && self.nodes_agree()
        });
    }

    /// Whether `redis-cli --cluster check` finds the nodes agreeing on the
    /// slots, none open (mid-migration) and all covered: what it requires
    /// before it reshards.
    pub fn nodes_agree(&self) -> bool {
        let Some(live) = self.nodes.iter().find(|n| !n.is_down()) else { return false };
        let mut check = Command::new("redis-cli");
        if let Some(password) = &self.password {
            check.env("REDISCLI_AUTH", password);
        }
        let Ok(output) = check.args(["--cluster", "check", &format!("127.0.0.1:{}", live.port)]).output() else {
            return false;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        output.status.success()
            && text.contains("[OK] All nodes agree")
            && !text.contains("[ERR]")
            && !text.contains("[WARNING]")
    }

    /// The live primaries' ports.
    pub fn primaries(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| !n.is_down())
            .filter(|n| self.cli(n.port, &["role"]).starts_with("master"))
            .map(|n| n.port)
            .collect()
    }
}

/// A primary, its replica, and three Sentinels watching them as `mymaster`.
pub struct RedisSentinel {
    pub primary: Node,
    pub replica: Node,
    pub sentinels: Vec<Node>,
    _dir: tempfile::TempDir,
}

static SHARED_SENTINEL: OnceLock<Option<RedisSentinel>> = OnceLock::new();

/// One Sentinel setup shared by every caller in this process.
pub fn shared_sentinel() -> Option<&'static RedisSentinel> {
    SHARED_SENTINEL.get_or_init(RedisSentinel::start).as_ref()
}

/// The primary's name the Sentinels watch.
pub const MASTER_NAME: &str = "mymaster";

impl RedisSentinel {
    /// The setup, or `None` when redis-server is missing.
    pub fn start() -> Option<RedisSentinel> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = |port: u16, extra: &[String]| {
            let mut args = vec!["--port".to_owned(), port.to_string(), "--save".into(), String::new()];
            args.extend(["--repl-diskless-sync-delay".into(), "0".into()]);
            args.extend(["--appendonly".into(), "no".into(), "--dir".into(), dir.path().display().to_string()]);
            args.extend(extra.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Node { port, child: Some(spawn(&args, port)) }
        };
        let primary = data(free_port(), &[]);
        let replica_port = free_port();
        let replica = data(replica_port, &["--replicaof".into(), "127.0.0.1".into(), primary.port.to_string()]);
        wait_for("the replica syncs", Duration::from_secs(20), || {
            cli(replica.port, &["info", "replication"]).contains("master_link_status:up")
        });
        let sentinels = (0..3)
            .map(|i| {
                let port = free_port();
                let config = dir.path().join(format!("sentinel-{i}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\n\
                         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                         sentinel failover-timeout {MASTER_NAME} 4000\n\
                         sentinel parallel-syncs {MASTER_NAME} 1\n",
                        primary.port
                    ),
                )
                .unwrap();
                let port_text = port.to_string();
                let args = [
                    config.to_str().unwrap(),
                    "--sentinel",
                    "--port",
                    &port_text,
                    "--dir",
                    dir.path().to_str().unwrap(),
                ];
                Node { port, child: Some(spawn(&args, port)) }
            })
            .collect::<Vec<_>>();
        let setup = RedisSentinel { primary, replica, sentinels, _dir: dir };
        wait_for("the Sentinels see the replica", Duration::from_secs(30), || {
            setup.sentinels.iter().all(|s| cli(s.port, &["sentinel", "replicas", MASTER_NAME]).contains("slave"))
        });
        Some(setup)
    }

    /// `redis+sentinel://` naming the three Sentinels and the primary.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// Waits until the replica has all the primary has written.
    pub fn wait_for_the_replica(&self) {
        let offset = |port: u16, field: &str| {
            let info = cli(port, &["info", "replication"]);
            info.lines().find_map(|line| line.strip_prefix(field)?.trim().parse::<u64>().ok())
        };
        let written = offset(self.primary.port, "master_repl_offset:").expect("INFO names the offset");
        wait_for("the replica catches up", Duration::from_secs(20), || {
            offset(self.replica.port, "slave_repl_offset:").is_some_and(|read| read >= written)
        });
    }

    /// A switchover by hand, as an operator runs one without the Sentinels'
    /// failover: the replica is promoted, the Sentinels are pointed at it,
    /// and the old primary becomes its replica. Unlike a failover, nothing
    /// closes the clients' connections to the old primary, which answer
    /// every write `READONLY` from then on. The roles are swapped after it.
    pub fn switch_over(&mut self) {
        let promoted = self.replica.port.to_string();
        cli(self.replica.port, &["replicaof", "no", "one"]);
        // Within a second: a Sentinel reconfigures a replica that claims to
        // be a primary only after seconds.
        for sentinel in &self.sentinels {
            cli(sentinel.port, &["sentinel", "remove", MASTER_NAME]);
            cli(sentinel.port, &["sentinel", "monitor", MASTER_NAME, "127.0.0.1", &promoted, "2"]);
            cli(sentinel.port, &["sentinel", "set", MASTER_NAME, "down-after-milliseconds", "1000"]);
        }
        cli(self.primary.port, &["replicaof", "127.0.0.1", &promoted]);
        wait_for("the old primary syncs from the new one", Duration::from_secs(20), || {
            cli(self.primary.port, &["info", "replication"]).contains("master_link_status:up")
        });
        std::mem::swap(&mut self.primary, &mut self.replica);
    }

    /// The port the Sentinels name as the primary now.
    pub fn primary_port(&self) -> u16 {
        let live = self.sentinels.iter().find(|s| !s.is_down()).expect("no Sentinel left");
        let answer = cli(live.port, &["sentinel", "get-master-addr-by-name", MASTER_NAME]);
        answer.lines().nth(1).and_then(|p| p.trim().parse().ok()).expect("no primary named")
    }
}
