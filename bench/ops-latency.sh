#!/usr/bin/env bash
# Operation latency: for each N given, starts N werify nodes (release build) on
# 127.0.0.1..N port 30235, waits until they all see each other, then runs
# `werify ctl operation FILE --wait` ROUNDS times against node 1 and reports the median of
# the wall time (submit until every host answered, CLI start-up included) and of the
# coordinator's own "took" figure.
# Usage: bench/ops-latency.sh [ROUNDS=10] [N...=1 16 32]   (FILE: examples/ops.json)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}; shift || true
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1 16 32)
port=30235
# The release build (bench/build.sh); WERIFY_BIN overrides.
bin="${WERIFY_BIN:-$(bench/build.sh)}"
file="$PWD/examples/ops.json"
dir=$(mktemp -d -t werify-ops.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
to_ms() { # Go duration -> ms
    awk '{ s=$1; if (s ~ /µs$/) { sub(/µs$/,"",s); print s/1000 } else if (s ~ /ms$/) { sub(/ms$/,"",s); print s }
           else if (s ~ /m[0-9.]*s$/) { split(s,a,"m"); sub(/s$/,"",a[2]); print (a[1]*60+a[2])*1000 }
           else { sub(/s$/,"",s); print s*1000 } }'
}
for n in "${sizes[@]}"; do
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "${dir:?}"/*; pids=()
    for i in $(seq 1 "$n"); do
        args=(node --bind "127.0.0.$i" --port "$port" --data-dir "$dir/n$i")
        [ "$i" -gt 1 ] && args+=(--join "127.0.0.1:$port")
        RUST_LOG=warn "$bin" "${args[@]}" 2>>"$dir/log$i" &
        pids+=($!)
    done
    for _ in $(seq 1 300); do
        c=$("$bin" ctl --connect "127.0.0.1:$port" --timeout 2s listactive 2>/dev/null | sed -n 's/^Active hosts (\([0-9]*\))/\1/p')
        [ "$c" = "$n" ] && break
        sleep 0.1
    done
    sleep 1
    walls=(); tooks=(); complete=0
    for _ in $(seq 1 "$rounds"); do
        t0=$(date +%s.%N)
        out=$("$bin" ctl --connect "127.0.0.1:$port" operation "$file" --wait || true)
        t1=$(date +%s.%N)
        walls+=("$(echo "($t1 - $t0) * 1000" | bc)")
        tooks+=("$(echo "$out" | sed -n 's/^Operation ended, took //p' | to_ms)")
        echo "$out" | grep -q "^Hosts: $n targeted, $n answered, 0 unreachable" && complete=$((complete+1))
    done
    echo "N=$n: median wall $(printf '%s\n' "${walls[@]}" | median) ms, median took $(printf '%s\n' "${tooks[@]}" | median) ms, complete $complete/$rounds"
done
