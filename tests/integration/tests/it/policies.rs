//! Every policy of `guest/` and `policies/`, tested through the harness, and
//! the default policy checked against the native table as an oracle.

use integration_tests::{load_policy, policy_path, workspace_file};
use status_router::harness::PolicyUnderTest;
use status_router::policy::{
    DecisionDoc, Limits, ObjectDoc, PolicyEngine, PolicyInstance, RequestDoc, native,
};

#[test]
fn default_policy_passes_the_conformance_table() {
    PolicyUnderTest::load(policy_path("default"))
        .assert_case_file(workspace_file("tests/policies/conformance.yaml"));
}

#[test]
fn strict_singleton_passes_its_cases() {
    PolicyUnderTest::load(policy_path("strict-singleton"))
        .assert_case_file(workspace_file("policies/strict-singleton/cases.yaml"));
}

#[test]
fn label_driven_passes_its_cases() {
    PolicyUnderTest::load(policy_path("label-driven"))
        .assert_case_file(workspace_file("policies/label-driven/cases.yaml"));
}

/// The Python policy routes as KubeStellar does (every decide case of the
/// conformance file) and sums over the WECs (its own cases).
#[test]
fn ready_sum_in_python_passes_the_routing_conformance_and_its_cases() {
    let mut policy = PolicyUnderTest::from_instance(load_policy("ready-sum", Limits::default()));
    policy.assert_routing_cases(workspace_file("tests/policies/conformance.yaml"));
    policy.assert_case_file(workspace_file("policies/ready-sum/cases.yaml"));
}

/// The JavaScript policy, without its annotation, routes as KubeStellar does.
#[test]
fn annotation_wecs_in_javascript_passes_the_routing_conformance_and_its_cases() {
    let mut policy =
        PolicyUnderTest::from_instance(load_policy("annotation-wecs", Limits::default()));
    policy.assert_routing_cases(workspace_file("tests/policies/conformance.yaml"));
    policy.assert_case_file(workspace_file("policies/annotation-wecs/cases.yaml"));
}

/// Each language's component imports nothing, says what built it, and its
/// extra exports (componentize-py's `exports` interface) are ignored.
#[test]
fn python_and_javascript_components_import_nothing_and_name_their_toolchain() {
    for (stem, language, tool) in [
        (
            "ready-sum",
            "language: Python",
            "processed-by: componentize-py 0.25.1",
        ),
        (
            "annotation-wecs",
            "language: JavaScript",
            "processed-by: componentize-qjs 0.4.5",
        ),
    ] {
        let bytes = std::fs::read(policy_path(stem)).unwrap();
        xtask::lang::check_no_imports(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let instance = load_policy(stem, Limits::default());
        let info = instance.policy().info();
        assert_eq!(info.functions, ["decide", "aggregate"], "{stem}");
        let producers = info.producers.join("; ");
        assert!(producers.contains(language), "{stem}: {producers}");
        assert!(producers.contains(tool), "{stem}: {producers}");
    }
}

/// The language builds' guard: a component that imports anything fails the
/// build, naming each import; one that imports nothing passes.
#[test]
fn a_build_that_would_import_anything_fails_listing_the_imports() {
    let importing = wat::parse_str(
        r#"(component
             (import "wasi:cli/environment@0.2.0"
               (instance (export "get-arguments" (func (result (list string))))))
             (import "wasi:clocks/wall-clock@0.2.0"
               (instance (export "now" (func (result u64))))))"#,
    )
    .unwrap();
    let err = xtask::lang::check_no_imports(&importing)
        .expect_err("a component with imports must fail")
        .to_string();
    for import in ["wasi:cli/environment@0.2.0", "wasi:clocks/wall-clock@0.2.0"] {
        assert!(err.contains(import), "{err}");
    }
    assert!(err.contains("must import nothing"), "{err}");
    xtask::lang::check_no_imports(&std::fs::read(policy_path("default")).unwrap())
        .expect("the default policy imports nothing");
}

#[test]
fn the_embedded_default_policy_is_the_built_one() {
    let built = std::fs::read(policy_path("default")).unwrap();
    let engine = PolicyEngine::new().unwrap();
    let embedded = engine.load(status_router::policy::DEFAULT_POLICY).unwrap();
    let built = engine.load(&built).unwrap();
    assert_eq!(embedded.info().digest, built.info().digest);
}

#[test]
fn the_harness_reports_a_wrong_expectation() {
    let mut policy = PolicyUnderTest::load(policy_path("default"));
    let req = RequestDoc::new(ObjectDoc::deployment("default", "web")).singleton(["wec1"]);
    assert_eq!(policy.decide(&req), DecisionDoc::singleton(["wec1"]));
    assert_ne!(policy.decide(&req), DecisionDoc::multi_wec(["wec1"]));
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        policy.assert_case_file(workspace_file("tests/policies/wrong-expectation.yaml"))
    }));
    let message = *failed
        .expect_err("a wrong case must fail")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("1 of 1 cases failed"), "{message}");
    assert!(
        message.contains("-  \"handler\": \"multiWEC\""),
        "{message}"
    );
}

/// Every combination of flags over subsets (with duplicates) of three WECs.
#[test]
fn default_policy_agrees_with_the_native_table_everywhere() {
    let engine = PolicyEngine::new().unwrap();
    let mut wasm = PolicyInstance::new(engine.load_file(policy_path("default")).unwrap());
    let lists: Vec<Vec<String>> = (0u32..(1 << 4))
        .map(|bits| {
            ["wec1", "wec2", "wec3", "wec1"]
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, w)| w.to_string())
                .collect()
        })
        .collect();
    let mut checked = 0;
    for want_singleton in [false, true] {
        for want_multi_wec in [false, true] {
            for singleton_wecs in &lists {
                for multi_wecs in &lists {
                    let req = RequestDoc {
                        object: ObjectDoc::deployment("default", "web"),
                        want_singleton,
                        want_multi_wec,
                        singleton_wecs: singleton_wecs.clone(),
                        multi_wecs: multi_wecs.clone(),
                    };
                    let req = (&req).into();
                    assert_eq!(wasm.decide(&req).unwrap(), native::decide(&req), "{req:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 16 * 16);
}

/// The benchmark's floor policies must stay valid policies that answer
/// `none`, or `contract_floor` would time errors; CI runs no benchmark.
#[test]
fn the_contract_floor_policies_load_and_answer_none() {
    for stem in ["handwritten-noop", "noop"] {
        let mut policy = PolicyUnderTest::load(policy_path(stem));
        let req = RequestDoc::new(ObjectDoc::deployment("default", "web"))
            .singleton(["wec1"])
            .multi_wec(["wec1", "wec2"]);
        assert_eq!(policy.decide(&req), DecisionDoc::none(), "{stem}");
    }
}
