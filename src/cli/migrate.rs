//! `sessionctl migrate`: create or upgrade the schema.

use anyhow::Context as _;
use clap::Args;

use sessionctl::store::connect_database_with_timeout;

use super::Ctx;
use super::output::line;

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {}

/// Applies the embedded migrations to the configured database.
pub async fn run(ctx: &Ctx, _args: MigrateArgs) -> anyhow::Result<()> {
    let shown = ctx.shown_database();
    let database = connect_database_with_timeout(&ctx.global.database_url, ctx.global.database_timeout)
        .await
        .with_context(|| format!("cannot open {shown}"))?;
    database.migrate().await.with_context(|| format!("cannot migrate {shown}"))?;
    if ctx.json() {
        return line(serde_json::json!({"version": 1, "migrated": true, "backend": database.backend()}));
    }
    if !ctx.global.quiet {
        line(format!("schema up to date ({}: {shown})", database.backend()))?;
    }
    Ok(())
}
