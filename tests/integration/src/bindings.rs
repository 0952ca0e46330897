//! Bindings made the way KubeStellar's binding controller makes them: clauses
//! with their reported-state flags, destinations, and writing them.

use kube::Client;
use kube::api::{Api, PostParams};
use status_router::kubestellar::{
    Binding, BindingSpec, ClusterScopeDownsyncClause, Destination, DownsyncModulation,
    NamespaceScopeDownsyncClause, ObjectReference, WorkloadClauses,
};

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
pub const MULTI_WEC: Flags = Flags {
    singleton: false,
    multi_wec: true,
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
