//! What built a component, from its `producers` custom sections (the tool
//! conventions' `language`, `processed-by` and `sdk` fields), so that
//! `policy check` can say "Python, componentize-py 0.25.1" for a guest that
//! says so. Components nest core modules, each with its own section: every
//! section is read and each entry listed once.

use wasmparser::{KnownCustom, Parser, Payload};

/// `field: name version` entries, in the order first seen, without repeats.
/// Empty when the component carries no producers section.
pub fn producers(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CustomSection(section)) = payload else {
            continue;
        };
        let KnownCustom::Producers(reader) = section.as_known() else {
            continue;
        };
        for field in reader.into_iter().flatten() {
            for value in field.values.into_iter().flatten() {
                let entry = format!("{}: {} {}", field.name, value.name, value.version)
                    .trim_end()
                    .to_string();
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_says_it_is_rust() {
        let found = producers(crate::policy::DEFAULT_POLICY);
        assert!(
            found.iter().any(|p| p.starts_with("language: Rust")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("processed-by: wit-component")),
            "{found:?}"
        );
    }

    #[test]
    fn bytes_without_a_section_have_no_producers() {
        assert!(producers(b"\0asm\x0d\0\x01\0").is_empty());
        assert!(producers(b"not wasm").is_empty());
    }
}
