//! Builds the default policy's self-test: one case file made of the
//! conformance file of the routing table (`tests/policies/conformance.yaml`)
//! and the case file of every kind (`tests/policies/kinds/*.yaml`), which
//! `src/lib.rs` embeds in the custom section `status-router-self-test`. A host
//! runs it before it hot-swaps the module in, so a module built from this
//! crate is checked against every kind's cases, not only the table.
//!
//! The files are joined as text (this script has no dependencies, as the
//! guest has none it could share): each must have one top-level `cases:` line
//! with only indented lines or comments after it, which this script checks.
//! The host's tests parse the result (`policy::DEFAULT_POLICY`'s self-test).

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    // Read at run time, not with `env!`: cargo may reuse a build script compiled in
    // another checkout of the same tree (a shared target dir), and `env!` would
    // then name that checkout.
    let manifest_dir =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let cases = Path::new(&manifest_dir).join("../tests/policies");
    let kinds = cases.join("kinds");
    println!("cargo::rerun-if-changed={}", kinds.display());
    let mut files = vec![cases.join("conformance.yaml")];
    let mut per_kind: Vec<PathBuf> = fs::read_dir(&kinds)
        .unwrap_or_else(|e| panic!("read {}: {e}", kinds.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    per_kind.sort();
    files.extend(per_kind);

    let mut out = String::from(
        "# The default policy's self-test, joined by guest/build.rs from the files named below.\ncases:\n",
    );
    for file in &files {
        println!("cargo::rerun-if-changed={}", file.display());
        let text =
            fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        // A relative name, so the module's bytes do not depend on the checkout's path.
        let name = file.strip_prefix(&cases).expect("under tests/policies");
        out.push_str(&format!("  # --- tests/policies/{}\n", name.display()));
        out.push_str(case_list(file, &text));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    let target = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(target.join("self-test.yaml"), out).expect("write the self-test");
}

/// The text after the `cases:` line, checked to be nothing but the list.
fn case_list<'a>(file: &Path, text: &'a str) -> &'a str {
    let start = text
        .match_indices("cases:\n")
        .find(|(i, _)| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .map(|(i, m)| i + m.len())
        .unwrap_or_else(|| panic!("{}: no top-level `cases:` line", file.display()));
    let list = &text[start..];
    if let Some(line) = list
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with('#'))
    {
        panic!(
            "{}: after `cases:`, every line must be indented (a list item) or a comment; found {line:?}",
            file.display()
        );
    }
    list
}
