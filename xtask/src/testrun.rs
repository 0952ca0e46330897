//! `cargo xtask test`'s run of `cargo test`: every test binary, whatever
//! fails, and one closing count of what really ran.
//!
//! `cargo test` stops at the first test binary that fails, so one failure
//! would hide every result after it: the run uses `--no-fail-fast`. Tests
//! that need files from outside the clone (KubeStellar's published CRDs) are
//! left out, loudly and by name, where those files are missing; in CI
//! (`CI` set) nothing is left out, so a missing directory fails there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use xtask::{
    KUBESTELLAR_CRDS_ENV, NEEDS_KUBESTELLAR_CRDS, kubestellar_crds_dir, kubestellar_crds_present,
    workspace_root,
};

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
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let mut skip = Vec::new();
    if !kubestellar_crds_present() && !in_ci {
        skip.push(NEEDS_KUBESTELLAR_CRDS);
    }

    let mut test = Command::new(&cargo);
    test.args(["test", "--workspace", "--no-fail-fast", "--"]);
    for pattern in &skip {
        test.args(["--skip", pattern]);
    }
    let mut child = test
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

    let not_run = if skip.is_empty() {
        Vec::new()
    } else {
        list_tests(&cargo, NEEDS_KUBESTELLAR_CRDS)?
    };
    if !not_run.is_empty() {
        println!();
        println!(
            "NOT RUN ({}): KubeStellar's published CRDs are not in {}.",
            not_run.len(),
            kubestellar_crds_dir().display()
        );
        println!(
            "  To run them, set ${KUBESTELLAR_CRDS_ENV} to a directory holding \
             control.kubestellar.io_*.yaml (KubeStellar's config/crd/bases/); CI has them."
        );
        for name in &not_run {
            println!("  not run: {name}");
        }
    }
    println!();
    if tally.ignored > 0 {
        println!(
            "ignored: {} (an #[ignore] test never runs here)",
            tally.ignored
        );
    }
    println!("test binaries that reported: {}", tally.binaries);
    // The closing line CI reads: what ran, and what was left out above.
    if not_run.is_empty() {
        println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    } else {
        let (passed, failed, skipped) = (tally.passed, tally.failed, not_run.len());
        println!("tests: {passed} passed, {failed} failed, {skipped} skipped");
    }
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

/// The tests whose names contain `filter`, by `--list`ing them (no test runs).
fn list_tests(cargo: &str, filter: &str) -> Result<Vec<String>> {
    let output = Command::new(cargo)
        .args(["test", "--workspace", "--quiet", "--", filter, "--list"])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not list the tests: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_string)
        .collect())
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
