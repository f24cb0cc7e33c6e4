//! All output goes through here: tables or JSON to stdout, everything else
//! to stderr. A closed stdout (`sessionctl list | head`) ends the command
//! quietly with success instead of an error.

use std::fmt;
use std::io::{self, IsTerminal as _, Write as _};

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{ContentArrangement, Table, presets};

/// Raised when stdout's reader went away; the command stops and exits 0.
#[derive(Debug)]
pub struct BrokenPipe;

impl fmt::Display for BrokenPipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output closed")
    }
}

impl std::error::Error for BrokenPipe {}

/// Writes one line to stdout.
pub fn line(text: impl fmt::Display) -> anyhow::Result<()> {
    pipe_result(writeln!(io::stdout().lock(), "{text}"))
}

/// Flushes stdout (a closed pipe is not an error here either).
pub fn flush() -> anyhow::Result<()> {
    pipe_result(io::stdout().lock().flush())
}

/// Many lines to stdout through one buffer (export, list): a write per
/// line would cost more than the database. [`Lines::flush`] after each
/// page, so `| head` sees them as they come.
pub struct Lines {
    out: io::BufWriter<io::StdoutLock<'static>>,
}

impl Lines {
    /// A buffer over stdout.
    pub fn new() -> Lines {
        Lines { out: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()) }
    }

    /// Buffers one line.
    pub fn line(&mut self, text: impl fmt::Display) -> anyhow::Result<()> {
        pipe_result(writeln!(self.out, "{text}"))
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        pipe_result(self.out.flush())
    }
}

fn pipe_result(result: io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the output")),
        Ok(()) => Ok(()),
    }
}

/// A bar over the bytes of an input of `size` bytes (a spinner with the
/// count when the size is unknown), on stderr when it is a terminal.
pub fn bytes_progress(quiet: bool, size: Option<u64>, what: &str) -> Option<indicatif::ProgressBar> {
    (!quiet && io::stderr().is_terminal()).then(|| {
        let (bar, template) = match size {
            Some(size) => (
                indicatif::ProgressBar::new(size),
                format!("{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent}}% {what}, ETA {{eta}} — {{msg}}"),
            ),
            None => {
                (indicatif::ProgressBar::new_spinner(), format!("{{spinner}} [{{elapsed_precise}}] {what} — {{msg}}"))
            }
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    })
}

/// A note for the human on stderr (never mixed into stdout's data).
pub fn note(quiet: bool, text: impl fmt::Display) {
    if !quiet {
        eprintln!("{text}");
    }
}

/// A table sized to the terminal (plain, uncoloured).
pub fn table() -> Table {
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    if io::stdout().is_terminal() {
        table.set_content_arrangement(ContentArrangement::Dynamic);
        // A terminal that reports no width (`docker exec -t`, `script`)
        // would squeeze every column to one character.
        if table.width().is_none_or(|width| width == 0) {
            table.set_width(FALLBACK_WIDTH);
        }
    }
    table
}

/// Columns assumed when the terminal does not say.
const FALLBACK_WIDTH: u16 = 80;

/// A size for people: "312 B", "4.1 KiB", "2.0 MiB" (JSON carries bytes).
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// RFC 3339 UTC with milliseconds.
pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// "in 3 h", "expired 2 d ago", "5 min ago".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>, past_word: &str) -> String {
    let delta = t - now;
    let seconds = delta.num_seconds().unsigned_abs();
    let amount = match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    };
    if delta.num_milliseconds() > 0 { format!("in {amount}") } else { format!("{past_word}{amount} ago") }
}

/// "2026-11-26T07:00:00.000Z (in 3 h)".
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>, past_word: &str) -> String {
    format!("{} ({})", utc(t), relative(t, now, past_word))
}

/// A bar over the share of the table walked (position 0 to 1,000), on
/// stderr when it is a terminal and `quiet` is off; `None` otherwise.
/// `extra` follows the percentage and ETA (e.g. ` — {msg}`).
pub fn table_progress(quiet: bool, extra: &str) -> Option<indicatif::ProgressBar> {
    (!quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{percent}}% of the table, ETA {{eta}}{extra}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    })
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(4200), "4.1 KiB");
        assert_eq!(size(50 * 1024 * 1024), "50.0 MiB");
        assert_eq!(size(u64::MAX), "16777216.0 TiB");
    }
}
