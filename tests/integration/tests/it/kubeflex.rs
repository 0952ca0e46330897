//! `status-router run --its-name` finds its spaces as KubeStellar's controller-manager does:
//! through KubeFlex `ControlPlane` objects of the hosting cluster and the kubeconfig Secrets
//! their `status.secretRef` names (`host/src/cli/kubeflex/`).
//!
//! On a private control plane, the WDS API server doubles as the hosting cluster: it serves
//! KubeFlex's ControlPlane CRD (from the Go module `go/kubestellar` pins, never copied here), and
//! holds the ControlPlanes and Secrets; the Secrets hold one-context kubeconfigs of the WDS and
//! the ITS. The real `status-router` binary runs as a process with a kubeconfig that names the
//! hosting cluster alone, started before any ControlPlane exists, as a pod started by the chart
//! would be.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::*;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::{Value, json};
use testenv::ControlPlane;
use tokio::sync::Mutex;

/// One private control plane at a time: the machine runs a test's etcd and two API servers.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// How long the controller may take to find its spaces once all is in place (two polls of 2 s
/// and the start of a process).
const FOUND: Duration = Duration::from_secs(30);

/// The hosting cluster (the WDS of a private control plane) with the ControlPlane CRD and ours,
/// and one-context kubeconfigs of the hosting cluster and of each space.
struct Hosting {
    plane: ControlPlane,
    wds: Client,
    its: Client,
    hosting_kubeconfig: PathBuf,
}

impl Hosting {
    async fn start() -> Self {
        init_logs();
        let plane = tokio::task::spawn_blocking(ControlPlane::start)
            .await
            .expect("start task")
            .expect("start a private control plane");
        let (wds, its) = (
            plane.wds_client().await.expect("WDS client"),
            plane.its_client().await.expect("ITS client"),
        );
        let crds = status_router::kubestellar::crds_yaml();
        testenv::install_crds(&wds, &crds)
            .await
            .expect("install our CRDs in the WDS");
        testenv::install_crds(&its, &crds)
            .await
            .expect("install our CRDs in the ITS");
        let controlplane_crd = tokio::task::spawn_blocking(xtask::gomod::controlplane_crd)
            .await
            .expect("go task")
            .unwrap_or_else(|e| panic!("KubeFlex's ControlPlane CRD: {e}"));
        testenv::install_crd_files(&wds, &[controlplane_crd])
            .await
            .expect("install KubeFlex's ControlPlane CRD in the hosting cluster");
        let hosting_kubeconfig = plane.dir().join("hosting.kubeconfig");
        write_one_context(plane.kubeconfig_path(), "wds", &hosting_kubeconfig);
        Self {
            plane,
            wds,
            its,
            hosting_kubeconfig,
        }
    }

    /// A one-context kubeconfig of `context` (`wds` or `its`), as KubeFlex stores one.
    fn space_kubeconfig(&self, context: &str) -> String {
        let path = self.plane.dir().join(format!("{context}.kubeconfig"));
        write_one_context(self.plane.kubeconfig_path(), context, &path);
        std::fs::read_to_string(path).expect("read the space kubeconfig")
    }

    fn control_planes(&self) -> Api<DynamicObject> {
        Api::all_with(self.wds.clone(), &control_plane_resource())
    }

    /// A ControlPlane as KubeStellar's core chart creates one, before KubeFlex sets its status.
    async fn create_control_plane(&self, name: &str, cptype: &str) {
        let ar = control_plane_resource();
        let mut cp = DynamicObject::new(name, &ar).data(json!({
            "spec": {"type": "k8s", "backend": "shared"},
        }));
        cp.metadata.labels = Some(BTreeMap::from([(
            "kflex.kubestellar.io/cptype".to_string(),
            cptype.to_string(),
        )]));
        self.control_planes()
            .create(&PostParams::default(), &cp)
            .await
            .unwrap_or_else(|e| panic!("create ControlPlane {name}: {e}"));
    }

    /// Sets `status.secretRef` through the status subresource, as KubeFlex does.
    async fn set_secret_ref(&self, name: &str, secret_ref: Value) {
        let status = json!({"status": {
            "conditions": [],
            "observedGeneration": 1,
            "secretRef": secret_ref,
        }});
        let cp = self
            .control_planes()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .unwrap_or_else(|e| panic!("set the status of ControlPlane {name}: {e}"));
        assert!(
            cp.data["status"]["secretRef"].is_object(),
            "the status subresource kept secretRef"
        );
    }

    /// Secret `<cp>-system/<cp>-kubeconfig` with the kubeconfig of `context` under both keys
    /// (`kubeconfig`, `kubeconfig-incluster`), in its namespace, made here.
    async fn create_secret(&self, control_plane: &str, context: &str) {
        let namespace = format!("{control_plane}-system");
        testenv::create_namespace_named(&self.wds, &namespace).await;
        let kubeconfig = ByteString(self.space_kubeconfig(context).into_bytes());
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("{control_plane}-kubeconfig")),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("kubeconfig".to_string(), kubeconfig.clone()),
                ("kubeconfig-incluster".to_string(), kubeconfig),
            ])),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.wds.clone(), &namespace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create the Secret of {control_plane}: {e}"));
    }

    /// `status-router run --kubeconfig HOSTING --wds-name WDS --its-name ITS` and `extra`.
    fn run(&self, wds_name: &str, its_name: &str, extra: &[&str]) -> Controller {
        let dir = self.plane.dir();
        let log = dir.join(format!("status-router-{wds_name}.log"));
        let out = File::create(&log).expect("create the controller log");
        let err = out.try_clone().expect("dup the log handle");
        let mut cmd = Command::new(binary());
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(&self.hosting_kubeconfig)
            .args(["--wds-name", wds_name, "--its-name", its_name])
            .arg("--policy-cache-dir")
            .arg(dir.join("compiled"))
            .args(extra)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // Outside a pod, with no kubeconfig but --kubeconfig: `key` is read, and nothing of
            // the machine running the test decides otherwise.
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env_remove("STATUS_ROUTER_WDS_KUBECONFIG")
            .env_remove("STATUS_ROUTER_ITS_KUBECONFIG")
            .env_remove("STATUS_ROUTER_ITS_NAME")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        Controller {
            child: testenv::spawn_child(cmd).expect("start status-router run"),
            log,
        }
    }
}

/// A `status-router run` process, killed on drop.
struct Controller {
    child: Child,
    log: PathBuf,
}

impl Controller {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line with every one of `parts`.
    async fn wait_log(&self, parts: &[&str]) {
        let what = format!("a log line with {parts:?}");
        wait_for(&what, FOUND, || async {
            let log = self.log();
            if log.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
                Ok(())
            } else {
                Err(format!("log:\n{log}"))
            }
        })
        .await
    }

    /// Waits until the process exits by itself; its exit status and log.
    async fn wait_exit(&mut self, timeout: Duration) -> (std::process::ExitStatus, String) {
        let start = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.log());
            }
            assert!(
                start.elapsed() < timeout,
                "status-router still runs after {timeout:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn control_plane_resource() -> kube::api::ApiResource {
    api_resource(
        "tenancy.kflex.kubestellar.org",
        "v1alpha1",
        "ControlPlane",
        "controlplanes",
    )
}

fn secret_ref(control_plane: &str, key: &str) -> Value {
    json!({
        "namespace": format!("{control_plane}-system"),
        "name": format!("{control_plane}-kubeconfig"),
        "key": key,
        "inClusterKey": "kubeconfig-incluster",
    })
}

/// Writes a kubeconfig holding only `context` of `from` (its cluster and user), as current.
fn write_one_context(from: &Path, context: &str, to: &Path) {
    let mut kubeconfig = Kubeconfig::read_from(from).expect("read the control plane's kubeconfig");
    kubeconfig.contexts.retain(|c| c.name == context);
    let ctx = kubeconfig.contexts[0].context.clone().expect("context");
    kubeconfig.clusters.retain(|c| c.name == ctx.cluster);
    kubeconfig
        .auth_infos
        .retain(|u| Some(&u.name) == ctx.user.as_ref());
    kubeconfig.current_context = Some(context.to_string());
    let yaml = serde_yaml::to_string(&kubeconfig).expect("serialize the kubeconfig");
    std::fs::write(to, yaml).expect("write the kubeconfig");
}

/// The `status-router` binary beside this test binary (target/<profile>/).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile.join("status-router");
    assert!(
        binary.is_file(),
        "this test runs the real controller, and {} is missing: build it first with \
         `cargo build -p status-router --bin status-router` (`cargo xtask test` does)",
        binary.display()
    );
    binary
}

#[async_test]
async fn run_waits_for_its_kubeflex_control_planes_and_then_serves_the_spaces_their_secrets_name() {
    let _serial = SERIAL.lock().await;
    let hosting = Hosting::start().await;
    let controller = hosting.run("w1", "i1", &["--kubeflex-timeout", "2m"]);

    // Nothing exists yet: it says what it waits for, for each space.
    for cp in ["w1", "i1"] {
        let waiting = format!("waiting for ControlPlane {cp} to exist");
        controller.wait_log(&[&waiting]).await;
    }
    // The ControlPlanes, as the chart makes them; KubeFlex has not set their status yet.
    hosting.create_control_plane("w1", "wds").await;
    hosting.create_control_plane("i1", "its").await;
    controller
        .wait_log(&["waiting for ControlPlane w1's status.secretRef"])
        .await;
    // KubeFlex names the Secrets before they exist.
    hosting
        .set_secret_ref("w1", secret_ref("w1", "kubeconfig"))
        .await;
    hosting
        .set_secret_ref("i1", secret_ref("i1", "kubeconfig"))
        .await;
    controller
        .wait_log(&["waiting for Secret w1-system/w1-kubeconfig"])
        .await;
    hosting.create_secret("w1", "wds").await;
    hosting.create_secret("i1", "its").await;
    for cp in ["w1", "i1"] {
        controller.wait_log(&["found through KubeFlex", cp]).await;
    }

    // It serves: a singleton status reported in the ITS arrives on the WDS's Deployment.
    let ns = testenv::create_namespace(&hosting.wds, "wl").await;
    let web = create_deployment(&hosting.wds, &ns, "web").await;
    let wec = testenv::create_namespace(&hosting.its, "wec").await;
    let binding = testenv::unique_name("kubeflex");
    put_binding(
        &hosting.wds,
        &binding,
        binding_spec(
            &[wec.as_str()],
            vec![deployment_clause(&ns, "web", SINGLETON)],
            vec![],
        ),
    )
    .await;
    let status = deployment_status(2, 2);
    report_deployment(
        &hosting.its,
        &wec,
        "w1",
        &binding,
        (&ns, "web"),
        Some(&status),
    )
    .await;
    wait_for("the controller to serve", FOUND, || async {
        let o = web.observe().await;
        if o.is_singleton(&status) {
            Ok(())
        } else {
            Err(format!("{o:?}; log:\n{}", controller.log()))
        }
    })
    .await;
}

#[async_test]
async fn a_secret_ref_naming_a_missing_key_fails_the_start_naming_the_secret_and_the_key() {
    let _serial = SERIAL.lock().await;
    let hosting = Hosting::start().await;
    for (cp, cptype, context) in [("w1", "wds", "wds"), ("i1", "its", "its")] {
        hosting.create_secret(cp, context).await;
        hosting.create_control_plane(cp, cptype).await;
    }
    hosting
        .set_secret_ref("w1", secret_ref("w1", "wrong"))
        .await;
    hosting
        .set_secret_ref("i1", secret_ref("i1", "kubeconfig"))
        .await;

    let mut controller = hosting.run("w1", "i1", &["--kubeflex-timeout", "3s"]);
    let (status, log) = controller.wait_exit(FOUND).await;
    assert!(!status.success(), "it must fail; log:\n{log}");
    controller
        .wait_log(&[r#"waiting for key "wrong" in Secret w1-system/w1-kubeconfig"#])
        .await;
    let error = log
        .lines()
        .find(|l| l.starts_with("status-router: "))
        .unwrap_or_else(|| panic!("no error line; log:\n{log}"));
    for part in [
        r#"Secret w1-system/w1-kubeconfig has no key "wrong""#,
        "status.secretRef.key of ControlPlane w1",
        "after 3s",
        "kubeconfig-incluster",
    ] {
        assert!(error.contains(part), "{part:?} not in: {error}");
    }
}

/// `kubectl --kubeconfig KUBECONFIG --context wds ARGS`; its trimmed stdout, or its stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--context", "wds"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run kubectl (it ships with the machine image): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() || stdout == "no" {
        Ok(stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[async_test]
async fn the_samples_rbac_reads_control_planes_and_their_kubeconfig_secrets_and_nothing_else() {
    let _serial = SERIAL.lock().await;
    init_logs();
    let plane =
        tokio::task::spawn_blocking(|| ControlPlane::start_with(testenv::Authorization::Rbac))
            .await
            .expect("start task")
            .expect("start a private control plane with RBAC");
    let hosting = plane.wds_client().await.expect("hosting cluster client");
    let controlplane_crd = tokio::task::spawn_blocking(xtask::gomod::controlplane_crd)
        .await
        .expect("go task")
        .unwrap_or_else(|e| panic!("KubeFlex's ControlPlane CRD: {e}"));
    testenv::install_crd_files(&hosting, &[controlplane_crd])
        .await
        .expect("install KubeFlex's ControlPlane CRD");
    for ns in ["wds1-system", "its1-system", "other-system"] {
        testenv::create_namespace_named(&hosting, ns).await;
    }
    let kubeconfig = plane.kubeconfig_path();
    let rbac = integration_tests::workspace_file("config/samples/kubestellar/rbac.yaml");
    kubectl(kubeconfig, &["apply", "-f", &rbac.display().to_string()])
        .unwrap_or_else(|e| panic!("apply {}: {e}", rbac.display()));
    let can = |verb: &str, what: &str, ns: Option<&str>| {
        let mut args = vec![
            "auth",
            "can-i",
            verb,
            what,
            "--as",
            "system:serviceaccount:wds1-system:status-router",
        ];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        match kubectl(kubeconfig, &args) {
            Ok(answer) => answer == "yes",
            Err(e) => panic!("kubectl {args:?}: {e}"),
        }
    };
    for verb in ["get", "list", "watch"] {
        assert!(
            can(verb, "controlplanes.tenancy.kflex.kubestellar.org", None),
            "{verb} ControlPlanes"
        );
    }
    for ns in ["wds1-system", "its1-system"] {
        for secret in ["admin-kubeconfig", "vc-vcluster"] {
            assert!(
                can("get", &format!("secret/{secret}"), Some(ns)),
                "get Secret {ns}/{secret}"
            );
        }
        assert!(!can("list", "secrets", Some(ns)), "list Secrets in {ns}");
        assert!(
            !can("get", "secret/other", Some(ns)),
            "get another Secret in {ns}"
        );
    }
    assert!(
        !can("get", "secret/admin-kubeconfig", Some("other-system")),
        "the kubeconfig of another control plane"
    );
    for verb in ["create", "patch", "delete"] {
        assert!(
            !can(verb, "controlplanes.tenancy.kflex.kubestellar.org", None),
            "{verb} ControlPlanes"
        );
    }
}
