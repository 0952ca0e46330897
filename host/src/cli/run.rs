//! `status-router run`: the controller, with the embedded default policy
//! unless `--policy` names another.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use status_router::controller::{Config, Controller};
use status_router::hotswap::{self, ActivePolicy, Swapper, Validator};
use status_router::policy::{CompiledCache, DEFAULT_POLICY, PolicyEngine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BUILTIN_DEFAULT, LimitArgs};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The kubeconfig holding the WDS and ITS contexts (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context of the WDS.
    #[arg(long, default_value = "wds")]
    wds_context: String,
    /// The kubeconfig context of the ITS.
    #[arg(long, default_value = "its")]
    its_context: String,
    /// This WDS's name, as WorkStatuses carry it in `transport.kubestellar.io/originWdsName`.
    #[arg(long)]
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
    /// The kubeconfig context where `--policy-configmap` lives (default: the WDS's).
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
    /// Serve Prometheus metrics on this address (for example 127.0.0.1:9090).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    limits: LimitArgs,
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

    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
        None => Kubeconfig::read()
            .context("cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config)")?,
    };
    let wds = client(&kubeconfig, &args.wds_context).await?;
    let its = client(&kubeconfig, &args.its_context).await?;
    let controller = Controller::with_active_policy(
        wds.clone(),
        its,
        active.clone(),
        Config {
            wds_name: args.wds_name,
            workers: args.workers.into(),
        },
    );
    controller.preflight().await?;

    let policy_client = match &args.policy_context {
        Some(context) => client(&kubeconfig, context).await?,
        None => wds,
    };
    let recorder = kube::runtime::events::Recorder::new(
        policy_client.clone(),
        kube::runtime::events::Reporter {
            controller: "status-router".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let swapper = std::sync::Arc::new(Swapper::new(validator, active.clone(), Some(recorder)));
    if !builtin {
        let (path, swapper) = (args.policy.clone(), swapper.clone());
        tokio::spawn(async move {
            if let Err(e) = hotswap::file::watch(path, swapper).await {
                tracing::error!(error = %e, "cannot watch the policy file; swaps from it are off");
            }
        });
    }
    if let Some(name) = args.policy_configmap {
        let namespace = args
            .policy_namespace
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into());
        tokio::spawn(hotswap::configmap::watch(
            policy_client,
            namespace,
            name,
            swapper.clone(),
        ));
    }
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(%addr, "serving /metrics and /policy");
        tokio::spawn(serve_metrics(listener, controller.metrics(), active));
    }
    controller.run(shutdown_signal()).await?;
    Ok(())
}

fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("status-router/compiled-policies")
}

async fn client(kubeconfig: &Kubeconfig, context: &str) -> anyhow::Result<kube::Client> {
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .with_context(|| format!("kubeconfig context {context:?}"))?;
    kube::Client::try_from(config).with_context(|| format!("client for context {context:?}"))
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

/// A minimal HTTP endpoint: `GET /metrics` in Prometheus' text format and
/// `GET /policy`, the active policy and the record of swaps, as JSON.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<status_router::controller::metrics::Metrics>,
    policy: std::sync::Arc<ActivePolicy>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (metrics, policy) = (metrics.clone(), policy.clone());
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let text = "text/plain; version=0.0.4";
            let (status, content_type, body) = if request.starts_with("GET /metrics ") {
                ("200 OK", text, metrics.render() + &policy.render_metrics())
            } else if request.starts_with("GET /policy ") {
                (
                    "200 OK",
                    "application/json",
                    format!("{:#}\n", policy.status()),
                )
            } else {
                (
                    "404 Not Found",
                    text,
                    "not found: try GET /metrics or GET /policy\n".to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
