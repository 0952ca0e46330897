//! The computation of one StatusCollector over the rows of one object (one
//! row per WEC that returned a status), as KubeStellar's API text says:
//! a null or failing filter excludes the row (the failure recorded in
//! `rowErrors`), `limit` is enforced, rows with errors are left out of
//! aggregation, and zero rows still make one group when there is no `groupBy`
//! (whose AVG is NaN, with KubeStellar's "no values to average" error).
//! Pure: no Kubernetes, any [`Engine`].

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::engine::Engine;
use super::value;
use super::{Aggregation, Collector, Shape};
use crate::kubestellar::{
    ColumnValue, Destination, ErrorInColumn, NamedStatusCombination, RowEvaluationError,
    StatusCombinationRow,
};

/// The most errors recorded per result (each erring column keeps at least one).
pub const MAX_ERRORS: usize = 32;

/// Evaluates a collector over `rows` (WEC name and bound row, in WEC order).
pub fn evaluate<E: Engine>(
    engine: &E,
    collector: &Collector<E::Program>,
    rows: &[(String, E::Row)],
) -> NamedStatusCombination {
    let mut errors = Errors::default();
    let kept: Vec<&(String, E::Row)> = rows
        .iter()
        .filter(|(wec, row)| passes(engine, collector, wec, row, &mut errors))
        .collect();
    let mut aggregation_errors = Vec::new();
    let mut out_rows: Vec<StatusCombinationRow> = match &collector.shape {
        Shape::Select(columns) => kept
            .iter()
            .map(|(wec, row)| StatusCombinationRow {
                columns: columns
                    .iter()
                    .map(|(name, program)| match engine.evaluate(program, row) {
                        Ok(json) => value::encode(&json),
                        Err(e) => {
                            errors.row(wec, name, e);
                            value::encode(&Json::Null)
                        }
                    })
                    .collect(),
            })
            .collect(),
        Shape::Aggregate { group_by, combined } => {
            let mut groups: BTreeMap<String, Group> = BTreeMap::new();
            if group_by.is_empty() {
                // One group even over zero rows; its id is that of the empty key.
                groups.insert("[]".into(), Group::new(Vec::new(), combined.len()));
            }
            'rows: for (wec, row) in &kept {
                let mut key = Vec::with_capacity(group_by.len());
                for (name, program) in group_by {
                    match engine.evaluate(program, row) {
                        Ok(v @ (Json::Array(_) | Json::Object(_))) => {
                            errors.row(wec, name, format!("groupBy gave {v}, not an atomic value"));
                            continue 'rows;
                        }
                        Ok(v) => key.push(v),
                        Err(e) => {
                            errors.row(wec, name, e);
                            continue 'rows;
                        }
                    }
                }
                let mut subjects = Vec::with_capacity(combined.len());
                for field in combined {
                    let Some(program) = &field.subject else {
                        subjects.push(None);
                        continue;
                    };
                    match engine.evaluate(program, row) {
                        Ok(v) => subjects.push(Some((field.name.as_str(), v))),
                        Err(e) => {
                            errors.row(wec, &field.name, e);
                            continue 'rows;
                        }
                    }
                }
                let id = serde_json::to_string(&key).expect("JSON values serialize");
                let group = groups
                    .entry(id)
                    .or_insert_with(|| Group::new(key, combined.len()));
                group.count += 1;
                for (values, subject) in group.values.iter_mut().zip(subjects) {
                    if let Some((column, v)) = subject {
                        values.push(number(column, &v, &mut aggregation_errors));
                    }
                }
            }
            groups
                .into_values()
                .map(|group| {
                    let mut columns: Vec<ColumnValue> =
                        group.key.iter().map(value::encode).collect();
                    for (field, values) in combined.iter().zip(&group.values) {
                        if field.aggregation == Aggregation::Avg && group.count == 0 {
                            // KubeStellar's words, so that its readers see the same error.
                            aggregation_errors.push(ErrorInColumn {
                                column_name: field.name.clone(),
                                error: "no values to average".into(),
                            });
                        }
                        columns.push(value::float(aggregate(
                            field.aggregation,
                            group.count,
                            values,
                        )));
                    }
                    StatusCombinationRow { columns }
                })
                .collect()
        }
    };
    out_rows.truncate(collector.limit);
    NamedStatusCombination {
        name: collector.name.clone(),
        column_names: collector.column_names(),
        rows: out_rows,
        row_errors: errors.finish(),
        aggregation_errors: first_per_column(aggregation_errors),
    }
}

/// Whether a row passes the filter: true passes, false and null do not, and
/// anything else is an error that excludes it.
fn passes<E: Engine>(
    engine: &E,
    collector: &Collector<E::Program>,
    wec: &str,
    row: &E::Row,
    errors: &mut Errors,
) -> bool {
    let Some(filter) = &collector.filter else {
        return true;
    };
    match engine.evaluate(filter, row) {
        Ok(Json::Bool(b)) => b,
        Ok(Json::Null) => false,
        Ok(other) => {
            errors.row(wec, "", format!("the filter gave {other}, not a boolean"));
            false
        }
        Err(e) => {
            errors.row(wec, "", e);
            false
        }
    }
}

struct Group {
    key: Vec<Json>,
    count: usize,
    /// Per combined field, the subjects of its rows.
    values: Vec<Vec<f64>>,
}

impl Group {
    fn new(key: Vec<Json>, fields: usize) -> Self {
        Self {
            key,
            count: 0,
            values: vec![Vec::new(); fields],
        }
    }
}

/// A subject as a number: a number, or a string that parses as one; anything
/// else counts as 0 and is reported.
fn number(column: &str, v: &Json, errors: &mut Vec<ErrorInColumn>) -> f64 {
    let parsed = match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s
            .parse::<i64>()
            .map(|i| i as f64)
            .ok()
            .or_else(|| s.parse::<f64>().ok()),
        _ => None,
    };
    parsed.unwrap_or_else(|| {
        errors.push(ErrorInColumn {
            column_name: column.to_string(),
            error: format!("{v} is not a number; 0 used"),
        });
        0.0
    })
}

/// The aggregate of no values is the identity of the operation (AVG: NaN).
fn aggregate(aggregation: Aggregation, count: usize, values: &[f64]) -> f64 {
    match aggregation {
        Aggregation::Count => count as f64,
        // Not `sum()`: Rust's float sum of nothing is -0.
        Aggregation::Sum => values.iter().fold(0.0, |a, b| a + b),
        Aggregation::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::Avg => values.iter().fold(0.0, |a, b| a + b) / values.len() as f64,
    }
}

#[derive(Default)]
struct Errors(Vec<RowEvaluationError>);

impl Errors {
    fn row(&mut self, wec: &str, column: &str, error: String) {
        self.0.push(RowEvaluationError {
            column_name: column.to_string(),
            error,
            wec: Destination {
                cluster_id: wec.to_string(),
            },
        });
    }

    /// At most [`MAX_ERRORS`], the first of every column kept.
    fn finish(self) -> Vec<RowEvaluationError> {
        if self.0.len() <= MAX_ERRORS {
            return self.0;
        }
        let mut columns = BTreeSet::new();
        let (firsts, rest): (Vec<_>, Vec<_>) = self
            .0
            .into_iter()
            .partition(|e| columns.insert(e.column_name.clone()));
        let room = MAX_ERRORS.saturating_sub(firsts.len());
        firsts
            .into_iter()
            .chain(rest.into_iter().take(room))
            .collect()
    }
}

fn first_per_column(errors: Vec<ErrorInColumn>) -> Vec<ErrorInColumn> {
    let mut columns = BTreeSet::new();
    errors
        .into_iter()
        .filter(|e| columns.insert(e.column_name.clone()))
        .collect()
}

/// Whether two lists of results say the same, rows and errors in any order.
pub fn same_results(a: &[NamedStatusCombination], b: &[NamedStatusCombination]) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(results: &[NamedStatusCombination]) -> Vec<Json> {
    let sorted = |v: Json| {
        let mut items: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(Json::to_string).collect())
            .unwrap_or_default();
        items.sort();
        items
    };
    let mut out: Vec<Json> = results
        .iter()
        .map(|r| {
            let json = serde_json::to_value(r).expect("results serialize");
            serde_json::json!({
                "name": r.name,
                "columnNames": r.column_names,
                "rows": sorted(json["rows"].clone()),
                "rowErrors": sorted(json["rowErrors"].clone()),
                "aggregationErrors": sorted(json["aggregationErrors"].clone()),
            })
        })
        .collect();
    out.sort_by_key(|r| r["name"].as_str().unwrap_or_default().to_string());
    out
}
