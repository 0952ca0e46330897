//! `local-control-plane`: runs the testenv control plane (etcd + WDS + ITS kube-apiservers) in
//! the foreground, for trying status-router or kubectl by hand. Stops cleanly on Ctrl-C/SIGTERM.
//!
//! Why a separate binary: the same servers the tests use, started the same way, so what works by
//! hand works in tests.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use testenv::{Authorization, ControlPlane};

/// Run a local KubeStellar-like control plane: one etcd, a WDS and an ITS kube-apiserver.
#[derive(Parser, Debug)]
#[command(name = "local-control-plane")]
struct Args {
    /// Also copy the kubeconfig (contexts `wds` and `its`) to this path.
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: Option<PathBuf>,
    /// CRD YAML files to install into both the WDS and the ITS.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    install_crds: Vec<PathBuf>,
    /// Authorize with RBAC, as a real cluster does (the kubeconfig's admin is in
    /// `system:masters`); without it every request is allowed.
    #[arg(long)]
    rbac: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let authorization = if args.rbac {
        Authorization::Rbac
    } else {
        Authorization::AlwaysAllow
    };
    let cp = ControlPlane::start_with(authorization).context("starting the local control plane")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(run(&cp, &args));
    eprintln!("stopping the control plane...");
    cp.stop();
    eprintln!("stopped.");
    result
}

async fn run(cp: &ControlPlane, args: &Args) -> anyhow::Result<()> {
    let mut kubeconfig = cp.kubeconfig_path().to_path_buf();
    if let Some(out) = &args.kubeconfig_out {
        std::fs::copy(&kubeconfig, out)
            .with_context(|| format!("copying the kubeconfig to {}", out.display()))?;
        kubeconfig = out.clone();
    }
    if !args.install_crds.is_empty() {
        for (space, client) in [
            ("WDS", cp.wds_client().await?),
            ("ITS", cp.its_client().await?),
        ] {
            let names = testenv::install_crd_files(&client, &args.install_crds).await?;
            eprintln!("installed CRDs in the {space}: {}", names.join(", "));
        }
    }
    println!("WDS: {}", cp.wds().url);
    println!("ITS: {}", cp.its().url);
    println!("kubeconfig: {}", kubeconfig.display());
    println!(
        "try: kubectl --kubeconfig {} --context wds get ns",
        kubeconfig.display()
    );
    println!(
        "     kubectl --kubeconfig {} --context its get ns",
        kubeconfig.display()
    );
    println!("logs and data: {}", cp.dir().display());
    println!("press Ctrl-C to stop");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
