//! The command line: clap definitions, shared options, the context every
//! command gets, dispatch, and how errors become one line and an exit code.
//! Each subcommand lives in its own file and is a thin adapter over
//! `sessionctl::admin`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use sessionctl::admin::Admin;
use sessionctl::error::redact_url;
use sessionctl::store::{open_database, open_database_with_status};
use sessionctl::{AppCache, CacheTier, DatabaseTier, Error, Keys, OpenAs, Store, StoreOptions};

mod delete;
mod edit;
mod expire;
mod export;
mod generate;
mod import;
mod list;
mod migrate;
pub mod output;
mod purge_expired;
mod regenerate;
mod revoke;
mod serve_cron;
mod show;
mod stats;

/// Exit code for an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for bad usage, a malformed session id included.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when a session or user is not found.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code after Ctrl-C (128 + SIGINT), once the current batch finished.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Raised by a command stopped by a signal after finishing its current
/// batch (and printing what it did).
#[derive(Debug, thiserror::Error)]
#[error("interrupted after the current batch; run it again to go on")]
pub struct Interrupted;

/// Inspect, edit and maintain the web sessions of apps built on sessionctl.
#[derive(Debug, Parser)]
#[command(name = "sessionctl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://sessions.db, created when missing; a path given here must exist, except for `migrate`].
    #[arg(long, global = true, env = "SESSIONCTL_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis cache tier the apps use in front of the database: one server (redis://HOST:PORT/DB, or rediss:// for TLS), a Redis Cluster (redis+cluster:// then seed nodes as HOST:PORT separated by commas) or the primary Sentinels name (redis+sentinel:// then the Sentinels, then /NAME). Commands that change sessions refuse to run without reaching it when the apps recorded one.
    #[arg(long, global = true, env = "SESSIONCTL_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Key prefix of the sessions in Redis [default: the one the apps recorded, else sessionctl:].
    #[arg(long, global = true, env = "SESSIONCTL_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,

    /// Change sessions in the database alone, accepting that the apps' cache serves its old copies until they expire.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves).
    #[arg(long, global = true, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub secret_file: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, global = true, env = "SESSIONCTL_OUTPUT", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Exit 0 when no session or user matched (for scripts; the default is exit 3).
    #[arg(long, global = true)]
    pub ignore_not_found: bool,

    /// Print only errors (and the data asked for).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate, or a `list` of millions of sessions read from a cold disk.
    #[arg(
        long,
        global = true,
        env = "SESSIONCTL_DATABASE_TIMEOUT",
        default_value = "15s",
        value_name = "DURATION",
        value_parser = sessionctl::purge::parse_duration
    )]
    pub database_timeout: std::time::Duration,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// Stable JSON for scripts (one document per command; `list` and `export` write one object per line).
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show one session: metadata, which tiers hold it, its data.
    Show(show::ShowArgs),
    /// List sessions, by expiry.
    List(list::ListArgs),
    /// Counts, sizes and expiry range of all sessions.
    Stats(stats::StatsArgs),
    /// Change a session's data (with --set/--unset/--replace, or in $EDITOR).
    Edit(edit::EditArgs),
    /// Expire sessions now, in both tiers.
    Expire(expire::ExpireArgs),
    /// Delete sessions in both tiers.
    Delete(delete::DeleteArgs),
    /// Delete every session of a user.
    Revoke(revoke::RevokeArgs),
    /// Move a session to a new id (same data), removing the old one.
    Regenerate(regenerate::RegenerateArgs),
    /// Write sessions as JSON lines, one per line.
    Export(export::ExportArgs),
    /// Read sessions from JSON lines (as written by export).
    Import(import::ImportArgs),
    /// Delete expired sessions in short batches (safe to interrupt and rerun).
    PurgeExpired(purge_expired::PurgeExpiredArgs),
    /// Run the purge on a cron schedule, as a daemon (one leader across replicas).
    ServeCron(Box<serve_cron::ServeCronArgs>),
    /// Create or upgrade the session schema.
    Migrate(migrate::MigrateArgs),
    /// Regenerate the shell completions and man pages.
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// What every command gets.
pub struct Ctx {
    pub global: GlobalOpts,
    /// Why the cache given could not be reached, when a read command went
    /// on from the database alone.
    pub cache_unreachable: std::sync::OnceLock<String>,
    /// Set when the database still holds sessions under their id (an
    /// older build wrote them): `export` refuses, the rest notes it.
    pub ids_unmoved: std::sync::OnceLock<()>,
}

impl Ctx {
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.global.output == OutputFormat::Json
    }

    /// The database URL: the one given, else the embedded default.
    pub fn database_url(&self) -> &str {
        self.given_database_url().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The database URL given by flag or environment (an empty one counts
    /// as none, as a shell's `VAR=` means).
    fn given_database_url(&self) -> Option<&str> {
        self.global.database_url.as_deref().filter(|url| !url.is_empty())
    }

    /// The database URL as it may be shown.
    pub fn shown_database(&self) -> String {
        redact_url(self.database_url())
    }

    /// The cookie keys, if configured.
    pub fn keys(&self) -> anyhow::Result<Option<Keys>> {
        if let Some(path) = &self.global.secret_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the secret file {}", path.display()))?;
            return Ok(Some(Keys::from_text(&text).with_context(|| format!("secret file {}", path.display()))?));
        }
        match std::env::var("SESSIONCTL_SECRET") {
            Ok(text) => Ok(Some(Keys::from_text(&text).context("SESSIONCTL_SECRET")?)),
            Err(_) => Ok(None),
        }
    }

    /// Opens the database as an admin tool: it must exist with this
    /// build's schema, and nothing is written on opening (a read-only role
    /// can). The embedded default alone is created when missing, so the
    /// main job runs on a fresh machine.
    pub async fn database(&self) -> anyhow::Result<Arc<dyn DatabaseTier>> {
        let shown = self.shown_database();
        let timeout = self.global.database_timeout;
        if self.given_database_url().is_none() {
            // Creates and migrates the file only when it does not exist.
            let created = open_database(DEFAULT_DATABASE_URL, timeout, OpenAs::Admin).await;
            if let Err(Error::NoDatabase(_)) = created {
                open_database(DEFAULT_DATABASE_URL, timeout, OpenAs::App)
                    .await
                    .with_context(|| format!("cannot create {shown}"))?;
                output::note(self.global.quiet, format!("note: created {shown}"));
            }
        }
        let (database, status) = open_database_with_status(self.database_url(), timeout, OpenAs::Admin)
            .await
            .with_context(|| format!("cannot open {shown}"))?;
        // Sessions an older build stored under their id are left out of
        // lists until moved (their id does not sort as their key would).
        if status.pending.contains(&sessionctl::store::MOVE_TO_KEYS) {
            let _ = self.ids_unmoved.set(());
        }
        Ok(database)
    }

    /// The Redis key prefix to use: `--redis-prefix`, else the one the
    /// apps recorded, else the default.
    pub fn redis_prefix(&self, recorded: Option<String>) -> String {
        self.global
            .redis_prefix
            .clone()
            .or(recorded)
            .unwrap_or_else(|| sessionctl::store::redis::DEFAULT_PREFIX.to_owned())
    }

    /// Opens the store for admin work. `access` says whether the command
    /// changes sessions: then the cache the apps recorded must be reached
    /// (or `--no-cache` given), and an unreachable `--redis-url` stops it
    /// before it changes anything. A command that only reads answers from
    /// the database when the cache is down, and says so.
    pub async fn admin(&self, access: Access) -> anyhow::Result<Admin> {
        let database = self.database().await?;
        if self.ids_unmoved.get().is_some() {
            // A change by key would miss them, and `migrate` would bring
            // back what a revoke or delete seemed to remove.
            if access == Access::Change {
                anyhow::bail!(
                    "some sessions are still stored under their id (written by an older build), which this change would miss: run `sessionctl migrate` first"
                );
            }
            output::note(
                self.global.quiet,
                "note: some sessions are still stored under their id (written by an older build): they are left out of lists until `sessionctl migrate` moves them",
            );
        }
        let recorded = database.recorded_cache().await.context("cannot read which cache tier the apps use")?;
        let recorded_prefix = recorded_redis_prefix(recorded.as_ref());
        // A prefix other than the apps' would change keys the apps never read.
        if let (Some(given), Some(recorded)) = (&self.global.redis_prefix, &recorded_prefix)
            && given != recorded
            && access == Access::Change
            && !self.global.no_cache
        {
            anyhow::bail!(
                "--redis-prefix {given:?} is not the apps' key prefix {recorded:?} (recorded in the database): drop --redis-prefix, or pass the apps' prefix"
            );
        }
        let prefix = self.redis_prefix(recorded_prefix);
        let cache = match &self.global.redis_url {
            Some(url) if !(self.global.no_cache && access == Access::Change) => {
                match connect_cache(url, &prefix, access).await {
                    Ok(cache) => Some(cache),
                    // A malformed URL is a mistake to fix, not an outage to ride out.
                    Err(error) if is_config_error(&error) => return Err(error),
                    Err(error) if access == Access::Read => {
                        let reason = one_line(&error);
                        output::note(self.global.quiet, format!("note: {reason}: answering from the database alone"));
                        let _ = self.cache_unreachable.set(reason);
                        None
                    }
                    Err(error) => {
                        return Err(error.context(
                            "nothing was changed (--no-cache changes the database alone; the apps serve cached copies until they expire)",
                        ));
                    }
                }
            }
            _ => None,
        };
        if access == Access::Change && cache.is_none() && !self.global.no_cache {
            match &recorded {
                Some(AppCache::Redis { prefix }) => anyhow::bail!(
                    "the apps cache sessions in Redis (key prefix {prefix:?}): pass --redis-url so this change reaches that cache, or --no-cache to accept that the apps serve their cached copies until they expire"
                ),
                Some(AppCache::Unknown { kind }) => anyhow::bail!(
                    "the apps use a {kind:?} cache tier this build cannot reach: upgrade sessionctl, or pass --no-cache to accept that the apps serve their cached copies until they expire"
                ),
                Some(AppCache::Memory { staleness }) => output::note(
                    self.global.quiet,
                    format!(
                        "note: the apps cache sessions in process: they may serve the old copy for up to {}s",
                        staleness.as_secs()
                    ),
                ),
                _ => {}
            }
        }
        let options = StoreOptions::default()
            .with_cache_timeout(CACHE_TIMEOUT)
            .with_database_timeout(self.global.database_timeout);
        Ok(Admin::new(Store::with_options(database, cache, options), self.keys()?))
    }

    /// After a change: fails when a cache call of the change failed (the
    /// database changed, but the apps may serve the old copies: a Redis
    /// user without write rights, Redis gone mid-command), else notes a
    /// change made with `--no-cache`.
    pub fn after_change(&self, admin: &Admin) -> anyhow::Result<()> {
        let failed = admin.store().ops().cache_errors;
        if failed > 0 {
            anyhow::bail!(
                "the database was changed, but {} to the apps' cache failed (see the warnings above): the apps may serve the old copies until they expire; check that Redis answers and that its user may write, then run the command again",
                plural(failed as usize, "call", "calls")
            );
        }
        self.note_database_only();
        Ok(())
    }

    /// Notes, after a change made with `--no-cache`, that a cache may
    /// still serve the old copies.
    pub fn note_database_only(&self) {
        if self.global.no_cache {
            output::note(
                self.global.quiet,
                "note: --no-cache: only the database was changed; the apps' cache may serve old copies until they expire",
            );
        }
    }
}

/// Whether a command only reads sessions or changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads (and the purge, which deletes only what every cache has let
    /// expire already).
    Read,
    /// Changes sessions the apps may hold in their cache.
    Change,
}

/// The database when none is given: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sessions.db";

/// Longest one call to Redis may take from the command line.
const CACHE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to Redis and checks, in one call, that it answers: a cache that
/// is down fails now in one line rather than on every call. A command that
/// changes sessions also checks that it may write: a tombstone for an id
/// nobody has, gone in a second.
async fn connect_cache(url: &str, prefix: &str, access: Access) -> anyhow::Result<Arc<dyn CacheTier>> {
    let cache: Arc<dyn CacheTier> =
        Arc::new(sessionctl::store::redis::RedisCache::connect(url, prefix, CACHE_TIMEOUT)?);
    let probe = sessionctl::SessionKey::generate().1;
    cache.get(&probe).await.map_err(anyhow::Error::new).context("cannot reach Redis")?;
    if access == Access::Change {
        let ttl = std::time::Duration::from_secs(1);
        cache
            .tombstone(&probe, ttl, sessionctl::Tombstone::Deleted)
            .await
            .map_err(anyhow::Error::new)
            .context("cannot write to Redis (may its user write?)")?;
    }
    Ok(cache)
}

fn is_config_error(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::Config(_))))
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let database_timeout = cli.global.database_timeout;
    let ctx = Ctx {
        global: cli.global,
        cache_unreachable: std::sync::OnceLock::new(),
        ids_unmoved: std::sync::OnceLock::new(),
    };
    let result = match cli.command {
        Command::Show(args) => show::run(&ctx, args).await,
        Command::List(args) => list::run(&ctx, args).await,
        Command::Stats(args) => stats::run(&ctx, args).await,
        Command::Edit(args) => edit::run(&ctx, args).await,
        Command::Expire(args) => expire::run(&ctx, args).await,
        Command::Delete(args) => delete::run(&ctx, args).await,
        Command::Revoke(args) => revoke::run(&ctx, args).await,
        Command::Regenerate(args) => regenerate::run(&ctx, args).await,
        Command::Export(args) => export::run(&ctx, args).await,
        Command::Import(args) => import::run(&ctx, args).await,
        Command::PurgeExpired(args) => purge_expired::run(&ctx, args).await,
        Command::ServeCron(args) => serve_cron::run(&ctx, *args).await,
        Command::Migrate(args) => migrate::run(&ctx, args).await,
        Command::Generate(args) => generate::run(args),
    };
    result.map_err(|error| with_timeout_hint(error, database_timeout))
}

/// A database call cut by `--database-timeout` says how to give it longer:
/// a hung server and a slow one look alike from here, and a whole-table
/// `list` of ten million SQLite rows read from a cold disk took over the
/// default 15 s (a warm one ~1 s).
fn with_timeout_hint(error: anyhow::Error, timeout: std::time::Duration) -> anyhow::Error {
    let database = |cause: &(dyn std::error::Error + 'static)| {
        matches!(cause.downcast_ref::<Error>(), Some(Error::Timeout { backend: "sqlite" | "postgres", .. }))
    };
    if !error.chain().any(database) {
        return error;
    }
    let line = format!(
        "{} (--database-timeout {}: if the database is only slow, a large table or a cold disk, give it longer)",
        one_line(&error),
        flag_duration(timeout)
    );
    anyhow::Error::new(TimeoutHint { line, source: error })
}

/// A duration as `--database-timeout` takes it back (`15s`, `2m`, `1500ms`).
fn flag_duration(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    match (millis % 1000, duration.as_secs()) {
        (0, secs) if secs > 0 && secs % 60 == 0 => format!("{}m", secs / 60),
        (0, secs) => format!("{secs}s"),
        _ => format!("{millis}ms"),
    }
}

/// The error line with the timeout hint; the error it was made from stays
/// its source, so the exit code is still read from the whole chain.
#[derive(Debug)]
struct TimeoutHint {
    line: String,
    source: anyhow::Error,
}

impl std::fmt::Display for TimeoutHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

impl std::error::Error for TimeoutHint {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level. The daemon logs at info
/// level with timestamps (text or JSON); other commands only warnings.
pub fn init_logging(cli: &Cli) {
    remember_secrets(&cli.global);
    let (daemon, json) = match &cli.command {
        Command::ServeCron(args) => (true, args.log_format == serve_cron::LogFormat::Json),
        _ => (false, false),
    };
    // sqlx warns about slow statements; on a one-shot command that is noise
    // next to the one-line result (and a busy machine makes it appear).
    let default = match (cli.global.quiet, daemon) {
        // The redis crate's cluster client logs every failed reconnect; the
        // command's own error line already says the cache is unreachable.
        (true, _) => "error,redis=off",
        (false, true) => "info,redis=off",
        (false, false) => "warn,sqlx=error,redis=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| ScrubbedStderr).with_ansi(colour);
    let _ = match (daemon, json) {
        (true, true) => builder.json().try_init(),
        (true, false) => builder.try_init(),
        (false, _) => builder.without_time().try_init(),
    };
}

/// The error and its causes on one line, with any URL password masked.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for (i, cause) in error.chain().enumerate() {
        let text = sessionctl::error::without_server_line(&cause.to_string()).to_owned();
        if i > 0 {
            if line.contains(&text) {
                continue;
            }
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    redact_urls_in(&scrub(&line.replace('\n', " ")))
}

/// Each URL in `text` with its secrets masked. A URL that ends a cause is
/// followed by the `:` before the next one: that is punctuation, not part
/// of its last query value (masked with it, the line lost its `: `). The
/// remembered secrets are masked first (`scrub`), so a secret that itself
/// ends in such a character is masked whole.
fn redact_urls_in(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if !word.contains("://") {
                return word.to_owned();
            }
            let url = word.trim_end_matches([':', ',', ';']);
            format!("{}{}", redact_url(url), &word[url.len()..])
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The secrets of the URLs this run was given, masked in every message and
/// log line whatever a driver quotes of them.
static SECRETS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Remembers the secrets of the configured URLs (see [`scrub`]).
pub fn remember_secrets(global: &GlobalOpts) {
    let mut secrets: Vec<String> = [&global.database_url, &global.redis_url]
        .into_iter()
        .flatten()
        .flat_map(|url| sessionctl::error::url_secrets(url))
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let _ = SECRETS.set(secrets);
}

/// `text` with every remembered secret replaced by `***`.
pub fn scrub(text: &str) -> String {
    sessionctl::error::mask(text, SECRETS.get().map(Vec::as_slice).unwrap_or_default())
}

/// Stderr for the log, each line scrubbed of the remembered secrets.
struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::Write::write_all(&mut std::io::stderr().lock(), scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stderr())
    }
}

/// clap's usage error on one line: its message and details, without the
/// usage and "--help" hints.
pub fn usage_error_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The exit code for an error; `None` when it is not one: a closed stdout,
/// or nothing matched under `--ignore-not-found`.
pub fn exit_code(error: &anyhow::Error, ignore_not_found: bool) -> Option<u8> {
    if error.downcast_ref::<output::BrokenPipe>().is_some() {
        return None;
    }
    if error.downcast_ref::<Interrupted>().is_some() {
        return Some(EXIT_INTERRUPTED);
    }
    let ours = || error.chain().filter_map(|cause| cause.downcast_ref::<Error>());
    if ours().any(|e| matches!(e, Error::NotFound(_))) {
        return (!ignore_not_found).then_some(EXIT_NOT_FOUND);
    }
    if ours().any(|e| matches!(e, Error::InvalidId(_))) {
        return Some(EXIT_USAGE);
    }
    Some(EXIT_ERROR)
}

/// The `sessions` word with its count.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Checks how sessions were named on the command line before anything
/// connects: each must be a session id, a stored key, or look like a cookie
/// value (verified later, with the keys); the first bad one is an error.
pub fn check_session_args(args: &[String]) -> anyhow::Result<()> {
    for arg in args {
        if !arg.contains('.') && sessionctl::SessionKey::from_id_or_key(arg.trim()).is_err() {
            let shown: String = arg.chars().take(40).collect();
            return Err(sessionctl::Error::InvalidId(format!(
                "{shown:?} is neither a session id (24 characters), a stored key (32 characters) nor a cookie value"
            ))
            .into());
        }
    }
    Ok(())
}

/// The stored key of a session named by its id, its stored key or its
/// cookie value.
pub fn stored_key(admin: &sessionctl::admin::Admin, arg: &str) -> anyhow::Result<sessionctl::SessionKey> {
    match admin.resolve(arg)? {
        sessionctl::admin::Target::Stored(key) => Ok(key),
        sessionctl::admin::Target::CookieOnly(_) => {
            anyhow::bail!("that cookie carries a cookie-only session: it is stored nowhere but in the browser")
        }
    }
}

/// The stored keys of the sessions named on the command line.
pub fn stored_keys(admin: &sessionctl::admin::Admin, args: &[String]) -> anyhow::Result<Vec<sessionctl::SessionKey>> {
    args.iter().map(|arg| stored_key(admin, arg)).collect()
}

/// Asks for confirmation on the terminal; refuses without one.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{question}: refusing without confirmation on a non-interactive input; pass -y to confirm");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// The key prefix the apps recorded, when they cache in Redis.
pub fn recorded_redis_prefix(recorded: Option<&AppCache>) -> Option<String> {
    match recorded {
        Some(AppCache::Redis { prefix }) => Some(prefix.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// The hint names the timeout as the flag takes it back (it printed
    /// `1.5s`, which the flag refuses, for `1500ms`).
    #[test]
    fn the_timeout_hint_prints_what_the_flag_parses() {
        for (given, printed) in [("15s", "15s"), ("2m", "2m"), ("1500ms", "1500ms"), ("90s", "90s"), ("0s", "0s")] {
            let duration = sessionctl::purge::parse_duration(given).unwrap();
            assert_eq!(super::flag_duration(duration), printed);
            assert_eq!(sessionctl::purge::parse_duration(printed), Ok(duration));
        }
        assert_eq!(super::flag_duration(Duration::from_millis(1)), "1ms");
    }

    /// A URL ending in a secret query value, then the next cause: the
    /// value is masked and the `: ` between them kept (it was masked too).
    #[test]
    fn a_url_ending_a_cause_keeps_the_colon_after_it() {
        let error = anyhow::anyhow!("postgres did not answer")
            .context("cannot open postgres://ops:pw@db/s?sslpassword=hunter2");
        let line = super::one_line(&error);
        assert_eq!(line, "cannot open postgres://ops:***@db/s?sslpassword=***: postgres did not answer");
    }
}
