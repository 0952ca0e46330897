//! The RBAC that `config/rbac/` ships is what the controller needs, and the
//! API servers enforce it: on a private control plane with RBAC on, the
//! controller's WDS and ITS identities are a ServiceAccount (a token from the
//! TokenRequest API in each space), never the admin.
//!
//! - Before the manifests are applied, `preflight` refuses to start, naming
//!   the permission and the manifest.
//! - After, the controller copies a singleton status, and records the Event of
//!   a refused aggregate, with no reconcile error.
//! - The policy Role reads ConfigMaps and records Events in its own namespace,
//!   and grants nothing outside it.
//! - The leader-election Role lets the lease task take and release its Lease.
//!
//! Objects are made by the admin, as KubeStellar's controllers would.

use integration_tests::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use kube::config::AuthInfo;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use status_router::controller::{Config, Controller, StartError};
use status_router::ops::leader::{Leadership, LeaseSettings};
use status_router::runtime::health::Health;
use status_router::runtime::role::Role as LeaderRole;
use testenv::{Authorization, ControlPlane};

/// Where the manifests bind the ClusterRoles: ServiceAccount kubestellar/status-router.
const NAMESPACE: &str = "kubestellar";
const ACCOUNT: &str = "status-router";
/// The label-driven policy's annotation; it refuses to aggregate with a value it does not know.
const NUMBERS_ANNOTATION: &str = "status-router.kubestellar.io/aggregate-numbers";

#[async_test]
async fn the_shipped_rbac_is_enough_for_the_controller_and_required() {
    init_logs();
    let plane = tokio::task::block_in_place(|| ControlPlane::start_with(Authorization::Rbac))
        .unwrap_or_else(|e| panic!("start a control plane with RBAC: {e}"));
    let (wds, its) = (
        plane.wds_client().await.unwrap(),
        plane.its_client().await.unwrap(),
    );
    let crds = status_router::kubestellar::crds_yaml();
    testenv::install_crds(&wds, &crds).await.unwrap();
    testenv::install_crds(&its, &crds).await.unwrap();
    let wds_sa = service_account_client(&plane, "wds", &wds).await;
    let its_sa = service_account_client(&plane, "its", &its).await;
    let wds_name = "rbac-wds";
    let controller = || {
        let config = Config {
            wds_name: wds_name.into(),
            workers: 2,
        };
        Controller::new(
            wds_sa.clone(),
            its_sa.clone(),
            policy("label-driven"),
            config,
        )
    };

    // Without the grants: one line naming the permission and the manifest.
    match controller().preflight().await {
        Err(e @ StartError::Forbidden { space: "WDS", .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("bindings.control.kubestellar.io"),
                "{message}"
            );
            assert!(message.contains("config/rbac/wds.yaml"), "{message}");
        }
        other => panic!("expected the WDS identity to be refused, got {other:?}"),
    }
    apply_manifests(&wds, "config/rbac/wds.yaml").await;
    match controller().preflight().await {
        Err(e @ StartError::Forbidden { space: "ITS", .. }) => {
            assert!(e.to_string().contains("config/rbac/its.yaml"), "{e}");
        }
        other => panic!("expected the ITS identity to be refused, got {other:?}"),
    }
    apply_manifests(&its, "config/rbac/its.yaml").await;
    controller()
        .preflight()
        .await
        .expect("the grants are enough to start");

    // The policy Role, applied where the ServiceAccount has nothing else (as
    // in a --policy-context cluster other than the WDS): the ConfigMaps and
    // Events of its own namespace, and nothing outside it.
    apply_manifests(&its, "config/rbac/policy-configmap.yaml").await;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "policy"}})).unwrap();
    let admin_cms: Api<ConfigMap> = Api::namespaced(its.clone(), NAMESPACE);
    let cm = admin_cms.create(&PostParams::default(), &cm).await.unwrap();
    let here: Api<ConfigMap> = Api::namespaced(its_sa.clone(), NAMESPACE);
    here.get("policy").await.expect("the policy ConfigMap");
    here.list(&ListParams::default())
        .await
        .expect("ConfigMaps of kubestellar");
    let recorder = Recorder::new(
        its_sa.clone(),
        Reporter {
            controller: "status-router".into(),
            instance: None,
        },
    );
    let swapped = Event {
        type_: EventType::Normal,
        reason: "PolicySwapped".into(),
        note: Some("test".into()),
        action: "Swap".into(),
        secondary: None,
    };
    recorder
        .publish(&swapped, &cm.object_ref(&()))
        .await
        .expect("an Event on the policy ConfigMap");
    let elsewhere: Api<ConfigMap> = Api::namespaced(its_sa.clone(), "default");
    let refused = elsewhere.list(&ListParams::default()).await.unwrap_err();
    assert!(refused.to_string().contains("forbidden"), "{refused}");

    // A singleton copy, and a refused aggregate, as the ServiceAccount.
    let ns = testenv::create_namespace(&wds, "wl").await;
    let (wec1, wec2) = (
        testenv::create_namespace(&its, "wec").await,
        testenv::create_namespace(&its, "wec").await,
    );
    let web = create_deployment(&wds, &ns, "web").await;
    let mut odd = deployment(&ns, "odd");
    odd.metadata.annotations =
        Some([(NUMBERS_ANNOTATION.to_string(), "median".to_string())].into());
    Api::namespaced(wds.clone(), &ns)
        .create(&PostParams::default(), &odd)
        .await
        .expect("create Deployment odd");
    let status = deployment_status(2, 2);
    report_deployment(&its, &wec1, wds_name, "one", (&ns, "web"), Some(&status)).await;
    for wec in [&wec1, &wec2] {
        report_deployment(&its, wec, wds_name, "two", (&ns, "odd"), Some(&status)).await;
    }
    let running = Running::start_with(
        wds_sa.clone(),
        its_sa.clone(),
        wds_name,
        policy("label-driven"),
        2,
    );
    let one = vec![deployment_clause(&ns, "web", SINGLETON)];
    put_binding(&wds, "one", binding_spec(&[&wec1], one, vec![])).await;
    let two = vec![deployment_clause(&ns, "odd", BOTH)];
    put_binding(&wds, "two", binding_spec(&[&wec1, &wec2], two, vec![])).await;

    let copied = web.wait_singleton(&status).await;
    assert_eq!(copied.status["readyReplicas"], 2);
    let event = wait_event(
        &wds,
        ("Deployment", &ns, "odd"),
        "AggregateFailed",
        "Warning",
    )
    .await;
    assert!(event.note.unwrap_or_default().contains("median"));
    let odd = Target::deployment(&wds, &ns, "odd").observe().await;
    assert!(
        odd.is_cleared() && !odd.multi_wec,
        "a refused aggregate writes nothing: {odd:?}"
    );
    running.assert_no_errors();
    running.stop().await;

    // Leader election as the ServiceAccount: the Lease Role is what the
    // lease task needs to create, take and release its Lease.
    apply_manifests(&wds, "config/rbac/leader-election.yaml").await;
    let lease_name = "status-router-rbac-wds";
    let leadership = Leadership::start(
        wds_sa.clone(),
        LeaseSettings {
            namespace: NAMESPACE.into(),
            name: lease_name.into(),
            identity: "rbac-test".into(),
            lease_duration: std::time::Duration::from_secs(15),
            renew_deadline: std::time::Duration::from_secs(10),
            retry_period: std::time::Duration::from_secs(2),
        },
        &Health::new(),
    )
    .expect("valid settings");
    let mut role = leadership.role();
    tokio::time::timeout(TIMEOUT, role.wait_for(|r| *r == LeaderRole::Leading))
        .await
        .expect("the ServiceAccount takes the Lease in time")
        .expect("the lease task runs");
    leadership
        .release(TIMEOUT)
        .await
        .expect("the ServiceAccount releases the Lease");
    let lease = Api::<Lease>::namespaced(wds.clone(), NAMESPACE)
        .get(lease_name)
        .await
        .expect("the Lease");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None);
}

/// A client of `context` that authenticates as ServiceAccount
/// kubestellar/status-router of that space, with a token from the
/// TokenRequest API (each space has its own account and token).
async fn service_account_client(plane: &ControlPlane, context: &str, admin: &Client) -> Client {
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap();
    let _ = Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": ACCOUNT}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create the ServiceAccount");
    let request =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    let token = accounts
        .create_token_request(ACCOUNT, &PostParams::default(), &request)
        .await
        .expect("a token for the ServiceAccount")
        .status
        .expect("the token")
        .token;
    let mut config = plane.config(context).await.unwrap();
    config.auth_info = AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    Client::try_from(config).unwrap()
}

/// Creates every object of a multi-document RBAC manifest of the workspace.
async fn apply_manifests(admin: &Client, path: &str) {
    let text = std::fs::read_to_string(integration_tests::workspace_file(path)).unwrap();
    let documents: Vec<serde_json::Value> = testenv::parse_documents(&text, path).unwrap();
    for value in documents {
        let kind = value["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "ClusterRole" => create::<ClusterRole>(Api::all(admin.clone()), value).await,
            "ClusterRoleBinding" => {
                create::<ClusterRoleBinding>(Api::all(admin.clone()), value).await
            }
            "Role" => create::<Role>(Api::namespaced(admin.clone(), NAMESPACE), value).await,
            "RoleBinding" => {
                create::<RoleBinding>(Api::namespaced(admin.clone(), NAMESPACE), value).await
            }
            other => panic!("{path}: unexpected kind {other:?}"),
        }
    }
}

async fn create<K>(api: Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + DeserializeOwned + serde::Serialize,
{
    let object: K = serde_json::from_value(value).expect("a valid RBAC object");
    api.create(&PostParams::default(), &object)
        .await
        .expect("create an RBAC object");
}
