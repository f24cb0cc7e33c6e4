//! `sessionctl delete <ID>...`: terminate sessions in both tiers.

use clap::Args;
use serde_json::json;

use sessionctl::Error;

use super::output::line;
use super::{Access, Ctx, check_session_args, confirm, plural, stored_keys};

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Sessions: ids, stored keys or cookie values.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Deletes the sessions.
pub async fn run(ctx: &Ctx, args: DeleteArgs) -> anyhow::Result<()> {
    check_session_args(&args.ids)?;
    let admin = ctx.admin(if args.dry_run { Access::Read } else { Access::Change }).await?;
    let ids = stored_keys(&admin, &args.ids)?;
    let existing = admin.existing(&ids).await?;
    let missing: Vec<String> = ids.iter().filter(|id| !existing.contains(id)).map(ToString::to_string).collect();
    let done = if args.dry_run {
        existing.clone()
    } else if existing.is_empty()
        || confirm(&format!("delete {}?", plural(existing.len(), "session", "sessions")), args.yes)?
    {
        admin.delete(&existing).await?
    } else {
        anyhow::bail!("not confirmed; nothing deleted");
    };
    if !args.dry_run && !done.is_empty() {
        ctx.after_change(&admin)?;
    }
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    if ctx.json() {
        line(
            json!({"version": 1, "dry_run": args.dry_run, "deleted": done.iter().map(ToString::to_string).collect::<Vec<_>>(), "not_found": missing}),
        )?;
    } else if !ctx.global.quiet {
        line(format!("{verb} {}", plural(done.len(), "session", "sessions")))?;
    }
    if !missing.is_empty() {
        return Err(Error::NotFound(format!("not found: {}", missing.join(", "))).into());
    }
    Ok(())
}
