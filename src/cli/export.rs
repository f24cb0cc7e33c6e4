//! `sessionctl export`: sessions as JSON lines, in id order (streamed: a
//! walk of the primary key, linear in the table).

use clap::Args;

use sessionctl::admin::ExportLine;

use super::list::FilterArgs;
use super::output::{self, Lines};
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
    if ctx.ids_unmoved.get().is_some() {
        // They would be missing from the file, which is often a backup.
        anyhow::bail!(
            "some sessions are still stored under their id (written by an older build) and would be left out: run `sessionctl migrate` first"
        );
    }
    let mut lister = admin.export(args.filter.filter(), args.filter.limit);
    let mut out = Lines::new();
    let mut total = 0;
    loop {
        let page = lister.next_page().await?;
        if page.is_empty() {
            break;
        }
        total += page.len();
        let ids: Vec<_> = page.iter().map(|record| record.id.clone()).collect();
        let devices: std::collections::HashMap<_, _> = admin.devices(&ids).await?.into_iter().collect();
        let none = sessionctl::Device::default();
        for record in &page {
            out.line(ExportLine::of_session(record, devices.get(&record.id).unwrap_or(&none)))?;
        }
        out.flush()?;
    }
    output::note(ctx.global.quiet, format!("exported {}", plural(total, "session", "sessions")));
    Ok(())
}
