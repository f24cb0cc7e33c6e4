//! `sessionctl purge-expired`: delete expired sessions in short batches.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use sessionctl::purge::{self, PurgeEnd, PurgeOptions, PurgeProgress, StopFlag, parse_duration};

use super::output::{self, line};
use super::{Access, Ctx};

/// What a purge run is told, shared with `serve-cron`.
#[derive(Debug, Clone, Args)]
pub struct PurgeArgs {
    /// Rows walked per batch; each batch is one short write transaction.
    #[arg(long, default_value_t = purge::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_size: u32,
    /// Grace period: only purge sessions expired at least this long ago (e.g. 1h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub older_than: Duration,
    /// Stop cleanly after this long, keeping what was done (e.g. 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<Duration>,
}

impl PurgeArgs {
    pub fn options(&self) -> PurgeOptions {
        PurgeOptions::default()
            .with_batch_size(self.batch_size)
            .with_older_than(self.older_than)
            .with_max_duration(self.max_duration)
    }
}

/// Arguments of `purge-expired`.
#[derive(Debug, Args)]
pub struct PurgeExpiredArgs {
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// Count what would be purged, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Raises `stop` on Ctrl-C or SIGTERM (the current batch still finishes).
pub fn stop_on_signals(stop: &StopFlag) {
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => CTRL_C.store(true, std::sync::atomic::Ordering::Relaxed),
            _ = term.recv() => {}
        }
        tracing::info!("stopping after the current batch");
        stop.raise();
    });
}

/// Whether the stop came from Ctrl-C (SIGINT): the command then exits 130,
/// as a shell expects of an interrupted command; SIGTERM (a service
/// manager's polite stop) exits 0.
static CTRL_C: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn end_word(end: Option<PurgeEnd>) -> &'static str {
    match end {
        Some(PurgeEnd::Finished) | None => "finished",
        Some(PurgeEnd::TimeBudget) => "time budget reached",
        Some(PurgeEnd::Interrupted) => "interrupted",
        Some(_) => "stopped",
    }
}

/// The run's summary as JSON (also logged by serve-cron).
pub fn summary_json(progress: &PurgeProgress) -> serde_json::Value {
    json!({
        "version": 1,
        "deleted": progress.deleted,
        "remaining_expired_estimate": progress.remaining_estimate(),
        "ended": end_word(progress.end),
        "batches": progress.batches,
        "elapsed_ms": progress.elapsed.as_millis() as u64,
        "rows_per_second": progress.rate().round() as u64,
        "longest_batch_ms": progress.longest_batch.as_millis() as u64,
        "batch_p99_ms": progress.batch_p99().as_millis() as u64,
        "longest_write_lock_ms": progress.longest_write_lock.as_millis() as u64,
        "cutoff": output::utc(progress.cutoff),
    })
}

/// Runs the purge.
pub async fn run(ctx: &Ctx, args: PurgeExpiredArgs) -> anyhow::Result<()> {
    let admin = ctx.admin(Access::Read).await?;
    let options = args.purge.options();
    if args.dry_run {
        let count = purge::count_expired(admin.store(), &options).await?;
        if ctx.json() {
            return line(json!({"version": 1, "dry_run": true, "would_delete": count}));
        }
        return line(format!("would purge {}", super::plural(count as usize, "expired session", "expired sessions")));
    }
    let stop = StopFlag::new();
    stop_on_signals(&stop);
    let bar = output::table_progress(ctx.global.quiet, " — {msg}");
    let progress = purge::purge_expired(admin.store(), &options, &stop, |p| {
        if let Some(bar) = &bar {
            bar.set_position((p.walked * 1000.0) as u64);
            bar.set_message(format!("{} deleted, ~{} to go", p.deleted, p.remaining_estimate()));
        }
    })
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let progress = progress?;
    summary(ctx, &progress)?;
    if progress.end == Some(PurgeEnd::Interrupted) && CTRL_C.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(super::Interrupted.into());
    }
    Ok(())
}

/// The run's summary: JSON, or a table unless quiet.
fn summary(ctx: &Ctx, progress: &PurgeProgress) -> anyhow::Result<()> {
    if ctx.json() {
        return line(summary_json(progress));
    }
    if ctx.global.quiet {
        return Ok(());
    }
    let mut table = output::table();
    let mut row = |name: &str, value: String| {
        table.add_row(vec![name.to_owned(), value]);
    };
    row("deleted", progress.deleted.to_string());
    row(
        "remaining expired",
        if progress.end == Some(PurgeEnd::Finished) {
            "0".into()
        } else {
            format!("~{} (estimate)", progress.remaining_estimate())
        },
    );
    row("ended", end_word(progress.end).into());
    row("elapsed", format!("{:.2} s", progress.elapsed.as_secs_f64()));
    row("rate", format!("{:.0} rows/s", progress.rate()));
    row(
        "batches",
        format!(
            "{} (p99 {} ms, longest {} ms, write lock held at most {} ms)",
            progress.batches,
            progress.batch_p99().as_millis(),
            progress.longest_batch.as_millis(),
            progress.longest_write_lock.as_millis()
        ),
    );
    row("cutoff", output::utc(progress.cutoff));
    line(table)
}
