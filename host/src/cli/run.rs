//! `status-router run`: the controller, with the embedded default policy
//! unless `--policy` names another.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use status_router::controller::{Config, Controller};
use status_router::policy::PolicyEngine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BUILTIN_DEFAULT, LimitArgs, load_policy};

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
    /// The policy component; the embedded default policy when absent.
    #[arg(long, default_value = BUILTIN_DEFAULT)]
    policy: PathBuf,
    /// Reconciles run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024))]
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
    let policy = load_policy(&engine, &args.policy)?;
    tracing::info!(policy = %args.policy.display(), digest = %policy.info().digest, "policy loaded");
    let kubeconfig = match &args.kubeconfig {
        Some(path) => Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?,
        None => Kubeconfig::read()
            .context("cannot read the kubeconfig ($KUBECONFIG or ~/.kube/config)")?,
    };
    let wds = client(&kubeconfig, &args.wds_context).await?;
    let its = client(&kubeconfig, &args.its_context).await?;
    let controller = Controller::new(
        wds,
        its,
        policy,
        Config {
            wds_name: args.wds_name,
            workers: args.workers.into(),
        },
    );
    controller.preflight().await?;
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(%addr, "serving metrics on /metrics");
        tokio::spawn(serve_metrics(listener, controller.metrics()));
    }
    controller.run(shutdown_signal()).await?;
    Ok(())
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

/// A minimal HTTP endpoint: `GET /metrics` in Prometheus' text format.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<status_router::controller::metrics::Metrics>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let (status, body) = if request.starts_with("GET /metrics ") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "not found: try GET /metrics\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
