//! `status-router collector test`: evaluate a StatusCollector offline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use status_router::harness::collector::{load_collector, run_cases};

#[derive(Debug, Subcommand)]
pub enum CollectorCommand {
    /// Evaluate a StatusCollector over the WEC statuses of each case and print
    /// the CombinedStatus result; fail on an invalid collector or an unmet `expect`.
    Test {
        /// The StatusCollector (YAML, as applied to the WDS).
        collector: PathBuf,
        /// The cases: the object and the WECs' statuses (YAML).
        cases: PathBuf,
    },
}

pub fn run(cmd: CollectorCommand) -> anyhow::Result<ExitCode> {
    let CollectorCommand::Test { collector, cases } = cmd;
    let collector = load_collector(&collector)?;
    let mut failed = 0;
    for case in run_cases(&collector, &cases)? {
        let verdict = match case.passed {
            Some(true) => "ok  ",
            Some(false) => "FAIL",
            None => "----",
        };
        println!("{verdict} {}", case.name);
        println!("{}", serde_json::to_string_pretty(&case.result)?);
        if let Some(expected) = &case.expected {
            failed += 1;
            println!("expected:\n{}", serde_json::to_string_pretty(expected)?);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{failed} case(s) failed");
        ExitCode::FAILURE
    })
}
