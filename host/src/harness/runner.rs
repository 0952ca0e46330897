//! Running cases against a policy, and the author-facing [`PolicyUnderTest`].

use std::path::Path;

use serde_json::Value;

use super::cases::{AggregateExpect, Case, Check, read_case_file};
use crate::policy::{
    AggregateDoc, DecisionDoc, ObjectDoc, PolicyEngine, PolicyError, PolicyInstance, RequestDoc,
};

/// The result of one case.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    /// Expected and actual, each as pretty JSON, for a diff.
    Fail {
        expected: String,
        actual: String,
    },
}

impl Outcome {
    /// A unified diff of expected (`-`) against actual (`+`); empty for a pass.
    pub fn diff(&self) -> String {
        match self {
            Outcome::Pass => String::new(),
            Outcome::Fail { expected, actual } => similar::TextDiff::from_lines(expected, actual)
                .unified_diff()
                .header("expected", "actual")
                .to_string(),
        }
    }
}

/// Runs one case. A call failure (trap, deadline, memory) is a failed case.
pub fn run_case(instance: &mut PolicyInstance, case: &Case) -> Outcome {
    let (expected, actual) = match &case.check {
        Check::Decide { request, expect } => {
            let actual = instance.decide(&request.into()).map(DecisionDoc::from);
            if matches!(&actual, Ok(d) if d == expect) {
                return Outcome::Pass;
            }
            (
                pretty(expect),
                show(actual.map(|mut d| {
                    d.wecs.sort();
                    d
                })),
            )
        }
        Check::Aggregate { input, expect } => {
            let actual = aggregate(instance, input);
            let pass = match (expect, &actual) {
                (AggregateExpect::Status(want), Ok(Ok(got))) => want == got,
                (AggregateExpect::Error(want), Ok(Err(got))) => got.contains(want.as_str()),
                _ => false,
            };
            if pass {
                return Outcome::Pass;
            }
            let expected = match expect {
                AggregateExpect::Status(s) => pretty(&serde_json::json!({ "status": s })),
                AggregateExpect::Error(e) => pretty(&serde_json::json!({ "error (substring)": e })),
            };
            let actual = match actual {
                Ok(Ok(status)) => pretty(&serde_json::json!({ "status": status })),
                Ok(Err(refusal)) => pretty(&serde_json::json!({ "error": refusal })),
                Err(e) => format!("call failed: {e}\n"),
            };
            (expected, actual)
        }
    };
    Outcome::Fail { expected, actual }
}

fn aggregate(
    instance: &mut PolicyInstance,
    input: &AggregateDoc,
) -> Result<Result<Value, String>, PolicyError> {
    instance.aggregate(&(&input.object).into(), &input.reported_statuses())
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn show(r: Result<DecisionDoc, PolicyError>) -> String {
    match r {
        Ok(d) => pretty(&d),
        Err(e) => format!("call failed: {e}\n"),
    }
}

/// A policy component loaded for tests. Methods panic with a clear message
/// on any failure, as test helpers should.
pub struct PolicyUnderTest {
    instance: PolicyInstance,
}

impl PolicyUnderTest {
    /// Loads a built component, with the default sandbox limits.
    pub fn load(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let engine = PolicyEngine::new().expect("create the policy engine");
        let policy = engine.load_file(path).unwrap_or_else(|e| {
            panic!(
                "cannot load policy {}: {e}\n(build the policies with `cargo xtask build-policies`)",
                path.display()
            )
        });
        Self {
            instance: PolicyInstance::new(policy),
        }
    }

    /// Wraps an instance loaded some other way (with other limits, or
    /// through a compiled cache).
    pub fn from_instance(instance: PolicyInstance) -> Self {
        Self { instance }
    }

    /// Asks the policy for a decision; panics if the call fails.
    pub fn decide(&mut self, req: &RequestDoc) -> DecisionDoc {
        self.try_decide(req)
            .unwrap_or_else(|e| panic!("decide failed for {req:?}: {e}"))
    }

    /// Asks the policy for a decision.
    pub fn try_decide(&mut self, req: &RequestDoc) -> Result<DecisionDoc, PolicyError> {
        self.instance.decide(&req.into()).map(Into::into)
    }

    /// Asks the policy to aggregate; panics if the call itself fails.
    pub fn aggregate(&mut self, input: &AggregateDoc) -> Result<Value, String> {
        aggregate(&mut self.instance, input)
            .unwrap_or_else(|e| panic!("aggregate failed for {input:?}: {e}"))
    }

    /// Runs a case file; panics listing every failed case with its diff.
    pub fn assert_case_file(&mut self, path: impl AsRef<Path>) {
        let cases = read_case_file(path).unwrap_or_else(|e| panic!("{e}"));
        self.assert_cases(cases);
    }

    /// Runs only the `decide` cases of a case file (`policy test
    /// --routing-only`): for a policy that routes as KubeStellar but aggregates
    /// its own way. Panics when the file has no such case.
    pub fn assert_routing_cases(&mut self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let cases: Vec<Case> = read_case_file(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|c| matches!(c.check, Check::Decide { .. }))
            .collect();
        assert!(!cases.is_empty(), "{} has no decide case", path.display());
        self.assert_cases(cases);
    }

    fn assert_cases(&mut self, cases: Vec<Case>) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|case| match run_case(&mut self.instance, case) {
                Outcome::Pass => None,
                failed => Some(format!("case {:?} failed:\n{}", case.name, failed.diff())),
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

impl RequestDoc {
    /// A request for `object` with no flag set; add flags with the builders.
    pub fn new(object: ObjectDoc) -> Self {
        Self {
            object,
            want_singleton: false,
            want_multi_wec: false,
            singleton_wecs: Vec::new(),
            multi_wecs: Vec::new(),
        }
    }

    /// Sets `wantSingletonReportedState` with the given qualified WECs.
    pub fn singleton<S: Into<String>>(mut self, wecs: impl IntoIterator<Item = S>) -> Self {
        self.want_singleton = true;
        self.singleton_wecs = wecs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `wantMultiWECReportedState` with the given qualified WECs.
    pub fn multi_wec<S: Into<String>>(mut self, wecs: impl IntoIterator<Item = S>) -> Self {
        self.want_multi_wec = true;
        self.multi_wecs = wecs.into_iter().map(Into::into).collect();
        self
    }
}

impl ObjectDoc {
    /// An `apps/v1` Deployment.
    pub fn deployment(namespace: &str, name: &str) -> Self {
        Self {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            ..Self::default()
        }
    }
}
