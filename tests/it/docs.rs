//! The committed man pages and shell completions, read as their users would
//! meet them: `mandoc -Tlint` finds nothing, every page has the sections an
//! operator looks for, every variable the CLI reads is documented, links
//! lead to pages that ship, and completions neither offer the maintainers'
//! `generate` nor complete file names for ids. (That they match the clap
//! definition is `cli::completions_and_man_pages_are_in_sync_with_the_cli`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::pg_server::missing;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every man page: (file name, text).
fn man_pages() -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = std::fs::read_dir(repo().join("man"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    pages.sort();
    assert!(pages.len() > 1, "man/ holds no pages");
    pages
}

/// The lines of a page's section, up to the next `.SH`.
fn section<'a>(page: &'a str, heading: &str) -> Vec<&'a str> {
    page.lines()
        .skip_while(|line| line.trim_start_matches(".SH ").trim_matches('"') != heading || !line.starts_with(".SH "))
        .skip(1)
        .take_while(|line| !line.starts_with(".SH "))
        .collect()
}

/// The text a reader sees, roughly: font escapes gone, `\-` a hyphen.
fn plain(roff: &str) -> String {
    roff.replace("\\fB", "").replace("\\fI", "").replace("\\fR", "").replace("\\-", "-").replace("\\&", "")
}

/// Whether a program is on PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

#[test]
fn man_pages_pass_mandoc_lint() {
    if !installed("mandoc") {
        return missing::<()>("mandoc (Debian package `mandoc`)").unwrap_or_default();
    }
    for (name, _) in man_pages() {
        // -W style: the pickiest level, style suggestions included.
        let output = Command::new("mandoc")
            .args(["-Tlint", "-W", "style"])
            .arg(repo().join("man").join(&name))
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success() && said.is_empty(), "mandoc -Tlint on man/{name}:\n{said}");
    }
}

#[test]
fn man_pages_have_a_dated_title_the_operators_sections_and_a_full_synopsis() {
    for (name, page) in man_pages() {
        let title = page.lines().find(|line| line.starts_with(".TH ")).unwrap_or_else(|| panic!("{name}: no .TH"));
        let words: Vec<&str> = title.split(' ').collect();
        assert_eq!(words[1], name.trim_end_matches(".1").to_uppercase(), "{name}: {title}");
        assert!(
            chrono::NaiveDate::parse_from_str(words[3], "%Y-%m-%d").is_ok(),
            "{name}: no YYYY-MM-DD date in the title line: {title}"
        );
        assert!(
            title.contains(&format!("\"sessionctl {}\"", env!("CARGO_PKG_VERSION"))),
            "{name}: no version in the title line: {title}"
        );
        for heading in ["NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"] {
            assert!(!section(&page, heading).is_empty(), "{name} has no {heading} section");
        }
        let exit_status = plain(&section(&page, "EXIT STATUS").join("\n"));
        for code in ["0", "1", "2"] {
            assert!(exit_status.lines().any(|line| line == code), "{name}: exit status {code} undocumented");
        }
        let synopsis = plain(&section(&page, "SYNOPSIS").join(" "));
        if let Some(command) = name.strip_prefix("sessionctl-").and_then(|n| n.strip_suffix(".1")) {
            assert!(synopsis.starts_with(&format!("sessionctl {command} ")), "{name}: {synopsis}");
            assert!(synopsis.contains("[--database-url]"), "{name}: no global options in {synopsis}");
        }
    }
}

#[test]
fn man_pages_link_only_to_pages_that_ship() {
    let pages: Vec<String> = man_pages().into_iter().map(|(name, _)| name).collect();
    for (name, page) in man_pages() {
        let text = plain(&page);
        let mut links = 0;
        for (at, _) in text.match_indices("(1)") {
            let before = &text[..at];
            let start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).map_or(0, |i| i + 1);
            let target = &before[start..];
            assert!(pages.contains(&format!("{target}.1")), "{name} links to {target}(1), which is not in man/");
            links += 1;
        }
        assert!(links > 0, "{name} links nowhere");
    }
}

/// Every `SESSIONCTL_*` name in the sources, and every variable read with
/// `env::var`/`env::var_os`.
fn variables_read(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        // The pages' own generator names variables only to document them.
        if path.ends_with("src/cli/generate") || path.ends_with("src/cli/generate.rs") {
            continue;
        }
        if path.is_dir() {
            variables_read(&path, found);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut names: Vec<&str> = Vec::new();
        for (at, _) in text.match_indices("SESSIONCTL_") {
            let rest = &text[at..];
            names.push(&rest[..rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(rest.len())]);
        }
        for call in ["env::var(\"", "env::var_os(\""] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                names.push(&rest[..rest.find('"').unwrap()]);
            }
        }
        found.extend(names.into_iter().map(str::to_owned));
    }
}

#[test]
fn every_environment_variable_the_cli_reads_is_documented() {
    let mut read = Vec::new();
    variables_read(&repo().join("src"), &mut read);
    read.sort();
    read.dedup();
    assert!(read.iter().any(|v| v == "SESSIONCTL_DATABASE_URL") && read.iter().any(|v| v == "SESSIONCTL_SECRET"));
    let root = std::fs::read_to_string(repo().join("man/sessionctl.1")).unwrap();
    let documented = plain(&section(&root, "ENVIRONMENT").join("\n"));
    for variable in read {
        assert!(
            documented.lines().any(|line| line == variable),
            "{variable} is read by the CLI but not in sessionctl(1)'s ENVIRONMENT: add it in src/cli/generate/man.rs"
        );
    }
    // Each command's page lists the variables of its options, globals included.
    let show = std::fs::read_to_string(repo().join("man/sessionctl-show.1")).unwrap();
    assert!(plain(&section(&show, "ENVIRONMENT").join("\n")).lines().any(|l| l == "SESSIONCTL_DATABASE_URL"));
}

fn completions(name: &str) -> String {
    std::fs::read_to_string(repo().join("completions").join(name)).unwrap()
}

#[test]
fn completions_never_offer_the_hidden_generate() {
    for entry in std::fs::read_dir(repo().join("completions")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // `regenerate` is a command; `generate` (alone or in a function name) is not.
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
        assert!(!words.into_iter().any(|w| w == "generate"), "{} mentions generate", path.display());
    }
    assert!(completions("sessionctl.bash").contains("regenerate"));
}

#[test]
fn completions_offer_files_for_files_only() {
    let zsh = completions("_sessionctl");
    let lines = |prefix: &str| -> Vec<String> {
        let found: Vec<String> = zsh.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect();
        assert!(!found.is_empty(), "zsh: no {prefix}");
        found
    };
    for line in lines("'--secret-file=").into_iter().chain(lines("'--replace=")).chain(lines("':file -- ")) {
        assert!(line.contains(":_files'"), "zsh should complete a file: {line}");
    }
    for line in
        lines("'--user=").into_iter().chain(lines("':session -- ")).chain(lines("'*::ids -- ")).chain(lines("':id -- "))
    {
        assert!(!line.contains("_files") && !line.contains("_default"), "zsh should not complete files: {line}");
    }
    // `_default` is zsh's "anything, files included": no value is left to it.
    assert!(!zsh.contains("_default"));

    let fish = completions("sessionctl.fish");
    for line in fish.lines() {
        if line.contains(" -l secret-file ") {
            assert!(line.ends_with(" -r -F"), "fish should complete a file: {line}");
        }
        if line.contains(" -l user ") {
            assert!(line.ends_with(" -r -f"), "fish should not complete files: {line}");
        }
    }

    // bash: `--user`'s value is left as typed; `--secret-file`'s completes files.
    let bash = completions("sessionctl.bash");
    let after = |case: &str| -> Vec<String> {
        let lines: Vec<&str> = bash.lines().collect();
        (0..lines.len()).filter(|&i| lines[i].trim() == case).map(|i| lines[i + 1..i + 8].join("\n")).collect()
    };
    assert!(!after("--user)").is_empty() && after("--user)").iter().all(|b| !b.contains("compgen -f")));
    assert!(!after("--secret-file)").is_empty() && after("--secret-file)").iter().all(|b| b.contains("compgen -f")));
}

/// A copy of `man/` laid out as a MANPATH (`man1/`), for tools that look
/// pages up by name.
pub fn manpath(dir: &Path) -> PathBuf {
    let man1 = dir.join("man").join("man1");
    std::fs::create_dir_all(&man1).unwrap();
    for (name, page) in man_pages() {
        std::fs::write(man1.join(name), page).unwrap();
    }
    dir.join("man")
}
