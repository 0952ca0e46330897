//! Builds every policy component, and the test-only policies, for the tests
//! and the `contract_floor` benchmark.

fn main() {
    xtask::rerun_if_policy_sources_change();
    println!("cargo::rerun-if-changed=../guests");
    let out_dir =
        std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut policies = xtask::POLICIES.to_vec();
    policies.push(("misbehaving-policy", "misbehaving"));
    policies.push(("always-trap-policy", "always-trap"));
    policies.push(("noop-policy", "noop"));
    if let Err(e) = xtask::build_policies(&policies, true, &out_dir) {
        panic!("cannot build the policy components for the tests: {e}");
    }

    // Python and JavaScript policies, and the sandbox probes in each language:
    // taken from the build cache when their inputs are unchanged.
    for policy in xtask::lang::FOREIGN_POLICIES {
        if let Err(e) = policy.build(&out_dir) {
            panic!("cannot build the {} policy for the tests: {e}", policy.stem);
        }
    }
    for (lang, dir, stem) in [
        (
            xtask::lang::Lang::Python,
            "../guests/python-sandbox",
            "python-sandbox",
        ),
        (xtask::lang::Lang::Js, "../guests/js-sandbox", "js-sandbox"),
    ] {
        // Relative to the package (a build script's working directory), not
        // `env!`: the script may have been compiled in another checkout.
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        if let Err(e) = xtask::lang::build_dir(lang, &dir, stem, &out_dir) {
            panic!("cannot build the {stem} test policy: {e}");
        }
    }

    // The contract's floor: a policy written as a core module by hand.
    let wat = std::path::Path::new("../guests/handwritten-noop.wat");
    let core = wat::parse_file(wat).unwrap_or_else(|e| panic!("assemble {wat:?}: {e}"));
    let component = xtask::componentize_core(core).unwrap_or_else(|e| panic!("{e}"));
    let out = out_dir.join("handwritten-noop.wasm");
    std::fs::write(&out, component).unwrap_or_else(|e| panic!("write {out:?}: {e}"));
}
