#!/usr/bin/env bash
# Builds werify as users get it (`cargo build --release`, the one release profile that the
# README, examples/demo.sh and `cargo install` use) and prints the binary's path; the
# benches measure it. Honours CARGO_TARGET_DIR.
# Usage: bin=$(bench/build.sh)    (build output goes to stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/release/werify"
