//! `sessionctl expire <ID>... | --user U`: expire now in both tiers.

use clap::Args;
use serde_json::json;

use sessionctl::Error;

use super::output::line;
use super::{Access, Ctx, check_session_args, plural, stored_keys};

/// Arguments of `expire`.
#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// Sessions: ids, stored keys or cookie values.
    #[arg(required_unless_present = "user", conflicts_with = "user")]
    pub ids: Vec<String>,
    /// Every live session of this user instead.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

/// Expires the sessions.
pub async fn run(ctx: &Ctx, args: ExpireArgs) -> anyhow::Result<()> {
    check_session_args(&args.ids)?;
    let admin = ctx.admin(Access::Change).await?;
    let ids = stored_keys(&admin, &args.ids)?;
    let expired = match &args.user {
        Some(user) => admin.expire_user(user).await?,
        None => admin.expire(&ids).await?,
    };
    if !expired.is_empty() {
        ctx.after_change(&admin)?;
    }
    let missing: Vec<String> = ids.iter().filter(|id| !expired.contains(id)).map(ToString::to_string).collect();
    if ctx.json() {
        line(
            json!({"version": 1, "expired": expired.iter().map(ToString::to_string).collect::<Vec<_>>(), "not_found": missing}),
        )?;
    } else if !ctx.global.quiet {
        line(format!("expired {}", plural(expired.len(), "session", "sessions")))?;
    }
    if !missing.is_empty() {
        return Err(Error::NotFound(format!("not found: {}", missing.join(", "))).into());
    }
    if args.user.is_some() && expired.is_empty() {
        return Err(Error::NotFound(format!("user {:?} has no live sessions", args.user.unwrap_or_default())).into());
    }
    Ok(())
}
