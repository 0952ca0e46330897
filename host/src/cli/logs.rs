//! Where the logs go and how they look: stderr, filtered by `RUST_LOG`
//! (default `info`), as text or as one JSON object a line (what cluster log
//! collectors parse). Text has ANSI colours only on a terminal, and never
//! with `NO_COLOR` set (<https://no-color.org>): escape codes in a file or a
//! pod log are noise.

use std::io::IsTerminal;

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether text logs get colours: stderr is a terminal and `NO_COLOR` is unset or empty.
pub fn colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder
            .with_ansi(colours(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::colours;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(
            colours(true, Some("".into())),
            "an empty NO_COLOR does not count"
        );
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
    }
}
