//! The `driftd` binary: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = driftd::cli::Cli::parse();
    match driftd::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("driftd: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
