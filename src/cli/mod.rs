//! The command line: clap definitions, shared options, the context every
//! command gets, dispatch, and how errors become one line and an exit code.
//! Each subcommand lives in its own file and is a thin adapter over
//! `sessionctl::admin`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use sessionctl::admin::Admin;
use sessionctl::error::redact_url;
use sessionctl::{Error, Keys, StoreConfig, StoreOptions};

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
/// Exit code when a session or user is not found.
pub const EXIT_NOT_FOUND: u8 = 3;

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
    /// Database holding the sessions: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "SESSIONCTL_DATABASE_URL",
        default_value = "sqlite://sessions.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Redis cache tier in front of the database (optional; without it only the database is seen and changed).
    #[arg(long, global = true, env = "SESSIONCTL_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Key prefix of the sessions in Redis.
    #[arg(long, global = true, env = "SESSIONCTL_REDIS_PREFIX", default_value = "sessionctl:")]
    pub redis_prefix: String,

    /// File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET to the keys themselves).
    #[arg(long, global = true, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub secret_file: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Print only errors (and the data asked for).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// Longest one database call may take (connecting included) before the command fails, e.g. 15s, 500ms; raise it for a long migrate.
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
}

impl Ctx {
    /// Whether JSON was asked for.
    pub fn json(&self) -> bool {
        self.global.output == OutputFormat::Json
    }

    /// The database URL as it may be shown.
    pub fn shown_database(&self) -> String {
        redact_url(&self.global.database_url)
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

    /// Connects the configured tiers (applying the schema) for admin work.
    pub async fn admin(&self) -> anyhow::Result<Admin> {
        let config = StoreConfig {
            database_url: Some(self.global.database_url.clone()),
            redis_url: self.global.redis_url.clone(),
            redis_prefix: Some(self.global.redis_prefix.clone()),
            memory_cache: None,
            options: StoreOptions::default()
                .with_cache_timeout(std::time::Duration::from_secs(5))
                .with_database_timeout(self.global.database_timeout),
        };
        let store = config.open().await.with_context(|| format!("cannot open {}", self.shown_database()))?;
        if let Some(cache) = store.cache() {
            // Fail now, in one line, rather than on each call with a cache that is down.
            let probe = sessionctl::SessionId::generate();
            cache.get(&probe).await.map_err(anyhow::Error::new).context("cannot reach Redis")?;
        }
        Ok(Admin::new(store, self.keys()?))
    }

    /// Notes that the cache tier was not touched, where it matters.
    pub fn note_database_only(&self) {
        if self.global.redis_url.is_none() {
            output::note(
                self.global.quiet,
                "note: no --redis-url given: only the database was changed; a cache in front of it may serve old copies until they expire",
            );
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx { global: cli.global };
    match cli.command {
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
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level. The daemon logs at info
/// level with timestamps (text or JSON); other commands only warnings.
pub fn init_logging(cli: &Cli) {
    let (daemon, json) = match &cli.command {
        Command::ServeCron(args) => (true, args.log_format == serve_cron::LogFormat::Json),
        _ => (false, false),
    };
    // sqlx warns about slow statements; on a one-shot command that is noise
    // next to the one-line result (and a busy machine makes it appear).
    let default = match (cli.global.quiet, daemon) {
        (true, _) => "error",
        (false, true) => "info",
        (false, false) => "warn,sqlx=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
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
        let text = cause.to_string();
        if i > 0 {
            if line.contains(&text) {
                continue;
            }
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    redact_urls_in(&line.replace('\n', " "))
}

fn redact_urls_in(text: &str) -> String {
    text.split(' ')
        .map(|word| if word.contains("://") { redact_url(word) } else { word.to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
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

/// The exit code for an error; `None` for a closed stdout (not an error).
pub fn exit_code(error: &anyhow::Error) -> Option<u8> {
    if error.downcast_ref::<output::BrokenPipe>().is_some() {
        return None;
    }
    let not_found = error.chain().any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::NotFound(_))));
    Some(if not_found { EXIT_NOT_FOUND } else { EXIT_ERROR })
}

/// The `sessions` word with its count.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Parses ids given on the command line; the first bad one is an error.
pub fn parse_ids(ids: &[String]) -> anyhow::Result<Vec<sessionctl::SessionId>> {
    ids.iter().map(|id| sessionctl::SessionId::parse(id).map_err(anyhow::Error::new)).collect()
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
