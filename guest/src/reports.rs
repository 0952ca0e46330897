//! The statuses an `aggregate` call receives, parsed and put in one canonical
//! order.
//!
//! Every aggregation rule, generic or kind-aware, starts here, so none of
//! them can depend on the order in which the host lists the reports: they are
//! sorted by WEC and then by the report's own JSON text (two WorkStatuses of
//! one object in one WEC, from two Bindings, are both reported). Reports with
//! equal keys are identical, so the order among them cannot matter either.

use serde_json::{Map, Value};

/// One WEC's reported status.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported<'a> {
    /// The WEC's name.
    pub wec: &'a str,
    /// The object's status in that WEC.
    pub status: Map<String, Value>,
}

/// Parses (WEC, status JSON) pairs, sorted as the module says.
///
/// Fails, naming the WEC, when a report is not valid JSON or not a JSON object.
pub fn parse<'a>(
    reported: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Vec<Reported<'a>>, String> {
    let mut raw: Vec<(&str, &str)> = reported.into_iter().collect();
    raw.sort_unstable();
    raw.into_iter()
        .map(|(wec, text)| match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(status)) => Ok(Reported { wec, status }),
            Ok(other) => Err(format!(
                "status reported by WEC {wec:?} is not a JSON object but {}",
                kind_of(&other)
            )),
            Err(e) => Err(format!(
                "status reported by WEC {wec:?} is not valid JSON: {e}"
            )),
        })
        .collect()
}

/// What a JSON value is, for error messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_come_out_sorted_by_wec_then_text() {
        let out = parse([
            ("wec2", r#"{"a":2}"#),
            ("wec1", r#"{"b":1}"#),
            ("wec1", r#"{"a":1}"#),
        ])
        .unwrap();
        let order: Vec<(&str, String)> = out
            .iter()
            .map(|r| (r.wec, Value::Object(r.status.clone()).to_string()))
            .collect();
        assert_eq!(
            order,
            [
                ("wec1", r#"{"a":1}"#.to_string()),
                ("wec1", r#"{"b":1}"#.to_string()),
                ("wec2", r#"{"a":2}"#.to_string()),
            ]
        );
    }

    #[test]
    fn a_bad_report_is_an_error_naming_the_wec() {
        let err = parse([("a", "{}"), ("edge", "[1]")]).unwrap_err();
        assert!(err.contains("\"edge\"") && err.contains("a list"), "{err}");
        let err = parse([("edge", "{nope")]).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
