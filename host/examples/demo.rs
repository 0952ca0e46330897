//! The local demo (`cargo xtask demo`): a real WDS and ITS on loopback, the
//! `status-router` binary with its embedded default policy, and the objects
//! KubeStellar's binding controller and status agent would create. It shows a
//! WEC's status arriving on the WDS Deployment, following an update, and being
//! cleared, then stops everything it started.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use status_router::kubestellar::{Binding, WorkStatus, crds_yaml};

const WDS_NAME: &str = "demo-wds";
const WEC: &str = "wec1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    step("starting a local control plane: etcd, a WDS and an ITS kube-apiserver");
    let plane = testenv::ControlPlane::start().context("start the local control plane")?;
    println!(
        "   kubeconfig: {} (contexts wds, its)",
        plane.kubeconfig_path().display()
    );
    let wds = plane.wds_client().await?;
    let its = plane.its_client().await?;

    step("installing the Binding and WorkStatus CRDs (`status-router crds`)");
    testenv::install_crds(&wds, &crds_yaml()).await?;
    testenv::install_crds(&its, &crds_yaml()).await?;

    step("starting `status-router run` with the embedded default policy");
    let started = Instant::now();
    let mut controller = Controller::start(plane.kubeconfig_path())?;
    // A WEC reports long after its controller started; so the demo times the
    // controller's start (on a fresh machine mostly the policy's first
    // compile, cached after) apart from the status's way back.
    controller.ready(Duration::from_secs(300))?;
    println!(
        "   controller ready after {:?} (policy load, preflight, first lists)",
        started.elapsed()
    );

    step("creating what KubeStellar would: a Deployment and a singleton Binding in the WDS");
    create_namespace(&wds, "demo").await?;
    create_namespace(&its, WEC).await?;
    let deployments: Api<Deployment> = Api::namespaced(wds.clone(), "demo");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
            }))?,
        )
        .await?;
    let bindings: Api<Binding> = Api::all(wds.clone());
    bindings
        .create(&PostParams::default(), &binding(true))
        .await?;

    step("the status agent of WEC wec1 reports: 2 of 2 replicas available");
    let statuses: Api<WorkStatus> = Api::namespaced(its.clone(), WEC);
    statuses
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "WorkStatus",
                "metadata": {"name": "appsv1-deployment-demo-web", "labels": {
                    "transport.kubestellar.io/originWdsName": WDS_NAME,
                    "transport.kubestellar.io/originOwnerReferenceBindingKey": "web"}},
                "spec": {"sourceRef": {"group": "apps", "version": "v1", "resource": "deployments",
                                       "kind": "Deployment", "namespace": "demo", "name": "web"}}
            }))?,
        )
        .await?;
    report(
        &statuses,
        json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}),
    )
    .await?;
    show(&deployments, |s, labelled| {
        labelled && s["availableReplicas"] == 2
    })
    .await?;

    step("wec1 now reports 1 available replica: the WDS status follows");
    report(
        &statuses,
        json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 1}),
    )
    .await?;
    show(&deployments, |s, labelled| {
        labelled && s["availableReplicas"] == 1
    })
    .await?;

    step("the Binding stops asking for singleton status: the status is cleared");
    bindings
        .replace("web", &PostParams::default(), &{
            let mut b = binding(false);
            b.metadata.resource_version = bindings.get("web").await?.metadata.resource_version;
            b
        })
        .await?;
    show(&deployments, |s, labelled| !labelled && s == &json!({})).await?;

    step("stopping the controller and the control plane");
    controller.stop();
    drop(plane);
    println!("\ndemo finished: nothing is left running");
    Ok(())
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn binding(singleton: bool) -> Binding {
    serde_json::from_value(json!({
        "apiVersion": "control.kubestellar.io/v1alpha1", "kind": "Binding",
        "metadata": {"name": "web"},
        "spec": {"destinations": [{"clusterId": WEC}],
                 "workload": {"namespaceScope": [{
                     "group": "apps", "version": "v1", "resource": "deployments",
                     "namespace": "demo", "name": "web", "resourceVersion": "1",
                     "wantSingletonReportedState": singleton}]}}
    }))
    .expect("a valid Binding")
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

async fn report(statuses: &Api<WorkStatus>, status: Value) -> anyhow::Result<()> {
    let patch = Patch::Merge(json!({"status": status}));
    statuses
        .patch_status(
            "appsv1-deployment-demo-web",
            &PatchParams::default(),
            &patch,
        )
        .await?;
    Ok(())
}

/// Waits until the WDS Deployment's status, and whether it carries our
/// label, satisfy `done`; then prints them.
async fn show(
    deployments: &Api<Deployment>,
    done: impl Fn(&Value, bool) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let d = deployments.get("web").await?;
        let status = serde_json::to_value(d.status.clone().unwrap_or_default())?;
        let ours: Vec<String> = d
            .labels()
            .keys()
            .filter(|k| k.starts_with("managed-by.kubestellar.io/"))
            .cloned()
            .collect();
        if done(&status, !ours.is_empty()) {
            println!(
                "   WDS Deployment demo/web after {:?}: status {status}, labels {ours:?}",
                start.elapsed()
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the WDS Deployment's status did not arrive within 30 s; it is {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `status-router` binary, run as an operator would run it, and the
/// signal that it is ready.
struct Controller(Child, std::sync::mpsc::Receiver<()>);

impl Controller {
    fn start(kubeconfig: &std::path::Path) -> anyhow::Result<Self> {
        // Examples live in target/<profile>/examples; the binary beside them.
        let exe = std::env::current_exe()?;
        let binary = exe
            .parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("status-router"))
            .filter(|b| b.exists())
            .context("build the binary first: cargo build -p status-router")?;
        println!(
            "   {} run --kubeconfig {} --wds-name {WDS_NAME}",
            binary.display(),
            kubeconfig.display()
        );
        let mut child = Command::new(binary)
            .args(["run", "--wds-name", WDS_NAME, "--kubeconfig"])
            .arg(kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("start status-router")?;
        // Its log goes on to ours; the line "controller started" says it is ready.
        let (tx, rx) = std::sync::mpsc::channel();
        let log = child.stderr.take().context("the controller's stderr")?;
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if line.contains("controller started") {
                    let _ = tx.send(());
                }
            }
        });
        Ok(Self(child, rx))
    }

    /// Waits until the controller logs that its watches have listed and its
    /// workers run.
    fn ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        match self.1.recv_timeout(timeout) {
            Ok(()) => Ok(()),
            Err(_) => match self.0.try_wait()? {
                Some(status) => bail!("status-router exited ({status}) before it was ready"),
                None => bail!("status-router not ready after {timeout:?}"),
            },
        }
    }

    fn stop(&mut self) {
        // SIGTERM, as Kubernetes stops a pod; the controller finishes in-flight work.
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
