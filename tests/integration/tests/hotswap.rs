//! Hot-swapping the policy of a running controller, against a real local
//! control plane: a policy file replaced (by rename, and by a Kubernetes-style
//! `..data` symlink swap), a policy ConfigMap updated, modules that must be
//! rejected (not WebAssembly, a failing embedded self-test, a sha256 pin that
//! does not match), and a swap back served from the compiled cache.
//!
//! The tests that run a controller take `common::Env`'s lock (a controller
//! decides for every Binding of the WDS); the others only need a temp dir.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use serde_json::Value;
use status_router::controller::metrics::Metrics;
use status_router::controller::{Config, Controller, StartError};
use status_router::hotswap::{self, ActiveModule, ActivePolicy, Swapper, Validator};
use status_router::policy::{
    CompiledCache, Decision, ObjectDoc, PolicyEngine, PolicyInstance, Request, RequestDoc,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use common::*;

/// Waits that include a validation (a cranelift compilation of a component
/// in the test profile, on a possibly busy machine) get more time.
const SWAP_TIMEOUT: Duration = Duration::from_secs(60);

// ----- logs -----

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Where the controller's logs go: a buffer the tests search, echoed to the
/// (captured) test output when `RUST_LOG` is set.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("RUST_LOG").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the log capture; every test calls it first, so it wins over
/// `common::init_logs`.
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
            .add_directive("status_router::hotswap=info".parse().expect("a directive"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Whether one logged line contains every one of `parts`.
fn logged(parts: &[&str]) -> bool {
    String::from_utf8_lossy(&LOGS.lock().unwrap())
        .lines()
        .any(|line| parts.iter().all(|p| line.contains(p)))
}

// ----- modules -----

/// The bytes of a component built by this crate's build script.
fn component(stem: &str) -> Vec<u8> {
    let path = integration_tests::policy_path(stem);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `sha256:<hex>` digest of a component, as the host computes it.
fn digest(stem: &str) -> String {
    static DIGESTS: std::sync::Mutex<BTreeMap<String, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    if let Some(d) = DIGESTS.lock().unwrap().get(stem) {
        return d.clone();
    }
    let d = engine()
        .load(&component(stem))
        .unwrap_or_else(|e| panic!("load {stem}: {e}"))
        .info()
        .digest
        .clone();
    DIGESTS.lock().unwrap().insert(stem.into(), d.clone());
    d
}

fn engine() -> PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| PolicyEngine::new().expect("policy engine"))
        .clone()
}

/// A validator as `status-router run` builds one.
fn new_validator(cache: Option<CompiledCache>, sha256: Option<String>) -> Validator {
    Validator::new(engine(), cache, sha256, None).expect("a validator")
}

/// The first module, validated as `status-router run` validates it.
fn initial(validator: &Validator, source: &str, bytes: &[u8]) -> ActiveModule {
    validator
        .validate(source, bytes)
        .unwrap_or_else(|e| panic!("the initial policy {source} is valid: {e}"))
}

/// Bytes that are certainly not WebAssembly.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    bytes[0] = 0xff;
    bytes
}

// ----- files -----

/// A temp dir of this test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(testenv::unique_name(prefix));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` atomically, as a deployment tool does: writes a temp file
/// next to it, then renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) {
    let name = path.file_name().unwrap().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write the temp file");
    std::fs::rename(&tmp, path).expect("rename it into place");
}

/// Whether an inotify instance of this process watches `dir` (Linux's
/// `/proc/self/fdinfo` lists each watch with the watched inode, in hex).
fn inotify_watches(dir: &Path) -> bool {
    let needle = format!(
        "ino:{:x} ",
        std::fs::metadata(dir).expect("stat the dir").ino()
    );
    std::fs::read_dir("/proc/self/fdinfo")
        .expect("read /proc/self/fdinfo")
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .any(|info| {
            info.lines()
                .any(|l| l.starts_with("inotify ") && l.contains(&needle))
        })
}

/// A task aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts `hotswap::file::watch` on `path` and waits until the kernel
/// watches its directory, so that no change made afterwards is missed.
async fn watch_file(path: &Path, swapper: Arc<Swapper>) -> Task {
    let dir = path.parent().unwrap().to_path_buf();
    let owned = path.to_path_buf();
    let task = tokio::spawn(async move {
        hotswap::file::watch(owned, swapper)
            .await
            .expect("watch the policy file")
    });
    let what = format!("an inotify watch on {}", dir.display());
    wait_for(&what, TIMEOUT, || async {
        if inotify_watches(&dir) {
            Ok(())
        } else if task.is_finished() {
            Err("the watch task ended".into())
        } else {
            Err("none yet".into())
        }
    })
    .await;
    Task(task)
}

/// Waits until the swaps counted are `want` (accepted, rejected).
async fn wait_swaps(active: &ActivePolicy, want: (u64, u64)) {
    let what = format!("swaps (accepted, rejected) = {want:?}");
    wait_for(&what, SWAP_TIMEOUT, || async {
        let now = active.swaps();
        if now == want {
            Ok(())
        } else {
            Err(format!("{now:?}; policy status {}", active.status()))
        }
    })
    .await;
}

// ----- a controller serving an ActivePolicy -----

/// A controller running in-process with a swappable policy.
struct Served {
    metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), StartError>>>,
}

impl Served {
    fn start(env: &Env, wds_name: &str, active: Arc<ActivePolicy>) -> Self {
        let config = Config {
            wds_name: wds_name.to_string(),
            workers: 4,
        };
        let controller =
            Controller::with_active_policy(env.wds.clone(), env.its.clone(), active, config);
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

    /// No reconcile failed, for the policy or for anything else.
    fn assert_no_errors(&self) {
        let m = &self.metrics;
        assert_eq!(m.reconcile_errors.load(Relaxed), 0, "metrics: {m:?}");
        assert_eq!(m.policy_errors.load(Relaxed), 0, "metrics: {m:?}");
    }

    async fn stop(mut self) {
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

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ----- a fleet of Deployments reported by two WECs -----

/// `n` Deployments, each named by one Binding with both flags and two WECs
/// that report different statuses: the default policy aggregates them.
#[derive(Clone)]
struct Fleet {
    ns: String,
    wec2: String,
    names: Vec<String>,
    api: Api<DynamicObject>,
}

/// What wec1 reports for every Deployment.
fn report1() -> Value {
    deployment_status(3, 3)
}

/// What wec2 reports, with `ready` ready replicas.
fn report2(ready: i64) -> Value {
    deployment_status(3, ready)
}

impl Fleet {
    async fn create(env: &Env, wds_name: &str, n: usize) -> Self {
        let ns = env.namespace().await;
        let (wec1, wec2) = (env.wec().await, env.wec().await);
        let binding = testenv::unique_name("hotswap");
        let names: Vec<String> = (0..n).map(|i| format!("web-{i}")).collect();
        stream::iter(&names)
            .for_each_concurrent(8, |name| {
                let (ns, wec1, wec2, binding) = (&ns, &wec1, &wec2, &binding);
                async move {
                    create_deployment(&env.wds, ns, name).await;
                    let object = (ns.as_str(), name.as_str());
                    report_deployment(&env.its, wec1, wds_name, binding, object, Some(&report1()))
                        .await;
                    report_deployment(&env.its, wec2, wds_name, binding, object, Some(&report2(1)))
                        .await;
                }
            })
            .await;
        let clauses = names
            .iter()
            .map(|name| deployment_clause(&ns, name, BOTH))
            .collect();
        env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses, vec![]))
            .await;
        let api = Api::namespaced_with(
            env.wds.clone(),
            &ns,
            &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        );
        Self {
            ns,
            wec2,
            names,
            api,
        }
    }

    /// The aggregate of the two reports when wec2 reports `ready`.
    fn aggregate(ready: i64) -> Value {
        deployment_status(3, ready.min(3))
    }

    async fn observe(&self) -> BTreeMap<String, Observed> {
        self.api
            .list(&ListParams::default())
            .await
            .expect("list the Deployments")
            .items
            .iter()
            .filter_map(|o| Some((o.metadata.name.clone()?, observed(o))))
            .collect()
    }

    /// Waits until every Deployment satisfies `want`.
    async fn wait_all(&self, what: &str, want: impl Fn(&Observed) -> bool) {
        let what = format!(
            "all {} Deployments of {}: {what}",
            self.names.len(),
            self.ns
        );
        wait_for(&what, TIMEOUT, || async {
            let all = self.observe().await;
            let missing = self.names.iter().filter(|n| !all.contains_key(*n)).count();
            let wrong: Vec<_> = all.iter().filter(|(_, o)| !want(o)).collect();
            match (missing, wrong.first()) {
                (0, None) => Ok(()),
                (_, first) => Err(format!(
                    "{missing} missing, {} not yet, for example {first:?}",
                    wrong.len()
                )),
            }
        })
        .await;
    }

    async fn resource_versions(&self) -> BTreeMap<String, String> {
        self.observe()
            .await
            .into_iter()
            .map(|(name, o)| (name, o.resource_version))
            .collect()
    }

    /// Watches for `window` that no Deployment changes, and that the swaps
    /// counted stay `swaps` (a rejected module is not offered again and again).
    async fn assert_unchanged(
        &self,
        before: &BTreeMap<String, String>,
        active: &ActivePolicy,
        swaps: (u64, u64),
    ) {
        let end = Instant::now() + GRACE;
        loop {
            let now = self.resource_versions().await;
            assert_eq!(&now, before, "a Deployment changed after a rejected module");
            assert_eq!(active.swaps(), swaps, "{}", active.status());
            if Instant::now() >= end {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes wec2's report of every Deployment.
    async fn report2_all(&self, its: &kube::Client, ready: i64) {
        stream::iter(&self.names)
            .for_each_concurrent(8, |name| async move {
                let ws = format!("appsv1-deployment-{}-{name}", self.ns);
                set_report_status(its, &self.wec2, &ws, Some(&report2(ready))).await;
            })
            .await;
    }
}

// ----- the tests -----

/// While the controller serves 24 aggregated Deployments and wec2's reports
/// keep changing, the policy file is replaced (temp file + rename) by
/// `strict-singleton`, which decides `none` for two WECs: every status is
/// cleared. Then by `label-driven`, which (without labels) aggregates as the
/// default does: every aggregate comes back. No reconcile fails, each swap is
/// counted and logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_the_policy_file_moves_every_status_to_the_new_policy() {
    capture_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 24).await;
    let dir = TempDir::new("hotswap-file");
    let path = dir.path().join("policy.wasm");
    let source = path.display().to_string();
    std::fs::write(&path, component("default")).unwrap();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let served = Served::start(&env, &wds_name, active.clone());
    fleet
        .wait_all("the default policy's aggregate", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    // wec2's reports change all along, so reconciles are running when the
    // module changes under the workers.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let churn = {
        let (stop, rounds, its) = (stop.clone(), rounds.clone(), env.its.clone());
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let mut ready = 1;
            while !stop.load(Relaxed) {
                ready = 3 - ready;
                fleet.report2_all(&its, ready).await;
                rounds.fetch_add(1, Relaxed);
            }
            // Settle on a known report.
            fleet.report2_all(&its, 1).await;
        })
    };
    wait_for("a round of report changes", TIMEOUT, || async {
        match rounds.load(Relaxed) {
            0 => Err("none yet".into()),
            _ => Ok(()),
        }
    })
    .await;

    replace_file(&path, &component("strict-singleton"));
    wait_swaps(&active, (1, 0)).await;
    stop.store(true, Relaxed);
    churn.await.expect("the report changes ran");
    let current = active.current();
    assert_eq!(current.policy.info().digest, digest("strict-singleton"));
    assert_eq!(current.source, source);
    assert!(
        logged(&["policy swapped in", &source, &digest("strict-singleton")]),
        "the swap is logged"
    );
    fleet
        .wait_all("cleared by strict-singleton", Observed::is_cleared)
        .await;
    served.assert_no_errors();

    replace_file(&path, &component("label-driven"));
    wait_swaps(&active, (2, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("label-driven")
    );
    fleet
        .wait_all("label-driven's aggregate (no handler label)", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    served.assert_no_errors();
    assert!(logged(&[
        "policy swapped in",
        &source,
        &digest("label-driven")
    ]));
    assert_eq!(active.status()["swapsAccepted"], 2);
    assert_eq!(active.status()["lastRejection"], Value::Null);

    served.stop().await;
    env.cleanup().await;
}

/// A mounted ConfigMap is updated by the kubelet through symlinks:
/// `policy.wasm -> ..data/policy.wasm`, `..data -> ..<timestamp>`; an update
/// writes a new timestamped dir, points `..data_tmp` at it and renames
/// `..data_tmp` over `..data`. Each such swap activates the new module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_data_symlink_swap_activates_the_new_module() {
    capture_logs();
    let dir = TempDir::new("hotswap-symlink");
    let root = dir.path();
    let publish = |stamp: &str, bytes: &[u8]| {
        let data = root.join(stamp);
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("policy.wasm"), bytes).unwrap();
        let tmp = root.join("..data_tmp");
        std::os::unix::fs::symlink(stamp, &tmp).unwrap();
        std::fs::rename(&tmp, root.join("..data")).unwrap();
    };
    let first = "..2026_01_02_03_04_05.000000001";
    publish(first, &component("default"));
    std::os::unix::fs::symlink("..data/policy.wasm", root.join("policy.wasm")).unwrap();
    let path = root.join("policy.wasm");
    let source = path.display().to_string();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    let second = "..2026_01_02_03_04_06.000000002";
    publish(second, &component("strict-singleton"));
    // The kubelet then removes the old dir: an event with nothing new.
    std::fs::remove_dir_all(root.join(first)).unwrap();
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );

    let third = "..2026_01_02_03_04_07.000000003";
    publish(third, &component("label-driven"));
    std::fs::remove_dir_all(root.join(second)).unwrap();
    wait_swaps(&active, (2, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("label-driven")
    );
    assert_eq!(active.current().source, source);
}

/// A module that is not WebAssembly, one whose embedded self-test fails (it
/// traps in every call) and a valid one that is not the pinned sha256 are
/// each rejected: counted, named in `lastRejection`, and no status changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_modules_change_nothing() {
    capture_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 8).await;
    let (dir, pinned_dir) = (
        TempDir::new("hotswap-reject"),
        TempDir::new("hotswap-pinned"),
    );
    let path = dir.path().join("policy.wasm");
    let pinned_path = pinned_dir.path().join("policy.wasm");
    let default = component("default");
    std::fs::write(&path, &default).unwrap();
    std::fs::write(&pinned_path, &default).unwrap();

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &path.display().to_string(), &default));
    let served = Served::start(&env, &wds_name, active.clone());
    let aggregated = |o: &Observed| o.is_multi_wec(&Fleet::aggregate(1));
    fleet
        .wait_all("the default policy's aggregate", aggregated)
        .await;
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;
    // A second source whose validator pins the default policy's sha256, as
    // `--policy-sha256` does.
    let pinned = new_validator(None, Some(digest("default")));
    let pinned_swapper = Arc::new(Swapper::new(pinned, active.clone(), None));
    let _pinned_watch = watch_file(&pinned_path, pinned_swapper).await;
    let before = fleet.resource_versions().await;
    let last_rejection = || {
        active.status()["lastRejection"]
            .as_str()
            .unwrap()
            .to_string()
    };

    replace_file(&path, &random_bytes(4096));
    wait_swaps(&active, (0, 1)).await;
    let reason = last_rejection();
    assert!(
        reason.contains(&path.display().to_string())
            && reason.contains("not a WebAssembly component"),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 1)).await;

    replace_file(&path, &component("always-trap"));
    wait_swaps(&active, (0, 2)).await;
    let reason = last_rejection();
    assert!(
        reason.contains("self-test") && reason.contains("cases failed"),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 2)).await;

    replace_file(&pinned_path, &component("strict-singleton"));
    wait_swaps(&active, (0, 3)).await;
    let reason = last_rejection();
    let pin = digest("default").trim_start_matches("sha256:").to_string();
    assert!(
        reason.contains(&pinned_path.display().to_string())
            && reason.contains("--policy-sha256 pins")
            && reason.contains(&pin),
        "{reason}"
    );
    fleet.assert_unchanged(&before, &active, (0, 3)).await;

    assert_eq!(active.current().policy.info().digest, digest("default"));
    assert_eq!(active.status()["swapsRejected"], 3);
    assert!(logged(&[
        "policy rejected",
        &pinned_path.display().to_string()
    ]));
    fleet.wait_all("still aggregated", aggregated).await;
    served.assert_no_errors();

    served.stop().await;
    env.cleanup().await;
}

/// The policy in a ConfigMap's `binaryData`, watched through the API: an
/// update to `strict-singleton` clears every status; an update to bytes that
/// are not WebAssembly is rejected, changes nothing, and is recorded as a
/// `PolicyRejected` Event on the ConfigMap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_update_swaps_and_a_bad_one_is_recorded_as_an_event() {
    capture_logs();
    let env = Env::new().await;
    let wds_name = testenv::unique_name("wds");
    let fleet = Fleet::create(&env, &wds_name, 8).await;
    let ns = fleet.ns.clone();
    let name = testenv::unique_name("policy");
    let configmaps: Api<ConfigMap> = Api::namespaced(env.wds.clone(), &ns);
    let put = |bytes: Vec<u8>| {
        let (configmaps, name) = (&configmaps, &name);
        async move {
            let data = BTreeMap::from([(hotswap::configmap::KEY.to_string(), ByteString(bytes))]);
            match configmaps.get_opt(name).await.expect("read the ConfigMap") {
                None => {
                    let cm = ConfigMap {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            ..Default::default()
                        },
                        binary_data: Some(data),
                        ..Default::default()
                    };
                    configmaps.create(&PostParams::default(), &cm).await
                }
                Some(mut cm) => {
                    cm.binary_data = Some(data);
                    configmaps.replace(name, &PostParams::default(), &cm).await
                }
            }
            .expect("write the policy ConfigMap");
        }
    };
    put(component("default")).await;
    let source = format!("configmap/{ns}/{name}");

    let validator = new_validator(None, None);
    let active = ActivePolicy::new(initial(&validator, &source, &component("default")));
    let served = Served::start(&env, &wds_name, active.clone());
    fleet
        .wait_all("the default policy's aggregate", |o| {
            o.is_multi_wec(&Fleet::aggregate(1))
        })
        .await;
    let recorder = Recorder::new(
        env.wds.clone(),
        Reporter {
            controller: "status-router-hotswap-test".into(),
            instance: None,
        },
    );
    let swapper = Arc::new(Swapper::new(validator, active.clone(), Some(recorder)));
    let _watch = Task(tokio::spawn(hotswap::configmap::watch(
        env.wds.clone(),
        ns.clone(),
        name.clone(),
        swapper,
    )));

    put(component("strict-singleton")).await;
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(active.current().source, source);
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    fleet
        .wait_all("cleared by strict-singleton", Observed::is_cleared)
        .await;
    wait_event(&env, &ns, &name, "PolicySwapped", "Normal").await;
    served.assert_no_errors();

    let before = fleet.resource_versions().await;
    put(random_bytes(2048)).await;
    wait_swaps(&active, (1, 1)).await;
    let reason = active.status()["lastRejection"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(&source) && reason.contains("not a WebAssembly component"),
        "{reason}"
    );
    let event = wait_event(&env, &ns, &name, "PolicyRejected", "Warning").await;
    let note = event.note.unwrap_or_default();
    assert!(note.contains("not a WebAssembly component"), "{note}");
    fleet.assert_unchanged(&before, &active, (1, 1)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    served.assert_no_errors();

    served.stop().await;
    env.cleanup().await;
}

/// Waits for an events.k8s.io/v1 Event with `reason` and `type_` about the
/// ConfigMap `ns/name`.
async fn wait_event(env: &Env, ns: &str, name: &str, reason: &str, type_: &str) -> K8sEvent {
    let events: Api<K8sEvent> = Api::namespaced(env.wds.clone(), ns);
    let what = format!("a {type_} Event {reason} on ConfigMap {ns}/{name}");
    wait_for(&what, TIMEOUT, || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let about_it = |e: &K8sEvent| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("ConfigMap") && r.name.as_deref() == Some(name)
            })
        };
        let seen: Vec<String> = list
            .items
            .iter()
            .filter(|e| about_it(e))
            .map(|e| format!("{:?}/{:?}", e.type_, e.reason))
            .collect();
        list.items
            .into_iter()
            .find(|e| {
                about_it(e)
                    && e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some(type_)
            })
            .ok_or_else(|| format!("Events about it: {seen:?}"))
    })
    .await
}

/// default → strict-singleton → default: the module used before is served
/// from the compiled cache the second time, and decides as it should.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_back_is_served_from_the_compiled_cache() {
    capture_logs();
    let dir = TempDir::new("hotswap-cache");
    let cache_dir = TempDir::new("hotswap-compiled");
    let path = dir.path().join("policy.wasm");
    let source = path.display().to_string();
    std::fs::write(&path, component("default")).unwrap();

    let validator = new_validator(Some(CompiledCache::new(cache_dir.path())), None);
    let first = initial(&validator, &source, &component("default"));
    assert!(!first.from_cache, "a fresh cache is empty");
    let active = ActivePolicy::new(first);
    let swapper = Arc::new(Swapper::new(validator, active.clone(), None));
    let _watch = watch_file(&path, swapper).await;

    replace_file(&path, &component("strict-singleton"));
    wait_swaps(&active, (1, 0)).await;
    assert_eq!(
        active.current().policy.info().digest,
        digest("strict-singleton")
    );
    assert!(!active.current().from_cache);
    assert_eq!(active.status()["fromCompiledCache"], false);

    replace_file(&path, &component("default"));
    wait_swaps(&active, (2, 0)).await;
    let current = active.current();
    assert_eq!(current.policy.info().digest, digest("default"));
    assert!(current.from_cache, "the swap back is served from the cache");
    assert_eq!(active.status()["fromCompiledCache"], true);
    assert!(logged(&["policy swapped in", &source, "from_cache=true"]));

    // The cached module decides as the default policy does.
    let doc = RequestDoc::new(ObjectDoc::deployment("default", "web"))
        .singleton(["wec1"])
        .multi_wec(["wec1", "wec2"]);
    let decision = PolicyInstance::new(current.policy.clone())
        .decide(&Request::from(&doc))
        .expect("the cached module decides");
    assert_eq!(
        decision,
        Decision::MultiWec(vec!["wec1".into(), "wec2".into()])
    );
}
