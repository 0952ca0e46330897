//! An upper bound on what one evaluation of a compiled CEL expression costs,
//! from its tree and the sizes of its inputs, in the spirit of cel-go's cost
//! estimator (which Kubernetes uses to bound CEL in CRD validation): `cel`
//! (cel-rust) has no evaluation budget, so the host prices each evaluation
//! before running it.
//!
//! A size bounds every list length, map size or string length a value can
//! have (a JSON input's size is its node count plus its string bytes). A
//! comprehension (`all`, `exists`, `map`, `filter`, ...) runs at most as many
//! steps as its range's size; since the elements' sizes sum to at most the
//! range's, what the steps do with their elements adds up to at most what one
//! step does with an element as large as the range (plus each step's fixed
//! part), for the cost and for the accumulator's growth alike. Nested
//! comprehensions multiply. Concatenation copies both sides (an append to a
//! comprehension's accumulator only the new part), a comparison visits both.
//! CEL has no recursion and no unbounded loops, so this bound is finite for
//! every expression; it is polynomial in the input size with the nesting
//! depth as the degree, and is what catches a "huge list comprehension" or a
//! value that grows with each nesting.

use serde_json::Value as Json;

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr, LiteralValue};

/// The sizes of a row's variables.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sizes {
    pub obj: f64,
    pub returned: f64,
    pub inventory: f64,
    pub propagation: f64,
}

/// The size of a JSON value: its node count plus its string bytes.
pub fn json_size(json: &Json) -> f64 {
    match json {
        Json::String(s) => 1.0 + s.len() as f64,
        Json::Array(items) => 1.0 + items.iter().map(json_size).sum::<f64>(),
        Json::Object(members) => {
            1.0 + members
                .iter()
                .map(|(k, v)| k.len() as f64 + json_size(v))
                .sum::<f64>()
        }
        _ => 1.0,
    }
}

/// The estimated cost of evaluating `expr` over a row with these sizes.
pub fn estimate(expr: &IdedExpr, sizes: &Sizes) -> f64 {
    let scope = Scope::Root(sizes);
    walk(expr, &scope).cost
}

/// The identifiers an expression uses that no comprehension binds.
pub fn free_variables(expr: &IdedExpr) -> Vec<String> {
    let mut free = Vec::new();
    collect_free(expr, &mut Vec::new(), &mut free);
    free
}

fn collect_free<'e>(expr: &'e IdedExpr, bound: &mut Vec<&'e str>, free: &mut Vec<String>) {
    match &expr.expr {
        Expr::Ident(name) => {
            if !bound.contains(&name.as_str()) && !free.contains(name) {
                free.push(name.clone());
            }
        }
        Expr::Select(s) => collect_free(&s.operand, bound, free),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                collect_free(target, bound, free);
            }
            for arg in &call.args {
                collect_free(arg, bound, free);
            }
        }
        Expr::List(list) => list
            .elements
            .iter()
            .for_each(|e| collect_free(e, bound, free)),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    collect_free(&e.key, bound, free);
                    collect_free(&e.value, bound, free);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    collect_free(&f.value, bound, free);
                }
            }
        }
        Expr::Comprehension(c) => {
            collect_free(&c.iter_range, bound, free);
            collect_free(&c.accu_init, bound, free);
            let depth = bound.len();
            bound.push(&c.iter_var);
            if let Some(second) = &c.iter_var2 {
                bound.push(second);
            }
            bound.push(&c.accu_var);
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                collect_free(part, bound, free);
            }
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

#[derive(Clone, Copy, Debug)]
struct Estimate {
    cost: f64,
    size: f64,
}

impl Estimate {
    const UNIT: Estimate = Estimate {
        cost: 1.0,
        size: 1.0,
    };
}

/// The sizes of the variables in scope: the row's, then those comprehensions bind.
enum Scope<'a> {
    Root(&'a Sizes),
    Bound {
        name: &'a str,
        size: f64,
        accumulator: bool,
        parent: &'a Scope<'a>,
    },
}

impl Scope<'_> {
    fn size(&self, name: &str) -> f64 {
        match self {
            Scope::Root(s) => match name {
                "obj" => s.obj,
                "returned" => s.returned,
                "inventory" => s.inventory,
                "propagation" => s.propagation,
                _ => 1.0,
            },
            Scope::Bound {
                name: n,
                size,
                parent,
                ..
            } => {
                if *n == name {
                    *size
                } else {
                    parent.size(name)
                }
            }
        }
    }

    fn is_accumulator(&self, name: &str) -> bool {
        match self {
            Scope::Root(_) => false,
            Scope::Bound {
                name: n,
                accumulator,
                parent,
                ..
            } => {
                if *n == name {
                    *accumulator
                } else {
                    parent.is_accumulator(name)
                }
            }
        }
    }
}

fn walk(expr: &IdedExpr, scope: &Scope<'_>) -> Estimate {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Estimate {
            cost: 1.0,
            size: 1.0 + s.inner().len() as f64,
        },
        Expr::Literal(LiteralValue::Bytes(b)) => Estimate {
            cost: 1.0,
            size: 1.0 + b.inner().len() as f64,
        },
        Expr::Literal(_) | Expr::Unspecified => Estimate::UNIT,
        Expr::Ident(name) => Estimate {
            cost: 1.0,
            size: scope.size(name),
        },
        Expr::Select(s) => {
            let operand = walk(&s.operand, scope);
            Estimate {
                cost: operand.cost + 1.0,
                size: operand.size,
            }
        }
        Expr::List(list) => sum(list.elements.iter().map(|e| walk(e, scope))),
        Expr::Map(map) => sum(map.entries.iter().flat_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => vec![walk(&e.key, scope), walk(&e.value, scope)],
            EntryExpr::StructField(f) => vec![walk(&f.value, scope)],
        })),
        Expr::Struct(s) => sum(s.entries.iter().map(|entry| match &entry.expr {
            EntryExpr::StructField(f) => walk(&f.value, scope),
            EntryExpr::MapEntry(e) => walk(&e.value, scope),
        })),
        Expr::Call(call) => {
            let args: Vec<Estimate> = call
                .target
                .iter()
                .map(|t| walk(t, scope))
                .chain(call.args.iter().map(|a| walk(a, scope)))
                .collect();
            let cost: f64 = args.iter().map(|a| a.cost).sum::<f64>() + 1.0;
            let sizes: Vec<f64> = args.iter().map(|a| a.size).collect();
            let total: f64 = sizes.iter().sum();
            let largest = sizes.iter().copied().fold(1.0, f64::max);
            match call.func_name.as_str() {
                "_+_" => {
                    // `@result + [x]`, the step of `map` and `filter`, appends
                    // in place; any other `+` copies both sides.
                    let appends = call.args.first().is_some_and(
                        |a| matches!(&a.expr, Expr::Ident(n) if scope.is_accumulator(n)),
                    );
                    let copied = if appends { total - sizes[0] } else { total };
                    Estimate {
                        cost: cost + copied,
                        size: total,
                    }
                }
                // A comparison visits at most both sides.
                "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => Estimate {
                    cost: cost + total,
                    size: 1.0,
                },
                // `x in list` compares `x` with each element.
                "@in" => Estimate {
                    cost: cost + sizes.iter().copied().map(|s| s + 1.0).product::<f64>(),
                    size: 1.0,
                },
                "_[_]" => Estimate {
                    cost,
                    size: sizes.first().copied().unwrap_or(1.0),
                },
                "_&&_" | "_||_" | "_?_:_" | "!_" | "-_" | "_-_" | "_*_" | "_/_" | "_%_"
                | "size" | "has" => Estimate {
                    cost,
                    size: largest,
                },
                "matches" => Estimate {
                    cost: cost + sizes.iter().map(|s| s + 1.0).product::<f64>(),
                    size: 1.0,
                },
                // Conversions and the other functions of the standard
                // library read their arguments once.
                _ => Estimate {
                    cost: cost + total,
                    size: total + 1.0,
                },
            }
        }
        Expr::Comprehension(c) => {
            let range = walk(&c.iter_range, scope);
            let init = walk(&c.accu_init, scope);
            let steps = range.size;
            let bind = |element: f64, accu: f64, part: &IdedExpr| {
                let iter = Scope::Bound {
                    name: &c.iter_var,
                    size: element,
                    accumulator: false,
                    parent: scope,
                };
                let second = Scope::Bound {
                    name: c.iter_var2.as_deref().unwrap_or(""),
                    size: element,
                    accumulator: false,
                    parent: &iter,
                };
                let accumulated = Scope::Bound {
                    name: &c.accu_var,
                    size: accu,
                    accumulator: true,
                    parent: &second,
                };
                walk(part, &accumulated)
            };
            // Over all steps, what a step does with its element (whose size
            // is at most the range's) adds up to at most what one step does
            // with an element as large as the whole range: the elements'
            // sizes sum to the range's, and an estimate grows at least
            // linearly with a variable's size. So a quantity f per step
            // totals at most steps * f(0) + (f(range) - f(0)).
            let total = |f0: f64, f1: f64| steps * f0 + (f1 - f0).max(0.0);
            let growth =
                |element| (bind(element, init.size, &c.loop_step).size - init.size).max(0.0);
            let accu = init.size + total(growth(0.0), growth(range.size));
            let step = |element| {
                bind(element, accu, &c.loop_cond).cost
                    + bind(element, accu, &c.loop_step).cost
                    + 1.0
            };
            let result = bind(0.0, accu, &c.result);
            Estimate {
                cost: range.cost + init.cost + total(step(0.0), step(range.size)) + result.cost,
                size: result.size,
            }
        }
    }
}

fn sum(parts: impl Iterator<Item = Estimate>) -> Estimate {
    parts.fold(Estimate::UNIT, |acc, e| Estimate {
        cost: acc.cost + e.cost,
        size: acc.size + e.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(source: &str, sizes: Sizes) -> f64 {
        let program = cel::Env::stdlib().compile(source).unwrap();
        estimate(program.expression(), &sizes)
    }

    const TYPICAL: Sizes = Sizes {
        obj: 3000.0,
        returned: 1000.0,
        inventory: 10.0,
        propagation: 21.0,
    };

    #[test]
    fn everyday_expressions_are_cheap() {
        for source in [
            "returned.status.availableReplicas",
            "obj.spec.replicas == returned.status.availableReplicas",
            "returned.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')",
            "returned.status.conditions.filter(c, c.status != 'True').map(c, c.type)",
        ] {
            let c = cost(source, TYPICAL);
            assert!(c < 1.0e6, "{source}: {c}");
        }
    }

    #[test]
    fn nesting_multiplies_and_grows_with_the_input() {
        let one = cost("returned.status.conditions.map(a, a)", TYPICAL);
        let two = cost(
            "returned.status.conditions.map(a, returned.status.conditions.map(b, b))",
            TYPICAL,
        );
        assert!(two > one * 500.0, "{one} {two}");
        let small = Sizes {
            returned: 10.0,
            ..TYPICAL
        };
        assert!(cost("returned.status.conditions.map(a, a)", small) < one);
    }

    #[test]
    fn finds_the_free_variables_only() {
        let program = cel::Env::stdlib()
            .compile("obj.items.map(x, x.name + inventory.name).exists(y, y == z)")
            .unwrap();
        assert_eq!(
            free_variables(program.expression()),
            ["obj", "inventory", "z"]
        );
    }
}
