#!/usr/bin/env bash
# file_contains throughput beside `grep -F -c` on the same file: makes a SIZE_MB file of
# text lines (needle absent, so both read everything), warms the page cache, then runs
# each ROUNDS times, alternating, and prints median seconds and GB/s.
# werify is timed by its own "took" on a one-node mesh (one file_contains check).
# Usage: bench/file-contains.sh [SIZE_MB=1024] [ROUNDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}; rounds=${2:-5}; port=30335
# The release build (bench/build.sh); WERIFY_BIN overrides.
bin="${WERIFY_BIN:-$(bench/build.sh)}"
dir=$(mktemp -d -t werify-fc.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
python3 - "$dir/big.txt" "$size" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
line = b"2026-11-25T13:00:00Z INFO request served path=/api/v1/items status=200 bytes=5123 took=3ms\n"
block = line * (1 << 20 // len(line) + 1)
with open(path, "wb") as f:
    left = mb << 20
    while left > 0:
        chunk = block[:left]
        f.write(chunk)
        left -= len(chunk)
PY
cat "$dir/big.txt" > /dev/null
printf '{"big": {"type": "file_contains", "path": "%s", "check": "no-such-needle-xyz", "timeout": "5m"}}\n' "$dir/big.txt" > "$dir/op.json"
RUST_LOG=warn "$bin" node --bind 127.0.0.1 --port "$port" --data-dir "$dir/node" 2>"$dir/log" &
pid=$!
sleep 1
w=(); g=()
for _ in $(seq 1 "$rounds"); do
    out=$("$bin" ctl --connect "127.0.0.1:$port" --timeout 10m operation "$dir/op.json" --wait --deadline 5m || true)
    took=$(echo "$out" | sed -n 's/^Operation ended, took //p')
    w+=("$(echo "$took" | awk '{s=$1; if (s ~ /ms$/) {sub(/ms$/,"",s); print s/1000} else if (s ~ /µs$/) {sub(/µs$/,"",s); print s/1e6} else {sub(/s$/,"",s); print s}}')")
    t0=$(date +%s.%N); grep -F -c no-such-needle-xyz "$dir/big.txt" >/dev/null || true; t1=$(date +%s.%N)
    g+=("$(echo "$t1 - $t0" | bc)")
done
bytes=$(stat -c %s "$dir/big.txt")
wm=$(printf '%s\n' "${w[@]}" | median); gm=$(printf '%s\n' "${g[@]}" | median)
echo "file: $bytes bytes; rounds: $rounds"
echo "werify file_contains: median ${wm}s ($(echo "scale=2; $bytes / $wm / 1000000000" | bc) GB/s)"
echo "grep -F -c:           median ${gm}s ($(echo "scale=2; $bytes / $gm / 1000000000" | bc) GB/s)"
echo "ratio werify/grep time: $(echo "scale=3; $wm / $gm" | bc)"
