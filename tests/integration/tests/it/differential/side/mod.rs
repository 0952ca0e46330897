//! One side of the comparison: a fresh control plane, KubeStellar's controller-manager (both
//! controllers, or `--controllers=binding` beside a `status-router run` process), and the
//! scenario replayed on it: WECs as `ManagedCluster`s, workload objects and BindingPolicies in
//! the WDS, WorkStatuses in the ITS written as KubeStellar's status add-on writes them.
//! StatusCollectors are created before the BindingPolicies that name them, and never change.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
pub use observe::{Shown, Snapshot};
use serde_json::{Value, json};
use status_router::kubestellar::{ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL};
use testenv::{ControlPlane, Controllers, KubeStellar, KubeStellarCrds};

use super::scenario::{
    COLLECTORS, Event, Kind, NAMESPACE, Object, Scenario, State, collector_spec, wec_name,
};
use integration_tests::{GADGETS_CRD, api_resource};

mod observe;

pub const WDS_NAME: &str = "wds1";
const ITS_NAME: &str = "its1";

/// Who returns statuses on this side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// (a) KubeStellar's controller-manager with both controllers.
    KubeStellar,
    /// (b) KubeStellar with `--controllers=binding`, and `status-router run`.
    StatusRouter,
}

pub struct Side {
    pub judge: Judge,
    pub wds: Client,
    pub its: Client,
    pub kubestellar: KubeStellar,
    status_router: Option<Child>,
    status_router_log: PathBuf,
    cp: ControlPlane,
}

fn ar_of(kind: Kind) -> ApiResource {
    let (g, v, r, k) = kind.gvrk();
    api_resource(g, v, k, r)
}

fn policy_ar() -> ApiResource {
    api_resource(
        "control.kubestellar.io",
        "v1alpha1",
        "BindingPolicy",
        "bindingpolicies",
    )
}

fn collector_ar() -> ApiResource {
    api_resource(
        "control.kubestellar.io",
        "v1alpha1",
        "StatusCollector",
        "statuscollectors",
    )
}

fn combined_ar() -> ApiResource {
    api_resource(
        "control.kubestellar.io",
        "v1alpha1",
        "CombinedStatus",
        "combinedstatuses",
    )
}

fn workstatus_ar() -> ApiResource {
    api_resource(
        "control.kubestellar.io",
        "v1alpha1",
        "WorkStatus",
        "workstatuses",
    )
}

/// The `status-router` binary beside this test binary (target/<profile>/).
fn status_router_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = profile.join("status-router");
    assert!(
        binary.is_file(),
        "the differential suite runs the real controller, and {} is missing: build it first \
         with `cargo build -p status-router --bin status-router` (`cargo xtask test` and \
         `cargo xtask differential` do)",
        binary.display()
    );
    binary
}

impl Side {
    pub async fn start(judge: Judge, scenario: &Scenario) -> Side {
        let cp = tokio::task::spawn_blocking(ControlPlane::start)
            .await
            .expect("start task")
            .expect("start a private control plane");
        let wds = cp.wds_client().await.expect("WDS client");
        let its = cp.its_client().await.expect("ITS client");
        testenv::install_crds(&wds, GADGETS_CRD)
            .await
            .expect("install the Gadget CRD");
        testenv::create_namespace_named(&wds, NAMESPACE).await;
        let crds = KubeStellarCrds::pinned().expect("the pinned Go modules' CRDs");
        let controllers = match judge {
            Judge::KubeStellar => Controllers::All,
            Judge::StatusRouter => Controllers::BindingOnly,
        };
        let kubestellar = KubeStellar::start(&cp, WDS_NAME, ITS_NAME, controllers, &crds)
            .await
            .expect("start KubeStellar's controller-manager");
        for (w, labels) in scenario.initial.wec_labels.iter().enumerate() {
            let mut labels = labels.clone();
            labels.insert("name".into(), wec_name(w));
            testenv::kubestellar::create_wec(&its, &wec_name(w), &labels)
                .await
                .expect("create a WEC");
        }
        let status_router_log = std::env::temp_dir().join(format!(
            "status-router-differential-{}-{}.log",
            scenario.settings.seed,
            std::process::id()
        ));
        let mut side = Side {
            judge,
            wds,
            its,
            kubestellar,
            status_router: None,
            status_router_log,
            cp,
        };
        side.kubestellar
            .wait_crds(&side.wds, Duration::from_secs(120))
            .await
            .expect("KubeStellar installs its CRDs");
        if judge == Judge::StatusRouter {
            side.start_status_router();
        }
        side
    }

    fn start_status_router(&mut self) {
        let out = File::create(&self.status_router_log).expect("create the controller log");
        let err = out.try_clone().expect("dup the log handle");
        let mut cmd = Command::new(status_router_binary());
        cmd.args(["run", "--wds-name", WDS_NAME, "--kubeconfig"])
            .arg(self.cp.kubeconfig_path());
        // A policy component instead of the embedded default (a mutant, to see the suite fail).
        if let Some(policy) = std::env::var_os("DIFF_POLICY") {
            println!("differential: status-router runs the policy {policy:?}");
            cmd.arg("--policy").arg(policy);
        }
        cmd.args(["--policy-cache-dir"])
            .arg(self.cp.dir().join("compiled"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.status_router = Some(testenv::spawn_child(cmd).expect("start status-router run"));
    }

    pub fn assert_kubestellar_runs(&self) {
        if let Some(exited) = self.kubestellar.exited() {
            panic!(
                "KubeStellar's controller-manager exited ({exited}) on the {:?} side: a crash of \
                 KubeStellar, not a difference. Last lines of {}:\n{}",
                self.judge,
                self.kubestellar.log().display(),
                self.kubestellar.log_tail(40)
            );
        }
    }

    fn assert_status_router_runs(&mut self) {
        if let Some(child) = self.status_router.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(&self.status_router_log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "status-router exited ({status}); last lines of {}:\n{}",
                self.status_router_log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// Creates the objects, the StatusCollectors and the BindingPolicies.
    pub async fn create(&self, scenario: &Scenario) {
        let apply = PatchParams::apply("differential").force();
        for name in COLLECTORS {
            let body = json!({
                "apiVersion": "control.kubestellar.io/v1alpha1",
                "kind": "StatusCollector",
                "metadata": {"name": name},
                "spec": collector_spec(name),
            });
            Api::<DynamicObject>::all_with(self.wds.clone(), &collector_ar())
                .patch(name, &apply, &Patch::Apply(body))
                .await
                .unwrap_or_else(|e| panic!("create StatusCollector {name}: {e}"));
        }
        for object in &scenario.objects {
            let ar = ar_of(object.kind);
            let api: Api<DynamicObject> = Api::namespaced_with(self.wds.clone(), NAMESPACE, &ar);
            let body = object.kind.manifest(&object.name, &object.group);
            api.patch(&object.name, &apply, &Patch::Apply(body))
                .await
                .unwrap_or_else(|e| panic!("create {} {}: {e}", ar.kind, object.name));
        }
        for policy in scenario.initial.policies.iter().flatten() {
            self.put_policy(policy).await;
        }
    }

    /// The WorkStatuses of the first state.
    pub async fn report(&self, scenario: &Scenario) {
        self.sync_reports(scenario, None, &scenario.initial).await;
    }

    async fn put_policy(&self, policy: &super::scenario::Policy) {
        let (key, value) = &policy.selector;
        let body = json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "BindingPolicy",
            "metadata": {"name": policy.name},
            "spec": {
                "clusterSelectors": [{"matchLabels": {key: value}}],
                "downsync": [{
                    "objectSelectors": [{"matchLabels": {super::scenario::GROUP_LABEL: policy.group}}],
                    "wantSingletonReportedState": policy.singleton,
                    "wantMultiWECReportedState": policy.multi,
                    "statusCollectors": policy.collectors,
                }],
            }
        });
        Api::<DynamicObject>::all_with(self.wds.clone(), &policy_ar())
            .patch(
                &policy.name,
                &PatchParams::apply("differential").force(),
                &Patch::Apply(body),
            )
            .await
            .unwrap_or_else(|e| panic!("apply BindingPolicy {}: {e}", policy.name));
    }

    /// Replays one event, then makes the WorkStatuses what the status add-on keeps for the
    /// new state (created for new deliveries, deleted for gone ones, statuses written).
    pub async fn play(&self, scenario: &Scenario, before: &State, event: &Event, after: &State) {
        match event {
            Event::Relabel { wec, key, value } => {
                Api::<DynamicObject>::all_with(
                    self.its.clone(),
                    &testenv::kubestellar::managedcluster_resource(),
                )
                .patch(
                    &wec_name(*wec),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {key: value}}})),
                )
                .await
                .expect("relabel a ManagedCluster");
            }
            Event::Flags { policy, .. } => {
                if let Some(p) = &after.policies[*policy] {
                    self.put_policy(p).await;
                }
            }
            Event::DeletePolicy { policy } => {
                let name = &before.policies[*policy]
                    .as_ref()
                    .expect("a live policy")
                    .name;
                Api::<DynamicObject>::all_with(self.wds.clone(), &policy_ar())
                    .delete(name, &DeleteParams::default())
                    .await
                    .expect("delete a BindingPolicy");
            }
            Event::Status { .. } | Event::DeleteReport { .. } => {}
        }
        // The status add-on acts on what the transport delivered: after KubeStellar's binding
        // controller has moved the objects, never before.
        if before.delivered(&scenario.objects) != after.delivered(&scenario.objects) {
            self.wait_bindings(scenario, after).await;
        }
        self.sync_reports(scenario, Some(before), after).await;
    }

    async fn sync_reports(&self, scenario: &Scenario, before: Option<&State>, after: &State) {
        let old = before
            .map(|s| s.delivered(&scenario.objects))
            .unwrap_or_default();
        let new = after.delivered(&scenario.objects);
        for &(p, o, w) in old.difference(&new) {
            let policy = before
                .and_then(|s| s.policies[p].as_ref())
                .expect("was live");
            let api = self.reports(w);
            let _ = api
                .delete(
                    &report_name(&policy.name, &scenario.objects[o]),
                    &DeleteParams::default(),
                )
                .await;
        }
        for &(p, o, w) in &new {
            let status = after.statuses.get(&(o, w)).cloned().flatten();
            let changed = before.is_none_or(|b| {
                !old.contains(&(p, o, w)) || b.statuses.get(&(o, w)) != after.statuses.get(&(o, w))
            });
            if changed {
                let policy = after.policies[p].as_ref().expect("live");
                self.write_report(&policy.name, &scenario.objects[o], w, status)
                    .await;
            }
        }
    }

    fn reports(&self, w: usize) -> Api<DynamicObject> {
        Api::namespaced_with(self.its.clone(), &wec_name(w), &workstatus_ar())
    }

    /// A WorkStatus as the status add-on writes it: labels, `sourceRef` and `statusDetails`,
    /// then the status through the status subresource.
    async fn write_report(&self, binding: &str, object: &Object, w: usize, status: Option<Value>) {
        let (group, version, resource, kind) = object.kind.gvrk();
        let name = report_name(binding, object);
        let body = json!({
            "apiVersion": "control.kubestellar.io/v1alpha1",
            "kind": "WorkStatus",
            "metadata": {"name": name, "namespace": wec_name(w), "labels": {
                ORIGIN_BINDING_LABEL: binding, ORIGIN_WDS_LABEL: WDS_NAME}},
            "spec": {"sourceRef": {"group": group, "version": version, "resource": resource,
                "kind": kind, "name": object.name, "namespace": NAMESPACE}},
            "statusDetails": {"lastGeneration": 1, "lastGenerationIsApplied": true,
                "lastCurrencyUpdateTime": "2026-12-03T00:00:00Z"},
        });
        let api = self.reports(w);
        let apply = PatchParams::apply("status-addon").force();
        api.patch(&name, &apply, &Patch::Apply(body))
            .await
            .unwrap_or_else(|e| panic!("write WorkStatus {}/{name}: {e}", wec_name(w)));
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("write WorkStatus {}/{name} status: {e}", wec_name(w)));
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        if let Some(mut child) = self.status_router.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The WorkStatus name of an object delivered by a Binding (unique per WEC namespace).
fn report_name(binding: &str, object: &Object) -> String {
    format!("{binding}-{}", object.name)
}
