//! `sessionctl regenerate <ID>`: new id, same data, old id removed.

use clap::Args;
use serde_json::json;

use sessionctl::SessionId;

use super::output::line;
use super::{Access, Ctx};

/// Arguments of `regenerate`.
#[derive(Debug, Args)]
pub struct RegenerateArgs {
    /// The session id.
    pub id: String,
}

/// Moves the session and prints the new id (and cookie, with keys).
pub async fn run(ctx: &Ctx, args: RegenerateArgs) -> anyhow::Result<()> {
    let id = SessionId::parse(&args.id)?;
    let admin = ctx.admin(Access::Change).await?;
    let record = admin.regenerate(&id).await?;
    ctx.after_change(&admin)?;
    let cookie = admin.cookie_for(&record);
    if ctx.json() {
        return line(json!({"version": 1, "old_id": id.to_string(), "id": record.id.to_string(), "cookie": cookie}));
    }
    line(&record.id)?;
    if let Some(cookie) = cookie {
        line(format!("cookie: {cookie}"))?;
    }
    Ok(())
}
