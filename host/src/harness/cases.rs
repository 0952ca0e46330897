//! The case file format of `status-router policy test` (a public interface,
//! documented in docs/policies.md):
//!
//! ```yaml
//! cases:
//!   - name: both flags, one WEC
//!     request: {object: {...}, wantSingletonReportedState: true, singletonWECs: [wec1]}
//!     expect: {handler: singleton, wecs: [wec1]}
//!   - name: two WECs report a Deployment
//!     aggregate: {object: {...}, reported: [{wec: wec1, status: {...}}]}
//!     expect: {status: {readyReplicas: 1}}     # or {error: "substring"}
//! ```
//!
//! Parsing is strict, since a typo in a test file must not pass silently:
//! every error names the case and the key.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use crate::policy::{AggregateDoc, DecisionDoc, RequestDoc};

/// A malformed case file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CaseFileError {
    pub path: String,
    pub message: String,
}

/// One table-driven case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub name: String,
    pub check: Check,
}

/// What a case calls, and what it expects.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    Decide {
        request: RequestDoc,
        expect: DecisionDoc,
    },
    Aggregate {
        input: AggregateDoc,
        expect: AggregateExpect,
    },
}

/// The expected outcome of an aggregation.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregateExpect {
    /// The status, compared as a JSON value.
    Status(serde_json::Value),
    /// The policy refuses, with an error containing this text.
    Error(String),
}

/// Reads and parses a case file.
pub fn read_case_file(path: impl AsRef<Path>) -> Result<Vec<Case>, CaseFileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| CaseFileError {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse_cases(&text).map_err(|message| CaseFileError {
        path: path.display().to_string(),
        message,
    })
}

/// Parses the text of a case file.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let doc: Value =
        crate::policy::from_json_or_yaml(text).map_err(|e| format!("not YAML: {e}"))?;
    let Some(Value::Sequence(cases)) = doc.get("cases") else {
        return Err("the top level must be a mapping with a `cases` list".into());
    };
    if let Some(other) = doc
        .as_mapping()
        .and_then(|m| m.keys().find(|k| k.as_str() != Some("cases")))
    {
        return Err(format!("unknown top-level key {}", show(other)));
    }
    if cases.is_empty() {
        return Err("`cases` is empty".into());
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| parse_case(case).map_err(|e| format!("case {}: {e}", i + 1)))
        .collect()
}

fn parse_case(case: &Value) -> Result<Case, String> {
    let map = case.as_mapping().ok_or("not a mapping")?;
    let name = match map.get("name") {
        Some(Value::String(name)) => name.clone(),
        Some(_) => return Err("`name` must be a string".into()),
        None => return Err("missing key `name`".into()),
    };
    let with_name = |e: String| format!("{name:?}: {e}");
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            Some("name" | "request" | "aggregate" | "expect")
        ) {
            return Err(with_name(format!(
                "unknown key {}; expected name, request or aggregate, expect",
                show(key)
            )));
        }
    }
    let expect = map
        .get("expect")
        .ok_or_else(|| with_name("missing key `expect`".into()))?;
    let check = match (map.get("request"), map.get("aggregate")) {
        (Some(request), None) => Check::Decide {
            request: field(request, "request").map_err(with_name)?,
            expect: field(expect, "expect").map_err(with_name)?,
        },
        (None, Some(aggregate)) => Check::Aggregate {
            input: field(aggregate, "aggregate").map_err(with_name)?,
            expect: aggregate_expect(expect).map_err(with_name)?,
        },
        (Some(_), Some(_)) => return Err(with_name("has both `request` and `aggregate`".into())),
        (None, None) => return Err(with_name("needs `request` or `aggregate`".into())),
    };
    Ok(Case { name, check })
}

fn aggregate_expect(expect: &Value) -> Result<AggregateExpect, String> {
    let map = expect.as_mapping().ok_or("`expect` must be a mapping")?;
    match (map.get("status"), map.get("error"), map.len()) {
        (Some(status), None, 1) => Ok(AggregateExpect::Status(field(status, "expect.status")?)),
        (None, Some(Value::String(error)), 1) => Ok(AggregateExpect::Error(error.clone())),
        _ => Err(format!(
            "`expect` of an aggregate case must have exactly one key, `status` or `error` (a string); it has {}",
            keys(map)
        )),
    }
}

fn field<T: DeserializeOwned>(value: &Value, key: &str) -> Result<T, String> {
    serde_yaml::from_value(value.clone()).map_err(|e| format!("`{key}`: {e}"))
}

fn show(key: &Value) -> String {
    serde_yaml::to_string(key).map_or_else(|_| "?".into(), |s| format!("`{}`", s.trim()))
}

fn keys(map: &Mapping) -> String {
    let keys: Vec<String> = map.keys().map(show).collect();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECT: &str = "{group: apps, version: v1, resource: deployments, kind: Deployment, namespace: default, name: web}";

    #[test]
    fn parses_both_kinds_of_case() {
        let text = format!(
            "cases:
  - name: one
    request: {{object: {OBJECT}, wantSingletonReportedState: true, singletonWECs: [wec1]}}
    expect: {{handler: singleton, wecs: [wec1]}}
  - name: two
    aggregate: {{object: {OBJECT}, reported: [{{wec: wec1, status: {{a: 1}}}}]}}
    expect: {{error: nope}}
"
        );
        let cases = parse_cases(&text).unwrap();
        assert_eq!(cases.len(), 2);
        assert!(
            matches!(&cases[0].check, Check::Decide { expect, .. } if *expect == DecisionDoc::singleton(["wec1"]))
        );
        assert_eq!(
            cases[1].check,
            Check::Aggregate {
                input: serde_yaml::from_str(&format!(
                    "{{object: {OBJECT}, reported: [{{wec: wec1, status: {{a: 1}}}}]}}"
                ))
                .unwrap(),
                expect: AggregateExpect::Error("nope".into())
            }
        );
    }

    #[test]
    fn errors_name_the_case_and_the_key() {
        let text = format!(
            "cases:
  - name: fine
    request: {{object: {OBJECT}}}
    expect: {{handler: none}}
  - name: typo
    request: {{object: {OBJECT}, wantSingleton: true}}
    expect: {{handler: none}}
"
        );
        let err = parse_cases(&text).unwrap_err();
        assert!(err.starts_with("case 2: \"typo\": `request`:"), "{err}");
        assert!(err.contains("wantSingleton"), "{err}");

        let bad_handler = format!(
            "cases: [{{name: h, request: {{object: {OBJECT}}}, expect: {{handler: single}}}}]"
        );
        let err = parse_cases(&bad_handler).unwrap_err();
        assert!(err.contains("`expect`") && err.contains("single"), "{err}");
    }

    #[test]
    fn rejects_malformed_structure() {
        for (text, wanted) in [
            ("cases: []", "`cases` is empty"),
            ("kases: []", "`cases` list"),
            ("cases: [{request: {}}]", "missing key `name`"),
            (
                "cases: [{name: x, expect: {}}]",
                "needs `request` or `aggregate`",
            ),
            (
                "cases: [{name: x, request: {}, expect: {}, extra: 1}]",
                "unknown key `extra`",
            ),
            (
                "cases: [{name: x, aggregate: {}, request: {}, expect: {}}]",
                "both",
            ),
            ("cases: [{name: x, request: {}}]", "missing key `expect`"),
        ] {
            let err = parse_cases(text).unwrap_err();
            assert!(err.contains(wanted), "{text}: {err}");
        }
    }
}

#[cfg(test)]
mod props;
