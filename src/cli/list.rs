//! `sessionctl list`: sessions by expiry, streamed page by page.

use clap::Args;
use sessionctl::SessionKey;
use sessionctl::store::Device;

use sessionctl::admin::ExportLine;
use sessionctl::record;
use sessionctl::{Filter, StateFilter};

use super::output::{self, line, relative};
use super::{Access, Ctx};

/// Which sessions: shared by `list` and `export`.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only sessions that have not expired.
    #[arg(long, conflicts_with = "expired")]
    pub active: bool,
    /// Only expired sessions (not purged yet).
    #[arg(long)]
    pub expired: bool,
    /// Only this user's sessions.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Only sessions whose data has this top-level key.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// At most this many sessions.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

impl FilterArgs {
    pub fn filter(&self) -> Filter {
        let state = match (self.active, self.expired) {
            (true, _) => StateFilter::Active,
            (_, true) => StateFilter::Expired,
            _ => StateFilter::All,
        };
        let mut filter = Filter::state(state);
        filter.user_id.clone_from(&self.user);
        filter.key.clone_from(&self.key);
        filter
    }
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Prints the sessions: a table per page (500 sessions, then up to 10,000), or JSON lines.
pub async fn run(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let admin = ctx.admin(Access::Read).await?;
    // A user's sessions are their devices: where each was last seen.
    let devices: Option<std::collections::HashMap<SessionKey, Device>> = match &args.filter.user {
        Some(user) if !ctx.json() => {
            Some(admin.user_sessions(user).await?.into_iter().map(|s| (s.id.clone(), s.device)).collect())
        }
        _ => None,
    };
    let mut lister = admin.list(args.filter.filter(), args.filter.limit);
    let mut total = 0usize;
    loop {
        let page = lister.next_page().await?;
        if page.is_empty() {
            break;
        }
        total += page.len();
        if ctx.json() {
            for record in &page {
                line(ExportLine::of_record(record))?;
            }
            continue;
        }
        let now = record::now();
        let mut table = output::table();
        let mut header = vec!["id", "user", "expires", "updated", "version", "size", "keys"];
        if devices.is_some() {
            header.extend(["last seen", "ip", "user agent"]);
        }
        table.set_header(header);
        for record in &page {
            let keys: Vec<&str> = record.data.keys().map(String::as_str).collect();
            let mut keys = keys.join(", ");
            if keys.len() > 40 {
                keys = format!("{}…", keys.chars().take(39).collect::<String>());
            }
            let mut row = vec![
                record.id.to_string(),
                record.user_id.clone().unwrap_or_else(|| "-".into()),
                relative(record.expires_at, now, "expired "),
                relative(record.updated_at, now, ""),
                record.version.to_string(),
                output::size(record.data_json().len() as u64),
                keys,
            ];
            if let Some(devices) = &devices {
                let device = devices.get(&record.id).cloned().unwrap_or_default();
                row.push(device.last_seen_at.map_or("-".into(), |t| relative(t, now, "")));
                row.push(device.client_ip.unwrap_or_else(|| "-".into()));
                row.push(device.user_agent.map_or("-".into(), |ua| ua.chars().take(40).collect()));
            }
            table.add_row(row);
        }
        // Ids are copied from here: never wrapped, whatever the width.
        if let Some(column) = table.column_mut(0) {
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
        line(table)?;
    }
    if !ctx.json() {
        output::note(ctx.global.quiet, super::plural(total, "session", "sessions"));
    }
    Ok(())
}
