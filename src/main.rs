//! `sessionctl`: inspect and maintain the sessions of apps built on the
//! `sessionctl` library.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
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
        Err(e) => match cli::exit_code(&e) {
            None => ExitCode::SUCCESS,
            Some(code) => {
                eprintln!("error: {}", cli::one_line(&e));
                ExitCode::from(code)
            }
        },
    }
}
