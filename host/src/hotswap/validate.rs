//! Validation of a module before it may serve: every step must pass.
//!
//! 1. its sha256, when the operator pinned one (`--policy-sha256`);
//! 2. compiled (or taken from the compiled cache) and checked against the WIT
//!    contract: a component, no imports, the right exports and version;
//! 3. its embedded self-test: a case file the policy author put in the custom
//!    section `status-router-self-test` (optional);
//! 4. the operator's conformance cases (`--policy-conformance`, optional).

use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::harness::{Case, CaseFileError, Outcome, parse_cases, read_case_file, run_case};
use crate::policy::active::ActiveModule;
use crate::policy::{CompiledCache, PolicyEngine, PolicyError, PolicyInstance};

/// The custom section that holds a policy's self-test case file (YAML).
pub const SELF_TEST_SECTION: &str = "status-router-self-test";

/// Why a module was not activated.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("sha256 is {actual}, but --policy-sha256 pins {expected}")]
    Sha256 { expected: String, actual: String },
    #[error("{0}")]
    Invalid(#[from] PolicyError),
    #[error("its embedded self-test is not a valid case file: {0}")]
    BadSelfTest(String),
    #[error("{suite}: {failed} of {total} cases failed, first {first:?}")]
    CasesFailed {
        suite: &'static str,
        failed: usize,
        total: usize,
        first: String,
    },
}

/// Checks modules before activation.
pub struct Validator {
    engine: PolicyEngine,
    cache: Option<CompiledCache>,
    sha256: Option<String>,
    conformance: Vec<Case>,
}

impl Validator {
    /// A validator; `conformance` is the operator's case file, if any.
    pub fn new(
        engine: PolicyEngine,
        cache: Option<CompiledCache>,
        sha256: Option<String>,
        conformance: Option<&Path>,
    ) -> Result<Self, CaseFileError> {
        let conformance = match conformance {
            Some(path) => read_case_file(path)?,
            None => Vec::new(),
        };
        Ok(Self {
            engine,
            cache,
            sha256: sha256.map(|s| s.trim_start_matches("sha256:").to_ascii_lowercase()),
            conformance,
        })
    }

    /// Runs every step; on success the module is ready to activate.
    pub fn validate(&self, source: &str, bytes: &[u8]) -> Result<ActiveModule, Rejection> {
        if let Some(expected) = &self.sha256 {
            let actual = format!("{:x}", Sha256::digest(bytes));
            if &actual != expected {
                return Err(Rejection::Sha256 {
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let (policy, from_cache) = self.engine.load_cached(bytes, self.cache.as_ref())?;
        let mut instance = PolicyInstance::new(policy.clone());
        if let Some(text) = self_test(bytes) {
            let cases = parse_cases(&text).map_err(Rejection::BadSelfTest)?;
            run_suite("self-test", &mut instance, &cases)?;
        }
        run_suite("conformance", &mut instance, &self.conformance)?;
        Ok(ActiveModule {
            policy,
            source: source.to_string(),
            loaded_at: SystemTime::now(),
            from_cache,
        })
    }
}

fn run_suite(
    suite: &'static str,
    instance: &mut PolicyInstance,
    cases: &[Case],
) -> Result<(), Rejection> {
    let failed: Vec<&Case> = cases
        .iter()
        .filter(|case| run_case(instance, case) != Outcome::Pass)
        .collect();
    match failed.first() {
        None => Ok(()),
        Some(first) => Err(Rejection::CasesFailed {
            suite,
            failed: failed.len(),
            total: cases.len(),
            first: first.name.clone(),
        }),
    }
}

/// The self-test case file embedded in a component, wherever it sits (the
/// core module inside the component carries the custom sections of the guest).
pub fn self_test(bytes: &[u8]) -> Option<String> {
    wasmparser::Parser::new(0)
        .parse_all(bytes)
        .filter_map(Result::ok)
        .find_map(|payload| match payload {
            wasmparser::Payload::CustomSection(section) if section.name() == SELF_TEST_SECTION => {
                Some(String::from_utf8_lossy(section.data()).into_owned())
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DEFAULT_POLICY;

    fn validator(sha256: Option<&str>) -> Validator {
        Validator::new(
            PolicyEngine::new().unwrap(),
            None,
            sha256.map(Into::into),
            None,
        )
        .unwrap()
    }

    #[test]
    fn the_default_policy_passes_its_embedded_self_test() {
        assert!(self_test(DEFAULT_POLICY).is_some_and(|t| t.contains("cases:")));
        let module = validator(None)
            .validate("builtin:default", DEFAULT_POLICY)
            .unwrap();
        assert_eq!(module.source, "builtin:default");
    }

    #[test]
    fn the_default_policys_self_test_holds_the_table_and_every_kind() {
        let text = self_test(DEFAULT_POLICY).expect("a self-test");
        let cases = xtask::workspace_root().join("tests/policies");
        let mut files = vec![cases.join("conformance.yaml")];
        for kind in [
            "daemonset",
            "deployment",
            "job",
            "replicaset",
            "statefulset",
        ] {
            assert!(
                text.contains(&format!("tests/policies/kinds/{kind}.yaml")),
                "{kind} missing"
            );
            files.push(cases.join(format!("kinds/{kind}.yaml")));
        }
        let on_disk: usize = files.iter().map(|f| read_case_file(f).unwrap().len()).sum();
        assert_eq!(parse_cases(&text).unwrap().len(), on_disk);
    }

    #[test]
    fn a_pinned_sha256_must_match() {
        let digest = format!("{:x}", Sha256::digest(DEFAULT_POLICY));
        assert!(
            validator(Some(&format!("sha256:{digest}")))
                .validate("x", DEFAULT_POLICY)
                .is_ok()
        );
        let err = validator(Some("00ff"))
            .validate("x", DEFAULT_POLICY)
            .unwrap_err();
        assert!(matches!(err, Rejection::Sha256 { .. }), "{err}");
    }

    #[test]
    fn garbage_is_rejected_as_invalid() {
        let err = validator(None).validate("x", b"not wasm").unwrap_err();
        assert!(
            matches!(err, Rejection::Invalid(PolicyError::NotAComponent(_))),
            "{err}"
        );
    }
}
