//! How the cache reaches Redis: one server (`redis://`, `rediss://`), a
//! Redis Cluster (`redis+cluster://`), or the primary that a set of
//! Sentinels names (`redis+sentinel://`).
//!
//! - **One server**: the `redis` crate's connection manager, which
//!   reconnects when the connection breaks. A server that answers
//!   `READONLY` (a primary demoted by a failover, while the URL's name now
//!   reaches the new one, as a managed Redis's endpoint does) gets a new
//!   connection too, and the call is sent again (it cannot have run): the
//!   manager alone keeps the connection to the demoted server, and every
//!   write failed for as long as it stayed open.
//! - **Cluster**: the `redis` crate's async cluster client, which follows
//!   MOVED/ASK redirections and failovers by itself. Commands are routed by
//!   their key; the cache keeps each of its scripts to one key, so nothing
//!   crosses slots.
//! - **Sentinel**: a multiplexed connection to the primary the Sentinels
//!   name. A connection that breaks is dropped; the next call asks the
//!   Sentinels again. A server that answers `READONLY` (a primary demoted
//!   by a switchover that closed no connection: the Sentinels' own failover
//!   closes them) has the Sentinels asked again at once, at most once a
//!   second; its connection is kept until they name a server that answers
//!   as a primary, so reads are still served meanwhile. A call is resent
//!   only when it cannot have run (the connection was refused, or the
//!   server refused to write).
//!
//! None of this logs or reports the URL: it may hold a password.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisFuture, RedisResult, TlsMode, Value};

use crate::error::{Error, Result};

/// The forms of URL the cache tier accepts, for messages.
pub(super) const URL_FORMS: &str = "redis://, rediss://, redis+cluster:// or redis+sentinel://";

/// What a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// One server: the URL as the `redis` crate reads it.
    Single(String),
    /// Cluster seed nodes.
    Cluster(Nodes),
    /// Sentinels, and what they should name.
    Sentinel {
        sentinels: Nodes,
        master: String,
        db: i64,
        sentinel_user: Option<String>,
        sentinel_password: Option<String>,
    },
}

/// Hosts, with the credentials and TLS that apply to the data nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Nodes {
    pub hosts: Vec<(String, u16)>,
    /// `user:password` as written in the URL (percent-encoded).
    pub userinfo: Option<String>,
    pub tls: bool,
}

impl Nodes {
    fn user_and_password(&self) -> (Option<String>, Option<String>) {
        let Some(userinfo) = &self.userinfo else { return (None, None) };
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo.as_str(), None),
        };
        let decoded = |text: &str| (!text.is_empty()).then(|| crate::error::percent_decode(text));
        (decoded(user), password.and_then(decoded))
    }

    /// A `redis://` URL for each host, with the credentials.
    fn urls(&self) -> Vec<String> {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let userinfo = self.userinfo.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        self.hosts.iter().map(|(host, port)| format!("{scheme}://{userinfo}{}:{port}/", bracketed(host))).collect()
    }

    fn addresses(&self) -> Vec<ConnectionAddr> {
        self.hosts
            .iter()
            .map(|(host, port)| {
                if self.tls {
                    ConnectionAddr::TcpTls { host: host.clone(), port: *port, insecure: false, tls_params: None }
                } else {
                    ConnectionAddr::Tcp(host.clone(), *port)
                }
            })
            .collect()
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_owned() }
}

/// Reads a cache URL. The error names what is wrong, never the URL.
pub(super) fn parse(url: &str) -> std::result::Result<Target, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(Target::Single(url.to_owned()));
    };
    let (tls, kind) = match scheme.to_ascii_lowercase().as_str() {
        "redis+cluster" => (false, "cluster"),
        "rediss+cluster" => (true, "cluster"),
        "redis+sentinel" => (false, "sentinel"),
        "rediss+sentinel" => (true, "sentinel"),
        _ => return Ok(Target::Single(url.to_owned())),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo.to_owned()), hosts),
        None => (None, authority),
    };
    let default_port = if kind == "cluster" { 6379 } else { 26379 };
    let hosts =
        hosts.split(',').map(|host| host_and_port(host, default_port)).collect::<std::result::Result<Vec<_>, _>>()?;
    let nodes = Nodes { hosts, userinfo, tls };
    let mut params =
        query.split('&').filter(|pair| !pair.is_empty()).map(|pair| pair.split_once('=').unwrap_or((pair, "")));
    if kind == "cluster" {
        if let Some((name, _)) = params.next() {
            let _ = name; // not echoed: it may be part of a password with an unencoded '?'
            return Err("a cluster URL takes no parameters".into());
        }
        if !matches!(path.trim_end_matches('/'), "" | "0") {
            return Err("a cluster has only database 0: drop the path after the hosts".into());
        }
        return Ok(Target::Cluster(nodes));
    }
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let master = segments
        .next()
        .map(crate::error::percent_decode)
        .ok_or("a Sentinel URL names the primary after the hosts: redis+sentinel://host:26379/mymaster")?;
    let db = match segments.next() {
        None => 0,
        Some(db) => db
            .parse::<u32>()
            .map(i64::from)
            .map_err(|_| "the database after the primary's name is not a number".to_owned())?,
    };
    if segments.next().is_some() {
        return Err("a Sentinel URL's path is /<primary's name>[/<database>]".into());
    }
    let (mut sentinel_user, mut sentinel_password) = (None, None);
    for (name, value) in params {
        match name {
            "sentinel_username" => sentinel_user = Some(crate::error::percent_decode(value)),
            "sentinel_password" => sentinel_password = Some(crate::error::percent_decode(value)),
            // The name is not echoed: with a `?` left unencoded in a
            // password, it may be part of the password.
            _ => return Err("a Sentinel URL takes only sentinel_username and sentinel_password".into()),
        }
    }
    Ok(Target::Sentinel { sentinels: nodes, master, db, sentinel_user, sentinel_password })
}

fn host_and_port(text: &str, default_port: u16) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an IPv6 host is missing its ']'")?;
        if !after.is_empty() && !after.starts_with(':') {
            return Err("an IPv6 host's ']' is followed by something other than :PORT".into());
        }
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err("a host is empty (hosts are separated by commas)".into());
    }
    let port = match port {
        None => default_port,
        // The text is not echoed: with a `/`, `?` or `#` left unencoded in
        // a password, what reads as a port may be part of the password.
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err("a port is not a number from 1 to 65535 (percent-encode / ? # in a password)".into()),
        },
    };
    Ok((host.to_owned(), port))
}

/// A connection to whatever the URL names; cheap to clone (every clone
/// shares the underlying connections).
#[derive(Clone)]
pub(super) enum Link {
    Single(Arc<SingleLink>),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelLink>),
}

impl Link {
    /// Connects lazily: no call is made until first use, so an app starts
    /// while Redis is down. A cluster's client is made here, so this runs
    /// inside a tokio runtime.
    pub(super) fn open(target: &Target, timeout: Duration) -> Result<Link> {
        let invalid = |e: redis::RedisError| Error::Config(format!("invalid Redis URL: {}", kind_description(&e)));
        match target {
            Target::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(invalid)?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let connection =
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone()).map_err(invalid)?;
                let current = std::sync::Mutex::new(Current { generation: 0, manager: connection, replaced_at: None });
                Ok(Link::Single(Arc::new(SingleLink { client, config, current })))
            }
            Target::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.urls())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(4)
                    .max_retry_wait(1_000)
                    .build()
                    .map_err(invalid)?;
                let config =
                    redis::cluster::ClusterConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout);
                Ok(Link::Cluster(client.get_pending_async_connection_with_config(config)))
            }
            Target::Sentinel { sentinels, master, db, sentinel_user, sentinel_password } => {
                let mut builder = SentinelClientBuilder::new(sentinels.addresses(), master, SentinelServerType::Master)
                    .map_err(invalid)?
                    .set_client_to_redis_db(*db);
                let (user, password) = sentinels.user_and_password();
                if let Some(user) = user {
                    builder = builder.set_client_to_redis_username(user);
                }
                if let Some(password) = password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(user) = sentinel_user {
                    builder = builder.set_client_to_sentinel_username(user);
                }
                if let Some(password) = sentinel_password {
                    builder = builder.set_client_to_sentinel_password(password);
                }
                if sentinels.tls {
                    builder = builder
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                }
                let client = builder.build().map_err(invalid)?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                Ok(Link::Sentinel(Arc::new(SentinelLink::new(client, config))))
            }
        }
    }

    /// The cluster connection, when this is one.
    pub(super) fn cluster(&self) -> Option<&ClusterConnection> {
        match self {
            Link::Cluster(connection) => Some(connection),
            _ => None,
        }
    }
}

/// The error's category without its detail, which for a bad URL could echo
/// the URL (and its password).
pub(super) fn kind_description(error: &redis::RedisError) -> &'static str {
    match error.kind() {
        redis::ErrorKind::InvalidClientConfig => "not a valid Redis URL",
        _ => "cannot be used",
    }
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(link) => Box::pin(link.command(cmd)),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
            Link::Sentinel(link) => Box::pin(link.command(cmd)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(link) => Box::pin(link.commands(pipeline, offset, count)),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Sentinel(link) => Box::pin(link.commands(pipeline, offset, count)),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(link) => link.manager().1.get_db(),
            Link::Cluster(connection) => connection.get_db(),
            Link::Sentinel(_) => 0,
        }
    }
}

/// One server, through the `redis` crate's connection manager, replaced
/// when the server it reaches answers `READONLY` (see the module's doc).
pub(super) struct SingleLink {
    client: redis::Client,
    config: ConnectionManagerConfig,
    current: std::sync::Mutex<Current>,
}

/// The manager in use.
struct Current {
    /// A number that tells it from its successors.
    generation: u64,
    manager: ConnectionManager,
    /// When it replaced the one before: at most once a second, so a URL
    /// that names a replica for good (a mistake) fails its writes without
    /// opening a connection for each.
    replaced_at: Option<std::time::Instant>,
}

impl SingleLink {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The manager in use, and its generation.
    fn manager(&self) -> (u64, ConnectionManager) {
        let current = self.current();
        (current.generation, current.manager.clone())
    }

    /// After the manager of `generation` met a `READONLY` refusal: replace
    /// it, once, by whichever call saw it first, and not again within a
    /// second.
    fn replace(&self, generation: u64) {
        let mut current = self.current();
        if current.generation == generation
            && current.replaced_at.is_none_or(|at| at.elapsed() >= READ_ONLY_RECONNECT_EVERY)
            && let Ok(manager) = ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
        {
            *current = Current { generation: generation + 1, manager, replaced_at: Some(std::time::Instant::now()) };
        }
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let (generation, mut connection) = self.manager();
        let result = connection.req_packed_command(cmd).await;
        if !refused_as_read_only(&result, read_only_reply) {
            return result;
        }
        self.replace(generation);
        self.manager().1.req_packed_command(cmd).await
    }

    async fn commands(&self, pipeline: &Pipeline, offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        let (generation, mut connection) = self.manager();
        let result = connection.req_packed_commands(pipeline, offset, count).await;
        if !refused_as_read_only(&result, |values| values.iter().any(read_only_reply)) {
            return result;
        }
        self.replace(generation);
        self.manager().1.req_packed_commands(pipeline, offset, count).await
    }
}

/// Whether the server refused to write (the call did not run): an error,
/// or an error reply (redis-rs hands a command's error reply back as a
/// value, turned into an error later), coded `READONLY`.
fn refused_as_read_only<T>(result: &RedisResult<T>, reply: impl Fn(&T) -> bool) -> bool {
    match result {
        Err(error) => error.code() == Some("READONLY"),
        Ok(value) => reply(value),
    }
}

/// An error reply coded `READONLY`.
fn read_only_reply(value: &Value) -> bool {
    matches!(value, Value::ServerError(error) if error.code() == "READONLY")
}

/// How long a link keeps a connection that was answered `READONLY` before
/// it opens another for the same reason: a URL that names a replica for
/// good (a mistake), or Sentinels that name a demoted primary for a while,
/// fail their writes without opening a connection for each.
const READ_ONLY_RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The primary the Sentinels name, asked again after a failure.
pub(super) struct SentinelLink {
    client: tokio::sync::Mutex<SentinelClient>,
    state: std::sync::Mutex<SentinelState>,
    config: AsyncConnectionConfig,
}

/// The connection a Sentinel link uses.
#[derive(Default)]
struct SentinelState {
    /// The connection in use, and a number that tells it from its
    /// predecessors and successors.
    current: Option<(u64, MultiplexedConnection)>,
    /// The number the next connection takes.
    next_generation: u64,
    /// When the Sentinels were last asked again because a server answered
    /// `READONLY` (see [`READ_ONLY_RECONNECT_EVERY`]).
    reconnected_at: Option<std::time::Instant>,
}

/// What a Sentinel link does after a call.
#[derive(Debug, PartialEq, Eq)]
enum Then {
    /// Hand the result back.
    Answer,
    /// Send the call again, on the connection in use (it cannot have run).
    Resend,
    /// Ask the Sentinels for the primary, then send the call again.
    Reconnect,
}

impl SentinelLink {
    fn new(client: SentinelClient, config: AsyncConnectionConfig) -> SentinelLink {
        SentinelLink { client: tokio::sync::Mutex::new(client), state: Default::default(), config }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SentinelState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection in use, or a new one to the primary the Sentinels name.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.state().current.clone() {
            return Ok(current);
        }
        let mut client = self.client.lock().await;
        // Another call may have connected while this one waited.
        if let Some(current) = self.state().current.clone() {
            return Ok(current);
        }
        let connection = client.get_async_connection_with_config(&self.config).await?;
        Ok(self.state().install(connection))
    }

    /// After the server of the connection of `generation` refused to write:
    /// a connection to the primary the Sentinels name now takes its place.
    /// When they name none that answers as a primary (they have not caught
    /// up yet), the connection is kept, so reads are still served.
    async fn reconnect(&self, generation: u64) {
        let mut client = self.client.lock().await;
        if !self.state().in_use(generation) {
            return;
        }
        if let Ok(connection) = client.get_async_connection_with_config(&self.config).await {
            let mut state = self.state();
            if state.in_use(generation) {
                state.install(connection);
            }
        }
    }

    /// After a call on the connection of `generation`. A connection that
    /// broke is forgotten, and the call sent again when it cannot have run
    /// (the connection was refused). A server that refused to write (a
    /// demoted primary: the call did not run) has the Sentinels asked
    /// again, at most once a second.
    fn after<T>(&self, generation: u64, result: &RedisResult<T>, read_only: impl Fn(&T) -> bool) -> Then {
        if refused_as_read_only(result, read_only) {
            let mut state = self.state();
            if !state.in_use(generation) {
                // Another call replaced it already: try the newer one.
                return Then::Resend;
            }
            if state.reconnected_at.is_some_and(|at| at.elapsed() < READ_ONLY_RECONNECT_EVERY) {
                return Then::Answer;
            }
            state.reconnected_at = Some(std::time::Instant::now());
            return Then::Reconnect;
        }
        let Err(error) = result else { return Then::Answer };
        let unsent = error.is_connection_refusal();
        if unsent || error.is_unrecoverable_error() || error.is_timeout() {
            let mut state = self.state();
            if state.in_use(generation) {
                state.current = None;
            }
        }
        if unsent { Then::Resend } else { Then::Answer }
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let (generation, mut connection) = self.connection().await?;
        let result = connection.req_packed_command(cmd).await;
        match self.after(generation, &result, read_only_reply) {
            Then::Answer => return result,
            Then::Reconnect => self.reconnect(generation).await,
            Then::Resend => {}
        }
        self.connection().await?.1.req_packed_command(cmd).await
    }

    async fn commands(&self, pipeline: &Pipeline, offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        let (generation, mut connection) = self.connection().await?;
        let result = connection.req_packed_commands(pipeline, offset, count).await;
        match self.after(generation, &result, |values| values.iter().any(read_only_reply)) {
            Then::Answer => return result,
            Then::Reconnect => self.reconnect(generation).await,
            Then::Resend => {}
        }
        self.connection().await?.1.req_packed_commands(pipeline, offset, count).await
    }
}

impl SentinelState {
    /// Whether the connection of `generation` is the one in use.
    fn in_use(&self, generation: u64) -> bool {
        self.current.as_ref().is_some_and(|(g, _)| *g == generation)
    }

    /// Makes `connection` the one in use; its generation with it.
    fn install(&mut self, connection: MultiplexedConnection) -> (u64, MultiplexedConnection) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.current = Some((generation, connection.clone()));
        (generation, connection)
    }
}

#[cfg(test)]
mod tests {
    use super::{Nodes, Target, parse};

    fn nodes(hosts: &[(&str, u16)], userinfo: Option<&str>, tls: bool) -> Nodes {
        Nodes {
            hosts: hosts.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect(),
            userinfo: userinfo.map(str::to_owned),
            tls,
        }
    }

    #[test]
    fn cluster_and_sentinel_urls_are_read() {
        assert_eq!(parse("redis://h:1/2").unwrap(), Target::Single("redis://h:1/2".into()));
        assert_eq!(
            parse("redis+cluster://:p%40w@a:7000,b:7001,[::1]:7002").unwrap(),
            Target::Cluster(nodes(&[("a", 7000), ("b", 7001), ("::1", 7002)], Some(":p%40w"), false))
        );
        assert_eq!(parse("rediss+cluster://a/").unwrap(), Target::Cluster(nodes(&[("a", 6379)], None, true)));
        assert_eq!(
            parse("redis+sentinel://u:pw@s1,s2:26380/my%20primary/3?sentinel_password=x").unwrap(),
            Target::Sentinel {
                sentinels: nodes(&[("s1", 26379), ("s2", 26380)], Some("u:pw"), false),
                master: "my primary".into(),
                db: 3,
                sentinel_user: None,
                sentinel_password: Some("x".into()),
            }
        );
        let (user, password) = nodes(&[], Some("u:p%40w"), false).user_and_password();
        assert_eq!((user.as_deref(), password.as_deref()), (Some("u"), Some("p@w")));
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, expected) in [
            ("redis+cluster://:secret@a:x", "is not a number"),
            ("redis+cluster://:secret@a,,b", "a host is empty"),
            ("redis+cluster://:secret@a/3", "only database 0"),
            ("redis+cluster://:secret@a?x=1", "no parameters"),
            ("redis+sentinel://:secret@a", "names the primary"),
            ("redis+sentinel://:secret@a/m/x", "not a number"),
            ("redis+sentinel://:secret@a/m?password=secret", "takes only sentinel_username"),
            ("redis+sentinel://:secret@a/m/-5", "not a number"),
            ("redis+sentinel://u:se?cret@a/m", "not a number"),
            ("redis+cluster://[::1]garbage", "followed by something other"),
            ("redis+cluster://:secret@[::1", "missing its ']'"),
            ("redis+cluster://admin:secret/x@h:7000", "not a number"),
            ("redis+cluster://admin:secret?x@h:7000", "not a number"),
            ("redis+cluster://h:7000?secret=1", "no parameters"),
            ("redis+cluster://h:0", "not a number"),
        ] {
            let error = parse(url).unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }
}
