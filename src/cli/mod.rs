//! The command line: clap definitions, shared options and dispatch. Each
//! subcommand lives in its own file and is a thin adapter over the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use sessionctl::error::redact_url;

mod migrate;

/// Exit code for an error.
pub const EXIT_ERROR: u8 = 1;

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
#[derive(Debug, Args)]
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

    /// Redis cache tier in front of the database (optional).
    #[arg(long, global = true, env = "SESSIONCTL_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// File holding the cookie keys, one per line, newest first (or set SESSIONCTL_SECRET).
    #[arg(long, global = true, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Print only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable tables.
    Table,
    /// Stable JSON for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the session schema.
    Migrate(migrate::MigrateArgs),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(args) => migrate::run(&cli.global, args).await,
    }
}

/// Logs to stderr; `RUST_LOG` overrides the level.
pub fn init_logging(global: &GlobalOpts) {
    let default = if global.quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).without_time().try_init();
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

/// The exit code for an error.
pub fn exit_code(_error: &anyhow::Error) -> u8 {
    EXIT_ERROR
}
