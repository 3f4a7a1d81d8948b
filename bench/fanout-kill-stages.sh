#!/usr/bin/env bash
# Where fan-out and failure-detection time goes, without a harness polling the nodes: N
# `lan` nodes on 127.0.0.1–N (default 64) joined with `--join 127.0.0.1`. Early (8 s after
# the start) and settled (about two minutes later) it times three fan-outs (`ctl operation
# --wait` with one file_exists check, CLI start included) and one kill -9, whose stages it
# reads from the nodes' own logs: when the victim was first suspected, first declared dead,
# and dead on every node. Then it profiles 20 fan-outs in a row with `perf record -a`.
# Usage, as root, in a network namespace of its own:
#   ip netns exec wbench bench/fanout-kill-stages.sh [N]
# Needs perf. Builds werify with bench/build.sh unless WERIFY_BIN names a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lan-nodes.sh
lan_nodes_init fanout-kill "${1:-64}" 4
echo '{"check": {"type": "file_exists", "path": "/etc/hosts"}}' >"$work/ops.json"
lan_node_start 1
for k in $(seq 2 "$n"); do lan_node_start "$k" --join 127.0.0.1:30035; done

fanout() {
    local t0 t1
    t0=$(date +%s%N)
    "$bin" ctl --connect 127.0.0.1:30035 operation "$work/ops.json" --wait >"$work/fan.out" 2>&1 || true
    t1=$(date +%s%N)
    echo "  fan-out $(( (t1 - t0) / 1000000 )) ms: $(grep -o '[0-9]* targeted, [0-9]* answered' "$work/fan.out" || true)"
}

# kill -9 of node $1, then its stages from every other node's log.
kill_and_read() {
    local victim=$1 t0
    t0=$(date +%s%N)
    kill -9 "${pids[$((victim - 1))]}"
    wait "${pids[$((victim - 1))]}" 2>/dev/null || true
    sleep 8
    python3 - "$work" "$victim" "$t0" "$n" <<'PY'
import datetime
import re
import sys

work, victim, t0, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e9, int(sys.argv[4])
addr = f"127.0.0.{victim}:30035"
suspected, dead = [], []
for k in range(1, n + 1):
    if k == victim:
        continue
    first_suspected = first_dead = None
    with open(f"{work}/n{k}.log", errors="replace") as f:
        for line in f:
            if addr not in line:
                continue
            m = re.match(r"(\S+Z)", line)
            if not m:
                continue
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0
            if t < 0:
                continue
            if "is suspected" in line and first_suspected is None:
                first_suspected = t
            if "is dead" in line and first_dead is None:
                first_dead = t
    if first_suspected is not None:
        suspected.append(first_suspected)
    if first_dead is not None:
        dead.append(first_dead)
suspected.sort()
dead.sort()
if not dead:
    print(f"  kill -9 of node {victim}: no node logged it dead within 8 s")
    sys.exit()
print(f"  kill -9 of node {victim}: first suspected {suspected[0]:.2f} s, first dead "
      f"{dead[0]:.2f} s, dead on the median node {dead[len(dead) // 2]:.2f} s, on the last "
      f"{dead[-1]:.2f} s ({len(dead)} of {n - 1} nodes logged it)")
PY
}

sleep 8
echo "early (8 s after the start):"
for _ in 1 2 3; do fanout; done
kill_and_read "$n"
sleep 100
echo "settled (about two minutes after the start):"
for _ in 1 2 3; do fanout; done
kill_and_read "$((n - 1))"
sleep 5
perf record -a -F 1999 -o "$work/perf.data" -- bash -c \
    "for i in \$(seq 1 20); do '$bin' ctl --connect 127.0.0.1:30035 operation '$work/ops.json' --wait >/dev/null 2>&1; done; true" \
    >/dev/null 2>&1 || true
report() { perf report -i "$work/perf.data" --no-children --stdio "$@" 2>/dev/null | grep '%' | grep -v '^#' || true; }
echo "20 fan-outs, by command:"; report --sort comm | head -5 || true
echo "by binary:"; report --sort dso | head -5 || true
echo "by symbol:"; report --sort sym | head -15 || true
