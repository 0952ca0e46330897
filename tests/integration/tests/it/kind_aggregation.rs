//! The default policy's multi-WEC aggregate per kind, written by the
//! controller on a real control plane: apps/Deployment, ReplicaSet and
//! DaemonSet exactly as KubeStellar v0.30 (upstream's test vectors), a
//! StatefulSet and a Job by the rules upstream proposes (PR #3594), and a
//! custom kind by the generic rules. What is checked is the status the WDS
//! API server stored, so the server's own normalisation (it drops zero
//! counters and empty lists of the built-in kinds) is part of the result.
//!
//! Tests that run a controller on the shared control plane run one at a time
//! (see `common`).

use integration_tests::*;
use kube::api::ApiResource;
use serde_json::{Value, json};
use status_router::kubestellar::SourceRef;

/// One kind under test: its resource, its WDS object's body, the two
/// reports, and the status the WDS must end up with.
struct KindCase {
    /// A CRD to install first, for a custom kind.
    crd: Option<&'static str>,
    ar: ApiResource,
    body: Value,
    reports: [Value; 2],
    want: Value,
}

/// Creates the object, reports it from two WECs, binds it with the
/// multi-WEC flag, and waits for the aggregate with the multi-WEC label.
async fn aggregate_on_the_wds(case: KindCase) {
    let env = Env::new().await;
    if let Some(crd) = case.crd {
        testenv::install_crds(&env.wds, crd)
            .await
            .expect("install the CRD");
    }
    let wds_name = testenv::unique_name("wds");
    let ns = env.namespace().await;
    let (wec1, wec2) = (env.wec().await, env.wec().await);
    let binding = testenv::unique_name("multi");
    let ar = &case.ar;
    let target = create_object(&env.wds, ar, &ns, "obj", case.body).await;
    let source = SourceRef {
        group: ar.group.clone(),
        version: ar.version.clone(),
        resource: ar.plural.clone(),
        kind: ar.kind.clone(),
        name: "obj".into(),
        namespace: ns.clone(),
    };
    for (wec, status) in [(&wec1, &case.reports[0]), (&wec2, &case.reports[1])] {
        Report {
            wec,
            name: "obj",
            wds_name: Some(&wds_name),
            binding: &binding,
            source: source.clone(),
        }
        .create(&env.its, Some(status))
        .await;
    }
    let controller = Running::start(&env, &wds_name, default_policy(), 2);
    let gvr = (ar.group.as_str(), ar.version.as_str(), ar.plural.as_str());
    let clauses = vec![clause(gvr, &ns, "obj", MULTI_WEC)];
    env.put_binding(&binding, binding_spec(&[&wec1, &wec2], clauses, vec![]))
        .await;
    let o = target.wait_multi_wec(&case.want).await;
    assert_eq!(
        o.executing_count, None,
        "no singleton flag, no executing-count"
    );
    controller.assert_no_errors();
    controller.stop().await;
    let _ = target.api.delete("obj", &Default::default()).await;
}

fn pod_template(app: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}
    })
}

fn apps(kind: &str, plural: &str) -> ApiResource {
    api_resource("apps", "v1", kind, plural)
}

/// Upstream's vector (PR #3739): `unavailableReplicas` is the maximum, the
/// other counters the minimum; `collisionCount` and the `Available`
/// condition are left out; `conditions: []` is dropped by the server.
#[async_test]
async fn a_deployment_in_two_wecs_gets_kubestellars_fields() {
    let spec = json!({"replicas": 5, "selector": {"matchLabels": {"app": "obj"}}, "template": pod_template("obj")});
    let available = json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                             "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    aggregate_on_the_wds(KindCase {
        crd: None,
        ar: apps("Deployment", "deployments"),
        body: json!({"spec": spec}),
        reports: [
            json!({"replicas": 5, "availableReplicas": 4, "readyReplicas": 3, "updatedReplicas": 5,
                   "unavailableReplicas": 1, "observedGeneration": 2, "collisionCount": 1, "conditions": available}),
            json!({"replicas": 3, "availableReplicas": 2, "readyReplicas": 2, "updatedReplicas": 3,
                   "unavailableReplicas": 3, "observedGeneration": 1}),
        ],
        want: json!({"replicas": 3, "availableReplicas": 2, "readyReplicas": 2, "updatedReplicas": 3,
                     "unavailableReplicas": 3, "observedGeneration": 1}),
    })
    .await;
}

/// Upstream's vector (PR #3739): `numberMisscheduled` is the maximum.
#[async_test]
async fn a_daemonset_in_two_wecs_gets_kubestellars_fields() {
    let spec =
        json!({"selector": {"matchLabels": {"app": "obj"}}, "template": pod_template("obj")});
    let status = |cur, mis, des, ready, gen_, upd, avail| {
        json!({"currentNumberScheduled": cur, "numberMisscheduled": mis, "desiredNumberScheduled": des,
               "numberReady": ready, "observedGeneration": gen_, "updatedNumberScheduled": upd,
               "numberAvailable": avail})
    };
    let mut first = status(10, 2, 10, 8, 3, 10, 8);
    first["numberUnavailable"] = json!(2);
    aggregate_on_the_wds(KindCase {
        crd: None,
        ar: apps("DaemonSet", "daemonsets"),
        body: json!({"spec": spec}),
        reports: [first, status(5, 5, 5, 3, 2, 4, 3)],
        want: status(5, 5, 5, 3, 2, 4, 3),
    })
    .await;
}

/// Upstream's vector (PR #3739), with a `ReplicaFailure` condition from one
/// WEC kept.
#[async_test]
async fn a_replicaset_in_two_wecs_gets_kubestellars_fields() {
    let spec = json!({"replicas": 6, "selector": {"matchLabels": {"app": "obj"}}, "template": pod_template("obj")});
    let failure = json!({"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                         "message": "quota", "lastTransitionTime": "2026-01-01T00:00:00Z"});
    let status = |r, labeled, ready, avail, gen_| {
        json!({"replicas": r, "fullyLabeledReplicas": labeled, "readyReplicas": ready,
               "availableReplicas": avail, "observedGeneration": gen_})
    };
    let mut second = status(4, 3, 2, 2, 3);
    second["conditions"] = json!([failure]);
    let mut want = status(4, 3, 2, 2, 3);
    want["conditions"] = json!([failure]);
    aggregate_on_the_wds(KindCase {
        crd: None,
        ar: apps("ReplicaSet", "replicasets"),
        body: json!({"spec": spec}),
        reports: [status(6, 6, 5, 5, 4), second],
        want,
    })
    .await;
}

/// The proposed rule: counters take the minimum, a revision stays only where
/// both WECs agree, conditions three-valued by type; `availableReplicas` is
/// left out.
#[async_test]
async fn a_statefulset_in_two_wecs_gets_the_proposed_fields() {
    let spec = json!({"replicas": 3, "serviceName": "obj", "selector": {"matchLabels": {"app": "obj"}},
                      "template": pod_template("obj")});
    aggregate_on_the_wds(KindCase {
        crd: None,
        ar: apps("StatefulSet", "statefulsets"),
        body: json!({"spec": spec}),
        reports: [
            json!({"replicas": 3, "readyReplicas": 3, "currentReplicas": 3, "updatedReplicas": 1,
                   "observedGeneration": 2, "currentRevision": "obj-1", "updateRevision": "obj-2",
                   "availableReplicas": 3}),
            json!({"replicas": 3, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 3,
                   "observedGeneration": 2, "currentRevision": "obj-1", "updateRevision": "obj-1"}),
        ],
        want: json!({"replicas": 3, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 1,
                     "availableReplicas": 0, "observedGeneration": 2, "currentRevision": "obj-1"}),
    })
    .await;
}

/// The proposed rule: `active`, `succeeded`, `failed` take the minimum;
/// `Complete` in one WEC only is `Unknown`; `startTime` is left out.
#[async_test]
async fn a_job_in_two_wecs_gets_the_proposed_fields() {
    let mut template = pod_template("obj");
    template["spec"]["restartPolicy"] = json!("Never");
    let complete = |status: &str| {
        json!({"type": "Complete", "status": status, "lastProbeTime": "2026-01-01T00:01:00Z",
               "lastTransitionTime": "2026-01-01T00:01:00Z"})
    };
    aggregate_on_the_wds(KindCase {
        crd: None,
        ar: api_resource("batch", "v1", "Job", "jobs"),
        body: json!({"spec": {"template": template}}),
        reports: [
            json!({"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
                   "completionTime": "2026-01-01T00:01:00Z", "conditions": [complete("True")]}),
            json!({"active": 1, "startTime": "2026-01-01T00:00:00Z"}),
        ],
        want: json!({"conditions": [complete("Unknown")]}),
    })
    .await;
}

/// A custom kind gets the generic rules: numbers minimum (an omitted one is
/// 0, which the CRD keeps), booleans AND, strings where both agree,
/// conditions three-valued, whatever its fields are called.
#[async_test]
async fn a_custom_kind_in_two_wecs_gets_the_generic_rules() {
    let ready =
        |status: &str, t: &str| json!({"type": "Ready", "status": status, "lastTransitionTime": t});
    aggregate_on_the_wds(KindCase {
        crd: Some(GADGETS_CRD),
        ar: api_resource("statusrouter.example.com", "v1alpha1", "Gadget", "gadgets"),
        body: json!({"spec": {"size": 3}}),
        reports: [
            json!({"replicas": 3, "readyReplicas": 3, "unavailableReplicas": 0, "synced": true,
                   "phase": "Running", "node": "a", "conditions": [ready("True", "2026-01-01T00:00:00Z")]}),
            json!({"replicas": 3, "unavailableReplicas": 2, "synced": true, "phase": "Running",
                   "node": "b", "conditions": [ready("False", "2026-01-02T00:00:00Z")]}),
        ],
        want: json!({"replicas": 3, "readyReplicas": 0, "unavailableReplicas": 0, "synced": true,
                     "phase": "Running", "conditions": [ready("False", "2026-01-02T00:00:00Z")]}),
    })
    .await;
}
