//! The committed shell completions, read as their users would meet them:
//! they neither offer the maintainers' `generate` nor complete file names
//! for ids. (That they match the clap definition is
//! `cli::completions_and_man_pages_are_in_sync_with_the_cli`.)

use std::path::{Path, PathBuf};

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

/// Whether a program is on PATH.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
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
