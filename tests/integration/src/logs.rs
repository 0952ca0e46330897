//! The controller's logs in the tests: one subscriber for the whole test
//! binary (a process has one), writing to a buffer the hot-swap tests search.

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Where the controller's logs go: a buffer the tests search, echoed to the
/// (captured) test output when `RUST_LOG` is set.
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        if std::env::var_os("RUST_LOG").is_some() {
            eprint!("{}", String::from_utf8_lossy(buf));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the one log subscriber of the test binary (every test that runs a
/// controller calls it first): the controller's warnings, and the hot-swap
/// lines [`logged`] looks for, or what `RUST_LOG` asks for (e.g.
/// `RUST_LOG=status_router=debug`), shown in the test's output when it is set.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
            .add_directive("status_router::hotswap=info".parse().expect("a directive"))
            .add_directive(
                "status_router::policy::active=info"
                    .parse()
                    .expect("a directive"),
            );
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .try_init();
    });
}

/// Whether one logged line contains every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    String::from_utf8_lossy(&LOGS.lock().unwrap())
        .lines()
        .any(|line| parts.iter().all(|p| line.contains(p)))
}
