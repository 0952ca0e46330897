//! The JavaScript recipe: componentize-qjs (QuickJS), pinned by
//! `xtask/lang/js/package.json` and its lock file, installed with `npm ci`
//! under the cache dir, driven by `xtask/lang/js/build.mjs`.
//!
//! The build uses `{ sync: true, stubWasi: true }`: the synchronous ABI
//! (the host leaves component-model-async off) and trapping stubs for every
//! WASI import, so the component imports nothing. The policy is the ES
//! module `policy.js` of its directory, exporting `policy = { decide, aggregate }`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cache_root, run};
use crate::{BuildError, fail, workspace_root};

/// The pinned version (also in `xtask/lang/js/package.json`).
pub const COMPONENTIZE_QJS: &str = "0.4.5";

/// What goes into the cache key besides the sources.
pub const RECIPE: &str = concat!(
    "componentize-qjs@0.4.5 sync stubWasi\n",
    include_str!("../../lang/js/build.mjs"),
    include_str!("../../lang/js/package-lock.json"),
);

fn recipe_dir() -> PathBuf {
    workspace_root().join("xtask/lang/js")
}

/// The install, `<cache>/lang/componentize-qjs-<version>/`.
pub fn install_dir() -> PathBuf {
    cache_root()
        .join("lang")
        .join(format!("componentize-qjs-{COMPONENTIZE_QJS}"))
}

/// Installs the locked packages with `npm ci`, once.
pub fn install() -> Result<PathBuf, BuildError> {
    let dir = install_dir();
    let modules = dir.join("node_modules");
    let done = dir.join(".installed");
    let lock = std::fs::read(recipe_dir().join("package-lock.json"))
        .map_err(|e| BuildError(format!("read xtask/lang/js/package-lock.json: {e}")))?;
    if std::fs::read(&done).is_ok_and(|d| d == lock) {
        return Ok(modules);
    }
    for tool in ["node", "npm"] {
        let present = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !present {
            return fail(format!(
                "`{tool}` is needed to build JavaScript policies; `cargo xtask setup` installs \
                 it (apt-get install nodejs npm)"
            ));
        }
    }
    eprintln!(
        "xtask: installing componentize-qjs@{COMPONENTIZE_QJS} (npm ci) into {}",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| BuildError(format!("create {dir:?}: {e}")))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(recipe_dir().join(file), dir.join(file))
            .map_err(|e| BuildError(format!("copy {file} to {dir:?}: {e}")))?;
    }
    run(
        Command::new("npm").current_dir(&dir).args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
        ]),
        "npm ci (componentize-qjs)",
    )?;
    std::fs::write(&done, lock).map_err(|e| BuildError(format!("write {done:?}: {e}")))?;
    Ok(modules)
}

/// Builds `dir/policy.js` into the component `out`.
pub fn build(wit: &Path, dir: &Path, out: &Path) -> Result<(), BuildError> {
    let source = dir.join("policy.js");
    if !source.is_file() {
        return fail(format!(
            "{} has no policy.js (a JavaScript policy is the ES module policy.js exporting \
             `policy = {{ decide, aggregate }}`)",
            dir.display()
        ));
    }
    let modules = install()?;
    run(
        Command::new("node")
            .env("STATUS_ROUTER_QJS_MODULES", modules)
            .arg(recipe_dir().join("build.mjs"))
            .arg(wit)
            .arg("status-policy")
            .arg(&source)
            .arg(out),
        "componentize-qjs",
    )
}
