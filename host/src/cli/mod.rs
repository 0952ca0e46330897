//! Command-line interface. `anyhow` lives here, at the binary's edge only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use status_router::policy::{DEFAULT_POLICY, Limits, Policy, PolicyEngine};

mod collector;
mod connect;
mod kubeflex;
pub mod logs;
mod new;
mod policy;
mod probe;
mod run;

/// Returns the status that KubeStellar WECs report onto WDS workload objects,
/// with the routing decided by a WebAssembly policy.
#[derive(Debug, Parser)]
#[command(name = "status-router", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller.
    Run(Box<run::RunArgs>),
    /// Check, run and test policy components.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Evaluate StatusCollectors offline.
    #[command(subcommand)]
    Collector(collector::CollectorCommand),
    /// Print the CRDs of Binding, WorkStatus, StatusCollector, CombinedStatus
    /// and BindingPolicy, generated from the Rust types.
    Crds,
    /// GET an endpoint of a running controller (livez, readyz, metrics, policy); exit 0 iff 2xx.
    Probe(probe::ProbeArgs),
}

impl Cli {
    /// How to log: `run --log-format`; text for the other commands.
    pub fn log_format(&self) -> logs::LogFormat {
        match &self.command {
            Command::Run(args) => args.log_format,
            _ => logs::LogFormat::Text,
        }
    }
}

/// The sandbox limits of policy calls.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Deadline of one policy call, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    policy_deadline_ms: u64,
    /// Memory cap of a policy instance, in MiB.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=4096))]
    policy_memory_mib: u64,
    /// Replace a worker's policy instance by a fresh one after this many calls
    /// (it is also replaced when its memory passes 3/4 of the cap).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    policy_recycle_calls: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            deadline: Duration::from_millis(self.policy_deadline_ms),
            memory: (self.policy_memory_mib as usize) << 20,
            recycle_after_calls: self.policy_recycle_calls,
        }
    }
}

/// The name that stands for the embedded default policy where a path is expected.
pub const BUILTIN_DEFAULT: &str = "builtin:default";

/// Loads a policy from a path, or the embedded default for [`BUILTIN_DEFAULT`].
fn load_policy(engine: &PolicyEngine, path: &PathBuf) -> anyhow::Result<Policy> {
    let policy = if path.as_os_str() == BUILTIN_DEFAULT {
        engine.load(DEFAULT_POLICY)
    } else {
        engine.load_file(path)
    };
    policy.map_err(|e| anyhow::anyhow!("invalid policy {}: {e}", path.display()))
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Probe(args) => probe::run(args),
        Command::Collector(cmd) => collector::run(cmd),
        Command::Crds => {
            print!("{}", status_router::kubestellar::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
