#!/usr/bin/env bash
# Local mesh timings: starts N werify nodes (release build) on 127.0.0.1..N, port 30135,
# and measures, over R rounds: join convergence (from starting the nodes until every node
# lists N active) and kill -9 detection (from SIGKILL of one node until every other node
# lists it inactive, and until every other node holds it dead); then RSS per node. Prints each round and the medians.
# Usage: bench/mesh-local.sh [N=16] [ROUNDS=5] [PROFILE=lan]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-16}; rounds=${2:-5}; profile=${3:-lan}; port=30135
# The release build (bench/build.sh); WERIFY_BIN overrides.
bin="${WERIFY_BIN:-$(bench/build.sh)}"
dir=$(mktemp -d -t werify-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

now() { date +%s.%N; }
active_count() { "$bin" ctl --connect "127.0.0.$1:$port" --timeout 2s listactive 2>/dev/null | sed -n 's/^Active hosts (\([0-9]*\))/\1/p'; }
is_dead_on() { "$bin" mesh status --connect "127.0.0.$1:$port" --timeout 2s --output json 2>/dev/null \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(m["addr"]==sys.argv[1] and m["state"]=="dead" for m in d["members"]) else 1)' "127.0.0.$2:$port"; }
inactive_has() { "$bin" ctl --connect "127.0.0.$1:$port" --timeout 2s listinactive 2>/dev/null | grep -qx "127.0.0.$2:$port"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

conv=(); det=(); dead=(); rss=()
for r in $(seq 1 "$rounds"); do
    rm -rf "$dir"/*; pids=()
    t0=$(now)
    for i in $(seq 1 "$n"); do
        args=(node --bind "127.0.0.$i" --port "$port" --data-dir "$dir/n$i" --profile "$profile")
        [ "$i" -gt 1 ] && args+=(--join "127.0.0.1:$port")
        RUST_LOG=warn "$bin" "${args[@]}" 2>>"$dir/log$i" &
        pids+=($!)
    done
    deadline=$(( $(date +%s) + 60 ))
    while :; do
        ok=0
        for i in $(seq 1 "$n"); do [ "$(active_count "$i")" = "$n" ] && ok=$((ok+1)); done
        [ "$ok" = "$n" ] && break
        [ "$(date +%s)" -ge "$deadline" ] && { echo "round $r: convergence incomplete ($ok/$n)"; break; }
    done
    t1=$(now); c=$(echo "$t1 - $t0" | bc); conv+=("$c")
    if [ "$r" = 1 ]; then
        for p in "${pids[@]}"; do rss+=("$(awk '/VmRSS/ {print $2}' "/proc/$p/status")"); done
    fi
    victim=$n
    kill -9 "${pids[$((victim-1))]}"
    t2=$(now)
    deadline=$(( $(date +%s) + 60 ))
    while :; do
        ok=0
        for i in $(seq 1 $((n-1))); do inactive_has "$i" "$victim" && ok=$((ok+1)); done
        [ "$ok" = "$((n-1))" ] && break
        [ "$(date +%s)" -ge "$deadline" ] && { echo "round $r: detection incomplete ($ok/$((n-1)))"; break; }
    done
    t3=$(now); d=$(echo "$t3 - $t2" | bc); det+=("$d")
    while :; do
        ok=0
        for i in $(seq 1 $((n-1))); do is_dead_on "$i" "$victim" && ok=$((ok+1)); done
        [ "$ok" = "$((n-1))" ] && break
        [ "$(date +%s)" -ge "$deadline" ] && { echo "round $r: dead verdict incomplete ($ok/$((n-1)))"; break; }
    done
    t4=$(now); dd=$(echo "$t4 - $t2" | bc); dead+=("$dd")
    echo "round $r: convergence ${c}s, kill -9 listed inactive by all $((n-1)) survivors ${d}s, dead on all ${dd}s"
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
done
echo "N=$n profile=$profile rounds=$rounds"
echo "median convergence: $(printf '%s\n' "${conv[@]}" | median)s"
echo "median kill -9 detection (listed inactive = suspect or dead, everywhere): $(printf '%s\n' "${det[@]}" | median)s"
echo "median kill -9 until dead everywhere: $(printf '%s\n' "${dead[@]}" | median)s"
echo "RSS per node (KiB): median $(printf '%s\n' "${rss[@]}" | median), max $(printf '%s\n' "${rss[@]}" | sort -g | tail -1)"
