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
    /// Keep this session of the user, by id, stored key or cookie ("log out other devices"): every other one goes, in one statement.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    pub except: Option<String>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Count what would be revoked, revoke nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Revokes the user's sessions.
pub async fn run(ctx: &Ctx, args: RevokeArgs) -> anyhow::Result<()> {
    if let Some(except) = &args.except {
        super::check_session_args(std::slice::from_ref(except))?;
    }
    let admin = ctx.admin(if args.dry_run { Access::Read } else { Access::Change }).await?;
    let keep = match &args.except {
        Some(except) => match admin.resolve(except)? {
            sessionctl::admin::Target::Stored(id) => Some(id),
            sessionctl::admin::Target::CookieOnly(_) => {
                anyhow::bail!("--except names a cookie-only session, which has no user: nothing to keep")
            }
        },
        None => None,
    };
    if let Some(keep) = &keep {
        let kept = match admin.current(keep).await {
            Ok(record) => Some(record),
            Err(Error::NotFound(_)) => None,
            Err(other) => return Err(other.into()),
        };
        match kept {
            Some(record) if record.user_id.as_deref() == Some(args.user.as_str()) => {
                if record.is_expired_at(sessionctl::record::now()) {
                    return Err(Error::NotFound(format!(
                        "session {keep} of user {:?} has expired: there is nothing to keep (revoke without --except)",
                        args.user
                    ))
                    .into());
                }
            }
            _ => return Err(Error::NotFound(format!("user {:?} has no session {keep} to keep", args.user)).into()),
        }
    }
    let count = admin.count_user(&args.user).await?.saturating_sub(u64::from(keep.is_some()));
    let revoked = if args.dry_run || count == 0 {
        count as usize
    } else if confirm(
        &format!("revoke {} of user {:?}?", plural(count as usize, "session", "sessions"), args.user),
        args.yes,
    )? {
        let revoked = match &keep {
            Some(keep) => admin.revoke_except(&args.user, keep).await?.len(),
            None => admin.revoke(&args.user).await?.len(),
        };
        ctx.after_change(&admin)?;
        revoked
    } else {
        anyhow::bail!("not confirmed; nothing revoked");
    };
    if ctx.json() {
        line(
            json!({"version": 1, "user": args.user, "kept": keep.as_ref().map(ToString::to_string), "dry_run": args.dry_run, "revoked": revoked}),
        )?;
    } else if !ctx.global.quiet {
        let verb = if args.dry_run { "would revoke" } else { "revoked" };
        let kept = keep.as_ref().map(|id| format!(", kept {id}")).unwrap_or_default();
        line(format!("{verb} {} of user {:?}{kept}", plural(revoked, "session", "sessions"), args.user))?;
    }
    if count == 0 && keep.is_none() {
        return Err(Error::NotFound(format!("user {:?} has no sessions", args.user)).into());
    }
    Ok(())
}
