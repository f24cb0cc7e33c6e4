//! `sessionctl export`: sessions as JSON lines (streamed).

use clap::Args;

use sessionctl::admin::ExportLine;

use super::list::FilterArgs;
use super::output::{self, line};
use super::{Access, Ctx, plural};

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Writes one JSON object per session to stdout.
pub async fn run(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<()> {
    let admin = ctx.admin(Access::Read).await?;
    let mut lister = admin.list(args.filter.filter(), args.filter.limit);
    let mut total = 0;
    loop {
        let page = lister.next_page().await?;
        if page.is_empty() {
            break;
        }
        total += page.len();
        for record in &page {
            line(ExportLine::from_record(record).to_json())?;
        }
    }
    output::note(ctx.global.quiet, format!("exported {}", plural(total, "session", "sessions")));
    Ok(())
}
