//! `sessionctl`: inspect and maintain the sessions of apps built on the
//! `sessionctl` library.

use std::process::ExitCode;

use clap::Parser as _;

mod cli;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, like every other error.
            eprintln!("{}", cli::usage_error_line(&e.to_string()));
            return ExitCode::from(cli::EXIT_USAGE);
        }
    };
    cli::init_logging(&cli);
    let ignore_not_found = cli.global.ignore_not_found;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async { cli::run(cli).await.and_then(|()| cli::output::flush()) });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match cli::exit_code(&e, ignore_not_found) {
            None => ExitCode::SUCCESS,
            Some(code) => {
                eprintln!("error: {}", cli::one_line(&e));
                ExitCode::from(code)
            }
        },
    }
}
