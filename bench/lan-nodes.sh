# Sourced by the bench scripts that start their own `lan` nodes on 127.0.0.1–N:
#   lan_nodes_init NAME N MIN   checks N (MIN..250), sets $bin (WERIFY_BIN, else
#                               bench/build.sh), $work (a fresh temp dir) and $pids, and
#                               kills every node by PID and removes $work on exit;
#   lan_node_start K ARGS…      starts node K (`werify node --bind 127.0.0.K --port 30035
#                               --profile lan ARGS…`, its log in $work/nK.log).
# The caller runs from the repository root with `set -euo pipefail`.

lan_nodes_init() {
    local name=$1 min=$3
    n=$2
    if ! [ "$n" -ge "$min" ] 2>/dev/null || [ "$n" -gt 250 ]; then
        echo "N must be $min–250" >&2
        exit 2
    fi
    bin=${WERIFY_BIN:-$(bench/build.sh)}
    work=$(mktemp -d "/tmp/werify-$name.XXXXXX")
    pids=()
    trap lan_nodes_cleanup EXIT
}

lan_nodes_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}

lan_node_start() {
    local k=$1
    shift
    "$bin" node --bind "127.0.0.$k" --port 30035 --data-dir "$work/n$k" --profile lan "$@" \
        >"$work/n$k.log" 2>&1 &
    pids+=($!)
}
