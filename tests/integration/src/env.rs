//! The shared control plane for one test ([`Env`], which serializes the
//! controller tests), the policies the tests run, and a controller running
//! in-process ([`Running`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;
use status_router::controller::{Config, Controller, StartError};
use status_router::kubestellar::{Binding, BindingSpec};
use status_router::policy::active::ActivePolicy;
use status_router::policy::{DEFAULT_POLICY, Policy, PolicyEngine};
use status_router::runtime::metrics::Metrics;
use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, oneshot};
use tokio::task::JoinHandle;

use crate::{init_logs, put_binding, report_deployment};

/// How long a wait for the controller may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How long "nothing changes" is watched after the controller has provably
/// handled the change that could have caused a write.
pub const GRACE: Duration = Duration::from_millis(1500);

static SERIAL: Mutex<()> = Mutex::const_new(());
static MACHINE: RwLock<()> = RwLock::const_new(());

/// The machine to this test alone while the guard lives: no controller test
/// runs beside it. For the suites that run whole control planes, KubeStellar
/// and the controller as processes (chaos, differential, KubeStellar as the
/// judge), beside which a controller test's policy calls would miss their
/// wall-clock deadline.
pub async fn alone() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// The shared control plane, with our CRDs, for one test.
pub struct Env {
    pub wds: Client,
    pub its: Client,
    bindings: std::sync::Mutex<Vec<String>>,
    namespaces: std::sync::Mutex<Vec<String>>,
    _serial: MutexGuard<'static, ()>,
    _machine: RwLockReadGuard<'static, ()>,
}

impl Env {
    /// Waits for the other controller tests to finish (and for a test that
    /// has the machine [`alone`]), then installs our CRDs
    /// in the WDS and the ITS (idempotent).
    pub async fn new() -> Self {
        init_logs();
        let serial = SERIAL.lock().await;
        let machine = MACHINE.read().await;
        let wds = testenv::wds_client().await;
        let its = testenv::its_client().await;
        let crds = status_router::kubestellar::crds_yaml();
        let (w, i) = tokio::join!(
            testenv::install_crds(&wds, &crds),
            testenv::install_crds(&its, &crds)
        );
        w.expect("install our CRDs in the WDS");
        i.expect("install our CRDs in the ITS");
        Self {
            wds,
            its,
            bindings: Default::default(),
            namespaces: Default::default(),
            _serial: serial,
            _machine: machine,
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

    /// Creates the Binding, or replaces its spec.
    pub async fn put_binding(&self, name: &str, spec: BindingSpec) {
        {
            let mut names = self.bindings.lock().unwrap();
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        put_binding(&self.wds, name, spec).await;
    }
}

/// Cleans up after the test, also when it panicked, before the next test may
/// take the lock (the fields, the lock among them, drop after this): deletes
/// the test's Bindings and Deployments, so that the next test's controller
/// does not work on them. Namespaces stay: the control plane has no namespace
/// controller.
impl Drop for Env {
    fn drop(&mut self) {
        let bindings =
            std::mem::take(&mut *self.bindings.lock().unwrap_or_else(|e| e.into_inner()));
        let namespaces =
            std::mem::take(&mut *self.namespaces.lock().unwrap_or_else(|e| e.into_inner()));
        if bindings.is_empty() && namespaces.is_empty() {
            return;
        }
        // A thread with a runtime and clients of its own: the test's runtime
        // may be unwinding from a panic, and a client works through the
        // runtime that made it.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async {
                let deletes = delete(bindings, namespaces);
                let _ = tokio::time::timeout(TIMEOUT, deletes).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Deletes the Bindings named, and the Deployments of the namespaces named.
async fn delete(bindings: Vec<String>, namespaces: Vec<String>) {
    let wds = testenv::wds_client().await;
    let api: Api<Binding> = Api::all(wds.clone());
    for name in bindings {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    for ns in namespaces {
        let deployments: Api<Deployment> = Api::namespaced(wds.clone(), &ns);
        let _ = deployments
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
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
        .load_file(crate::policy_path(stem))
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
        Self::spawn(Controller::new(wds, its, policy, config))
    }

    /// Starts a controller serving a swappable policy.
    pub fn serve(env: &Env, wds_name: &str, active: Arc<ActivePolicy>) -> Self {
        let config = Config {
            wds_name: wds_name.to_string(),
            workers: 4,
        };
        let (wds, its) = (env.wds.clone(), env.its.clone());
        Self::spawn(Controller::with_active_policy(wds, its, active, config))
    }

    /// Starts a controller whose workers run only while `role` is `Leading`.
    pub fn elected(
        env: &Env,
        wds_name: &str,
        role: tokio::sync::watch::Receiver<status_router::runtime::role::Role>,
    ) -> (Self, Arc<status_router::runtime::health::Health>) {
        let config = Config {
            wds_name: wds_name.to_string(),
            workers: 2,
        };
        let (wds, its) = (env.wds.clone(), env.its.clone());
        let controller = Controller::new(wds, its, default_policy(), config).with_leadership(role);
        let health = controller.health();
        (Self::spawn(controller), health)
    }

    /// Waits until the controller has stopped by itself (it lost its
    /// leadership, say), and returns how it ended.
    pub async fn ended(mut self) -> Result<(), StartError> {
        let task = self.task.take().expect("running");
        tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("the controller stops in time")
            .expect("the controller task does not panic")
    }

    fn spawn(controller: Controller) -> Self {
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
        self.metrics.reconciles()
    }

    /// No reconcile failed, for the policy or for anything else.
    pub fn assert_no_errors(&self) {
        let m = &self.metrics;
        assert_eq!(m.reconcile_errors(), 0, "metrics: {m:?}");
        assert_eq!(m.policy_errors(), 0, "metrics: {m:?}");
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
