//! `status-router run`: the controller, with the embedded default policy
//! unless `--policy` names another; as one replica of several with
//! `--leader-elect`.
//!
//! Shutdown on SIGTERM (what the kubelet sends) or Ctrl-C: not ready at once,
//! no new work, the reconciles in flight finish (within [`SHUTDOWN_GRACE`]),
//! the Lease is released so that a standby takes over at once, exit 0.
//! Losing the Lease, or passing its renew deadline, stops the writes at once
//! and exits 1, so that the pod restarts as a standby.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use prometheus_client::registry::Registry;
use status_router::controller::{Config, Controller};
use status_router::hotswap::{self, Swapper, Validator};
use status_router::ops::leader::{Leadership, LeaseSettings};
use status_router::ops::serve;
use status_router::policy::active::ActivePolicy;
use status_router::policy::{CompiledCache, DEFAULT_POLICY, PolicyEngine};

use super::connect::ConnectArgs;
use super::logs::LogFormat;
use super::{BUILTIN_DEFAULT, LimitArgs};

/// How long the reconciles in flight at SIGTERM may take to finish (below
/// the pod's default `terminationGracePeriodSeconds` of 30).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// This WDS's name, as WorkStatuses carry it in `transport.kubestellar.io/originWdsName`
    /// (with --its-name, also the name of its KubeFlex ControlPlane).
    #[arg(long, env = "STATUS_ROUTER_WDS_NAME")]
    wds_name: String,
    /// The policy component, watched for changes; the embedded default policy when absent.
    #[arg(long, default_value = BUILTIN_DEFAULT)]
    policy: PathBuf,
    /// Also take the policy from this ConfigMap (binaryData key `policy.wasm`), watched.
    #[arg(long)]
    policy_configmap: Option<String>,
    /// The namespace of `--policy-configmap` (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    policy_namespace: Option<String>,
    /// The context of the shared kubeconfig where `--policy-configmap` lives (default: the WDS).
    #[arg(long)]
    policy_context: Option<String>,
    /// Cases every module must pass before it serves (the case file format of `policy test`).
    #[arg(long)]
    policy_conformance: Option<PathBuf>,
    /// Accept only the module with this sha256.
    #[arg(long)]
    policy_sha256: Option<String>,
    /// Where compiled policies are cached (default: ~/.cache/status-router/compiled-policies).
    #[arg(long)]
    policy_cache_dir: Option<PathBuf>,
    /// Reconciles run at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: u16,
    #[command(flatten)]
    leader: LeaderArgs,
    /// Serve GET /livez and /readyz on this address (port 0: any free port).
    #[arg(long, env = "STATUS_ROUTER_HEALTH_ADDR")]
    health_addr: Option<SocketAddr>,
    /// Serve GET /metrics (Prometheus) and /policy on this address (port 0: any free port).
    #[arg(long, env = "STATUS_ROUTER_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Once bound, write `health=ADDR` and `metrics=ADDR` lines here (atomically).
    #[arg(long, env = "STATUS_ROUTER_BOUND_ADDRS_FILE")]
    bound_addrs_file: Option<PathBuf>,
    /// Log lines as JSON objects (one a line) or as text.
    #[arg(long, env = "STATUS_ROUTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
struct LeaderArgs {
    /// Write only while holding a Lease in the WDS (for several replicas).
    #[arg(long, env = "STATUS_ROUTER_LEADER_ELECT")]
    leader_elect: bool,
    /// The Lease's namespace (default: $POD_NAMESPACE, else `kubestellar`).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// The Lease's name (default: `status-router-<wds-name>`).
    #[arg(long)]
    leader_election_id: Option<String>,
    /// How long a Lease holds after its last renewal.
    #[arg(long, default_value = "15s", value_parser = parse_seconds)]
    leader_election_lease_duration: Duration,
    /// A leader that could not renew for this long stops writing and exits.
    #[arg(long, default_value = "10s", value_parser = parse_seconds)]
    leader_election_renew_deadline: Duration,
    /// How often the leader renews and a standby tries to take the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_seconds)]
    leader_election_retry_period: Duration,
}

impl LeaderArgs {
    fn settings(&self, wds_name: &str) -> LeaseSettings {
        let identity = std::env::var("POD_NAME").unwrap_or_else(|_| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "status-router".into());
            format!("{host}-{}", std::process::id())
        });
        LeaseSettings {
            namespace: self
                .leader_election_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "kubestellar".into()),
            name: self
                .leader_election_id
                .clone()
                .unwrap_or_else(|| format!("status-router-{wds_name}")),
            identity,
            lease_duration: self.leader_election_lease_duration,
            renew_deadline: self.leader_election_renew_deadline,
            retry_period: self.leader_election_retry_period,
        }
    }
}

/// `15`, `15s` or `1m`: whole seconds, as a Lease counts.
pub(super) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix('s') {
        Some(n) => (n, 1),
        None => match text.strip_suffix('m') {
            Some(n) => (n, 60),
            None => (text, 1),
        },
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| Duration::from_secs(n * unit))
        .ok_or_else(|| format!("{text:?} is not a whole number of seconds (like 15s or 1m)"))
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    let engine = PolicyEngine::with_limits(args.limits.limits())?;
    let cache = CompiledCache::new(
        args.policy_cache_dir
            .clone()
            .unwrap_or_else(default_cache_dir),
    );
    let validator = Validator::new(
        engine,
        Some(cache),
        args.policy_sha256.clone(),
        args.policy_conformance.as_deref(),
    )?;
    let builtin = args.policy.as_os_str() == BUILTIN_DEFAULT;
    let (source, bytes) = if builtin {
        (BUILTIN_DEFAULT.to_string(), DEFAULT_POLICY.to_vec())
    } else {
        let bytes = std::fs::read(&args.policy)
            .with_context(|| format!("cannot read policy {}", args.policy.display()))?;
        (args.policy.display().to_string(), bytes)
    };
    let module = validator
        .validate(&source, &bytes)
        .with_context(|| format!("invalid policy {source}"))?;
    tracing::info!(%source, digest = %module.policy.info().digest, from_cache = module.from_cache, "policy loaded");
    let active = ActivePolicy::new(module);

    let spaces = args.connect.connect(&args.wds_name).await?;
    let wds = spaces.wds.clone();
    let controller = Controller::with_active_policy(
        wds.clone(),
        spaces.its.clone(),
        active.clone(),
        Config {
            wds_name: args.wds_name.clone(),
            workers: args.workers.into(),
        },
    );
    let health = controller.health();
    let mut registry = Registry::default();
    controller.metrics().register(&mut registry);
    active.register(&mut registry);
    let lease = if args.leader.leader_elect {
        Some(args.leader.settings(&args.wds_name))
    } else {
        None
    };
    let leadership = match lease {
        Some(settings) => {
            let leadership =
                Leadership::start(wds.clone(), settings, &health).context("leader election")?;
            leadership.register(&mut registry);
            Some(leadership)
        }
        None => None,
    };
    let registry = Arc::new(registry);
    start_servers(&args, &health, registry, active.clone()).await?;
    controller.preflight().await?;

    let policy_client = match &args.policy_context {
        Some(context) => spaces.context(context).await?,
        None => wds.clone(),
    };
    start_policy_sources(&args, builtin, policy_client, validator, active);

    let controller = match &leadership {
        Some(l) => controller.with_leadership(l.role()),
        None => controller,
    };
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        health.set_terminating();
        tracing::info!("shutting down: not ready, taking no new work, finishing what is in flight");
        let _ = stopping_tx.send(true);
    });
    let mut on_signal = stopping.clone();
    let run = controller.run(async move {
        let _ = on_signal.wait_for(|s| *s).await;
    });
    let grace = async {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let result = tokio::select! {
        result = run => result.map_err(anyhow::Error::from),
        () = grace => Err(anyhow::anyhow!("the reconciles in flight did not finish within {SHUTDOWN_GRACE:?}")),
    };
    match (result, leadership) {
        (Ok(()), Some(leadership)) => {
            leadership
                .release(Duration::from_secs(5))
                .await
                .context("releasing the Lease")?;
            tracing::info!("stopped");
            Ok(())
        }
        (Ok(()), None) => Ok(()),
        (Err(e), _) => Err(e),
    }
}

async fn start_servers(
    args: &RunArgs,
    health: &Arc<status_router::runtime::health::Health>,
    registry: Arc<Registry>,
    active: Arc<ActivePolicy>,
) -> anyhow::Result<()> {
    let mut bound = Vec::new();
    if let Some(addr) = args.health_addr {
        let routes = serve::health_routes(health.clone());
        bound.push((
            "health",
            serve::start("/livez and /readyz", addr, routes).await?,
        ));
    }
    if let Some(addr) = args.metrics_addr {
        let routes = serve::metrics_routes(registry, active);
        bound.push((
            "metrics",
            serve::start("/metrics and /policy", addr, routes).await?,
        ));
    }
    if let Some(path) = &args.bound_addrs_file {
        serve::write_bound_addrs(path, &bound)?;
    }
    Ok(())
}

fn start_policy_sources(
    args: &RunArgs,
    builtin: bool,
    policy_client: kube::Client,
    validator: Validator,
    active: Arc<ActivePolicy>,
) {
    let recorder = kube::runtime::events::Recorder::new(
        policy_client.clone(),
        kube::runtime::events::Reporter {
            controller: "status-router".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let swapper = Arc::new(Swapper::new(validator, active, Some(recorder)));
    if !builtin {
        let (path, swapper) = (args.policy.clone(), swapper.clone());
        tokio::spawn(async move {
            if let Err(e) = hotswap::file::watch(path, swapper).await {
                tracing::error!(error = %e, "cannot watch the policy file; swaps from it are off");
            }
        });
    }
    if let Some(name) = args.policy_configmap.clone() {
        let namespace = args
            .policy_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        tokio::spawn(hotswap::configmap::watch(
            policy_client,
            namespace,
            name,
            swapper,
        ));
    }
}

fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("status-router/compiled-policies")
}

/// Completes on Ctrl-C or SIGTERM (what Kubernetes sends a pod).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;
    use std::time::Duration;

    #[test]
    fn lease_timings_are_whole_seconds() {
        assert_eq!(parse_seconds("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("1m"), Ok(Duration::from_secs(60)));
        for bad in ["0s", "1.5s", "10ms", "", "s"] {
            let e = parse_seconds(bad).unwrap_err();
            assert!(e.contains("whole number of seconds"), "{bad}: {e}");
        }
    }
}
