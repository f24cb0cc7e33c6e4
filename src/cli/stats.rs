//! `sessionctl stats`: counts, sizes, expiry range.

use clap::Args;
use serde_json::{Value, json};

use sessionctl::record;
use sessionctl::store::{StatsOptions, stats::DEFAULT_SAMPLE_ROWS};

use super::output::{self, line, when};
use super::{Access, Ctx};

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Read every row (a progress bar on a terminal) instead of estimating
    /// a large table's counts and distributions from a sample
    #[arg(long)]
    pub exact: bool,

    /// Rows in the sample; tables of up to ten times this are read whole
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_SAMPLE_ROWS, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample: u32,
}

/// Prints the figures.
pub async fn run(ctx: &Ctx, args: StatsArgs) -> anyhow::Result<()> {
    let admin = ctx.admin(Access::Read).await?;
    let options = StatsOptions::default().with_exact(args.exact).with_sample_rows(args.sample);
    let bar = output::table_progress(ctx.global.quiet || !args.exact, "");
    let stats = admin
        .stats(options, &mut |share| {
            if let Some(bar) = &bar {
                bar.set_position((share * 1000.0) as u64);
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let stats = stats?;
    let db = &stats.database;
    let expired = db.total.saturating_sub(db.active);
    let sample = db.sample.map(|s| json!({"rows": s.rows, "share": s.share}));
    let unreachable = ctx.cache_unreachable.get();
    if ctx.json() {
        let cache = match (&stats.cache, unreachable) {
            (Some(c), _) => {
                json!({"cached": c.cached, "in_both": c.in_both, "cache_only": c.cached - c.in_both, "database_only": db.total.saturating_sub(c.in_both)})
            }
            (None, Some(reason)) => json!({"unreachable": reason}),
            (None, None) => Value::Null,
        };
        return line(json!({
            "version": 1,
            "total": db.total,
            "active": db.active,
            "expired": expired,
            "with_user": db.with_user,
            "exact": db.sample.is_none(),
            "sample": sample,
            "size": {"min": db.size_min, "median": db.size_median, "p99": db.size_p99, "max": db.size_max},
            "oldest_expiry": db.oldest_expiry.map(output::utc),
            "newest_expiry": db.newest_expiry.map(output::utc),
            "cache": cache,
        }));
    }
    let now = record::now();
    let mut table = output::table();
    let mut row = |name: &str, value: String| {
        table.add_row(vec![name.to_owned(), value]);
    };
    // Estimates say so: "≈" before a scaled count, "(sample)" after a
    // figure that is the sample's own.
    let (about, of_sample) = if db.sample.is_some() { ("≈ ", " (sample)") } else { ("", "") };
    row("sessions", format!("{about}{}", db.total));
    row("active", format!("{about}{}", db.active));
    row("expired (not purged yet)", format!("{about}{expired}"));
    row("with a user id", db.with_user.to_string());
    row(
        "size min / median / p99 / max",
        format!(
            "{} / {} / {} / {}{of_sample}",
            output::size(db.size_min),
            output::size(db.size_median),
            output::size(db.size_p99),
            output::size(db.size_max)
        ),
    );
    let expiry = |t: Option<_>| t.map_or("-".into(), |t| format!("{}{of_sample}", when(t, now, "expired ")));
    row("oldest expiry", expiry(db.oldest_expiry));
    row("newest expiry", expiry(db.newest_expiry));
    if let Some(sample) = db.sample {
        row(
            "estimated from",
            format!(
                "a sample of {} rows ({:.2}% of the table); --exact reads every row",
                sample.rows,
                sample.share * 100.0
            ),
        );
    }
    match stats.cache {
        Some(cache) => {
            row("in cache", cache.cached.to_string());
            row("in cache and database", cache.in_both.to_string());
            row("in cache only", (cache.cached - cache.in_both).to_string());
            row("in database only", db.total.saturating_sub(cache.in_both).to_string());
        }
        None => match unreachable {
            Some(reason) => row("cache", format!("unreachable: {reason}")),
            None => row("cache", "not configured (pass --redis-url to count it)".into()),
        },
    }
    line(table)
}
