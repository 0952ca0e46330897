//! Policies written in Python and JavaScript, built into components by
//! pinned toolchains that the project installs itself.
//!
//! Each language's recipe lives in one file ([`python`], [`js`]): the pinned
//! version, how the toolchain is installed under the cache dir, and the one
//! build command. Both stub every WASI import with a trap, so the component
//! imports nothing; [`check_no_imports`] refuses a build that would import
//! anything, with the list. A Python build costs ~15 s and 420 MB, so built
//! components are cached by a hash of everything that goes into them
//! ([`cached_build`]) and a second `cargo xtask test` does not rebuild them.

pub mod js;
pub mod python;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::{env, fs};

use crate::{BuildError, fail, workspace_root};

/// The language a policy is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Python,
    Js,
}

/// A policy written in another language than Rust.
#[derive(Clone, Copy, Debug)]
pub struct ForeignPolicy {
    pub lang: Lang,
    /// Its directory, relative to the workspace root (or absolute).
    pub dir: &'static str,
    /// The component file stem.
    pub stem: &'static str,
}

/// Every Python and JavaScript policy of the repository.
pub const FOREIGN_POLICIES: &[ForeignPolicy] = &[
    ForeignPolicy {
        lang: Lang::Python,
        dir: "policies/ready-sum",
        stem: "ready-sum",
    },
    ForeignPolicy {
        lang: Lang::Js,
        dir: "policies/annotation-wecs",
        stem: "annotation-wecs",
    },
];

/// `${STATUS_ROUTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/status-router}`,
/// as `scripts/build-control-plane.sh` and `testenv` use it.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = env::var_os("STATUS_ROUTER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("status-router")
}

impl ForeignPolicy {
    /// The policy's directory as a path.
    pub fn path(&self) -> PathBuf {
        workspace_root().join(self.dir)
    }

    /// Builds the component (or takes it from the cache) into `out_dir/<stem>.wasm`.
    pub fn build(&self, out_dir: &Path) -> Result<PathBuf, BuildError> {
        build_dir(self.lang, &self.path(), self.stem, out_dir)
    }
}

/// Builds the policy in `dir` (Python: `app.py`; JS: `policy.js`) into
/// `out_dir/<stem>.wasm`, served from the cache when its inputs are unchanged.
pub fn build_dir(
    lang: Lang,
    dir: &Path,
    stem: &str,
    out_dir: &Path,
) -> Result<PathBuf, BuildError> {
    let out = out_dir.join(format!("{stem}.wasm"));
    let bytes = cached_build(lang, dir)?;
    fs::create_dir_all(out_dir).map_err(|e| BuildError(format!("create {out_dir:?}: {e}")))?;
    fs::write(&out, bytes).map_err(|e| BuildError(format!("write {out:?}: {e}")))?;
    Ok(out)
}

/// The component built from `dir`, from `<cache>/built-policies/` when a
/// build of the same inputs (sources, WIT package, recipe) is there.
pub fn cached_build(lang: Lang, dir: &Path) -> Result<Vec<u8>, BuildError> {
    let key = input_hash(lang, dir)?;
    let cache = cache_root().join("built-policies");
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("policy");
    let entry = cache.join(format!("{name}-{key:016x}.wasm"));
    if let Ok(bytes) = fs::read(&entry) {
        return Ok(bytes);
    }
    fs::create_dir_all(&cache).map_err(|e| BuildError(format!("create {cache:?}: {e}")))?;
    let tmp = cache.join(format!("{name}-{key:016x}.tmp{}", std::process::id()));
    let wit = workspace_root().join("wit");
    match lang {
        Lang::Python => python::build(&wit, dir, &tmp)?,
        Lang::Js => js::build(&wit, dir, &tmp)?,
    }
    let bytes = fs::read(&tmp).map_err(|e| BuildError(format!("read {tmp:?}: {e}")))?;
    if let Err(e) = check_no_imports(&bytes) {
        let _ = fs::remove_file(&tmp);
        return fail(format!("the policy in {}: {e}", dir.display()));
    }
    // The toolchains do not say what they are; `policy check` prints this.
    let (language, tool, version) = match lang {
        Lang::Python => ("Python", "componentize-py", python::COMPONENTIZE_PY),
        Lang::Js => ("JavaScript", "componentize-qjs", js::COMPONENTIZE_QJS),
    };
    let bytes = crate::name_toolchain(&bytes, language, Some((tool, version)))?;
    fs::write(&tmp, &bytes).map_err(|e| BuildError(format!("write {tmp:?}: {e}")))?;
    fs::rename(&tmp, &entry).map_err(|e| BuildError(format!("rename into {entry:?}: {e}")))?;
    Ok(bytes)
}

/// Fails, listing them, when the component imports anything.
pub fn check_no_imports(component: &[u8]) -> Result<(), BuildError> {
    let decoded = wit_component::decode(component)
        .map_err(|e| BuildError(format!("the build's output is not a component: {e:#}")))?;
    let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
        return fail("the build's output is a WIT package, not a component");
    };
    let world = &resolve.worlds[world];
    let imports: Vec<String> = world
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    if imports.is_empty() {
        Ok(())
    } else {
        fail(format!(
            "the built component imports {imports:?}; a policy must import nothing \
             (the recipe stubs WASI; an import here means the toolchain or the WIT changed)"
        ))
    }
}

/// A hash of what goes into a build: the policy's sources (`.py` files for
/// Python; `.js`, `.mjs` and `.json` for JavaScript; `__pycache__` and
/// `node_modules` left out), the WIT package and the language's recipe. Its
/// README, case file or `.wasm` outputs do not count, so editing them, or
/// the same skeleton written into another directory, is not a rebuild.
fn input_hash(lang: Lang, dir: &Path) -> Result<u64, BuildError> {
    let mut hasher = DefaultHasher::new();
    let sources: &[&str] = match lang {
        Lang::Python => {
            python::RECIPE.hash(&mut hasher);
            &["py"]
        }
        Lang::Js => {
            js::RECIPE.hash(&mut hasher);
            &["js", "mjs", "json"]
        }
    };
    hash_tree(&workspace_root().join("wit"), &["wit"], &mut hasher)?;
    hash_tree(dir, sources, &mut hasher)?;
    Ok(hasher.finish())
}

/// Hashes the names and contents of the files under `dir` whose extension is
/// one of `extensions`, in a fixed order.
fn hash_tree(
    dir: &Path,
    extensions: &[&str],
    hasher: &mut DefaultHasher,
) -> Result<(), BuildError> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| BuildError(format!("read {dir:?}: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if path.is_dir() {
            if name != "__pycache__" && name != "node_modules" {
                name.hash(hasher);
                hash_tree(&path, extensions, hasher)?;
            }
            continue;
        }
        let source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.contains(&e));
        if source {
            name.hash(hasher);
            fs::read(&path)
                .map_err(|e| BuildError(format!("read {path:?}: {e}")))?
                .hash(hasher);
        }
    }
    Ok(())
}

/// Runs a build command, failing with its output.
fn run(cmd: &mut std::process::Command, what: &str) -> Result<(), BuildError> {
    let output = cmd
        .output()
        .map_err(|e| BuildError(format!("could not start {what} ({cmd:?}): {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        fail(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The language of the policy in `dir`: `Cargo.toml` (Rust), `app.py`
/// (Python) or `policy.js` (JavaScript).
pub fn detect(dir: &Path) -> Option<Option<Lang>> {
    if dir.join("Cargo.toml").is_file() {
        Some(None)
    } else if dir.join("app.py").is_file() {
        Some(Some(Lang::Python))
    } else if dir.join("policy.js").is_file() {
        Some(Some(Lang::Js))
    } else {
        None
    }
}

/// `cargo xtask build-policy DIR`: builds the policy in `dir`, whatever its
/// language (as `status-router policy new` writes it), into `out`.
pub fn build_policy_dir(dir: &Path, out: &Path) -> Result<(), BuildError> {
    let bytes = match detect(dir) {
        Some(Some(lang)) => cached_build(lang, dir)?,
        Some(None) => crate::build_standalone_crate(dir)?,
        None => {
            return fail(format!(
                "{} holds no policy: expected Cargo.toml (Rust), app.py (Python) or policy.js \
                 (JavaScript), as `status-router policy new` writes them",
                dir.display()
            ));
        }
    };
    check_no_imports(&bytes)?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).map_err(|e| BuildError(format!("create {parent:?}: {e}")))?;
    }
    fs::write(out, bytes).map_err(|e| BuildError(format!("write {out:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = env::temp_dir().join(format!("xtask-lang-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_language_is_told_by_the_file_policy_new_writes() {
        let dir = Scratch::new("detect");
        assert_eq!(detect(&dir.0), None);
        fs::write(dir.0.join("policy.js"), "").unwrap();
        assert_eq!(detect(&dir.0), Some(Some(Lang::Js)));
        fs::write(dir.0.join("app.py"), "").unwrap();
        assert_eq!(detect(&dir.0), Some(Some(Lang::Python)));
        fs::write(dir.0.join("Cargo.toml"), "").unwrap();
        assert_eq!(detect(&dir.0), Some(None), "Rust");
    }

    #[test]
    fn the_build_cache_key_follows_the_sources_and_ignores_build_leftovers() {
        let dir = Scratch::new("hash");
        fs::write(dir.0.join("app.py"), "x = 1\n").unwrap();
        let first = input_hash(Lang::Python, &dir.0).unwrap();
        assert_eq!(input_hash(Lang::Python, &dir.0).unwrap(), first);
        assert_ne!(
            input_hash(Lang::Js, &dir.0).unwrap(),
            first,
            "the recipe counts"
        );
        fs::create_dir(dir.0.join("__pycache__")).unwrap();
        fs::write(dir.0.join("__pycache__/app.pyc"), "junk").unwrap();
        fs::write(dir.0.join("old.wasm"), "junk").unwrap();
        fs::write(dir.0.join("README.md"), "not built").unwrap();
        fs::write(dir.0.join("cases.yaml"), "cases: []").unwrap();
        assert_eq!(input_hash(Lang::Python, &dir.0).unwrap(), first);
        fs::write(dir.0.join("helper.py"), "y = 1\n").unwrap();
        let with_helper = input_hash(Lang::Python, &dir.0).unwrap();
        assert_ne!(with_helper, first, "another module of the policy counts");
        fs::remove_file(dir.0.join("helper.py")).unwrap();
        fs::write(dir.0.join("app.py"), "x = 2\n").unwrap();
        assert_ne!(input_hash(Lang::Python, &dir.0).unwrap(), first);
    }

    #[test]
    fn a_directory_without_a_policy_is_refused_naming_what_was_expected() {
        let dir = Scratch::new("empty");
        let err = build_policy_dir(&dir.0, &dir.0.join("out.wasm"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no policy"), "{err}");
        assert!(err.contains("app.py (Python)"), "{err}");
    }
}
