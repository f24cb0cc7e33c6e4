//! `sessionctl migrate`: create or upgrade the schema.

use anyhow::Context as _;
use clap::Args;

use sessionctl::error::redact_url;
use sessionctl::store::connect_database;

use super::{GlobalOpts, OutputFormat};

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {}

/// Applies the embedded migrations to the configured database.
pub async fn run(global: &GlobalOpts, _args: MigrateArgs) -> anyhow::Result<()> {
    let shown = redact_url(&global.database_url);
    let database = connect_database(&global.database_url).await.with_context(|| format!("cannot open {shown}"))?;
    database.migrate().await.with_context(|| format!("cannot migrate {shown}"))?;
    match global.output {
        OutputFormat::Json => {
            println!("{}", serde_json::json!({"version": 1, "migrated": true, "backend": database.backend()}))
        }
        OutputFormat::Table if !global.quiet => println!("schema up to date ({}: {shown})", database.backend()),
        OutputFormat::Table => {}
    }
    Ok(())
}
