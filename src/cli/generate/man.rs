//! The man pages: `sessionctl(1)` and one `sessionctl-<command>(1)` per
//! command. clap_mangen renders what the clap definition knows (name,
//! synopsis, options); the sections it cannot know (exit status,
//! environment, files, examples, see also) are written here. The result is
//! tidied until `mandoc -Tlint` has nothing to say (a test runs it).

use anyhow::Context as _;
use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// A page per command; `command` is the public command line, unbuilt.
pub fn pages(command: Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    // Without a `help` subcommand: it has no page to link to.
    let mut root = command.disable_help_subcommand(true);
    root.build();
    let date = date()?;
    let mut pages = vec![("sessionctl.1".to_owned(), page(&root, None, &date)?)];
    for sub in root.get_subcommands() {
        pages.push((format!("sessionctl-{}.1", sub.get_name()), page(&root, Some(sub), &date)?));
    }
    Ok(pages)
}

/// The date in the title line: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else the release date kept beside the version in Cargo.toml, so
/// the committed pages only change when the program does.
fn date() -> anyhow::Result<String> {
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let seconds: i64 = epoch.trim().parse().context("SOURCE_DATE_EPOCH is not a number of seconds")?;
        let when = chrono::DateTime::from_timestamp(seconds, 0).context("SOURCE_DATE_EPOCH is out of range")?;
        return Ok(when.format("%Y-%m-%d").to_string());
    }
    const MANIFEST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    let date = MANIFEST
        .lines()
        .filter_map(|line| line.trim().strip_prefix("release-date"))
        .find_map(|rest| rest.trim().strip_prefix('=')?.trim().strip_prefix('"')?.strip_suffix('"'))
        .context("Cargo.toml has no release-date = \"YYYY-MM-DD\" under [package.metadata.sessionctl]")?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .with_context(|| format!("Cargo.toml's release-date {date:?} is not a YYYY-MM-DD date"))?;
    Ok(date.to_owned())
}

/// A section of clap_mangen's.
type Render = fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>;

/// One page: the root's when `sub` is `None`.
fn page(root: &Command, sub: Option<&Command>, date: &str) -> anyhow::Result<Vec<u8>> {
    let command = match sub {
        None => root.clone(),
        // The global options, propagated by clap, come after the command's
        // own, under a heading of their own.
        Some(sub) => sub.clone().mut_args(|arg| {
            if arg.is_global_set() {
                let order = arg.get_display_order();
                arg.help_heading("GLOBAL OPTIONS").display_order(GLOBAL_ORDER + order)
            } else {
                arg
            }
        }),
    };
    let name = command.get_display_name().unwrap_or(command.get_name()).to_owned();
    let version = root.get_version().unwrap_or_default();
    let man = Man::new(command.clone())
        .title(name.to_uppercase())
        .date(date)
        .source(format!("sessionctl {version}"))
        .manual("sessionctl manual");
    let mut sections: Vec<Render> = vec![
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ];
    if sub.is_none() {
        sections.push(Man::render_subcommands_section);
    }
    let mut text = String::new();
    for render in sections {
        let mut buffer = Vec::new();
        render(&man, &mut buffer)?;
        text.push_str(&without_preamble(buffer, text.is_empty())?);
        if text.contains(".TH ") && !text.contains(NO_HYPHENS) {
            text.push_str(NO_HYPHENS);
        }
    }
    let key = sub.map(Command::get_name);
    let mut roff = Roff::new();
    exit_status(&mut roff, key);
    environment(&mut roff, root, &command, key);
    files(&mut roff, root, key);
    examples(&mut roff, key);
    see_also(&mut roff, root, key);
    let mut buffer = Vec::new();
    roff.to_writer(&mut buffer)?;
    text.push_str(&without_preamble(buffer, false)?);
    Ok(tidy(&text).into_bytes())
}

/// Before the command's own `-h` and `-V` (clap's default display order).
const GLOBAL_ORDER: usize = 500;

/// Neither hyphenated nor justified: option and page names stay whole
/// (`--redis-url` was broken as `--re-dis-url`), and are not spread apart.
const NO_HYPHENS: &str = ".nh\n.ad l\n";

/// roff's rendering starts with the definition of the apostrophe string; a
/// page needs it once.
fn without_preamble(rendered: Vec<u8>, keep: bool) -> anyhow::Result<String> {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let text = String::from_utf8(rendered)?;
    Ok(match text.strip_prefix(PREAMBLE) {
        Some(rest) if !keep => rest.to_owned(),
        _ => text,
    })
}

/// The commands whose targets may be missing (exit status 3).
const TARGETED: [&str; 6] = ["show", "edit", "expire", "delete", "revoke", "regenerate"];

fn entry(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn exit_status(roff: &mut Roff, key: Option<&str>) {
    roff.control("SH", ["EXIT STATUS"]);
    let daemon = key == Some("serve-cron");
    entry(
        roff,
        "0",
        if daemon {
            "Success; also a clean stop: on SIGTERM or SIGINT the current batch finishes, then the daemon exits."
        } else {
            "Success."
        },
    );
    entry(
        roff,
        "1",
        "An error: the database or the cache could not be reached, timed out or refused; a file could not be \
         read; the input was invalid. One line on standard error says what failed and what to do.",
    );
    entry(
        roff,
        "2",
        "A usage error: an unknown option, a missing or malformed argument (a malformed session id included). \
         Nothing was done.",
    );
    match key {
        None => entry(
            roff,
            "3",
            "Nothing matched: no session has a given id, or the user has no session (show, edit, expire, \
             delete, revoke, regenerate).",
        ),
        Some("expire") | Some("revoke") => {
            entry(roff, "3", "Nothing matched: no session has a given id, or the user has no session.")
        }
        Some(key) if TARGETED.contains(&key) => entry(roff, "3", "Nothing matched: no session has the given id."),
        Some(_) => {}
    }
    match key {
        Some("serve-cron") => {}
        Some("purge-expired") => entry(
            roff,
            "130",
            "Interrupted (SIGINT, Ctrl-C) after the current batch: what was purged stays purged; run it again \
             to go on.",
        ),
        _ => entry(roff, "130", "Interrupted (SIGINT, Ctrl-C)."),
    }
}

/// Variables read directly rather than through an option: (name, the pages
/// that mention them besides the root's, or every page, what they do).
const OTHER_VARIABLES: [(&str, Option<&[&str]>, &str); 5] = [
    (
        "SESSIONCTL_SECRET",
        None,
        "The cookie keys themselves, one per line, newest first, when --secret-file is not given. Needed only \
         to read a cookie (show) or to print one (regenerate). A file is safer: other processes of the same \
         user can read a process's environment.",
    ),
    (
        "VISUAL",
        Some(&["edit"]),
        "The editor edit opens when given no --set, --unset or --replace, run through /bin/sh so it may carry \
         arguments.",
    ),
    ("EDITOR", Some(&["edit"]), "The editor, when VISUAL is not set."),
    (
        "RUST_LOG",
        None,
        "Which log messages go to standard error (tracing-subscriber's filter syntax, e.g. sessionctl=debug). \
         By default warnings and errors, and for serve-cron also info; with --quiet, errors only.",
    ),
    ("NO_COLOR", None, "When set, log messages on a terminal are not coloured."),
];

fn environment(roff: &mut Roff, root: &Command, command: &Command, key: Option<&str>) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.text([roman("An option given on the command line wins over its variable.")]);
    let mut args: Vec<(&clap::Arg, Option<&str>)> = command.get_arguments().map(|arg| (arg, None)).collect();
    if key.is_none() {
        for sub in root.get_subcommands() {
            args.extend(sub.get_arguments().filter(|arg| !arg.is_global_set()).map(|arg| (arg, Some(sub.get_name()))));
        }
    }
    for (arg, owner) in args {
        let (Some(variable), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let option = match owner {
            Some(owner) => format!("{owner} --{long}"),
            None => format!("--{long}"),
        };
        entry(roff, &variable.to_string_lossy(), &format!("Sets {option}: {help}"));
    }
    for (variable, pages, text) in OTHER_VARIABLES {
        if key.is_none_or(|key| pages.is_none_or(|pages| pages.contains(&key))) {
            entry(roff, variable, text);
        }
    }
}

fn files(roff: &mut Roff, root: &Command, key: Option<&str>) {
    roff.control("SH", ["FILES"]);
    let default_url = root
        .get_arguments()
        .find(|arg| arg.get_long() == Some("database-url"))
        .and_then(|arg| arg.get_default_values().first())
        .map(|url| url.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(path) = default_url.strip_prefix("sqlite://") {
        entry(
            roff,
            path,
            &format!(
                "The database when neither --database-url nor SESSIONCTL_DATABASE_URL is given ({default_url}): \
                 an SQLite file, relative to the current directory, with its -wal and -shm files beside it."
            ),
        );
    }
    roff.control("TP", []);
    roff.text([italic("FILE"), roman(" of --secret-file")]);
    roff.text([roman(
        "The cookie keys, one per line, newest first: the first signs new cookies, all of them verify. Blank \
         lines and lines starting with # are skipped. Keep it readable by its owner only (mode 0600).",
    )]);
    let here = |pages: &[&str]| key.is_none_or(|key| pages.contains(&key));
    if here(&["edit"]) {
        entry(
            roff,
            "${TMPDIR:-/tmp}/sessionctl-edit-*.json",
            "The copy of a session's data that edit opens in the editor; removed afterwards.",
        );
    }
    if here(&["purge-expired"]) {
        entry(
            roff,
            "/etc/cron.d/sessionctl-purge",
            "The cron job shipped as contrib/cron.d/sessionctl-purge: purge-expired every 15 minutes under \
             flock -n (a run still going makes the next one skip), its output logged to syslog with the tag \
             sessionctl.",
        );
    }
    if here(&["serve-cron"]) {
        entry(
            roff,
            "/etc/systemd/system/sessionctl-serve-cron.service",
            "The daemon's systemd unit, shipped in contrib/: no privileges, the file system read-only but for \
             /var/lib/sessionctl and the app's /var/lib/myapp (for an SQLite database shared with the app).",
        );
        entry(
            roff,
            "/etc/sessionctl/env",
            "The unit's environment file (SESSIONCTL_DATABASE_URL, SESSIONCTL_REDIS_URL). The URLs may hold \
             passwords: mode 0600, owned by root (systemd reads it before dropping privileges).",
        );
    }
}

/// Session ids as `generate` makes them, for the examples.
const ID: &str = "Qm3xTt0bZ8kR4vN1pLs7YwHe";
const ID2: &str = "9LmPq2VrX6aJd0KsWz4NcB7u";

/// Each example: what it does, and its lines (`ID` and `ID2` stand for
/// session ids; a line ending in `\` goes on on the next).
fn examples_of(key: Option<&str>) -> &'static [(&'static str, &'static [&'static str])] {
    match key {
        None => &[
            ("Look at one session, then at all of a user's:", &["sessionctl show ID", "sessionctl list --user alice"]),
            ("Log a user out everywhere:", &["sessionctl revoke --user alice -y"]),
            (
                "Against PostgreSQL and the Redis cache the apps use:",
                &[
                    "export SESSIONCTL_DATABASE_URL=postgres://ops@db/app",
                    "export SESSIONCTL_REDIS_URL=redis://cache:6379",
                    "sessionctl stats",
                ],
            ),
            ("Delete expired sessions, at most ten minutes long:", &["sessionctl purge-expired --max-duration 10m"]),
        ],
        Some("show") => &[
            ("A session: its metadata, the tiers holding it, its data:", &["sessionctl show ID"]),
            (
                "The session behind a cookie (verified with the keys):",
                &["sessionctl --secret-file /etc/myapp/keys show \"$COOKIE\""],
            ),
            ("Only the data, for a script:", &["sessionctl show ID --output json | jq .data"]),
        ],
        Some("list") => &[
            ("A user's live sessions, by expiry:", &["sessionctl list --user alice --active"]),
            ("Sessions whose data has a cart, 20 at most:", &["sessionctl list --key cart --limit 20"]),
            ("Expired sessions as JSON lines:", &["sessionctl list --expired --output json | head"]),
        ],
        Some("stats") => &[
            ("Counts, sizes and expiry range (estimated on a large table):", &["sessionctl stats"]),
            ("Every row read, for exact figures:", &["sessionctl stats --exact"]),
            ("With the cache, as JSON:", &["sessionctl --redis-url redis://cache:6379 stats --output json"]),
        ],
        Some("edit") => &[
            ("Set one key, remove another:", &["sessionctl edit ID --set 'theme=\"dark\"' --unset cart"]),
            ("Replace all the data:", &["sessionctl edit ID --replace data.json"]),
            ("Edit the data as JSON in an editor:", &["EDITOR=vi sessionctl edit ID"]),
        ],
        Some("expire") => &[
            ("Expire two sessions now:", &["sessionctl expire ID ID2"]),
            ("Expire every live session of a user:", &["sessionctl expire --user alice"]),
        ],
        Some("delete") => &[
            ("See what would go:", &["sessionctl delete ID ID2 --dry-run"]),
            ("Delete without a question (for scripts):", &["sessionctl delete ID -y"]),
        ],
        Some("revoke") => &[
            ("Count a user's sessions first:", &["sessionctl revoke --user alice --dry-run"]),
            ("Log the user out everywhere:", &["sessionctl revoke --user alice -y"]),
        ],
        Some("regenerate") => &[
            ("Move a session to a new id:", &["sessionctl regenerate ID"]),
            ("Also print the new cookie value:", &["sessionctl --secret-file /etc/myapp/keys regenerate ID"]),
        ],
        Some("export") => &[
            ("Back up the live sessions:", &["sessionctl export --active > sessions.jsonl"]),
            ("One user's sessions, compressed:", &["sessionctl export --user alice | gzip > alice.jsonl.gz"]),
        ],
        Some("import") => &[
            ("Restore a backup, overwriting the sessions it holds:", &["sessionctl import --replace sessions.jsonl"]),
            (
                "Move the sessions from SQLite to PostgreSQL:",
                &[
                    "sessionctl --database-url postgres://ops@db/app migrate",
                    "sessionctl --database-url sqlite://sessions.db export \\",
                    "  | sessionctl --database-url postgres://ops@db/app import -",
                ],
            ),
            ("Import what is valid, listing the lines skipped:", &["sessionctl import --skip-invalid old.jsonl"]),
        ],
        Some("purge-expired") => &[
            ("Count what would go:", &["sessionctl purge-expired --dry-run"]),
            (
                "Only sessions expired over an hour ago, ten minutes at most:",
                &["sessionctl purge-expired --older-than 1h --max-duration 10m"],
            ),
            (
                "What the cron job in contrib/cron.d runs:",
                &[
                    "flock -n /run/lock/sessionctl-purge.lock \\",
                    "  sessionctl purge-expired --max-duration 14m --output json --quiet \\",
                    "  2>&1 | logger -t sessionctl",
                ],
            ),
        ],
        Some("serve-cron") => &[
            (
                "Purge every 15 minutes, with metrics:",
                &["sessionctl serve-cron --schedule '*/15 * * * *' --metrics-addr 127.0.0.1:9187"],
            ),
            ("One pass now, to try the setup:", &["sessionctl serve-cron --once"]),
            (
                "As a service, with the unit from contrib/:",
                &["systemctl enable --now sessionctl-serve-cron", "curl -fsS http://127.0.0.1:9187/healthz"],
            ),
        ],
        Some("migrate") => &[
            ("Create or upgrade the schema:", &["sessionctl migrate"]),
            (
                "As the schema's owner, with time for a long migration:",
                &["sessionctl --database-url postgres://owner@db/app --database-timeout 10m migrate"],
            ),
        ],
        Some(_) => &[],
    }
}

/// The example lines as shown: `ID` and `ID2` replaced by ids.
fn example_lines(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            line.split(' ')
                .map(|word| match word {
                    "ID" => ID,
                    "ID2" => ID2,
                    word => word,
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn examples(roff: &mut Roff, key: Option<&str>) {
    let examples = examples_of(key);
    if examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (i, (text, lines)) in examples.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*text)]);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        for line in example_lines(lines) {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

/// The pages worth reading next; only ones generated here.
fn related(key: &str) -> &'static [&'static str] {
    match key {
        "show" => &["list", "edit"],
        "list" => &["show", "export", "stats"],
        "stats" => &["list", "purge-expired"],
        "edit" => &["show", "import"],
        "expire" => &["delete", "revoke", "purge-expired"],
        "delete" => &["expire", "revoke"],
        "revoke" => &["expire", "delete", "list"],
        "regenerate" => &["show"],
        "export" => &["import", "list"],
        "import" => &["export", "migrate"],
        "purge-expired" => &["serve-cron", "stats"],
        "serve-cron" => &["purge-expired"],
        _ => &[],
    }
}

fn see_also(roff: &mut Roff, root: &Command, key: Option<&str>) {
    let pages: Vec<String> = match key {
        None => root.get_subcommands().map(|sub| format!("sessionctl-{}", sub.get_name())).collect(),
        Some(key) => std::iter::once("sessionctl".to_owned())
            .chain(related(key).iter().map(|name| format!("sessionctl-{name}")))
            .collect(),
    };
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        line.push(bold(page.as_str()));
        line.push(roman(if i + 1 == pages.len() { "(1)" } else { "(1), " }));
    }
    roff.text(line);
}

/// What `mandoc -Tlint` asks of a page clap_mangen renders: no trailing
/// spaces, one `.sp` rather than a blank line between two `.br` (before the
/// possible values of an option), and text lines of at most 80 bytes (filled
/// text is broken at a space; the tag line after `.TP` and unfilled lines are
/// left alone, as a break would change them).
fn tidy(page: &str) -> String {
    let page = page.replace("\n.br\n\n.br\n", "\n.sp\n");
    let mut out = String::new();
    let mut filled = true;
    let mut tag = false;
    for line in page.lines() {
        let line = line.trim_end();
        let control = line.starts_with('.') || line.starts_with('\'');
        match line {
            ".nf" => filled = false,
            ".fi" => filled = true,
            _ => {}
        }
        if control || !filled || tag || line.len() <= 80 {
            out.push_str(line);
            out.push('\n');
        } else {
            for piece in wrap(line, 80) {
                if piece.starts_with('.') || piece.starts_with('\'') {
                    out.push_str("\\&");
                }
                out.push_str(piece);
                out.push('\n');
            }
        }
        tag = line == ".TP";
    }
    out
}

/// Breaks a text line at single spaces (not escaped ones) into pieces of at
/// most `width` bytes where the words allow.
fn wrap(line: &str, width: usize) -> Vec<&str> {
    let bytes = line.as_bytes();
    let breaks: Vec<usize> = (1..bytes.len().saturating_sub(1))
        .filter(|&i| bytes[i] == b' ' && bytes[i - 1] != b' ' && bytes[i - 1] != b'\\' && bytes[i + 1] != b' ')
        .collect();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_fit = None;
    for &at in &breaks {
        if at - start > width
            && let Some(fit) = last_fit
        {
            pieces.push(&line[start..fit]);
            start = fit + 1;
        }
        last_fit = Some(at);
    }
    if line.len() - start > width
        && let Some(fit) = last_fit.filter(|&fit| fit > start)
    {
        pieces.push(&line[start..fit]);
        start = fit + 1;
    }
    pieces.push(&line[start..]);
    pieces
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;
    use crate::cli::Cli;

    /// Shell words of one example, split into the commands of a pipeline or
    /// list, without redirections.
    fn commands(line: &str) -> Vec<Vec<String>> {
        let mut commands = vec![Vec::new()];
        let mut word: Option<String> = None;
        let mut quote = None;
        let mut skip_next = false;
        let end_word = |word: &mut Option<String>, commands: &mut Vec<Vec<String>>, skip_next: &mut bool| {
            if let Some(w) = word.take() {
                if std::mem::take(skip_next) {
                    return;
                }
                match w.as_str() {
                    "|" | "||" | "&&" | ";" => commands.push(Vec::new()),
                    ">" | ">>" | "<" => *skip_next = true,
                    w if w.contains('>') => {}
                    _ => commands.last_mut().unwrap().push(w),
                }
            }
        };
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_default();
                }
                (Some(q), c) if c == q => quote = None,
                (None, ' ') => end_word(&mut word, &mut commands, &mut skip_next),
                (_, c) => word.get_or_insert_default().push(c),
            }
        }
        end_word(&mut word, &mut commands, &mut skip_next);
        commands
    }

    #[test]
    fn every_example_parses_with_the_current_options() {
        let mut root = Cli::command();
        root.build();
        let keys = std::iter::once(None).chain(root.get_subcommands().map(|sub| Some(sub.get_name())));
        for key in keys {
            for (_, lines) in examples_of(key) {
                let joined = example_lines(lines).join("\n").replace("\\\n", " ").replace('\n', " ; ");
                for command in commands(&joined) {
                    // `sessionctl` as a command, not as an option's value (`logger -t sessionctl`).
                    let start = (0..command.len())
                        .find(|&i| command[i] == "sessionctl" && (i == 0 || !command[i - 1].starts_with('-')));
                    let Some(start) = start else { continue };
                    if let Err(e) = Cli::try_parse_from(&command[start..]) {
                        panic!("the example {command:?} of {key:?} does not parse: {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_command_has_examples() {
        let root = Cli::command();
        for sub in root.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            assert!(!examples_of(Some(sub.get_name())).is_empty(), "no examples for {}", sub.get_name());
        }
        assert!(!examples_of(None).is_empty());
    }

    #[test]
    fn long_lines_break_at_spaces() {
        let line = "a ".repeat(60) + "b";
        let pieces = wrap(&line, 80);
        assert!(pieces.iter().all(|p| p.len() <= 80), "{pieces:?}");
        assert_eq!(pieces.join(" "), line);
        assert_eq!(wrap("x\\ y", 2), ["x\\ y"]);
    }
}
