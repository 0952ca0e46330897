//! Property tests of the two document parsers: case files (`parse_cases`)
//! and the `policy decide` / `policy aggregate` request documents (JSON or
//! YAML, read with `serde_yaml`). Any document written from valid cases
//! parses back to the same cases, as YAML and as JSON; any text at all is
//! either parsed or refused with a message, never a panic.

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;
use crate::policy::{Handler, ObjectDoc, ReportedDoc, from_json_or_yaml};

/// Strings YAML may mistake for something else, and arbitrary Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,10}",
        prop::sample::select(vec![
            "",
            "1",
            "-1",
            "0x1F",
            "1e3",
            ".5",
            "true",
            "False",
            "yes",
            "no",
            "on",
            "null",
            "~",
            "-",
            "- a",
            ": ",
            "a: b",
            "#c",
            "&a",
            "*a",
            "!tag",
            "'q'",
            "\"q\"",
            " sp ",
            "tab\t",
            "line\nbreak",
            "ünïcødé",
            "日本",
            "🦀",
            "\u{feff}bom",
        ])
        .prop_map(String::from),
    ]
}

fn status() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        (-1e12f64..1e12).prop_map(Json::from),
        text().prop_map(Json::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = ObjectDoc> {
    (
        (text(), text(), text(), text()),
        (prop::option::of(text()), text()),
        prop::collection::btree_map(text(), text(), 0..3),
        prop::collection::btree_map(text(), text(), 0..3),
    )
        .prop_map(
            |((group, version, resource, kind), (namespace, name), labels, annotations)| {
                ObjectDoc {
                    group,
                    version,
                    resource,
                    kind,
                    namespace,
                    name,
                    labels,
                    annotations,
                }
            },
        )
}

fn request() -> impl Strategy<Value = RequestDoc> {
    (
        object(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(text(), 0..4),
        prop::collection::vec(text(), 0..4),
    )
        .prop_map(|(object, s, m, sw, mw)| RequestDoc {
            object,
            want_singleton: s,
            want_multi_wec: m,
            singleton_wecs: sw,
            multi_wecs: mw,
        })
}

fn aggregate() -> impl Strategy<Value = AggregateDoc> {
    (object(), prop::collection::vec((text(), status()), 0..4)).prop_map(|(object, reported)| {
        AggregateDoc {
            object,
            reported: reported
                .into_iter()
                .map(|(wec, status)| ReportedDoc { wec, status })
                .collect(),
        }
    })
}

fn case() -> impl Strategy<Value = Case> {
    let handler = prop::sample::select(vec![Handler::Singleton, Handler::MultiWec, Handler::None]);
    let decide = (request(), handler, prop::collection::vec(text(), 0..3)).prop_map(
        |(request, handler, wecs)| Check::Decide {
            request,
            expect: DecisionDoc { handler, wecs },
        },
    );
    let expect = prop_oneof![
        status().prop_map(AggregateExpect::Status),
        text().prop_map(AggregateExpect::Error),
    ];
    let aggregate =
        (aggregate(), expect).prop_map(|(input, expect)| Check::Aggregate { input, expect });
    (text(), prop_oneof![decide, aggregate]).prop_map(|(name, check)| Case { name, check })
}

/// A case as a document: what a user writes in a case file.
fn document(case: &Case) -> Json {
    match &case.check {
        Check::Decide { request, expect } => {
            json!({"name": case.name, "request": request, "expect": expect})
        }
        Check::Aggregate { input, expect } => {
            let expect = match expect {
                AggregateExpect::Status(status) => json!({"status": status}),
                AggregateExpect::Error(error) => json!({"error": error}),
            };
            json!({"name": case.name, "aggregate": input, "expect": expect})
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn written_cases_parse_back_the_same_as_yaml_and_as_json(
        cases in prop::collection::vec(case(), 1..4)
    ) {
        let doc = json!({"cases": cases.iter().map(document).collect::<Vec<_>>()});
        let as_json = serde_json::to_string_pretty(&doc).unwrap();
        let as_yaml = serde_yaml::to_string(&doc).unwrap();
        prop_assert_eq!(&parse_cases(&as_json).unwrap(), &cases, "JSON:\n{}", as_json);
        prop_assert_eq!(&parse_cases(&as_yaml).unwrap(), &cases, "YAML:\n{}", as_yaml);
    }

    #[test]
    fn request_documents_parse_back_the_same(request in request(), input in aggregate()) {
        let text = serde_json::to_string(&request).unwrap();
        prop_assert_eq!(from_json_or_yaml::<RequestDoc>(&text).unwrap(), request.clone());
        let text = serde_yaml::to_string(&request).unwrap();
        prop_assert_eq!(from_json_or_yaml::<RequestDoc>(&text).unwrap(), request);
        let text = serde_json::to_string(&input).unwrap();
        prop_assert_eq!(from_json_or_yaml::<AggregateDoc>(&text).unwrap(), input);
    }

    #[test]
    fn any_text_is_parsed_or_refused_with_a_message(text in "\\PC{0,200}") {
        if let Err(message) = parse_cases(&text) {
            prop_assert!(!message.is_empty());
        }
        let _ = from_json_or_yaml::<RequestDoc>(&text);
    }

    #[test]
    fn mangled_case_files_are_refused_with_a_message(
        cases in prop::collection::vec(case(), 1..3),
        cut in any::<prop::sample::Index>(),
        junk in "\\PC{0,8}",
    ) {
        let doc = json!({"cases": cases.iter().map(document).collect::<Vec<_>>()});
        let yaml = serde_yaml::to_string(&doc).unwrap();
        let mut at = cut.index(yaml.len() + 1);
        while !yaml.is_char_boundary(at) {
            at -= 1;
        }
        let mangled = format!("{}{junk}{}", &yaml[..at], &yaml[at..]);
        if let Err(message) = parse_cases(&mangled) {
            prop_assert!(!message.is_empty());
        }
    }
}
