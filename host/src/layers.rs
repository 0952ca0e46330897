//! The library's layers, checked: every `crate::…` and `super::…` path in
//! `src/` (outside the binary's `cli/` and `main.rs`) must point to its own
//! top-level module or to one of a lower layer, and no module may live in a
//! file named by `#[path]`. `docs/architecture.md` draws the same table.
//!
//! Paths are read with `syn`, so comments, strings and doc links do not
//! count, and inline modules (`mod tests { use super::*; }`) resolve as the
//! compiler resolves them. Paths inside macro calls (`format!`, `tracing::info!`)
//! are tokens to `syn` and are not seen.

use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Each top-level module and its layer: a module may use those of lower
/// layers only, never one of its own layer or above.
const LAYERS: &[(&str, u8)] = &[
    ("controller", 4),
    ("hotswap", 4),
    ("ops", 4),
    ("runtime", 3),
    ("harness", 3),
    ("policy", 2),
    ("collector", 2),
    ("kubestellar", 1),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// An import that runs sideways or upward.
#[derive(Debug, PartialEq)]
struct Violation {
    file: String,
    from: String,
    to: String,
    path: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let of = |m: &str| layer(m).unwrap_or(0);
        write!(
            f,
            "{}: `{}` makes {} (layer {}) use {} (layer {})",
            self.file,
            self.path,
            self.from,
            of(&self.from),
            self.to,
            of(&self.to)
        )
    }
}

/// Walks one file's syntax tree, tracking inline modules.
struct Imports<'a> {
    file: &'a str,
    /// The module the visitor is in, from the crate root.
    module: Vec<String>,
    found: Vec<Violation>,
}

impl Imports<'_> {
    /// Checks a path given by its leading segments.
    fn check(&mut self, segments: &[String]) {
        let Some(from) = self.module.first().cloned() else {
            return;
        };
        let absolute: Vec<String> = match segments.first().map(String::as_str) {
            Some("crate") => segments[1..].to_vec(),
            Some("super") => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = self.module.len().saturating_sub(ups);
                let mut path = self.module[..base].to_vec();
                path.extend_from_slice(&segments[ups..]);
                path
            }
            _ => return,
        };
        let Some(to) = absolute.first() else { return };
        let (Some(from_layer), Some(to_layer)) = (layer(&from), layer(to)) else {
            return;
        };
        if *to != from && to_layer >= from_layer {
            self.found.push(Violation {
                file: self.file.to_string(),
                from,
                to: to.clone(),
                path: segments.join("::"),
            });
        }
    }
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.attrs.iter().any(|a| a.path().is_ident("path")) {
            self.found.push(Violation {
                file: self.file.to_string(),
                from: self.module.join("::"),
                to: item.ident.to_string(),
                path: "#[path] (put the file where its module is)".into(),
            });
        }
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            syn::visit::visit_item_mod(self, item);
            self.module.pop();
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.check(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut prefix = Vec::new();
        self.use_tree(&item.tree, &mut prefix);
    }
}

impl Imports<'_> {
    fn use_tree(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(&p.tree, prefix);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.check_with(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.check_with(prefix, &r.ident),
            syn::UseTree::Glob(_) => self.check(prefix),
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(tree, prefix);
                }
            }
        }
    }

    fn check_with(&mut self, prefix: &[String], last: &syn::Ident) {
        let mut path = prefix.to_vec();
        path.push(last.to_string());
        self.check(&path);
    }
}

/// The module a file under `src/` holds: `controller/wds/mod.rs` is
/// `controller::wds`, `controller/sync/tests.rs` is `controller::sync::tests`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The violations in one file's text.
fn violations(relative: &Path, text: &str) -> Vec<Violation> {
    let file = relative.display().to_string();
    let syntax = syn::parse_file(text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut imports = Imports {
        file: &file,
        module: module_of(relative),
        found: Vec::new(),
    };
    imports.visit_file(&syntax);
    imports.found
}

fn library_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read src/").path();
        let relative = path.strip_prefix(root).expect("under src/").to_path_buf();
        if relative == Path::new("cli") || relative == Path::new("main.rs") {
            continue;
        }
        if path.is_dir() {
            library_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(relative);
        }
    }
}

#[test]
fn every_import_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    library_files(&root, &root, &mut files);
    files.sort();
    let mut found = Vec::new();
    for relative in &files {
        let text = std::fs::read_to_string(root.join(relative)).expect("read a source file");
        found.extend(violations(relative, &text));
    }
    let tops: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f).first().cloned())
        .filter(|m| m != "lib" && m != "layers")
        .collect();
    let unplaced: Vec<&String> = tops.iter().filter(|m| layer(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "top-level modules without a layer: {unplaced:?}; give each one in LAYERS \
         (src/layers.rs) and in docs/architecture.md"
    );
    assert!(
        files.len() > 50,
        "only {} files found under src/",
        files.len()
    );
    let report: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(
        report.is_empty(),
        "imports that do not point down (see docs/architecture.md):\n{}",
        report.join("\n")
    );
}

#[test]
fn an_upward_sideways_or_path_import_is_found_and_a_downward_one_is_not() {
    let found = |file: &str, text: &str| -> Vec<String> {
        violations(Path::new(file), text)
            .iter()
            .map(|v| format!("{} -> {}", v.from, v.to))
            .collect()
    };
    assert_eq!(
        found("runtime/queue.rs", "use crate::controller::Context;"),
        ["runtime -> controller"]
    );
    assert_eq!(
        found("ops/serve.rs", "fn f() { crate::hotswap::go(); }"),
        ["ops -> hotswap"]
    );
    assert_eq!(
        found(
            "policy/engine.rs",
            "mod tests { use super::super::super::collector::compute; }"
        ),
        ["policy -> collector"]
    );
    assert_eq!(
        found("controller/mod.rs", "#[path = \"x.rs\"] mod x;"),
        ["controller -> x"]
    );
    assert!(
        found(
            "controller/combined/watch.rs",
            "use super::super::Context; use crate::runtime::{api, queue::WorkQueue}; \
             use crate::kubestellar::*; // crate::ops::leader"
        )
        .is_empty()
    );
}
