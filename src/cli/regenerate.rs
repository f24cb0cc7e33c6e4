//! `sessionctl regenerate <ID>`: new id, same data, old id removed.

use clap::Args;
use serde_json::json;

use super::output::line;
use super::{Access, Ctx};

/// Arguments of `regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// The session id, stored key, or cookie value.
    pub id: String,
}

/// Moves the session and prints its new stored key (and cookie, with keys).
pub async fn run(ctx: &Ctx, args: RegenerateArgs) -> anyhow::Result<()> {
    super::check_session_args(std::slice::from_ref(&args.id))?;
    let admin = ctx.admin(Access::Change).await?;
    let id = super::stored_key(&admin, &args.id)?;
    admin.current(&id).await?;
    if !admin.has_keys() {
        // Only the new id's key is stored: without the keys to print the
        // cookie, nothing could ever name the session again.
        anyhow::bail!(
            "regenerate needs the cookie keys (--secret-file or SESSIONCTL_SECRET) to print the session's new cookie: without it the session could never be reached again (to end it, use delete)"
        );
    }
    let (new_id, record) = admin.regenerate(&id).await?;
    ctx.after_change(&admin)?;
    let cookie = admin.cookie_for(&new_id, record.expires_at);
    if ctx.json() {
        return line(json!({"version": 1, "old_id": id.to_string(), "id": record.id.to_string(), "cookie": cookie}));
    }
    line(&record.id)?;
    if let Some(cookie) = cookie {
        line(format!("cookie: {cookie}"))?;
    }
    Ok(())
}
