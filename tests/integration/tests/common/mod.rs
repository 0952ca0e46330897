//! Helpers of the controller tests: the shared control plane with our CRDs,
//! a controller running in-process, and Bindings, WorkStatuses and workload
//! objects made the way KubeStellar's binding controller and status agent
//! make them.
//!
//! Every controller watches every Binding of the WDS, and decides for every
//! object a Binding names: a second controller running at the same time
//! would clear the objects of another test (it sees their Bindings but not
//! their WorkStatuses, which carry another `originWdsName`). So the tests that
//! run a controller on the shared control plane take [`Env::new`]'s lock and
//! run one at a time, and delete their Bindings and workload objects at the
//! end ([`Env::cleanup`]) so that the next test's controller does not work on
//! them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams,
};
use serde_json::{Value, json};
use status_router::controller::metrics::Metrics;
use status_router::controller::{Config, Controller, StartError};
use status_router::kubestellar::{
    Binding, BindingSpec, ClusterScopeDownsyncClause, Destination, DownsyncModulation,
    MULTI_WEC_STATUS_LABEL, NamespaceScopeDownsyncClause, ORIGIN_BINDING_LABEL, ORIGIN_WDS_LABEL,
    ObjectReference, SINGLETON_STATUS_LABEL, SourceRef, WorkStatus, WorkStatusSpec,
    WorkloadClauses,
};
use status_router::policy::{DEFAULT_POLICY, Policy, PolicyEngine};
use tokio::sync::{Mutex, MutexGuard, oneshot};
use tokio::task::JoinHandle;

/// How long a wait for the controller may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How long "nothing changes" is watched after the controller has provably
/// handled the change that could have caused a write.
pub const GRACE: Duration = Duration::from_millis(1500);

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Shows the controller's logs when `RUST_LOG` is set (e.g.
/// `RUST_LOG=status_router=debug`), captured per test by libtest.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

/// The shared control plane, with our CRDs, for one test.
pub struct Env {
    pub wds: Client,
    pub its: Client,
    bindings: std::sync::Mutex<Vec<String>>,
    namespaces: std::sync::Mutex<Vec<String>>,
    _serial: MutexGuard<'static, ()>,
}

impl Env {
    /// Waits for the other controller tests to finish, then installs our CRDs
    /// in the WDS and the ITS (idempotent).
    pub async fn new() -> Self {
        init_logs();
        let serial = SERIAL.lock().await;
        let wds = testenv::wds_client().await;
        let its = testenv::its_client().await;
        let crds = status_router::kubestellar::crds_yaml();
        let (w, i) = tokio::join!(
            testenv::install_crds(&wds, &crds),
            testenv::install_crds(&its, &crds)
        );
        w.expect("install our CRDs in the WDS");
        i.expect("install our CRDs in the ITS");
        Self::with_clients(wds, its, serial)
    }

    fn with_clients(wds: Client, its: Client, serial: MutexGuard<'static, ()>) -> Self {
        Self {
            wds,
            its,
            bindings: Default::default(),
            namespaces: Default::default(),
            _serial: serial,
        }
    }

    /// A new namespace in the WDS for this test's workload objects.
    pub async fn namespace(&self) -> String {
        let ns = testenv::create_namespace(&self.wds, "wl").await;
        self.namespaces.lock().unwrap().push(ns.clone());
        ns
    }

    /// A new WEC: its namespace in the ITS.
    pub async fn wec(&self) -> String {
        testenv::create_namespace(&self.its, "wec").await
    }

    /// Creates the Binding, or replaces its spec.
    /// Reports a Deployment's status from `wec` as the status agent would
    /// (see [`report_deployment`]).
    pub async fn report(
        &self,
        wds_name: &str,
        wec: &str,
        binding: &str,
        object: (&str, &str),
        status: Option<&Value>,
    ) {
        report_deployment(&self.its, wec, wds_name, binding, object, status).await;
    }

    pub async fn put_binding(&self, name: &str, spec: BindingSpec) {
        {
            let mut names = self.bindings.lock().unwrap();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        put_binding(&self.wds, name, spec).await;
    }

    /// Deletes this test's Bindings and Deployments (namespaces cannot be
    /// deleted: the control plane has no namespace controller).
    pub async fn cleanup(&self) {
        let bindings: Api<Binding> = Api::all(self.wds.clone());
        let names = self.bindings.lock().unwrap().clone();
        for name in names {
            let _ = bindings.delete(&name, &DeleteParams::default()).await;
        }
        let namespaces = self.namespaces.lock().unwrap().clone();
        for ns in namespaces {
            let deployments: Api<Deployment> = Api::namespaced(self.wds.clone(), &ns);
            let _ = deployments
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
        }
    }
}

/// The default policy, compiled.
pub fn default_policy() -> Policy {
    PolicyEngine::new()
        .expect("policy engine")
        .load(DEFAULT_POLICY)
        .expect("load the default policy")
}

/// A policy component from this crate's build script.
pub fn policy(stem: &str) -> Policy {
    PolicyEngine::new()
        .expect("policy engine")
        .load_file(integration_tests::policy_path(stem))
        .unwrap_or_else(|e| panic!("load the {stem} policy: {e}"))
}

/// A controller running in-process.
pub struct Running {
    metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartError>>>,
}

impl Running {
    /// Starts a controller for the WDS named `wds_name`.
    pub fn start(env: &Env, wds_name: &str, policy: Policy, workers: usize) -> Self {
        Self::start_with(env.wds.clone(), env.its.clone(), wds_name, policy, workers)
    }

    pub fn start_with(
        wds: Client,
        its: Client,
        wds_name: &str,
        policy: Policy,
        workers: usize,
    ) -> Self {
        let config = Config {
            wds_name: wds_name.to_string(),
            workers,
        };
        let controller = Controller::new(wds, its, policy, config);
        let metrics = controller.metrics();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(controller.run(async move {
            let _ = rx.await;
        }));
        Self {
            metrics,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn reconciles(&self) -> u64 {
        self.metrics.reconciles.load(Relaxed)
    }

    /// Stops the controller and waits until it has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("the controller stops in time")
                .expect("the controller task does not panic")
                .expect("the controller ran");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `probe` every 100 ms until it returns `Ok`, or fails after
/// `timeout` showing what it last returned.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

// ----- workload objects -----

/// A workload object in the WDS, read through the dynamic API.
#[derive(Clone)]
pub struct Target {
    pub api: Api<DynamicObject>,
    pub name: String,
}

/// What a test looks at on a workload object.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub status: Value,
    pub singleton: bool,
    pub multi_wec: bool,
    pub resource_version: String,
}

impl Observed {
    /// Holds `status` with the singleton label only.
    pub fn is_singleton(&self, status: &Value) -> bool {
        self.status == *status && self.singleton && !self.multi_wec
    }

    /// Holds `status` with the multi-WEC label only.
    pub fn is_multi_wec(&self, status: &Value) -> bool {
        self.status == *status && !self.singleton && self.multi_wec
    }

    /// Status `{}` and neither label.
    pub fn is_cleared(&self) -> bool {
        self.status == json!({}) && !self.singleton && !self.multi_wec
    }
}

impl Target {
    pub fn deployment(client: &Client, ns: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced_with(client.clone(), ns, &ApiResource::erase::<Deployment>(&())),
            name: name.to_string(),
        }
    }

    pub async fn observe(&self) -> Observed {
        let o = self
            .api
            .get(&self.name)
            .await
            .unwrap_or_else(|e| panic!("get {}: {e}", self.name));
        observed(&o)
    }

    /// Waits until the object satisfies `want`.
    pub async fn wait(&self, what: &str, want: impl Fn(&Observed) -> bool) -> Observed {
        let what = format!("{}: {what}", self.name);
        wait_for(&what, TIMEOUT, || async {
            let o = self.observe().await;
            if want(&o) {
                Ok(o)
            } else {
                Err(format!("{o:?}"))
            }
        })
        .await
    }

    pub async fn wait_singleton(&self, status: &Value) -> Observed {
        let what = format!("singleton status {status}");
        self.wait(&what, |o| o.is_singleton(status)).await
    }

    pub async fn wait_multi_wec(&self, status: &Value) -> Observed {
        let what = format!("multi-WEC status {status}");
        self.wait(&what, |o| o.is_multi_wec(status)).await
    }

    pub async fn wait_cleared(&self) -> Observed {
        self.wait("a cleared status", Observed::is_cleared).await
    }

    /// Writes the object's status through the subresource (as a user or
    /// another controller would), and optionally our singleton label.
    pub async fn set_status(&self, status: &Value, singleton_label: bool) {
        if singleton_label {
            let labels = json!({"metadata": {"labels": {SINGLETON_STATUS_LABEL: "true"}}});
            self.api
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(labels))
                .await
                .expect("label the object");
        }
        self.api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("write the object's status");
    }
}

pub fn observed(o: &DynamicObject) -> Observed {
    let labels = o.metadata.labels.clone().unwrap_or_default();
    Observed {
        status: match o.data.get("status") {
            None | Some(Value::Null) => json!({}),
            Some(s) => s.clone(),
        },
        singleton: labels.get(SINGLETON_STATUS_LABEL).map(String::as_str) == Some("true"),
        multi_wec: labels.get(MULTI_WEC_STATUS_LABEL).map(String::as_str) == Some("true"),
        resource_version: o.metadata.resource_version.clone().unwrap_or_default(),
    }
}

/// A minimal Deployment (a WDS has no deployment controller: its status
/// stays as written).
pub fn deployment(ns: &str, name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
            }
        }
    }))
    .expect("a valid Deployment")
}

/// Creates a Deployment in the WDS.
pub async fn create_deployment(client: &Client, ns: &str, name: &str) -> Target {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deployment(ns, name))
        .await
        .unwrap_or_else(|e| panic!("create Deployment {ns}/{name}: {e}"));
    Target::deployment(client, ns, name)
}

/// A Deployment status that the API server's validation accepts
/// (ready <= replicas, available <= ready, ...).
pub fn deployment_status(replicas: i64, ready: i64) -> Value {
    json!({
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
    })
}

// ----- Bindings -----

/// Which reported-state flags a clause sets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    pub singleton: bool,
    pub multi_wec: bool,
}

pub const NO_FLAGS: Flags = Flags {
    singleton: false,
    multi_wec: false,
};
pub const SINGLETON: Flags = Flags {
    singleton: true,
    multi_wec: false,
};
pub const BOTH: Flags = Flags {
    singleton: true,
    multi_wec: true,
};

fn modulation(flags: Flags) -> DownsyncModulation {
    DownsyncModulation {
        want_singleton_reported_state: flags.singleton,
        want_multi_wec_reported_state: flags.multi_wec,
        ..Default::default()
    }
}

/// A namespaced clause.
pub fn clause(
    (group, version, resource): (&str, &str, &str),
    ns: &str,
    name: &str,
    flags: Flags,
) -> NamespaceScopeDownsyncClause {
    NamespaceScopeDownsyncClause {
        object: ObjectReference {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            name: name.into(),
            resource_version: "1".into(),
        },
        namespace: ns.into(),
        modulation: modulation(flags),
    }
}

pub const DEPLOYMENTS: (&str, &str, &str) = ("apps", "v1", "deployments");

/// A clause for a Deployment.
pub fn deployment_clause(ns: &str, name: &str, flags: Flags) -> NamespaceScopeDownsyncClause {
    clause(DEPLOYMENTS, ns, name, flags)
}

/// A cluster-scoped clause.
pub fn cluster_clause(
    (group, version, resource): (&str, &str, &str),
    name: &str,
    flags: Flags,
) -> ClusterScopeDownsyncClause {
    ClusterScopeDownsyncClause {
        object: ObjectReference {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            name: name.into(),
            resource_version: "1".into(),
        },
        modulation: modulation(flags),
    }
}

/// A Binding spec.
pub fn binding_spec(
    destinations: &[&str],
    namespace_scope: Vec<NamespaceScopeDownsyncClause>,
    cluster_scope: Vec<ClusterScopeDownsyncClause>,
) -> BindingSpec {
    BindingSpec {
        destinations: destinations
            .iter()
            .map(|wec| Destination {
                cluster_id: wec.to_string(),
            })
            .collect(),
        workload: WorkloadClauses {
            cluster_scope,
            namespace_scope,
        },
    }
}

/// Creates a Binding, or replaces the spec of the existing one.
pub async fn put_binding(client: &Client, name: &str, spec: BindingSpec) {
    let api: Api<Binding> = Api::all(client.clone());
    let mut binding = Binding::new(name, spec);
    for _ in 0..10 {
        let result = match api.get_opt(name).await.expect("read the Binding") {
            None => api.create(&PostParams::default(), &binding).await,
            Some(existing) => {
                binding.metadata.resource_version = existing.metadata.resource_version;
                api.replace(name, &PostParams::default(), &binding).await
            }
        };
        match result {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.is_conflict() || s.is_already_exists() => continue,
            Err(e) => panic!("write Binding {name}: {e}"),
        }
    }
    panic!("write Binding {name}: too many conflicts");
}

// ----- WorkStatuses -----

/// The sourceRef of a Deployment.
pub fn deployment_ref(ns: &str, name: &str) -> SourceRef {
    SourceRef {
        group: "apps".into(),
        version: "v1".into(),
        resource: "deployments".into(),
        kind: "Deployment".into(),
        name: name.into(),
        namespace: ns.into(),
    }
}

/// A WorkStatus as the status agent writes it.
pub struct Report<'a> {
    pub wec: &'a str,
    pub name: &'a str,
    /// `None`: no `originWdsName` label.
    pub wds_name: Option<&'a str>,
    pub binding: &'a str,
    pub source: SourceRef,
}

impl Report<'_> {
    /// Creates the WorkStatus, then writes its status (if any) through the
    /// status subresource.
    pub async fn create(&self, its: &Client, status: Option<&Value>) {
        let mut labels = BTreeMap::from([(ORIGIN_BINDING_LABEL.to_string(), self.binding.into())]);
        if let Some(wds) = self.wds_name {
            labels.insert(ORIGIN_WDS_LABEL.to_string(), wds.into());
        }
        let ws = WorkStatus {
            metadata: ObjectMeta {
                name: Some(self.name.into()),
                namespace: Some(self.wec.into()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: WorkStatusSpec {
                source_ref: self.source.clone(),
            },
            ..Default::default()
        };
        Api::<WorkStatus>::namespaced(its.clone(), self.wec)
            .create(&PostParams::default(), &ws)
            .await
            .unwrap_or_else(|e| panic!("create WorkStatus {}/{}: {e}", self.wec, self.name));
        if let Some(status) = status {
            set_report_status(its, self.wec, self.name, Some(status)).await;
        }
    }
}

/// Writes (or, with `None`, removes) a WorkStatus's status, as the agent does.
pub async fn set_report_status(its: &Client, wec: &str, name: &str, status: Option<&Value>) {
    let patch = Patch::Merge(json!({ "status": status }));
    let ws = Api::<WorkStatus>::namespaced(its.clone(), wec)
        .patch_status(name, &PatchParams::default(), &patch)
        .await
        .unwrap_or_else(|e| panic!("write the status of WorkStatus {wec}/{name}: {e}"));
    assert_eq!(
        ws.status.as_ref(),
        status,
        "the WorkStatus status subresource kept the status"
    );
}

/// Creates a singleton-flagged Deployment report in a WEC for our WDS.
pub async fn report_deployment(
    its: &Client,
    wec: &str,
    wds_name: &str,
    binding: &str,
    (ns, name): (&str, &str),
    status: Option<&Value>,
) {
    Report {
        wec,
        name: &format!("appsv1-deployment-{ns}-{name}"),
        wds_name: Some(wds_name),
        binding,
        source: deployment_ref(ns, name),
    }
    .create(its, status)
    .await;
}

/// The Namespace API of a client, for the never-written test.
pub fn namespaces(client: &Client) -> Api<Namespace> {
    Api::all(client.clone())
}

/// `kind`'s ApiResource of a DynamicObject-typed resource.
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &kube::api::GroupVersionKind::gvk(group, version, kind),
        plural,
    )
}

/// The resourceVersion of any object.
pub fn rv<K: kube::Resource>(o: &K) -> String {
    o.meta().resource_version.clone().unwrap_or_default()
}

/// Waits until the controller has run at least one more reconcile than
/// `since`, then for [`GRACE`], so that "nothing changed" is checked after
/// the controller has had its chance.
pub async fn settle(running: &Running, since: u64) {
    wait_for("the controller to reconcile", TIMEOUT, || async {
        let now = running.reconciles();
        if now > since {
            Ok(())
        } else {
            Err(format!("reconciles = {now}"))
        }
    })
    .await;
    tokio::time::sleep(GRACE).await;
}
