//! `sessionctl stats`: counts, sizes, expiry range.

use clap::Args;
use serde_json::json;

use sessionctl::record;

use super::Ctx;
use super::output::{self, line, when};

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {}

/// Prints the figures.
pub async fn run(ctx: &Ctx, _args: StatsArgs) -> anyhow::Result<()> {
    let admin = ctx.admin().await?;
    let stats = admin.stats().await?;
    let db = &stats.database;
    let expired = db.total - db.active;
    if ctx.json() {
        let cache = stats.cache.map(|c| {
            json!({"cached": c.cached, "in_both": c.in_both, "cache_only": c.cached - c.in_both, "database_only": db.total.saturating_sub(c.in_both)})
        });
        return line(json!({
            "version": 1,
            "total": db.total,
            "active": db.active,
            "expired": expired,
            "with_user": db.with_user,
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
    row("sessions", db.total.to_string());
    row("active", db.active.to_string());
    row("expired (not purged yet)", expired.to_string());
    row("with a user id", db.with_user.to_string());
    row(
        "size min / median / p99 / max",
        format!("{} / {} / {} / {} bytes", db.size_min, db.size_median, db.size_p99, db.size_max),
    );
    row("oldest expiry", db.oldest_expiry.map_or("-".into(), |t| when(t, now, "expired ")));
    row("newest expiry", db.newest_expiry.map_or("-".into(), |t| when(t, now, "expired ")));
    match stats.cache {
        Some(cache) => {
            row("in cache", cache.cached.to_string());
            row("in cache and database", cache.in_both.to_string());
            row("in cache only", (cache.cached - cache.in_both).to_string());
            row("in database only", db.total.saturating_sub(cache.in_both).to_string());
        }
        None => row("cache", "not configured (pass --redis-url to count it)".into()),
    }
    line(table)
}
