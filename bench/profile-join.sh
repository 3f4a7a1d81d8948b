#!/usr/bin/env bash
# CPU profile of a mass join: N plain `lan` nodes on 127.0.0.1–N (default 128), then every
# node k > 1 runs `werify ctl add` of node 1 at the same moment, under `perf record -a -g`
# for 15 s. Prints how many adds failed, the profile by command and by binary, and the
# samples grouped by what they are (idle, the kernel, ring's crypto, quinn, rustls,
# tokio, CBOR, allocation and copies, werify's own code).
# Usage, as root, in a network namespace of its own (no other mesh's ports in the way):
#   ip netns exec wbench bench/profile-join.sh [N]
# Needs perf. Builds werify with bench/build.sh unless WERIFY_BIN names a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lan-nodes.sh
lan_nodes_init profile-join "${1:-128}" 2
for k in $(seq 1 "$n"); do lan_node_start "$k"; done
sleep 4
perf record -a -g -F 999 -o "$work/perf.data" -- sleep 15 >/dev/null 2>&1 &
perf_pid=$!
sleep 0.3
adds=()
for k in $(seq 2 "$n"); do
    "$bin" ctl --connect "127.0.0.$k:30035" add 127.0.0.1:30035 >"$work/add$k.out" 2>&1 &
    adds+=($!)
done
wait "$perf_pid"
for p in "${adds[@]}"; do wait "$p" 2>/dev/null || true; done
echo "adds that failed: $(grep -L '^Added host' "$work"/add*.out | wc -l) of $((n - 1))"
report() { perf report -i "$work/perf.data" --no-children --stdio -g none "$@" 2>/dev/null | grep '%' | grep -v '^#'; }
echo "by command:"; report --sort comm | head -5
echo "by binary:"; report --sort dso | head -6
report --sort sym >"$work/syms.txt"
python3 - "$work/syms.txt" <<'PY'
import re
import sys

groups = {
    "idle": r"pv_native_safe_halt|default_idle|cpuidle",
    "kernel": r"^\[k\]",
    "ring (crypto)": r"\] <?(ring_core|ring::|fiat_|fe4?_|ge_|x25519|ed25519|sha512|aes_|gcm_|poly1305)",
    "quinn": r"quinn",
    "rustls": r"rustls",
    "tokio, mio": r"tokio|mio::",
    "ciborium, serde": r"ciborium|serde",
    "allocation, copies": r"malloc|free|memmove|memcpy|memset|_int_|realloc|alloc::",
    "werify": r"werify::",
}
total = {k: 0.0 for k in groups}
other = 0.0
for line in open(sys.argv[1]):
    m = re.match(r"\s*([\d.]+)%\s+(.*)", line)
    if not m:
        continue
    pct, sym = float(m.group(1)), m.group(2)
    for name, pattern in groups.items():
        if re.search(pattern, sym, re.I):
            total[name] += pct
            break
    else:
        other += pct
print("samples by what they are (% of all samples, both cores):")
for name, pct in total.items():
    print(f"  {name:20s} {pct:5.1f} %")
print(f"  {'user space, other':20s} {other:5.1f} %")
PY
