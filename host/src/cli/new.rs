//! `status-router policy new --lang rust|python|js NAME [DIR]`: a working
//! skeleton (source, build file, README, a case file that passes), so that
//! an author starts from a policy that `policy test` accepts as it is.
//!
//! The templates live in `templates/` and are compiled into the binary, with
//! a copy of the WIT contract, so the command works anywhere.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// The languages a skeleton can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

const WIT: &str = include_str!("../../../wit/status-policy.wit");
const README: &str = include_str!("templates/README.md");
const CASES: &str = include_str!("templates/cases.yaml");

/// The files of a skeleton: (path in DIR, template).
fn files(lang: Lang) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("README.md", README),
        ("cases.yaml", CASES),
        ("wit/status-policy.wit", WIT),
    ];
    match lang {
        Lang::Rust => files.extend([
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/lib.rs")),
        ]),
        Lang::Python => files.push(("app.py", include_str!("templates/python/app.py"))),
        Lang::Js => files.push(("policy.js", include_str!("templates/js/policy.js"))),
    }
    files
}

/// Writes the skeleton of `name` into `dir` (default `./name`).
pub fn run(lang: Lang, name: &str, dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    write_skeleton(lang, name, &dir)?;
    println!("wrote a {lang:?} policy {name} in {}", dir.display());
    println!(
        "  build: cargo xtask build-policy {} -o {}/{name}.wasm   (in a status-router checkout)",
        dir.display(),
        dir.display()
    );
    println!(
        "  test:  status-router policy test {}/{name}.wasm {}/cases.yaml",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the files; refuses a bad name or a directory that is not empty.
pub fn write_skeleton(lang: Lang, name: &str, dir: &Path) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "invalid policy name {name:?}: use lowercase letters, digits and dashes, starting \
             with a letter (it names the crate or module and the .wasm file)"
        );
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty; choose a new directory",
            dir.display()
        );
    }
    let (language, source) = match lang {
        Lang::Rust => ("Rust", "src/lib.rs"),
        Lang::Python => ("Python", "app.py"),
        Lang::Js => ("JavaScript", "policy.js"),
    };
    for (path, template) in files(lang) {
        let text = template
            .replace("{{name}}", name)
            .replace("{{language}}", language)
            .replace("{{source}}", source)
            .replace("{{dir}}", &dir.display().to_string());
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
