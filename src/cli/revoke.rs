//! `sessionctl revoke --user U`: delete every session of a user.

use clap::Args;
use serde_json::json;

use sessionctl::Error;

use super::output::line;
use super::{Access, Ctx, confirm, plural};

/// Arguments of `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The user whose sessions go.
    #[arg(long, value_name = "USER")]
    pub user: String,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Count what would be revoked, revoke nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Revokes the user's sessions.
pub async fn run(ctx: &Ctx, args: RevokeArgs) -> anyhow::Result<()> {
    let admin = ctx.admin(Access::Change).await?;
    let count = admin.count_user(&args.user).await?;
    let revoked = if args.dry_run || count == 0 {
        count as usize
    } else if confirm(
        &format!("revoke {} of user {:?}?", plural(count as usize, "session", "sessions"), args.user),
        args.yes,
    )? {
        let revoked = admin.revoke(&args.user).await?.len();
        ctx.note_database_only();
        revoked
    } else {
        anyhow::bail!("not confirmed; nothing revoked");
    };
    if ctx.json() {
        line(json!({"version": 1, "user": args.user, "dry_run": args.dry_run, "revoked": revoked}))?;
    } else if !ctx.global.quiet {
        let verb = if args.dry_run { "would revoke" } else { "revoked" };
        line(format!("{verb} {} of user {:?}", plural(revoked, "session", "sessions"), args.user))?;
    }
    if count == 0 {
        return Err(Error::NotFound(format!("user {:?} has no sessions", args.user)).into());
    }
    Ok(())
}
