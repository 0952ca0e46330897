//! The `status-router` binary: the controller and the policy tools.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::logs::init(args.log_format());
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("status-router: {e:#}");
            ExitCode::FAILURE
        }
    }
}
