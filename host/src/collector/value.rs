//! KubeStellar's encoding of a column value: a union tagged by `type`, a
//! number written as Go's `strconv.FormatFloat(f, 'g', -1, 64)` writes it
//! (`"2"`, `"0.5"`, `"1e+06"`, `"+Inf"`, `"-Inf"`, `"NaN"`) under `float`.

use serde_json::Value as Json;

use crate::kubestellar::ColumnValue;

/// Encodes a JSON value as a column value.
pub fn encode(json: &Json) -> ColumnValue {
    let tagged = |type_: &str| ColumnValue {
        type_: type_.into(),
        ..Default::default()
    };
    match json {
        Json::Null => tagged("Null"),
        Json::Bool(b) => ColumnValue {
            bool: Some(*b),
            ..tagged("Bool")
        },
        Json::Number(n) => {
            let text = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(u)) => u.to_string(),
                _ => go_float(n.as_f64().unwrap_or(f64::NAN)),
            };
            number(text)
        }
        Json::String(s) => ColumnValue {
            string: Some(s.clone()),
            ..tagged("String")
        },
        Json::Array(_) => ColumnValue {
            array: Some(json.clone()),
            ..tagged("Array")
        },
        Json::Object(_) => ColumnValue {
            object: Some(json.clone()),
            ..tagged("Object")
        },
    }
}

/// A Number column holding `f`.
pub fn float(f: f64) -> ColumnValue {
    number(go_float(f))
}

fn number(text: String) -> ColumnValue {
    ColumnValue {
        type_: "Number".into(),
        float: Some(text),
        ..Default::default()
    }
}

/// `f` as Go's `strconv.FormatFloat(f, 'g', -1, 64)`: the shortest digits that
/// read back as `f`, in exponent form when the exponent is below -4 or at
/// least 6 (Go's rule for the shortest precision).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-7", "2e0".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a decimal exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{esign}{:02}", exp.abs());
    }
    let n = digits.len() as i32;
    let body = if exp < 0 {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    } else if exp + 1 >= n {
        format!("{digits}{}", "0".repeat((exp + 1 - n) as usize))
    } else {
        let (int, frac) = digits.split_at((exp + 1) as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_numbers_as_go_does() {
        for (f, want) in [
            (2.0, "2"),
            (0.0, "0"),
            (0.5, "0.5"),
            (-1.25, "-1.25"),
            (123456.0, "123456"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e300, "1.5e+300"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1.0 / 3.0, "0.3333333333333333"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }

    #[test]
    fn encodes_each_json_type() {
        assert_eq!(
            serde_json::to_value(encode(&json!(2))).unwrap(),
            json!({"type": "Number", "float": "2"})
        );
        assert_eq!(
            serde_json::to_value(encode(&json!("cluster1"))).unwrap(),
            json!({"type": "String", "string": "cluster1"})
        );
        assert_eq!(
            serde_json::to_value(encode(&json!(null))).unwrap(),
            json!({"type": "Null"})
        );
        assert_eq!(
            serde_json::to_value(encode(&json!(false))).unwrap(),
            json!({"type": "Bool", "bool": false})
        );
        assert_eq!(
            serde_json::to_value(encode(&json!({"a": 1}))).unwrap(),
            json!({"type": "Object", "object": {"a": 1}})
        );
        assert_eq!(
            serde_json::to_value(encode(&json!([1]))).unwrap(),
            json!({"type": "Array", "array": [1]})
        );
    }
}
