#!/usr/bin/env bash
# Builds the binary meant for shipping and prints its path; the benches measure it.
#
# The shipped build is Cargo profile "dist" (size-optimized, LTO, stripped) for the static
# musl target, with packed relative relocations (.cargo/config.toml). Every node maps a
# binary's pages once per process, so what each of these saves is per node: a 64-node
# mesh measured 9.9 MiB RSS per node as a glibc-linked build and 7.6 MiB as this one
# (bench/RESULTS.md, "The shipped build").
#
# Needs the musl target and a C compiler for it (ring builds C): this script adds the
# target with rustup when it is missing, and says how to get musl-gcc when that is.
# Usage: bin=$(bench/build-dist.sh)    (build output goes to stderr)
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "adding the Rust target $target (rustup target add $target)" >&2
    rustup target add "$target" >&2
fi
if [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
    echo "the Rust standard library for $target is not installed: add it with" \
        "rustup target add $target (or your distribution's rust-std package for it)," \
        "or set WERIFY_BIN to a build" >&2
    exit 2
fi
if ! command -v musl-gcc >/dev/null; then
    echo "no musl-gcc: the shipped build links statically against musl and ring needs its" \
        "C compiler; install it (apt-get install musl-tools) or set WERIFY_BIN to a build" >&2
    exit 2
fi
cargo build --profile dist --target "$target" --quiet >&2
echo "$PWD/target/$target/dist/werify"
