//! Builds the default policy component that the binary embeds, so that
//! `status-router` works with no `--policy` at all.

fn main() {
    xtask::rerun_if_policy_sources_change();
    let out_dir =
        std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Err(e) = xtask::build_policies(&[("default-policy", "default")], true, &out_dir) {
        panic!("cannot build the embedded default policy: {e}");
    }
}
