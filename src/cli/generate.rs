//! `sessionctl generate` (hidden): writes `completions/` and `man/` from the
//! clap definition. A test fails when the committed copies are stale.
//!
//! Both come from [`public_command`]: the command line as users see it,
//! without this maintainers' command, and with values completing files only
//! where a file is meant.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::builder::ValueHint;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use super::Cli;

mod man;

/// Arguments of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where `completions/` and `man/` are written.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
}

/// Every generated file: (path relative to the output dir, contents).
pub fn files() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "sessionctl.bash"),
        (Shell::Zsh, "_sessionctl"),
        (Shell::Fish, "sessionctl.fish"),
        (Shell::Elvish, "sessionctl.elv"),
        (Shell::PowerShell, "_sessionctl.ps1"),
    ] {
        let mut buffer = Vec::new();
        clap_complete::generate(shell, &mut public_command(), "sessionctl", &mut buffer);
        files.push((Path::new("completions").join(name), buffer));
    }
    for (name, page) in man::pages(public_command())? {
        files.push((Path::new("man").join(name), page));
    }
    Ok(files)
}

/// The command line users see: [`Cli`] without its hidden subcommands.
///
/// clap has no way to drop a subcommand, and clap_complete's bash script
/// offers hidden ones (`sessionctl <TAB>` listed `generate`), so the command
/// is rebuilt from the parts that completions and man pages show.
fn public_command() -> clap::Command {
    let full = Cli::command();
    let mut public = clap::Command::new(full.get_name().to_owned())
        .propagate_version(full.is_propagate_version_set())
        .subcommand_required(full.is_subcommand_required_set())
        .arg_required_else_help(full.is_arg_required_else_help_set())
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned());
    if let Some(version) = full.get_version() {
        public = public.version(version.to_owned());
    }
    if let Some(about) = full.get_about() {
        public = public.about(about.clone());
    }
    if let Some(about) = full.get_long_about() {
        public = public.long_about(about.clone());
    }
    not_files_unless_declared(public)
}

/// A value completes file names only when it is a path (its type, or a
/// `value_hint`): a session id, a user id or a duration must not, and clap's
/// default for other values (`_default` in zsh) offers files. Done here rather
/// than on each argument so that a new option gets it too.
fn not_files_unless_declared(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let free_text = arg.get_action().takes_values()
                && arg.get_value_hint() == ValueHint::Unknown
                && arg.get_possible_values().is_empty();
            if free_text { arg.value_hint(ValueHint::Other) } else { arg }
        })
        .mut_subcommands(not_files_unless_declared)
}

/// Writes the files.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    for (path, contents) in files()? {
        let path = args.out_dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_command_is_the_cli_without_generate() {
        let full = Cli::command();
        let public = public_command();
        let names = |command: &clap::Command| command.get_subcommands().map(|s| s.get_name().to_owned()).collect();
        let mut expected: Vec<String> = names(&full);
        expected.retain(|name| name != "generate");
        assert_eq!(names(&public), expected);
        let ids = |command: &clap::Command| command.get_arguments().map(|a| a.get_id().to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&public), ids(&full));
        assert_eq!(public.get_version(), full.get_version());
        assert_eq!(public.get_about().map(ToString::to_string), full.get_about().map(ToString::to_string));
    }

    #[test]
    fn only_paths_complete_files() {
        let mut public = public_command();
        public.build();
        let hint = |path: &[&str], id: &str| {
            let mut command = &public;
            for name in path {
                command = command.find_subcommand(name).unwrap();
            }
            command.get_arguments().find(|a| a.get_id() == id).unwrap().get_value_hint()
        };
        assert_eq!(hint(&[], "secret_file"), ValueHint::FilePath);
        assert_eq!(hint(&["edit"], "replace"), ValueHint::FilePath);
        assert_eq!(hint(&["import"], "file"), ValueHint::FilePath);
        assert_eq!(hint(&["show"], "session"), ValueHint::Other);
        assert_eq!(hint(&["edit"], "id"), ValueHint::Other);
        assert_eq!(hint(&["list"], "user"), ValueHint::Other);
        assert_eq!(hint(&["revoke"], "user"), ValueHint::Other);
        assert_eq!(hint(&["delete"], "ids"), ValueHint::Other);
        assert_eq!(hint(&["serve-cron"], "schedule"), ValueHint::Other);
    }
}
