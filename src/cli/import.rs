//! `sessionctl import FILE|-`: JSON lines in, streamed in batches inside one
//! transaction: a file with a bad line (unless `--skip-invalid`) or a
//! line the database refuses writes nothing.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueHint};
use serde_json::json;

use sessionctl::Error;

use super::output::{self, line};
use super::{Access, Ctx, plural};

/// Arguments of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON lines as written by `export` ('-' for stdin).
    #[arg(value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Overwrite sessions that already exist (default: keep them).
    #[arg(long)]
    pub replace: bool,
    /// Import the valid lines of a file that has invalid ones, reporting each skipped line.
    #[arg(long)]
    pub skip_invalid: bool,
}

/// Longest line read whole: more than a session within the library's
/// 1 MiB limit takes, even JSON-escaped. A longer one is skipped as invalid
/// without being held in memory.
const MAX_LINE: usize = 16 << 20;

/// Reads one line (with its newline) into `buffer`, keeping at most
/// [`MAX_LINE`] bytes; returns the bytes consumed and whether the line was
/// longer (then `buffer` is empty).
fn read_line(reader: &mut dyn std::io::BufRead, buffer: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let (mut consumed, mut too_long) = (0, false);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((consumed, too_long));
        }
        let (length, ends) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if !too_long && buffer.len() + length > MAX_LINE {
            too_long = true;
            buffer.clear();
            buffer.shrink_to(64 * 1024);
        }
        if !too_long {
            buffer.extend_from_slice(&available[..length]);
        }
        reader.consume(length);
        consumed += length;
        if ends {
            return Ok((consumed, too_long));
        }
    }
}

/// Skipped lines listed in the JSON report; the count covers them all.
const LISTED_SKIPS: usize = 1000;

/// Reads, validates and writes in one pass and one transaction.
pub async fn run(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let shown = args.file.display().to_string();
    let (mut reader, size): (Box<dyn std::io::BufRead>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&args.file).with_context(|| format!("cannot read {shown}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(256 * 1024, file)), size)
    };
    // Even without --replace: a restored session may still have a
    // tombstone in the apps' cache, which the import must clear.
    let admin = ctx.admin(Access::Change).await?;
    let mut import = admin.begin_import(args.replace).await?;
    let bar = output::bytes_progress(ctx.global.quiet, size, "of the file");
    let mut buffer = Vec::new();
    let (mut number, mut read) = (0usize, 0u64);
    let mut invalid = 0usize;
    let mut first_invalid: Option<(usize, String)> = None;
    let mut skipped = Vec::new();
    loop {
        buffer.clear();
        let (n, too_long) = read_line(&mut reader, &mut buffer).with_context(|| format!("cannot read {shown}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        read += n as u64;
        // A byte-order mark before the first line is not part of it.
        let bytes = if number == 1 { buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&buffer) } else { &buffer };
        let parsed = match std::str::from_utf8(bytes) {
            _ if too_long => Err(Error::InvalidInput(format!("line longer than {} MiB", MAX_LINE >> 20))),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => admin.parse_line(text.trim_end_matches(['\n', '\r'])),
            Err(_) => Err(Error::InvalidInput("not UTF-8 text".into())),
        };
        match parsed {
            // After a bad line without --skip-invalid, the rest is only
            // checked, to report every bad line at once.
            Ok((record, device)) if invalid == 0 || args.skip_invalid => {
                import.add(record, device).await.context("nothing imported")?
            }
            Ok(_) => {}
            Err(e) => {
                invalid += 1;
                let error = e.to_string();
                if args.skip_invalid {
                    output::note(false, format!("skipped line {number}: {error}"));
                    if skipped.len() < LISTED_SKIPS {
                        skipped.push(json!({"line": number, "error": error}));
                    }
                } else if first_invalid.is_none() {
                    first_invalid = Some((number, error));
                }
            }
        }
        if let Some(bar) = &bar
            && number % 1000 == 0
        {
            bar.set_position(read);
            bar.set_message(format!("{number} lines"));
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some((first_line, first_error)) = first_invalid {
        // Dropping the import rolls its transaction back.
        drop(import);
        return Err(Error::InvalidInput(format!(
            "{shown} has {} (first: line {first_line}: {first_error}); nothing imported (--skip-invalid imports the rest)",
            plural(invalid, "invalid line", "invalid lines"),
        ))
        .into());
    }
    let report = import.finish().await.context("nothing imported")?;
    ctx.after_change(&admin)?;
    if ctx.json() {
        return line(json!({
            "version": 1,
            "inserted": report.inserted,
            "replaced": report.replaced,
            "kept": report.kept,
            "skipped_invalid": skipped,
            "skipped_invalid_count": invalid,
        }));
    }
    if !ctx.global.quiet {
        line(format!(
            "imported {} ({} new, {} replaced), kept {} existing, skipped {}",
            plural((report.inserted + report.replaced) as usize, "session", "sessions"),
            report.inserted,
            report.replaced,
            report.kept,
            plural(invalid, "invalid line", "invalid lines"),
        ))?;
    }
    Ok(())
}
