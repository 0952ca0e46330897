//! What the computation needs from an expression language, as a small trait,
//! and its implementation with the `cel` crate (the cel-rust project).
//!
//! Expressions are compiled once per StatusCollector generation; a row's
//! variables (`obj`, `returned.status`, `inventory.name`,
//! `propagation.lastReturnedUpdateTimestamp`) are bound once per (object, WEC)
//! and shared by every expression of every collector. `cel` has no evaluation
//! budget of its own, so each evaluation is first priced by [`super::cost`]
//! from the compiled tree and the sizes of the inputs, and refused when the
//! bound exceeds the limit: a hostile expression costs a tree walk, never a
//! stalled worker.

use std::sync::Arc;

use serde_json::Value as Json;

use super::cost::{self, Sizes};

/// The variables a collector's expressions may name.
pub const VARIABLES: [&str; 4] = ["obj", "returned", "inventory", "propagation"];

/// The default bound on the estimated cost of one evaluation (about one unit
/// per value visited or byte copied; see [`super::cost`]).
pub const DEFAULT_COST_LIMIT: f64 = 10_000_000.0;

/// One WEC's report, as the expressions see it.
#[derive(Clone, Copy, Debug)]
pub struct Returned<'a> {
    /// `inventory.name`.
    pub wec: &'a str,
    /// `returned.status`.
    pub status: &'a Json,
    /// `propagation.lastReturnedUpdateTimestamp`, when the WorkStatus says.
    pub updated: Option<&'a str>,
}

/// An expression language for StatusCollectors.
pub trait Engine: Send + Sync {
    /// A compiled expression.
    type Program: Send + Sync;
    /// `obj`, converted once per object.
    type Object;
    /// Every variable of one row, bound once per (object, WEC).
    type Row;

    /// Parses and checks an expression; the error says what is wrong.
    fn compile(&self, source: &str) -> Result<Self::Program, String>;
    /// Converts the workload object.
    fn object(&self, obj: &Json) -> Self::Object;
    /// Binds one row's variables.
    fn row(&self, object: &Self::Object, returned: &Returned<'_>) -> Self::Row;
    /// Evaluates a compiled expression over a row, as JSON.
    fn evaluate(&self, program: &Self::Program, row: &Self::Row) -> Result<Json, String>;
}

/// CEL, by the `cel` crate, with its standard library and a cost limit.
pub struct CelEngine {
    env: Arc<cel::Env>,
    cost_limit: f64,
}

impl Default for CelEngine {
    fn default() -> Self {
        Self::with_cost_limit(DEFAULT_COST_LIMIT)
    }
}

impl CelEngine {
    /// An engine refusing evaluations estimated above `cost_limit`.
    pub fn with_cost_limit(cost_limit: f64) -> Self {
        Self {
            env: Arc::new(cel::Env::stdlib()),
            cost_limit,
        }
    }
}

/// A compiled CEL expression.
pub struct CelProgram {
    program: cel::Program,
}

/// `obj` as a CEL value, with its size for the cost estimate.
pub struct CelObject {
    value: cel::Value,
    size: f64,
}

/// A row's CEL context and the sizes of its variables.
pub struct CelRow {
    context: cel::Context<'static, 'static>,
    sizes: Sizes,
}

/// The longest expression accepted, in bytes.
const MAX_SOURCE: usize = 16 * 1024;

impl Engine for CelEngine {
    type Program = CelProgram;
    type Object = CelObject;
    type Row = CelRow;

    fn compile(&self, source: &str) -> Result<CelProgram, String> {
        if source.len() > MAX_SOURCE {
            return Err(format!(
                "the expression is {} bytes long, more than {MAX_SOURCE}",
                source.len()
            ));
        }
        let program = self.env.compile(source).map_err(|e| e.to_string())?;
        let free = cost::free_variables(program.expression());
        if let Some(unknown) = free.iter().find(|v| !VARIABLES.contains(&v.as_str())) {
            return Err(format!(
                "undeclared variable {unknown:?} (the variables are {})",
                VARIABLES.join(", ")
            ));
        }
        Ok(CelProgram { program })
    }

    fn object(&self, obj: &Json) -> CelObject {
        CelObject {
            value: to_cel(obj),
            size: cost::json_size(obj),
        }
    }

    fn row(&self, object: &CelObject, returned: &Returned<'_>) -> CelRow {
        let mut context = cel::Context::with_env(self.env.clone());
        let map = |entries: Vec<(&str, cel::Value)>| {
            let map: std::collections::HashMap<String, cel::Value> = entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            cel::Value::from(map)
        };
        let updated = match returned.updated {
            Some(time) => cel::Value::from(time),
            None => cel::Value::Null,
        };
        context.add_variable_from_value("obj", object.value.clone());
        context.add_variable_from_value("returned", map(vec![("status", to_cel(returned.status))]));
        context.add_variable_from_value("inventory", map(vec![("name", returned.wec.into())]));
        context.add_variable_from_value(
            "propagation",
            map(vec![("lastReturnedUpdateTimestamp", updated)]),
        );
        let sizes = Sizes {
            obj: object.size,
            returned: cost::json_size(returned.status) + 1.0,
            inventory: returned.wec.len() as f64 + 1.0,
            propagation: returned.updated.map_or(1.0, |t| t.len() as f64 + 1.0),
        };
        CelRow { context, sizes }
    }

    fn evaluate(&self, program: &CelProgram, row: &CelRow) -> Result<Json, String> {
        let estimate = cost::estimate(program.program.expression(), &row.sizes);
        if estimate > self.cost_limit {
            return Err(format!(
                "the estimated cost of this evaluation ({estimate:.3e}) exceeds the limit ({:.0e})",
                self.cost_limit
            ));
        }
        let value = program
            .program
            .execute(&row.context)
            .map_err(|e| e.to_string())?;
        value.json().map_err(|e| e.to_string())
    }
}

/// JSON to CEL: integers stay integers (`int`, or `uint` beyond `int`'s range).
fn to_cel(json: &Json) -> cel::Value {
    match json {
        Json::Null => cel::Value::Null,
        Json::Bool(b) => cel::Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => cel::Value::from(s.as_str()),
        Json::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Json::Object(members) => {
            let map: std::collections::HashMap<String, cel::Value> = members
                .iter()
                .map(|(k, v)| (k.clone(), to_cel(v)))
                .collect();
            cel::Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(source: &str, obj: &Json, status: &Json) -> Result<Json, String> {
        let engine = CelEngine::default();
        let program = engine.compile(source)?;
        let object = engine.object(obj);
        let returned = Returned {
            wec: "cluster1",
            status,
            updated: Some("2026-01-01T00:00:00Z"),
        };
        engine.evaluate(&program, &engine.row(&object, &returned))
    }

    #[test]
    fn binds_the_four_variables() {
        let obj = json!({"spec": {"replicas": 1}});
        let status = json!({"availableReplicas": 1});
        let got = eval(
            "[obj.spec.replicas == returned.status.availableReplicas, inventory.name, \
             propagation.lastReturnedUpdateTimestamp]",
            &obj,
            &status,
        );
        assert_eq!(got, Ok(json!([true, "cluster1", "2026-01-01T00:00:00Z"])));
        assert_eq!(eval("returned.status", &obj, &status), Ok(status));
    }

    #[test]
    fn rejects_parse_errors_and_unknown_variables_at_compile_time() {
        let engine = CelEngine::default();
        assert!(engine.compile("obj.spec.replicas ==").is_err());
        let err = engine.compile("objx.spec").err().unwrap();
        assert!(err.contains("objx"), "{err}");
        assert!(engine.compile("obj.spec.items.map(x, x.name)").is_ok());
    }

    #[test]
    fn a_missing_field_is_an_error_not_a_value() {
        let got = eval("returned.status.nothing", &json!({}), &json!({}));
        assert!(got.is_err(), "{got:?}");
    }

    #[test]
    fn a_hostile_expression_is_refused_before_it_runs() {
        let ten = "[0,1,2,3,4,5,6,7,8,9]";
        let mut hostile = "obj".to_string();
        for var in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            hostile = format!("{ten}.map({var}, {hostile})");
        }
        let got = eval(&hostile, &json!({"spec": {"x": "y"}}), &json!({}));
        let err = got.expect_err("refused");
        assert!(err.contains("exceeds the limit"), "{err}");
    }
}
