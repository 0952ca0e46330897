//! `cargo xtask test`'s run of `cargo test`: every test binary, whatever
//! fails, and one closing count of what really ran.
//!
//! `cargo test` stops at the first test binary that fails, so one failure
//! would hide every result after it: the run uses `--no-fail-fast`. Nothing
//! is left out: what the tests need from outside the clone (the control
//! plane, KubeStellar's controller-manager and CRDs) comes from pinned Go
//! modules that `cargo xtask test` builds or reads first.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use xtask::workspace_root;

use super::Result;

/// What libtest's `test result:` lines add up to.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries: u64,
}

impl Tally {
    /// Adds one `test result: ok. 5 passed; 0 failed; 0 ignored; ...` line.
    fn add(&mut self, line: &str) -> bool {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return false;
        };
        let count = |what: &str| {
            rest.split(';')
                .filter_map(|part| part.trim().strip_suffix(what))
                .filter_map(|n| n.trim().rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        };
        self.passed += count(" passed");
        self.failed += count(" failed");
        self.ignored += count(" ignored");
        self.binaries += 1;
        true
    }
}

/// Runs every test of the workspace; fails if any failed or did not report.
pub fn run() -> Result {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {cargo} test: {e}"))?;
    let mut tally = Tally::default();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line.map_err(|e| format!("reading the output of cargo test: {e}"))?;
        println!("{line}");
        tally.add(&line);
    }
    let status = child.wait()?;

    println!();
    if tally.ignored > 0 {
        println!(
            "ignored: {} (an #[ignore] test never runs here)",
            tally.ignored
        );
    }
    println!("test binaries that reported: {}", tally.binaries);
    // The closing line CI reads.
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    if !status.success() {
        if tally.failed == 0 {
            return Err(format!(
                "cargo test failed ({status}) without a failing test: a build error or a test \
                 binary that crashed before reporting (see above)"
            )
            .into());
        }
        return Err(format!("{} test(s) failed (see above)", tally.failed).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_up_result_lines() {
        let mut tally = Tally::default();
        assert!(tally.add(
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 3.21s"
        ));
        assert!(tally.add(
            "test result: FAILED. 3 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.50s"
        ));
        assert!(!tally.add("running 5 tests"));
        assert!(!tally.add("test a_test ... ok"));
        assert_eq!(
            tally,
            Tally {
                passed: 15,
                failed: 2,
                ignored: 1,
                binaries: 2
            }
        );
    }
}
