//! `sessionctl migrate`: create or upgrade the schema, or (`--check`) say
//! whether it is behind.

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use sessionctl::store::{connect_database_with_timeout, connect_existing_database};

use super::Ctx;
use super::output::line;

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Change nothing: list the pending migrations, and exit 1 when there are any (for deploy pipelines).
    #[arg(long)]
    pub check: bool,
}

/// Applies the embedded migrations to the configured database.
pub async fn run(ctx: &Ctx, args: MigrateArgs) -> anyhow::Result<()> {
    let shown = ctx.shown_database();
    if args.check {
        return check(ctx, &shown).await;
    }
    let database = connect_database_with_timeout(ctx.database_url(), ctx.global.database_timeout)
        .await
        .with_context(|| format!("cannot open {shown}"))?;
    // A schema newer than this build, dirty or changed is reported as
    // such (not as the migrator's error), and an up-to-date one is left
    // alone: a role without DDL rights learns the schema is current.
    let before = database.schema_status().await.with_context(|| format!("cannot migrate {shown}"))?;
    let quiet = ctx.global.quiet || ctx.json();
    let mut next_report = 100_000;
    let moved = sessionctl::store::upgrade(database.as_ref(), &before, |moved| {
        if !quiet && moved >= next_report {
            eprintln!("moved {moved} sessions to their keys so far");
            next_report = moved + 100_000;
        }
    })
    .await
    .with_context(|| format!("cannot migrate {shown}"))?;
    let evicted = evict_cached_ids(ctx, database.as_ref(), quiet).await?;
    let applied = before.pending;
    if ctx.json() {
        return line(json!({
            "version": 1,
            "migrated": true,
            "backend": database.backend(),
            "applied": applied.iter().map(|s| json!({"version": s.version, "description": s.description})).collect::<Vec<_>>(),
            "moved_to_keys": moved,
            "cache_entries_removed": evicted,
        }));
    }
    if !ctx.global.quiet {
        for step in applied.iter().filter(|step| **step != sessionctl::store::MOVE_TO_KEYS) {
            line(format!("applied {step}"))?;
        }
        if moved > 0 || applied.contains(&sessionctl::store::MOVE_TO_KEYS) {
            line(format!("moved {moved} sessions stored under their id to their key"))?;
        }
        if let Some(evicted) = evicted.filter(|n| *n > 0) {
            line(format!("removed {evicted} entries the apps' Redis held under a session id"))?;
        }
        if moved > 0 {
            let vacuum = if database.backend() == "sqlite" {
                "VACUUM` then `PRAGMA wal_checkpoint(TRUNCATE)"
            } else {
                "VACUUM FULL sessions"
            };
            line(format!(
                "no row holds an id now; pages of the database files may, until `{vacuum}` rewrites them (it locks the table while it runs)"
            ))?;
        }
        line(format!("schema up to date ({}: {shown})", database.backend()))?;
    }
    Ok(())
}

/// `--check`: reads the schema version and changes nothing (a read-only
/// role can run it).
async fn check(ctx: &Ctx, shown: &str) -> anyhow::Result<()> {
    let database = connect_existing_database(ctx.database_url(), ctx.global.database_timeout)
        .await
        .with_context(|| format!("cannot open {shown}"))?;
    let status = database.schema_status().await.with_context(|| format!("cannot read the schema of {shown}"))?;
    if ctx.json() {
        line(json!({
            "version": 1,
            "backend": status.backend,
            "up_to_date": status.is_current(),
            "applied_count": status.applied,
            "pending": status.pending.iter().map(|s| json!({"version": s.version, "description": s.description})).collect::<Vec<_>>(),
        }))?;
    } else {
        for step in &status.pending {
            line(format!("pending {step}"))?;
        }
        if status.is_current() && !ctx.global.quiet {
            line(format!("schema up to date ({}: {shown})", status.backend))?;
        }
    }
    if status.is_current() {
        return Ok(());
    }
    anyhow::bail!(
        "{} pending on {shown}: run `sessionctl migrate`",
        super::plural(status.pending.len(), "migration", "migrations")
    )
}

/// Removes what an older build cached in Redis under a session id, when
/// `--redis-url` reaches the apps' Redis; without it, says that such
/// entries stay until their sessions expire. `None` when nothing was asked.
async fn evict_cached_ids(
    ctx: &Ctx,
    database: &dyn sessionctl::DatabaseTier,
    quiet: bool,
) -> anyhow::Result<Option<u64>> {
    let recorded = database.recorded_cache().await.ok().flatten();
    let recorded_prefix = super::recorded_redis_prefix(recorded.as_ref());
    let Some(url) = &ctx.global.redis_url else {
        if recorded_prefix.is_some() && !quiet {
            eprintln!(
                "note: entries an older build cached in the apps' Redis under a session id stay there until their sessions expire; pass --redis-url to remove them"
            );
        }
        return Ok(None);
    };
    let prefix = ctx.redis_prefix(recorded_prefix);
    let cache = sessionctl::store::redis::RedisCache::connect(url, &prefix, super::CACHE_TIMEOUT)?;
    let removed =
        cache.evict_entries_under_ids().await.context("cannot remove the entries cached under a session id")?;
    Ok(Some(removed))
}
