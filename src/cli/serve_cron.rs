//! `sessionctl serve-cron`: the purge on a cron schedule, as a daemon.
//!
//! Several replicas may run against one PostgreSQL: each tick, the one that
//! gets the advisory lock purges and the others log that they skipped. A
//! failed run (database down, timeout) is logged and retried with backoff,
//! never fatal. SIGTERM/SIGINT: the current batch finishes, then exit 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use sessionctl::admin::Admin;
use sessionctl::purge::{self, PurgeEnd, PurgeProgress, StopFlag};

use super::Ctx;
use super::purge_expired::{PurgeArgs, stop_on_signals};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `serve-cron`.
#[derive(Debug, Args)]
pub struct ServeCronArgs {
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// When to purge, in cron syntax: 5 fields as in crontab (min hour day month weekday), or 6-7 with seconds first.
    #[arg(long, default_value = "*/15 * * * *", value_parser = purge::parse_schedule)]
    pub schedule: cron::Schedule,
    /// Run one pass now and exit.
    #[arg(long)]
    pub once: bool,
    /// Also run a pass right after starting.
    #[arg(long)]
    pub run_on_start: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct Metrics {
    runs: AtomicU64,
    skipped: AtomicU64,
    failures: AtomicU64,
    deleted: AtomicU64,
    last_success_ms: AtomicU64,
    last_duration_ms: AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        };
        metric(
            "sessionctl_purge_runs_total",
            "counter",
            "Purge runs completed by this replica.",
            get(&self.runs).to_string(),
        );
        metric(
            "sessionctl_purge_skipped_total",
            "counter",
            "Ticks skipped because another replica held the purge lock.",
            get(&self.skipped).to_string(),
        );
        metric(
            "sessionctl_purge_failures_total",
            "counter",
            "Purge runs that failed.",
            get(&self.failures).to_string(),
        );
        metric(
            "sessionctl_purge_deleted_total",
            "counter",
            "Expired sessions deleted by this replica.",
            get(&self.deleted).to_string(),
        );
        let last = get(&self.last_success_ms);
        metric(
            "sessionctl_purge_last_success_timestamp_seconds",
            "gauge",
            "When the last successful run ended (Unix time; 0 before the first).",
            format!("{:.3}", last as f64 / 1000.0),
        );
        metric(
            "sessionctl_purge_last_duration_seconds",
            "gauge",
            "How long the last successful run took.",
            format!("{:.3}", get(&self.last_duration_ms) as f64 / 1000.0),
        );
        text
    }
}

async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else { continue };
        tokio::spawn(answer(socket, metrics.clone()));
    }
}

/// The longest request head the metrics endpoint reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Answers one request on `socket`, then closes it.
///
/// The whole request head is read first, however many segments it came in:
/// answering after a partial read would route on a truncated path, and closing
/// a socket with unread bytes makes the kernel reset the connection, so the
/// client would lose the answer.
async fn answer(mut socket: tokio::net::TcpStream, metrics: Arc<Metrics>) {
    let mut head = Vec::with_capacity(512);
    let read_head = async {
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
            if head.len() >= MAX_REQUEST_HEAD {
                return false;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        true
    };
    let complete = tokio::time::timeout(Duration::from_secs(5), read_head).await.unwrap_or(false);
    let request = String::from_utf8_lossy(&head);
    let path = request.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("");
    let (status, content_type, body) = match path {
        _ if !complete => ("400 Bad Request", "text/plain", "bad request\n".to_owned()),
        "/healthz" => ("200 OK", "text/plain", "ok\n".to_owned()),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if socket.write_all(response.as_bytes()).await.is_ok() {
        let _ = socket.shutdown().await;
    }
}

enum RunOutcome {
    Purged(PurgeProgress),
    Skipped,
}

async fn run_once(
    ctx: &Ctx,
    admin: &mut Option<Admin>,
    args: &ServeCronArgs,
    stop: &StopFlag,
) -> anyhow::Result<RunOutcome> {
    if admin.is_none() {
        *admin = Some(ctx.admin().await?);
    }
    let store = admin.as_ref().expect("just set").store().clone();
    let Some(lock) = purge::try_lead(&store).await? else {
        return Ok(RunOutcome::Skipped);
    };
    let result = purge::purge_expired(&store, &args.purge.options(), stop, |_| {}).await;
    let released = lock.release().await;
    let progress = result?;
    released?;
    Ok(RunOutcome::Purged(progress))
}

/// Sleeps until `deadline` or until a stop is asked for; true when stopped.
async fn sleep_until(deadline: chrono::DateTime<Utc>, stop: &StopFlag) -> bool {
    loop {
        if stop.is_raised() {
            return true;
        }
        let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return false;
        }
        tokio::time::sleep(left.min(Duration::from_millis(200))).await;
    }
}

/// Runs the daemon.
pub async fn run(ctx: &Ctx, args: ServeCronArgs) -> anyhow::Result<()> {
    let stop = StopFlag::new();
    stop_on_signals(&stop);
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = args.metrics_addr {
        let listener =
            TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!(%addr, "serving /healthz and /metrics");
        tokio::spawn(serve_metrics(listener, metrics.clone()));
    }
    tracing::info!(database = %ctx.shown_database(), schedule = %args.schedule, "serve-cron started");
    let mut admin: Option<Admin> = None;
    let mut first = true;
    let mut failures_in_a_row: u32 = 0;
    loop {
        let now = Utc::now();
        let next_tick = args.schedule.after(&now).next();
        let due = if first && (args.once || args.run_on_start) {
            now
        } else if failures_in_a_row > 0 {
            let backoff = Duration::from_secs(5 * 2u64.pow(failures_in_a_row.min(6) - 1)).min(Duration::from_secs(300));
            let retry = now + chrono::Duration::from_std(backoff).unwrap_or_default();
            next_tick.map_or(retry, |tick| tick.min(retry))
        } else {
            match next_tick {
                Some(tick) => tick,
                None => {
                    tracing::info!("the schedule has no further runs; exiting");
                    return Ok(());
                }
            }
        };
        first = false;
        if sleep_until(due, &stop).await {
            break;
        }
        match run_once(ctx, &mut admin, &args, &stop).await {
            Ok(RunOutcome::Purged(progress)) => {
                failures_in_a_row = 0;
                metrics.runs.fetch_add(1, Ordering::Relaxed);
                metrics.deleted.fetch_add(progress.deleted, Ordering::Relaxed);
                metrics.last_success_ms.store(Utc::now().timestamp_millis().max(0) as u64, Ordering::Relaxed);
                metrics.last_duration_ms.store(progress.elapsed.as_millis() as u64, Ordering::Relaxed);
                tracing::info!(
                    deleted = progress.deleted,
                    duration_ms = progress.elapsed.as_millis() as u64,
                    batches = progress.batches,
                    longest_batch_ms = progress.longest_batch.as_millis() as u64,
                    longest_write_lock_ms = progress.longest_write_lock.as_millis() as u64,
                    interrupted = progress.end == Some(PurgeEnd::Interrupted),
                    "purge run"
                );
            }
            Ok(RunOutcome::Skipped) => {
                metrics.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::info!("purge skipped: another replica holds the purge lock");
            }
            Err(error) => {
                failures_in_a_row += 1;
                metrics.failures.fetch_add(1, Ordering::Relaxed);
                // Reconnect next time: the database may have restarted.
                admin = None;
                tracing::error!(error = %super::one_line(&error), "purge run failed; will retry");
                if args.once {
                    return Err(error);
                }
            }
        }
        if args.once || stop.is_raised() {
            break;
        }
    }
    tracing::info!("serve-cron stopped");
    Ok(())
}
