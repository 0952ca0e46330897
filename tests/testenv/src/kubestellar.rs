//! [`KubeStellar`]: KubeStellar's own controller-manager, run against a [`ControlPlane`] exactly
//! as a KubeStellar install runs it, so that KubeStellar's binding controller makes the Bindings
//! status-router reads and, with both controllers, KubeStellar's status controller writes the
//! statuses status-router is compared with.
//!
//! How a KubeStellar install wires it (and so this fixture): the controller-manager reads the
//! *hosting cluster* (its ordinary kubeconfig) for KubeFlex `ControlPlane` objects named by
//! `--wds-name` / `--its-name` and labelled `kflex.kubestellar.io/cptype=wds|its`; each one's
//! `status.secretRef` names a Secret holding that space's kubeconfig. Here the WDS API server
//! doubles as the hosting cluster. WECs are OCM `ManagedCluster` objects in the ITS, which the
//! binding controller matches against BindingPolicy `clusterSelectors`. A WDS is a whole control
//! plane, whose garbage collector deletes the Binding of a deleted BindingPolicy (its owner):
//! the fixture runs kube-controller-manager's garbage collector against the WDS for that. The
//! binary is built from
//! KubeStellar's Go module by `scripts/build-kubestellar.sh`; the CRDs come from the Go modules
//! that `go/kubestellar/go.mod` pins (KubeFlex's, OCM's), never from this repository.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::control_plane::ControlPlane;
use crate::process::{self, log_tail};
use crate::{Error, setup};

/// Env var naming KubeStellar's controller-manager binary, overriding the cache.
pub const KUBESTELLAR_BIN_ENV: &str = "STATUS_ROUTER_KUBESTELLAR_BIN";
/// The KubeStellar version `scripts/build-kubestellar.sh` builds (its cache key).
pub const KUBESTELLAR_VERSION: &str = "v0.30.0";
/// The label KubeStellar finds its spaces' `ControlPlane`s by.
pub const CPTYPE_LABEL: &str = "kflex.kubestellar.io/cptype";

/// Which of KubeStellar's controllers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controllers {
    /// The binding and the status controller: KubeStellar as its Helm chart runs it.
    All,
    /// `--controllers=binding`: the binding controller alone, as beside status-router.
    BindingOnly,
}

/// KubeStellar's controller-manager running against a control plane; stopped on drop.
#[derive(Debug)]
pub struct KubeStellar {
    child: Mutex<Option<Child>>,
    /// kube-controller-manager with only the garbage collector, for the WDS.
    garbage_collector: Mutex<Option<Child>>,
    log: PathBuf,
    wds_name: String,
    its_name: String,
}

/// The `ControlPlane` resource of KubeFlex.
pub fn controlplane_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tenancy.kflex.kubestellar.org", "v1alpha1", "ControlPlane"),
        "controlplanes",
    )
}

/// The `ManagedCluster` resource of OCM.
pub fn managedcluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cluster.open-cluster-management.io", "v1", "ManagedCluster"),
        "managedclusters",
    )
}

/// Where `scripts/build-kubestellar.sh` caches the binary.
pub fn default_kubestellar_bin() -> PathBuf {
    setup::cache_root()
        .join("kubestellar")
        .join(KUBESTELLAR_VERSION)
        .join("bin/controller-manager")
}

fn kubestellar_bin() -> Result<PathBuf, Error> {
    let bin = std::env::var_os(KUBESTELLAR_BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(default_kubestellar_bin);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(Error::KubeStellarMissing { path: bin })
    }
}

impl KubeStellar {
    /// Registers the spaces of `cp` as KubeFlex would (the `ControlPlane` CRD, one Secret and
    /// one `ControlPlane` per space in the hosting cluster, which is the WDS API server), installs
    /// the `ManagedCluster` and the given WorkStatus CRD in the ITS, and starts KubeStellar's
    /// controller-manager with `controllers`. `crds` names the CRD files: KubeFlex's
    /// `ControlPlane`, OCM's `ManagedCluster` and the WorkStatus CRD.
    pub async fn start(
        cp: &ControlPlane,
        wds_name: &str,
        its_name: &str,
        controllers: Controllers,
        crds: &KubeStellarCrds,
    ) -> Result<KubeStellar, Error> {
        let bin = kubestellar_bin()?;
        let hosting = cp.wds_client().await?;
        let its = cp.its_client().await?;
        crate::install_crd_files(&hosting, &[&crds.controlplane]).await?;
        crate::install_crd_files(&its, &[&crds.managedcluster, &crds.workstatus]).await?;
        register_space(cp, &hosting, wds_name, "wds", cp.wds().url.as_str()).await?;
        register_space(cp, &hosting, its_name, "its", cp.its().url.as_str()).await?;

        let gc_bin = cp.bin_dir().join("kube-controller-manager");
        let (out, err) = log_files(&cp.dir().join("wds-garbage-collector.log"))?;
        let mut gc = Command::new(&gc_bin);
        gc.arg(format!(
            "--kubeconfig={}",
            cp.dir().join(format!("{wds_name}.kubeconfig")).display()
        ))
        .args([
            "--controllers=garbagecollector",
            "--leader-elect=false",
            "--use-service-account-credentials=false",
            "--secure-port=0",
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir(cp.dir());
        let garbage_collector = process::spawn(gc).map_err(|source| Error::Spawn {
            name: "kube-controller-manager".into(),
            path: gc_bin,
            source,
        })?;

        let log = cp.dir().join(format!("kubestellar-{wds_name}.log"));
        let (out, err) = log_files(&log)?;
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--wds-name={wds_name}"))
            .arg(format!("--its-name={its_name}"))
            // Loopback only, and any free port: several may run at once.
            .arg("--metrics-bind-address=127.0.0.1:0")
            .arg("--pprof-bind-address=127.0.0.1:0")
            .arg("--health-probe-bind-address=")
            .arg("-v=2")
            .env("KUBECONFIG", cp.kubeconfig_path())
            // The hosting cluster is the kubeconfig's current context, the WDS.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir(cp.dir());
        if controllers == Controllers::BindingOnly {
            cmd.arg("--controllers=binding");
        }
        let child = process::spawn(cmd).map_err(|source| Error::Spawn {
            name: "kubestellar-controller-manager".into(),
            path: bin.clone(),
            source,
        })?;
        crate::say!(
            "kubestellar: controller-manager {KUBESTELLAR_VERSION} ({controllers:?}) started, pid {}, log {}",
            child.id(),
            log.display()
        );
        Ok(KubeStellar {
            child: Mutex::new(Some(child)),
            garbage_collector: Mutex::new(Some(garbage_collector)),
            log,
            wds_name: wds_name.to_string(),
            its_name: its_name.to_string(),
        })
    }

    /// Waits until the WDS serves the CRDs KubeStellar's controller-manager installs itself
    /// once it has found its spaces (BindingPolicy, Binding, StatusCollector, CombinedStatus).
    pub async fn wait_crds(&self, wds: &Client, timeout: Duration) -> Result<(), Error> {
        let deadline = std::time::Instant::now() + timeout;
        for (plural, kind) in [
            ("bindingpolicies", "BindingPolicy"),
            ("bindings", "Binding"),
            ("statuscollectors", "StatusCollector"),
            ("combinedstatuses", "CombinedStatus"),
        ] {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("control.kubestellar.io", "v1alpha1", kind),
                plural,
            );
            let api: Api<DynamicObject> = Api::all_with(wds.clone(), &resource);
            loop {
                if let Some(exited) = self.exited() {
                    return Err(Error::io(
                        "waiting for KubeStellar's CRDs",
                        std::io::Error::other(format!(
                            "the controller-manager exited ({exited}):\n{}",
                            self.log_tail(30)
                        )),
                    ));
                }
                let listed = api.list(&kube::api::ListParams::default().limit(1)).await;
                if listed.is_ok() {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Error::CrdNotEstablished {
                        name: format!("{plural}.control.kubestellar.io (installed by KubeStellar)"),
                        timeout,
                    });
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Ok(())
    }

    /// The controller-manager's log (klog text).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// The WDS and ITS names it was started with.
    pub fn names(&self) -> (&str, &str) {
        (&self.wds_name, &self.its_name)
    }

    /// `None` while it runs, else how it ended (a crash is a finding about KubeStellar).
    pub fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        match child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            Some(Ok(None)) => None,
            Some(Err(e)) => Some(format!("unknown ({e})")),
            None => Some("stopped".into()),
        }
    }

    /// Stops it (SIGTERM, then SIGKILL); idempotent, also on drop.
    pub fn stop(&self) {
        for slot in [&self.child, &self.garbage_collector] {
            let child = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(mut child) = child {
                process::terminate(&mut child, Duration::from_secs(5));
            }
        }
    }
}

impl Drop for KubeStellar {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A log file opened for appending, twice (stdout and stderr).
fn log_files(path: &Path) -> Result<(File, File), Error> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io("duplicating a log file handle", e))?;
    Ok((out, err))
}

/// The CRD files [`KubeStellar::start`] installs.
#[derive(Clone, Debug)]
pub struct KubeStellarCrds {
    /// KubeFlex's `ControlPlane` CRD (in the hosting cluster).
    pub controlplane: PathBuf,
    /// OCM's `ManagedCluster` CRD (in the ITS).
    pub managedcluster: PathBuf,
    /// The WorkStatus CRD (in the ITS).
    pub workstatus: PathBuf,
}

impl KubeStellarCrds {
    /// The CRDs of the Go modules `go/kubestellar/go.mod` pins (see `xtask::gomod`), and the
    /// WorkStatus CRD of `xtask::kubestellar_crd`.
    pub fn pinned() -> Result<KubeStellarCrds, Error> {
        let module = |r: Result<PathBuf, String>| r.map_err(Error::GoModule);
        Ok(KubeStellarCrds {
            controlplane: module(xtask::gomod::controlplane_crd())?,
            managedcluster: module(xtask::gomod::managedcluster_crd())?,
            workstatus: xtask::kubestellar_crd("workstatuses"),
        })
    }
}

/// A Secret `<name>-system/<name>-kubeconfig` with a one-context kubeconfig of the space at
/// `url`, and the `ControlPlane` `name` whose `status.secretRef` names it, as KubeFlex makes them.
async fn register_space(
    cp: &ControlPlane,
    hosting: &Client,
    name: &str,
    cptype: &str,
    url: &str,
) -> Result<(), Error> {
    let creds = cp.creds.as_ref().ok_or_else(|| {
        Error::io(
            "registering a space",
            std::io::Error::other("no credentials"),
        )
    })?;
    let file = cp.dir().join(format!("{name}.kubeconfig"));
    setup::write_kubeconfig(&file, creds, &[(name, url)])?;
    let kubeconfig =
        std::fs::read(&file).map_err(|e| Error::io(format!("reading {}", file.display()), e))?;

    let namespace = format!("{name}-system");
    let secret_name = format!("{name}-kubeconfig");
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let apply = PatchParams::apply("testenv").force();
    Api::<Namespace>::all(hosting.clone())
        .patch(&namespace, &apply, &Patch::Apply(&ns))
        .await?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(secret_name.clone()),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("kubeconfig".to_string(), ByteString(kubeconfig.clone())),
            ("kubeconfig-incluster".to_string(), ByteString(kubeconfig)),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(hosting.clone(), &namespace)
        .patch(&secret_name, &apply, &Patch::Apply(&secret))
        .await?;

    let resource = controlplane_resource();
    let api: Api<DynamicObject> = Api::all_with(hosting.clone(), &resource);
    let mut object = DynamicObject::new(name, &resource).data(json!({
        "spec": {"type": if cptype == "wds" { "k8s" } else { "vcluster" }},
    }));
    object
        .metadata
        .labels
        .get_or_insert_default()
        .insert(CPTYPE_LABEL.to_string(), cptype.to_string());
    api.create(&PostParams::default(), &object).await?;
    let status = json!({
        "apiVersion": "tenancy.kflex.kubestellar.org/v1alpha1",
        "kind": "ControlPlane",
        "status": {
            "conditions": [],
            "observedGeneration": 0,
            "secretRef": {
                "namespace": namespace,
                "name": secret_name,
                "key": "kubeconfig",
                "inClusterKey": "kubeconfig-incluster",
            },
        },
    });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Creates the WEC `name` as KubeStellar knows WECs: an OCM `ManagedCluster` with `labels` in
/// the ITS (what BindingPolicy `clusterSelectors` match), and the ITS namespace of the same name
/// where its status agent writes WorkStatuses.
pub async fn create_wec(
    its: &Client,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let resource = managedcluster_resource();
    let mut cluster = DynamicObject::new(name, &resource).data(json!({
        "spec": {"hubAcceptsClient": true},
    }));
    cluster.metadata.labels = Some(labels.clone());
    Api::<DynamicObject>::all_with(its.clone(), &resource)
        .create(&PostParams::default(), &cluster)
        .await?;
    crate::create_namespace_named(its, name).await;
    Ok(())
}
