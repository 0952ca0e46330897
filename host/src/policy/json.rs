//! The JSON and YAML forms of requests, decisions and aggregations, shared by
//! the `status-router policy` CLI and the case files of the test harness.
//!
//! These documents are a public interface (documented in docs/policies.md); the
//! engine itself calls policies with the `bindgen!` types, converted here.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Decision, ReportedStatus, Request, WorkloadRef};

/// Parses a document written as JSON or as YAML.
///
/// JSON goes to the JSON parser first: YAML is not quite a superset of JSON.
/// A JSON string may hold U+2028 or U+2029 unescaped, which a YAML parser
/// reads as line breaks (found by the property tests in `harness::cases`).
/// Anything else, or JSON that does not fit `T`, goes to the YAML parser,
/// whose error is the one reported.
pub fn from_json_or_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_yaml::Error> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(_) => serde_yaml::from_str(text),
    }
}

/// A workload object, as in `request.object` and `aggregate.object`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectDoc {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The input of `decide`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDoc {
    pub object: ObjectDoc,
    #[serde(default, rename = "wantSingletonReportedState")]
    pub want_singleton: bool,
    #[serde(default, rename = "wantMultiWECReportedState")]
    pub want_multi_wec: bool,
    #[serde(default, rename = "singletonWECs")]
    pub singleton_wecs: Vec<String>,
    #[serde(default, rename = "multiWECs")]
    pub multi_wecs: Vec<String>,
}

/// The handler a decision names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Handler {
    #[serde(rename = "singleton")]
    Singleton,
    #[serde(rename = "multiWEC")]
    MultiWec,
    #[serde(rename = "none")]
    None,
}

/// The output of `decide`: `{"handler": "singleton", "wecs": ["wec1"]}`.
#[derive(Clone, Debug, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionDoc {
    pub handler: Handler,
    #[serde(default)]
    pub wecs: Vec<String>,
}

/// Decisions are equal when their handlers are and their WECs are the same set.
impl PartialEq for DecisionDoc {
    fn eq(&self, other: &Self) -> bool {
        let set = |w: &[String]| w.iter().cloned().collect::<BTreeSet<_>>();
        self.handler == other.handler && set(&self.wecs) == set(&other.wecs)
    }
}

/// The input of `aggregate`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateDoc {
    pub object: ObjectDoc,
    pub reported: Vec<ReportedDoc>,
}

/// One WEC's reported status, as a JSON value (not a string) for readability.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedDoc {
    pub wec: String,
    pub status: serde_json::Value,
}

impl From<&ObjectDoc> for WorkloadRef {
    fn from(o: &ObjectDoc) -> Self {
        WorkloadRef {
            group: o.group.clone(),
            version: o.version.clone(),
            resource: o.resource.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            labels: o.labels.clone().into_iter().collect(),
            annotations: o.annotations.clone().into_iter().collect(),
        }
    }
}

impl From<&RequestDoc> for Request {
    /// Converts as a caller may write it: the WEC lists are passed on as they
    /// are, duplicates included, since policies must treat them as sets.
    fn from(r: &RequestDoc) -> Self {
        Request {
            object: (&r.object).into(),
            want_singleton_reported_state: r.want_singleton,
            want_multi_wec_reported_state: r.want_multi_wec,
            singleton_wecs: r.singleton_wecs.clone(),
            multi_wec_wecs: r.multi_wecs.clone(),
        }
    }
}

impl From<Decision> for DecisionDoc {
    fn from(d: Decision) -> Self {
        let (handler, wecs) = match d {
            Decision::Singleton(wecs) => (Handler::Singleton, wecs),
            Decision::MultiWec(wecs) => (Handler::MultiWec, wecs),
            Decision::None => (Handler::None, Vec::new()),
        };
        DecisionDoc { handler, wecs }
    }
}

impl AggregateDoc {
    /// The reports as the policy receives them: statuses as JSON text.
    pub fn reported_statuses(&self) -> Vec<ReportedStatus> {
        self.reported
            .iter()
            .map(|r| ReportedStatus {
                wec: r.wec.clone(),
                status: r.status.to_string(),
            })
            .collect()
    }
}

impl DecisionDoc {
    /// `singleton` over the given WECs.
    pub fn singleton<S: Into<String>>(wecs: impl IntoIterator<Item = S>) -> Self {
        Self::new(Handler::Singleton, wecs)
    }

    /// `multiWEC` over the given WECs.
    pub fn multi_wec<S: Into<String>>(wecs: impl IntoIterator<Item = S>) -> Self {
        Self::new(Handler::MultiWec, wecs)
    }

    /// `none`.
    pub fn none() -> Self {
        Self::new(Handler::None, Vec::<String>::new())
    }

    fn new<S: Into<String>>(handler: Handler, wecs: impl IntoIterator<Item = S>) -> Self {
        Self {
            handler,
            wecs: wecs.into_iter().map(Into::into).collect(),
        }
    }
}
