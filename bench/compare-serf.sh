#!/usr/bin/env bash
# Side-by-side benchmark: N HashiCorp Serf agents vs N werify nodes on 127.0.0.1..N
# (BENCH_NET=127.0.1 puts them on 127.0.1.1..N; past 250 nodes the next /24s are used).
#
#   bench/compare-serf.sh N [--rounds 3] [--queries 5] [--kills 2] [--idle 60] [--workers 4]
#
# Builds werify (bench/build.sh, the release build users get; WERIFY_BIN=path uses another
# build), then alternates the two systems (Serf, werify, Serf, werify, ...; --rounds
# pairs, at least 3 by default) and measures per run: join convergence (all at once, and
# one host after another: --join-patterns), fan-out
# (serf query vs werify ctl operation --wait, a file_exists check), failure detection after
# kill -9, RSS per node, CPU seconds of all nodes and bytes sent per node over an idle window
# (nftables counters on the output hook). Prints medians and werify/Serf ratios as a Markdown
# table, writes raw samples to bench/results/. Needs root (nftables), serf, python3.
# All traffic stays on 127.0.0.0/8. The measuring lives in bench/serfbench.py; this script
# is the safety net: on any exit it kills every process recorded in the PID file (by PID,
# after checking it is still one of ours) and deletes the nftables tables.
set -euo pipefail

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
n="$1"
shift
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 2 ] || [ "$n" -gt 1000 ]; then
    echo "N must be a number from 2 to 1000 (one address per node), got '$n'" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
net="${BENCH_NET:-127.0.0}"
if ! [[ "$net" =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}$ ]]; then
    echo "BENCH_NET must be three bytes of a loopback address such as 127.0.1, got '$net'" >&2
    exit 2
fi
port="${WERIFY_BENCH_PORT:-30035}"

for tool in serf nft python3 ss; do
    command -v "$tool" >/dev/null || {
        echo "missing '$tool': apt-get install -y serf nftables python3 iproute2" >&2
        exit 2
    }
done
[ "$(id -u)" = 0 ] || {
    echo "run as root: the byte counters are an nftables table" >&2
    exit 2
}

# Refuse to start if something already uses the ports on our addresses.
busy=$(ss -Hlnu; ss -Hlnt) || true
# Node k's address: $net.k up to 250, then on in the next /24s (as bench/serfbench.py).
node_ip() {
    local block=$((($1 - 1) / 250)) host=$((($1 - 1) % 250 + 1))
    echo "${net%.*}.$((${net##*.} + block)).$host"
}
for k in $(seq 1 "$n"); do
    ip=$(node_ip "$k")
    for p in "$port" 7946 7373; do
        if grep -qF "$ip:$p " <<<"$busy"; then
            echo "$ip:$p is already in use (another mesh or serf agent?); stop it" \
                "or set WERIFY_BENCH_PORT for werify" >&2
            exit 2
        fi
    done
done

# The release build (bench/build.sh); WERIFY_BIN overrides (then nothing is built).
bin="${WERIFY_BIN:-$("$root/bench/build.sh")}"
[ -x "$bin" ] || {
    echo "no werify binary at $bin: build it with bench/build.sh or set WERIFY_BIN" >&2
    exit 2
}

work=$(mktemp -d -t werify-bench.XXXXXX)
pidfile="$work/pids"
: >"$pidfile"
table="werify_bench_$$"
helper_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$helper_pid" ] && kill -0 "$helper_pid" 2>/dev/null; then
        kill "$helper_pid" 2>/dev/null || true
        wait "$helper_pid" 2>/dev/null || true
    fi
    # Anything the helper started and did not end (it normally ends everything itself).
    while read -r pid; do
        [ -n "$pid" ] || continue
        [ -r "/proc/$pid/cmdline" ] || continue
        cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || continue
        case "$cmd" in
        serf\ * | "$bin"\ *) kill -9 "$pid" 2>/dev/null || true ;;
        esac
    done <"$pidfile"
    for sys in serf werify; do
        nft delete table inet "${table}_$sys" 2>/dev/null || true
    done
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$rc" != 0 ]; then
        echo "logs and data dirs kept in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root/bench/results"
stamp=$(date +%Y%m%d-%H%M%S)
json="$root/bench/results/n$n-$stamp.json"

echo "# werify vs Serf, N=$n, $(date -Iseconds)"
echo "# machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, $(uname -sr)"
src_rev=$(git -C "$root" log -1 --format=%h -- src Cargo.toml Cargo.lock 2>/dev/null || echo unknown)
echo "# serf: $(serf version | head -1); werify: src at $src_rev, tree at $(git -C "$root" rev-parse --short HEAD 2>/dev/null) ($bin)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$root/bench/serfbench.py" "$n" --werify "$bin" --root "$root" --work "$work" \
    --pidfile "$pidfile" --table "$table" --json-out "$json" --port "$port" --net "$net" "$@" &
helper_pid=$!
wait "$helper_pid"
helper_pid=""
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
