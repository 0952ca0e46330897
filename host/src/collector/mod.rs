//! StatusCollectors as KubeStellar's API text defines them, without
//! Kubernetes: a collector is checked and compiled once per generation
//! ([`compile`]; an invalid one gives every reason, for its `status.errors`,
//! and counts as absent), its expressions are evaluated by an
//! [`engine::Engine`] (CEL, through the `cel` crate) under a [`cost`] limit,
//! [`compute`] makes one result from the rows of one object, and [`value`]
//! encodes column values as KubeStellar does. The controller's CombinedStatus
//! writer and the policy harness both build on it.

pub mod compute;
pub mod cost;
pub mod engine;
pub mod value;

use std::collections::BTreeSet;

use self::engine::Engine;
use crate::kubestellar::StatusCollectorSpec;

/// How a combined field aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

impl Aggregation {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "COUNT" => Self::Count,
            "SUM" => Self::Sum,
            "MIN" => Self::Min,
            "MAX" => Self::Max,
            "AVG" => Self::Avg,
            _ => return None,
        })
    }
}

/// A combined field: its column name, how it aggregates, and its subject.
pub struct Combined<P> {
    pub name: String,
    pub aggregation: Aggregation,
    /// `None` for COUNT.
    pub subject: Option<P>,
}

/// What a collector does with the rows.
pub enum Shape<P> {
    /// One row per WEC, with these columns.
    Select(Vec<(String, P)>),
    /// One row per group: the `groupBy` columns, then the combined fields.
    Aggregate {
        group_by: Vec<(String, P)>,
        combined: Vec<Combined<P>>,
    },
}

/// A valid collector, compiled.
pub struct Collector<P> {
    pub name: String,
    pub generation: i64,
    pub filter: Option<P>,
    pub shape: Shape<P>,
    pub limit: usize,
}

impl<P> Collector<P> {
    /// The column names of its result.
    pub fn column_names(&self) -> Vec<String> {
        match &self.shape {
            Shape::Select(columns) => columns.iter().map(|(n, _)| n.clone()).collect(),
            Shape::Aggregate { group_by, combined } => group_by
                .iter()
                .map(|(n, _)| n.clone())
                .chain(combined.iter().map(|c| c.name.clone()))
                .collect(),
        }
    }
}

/// Checks and compiles a collector's spec; on failure, every error found.
pub fn compile<E: Engine>(
    engine: &E,
    name: &str,
    generation: i64,
    spec: &StatusCollectorSpec,
) -> Result<Collector<E::Program>, Vec<String>> {
    let mut errors = Vec::new();
    let mut compile = |what: String, source: &str| match engine.compile(source) {
        Ok(program) => Some(program),
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            None
        }
    };
    let filter = spec
        .filter
        .as_deref()
        .map(|source| compile("filter".into(), source));
    let named = |list: &[crate::kubestellar::NamedExpression],
                 field: &str,
                 compile: &mut dyn FnMut(String, &str) -> Option<E::Program>| {
        list.iter()
            .map(|e| compile(format!("{field} {:?}", e.name), &e.def).map(|p| (e.name.clone(), p)))
            .collect::<Vec<_>>()
    };
    let select = named(&spec.select, "select", &mut compile);
    let group_by = named(&spec.group_by, "groupBy", &mut compile);
    let mut combined = Vec::new();
    let mut shape_errors = Vec::new();
    for field in &spec.combined_fields {
        let Some(aggregation) = Aggregation::parse(&field.type_) else {
            shape_errors.push(format!(
                "combinedFields {:?}: type {:?} is not one of COUNT, SUM, MIN, MAX, AVG",
                field.name, field.type_
            ));
            continue;
        };
        let subject = match (aggregation, field.subject.as_deref()) {
            (Aggregation::Count, None) => Some(None),
            (Aggregation::Count, Some(_)) => {
                shape_errors.push(format!(
                    "combinedFields {:?}: COUNT takes no subject",
                    field.name
                ));
                None
            }
            (_, None) => {
                shape_errors.push(format!(
                    "combinedFields {:?}: {} needs a subject",
                    field.name, field.type_
                ));
                None
            }
            (_, Some(source)) => {
                compile(format!("combinedFields {:?}", field.name), source).map(Some)
            }
        };
        if let Some(subject) = subject {
            combined.push(Combined {
                name: field.name.clone(),
                aggregation,
                subject,
            });
        }
    }
    errors.extend(shape_errors);
    let aggregates = !(spec.combined_fields.is_empty() && spec.group_by.is_empty());
    if !spec.select.is_empty() && aggregates {
        errors.push("select must be empty when groupBy or combinedFields is not".into());
    }
    if !spec.group_by.is_empty() && spec.combined_fields.is_empty() {
        errors.push("groupBy needs combinedFields".into());
    }
    if spec.limit < 0 {
        errors.push(format!("limit {} is negative", spec.limit));
    }
    let names = spec
        .select
        .iter()
        .chain(&spec.group_by)
        .map(|e| &e.name)
        .chain(spec.combined_fields.iter().map(|c| &c.name));
    let mut seen = BTreeSet::new();
    for column in names {
        if column.is_empty() {
            errors.push("a column has an empty name".into());
        } else if !seen.insert(column) {
            errors.push(format!("the column name {column:?} is used twice"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let all = |list: Vec<Option<(String, E::Program)>>| list.into_iter().flatten().collect();
    let shape = if spec.combined_fields.is_empty() {
        Shape::Select(all(select))
    } else {
        Shape::Aggregate {
            group_by: all(group_by),
            combined,
        }
    };
    Ok(Collector {
        name: name.to_string(),
        generation,
        filter: filter.flatten(),
        shape,
        limit: usize::try_from(spec.limit).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::engine::CelEngine;

    fn spec(yaml: &str) -> StatusCollectorSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn errors(yaml: &str) -> Vec<String> {
        compile(&CelEngine::default(), "c", 1, &spec(yaml))
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn a_valid_collector_compiles() {
        let c = compile(
            &CelEngine::default(),
            "c",
            3,
            &spec("{select: [{name: wec, def: inventory.name}], limit: 5}"),
        )
        .ok()
        .unwrap();
        assert_eq!((c.generation, c.limit), (3, 5));
        assert_eq!(c.column_names(), ["wec"]);
    }

    #[test]
    fn says_everything_that_is_wrong() {
        let got = errors(
            "{filter: 'obj ==', select: [{name: a, def: '1'}], combinedFields: [{name: a, type: SUM}, {name: b, type: MEDIAN, subject: '1'}], limit: -1}",
        );
        let text = got.join("\n");
        for part in [
            "filter:",
            "SUM needs a subject",
            "MEDIAN",
            "select must be empty",
            "negative",
            "\"a\" is used twice",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
        assert_eq!(
            errors("{groupBy: [{name: g, def: '1'}], limit: 1}"),
            ["groupBy needs combinedFields"]
        );
        assert!(
            errors("{combinedFields: [{name: n, type: COUNT, subject: '1'}], limit: 1}")[0]
                .contains("COUNT takes no subject")
        );
    }
}
