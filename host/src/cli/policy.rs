//! `status-router policy ...`: load, run and test policies from the shell,
//! JSON in and out.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use status_router::harness::{Check, Outcome, read_case_file, run_case};
use status_router::policy::{AggregateDoc, DecisionDoc, PolicyEngine, PolicyInstance, RequestDoc};

use super::{LimitArgs, load_policy};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load and validate a policy; print its interface, version and exports.
    Check {
        /// The component (`.wasm`), or `builtin:default`.
        policy: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print the decision for a request (JSON) as `{"handler": ..., "wecs": [...]}`.
    Decide {
        /// The component (`.wasm`), or `builtin:default`.
        policy: PathBuf,
        /// The request as JSON or YAML; standard input when absent.
        #[arg(long)]
        request: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Print the aggregated status for `{"object": ..., "reported": [...]}`.
    Aggregate {
        /// The component (`.wasm`), or `builtin:default`.
        policy: PathBuf,
        /// The input as JSON or YAML; standard input when absent.
        #[arg(long)]
        request: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Run table-driven case files; ends with `N passed, M failed`.
    Test {
        /// The component (`.wasm`), or `builtin:default`.
        policy: PathBuf,
        /// Case files (YAML).
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        /// Run only the `decide` cases: a policy that routes as KubeStellar but
        /// aggregates its own way checks its routing against the conformance file.
        #[arg(long)]
        routing_only: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Write a new policy that `policy test` accepts as it is: source, build
    /// file, README and a case file, in DIR (default: ./NAME).
    New {
        /// The policy's name (lowercase letters, digits and dashes).
        name: String,
        /// Where to write it; must not exist or be empty.
        dir: Option<PathBuf>,
        /// The language: rust, python or js.
        #[arg(long, value_enum)]
        lang: super::new::Lang,
    },
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { policy, limits } => {
            let engine = PolicyEngine::with_limits(limits.limits())?;
            let info = load_policy(&engine, &policy)?.info().clone();
            println!("valid policy: {}", policy.display());
            println!("  interface: {}", info.interface);
            println!("  version:   {}", info.version);
            println!("  exports:   {}", info.functions.join(", "));
            println!("  digest:    {}", info.digest);
            println!("  size:      {} bytes", info.size);
            if info.producers.is_empty() {
                println!("  toolchain: (the component does not say)");
            } else {
                println!("  toolchain: {}", info.producers.join("; "));
            }
            println!("  imports:   none");
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Decide {
            policy,
            request,
            limits,
        } => {
            let req: RequestDoc = read_input(request.as_ref())?;
            let mut instance = instance(&policy, &limits)?;
            let decision = DecisionDoc::from(instance.decide(&(&req).into())?);
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Aggregate {
            policy,
            request,
            limits,
        } => {
            let input: AggregateDoc = read_input(request.as_ref())?;
            let mut instance = instance(&policy, &limits)?;
            let object = (&input.object).into();
            match instance.aggregate(&object, &input.reported_statuses())? {
                Ok(status) => {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                    Ok(ExitCode::SUCCESS)
                }
                Err(refusal) => anyhow::bail!("the policy cannot aggregate: {refusal}"),
            }
        }
        PolicyCommand::Test {
            policy,
            cases,
            routing_only,
            limits,
        } => test(&policy, &cases, routing_only, &limits),
        PolicyCommand::New { name, dir, lang } => super::new::run(lang, &name, dir),
    }
}

fn test(
    policy: &PathBuf,
    files: &[PathBuf],
    routing_only: bool,
    limits: &LimitArgs,
) -> anyhow::Result<ExitCode> {
    // Parse every file first: a malformed file fails the run before any case does.
    let files = files
        .iter()
        .map(|f| read_case_file(f).map(|cases| (f, cases)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut instance = instance(policy, limits)?;
    let (mut passed, mut failed) = (0, 0);
    for (file, cases) in &files {
        let cases = cases
            .iter()
            .filter(|c| !routing_only || matches!(c.check, Check::Decide { .. }));
        for case in cases {
            match run_case(&mut instance, case) {
                Outcome::Pass => {
                    passed += 1;
                    println!("ok   {}: {}", file.display(), case.name);
                }
                failure => {
                    failed += 1;
                    println!("FAIL {}: {}", file.display(), case.name);
                    print!("{}", failure.diff());
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn instance(policy: &PathBuf, limits: &LimitArgs) -> anyhow::Result<PolicyInstance> {
    let engine = PolicyEngine::with_limits(limits.limits())?;
    Ok(PolicyInstance::new(load_policy(&engine, policy)?))
}

/// Reads a JSON or YAML document from a file, or from standard input.
fn read_input<T: serde::de::DeserializeOwned>(file: Option<&PathBuf>) -> anyhow::Result<T> {
    let (text, source) = match file {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            path.display().to_string(),
        ),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            (text, "standard input".to_string())
        }
    };
    status_router::policy::from_json_or_yaml(&text)
        .with_context(|| format!("invalid input in {source}"))
}
