//! No needless writes: knowing when a status the controller wants is already
//! stored, although the stored copy reads differently.
//!
//! The API server stores a status in its own normal form. For the built-in
//! kinds it drops zero-valued fields (`availableReplicas: 0`,
//! `conditions: []` are stored as nothing) and fields its version does not
//! know (a newer WEC's `terminatingReplicas`); for custom resources it prunes
//! unknown fields and applies defaults. Comparing the wanted status with the
//! stored one as JSON would then find a difference on every reconcile and
//! write again, for ever. Two mechanisms, neither a special case of a kind or
//! a field, make an object at rest cost no write:
//!
//! - [`ServerForms`] remembers, per object, the last status written and what
//!   the server stored for it (from the write's response). While the wanted
//!   status and the stored one are still that pair, nothing is written,
//!   whatever the server did to it.
//! - After a restart there is no memory. When the wanted and the stored
//!   status differ only by zero values ([`equal_but_for_zero_values`]: a
//!   member that is `0`, `false`, `""`, `null`, `[]` or `{}` on one side and
//!   absent on the other), the writer asks the server what it would store,
//!   with a dry-run write (no change, no resourceVersion, no watch event), and
//!   writes only if that differs from what is stored. So a custom resource
//!   whose schema keeps `ready: false` still gets it written, and a
//!   Deployment whose server drops it costs one dry run per restart.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::controller::index::ObjectKey;

/// What the server made of the last status written to each object.
#[derive(Debug, Default)]
pub struct ServerForms {
    forms: Mutex<HashMap<ObjectKey, Form>>,
}

/// Kept as JSON text (serde_json writes an object's members in key order,
/// so equal values give equal text): a fifth of the memory of two trees per
/// object, for every object whose server drops fields.
#[derive(Debug)]
struct Form {
    /// The status the controller wrote (or dry-ran).
    wanted: Box<str>,
    /// The status the server stored (or would store) for it.
    stored: Box<str>,
}

impl ServerForms {
    /// Whether `wanted` is known to be stored as `stored` on the object.
    pub fn is_stored(&self, key: &ObjectKey, wanted: &Value, stored: &Value) -> bool {
        let forms = self.forms.lock().expect("server forms lock");
        forms
            .get(key)
            .is_some_and(|f| *f.wanted == *wanted.to_string() && *f.stored == *stored.to_string())
    }

    /// Records that the server stores `wanted` as `stored` on the object.
    pub fn record(&self, key: &ObjectKey, wanted: Value, stored: Value) {
        let mut forms = self.forms.lock().expect("server forms lock");
        if wanted == stored {
            // Plain equality needs no memory.
            forms.remove(key);
        } else {
            let form = Form {
                wanted: wanted.to_string().into(),
                stored: stored.to_string().into(),
            };
            forms.insert(key.clone(), form);
        }
    }

    /// Forgets the objects `keep` rejects (deleted, or no longer watched).
    pub fn retain(&self, keep: impl Fn(&ObjectKey) -> bool) {
        self.forms
            .lock()
            .expect("server forms lock")
            .retain(|k, _| keep(k));
    }

    /// How many objects are remembered (for tests).
    pub fn len(&self) -> usize {
        self.forms.lock().expect("server forms lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether two JSON values are equal once members with a zero value
/// (`null`, `false`, `0`, `""`, `[]`, `{}`, or an object of only such
/// members) are taken as absent, at any depth. List elements are compared in
/// order and are never dropped. Numbers compare by value (`1` equals `1.0`).
pub fn equal_but_for_zero_values(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let covered = |x: &serde_json::Map<String, Value>,
                           y: &serde_json::Map<String, Value>| {
                x.iter().all(|(k, v)| match y.get(k) {
                    Some(w) => equal_but_for_zero_values(v, w),
                    None => is_zero(v),
                })
            };
            // Members of `b` that `a` lacks must be zero too.
            covered(a, b) && b.iter().all(|(k, v)| a.contains_key(k) || is_zero(v))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| equal_but_for_zero_values(x, y))
        }
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value the API server drops when it omits empty fields.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_zero),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> ObjectKey {
        ObjectKey::new(
            "apps".into(),
            "deployments".into(),
            "default".into(),
            "web".into(),
        )
    }

    #[test]
    fn zero_values_equal_absence_at_any_depth() {
        let wanted = json!({"replicas": 2, "availableReplicas": 0, "unavailableReplicas": 0,
                            "conditions": [], "paused": false, "note": "", "sub": {"a": 0, "b": null}});
        assert!(equal_but_for_zero_values(&wanted, &json!({"replicas": 2})));
        assert!(equal_but_for_zero_values(&json!({"replicas": 2}), &wanted));
        assert!(equal_but_for_zero_values(
            &json!({"r": 1.0}),
            &json!({"r": 1})
        ));
        assert!(equal_but_for_zero_values(
            &json!({"conditions": [{"type": "A", "message": ""}]}),
            &json!({"conditions": [{"type": "A"}]})
        ));
    }

    #[test]
    fn real_differences_stay_differences() {
        for (a, b) in [
            (json!({"replicas": 2}), json!({"replicas": 3})),
            (json!({"replicas": 2}), json!({})),
            (json!({"ready": true}), json!({})),
            (json!({"conditions": [{"type": "A"}]}), json!({})),
            (json!({"l": [0]}), json!({"l": []})),
            (json!({"l": [0, 1]}), json!({"l": [1, 0]})),
            (json!({"phase": "Running"}), json!({"phase": "Pending"})),
            (json!({"x": 0}), json!({"x": "0"})),
        ] {
            assert!(!equal_but_for_zero_values(&a, &b), "{a} vs {b}");
            assert!(!equal_but_for_zero_values(&b, &a), "{b} vs {a}");
        }
    }

    #[test]
    fn a_remembered_form_holds_only_while_both_sides_are_unchanged() {
        let forms = ServerForms::default();
        let wanted = json!({"replicas": 2, "terminatingReplicas": 0});
        let stored = json!({"replicas": 2});
        forms.record(&key(), wanted.clone(), stored.clone());
        assert!(forms.is_stored(&key(), &wanted, &stored));
        assert!(!forms.is_stored(&key(), &json!({"replicas": 3}), &stored));
        assert!(!forms.is_stored(&key(), &wanted, &json!({"replicas": 1})));
        forms.retain(|_| false);
        assert!(!forms.is_stored(&key(), &wanted, &stored));
        // Equal sides need no memory.
        forms.record(&key(), stored.clone(), stored.clone());
        assert!(forms.is_empty());
    }
}
