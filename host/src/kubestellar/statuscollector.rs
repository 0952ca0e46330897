//! The StatusCollector (WDS, cluster-scoped): CEL expressions that say how to
//! collect the status of a workload object over the WECs it goes to, modelled
//! on an SQL `SELECT` with `WHERE`, `GROUP BY` and aggregates. Binding entries
//! name collectors in `statusCollectors`; the results go to CombinedStatuses.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The number of rows when a collector does not say (`limit` in KubeStellar's API).
pub const DEFAULT_LIMIT: i64 = 20;

/// `spec` of a StatusCollector.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "control.kubestellar.io",
    version = "v1alpha1",
    kind = "StatusCollector",
    plural = "statuscollectors",
    shortname = "sc",
    status = "StatusCollectorStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct StatusCollectorSpec {
    /// Applied first; a boolean, null counting as false (the `WHERE` clause).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// How rows are grouped for aggregation; each evaluates to an atomic value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<NamedExpression>,
    /// The aggregations; empty when `select` is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub combined_fields: Vec<NamedAggregator>,
    /// Values taken from each row; empty when `combinedFields` is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<NamedExpression>,
    /// The most rows returned.
    #[serde(default = "default_limit")]
    pub limit: i64,
}

impl Default for StatusCollectorSpec {
    fn default() -> Self {
        Self {
            filter: None,
            group_by: Vec::new(),
            combined_fields: Vec::new(),
            select: Vec::new(),
            limit: DEFAULT_LIMIT,
        }
    }
}

fn default_limit() -> i64 {
    DEFAULT_LIMIT
}

/// A name and a CEL expression.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct NamedExpression {
    pub name: String,
    pub def: String,
}

/// A name, an aggregation, and (except for COUNT) the CEL expression it aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct NamedAggregator {
    pub name: String,
    /// `COUNT`, `SUM`, `MIN`, `MAX` or `AVG` (a string, as in KubeStellar's CRD:
    /// another value makes the collector invalid rather than unreadable).
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// `status` of a StatusCollector: what is wrong with it, for which generation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCollectorStatus {
    #[serde(default)]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_collector_as_kubestellar_documents_it() {
        let sc: StatusCollector = serde_yaml::from_str(
            r#"
apiVersion: control.kubestellar.io/v1alpha1
kind: StatusCollector
metadata: {name: sum-available}
spec:
  filter: "obj.spec.replicas == returned.status.availableReplicas"
  combinedFields:
  - {name: count, type: COUNT}
  - {name: sum, type: SUM, subject: returned.status.availableReplicas}
  limit: 10
"#,
        )
        .unwrap();
        assert_eq!(sc.spec.combined_fields[1].type_, "SUM");
        assert_eq!(sc.spec.combined_fields[0].subject, None);
        assert_eq!(sc.spec.limit, 10);
        let no_limit: StatusCollectorSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(no_limit.limit, DEFAULT_LIMIT);
    }
}
