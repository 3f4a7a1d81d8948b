#!/usr/bin/env bash
# A local demo mesh on the embedded defaults: builds werify, starts 5 nodes on
# 127.0.0.1-5 port 30035 (env "dev", derived identity), waits until they see each other,
# shows `werify mesh status`, runs examples/ops.json on every host, and keeps the mesh up
# until Ctrl-C (or exits at once with --once). Every node it started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
once=false
[ "${1:-}" = "--once" ] && once=true
port=${WERIFY_DEMO_PORT:-30035}   # the embedded default; override if 30035 is taken

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/werify"
dir=$(mktemp -d -t werify-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for i in 1 2 3 4 5; do
    args=(node --bind "127.0.0.$i" --port "$port" --data-dir "$dir/node$i" --tag "demo=node$i")
    [ "$i" -gt 1 ] && args+=(--join "127.0.0.1:$port")
    "$bin" "${args[@]}" 2>"$dir/node$i.log" &
    pids+=($!)
done

echo "Started 5 nodes on 127.0.0.1-5:$port (logs in $dir); waiting for them to see each other..."
for _ in $(seq 1 100); do
    if "$bin" ctl --connect "127.0.0.5:$port" --timeout 2s listactive 2>/dev/null | grep -q '^Active hosts (5)'; then
        break
    fi
    sleep 0.2
done
for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
        echo "a node exited; its log:" >&2
        cat "$dir"/node*.log >&2
        exit 1
    fi
done

echo
echo "\$ werify mesh status --connect 127.0.0.3:$port"
"$bin" mesh status --connect "127.0.0.3:$port"
echo
echo "\$ werify ctl --connect 127.0.0.2:$port list"
"$bin" ctl --connect "127.0.0.2:$port" list
echo
echo "\$ werify ctl --connect 127.0.0.1:$port operation examples/ops.json --wait"
"$bin" ctl --connect "127.0.0.1:$port" operation examples/ops.json --wait || true
if $once; then
    exit 0
fi
echo
echo "The mesh keeps running; try: $bin ctl --connect 127.0.0.4:$port list   (Ctrl-C stops every node)"
wait
