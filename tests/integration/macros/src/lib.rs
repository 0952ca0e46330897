//! `#[async_test]`: the one tokio runtime of the integration tests.
//!
//! Every async test runs on a multi-threaded runtime, as the controller does in production: its
//! workers, watches and lease task run beside the test's own polling. Two worker threads, or as
//! many as `#[async_test(worker_threads = N)]` asks (the seeded suites, which drive a whole
//! control plane, take four). The attribute only writes tokio's, so the expansion stays what
//! `#[tokio::test]` documents; it has no dependencies, so it costs the build nothing.

use proc_macro::TokenStream;

/// Runs the `async fn` under it as a test on a multi-threaded tokio runtime with two worker
/// threads, or with `worker_threads = N`.
#[proc_macro_attribute]
pub fn async_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = args.to_string();
    let workers = if args.trim().is_empty() {
        "worker_threads = 2".to_string()
    } else if args.replace(' ', "").starts_with("worker_threads=") {
        args
    } else {
        return r#"compile_error!("async_test takes nothing, or `worker_threads = N`");"#
            .parse()
            .expect("a compile_error! call");
    };
    let attribute: TokenStream = format!("#[::tokio::test(flavor = \"multi_thread\", {workers})]")
        .parse()
        .expect("a tokio::test attribute");
    attribute.into_iter().chain(item).collect()
}
