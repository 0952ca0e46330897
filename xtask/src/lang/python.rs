//! The Python recipe: componentize-py (CPython 3.14 inside), pinned, in a
//! venv under the cache dir.
//!
//! `componentize-py -d wit -w status-policy componentize app -p DIR --stub-wasi`:
//! `--stub-wasi` replaces every WASI import with a trapping stub, so the
//! component imports nothing (clocks, files, `os.urandom`, `print` and sockets
//! trap; `random` and `hash` are seeded at build time). The app is the module
//! `app` (`app.py`) of the policy's directory, with a class `Policy`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{cache_root, run};
use crate::{BuildError, fail};

/// The pinned version.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// What goes into the cache key besides the sources.
pub const RECIPE: &str = "componentize-py==0.25.1 --stub-wasi app";

/// The venv, `<cache>/lang/componentize-py-<version>/`.
pub fn venv() -> PathBuf {
    cache_root()
        .join("lang")
        .join(format!("componentize-py-{COMPONENTIZE_PY}"))
}

/// Creates the venv and installs componentize-py into it, once.
pub fn install() -> Result<PathBuf, BuildError> {
    let venv = venv();
    let tool = venv.join("bin/componentize-py");
    let done = venv.join(".installed");
    if done.exists() && tool.exists() {
        return Ok(tool);
    }
    let python = std::env::var("STATUS_ROUTER_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_venv = Command::new(&python)
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_venv {
        return fail(format!(
            "{python} with the venv module is needed to build Python policies; \
             `cargo xtask setup` installs it (apt-get install python3-venv)"
        ));
    }
    eprintln!(
        "xtask: installing componentize-py=={COMPONENTIZE_PY} into {}",
        venv.display()
    );
    let _ = std::fs::remove_dir_all(&venv);
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        "creating the Python venv",
    )?;
    let pip = || {
        run(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .arg(format!("componentize-py=={COMPONENTIZE_PY}")),
            "pip install componentize-py",
        )
    };
    // One more try: a download that failed once (seen here) usually works.
    pip().or_else(|e| {
        eprintln!("xtask: {e}; trying once more");
        pip()
    })?;
    std::fs::write(&done, COMPONENTIZE_PY)
        .map_err(|e| BuildError(format!("write {done:?}: {e}")))?;
    Ok(tool)
}

/// Builds the app in `dir` into the component `out`.
pub fn build(wit: &Path, dir: &Path, out: &Path) -> Result<(), BuildError> {
    if !dir.join("app.py").is_file() {
        return fail(format!(
            "{} has no app.py (a Python policy is the module `app` with a class `Policy`)",
            dir.display()
        ));
    }
    let tool = install()?;
    eprintln!(
        "xtask: building the Python policy {} (componentize-py, ~15 s)",
        dir.display()
    );
    run(
        Command::new(tool)
            // Only the venv's site-packages, never the machine's.
            .env("VIRTUAL_ENV", venv())
            .arg("-d")
            .arg(wit)
            .args(["-w", "status-policy", "componentize", "app", "-p"])
            .arg(dir)
            .arg("--stub-wasi")
            .arg("-o")
            .arg(out),
        "componentize-py",
    )
}
