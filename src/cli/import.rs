//! `sessionctl import FILE|-`: JSON lines in, validated before anything is
//! written.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use sessionctl::Error;
use sessionctl::admin::ExportLine;

use super::output::{self, line};
use super::{Ctx, plural};

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON lines as written by `export` ('-' for stdin).
    #[arg(value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    /// Overwrite sessions that already exist (default: keep them).
    #[arg(long)]
    pub replace: bool,
    /// Import the valid lines of a file that has invalid ones, reporting each skipped line.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// Validates every line, then writes.
pub async fn run(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let mut records = Vec::new();
    let mut invalid = Vec::new();
    for (index, text) in text.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        match ExportLine::parse(text) {
            Ok(record) => records.push(record),
            Err(e) => invalid.push((index + 1, e.to_string())),
        }
    }
    if !invalid.is_empty() {
        if !args.skip_invalid {
            let (first_line, first_error) = &invalid[0];
            return Err(Error::InvalidInput(format!(
                "{} has {} (first: line {first_line}: {first_error}); nothing imported (--skip-invalid imports the rest)",
                args.file.display(),
                plural(invalid.len(), "invalid line", "invalid lines"),
            ))
            .into());
        }
        for (number, error) in &invalid {
            output::note(false, format!("skipped line {number}: {error}"));
        }
    }
    let admin = ctx.admin().await?;
    let report = admin.import(&records, args.replace).await?;
    if ctx.json() {
        return line(json!({
            "version": 1,
            "inserted": report.inserted,
            "replaced": report.replaced,
            "kept": report.kept,
            "skipped_invalid": invalid.iter().map(|(n, e)| json!({"line": n, "error": e})).collect::<Vec<_>>(),
        }));
    }
    if !ctx.global.quiet {
        line(format!(
            "imported {} ({} new, {} replaced), kept {} existing, skipped {}",
            plural((report.inserted + report.replaced) as usize, "session", "sessions"),
            report.inserted,
            report.replaced,
            report.kept,
            plural(invalid.len(), "invalid line", "invalid lines"),
        ))?;
    }
    Ok(())
}
