use super::*;
use serde_json::json;

fn control_plane(status: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "tenancy.kflex.kubestellar.org/v1alpha1",
        "kind": "ControlPlane",
        "metadata": {"name": "w1"},
        "spec": {"type": "k8s"},
        "status": status,
    }))
    .unwrap()
}

fn secret_ref(key: Option<&str>, in_cluster_key: Option<&str>) -> SecretRef {
    SecretRef {
        namespace: "w1-system".into(),
        name: "admin-kubeconfig".into(),
        key: key.map(String::from),
        in_cluster_key: in_cluster_key.map(String::from),
    }
}

#[test]
fn a_secret_ref_is_read_from_the_status_and_absent_until_kubeflex_sets_it() {
    let cp = control_plane(json!({
        "conditions": [],
        "observedGeneration": 1,
        "secretRef": {
            "namespace": "w1-system",
            "name": "admin-kubeconfig",
            "key": "kubeconfig",
            "inClusterKey": "kubeconfig-incluster",
        },
    }));
    assert_eq!(
        SecretRef::of(&cp),
        Ok(Some(secret_ref(
            Some("kubeconfig"),
            Some("kubeconfig-incluster")
        )))
    );
    let without = control_plane(json!({"conditions": [], "observedGeneration": 0}));
    assert_eq!(SecretRef::of(&without), Ok(None));
    let null = control_plane(json!({"conditions": [], "secretRef": null}));
    assert_eq!(SecretRef::of(&null), Ok(None));
    let mut no_status = control_plane(json!(null));
    no_status.data.as_object_mut().unwrap().remove("status");
    assert_eq!(SecretRef::of(&no_status), Ok(None));
}

#[test]
fn a_secret_ref_without_a_namespace_or_name_is_refused() {
    let cp = control_plane(json!({"secretRef": {"name": "admin-kubeconfig", "inClusterKey": "k"}}));
    assert!(SecretRef::of(&cp).unwrap_err().contains("namespace"));
    let cp = control_plane(json!({"secretRef": {"namespace": "", "name": "x", "key": "k"}}));
    assert!(
        SecretRef::of(&cp)
            .unwrap_err()
            .contains("must not be empty")
    );
}

#[test]
fn a_pod_reads_the_in_cluster_key_and_a_process_outside_reads_key() {
    let both = secret_ref(Some("kubeconfig"), Some("kubeconfig-incluster"));
    assert_eq!(
        both.key(true),
        Some((KeyField::InClusterKey, "kubeconfig-incluster"))
    );
    assert_eq!(both.key(false), Some((KeyField::Key, "kubeconfig")));
}

#[test]
fn an_empty_key_falls_back_to_the_other_one() {
    // An `external` ControlPlane has only inClusterKey, an `ocm` one only key.
    let external = secret_ref(None, Some("kubeconfig-incluster"));
    assert_eq!(
        external.key(false),
        Some((KeyField::InClusterKey, "kubeconfig-incluster"))
    );
    let ocm = secret_ref(Some("kubeconfig"), Some(""));
    assert_eq!(ocm.key(true), Some((KeyField::Key, "kubeconfig")));
    assert_eq!(secret_ref(Some(""), None).key(true), None);
}

#[test]
fn the_hosting_cluster_is_the_pods_own_only_when_nothing_else_is_named() {
    assert_eq!(Hosting::choose(None, false, true), Hosting::InCluster);
    assert_eq!(
        Hosting::choose(None, true, true),
        Hosting::Kubeconfig(None),
        "a named kubeconfig wins"
    );
    assert_eq!(
        Hosting::choose(Some("kind-kubeflex".into()), false, true),
        Hosting::Kubeconfig(Some("kind-kubeflex".into()))
    );
    assert_eq!(
        Hosting::choose(None, false, false),
        Hosting::Kubeconfig(None),
        "outside a pod: the current context of ~/.kube/config"
    );
}

#[test]
fn a_wait_is_logged_first_on_a_change_and_then_every_thirty_seconds() {
    let t0 = Instant::now();
    let waiting = Waiting::ControlPlane;
    assert!(log_due(None, &waiting, t0));
    let last = (waiting.clone(), t0);
    assert!(!log_due(Some(&last), &waiting, t0 + POLL));
    assert!(!log_due(Some(&last), &waiting, t0 + LOG_EVERY - POLL));
    assert!(log_due(Some(&last), &waiting, t0 + LOG_EVERY));
    assert!(log_due(Some(&last), &Waiting::SecretRef, t0 + POLL));
    let down = (Waiting::Hosting("connection refused".into()), t0);
    assert!(
        !log_due(Some(&down), &Waiting::Hosting("reset".into()), t0 + POLL),
        "another error of a server that is down is the same wait"
    );
}

#[test]
fn a_missing_key_is_reported_with_its_secret_and_the_field_that_names_it() {
    let waiting = Waiting::Key {
        secret: "w1-system/w1-kubeconfig".into(),
        key: "wrong".into(),
        field: KeyField::Key,
        present: vec!["kubeconfig".into(), "kubeconfig-incluster".into()],
    };
    let text = waiting.into_error("w1", Duration::from_secs(3)).to_string();
    for part in [
        "Secret w1-system/w1-kubeconfig",
        "no key \"wrong\"",
        "status.secretRef.key of ControlPlane w1",
        "after 3s",
        "[\"kubeconfig\", \"kubeconfig-incluster\"]",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
    let text = Waiting::ControlPlane
        .into_error("i1", Duration::from_secs(300))
        .to_string();
    assert!(
        text.contains("ControlPlane i1 (controlplanes.tenancy.kflex.kubestellar.org) not found"),
        "{text}"
    );
}

#[test]
fn a_refusal_fails_at_once_and_a_server_that_does_not_answer_is_waited_for() {
    let api = |code: u16| {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "no".into(),
            ..Default::default()
        }))
    };
    let action = || "get ControlPlane w1".to_string();
    match refusal(api(403), action) {
        Err(e @ KubeflexError::Forbidden { .. }) => {
            assert!(e.to_string().contains(RBAC_FILE), "{e}")
        }
        _ => panic!("403 is a refusal"),
    }
    assert!(matches!(
        refusal(api(400), action),
        Err(KubeflexError::Refused { .. })
    ));
    for code in [500, 503, 429, 408] {
        assert!(
            matches!(
                refusal(api(code), action),
                Ok(Probe::Waiting(Waiting::Hosting(_)))
            ),
            "{code} is waited for"
        );
    }
}

#[test]
fn the_control_plane_resource_is_kubeflexs() {
    let resource = control_planes();
    assert_eq!(
        resource.api_version,
        "tenancy.kflex.kubestellar.org/v1alpha1"
    );
    assert_eq!(resource.plural, "controlplanes");
    assert_eq!(resource.kind, "ControlPlane");
}
