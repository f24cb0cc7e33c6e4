//! `sessionctl generate` (hidden): writes `completions/` and `man/` from the
//! clap definition. A test fails when the committed copies are stale.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};
use clap_complete::Shell;

use super::Cli;

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
        clap_complete::generate(shell, &mut Cli::command(), "sessionctl", &mut buffer);
        files.push((Path::new("completions").join(name), buffer));
    }
    let command = Cli::command();
    let mut buffer = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut buffer)?;
    files.push((Path::new("man").join("sessionctl.1"), buffer));
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sessionctl-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).bin_name(name.clone());
        let mut buffer = Vec::new();
        clap_mangen::Man::new(sub).render(&mut buffer)?;
        files.push((Path::new("man").join(format!("{name}.1")), buffer));
    }
    Ok(files)
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
