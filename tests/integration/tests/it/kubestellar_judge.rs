//! KubeStellar's own controller-manager as the judge: its binding controller turns
//! BindingPolicies into the Bindings status-router reads, and, with both of its controllers,
//! its status controller writes the statuses status-router must match. No Binding here is
//! written by us; WECs are OCM `ManagedCluster`s that BindingPolicy cluster selectors match.
//! The seeded comparison over many objects is the differential suite (`differential.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use integration_tests::*;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use status_router::kubestellar::{Binding, WorkStatus};
use testenv::{ControlPlane, Controllers, KubeStellar, KubeStellarCrds};

/// KubeStellar's binding controller lists every resource of the WDS before its first Binding.
const KUBESTELLAR_TIMEOUT: Duration = Duration::from_secs(90);
const WDS: &str = "wds1";
const ITS: &str = "its1";

/// A private control plane with KubeStellar's controller-manager running, one WEC `cluster1`
/// labelled `location=edge`, and a Deployment `web` in namespace `wl`.
struct World {
    wds: Client,
    its: Client,
    kubestellar: KubeStellar,
    _cp: ControlPlane,
}

impl World {
    async fn new(controllers: Controllers) -> World {
        init_logs();
        let cp = tokio::task::spawn_blocking(ControlPlane::start)
            .await
            .expect("start task")
            .expect("start a private control plane");
        let crds = KubeStellarCrds::pinned().expect("the pinned Go modules' CRDs");
        let kubestellar = KubeStellar::start(&cp, WDS, ITS, controllers, &crds)
            .await
            .expect("start KubeStellar's controller-manager");
        let wds = cp.wds_client().await.expect("WDS client");
        let its = cp.its_client().await.expect("ITS client");
        kubestellar
            .wait_crds(&wds, KUBESTELLAR_TIMEOUT)
            .await
            .expect("KubeStellar installs its CRDs");
        let labels = BTreeMap::from([("location".to_string(), "edge".to_string())]);
        testenv::kubestellar::create_wec(&its, "cluster1", &labels)
            .await
            .expect("create the WEC cluster1");
        testenv::create_namespace_named(&wds, "wl").await;
        create_deployment(&wds, "wl", "web").await;
        World {
            wds,
            its,
            kubestellar,
            _cp: cp,
        }
    }

    /// A BindingPolicy `bp` sending `web` to the WECs labelled `location=edge`.
    async fn bind_web(&self, flags: Value) {
        let mut clause = json!({"objectSelectors": [{"matchLabels": {"app": "web"}}]});
        clause
            .as_object_mut()
            .expect("an object")
            .extend(flags.as_object().expect("flags are an object").clone());
        let ar = api_resource(
            "control.kubestellar.io",
            "v1alpha1",
            "BindingPolicy",
            "bindingpolicies",
        );
        let policy = DynamicObject::new("bp", &ar).data(json!({
            "spec": {
                "clusterSelectors": [{"matchLabels": {"location": "edge"}}],
                "downsync": [clause],
            }
        }));
        Api::<DynamicObject>::all_with(self.wds.clone(), &ar)
            .create(&PostParams::default(), &policy)
            .await
            .expect("create the BindingPolicy");
    }

    /// Waits until KubeStellar's Binding `bp` names `web` and exactly `wecs`.
    async fn binding_names(&self, wecs: &[&str]) -> Binding {
        let api: Api<Binding> = Api::all(self.wds.clone());
        let what = format!("KubeStellar's Binding bp to send wl/web to {wecs:?}");
        wait_for(&what, KUBESTELLAR_TIMEOUT, || async {
            if let Some(exited) = self.kubestellar.exited() {
                panic!(
                    "KubeStellar's controller-manager exited ({exited}):\n{}",
                    self.kubestellar.log_tail(40)
                );
            }
            let binding = api.get_opt("bp").await.map_err(|e| e.to_string())?;
            let Some(binding) = binding else {
                return Err("no Binding yet".into());
            };
            let mut destinations: Vec<&str> = binding
                .spec
                .destinations
                .iter()
                .map(|d| d.cluster_id.as_str())
                .collect();
            destinations.sort_unstable();
            let names_web = binding
                .spec
                .workload
                .namespace_scope
                .iter()
                .any(|c| c.namespace == "wl" && c.object.name == "web");
            if names_web && destinations == wecs {
                Ok(binding)
            } else {
                Err(format!("{:?}", binding.spec))
            }
        })
        .await
    }

    async fn relabel_wec(&self, wec: &str, location: &str) {
        let ar = testenv::kubestellar::managedcluster_resource();
        Api::<DynamicObject>::all_with(self.its.clone(), &ar)
            .patch(
                wec,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"location": location}}})),
            )
            .await
            .expect("relabel the ManagedCluster");
    }
}

async fn wait_long(target: &Target, what: &str, want: impl Fn(&Observed) -> bool) -> Observed {
    wait_for(what, KUBESTELLAR_TIMEOUT, || async {
        let seen = target.observe().await;
        if want(&seen) {
            Ok(seen)
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await
}

/// KubeStellar's first end-to-end scenario with `--controllers=binding` and status-router: the
/// Binding comes from KubeStellar's binding controller, status-router returns the status; when
/// the policy matches no WEC any more (the WEC's label changes), the status is cleared.
#[async_test]
async fn status_router_serves_the_bindings_kubestellars_binding_controller_makes() {
    let _alone = alone().await;
    let world = World::new(Controllers::BindingOnly).await;
    world
        .bind_web(json!({"wantSingletonReportedState": true}))
        .await;
    world.binding_names(&["cluster1"]).await;
    let status = deployment_status(2, 1);
    report_deployment(
        &world.its,
        "cluster1",
        WDS,
        "bp",
        ("wl", "web"),
        Some(&status),
    )
    .await;
    let controller = Running::start_with(
        world.wds.clone(),
        world.its.clone(),
        WDS,
        default_policy(),
        4,
    );
    let web = Target::deployment(&world.wds, "wl", "web");
    wait_long(&web, "status-router to return cluster1's status", |o| {
        o.is_singleton(&status)
    })
    .await;

    world.relabel_wec("cluster1", "elsewhere").await;
    world.binding_names(&[]).await;
    wait_long(
        &web,
        "status-router to clear the status",
        Observed::is_cleared,
    )
    .await;
    controller.assert_no_errors();
    controller.stop().await;
    assert_eq!(world.kubestellar.exited(), None, "KubeStellar still runs");
}

/// The same scenario with KubeStellar's own status controller: the fixture runs KubeStellar as
/// its Helm chart does, and KubeStellar writes what status-router wrote above; it clears only
/// once the WorkStatus goes, where status-router clears on the destination change itself.
#[async_test]
async fn kubestellars_own_status_controller_writes_the_same_singleton_status() {
    let _alone = alone().await;
    let world = World::new(Controllers::All).await;
    world
        .bind_web(json!({"wantSingletonReportedState": true}))
        .await;
    world.binding_names(&["cluster1"]).await;
    let status = deployment_status(2, 1);
    report_deployment(
        &world.its,
        "cluster1",
        WDS,
        "bp",
        ("wl", "web"),
        Some(&status),
    )
    .await;
    let web = Target::deployment(&world.wds, "wl", "web");
    wait_long(&web, "KubeStellar to return cluster1's status", |o| {
        o.is_singleton(&status)
    })
    .await;
    world.relabel_wec("cluster1", "elsewhere").await;
    world.binding_names(&[]).await;
    // Upstream's known gap (docs/kubestellar-differences.md, `destinations-only`): a change of
    // destinations alone does not re-trigger an object, so the status stays for now...
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        web.observe().await.is_singleton(&status),
        "KubeStellar re-triggered on a destination change: the differences table is stale"
    );
    // ...until the status add-on deletes the WorkStatus of the object that left the WEC.
    Api::<WorkStatus>::namespaced(world.its.clone(), "cluster1")
        .delete("appsv1-deployment-wl-web", &Default::default())
        .await
        .expect("delete the WorkStatus as the status add-on does");
    wait_long(
        &web,
        "KubeStellar to clear the status",
        Observed::is_cleared,
    )
    .await;
    assert_eq!(world.kubestellar.exited(), None, "KubeStellar still runs");
}
