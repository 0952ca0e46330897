//! `status-router collector test`: a StatusCollector evaluated offline over
//! given WEC statuses, as the controller would evaluate it, with optional
//! expectations. The case file (a public interface, documented in docs/combined-status.md):
//!
//! ```yaml
//! object: {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: 1}}
//! cases:
//!   - name: both WECs ready
//!     object: {...}                # optional; the top-level `object` otherwise
//!     wecs:
//!       - {name: cluster1, status: {availableReplicas: 1}, lastReturnedUpdateTimestamp: "..."}
//!     expect:                      # optional: the result, rows in any order
//!       columnNames: [sum]
//!       rows: [{columns: [{type: Number, float: "1"}]}]
//! ```
//!
//! Parsing is strict (unknown keys are errors), so a typo cannot pass silently.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::collector::engine::{CelEngine, CelProgram, Engine, Returned};
use crate::collector::{self, Collector, compute};
use crate::kubestellar::{NamedStatusCombination, StatusCollector};

/// Why a collector test could not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectorTestError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Malformed { path: String, message: String },
    #[error("StatusCollector {name} is invalid:\n  {}", errors.join("\n  "))]
    Invalid { name: String, errors: Vec<String> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    object: Option<Value>,
    cases: Vec<CaseDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseDoc {
    name: String,
    #[serde(default)]
    object: Option<Value>,
    #[serde(default)]
    wecs: Vec<WecDoc>,
    #[serde(default)]
    expect: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WecDoc {
    name: String,
    status: Value,
    #[serde(default)]
    last_returned_update_timestamp: Option<String>,
}

/// The result of one case.
#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    pub result: NamedStatusCombination,
    /// `None` without an expectation; otherwise whether the result matches it.
    pub passed: Option<bool>,
    /// The expectation, when given and not met.
    pub expected: Option<NamedStatusCombination>,
}

fn read(path: &Path) -> Result<String, CollectorTestError> {
    std::fs::read_to_string(path).map_err(|source| CollectorTestError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn malformed(path: &Path, message: impl std::fmt::Display) -> CollectorTestError {
    CollectorTestError::Malformed {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads and compiles a StatusCollector from a YAML file.
pub fn load_collector(path: &Path) -> Result<Collector<CelProgram>, CollectorTestError> {
    let sc: StatusCollector = serde_yaml::from_str(&read(path)?)
        .map_err(|e| malformed(path, format!("not a StatusCollector: {e}")))?;
    let name = sc.metadata.name.clone().unwrap_or_default();
    let generation = sc.metadata.generation.unwrap_or_default();
    collector::compile(&CelEngine::default(), &name, generation, &sc.spec)
        .map_err(|errors| CollectorTestError::Invalid { name, errors })
}

/// Runs every case of a case file against a collector.
pub fn run_cases(
    collector: &Collector<CelProgram>,
    cases: &Path,
) -> Result<Vec<CaseResult>, CollectorTestError> {
    let file: CaseFile = serde_yaml::from_str(&read(cases)?).map_err(|e| malformed(cases, e))?;
    if file.cases.is_empty() {
        return Err(malformed(cases, "`cases` is empty"));
    }
    let engine = CelEngine::default();
    file.cases
        .iter()
        .map(|case| {
            let obj = case
                .object
                .as_ref()
                .or(file.object.as_ref())
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            let object = engine.object(&obj);
            let mut wecs: Vec<&WecDoc> = case.wecs.iter().collect();
            wecs.sort_by(|a, b| a.name.cmp(&b.name));
            let rows: Vec<_> = wecs
                .iter()
                .map(|w| {
                    let returned = Returned {
                        wec: &w.name,
                        status: &w.status,
                        updated: w.last_returned_update_timestamp.as_deref(),
                    };
                    (w.name.clone(), engine.row(&object, &returned))
                })
                .collect();
            let result = compute::evaluate(&engine, collector, &rows);
            let expected = match &case.expect {
                None => None,
                Some(expect) => {
                    let mut expect = expect.clone();
                    if let Some(map) = expect.as_object_mut() {
                        map.entry("name")
                            .or_insert_with(|| Value::from(collector.name.clone()));
                    }
                    let expected: NamedStatusCombination =
                        serde_json::from_value(expect).map_err(|e| {
                            malformed(cases, format!("case {:?}: expect: {e}", case.name))
                        })?;
                    Some(expected)
                }
            };
            let passed = expected.as_ref().map(|e| {
                compute::same_results(std::slice::from_ref(e), std::slice::from_ref(&result))
            });
            Ok(CaseResult {
                name: case.name.clone(),
                result,
                passed,
                expected: expected.filter(|_| passed == Some(false)),
            })
        })
        .collect()
}
