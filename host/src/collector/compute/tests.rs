//! Upstream's end-to-end expectations and the API text, without Kubernetes.

use serde_json::{Value as Json, json};

use super::evaluate;
use crate::collector::compile;
use crate::collector::engine::{CelEngine, Engine, Returned};

/// Evaluates a collector (YAML spec) for a Deployment with 1 replica over
/// `wecs` (name, status), and returns the result as JSON.
fn run(spec: &str, wecs: &[(&str, Json)]) -> Json {
    let engine = CelEngine::default();
    let spec = serde_yaml::from_str(spec).unwrap();
    let collector = compile(&engine, "c", 1, &spec)
        .map_err(|e| e.join("; "))
        .unwrap();
    let object = engine.object(&json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}}));
    let rows: Vec<(String, _)> = wecs
        .iter()
        .map(|(wec, status)| {
            let returned = Returned {
                wec,
                status,
                updated: None,
            };
            (wec.to_string(), engine.row(&object, &returned))
        })
        .collect();
    serde_json::to_value(evaluate(&engine, &collector, &rows)).unwrap()
}

fn two_wecs() -> Vec<(&'static str, Json)> {
    vec![
        ("cluster1", json!({"availableReplicas": 1, "replicas": 1})),
        ("cluster2", json!({"availableReplicas": 1, "replicas": 1})),
    ]
}

fn floats(result: &Json) -> Vec<String> {
    result["rows"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["float"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn full_status_per_wec() {
    let got = run(
        "{select: [{name: wecName, def: inventory.name}, {name: status, def: returned.status}], limit: 20}",
        &two_wecs(),
    );
    assert_eq!(got["columnNames"], json!(["wecName", "status"]));
    assert_eq!(
        got["rows"],
        json!([
            {"columns": [{"type": "String", "string": "cluster1"},
                         {"type": "Object", "object": {"availableReplicas": 1, "replicas": 1}}]},
            {"columns": [{"type": "String", "string": "cluster2"},
                         {"type": "Object", "object": {"availableReplicas": 1, "replicas": 1}}]},
        ])
    );
}

#[test]
fn sum_of_available_replicas() {
    let got = run(
        "{combinedFields: [{name: sum, type: SUM, subject: returned.status.availableReplicas}], limit: 20}",
        &two_wecs(),
    );
    assert_eq!(
        got["rows"],
        json!([{"columns": [{"type": "Number", "float": "2"}]}])
    );
}

#[test]
fn the_filtered_wec_list() {
    let mut wecs = two_wecs();
    wecs.push(("cluster3", json!({"availableReplicas": 0})));
    let got = run(
        "{filter: 'obj.spec.replicas == returned.status.availableReplicas', select: [{name: wec, def: inventory.name}], limit: 20}",
        &wecs,
    );
    let names: Vec<&str> = got["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["columns"][0]["string"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cluster1", "cluster2"]);
    assert!(got.get("rowErrors").is_none(), "{got}");
}

#[test]
fn aggregation_over_zero_wecs_gives_the_identities() {
    let spec = "{filter: 'false', combinedFields: [{name: count, type: COUNT}, {name: max, type: MAX, subject: '2'}, {name: min, type: MIN, subject: '2'}, {name: sum, type: SUM, subject: '2'}, {name: avg, type: AVG, subject: '2'}], limit: 20}";
    assert_eq!(
        floats(&run(spec, &two_wecs())),
        ["0", "-Inf", "+Inf", "0", "NaN"]
    );
    assert_eq!(floats(&run(spec, &[])), ["0", "-Inf", "+Inf", "0", "NaN"]);
    // KubeStellar's words for the NaN, and only for it.
    assert_eq!(
        run(spec, &[])["aggregationErrors"],
        serde_json::json!([{"columnName": "avg", "error": "no values to average"}])
    );
    let all = spec.replace("'false'", "'true'");
    let got = run(&all, &two_wecs());
    assert_eq!(floats(&got), ["2", "2", "2", "4", "2"]);
    assert!(got.get("aggregationErrors").is_none(), "{got}");
}

#[test]
fn limit_is_enforced() {
    let got = run(
        "{select: [{name: wec, def: inventory.name}], limit: 1}",
        &two_wecs(),
    );
    assert_eq!(got["rows"].as_array().unwrap().len(), 1);
}

#[test]
fn a_null_filter_excludes_the_row_and_a_failing_one_records_the_error() {
    let wecs = vec![
        ("cluster1", json!({"ready": null})),
        ("cluster2", json!({"ready": true})),
        ("cluster3", json!({})),
    ];
    let got = run(
        "{filter: returned.status.ready, select: [{name: wec, def: inventory.name}], limit: 20}",
        &wecs,
    );
    assert_eq!(
        got["rows"],
        json!([{"columns": [{"type": "String", "string": "cluster2"}]}])
    );
    let errors = got["rowErrors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{got}");
    assert_eq!(errors[0]["wec"]["clusterId"], "cluster3");
    assert_eq!(errors[0]["columnName"], "");
}

#[test]
fn group_by_makes_one_row_per_group_and_skips_rows_with_errors() {
    let wecs = vec![
        ("a", json!({"zone": "east", "n": 1})),
        ("b", json!({"zone": "east", "n": "2"})),
        ("c", json!({"zone": "west", "n": 5})),
        ("d", json!({"zone": "west"})),
        ("e", json!({"zone": "west", "n": "many"})),
    ];
    let got = run(
        "{groupBy: [{name: zone, def: returned.status.zone}], combinedFields: [{name: count, type: COUNT}, {name: total, type: SUM, subject: returned.status.n}], limit: 20}",
        &wecs,
    );
    assert_eq!(
        got["rows"],
        json!([
            {"columns": [{"type": "String", "string": "east"}, {"type": "Number", "float": "2"}, {"type": "Number", "float": "3"}]},
            {"columns": [{"type": "String", "string": "west"}, {"type": "Number", "float": "2"}, {"type": "Number", "float": "5"}]},
        ])
    );
    assert_eq!(got["rowErrors"][0]["wec"]["clusterId"], "d");
    assert_eq!(got["aggregationErrors"][0]["columnName"], "total");
}

#[test]
fn a_hostile_expression_becomes_a_row_error() {
    let ten = "[0,1,2,3,4,5,6,7,8,9]";
    let mut hostile = "returned.status".to_string();
    for var in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        hostile = format!("{ten}.map({var}, {hostile})");
    }
    let spec = format!(
        "{{select: [{{name: wec, def: inventory.name}}, {{name: boom, def: '{hostile}'}}], limit: 20}}"
    );
    let got = run(&spec, &two_wecs());
    assert_eq!(got["rows"].as_array().unwrap().len(), 2);
    assert_eq!(got["rows"][0]["columns"][1], json!({"type": "Null"}));
    let error = got["rowErrors"][0]["error"].as_str().unwrap();
    assert!(error.contains("exceeds the limit"), "{error}");
}
