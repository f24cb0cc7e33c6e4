//! `sessionctl show <ID|KEY|COOKIE>`: one session, every tier's view of it.

use clap::Args;
use serde_json::{Value, json};

use sessionctl::admin::{CacheState, ExportLine, Target};
use sessionctl::record::{self, Record};

use super::output::{self, line, when};
use super::{Access, Ctx};

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A session id, its stored key, or a whole cookie value (verified with the keys).
    pub session: String,
}

fn cache_word(state: &CacheState) -> &'static str {
    match state {
        CacheState::NotConfigured => "not configured",
        CacheState::Missing => "not cached",
        CacheState::Deleted => "deleted (tombstone)",
        CacheState::Cached(_) => "cached",
        CacheState::Unreachable(_) => "unreachable",
    }
}

fn pretty(record: &Record) -> String {
    serde_json::to_string_pretty(&Value::from(record.data.clone())).unwrap_or_default()
}

fn metadata_table(record: &Record, tiers: &[(&str, String)]) -> comfy_table::Table {
    let now = record::now();
    let mut table = output::table();
    table.add_row(vec!["id".to_owned(), record.id.to_string()]);
    table.add_row(vec!["user".to_owned(), record.user_id.clone().unwrap_or_else(|| "-".into())]);
    table.add_row(vec!["created".to_owned(), when(record.created_at, now, "")]);
    table.add_row(vec!["updated".to_owned(), when(record.updated_at, now, "")]);
    table.add_row(vec!["expires".to_owned(), when(record.expires_at, now, "expired ")]);
    table.add_row(vec!["version".to_owned(), record.version.to_string()]);
    table.add_row(vec!["size".to_owned(), output::size(record.data_json().len() as u64)]);
    for (tier, state) in tiers {
        table.add_row(vec![(*tier).to_owned(), state.clone()]);
    }
    table
}

/// Prints the session.
pub async fn run(ctx: &Ctx, args: ShowArgs) -> anyhow::Result<()> {
    super::check_session_args(std::slice::from_ref(&args.session))?;
    let admin = ctx.admin(Access::Read).await?;
    let target = admin.resolve(&args.session)?;
    let id = match target {
        Target::CookieOnly(record) => {
            if ctx.json() {
                let doc = json!({"version": 1, "session": session_json(&record), "storage": "cookie"});
                return line(doc);
            }
            line(metadata_table(&record, &[("stored in", "the cookie only (a cookie-only session)".into())]))?;
            return line(pretty(&record));
        }
        Target::Stored(id) => id,
    };
    let mut inspection = admin.inspect(&id).await?;
    if let Some(reason) = ctx.cache_unreachable.get() {
        inspection.cache = CacheState::Unreachable(reason.clone());
    }
    let record = inspection.record().cloned().expect("inspect finds a record or fails");
    let disagree = inspection.tiers_disagree();
    let device = admin.device(&id).await?;
    if ctx.json() {
        let cache_record = match &inspection.cache {
            CacheState::Cached(cached) if disagree => session_json(cached),
            _ => Value::Null,
        };
        let doc = json!({
            "version": 1,
            "session": session_json(&record),
            "size": record.data_json().len(),
            "expired": record.is_expired_at(record::now()),
            "tiers": {"database": inspection.database.is_some(), "cache": cache_word(&inspection.cache)},
            "tiers_disagree": disagree,
            "cache_copy": cache_record,
            "device": {
                "last_seen_at": device.last_seen_at.map(output::utc),
                "client_ip": device.client_ip,
                "user_agent": device.user_agent,
            },
        });
        return line(doc);
    }
    let mut tiers = vec![("database", if inspection.database.is_some() { "stored" } else { "not stored" }.to_owned())];
    let mut cache = cache_word(&inspection.cache).to_owned();
    if let CacheState::Unreachable(reason) = &inspection.cache {
        cache = format!("unreachable: {reason}");
    }
    if matches!(inspection.cache, CacheState::NotConfigured) {
        cache = "not configured (pass --redis-url to see the cache)".into();
    }
    tiers.push(("cache", cache));
    if let Some(seen) = device.last_seen_at {
        tiers.push(("last seen", when(seen, record::now(), "")));
    }
    if let Some(ip) = &device.client_ip {
        tiers.push(("client ip", ip.clone()));
    }
    if let Some(agent) = &device.user_agent {
        tiers.push(("user agent", agent.clone()));
    }
    if disagree {
        tiers.push(("tiers agree", "NO: cache and database differ (both shown below)".into()));
    }
    line(metadata_table(&record, &tiers))?;
    if disagree && let CacheState::Cached(cached) = &inspection.cache {
        line(format!("database data (version {}):", record.version))?;
        line(pretty(&record))?;
        line(format!("cache data (version {}):", cached.version))?;
        return line(pretty(cached));
    }
    line(pretty(&record))
}

fn session_json(record: &Record) -> Value {
    serde_json::from_str(&ExportLine::from_record(record).to_json()).unwrap_or(Value::Null)
}
