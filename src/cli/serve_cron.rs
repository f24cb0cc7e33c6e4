//! `sessionctl serve-cron`: the purge on a cron schedule, as a daemon.
//!
//! Several replicas may run against one database: each scheduled tick is
//! claimed in the database (`purge_ticks`) by exactly one of them, which
//! purges while the others log that they skipped it; the advisory lock then
//! keeps that purge from overlapping a manual `purge-expired`. Replicas
//! compute the same tick from the schedule, so clock skew does not matter,
//! and a leader that dies takes nothing with it: the next tick is claimed
//! afresh. A failed run (database down, timeout) is logged, counted and
//! retried with backoff, never fatal. SIGTERM/SIGINT: the current batch
//! finishes, then exit 0; a call stuck on a hung database is abandoned
//! after a short grace, so the daemon always exits within seconds.
//!
//! `/healthz` answers 503 while the last run failed or the database does
//! not answer a probe (every few seconds, bounded by the database timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::IntoResponse as _;
use axum::routing::get;
use chrono::Utc;
use clap::{Args, ValueEnum};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;

use sessionctl::admin::Admin;
use sessionctl::purge::{self, PurgeEnd, PurgeProgress, StopFlag};

use super::purge_expired::{PurgeArgs, stop_on_signals};
use super::{Access, Ctx};

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
    /// Time zone the schedule is read in (an IANA name such as Europe/Paris; daylight saving time followed).
    #[arg(long, env = "CRON_TZ", default_value = "UTC", value_name = "TZ", value_parser = parse_timezone)]
    pub timezone: chrono_tz::Tz,
    /// Run one pass now and exit.
    #[arg(long)]
    pub once: bool,
    /// Also run a pass right after starting.
    #[arg(long)]
    pub run_on_start: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve /healthz and Prometheus /metrics on this address (e.g. 127.0.0.1:9187 or localhost:9187; :9187 for every IPv4 interface).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr)]
    pub metrics_addr: Option<SocketAddr>,
}

fn parse_timezone(text: &str) -> Result<chrono_tz::Tz, String> {
    if text.is_empty() {
        // `CRON_TZ=` in a crontab or an environment file: unset.
        return Ok(chrono_tz::UTC);
    }
    text.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("{text:?} is not a time zone: use an IANA name such as UTC, Europe/Paris or America/New_York")
    })
}

/// `HOST:PORT`, or `:PORT` for every interface (as Prometheus exporters take it).
fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_owned(),
    };
    std::net::ToSocketAddrs::to_socket_addrs(&full).ok().and_then(|mut addrs| addrs.next()).ok_or_else(|| {
        format!("{text:?} is not an address to listen on: use HOST:PORT such as 127.0.0.1:9187, or :9187")
    })
}

/// The next run of `schedule` after `now`, with the schedule read in `zone`.
fn next_tick(
    schedule: &cron::Schedule,
    zone: chrono_tz::Tz,
    now: chrono::DateTime<Utc>,
) -> Option<chrono::DateTime<Utc>> {
    schedule.after(&now.with_timezone(&zone)).next().map(|tick| tick.with_timezone(&Utc))
}

#[derive(Debug, Default)]
struct Metrics {
    /// The last run failed (cleared by the next success or skip).
    last_run_failed: AtomicBool,
    /// The last probe of the database failed.
    database_down: AtomicBool,
    runs: Counter,
    skipped: Counter,
    failures: Counter,
    deleted: Counter,
    last_success: Gauge<f64, AtomicU64>,
    last_duration: Gauge<f64, AtomicU64>,
}

impl Metrics {
    /// The registry `/metrics` is encoded from: its metrics share their
    /// values with these.
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix("sessionctl_purge");
        registry.register("runs", "Purge runs completed by this replica", self.runs.clone());
        registry.register(
            "skipped",
            "Ticks skipped because another replica claimed them (or held the purge lock)",
            self.skipped.clone(),
        );
        registry.register("failures", "Purge runs that failed", self.failures.clone());
        registry.register("deleted", "Expired sessions deleted by this replica", self.deleted.clone());
        registry.register_with_unit(
            "last_success_timestamp",
            "When the last successful run ended (Unix time; 0 before the first)",
            Unit::Seconds,
            self.last_success.clone(),
        );
        registry.register_with_unit(
            "last_duration",
            "How long the last successful run took",
            Unit::Seconds,
            self.last_duration.clone(),
        );
        registry
    }
}

/// The longest a client may take to send a request head, and the
/// largest head read: a client that trickles or floods it is dropped
/// instead of holding a connection.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Serves `/healthz` and `/metrics` until the process ends.
async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    let registry = Arc::new(metrics.registry());
    let app = axum::Router::new()
        .route("/healthz", get(move || healthz(metrics.clone())))
        .route("/metrics", get(move || metrics_page(registry.clone())));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::warn!(%error, "the metrics endpoint cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_buf_size(MAX_REQUEST_HEAD)
            .serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(app.clone()),
            );
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics connection ended");
            }
        });
    }
}

/// 200 while the database answers and the last run did not fail, else 503
/// with the reason.
async fn healthz(metrics: Arc<Metrics>) -> (StatusCode, &'static str) {
    if metrics.database_down.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
    } else if metrics.last_run_failed.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "last purge run failed\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

/// The metrics in the OpenMetrics text format (Prometheus reads it).
async fn metrics_page(registry: Arc<Registry>) -> axum::response::Response {
    let mut text = String::new();
    match encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

enum RunOutcome {
    Purged(PurgeProgress),
    Skipped(&'static str),
}

/// Who claims ticks, for the `purge_ticks` table and the logs.
fn claimant() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!("{}:{}", if host.is_empty() { "unknown-host" } else { host }, std::process::id())
}

/// Connects the tiers on first use (and after a failure).
async fn store_of(ctx: &Ctx, admin: &mut Option<Admin>) -> anyhow::Result<sessionctl::Store> {
    if admin.is_none() {
        *admin = Some(ctx.admin(Access::Read).await?);
    }
    Ok(admin.as_ref().expect("just set").store().clone())
}

async fn run_once(
    ctx: &Ctx,
    admin: &mut Option<Admin>,
    args: &ServeCronArgs,
    stop: &StopFlag,
    tick: Option<(chrono::DateTime<Utc>, &str)>,
    claimed: &mut bool,
) -> anyhow::Result<RunOutcome> {
    let store = store_of(ctx, admin).await?;
    if let Some((tick, claimant)) = tick {
        if !store.try_claim_tick(tick, claimant).await? {
            return Ok(RunOutcome::Skipped("another replica claimed this tick"));
        }
        *claimed = true;
    }
    let Some(lock) = purge::try_lead(&store).await? else {
        return Ok(RunOutcome::Skipped("another replica holds the purge lock"));
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

/// How long a run may go on after SIGTERM: the batch under way normally
/// ends well within it; a call stuck on a hung database is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Resolves `STOP_GRACE` after a stop is asked for.
async fn stopped_with_grace(stop: &StopFlag) {
    while !stop.is_raised() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(STOP_GRACE).await;
}

/// Every few seconds until stopped: does the database answer?
async fn probe_database(ctx: &Ctx, metrics: &Metrics, stop: &StopFlag) {
    const EVERY: Duration = Duration::from_secs(5);
    let mut admin: Option<Admin> = None;
    while !stop.is_raised() {
        let healthy = match store_of(ctx, &mut admin).await {
            Ok(store) => store.ping().await.is_ok(),
            Err(_) => false,
        };
        if !healthy {
            admin = None;
        }
        if metrics.database_down.swap(!healthy, Ordering::Relaxed) == healthy {
            tracing::warn!(healthy, "database probe changed");
        }
        let until = Utc::now() + chrono::Duration::from_std(EVERY).unwrap_or_default();
        if sleep_until(until, stop).await {
            break;
        }
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
    let claimant = claimant();
    tracing::info!(
        database = %ctx.shown_database(),
        schedule = %args.schedule,
        timezone = %args.timezone,
        %claimant,
        "serve-cron started"
    );
    let daemon = schedule_loop(ctx, &args, &stop, &metrics, &claimant);
    let result = if args.once || args.metrics_addr.is_none() {
        daemon.await
    } else {
        let probe = probe_database(ctx, &metrics, &stop);
        tokio::pin!(daemon, probe);
        tokio::select! {
            result = &mut daemon => result,
            () = &mut probe => daemon.await,
        }
    };
    tracing::info!("serve-cron stopped");
    result
}

async fn schedule_loop(
    ctx: &Ctx,
    args: &ServeCronArgs,
    stop: &StopFlag,
    metrics: &Metrics,
    claimant: &str,
) -> anyhow::Result<()> {
    let mut admin: Option<Admin> = None;
    let mut first = true;
    let mut failures_in_a_row: u32 = 0;
    // The scheduled tick this replica is serving: claimed once it gets
    // through; a retry after a failed claim claims the same tick again, a
    // retry after a failed purge of a claimed tick needs no new claim.
    let mut pending: Option<(chrono::DateTime<Utc>, bool)> = None;
    loop {
        let now = Utc::now();
        let next_tick = next_tick(&args.schedule, args.timezone, now);
        let due = if first && (args.once || args.run_on_start) {
            now
        } else if failures_in_a_row > 0 {
            let backoff = Duration::from_secs(5 * 2u64.pow(failures_in_a_row.min(6) - 1)).min(Duration::from_secs(300));
            let retry = now + chrono::Duration::from_std(backoff).unwrap_or_default();
            match next_tick {
                Some(tick) if tick <= retry => {
                    pending = Some((tick, false));
                    tick
                }
                _ => retry,
            }
        } else {
            match next_tick {
                Some(tick) => {
                    pending = Some((tick, false));
                    tick
                }
                None => {
                    tracing::info!("the schedule has no further runs; exiting");
                    return Ok(());
                }
            }
        };
        let scheduled = !(first && (args.once || args.run_on_start));
        first = false;
        if sleep_until(due, stop).await {
            break;
        }
        let claim = match pending {
            Some((tick, false)) if scheduled => Some((tick, claimant)),
            _ => None,
        };
        let tick = pending.map(|(tick, _)| tick.to_rfc3339()).unwrap_or_default();
        let mut claimed = false;
        let run = run_once(ctx, &mut admin, args, stop, claim, &mut claimed);
        let outcome = tokio::select! {
            outcome = run => outcome,
            () = stopped_with_grace(stop) => {
                tracing::warn!("stopping: abandoned a purge run that did not finish within {STOP_GRACE:?} of the signal");
                break;
            }
        };
        if claimed {
            pending = pending.map(|(tick, _)| (tick, true));
        }
        match outcome {
            Ok(RunOutcome::Purged(progress)) => {
                failures_in_a_row = 0;
                pending = None;
                metrics.last_run_failed.store(false, Ordering::Relaxed);
                metrics.runs.inc();
                metrics.deleted.inc_by(progress.deleted);
                metrics.last_success.set(Utc::now().timestamp_millis().max(0) as f64 / 1000.0);
                metrics.last_duration.set(progress.elapsed.as_secs_f64());
                tracing::info!(
                    deleted = progress.deleted,
                    duration_ms = progress.elapsed.as_millis() as u64,
                    batches = progress.batches,
                    longest_batch_ms = progress.longest_batch.as_millis() as u64,
                    batch_p99_ms = progress.batch_p99().as_millis() as u64,
                    longest_write_lock_ms = progress.longest_write_lock.as_millis() as u64,
                    interrupted = progress.end == Some(PurgeEnd::Interrupted),
                    tick,
                    "purge run"
                );
                if args.once && ctx.json() {
                    super::output::line(super::purge_expired::summary_json(&progress))?;
                }
            }
            Ok(RunOutcome::Skipped(why)) => {
                failures_in_a_row = 0;
                pending = None;
                metrics.last_run_failed.store(false, Ordering::Relaxed);
                metrics.skipped.inc();
                tracing::info!(tick, "purge skipped: {why}");
                if args.once && ctx.json() {
                    super::output::line(serde_json::json!({"version": 1, "skipped": why.to_string()}))?;
                }
            }
            Err(error) => {
                failures_in_a_row += 1;
                metrics.last_run_failed.store(true, Ordering::Relaxed);
                metrics.failures.inc();
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn schedules_are_read_in_utc_or_the_zone_given() {
        let schedule = purge::parse_schedule("0 3 * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        assert_eq!(next_tick(&schedule, chrono_tz::UTC, now), Some(Utc.with_ymd_and_hms(2026, 7, 2, 3, 0, 0).unwrap()));
        // 3 a.m. in Paris is 1 a.m. UTC in summer, 2 a.m. in winter.
        let paris = parse_timezone("Europe/Paris").unwrap();
        assert_eq!(next_tick(&schedule, paris, now), Some(Utc.with_ymd_and_hms(2026, 7, 2, 1, 0, 0).unwrap()));
        let winter = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        assert_eq!(next_tick(&schedule, paris, winter), Some(Utc.with_ymd_and_hms(2026, 12, 2, 2, 0, 0).unwrap()));
        assert!(parse_timezone("Mars/Olympus").unwrap_err().contains("IANA"));
    }

    #[test]
    fn metrics_addresses_take_a_bare_port() {
        assert_eq!(parse_listen_addr(":9187"), Ok("0.0.0.0:9187".parse().unwrap()));
        assert_eq!(parse_listen_addr("127.0.0.1:9187"), Ok("127.0.0.1:9187".parse().unwrap()));
        assert!(parse_listen_addr("9187").is_err());
    }
}
