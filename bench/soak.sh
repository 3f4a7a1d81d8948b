#!/usr/bin/env bash
# Soak test (not part of CI; bounded in count and time; loopback only).
#
# Starts 16 `werify node` processes on 127.0.0.1-16 (one port), submits 1,000 operations
# from 4 parallel `werify ctl` clients over a few minutes while one node is killed (-9)
# and restarted every 20 s, then checks:
#   - every handle answers a `get` (through a node other than its coordinator),
#   - every operation ended, and every host that stayed up around it answered every check,
#   - VmRSS of every node at start and end, split into RssAnon (heap, stacks) and RssFile
#     (mapped binary and libraries), and of the never-killed nodes every KILL_EVERY sec
#     (VmRSS and RssAnon, with the number of operations submitted so far), so the summary
#     can say how much they grew per 100 operations over the last third of the load and
#     what they hold when the load stops and SOAK_SETTLE s later ("end").
#   - no panic in any node log.
# Prints a summary (and writes it to $SOAK_DIR/summary.txt). Kills only the PIDs it
# started, on exit.
#
# Knobs: SOAK_PORT (31900), SOAK_OPS (1000), SOAK_CLIENTS (4), SOAK_NODES (16),
#        SOAK_KILL_EVERY (20 s), SOAK_PAUSE (0.4 s between submits per client),
#        SOAK_SETTLE (60 s after the last submission before the end reading),
#        SOAK_DIR (a fresh temp dir), WERIFY_BIN (target/release/werify, built if missing),
#        SOAK_ALT_BIN (unset: if set, the even-numbered nodes run this binary instead, so two
#        builds see the same load side by side; the summary then shows both groups' trends).
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${SOAK_PORT:-31900}
OPS=${SOAK_OPS:-1000}
CLIENTS=${SOAK_CLIENTS:-4}
NODES=${SOAK_NODES:-16}
KILL_EVERY=${SOAK_KILL_EVERY:-20}
PAUSE=${SOAK_PAUSE:-0.4}
SETTLE=${SOAK_SETTLE:-60}
DEADLINE=20s
# Only the last quarter of the nodes is ever killed, so the others show a clean RSS trend.
FIRST_VICTIM=$(( NODES - NODES / 4 + 1 ))
BIN=${WERIFY_BIN:-target/release/werify}
ALT_BIN=${SOAK_ALT_BIN:-}
DIR=${SOAK_DIR:-$(mktemp -d /tmp/werify-soak.XXXXXX)}
mkdir -p "$DIR"
if [[ ! -x $BIN ]]; then
    cargo build --release --quiet
fi
echo "soak: $NODES nodes on 127.0.0.1-$NODES:$PORT, $OPS operations from $CLIENTS clients, kill every ${KILL_EVERY}s; dir $DIR"

now_ms() { date +%s%3N; }

declare -A PIDS
start_node() {
    local i=$1
    local args=(node --bind "127.0.0.$i" --port "$PORT" --data-dir "$DIR/node$i" --profile local)
    if (( i > 1 )); then args+=(--join "127.0.0.1:$PORT"); fi
    mkdir -p "$DIR/node$i"
    local bin=$BIN
    if [[ -n $ALT_BIN ]] && (( i % 2 == 0 )); then bin=$ALT_BIN; fi
    RUST_LOG=info "$bin" "${args[@]}" </dev/null >/dev/null 2>>"$DIR/node$i.log" &
    PIDS[$i]=$!
    # Not a job of this shell any more: no "Killed" line for every kill -9 below.
    disown "${PIDS[$i]}" 2>/dev/null || true
    echo "${PIDS[$i]}" >"$DIR/node$i.pid"
}

KILLER_PID=""
CLIENT_PIDS=()
cleanup() {
    [[ -n $KILLER_PID ]] && kill "$KILLER_PID" 2>/dev/null || true
    for p in "${CLIENT_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for i in $(seq 1 "$NODES"); do
        [[ -f $DIR/node$i.pid ]] && kill -9 "$(cat "$DIR/node$i.pid")" 2>/dev/null || true
    done
}
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Operations submitted so far (one line per handle in the clients' files).
ops_done() { cat "$DIR"/handles*.txt 2>/dev/null | wc -l; }
# One trend row: "ms ops VmRSS... RssAnon..." of the never-killed nodes.
trend_row() {
    local line i pid anon=""
    line="$(now_ms) $(ops_done)"
    for i in $(seq 1 $(( FIRST_VICTIM - 1 ))); do
        pid=$(cat "$DIR/node$i.pid")
        line+=" $(rss_kib "$pid")"
        anon+=" $(anon_kib "$pid")"
    done
    echo "$line$anon"
}
# "VmRSS RssAnon RssFile" in KiB (0 0 0 if the process is gone).
rss_split() {
    local s
    s=$(awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s ", $2}' "/proc/$1/status" 2>/dev/null)
    echo "${s:-0 0 0}"
}

active_count() {
    "$BIN" ctl --connect "127.0.0.$1:$PORT" --timeout 3s listactive 2>/dev/null | grep -c "^127\." || true
}

wait_converged() {
    local limit=$1 t0=$SECONDS
    while (( SECONDS - t0 < limit )); do
        local ok=1
        for i in $(seq 1 "$NODES"); do
            [[ $(active_count "$i") == "$NODES" ]] || { ok=0; break; }
        done
        (( ok )) && { echo $(( SECONDS - t0 )); return 0; }
        sleep 1
    done
    return 1
}

for i in $(seq 1 "$NODES"); do start_node "$i"; done
if ! took=$(wait_converged 120); then echo "soak: mesh did not converge" >&2; exit 1; fi
echo "soak: converged in ${took}s"
for i in $(seq 1 "$NODES"); do echo "$i ${PIDS[$i]} $(rss_split "${PIDS[$i]}")" >>"$DIR/rss-start.txt"; done

cat >"$DIR/ops.json" <<'EOF'
{
  "hostname_exists": {"type": "file_exists", "path": "/etc/hostname"},
  "hosts_has_localhost": {"type": "file_contains", "path": "/etc/hosts", "check": "localhost"},
  "no_such_file": {"type": "file_exists", "path": "/nonexistent/werify-soak", "expect": false}
}
EOF

# Killer: every KILL_EVERY seconds, kill -9 one of the last nodes and restart it 2 s later.
(
    victim=$FIRST_VICTIM
    while true; do
        sleep "$KILL_EVERY"
        # RSS of the nodes that are never killed, for the trend.
        trend_row >>"$DIR/rss-trend.txt"
        pid=$(cat "$DIR/node$victim.pid")
        echo "kill $victim $(now_ms)" >>"$DIR/events.txt"
        kill -9 "$pid" 2>/dev/null || true
        sleep 2
        start_node "$victim"
        echo "start $victim $(now_ms)" >>"$DIR/events.txt"
        victim=$(( victim + 1 > NODES ? FIRST_VICTIM : victim + 1 ))
    done
) &
KILLER_PID=$!

# Clients: each submits its share, round-robin over the nodes; a failed submit is retried
# on the next node (at most 5 tries), and counted.
client() {
    local c=$1 n=$2 i node tries out
    for (( i = 0; i < n; i++ )); do
        node=$(( (c * 5 + i) % NODES + 1 ))
        for (( tries = 0; tries < 5; tries++ )); do
            if out=$("$BIN" ctl --connect "127.0.0.$node:$PORT" --timeout 10s --output json \
                operation "$DIR/ops.json" --deadline "$DEADLINE" 2>>"$DIR/client$c.err"); then
                echo "$(now_ms) $node $out" | tr -d '\n' >>"$DIR/handles$c.txt"
                echo >>"$DIR/handles$c.txt"
                break
            fi
            echo "retry" >>"$DIR/client$c.retries"
            node=$(( node % NODES + 1 ))
        done
        sleep "$PAUSE"
    done
}
t_submit=$SECONDS
for c in $(seq 0 $(( CLIENTS - 1 ))); do
    share=$(( OPS / CLIENTS + (c < OPS % CLIENTS ? 1 : 0) ))
    client "$c" "$share" &
    CLIENT_PIDS+=($!)
done
for p in "${CLIENT_PIDS[@]}"; do wait "$p"; done
CLIENT_PIDS=()
submit_secs=$(( SECONDS - t_submit ))
t_load_end=$SECONDS
trend_row >"$DIR/rss-load-end.txt"
echo "soak: submissions done in ${submit_secs}s"

# Stop killing; let the last restart rejoin and every operation pass its deadline.
kill "$KILLER_PID" 2>/dev/null || true
wait "$KILLER_PID" 2>/dev/null || true
KILLER_PID=""
for i in $(seq "$FIRST_VICTIM" "$NODES"); do
    pid=$(cat "$DIR/node$i.pid")
    kill -0 "$pid" 2>/dev/null || { start_node "$i"; echo "start $i $(now_ms)" >>"$DIR/events.txt"; }
done
if ! took=$(wait_converged 120); then echo "soak: mesh did not re-converge" >&2; fi
# Every operation has passed its deadline (20 s) by then; the "end" reading is taken
# SETTLE s after the load stopped, to tell memory held under load from memory kept.
(( SECONDS - t_load_end < SETTLE )) && sleep $(( SETTLE - (SECONDS - t_load_end) ))
for i in $(seq 1 "$NODES"); do
    pid=$(cat "$DIR/node$i.pid")
    echo "$i $pid $(rss_split "$pid")" >>"$DIR/rss-end.txt"
done

cat "$DIR"/handles*.txt >"$DIR/all-handles.txt"
python3 - "$BIN" "$PORT" "$NODES" "$DIR" "$submit_secs" "$SETTLE" "$ALT_BIN" <<'EOF' | tee "$DIR/summary.txt"
import json, subprocess, sys, glob, os, statistics
bin_, port, nodes, d, submit_secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
settle, alt_bin = int(sys.argv[6]), sys.argv[7]
events = {}
for line in open(f"{d}/events.txt") if os.path.exists(f"{d}/events.txt") else []:
    kind, node, ms = line.split()
    events.setdefault(f"127.0.0.{node}:{port}", []).append((kind, int(ms)))
subs = []
for line in open(f"{d}/all-handles.txt"):
    ms, node, doc = line.split(" ", 2)
    subs.append((int(ms), int(node), json.loads(doc)))
retries = sum(len(open(f).read().split()) for f in glob.glob(f"{d}/client*.retries"))
MARGIN = 15_000  # a restarted node may take this long to be alive again in every view
def disturbed(host, start, end):
    return any(start - MARGIN <= ms <= end + 1_000 for _, ms in events.get(host, []))
unanswered, running, missing, durations, targeted, answered_hosts, failed_hosts = [], 0, [], [], [], 0, 0
coordinator_restarted = 0
for k, (ms, node, sub) in enumerate(subs):
    handle = sub["handle"]
    via = (node + k) % nodes + 1  # usually not the coordinator: exercises forwarding
    if via == node:
        via = via % nodes + 1
    r = subprocess.run([bin_, "ctl", "--connect", f"127.0.0.{via}:{port}", "--timeout", "20s",
                        "--output", "json", "get", handle], capture_output=True, text=True)
    if r.returncode != 0:
        unanswered.append((handle, via, r.stderr.strip()))
        continue
    rec = json.loads(r.stdout)
    if rec["running"]:
        running += 1
        continue
    durations.append(rec["took_ms"])
    targeted.append(len(rec["hosts"]))
    if disturbed(rec["coordinator"], rec["submitted_unix_ms"], rec["ended_unix_ms"]):
        coordinator_restarted += 1
        continue
    for h in rec["hosts"]:
        if h["status"] == "answered":
            answered_hosts += 1
            if sorted(h["checks"]) != sorted(rec["checks"]):
                missing.append((handle, h["host"], "missing check results"))
        else:
            failed_hosts += 1
            if not disturbed(h["host"], rec["submitted_unix_ms"], rec["ended_unix_ms"]):
                missing.append((handle, h["host"], h["error"]))
    hosts = {h["host"] for h in rec["hosts"]}
    for i in range(1, nodes + 1):
        host = f"127.0.0.{i}:{port}"
        if host not in hosts and not disturbed(host, rec["submitted_unix_ms"], rec["ended_unix_ms"]):
            missing.append((handle, host, "not targeted"))
def rss(name):
    # node -> (pid, VmRSS, RssAnon, RssFile), KiB
    return {int(l.split()[0]): tuple(map(int, l.split()[1:5])) for l in open(f"{d}/{name}")}
start, end = rss("rss-start.txt"), rss("rss-end.txt")
panics = {os.path.basename(f): sum("panic" in l.lower() for l in open(f, errors="replace"))
          for f in sorted(glob.glob(f"{d}/node*.log"))}
kills = sum(1 for v in events.values() for k, _ in v if k == "kill")
print(f"operations submitted: {len(subs)} in {submit_secs}s ({retries} submit retries on another node)")
print(f"node kills (-9) and restarts: {kills}")
print(f"handles answering get: {len(subs) - len(unanswered)}/{len(subs)}; still running: {running}")
for u in unanswered[:10]:
    print("  unanswered:", u)
if durations:
    q = statistics.quantiles(durations, n=20)
    print(f"operation took ms: median {statistics.median(durations):.0f}, p95 {q[18]:.0f}, max {max(durations)}")
    print(f"hosts per record: min {min(targeted)}, max {max(targeted)}; host results answered {answered_hosts}, "
          f"failed {failed_hosts}")
print(f"operations whose coordinator was killed meanwhile (hosts not required to answer): {coordinator_restarted}")
print(f"results missing for an undisturbed host: {len(missing)}")
for m in missing[:10]:
    print("  missing:", m)
print("RSS KiB per node (start -> end; * = restarted during the run), and its RssAnon + RssFile:")
for i in sorted(start):
    (p0, r0, a0, f0), (p1, r1, a1, f1) = start[i], end.get(i, (0, 0, 0, 0))
    mark = "*" if p0 != p1 else " "
    print(f"  node{i:<2} {r0:>7} -> {r1:>7} {mark}  anon {a0:>6} -> {a1:>6}, file {f0:>6} -> {f1:>6}")
steady = [(start[i][1], end[i][1]) for i in start if i in end and start[i][0] == end[i][0]]
if steady:
    ratios = sorted(e / s for s, e in steady if s)
    print(f"never-killed nodes: median end/start RSS ratio {statistics.median(ratios):.2f} "
          f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})")
def trend(label, cols):
    # Rows: ms, operations submitted, VmRSS of each never-killed node, then their RssAnon;
    # cols picks the nodes (0-based among the never-killed ones).
    rows = [list(map(int, l.split())) for l in open(f"{d}/rss-trend.txt")]
    k = (len(rows[0]) - 2) // 2
    vm = lambda r: statistics.median(r[2 + c] for c in cols)
    anon = lambda r: statistics.median(r[2 + k + c] for c in cols)
    t0 = rows[0][0]
    print(f"RSS trend of never-killed nodes{label} (median VmRSS KiB, every kill interval):",
          " ".join(f"{(r[0] - t0) / 1000:.0f}s:{vm(r):.0f}" for r in rows))
    print("  the same, median RssAnon KiB:",
          " ".join(f"{(r[0] - t0) / 1000:.0f}s:{anon(r):.0f}" for r in rows))
    load_end = [list(map(int, l.split())) for l in open(f"{d}/rss-load-end.txt")][0]
    third = rows[len(rows) * 2 // 3:] + [load_end]
    if len(third) >= 2 and third[-1][1] > third[0][1]:
        per100 = lambda f: (f(third[-1]) - f(third[0])) * 100 / (third[-1][1] - third[0][1])
        print(f"growth over the last third of the load (operations {third[0][1]} -> "
              f"{third[-1][1]}): VmRSS {per100(vm):+.1f} KiB, RssAnon {per100(anon):+.1f} KiB "
              f"per 100 operations (median node)")
    ends = [end[c + 1] for c in cols if c + 1 in end and start[c + 1][0] == end[c + 1][0]]
    if ends:
        print(f"never-killed nodes at the end of the load: median VmRSS {vm(load_end):.0f}, "
              f"RssAnon {anon(load_end):.0f} KiB; {settle} s later: VmRSS "
              f"{statistics.median(e[1] for e in ends):.0f}, RssAnon "
              f"{statistics.median(e[2] for e in ends):.0f} KiB")
if os.path.exists(f"{d}/rss-trend.txt"):
    steady_n = len(open(f"{d}/rss-trend.txt").readline().split()) // 2 - 1
    if alt_bin:
        trend(f" running {bin_} (odd)", [c for c in range(steady_n) if (c + 1) % 2 == 1])
        trend(f" running {alt_bin} (even)", [c for c in range(steady_n) if (c + 1) % 2 == 0])
    else:
        trend("", list(range(steady_n)))
print(f"panics in logs: {sum(panics.values())}")
ok = not unanswered and not missing and running == 0 and sum(panics.values()) == 0
print("SOAK", "PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
EOF
