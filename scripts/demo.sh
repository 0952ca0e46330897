#!/usr/bin/env bash
# The local demo: called by `cargo xtask demo`, which has already installed the
# wasm target, built the policies and the control plane binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p status-router --bin status-router --example demo
exec cargo run --quiet -p status-router --example demo
