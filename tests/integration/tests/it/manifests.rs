//! The manifests of `config/` as `kubectl kustomize` renders them, and as a real API server
//! takes them:
//!
//! - `config/default` is hardened (securityContext, probes, resources, the cache emptyDir), has
//!   a PodDisruptionBudget, a metrics Service, leader election on, and mounts nothing by subPath;
//! - `kubectl apply -k config/default --dry-run=server` is clean on a real kube-apiserver (1.32);
//! - applied for real on an API server with RBAC on, the ServiceAccount may make every API call
//!   the code makes (the list below, with where each call is), and nothing it does not need.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testenv::{Authorization, ControlPlane};

fn root() -> PathBuf {
    xtask::workspace_root()
}

fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run kubectl (it ships with the machine image): {e}"));
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl kustomize config/<dir>` as JSON values.
fn render(dir: &str) -> Vec<Value> {
    let path = root().join("config").join(dir);
    let yaml = kubectl(&["kustomize", &path.display().to_string()]);
    testenv::parse_documents(&yaml, dir).unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered manifests"))
}

fn container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", "status-router")["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn config_default_is_hardened_and_complete() {
    let docs = render("default");
    for (kind, name) in [
        ("Namespace", "kubestellar"),
        ("ServiceAccount", "status-router"),
        ("ClusterRole", "status-router-wds"),
        ("ClusterRoleBinding", "status-router-wds"),
        ("Role", "status-router-leader-election"),
        ("RoleBinding", "status-router-leader-election"),
        ("Service", "status-router-metrics"),
        ("PodDisruptionBudget", "status-router"),
    ] {
        find(&docs, kind, name);
    }
    for doc in &docs {
        let kind = doc["kind"].as_str().unwrap();
        if !matches!(kind, "Namespace" | "ClusterRole" | "ClusterRoleBinding") {
            assert_eq!(
                doc["metadata"]["namespace"], "kubestellar",
                "{kind} namespace"
            );
        }
    }
    let deployment = find(&docs, "Deployment", "status-router");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "status-router");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = container(&docs);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--leader-elect")
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "{kind}.{resource}"
            );
        }
    }
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
            .clone()
    };
    assert_eq!(env("STATUS_ROUTER_LOG_FORMAT")["value"], "json");
    assert_eq!(
        env("STATUS_ROUTER_ITS_KUBECONFIG")["value"],
        "/etc/status-router/its/kubeconfig"
    );
    assert_eq!(
        env("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // The compiled-policy cache is an emptyDir (the root file system is read-only).
    let mounts = c["volumeMounts"].as_array().unwrap();
    let cache = mounts
        .iter()
        .find(|m| m["mountPath"] == "/var/cache/status-router")
        .unwrap();
    let volume = |name: &Value| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == *name)
            .unwrap()
            .clone()
    };
    assert!(volume(&cache["name"])["emptyDir"].is_object());
    let its = mounts
        .iter()
        .find(|m| m["mountPath"] == "/etc/status-router/its")
        .unwrap();
    assert_eq!(
        volume(&its["name"])["secret"]["secretName"],
        "status-router-its-kubeconfig"
    );
    let pdb = find(&docs, "PodDisruptionBudget", "status-router");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        find(&docs, "Service", "status-router-metrics")["spec"]["ports"][0]["targetPort"],
        "metrics"
    );
}

#[test]
fn overlays_and_components_render_and_never_mount_by_sub_path() {
    for dir in [
        "default",
        "samples/production",
        "test/node",
        "samples/kubestellar",
    ] {
        let docs = render(dir);
        let text = serde_json::to_string(&docs).unwrap();
        assert!(!text.contains("subPath"), "{dir} mounts by subPath");
        assert!(!docs.is_empty());
    }
    let production = render("samples/production");
    let c = container(&production);
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--policy=/etc/status-router/policy/policy.wasm")
    );
    assert!(
        c["image"]
            .as_str()
            .unwrap()
            .starts_with("registry.example.com/")
    );
    assert!(
        serde_json::to_string(c)
            .unwrap()
            .contains("STATUS_ROUTER_WDS_KUBECONFIG")
    );
    assert!(serde_json::to_string(c).unwrap().contains("wds2"));
    let node = render("test/node");
    let c = container(&node);
    assert!(c["readinessProbe"]["exec"]["command"][1] == "probe");
    assert!(
        c.get("ports").is_none(),
        "hostNetwork replicas must not declare ports"
    );
    // The real-node overlay changes only the Deployment: the node runs config/default's other
    // objects as they are (the PodDisruptionBudget's policy/v1 included).
    let others = |docs: Vec<Value>| -> Vec<Value> {
        docs.into_iter()
            .filter(|d| d["kind"] != "Deployment")
            .collect()
    };
    assert_eq!(others(node), others(render("default")));
}

#[test]
fn the_kubestellar_sample_runs_beside_kubestellar_and_finds_its_spaces_through_kubeflex() {
    let docs = render("samples/kubestellar");
    assert!(
        !docs.iter().any(|d| d["kind"] == "Namespace"),
        "KubeFlex makes <wds>-system"
    );
    for doc in docs
        .iter()
        .filter(|d| d["metadata"]["namespace"].is_string())
    {
        let ns = doc["metadata"]["namespace"].as_str().unwrap();
        let only_its = doc["kind"] == "Role" || doc["kind"] == "RoleBinding";
        assert!(
            ns == "wds1-system" || (only_its && ns == "its1-system"),
            "{} {} in {ns}",
            doc["kind"],
            doc["metadata"]["name"]
        );
    }
    let c = container(&docs);
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for arg in [
        "run",
        "--leader-elect",
        "--wds-name=wds1",
        "--its-name=its1",
    ] {
        assert!(args.contains(&arg), "{arg} not in {args:?}");
    }
    assert!(
        c["image"]
            .as_str()
            .unwrap()
            .starts_with("localhost/status-router")
    );
    // --its-name conflicts with a space's kubeconfig, so none is left, nor its Secret.
    let text = serde_json::to_string(&find(&docs, "Deployment", "status-router")).unwrap();
    for gone in [
        "STATUS_ROUTER_ITS_KUBECONFIG",
        "STATUS_ROUTER_WDS_KUBECONFIG",
        "STATUS_ROUTER_WDS_NAME",
        "its-kubeconfig",
    ] {
        assert!(!text.contains(gone), "{gone} is still in the Deployment");
    }
    // In the hosting cluster: the ControlPlanes and the kubeconfig Secrets, nothing else.
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "status-router-wds"),
        "the WDS grant belongs to a WDS, not to the hosting cluster"
    );
    let rules = &find(&docs, "ClusterRole", "status-router-kubeflex")["rules"];
    assert_eq!(rules[0]["apiGroups"][0], "tenancy.kflex.kubestellar.org");
    assert_eq!(rules[0]["resources"][0], "controlplanes");
    let subject = |binding: &Value| binding["subjects"][0].clone();
    let sa = serde_json::json!({"kind": "ServiceAccount", "name": "status-router", "namespace": "wds1-system"});
    assert_eq!(
        subject(find(
            &docs,
            "ClusterRoleBinding",
            "status-router-kubeflex-wds1"
        )),
        sa
    );
    for ns in ["wds1-system", "its1-system"] {
        let role = docs
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no Role for the kubeconfig Secret in {ns}"));
        assert_eq!(role["rules"][0]["resources"][0], "secrets");
        assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["get"]));
        assert!(
            role["rules"][0]["resourceNames"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == "admin-kubeconfig")
        );
        let binding = docs
            .iter()
            .find(|d| d["kind"] == "RoleBinding" && d["metadata"]["namespace"] == ns)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(subject(binding), sa);
    }
    // The patch of KubeStellar's controller-manager: the binding controller alone, and only
    // on the chart's layout (containers kube-rbac-proxy, then manager).
    let patch_file = root().join("config/samples/kubestellar/controller-manager-binding-only.yaml");
    let patch: Vec<Value> =
        serde_yaml::from_str(&std::fs::read_to_string(&patch_file).unwrap()).unwrap();
    assert_eq!(
        patch,
        vec![
            serde_json::json!({"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "manager"}),
            serde_json::json!({"op": "add", "path": "/spec/template/spec/containers/1/args/-", "value": "--controllers=binding"}),
        ]
    );
}

/// One API call the code makes: (verb, resource, namespace, where in the code).
const WDS_CALLS: &[(&str, &str, &str, &str)] = &[
    (
        "list",
        "bindings.control.kubestellar.io",
        "",
        "controller/watch.rs: watch Bindings",
    ),
    (
        "watch",
        "bindings.control.kubestellar.io",
        "",
        "controller/watch.rs",
    ),
    (
        "get",
        "bindings.control.kubestellar.io",
        "",
        "preflight access check",
    ),
    (
        "list",
        "deployments.apps",
        "",
        "controller/watch.rs: watch each kind a Binding names",
    ),
    ("watch", "deployments.apps", "", "controller/watch.rs"),
    (
        "patch",
        "deployments.apps",
        "default",
        "controller/wds.rs: the managed-by labels",
    ),
    (
        "patch",
        "deployments.apps/status",
        "default",
        "controller/wds.rs: the status subresource",
    ),
    (
        "patch",
        "gadgets.statusrouter.example.com",
        "default",
        "controller/wds.rs: status of a kind without subresource",
    ),
    (
        "create",
        "events.events.k8s.io",
        "default",
        "controller/wds.rs: Recorder (AggregateFailed, StatusWriteRejected)",
    ),
    (
        "patch",
        "events.events.k8s.io",
        "default",
        "Recorder: a repeated Event",
    ),
    (
        "create",
        "events",
        "default",
        "core Events, for recorders of the core API",
    ),
    (
        "get",
        "configmaps",
        "kubestellar",
        "hotswap/configmap.rs: --policy-configmap",
    ),
    ("list", "configmaps", "kubestellar", "hotswap/configmap.rs"),
    ("watch", "configmaps", "kubestellar", "hotswap/configmap.rs"),
    (
        "get",
        "leases.coordination.k8s.io",
        "kubestellar",
        "leader election",
    ),
    (
        "create",
        "leases.coordination.k8s.io",
        "kubestellar",
        "leader election: first Lease",
    ),
    (
        "update",
        "leases.coordination.k8s.io",
        "kubestellar",
        "leader election: renew, take over, release",
    ),
    (
        "patch",
        "leases.coordination.k8s.io",
        "kubestellar",
        "leader election",
    ),
    (
        "create",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "",
        "controller/preflight.rs",
    ),
];
/// What the ServiceAccount must not do in the WDS.
const WDS_DENIED: &[(&str, &str, &str)] = &[
    ("create", "deployments.apps", "default"),
    ("delete", "deployments.apps", "default"),
    ("update", "secrets", "kubestellar"),
    ("create", "leases.coordination.k8s.io", "default"),
];
const ITS_CALLS: &[(&str, &str, &str, &str)] = &[
    (
        "list",
        "workstatuses.control.kubestellar.io",
        "",
        "controller/watch.rs: watch WorkStatuses",
    ),
    (
        "watch",
        "workstatuses.control.kubestellar.io",
        "",
        "controller/watch.rs",
    ),
    (
        "get",
        "workstatuses.control.kubestellar.io",
        "",
        "preflight access check",
    ),
];
const ITS_DENIED: &[(&str, &str, &str)] =
    &[("patch", "workstatuses.control.kubestellar.io", "wec1")];
const SA: &str = "system:serviceaccount:kubestellar:status-router";

fn can_i(kubeconfig: &Path, context: &str, verb: &str, resource: &str, ns: &str) -> bool {
    let mut args = vec![
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--context",
        context,
    ];
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    args.extend(["auth", "can-i", verb, resource, "--as", SA]);
    let sub = format!("--subresource={subresource}");
    if !subresource.is_empty() {
        args.push(&sub);
    }
    if ns.is_empty() {
        args.push("--all-namespaces");
    } else {
        args.extend(["-n", ns]);
    }
    let out = Command::new("kubectl").args(&args).output().unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        answer == "yes" || answer == "no",
        "kubectl {args:?}: {answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    answer == "yes"
}

#[test]
fn a_real_api_server_takes_config_default_and_its_rbac_covers_every_call() {
    let plane = ControlPlane::start_with(Authorization::Rbac)
        .unwrap_or_else(|e| panic!("start a control plane with RBAC: {e}"));
    let kc = plane.kubeconfig_path().to_path_buf();
    let kc_arg = kc.display().to_string();
    let overlay = root().join("config/default").display().to_string();
    let crds = root()
        .join("config/crds/kubestellar.yaml")
        .display()
        .to_string();
    for context in ["wds", "its"] {
        kubectl(&[
            "--kubeconfig",
            &kc_arg,
            "--context",
            context,
            "apply",
            "-f",
            &crds,
        ]);
    }
    // A server dry run cannot create the namespace the other objects go in: make it first.
    kubectl(&[
        "--kubeconfig",
        &kc_arg,
        "--context",
        "wds",
        "create",
        "namespace",
        "kubestellar",
    ]);
    let dry = kubectl(&[
        "--kubeconfig",
        &kc_arg,
        "--context",
        "wds",
        "apply",
        "-k",
        &overlay,
        "--dry-run=server",
    ]);
    assert!(
        dry.contains("deployment.apps/status-router created (server dry run)"),
        "{dry}"
    );
    assert_eq!(
        dry.lines().count(),
        render("default").len(),
        "one line per object:\n{dry}"
    );
    kubectl(&[
        "--kubeconfig",
        &kc_arg,
        "--context",
        "wds",
        "apply",
        "-k",
        &overlay,
    ]);
    let its_rbac = root().join("config/rbac/its.yaml").display().to_string();
    kubectl(&[
        "--kubeconfig",
        &kc_arg,
        "--context",
        "its",
        "apply",
        "-f",
        &its_rbac,
    ]);
    for (verb, resource, ns, why) in WDS_CALLS {
        assert!(
            can_i(&kc, "wds", verb, resource, ns),
            "WDS: may not {verb} {resource} in {ns:?} ({why})"
        );
    }
    for (verb, resource, ns) in WDS_DENIED {
        assert!(
            !can_i(&kc, "wds", verb, resource, ns),
            "WDS: needlessly may {verb} {resource} in {ns}"
        );
    }
    for (verb, resource, ns, why) in ITS_CALLS {
        assert!(
            can_i(&kc, "its", verb, resource, ns),
            "ITS: may not {verb} {resource} ({why})"
        );
    }
    for (verb, resource, ns) in ITS_DENIED {
        assert!(
            !can_i(&kc, "its", verb, resource, ns),
            "ITS: may {verb} {resource}"
        );
    }
}
