#!/usr/bin/env bash
# Idle traffic and CPU of a local werify mesh: starts N nodes of BIN on 127.0.0.1..N:PORT,
# lets them settle SETTLE (8) s, then counts the bytes they send (an nftables counter on UDP source
# port PORT, so run as root) and their CPU ticks over SECONDS. Removes its table and kills
# its nodes by PID at the end. Bytes are IP packet lengths (headers included).
# Usage: [SETTLE=8] bench/idle-traffic.sh BIN PORT N SECONDS   (e.g. "$(bench/build.sh)" 32104 32 20)
# A mesh of N nodes keeps opening first connections until every pair has probed once (about
# N × probe interval, 50 s at N = 64 on lan): use SETTLE=60 or more there, or the window
# counts those handshakes as idle traffic (two nodes exchanged 7.9 KB in the 0.6 s of their
# first contact, join included).
set -u
bin=$1; port=$2; n=$3; secs=$4
dir=$(mktemp -d); pids=()
tbl="werify_idle_$port"
nft add table inet $tbl
nft add chain inet $tbl out '{ type filter hook output priority 0; }'
nft add rule inet $tbl out udp sport $port counter
for i in $(seq 1 $n); do a=(); [ $i -gt 1 ] && a=(--join 127.0.0.1:$port); RUST_LOG=warn $bin node --bind 127.0.0.$i --port $port --data-dir $dir/n$i "${a[@]}" 2>/dev/null & pids+=($!); done
sleep "${SETTLE:-8}"
b0=$(nft list chain inet $tbl out | grep -o 'bytes [0-9]*' | awk '{print $2}')
k0=$(nft list chain inet $tbl out | grep -o 'packets [0-9]*' | awk '{print $2}')
c0=$(for p in "${pids[@]}"; do awk '{print $14+$15}' /proc/$p/stat; done | paste -sd+ | bc)
sleep $secs
b1=$(nft list chain inet $tbl out | grep -o 'bytes [0-9]*' | awk '{print $2}')
k1=$(nft list chain inet $tbl out | grep -o 'packets [0-9]*' | awk '{print $2}')
c1=$(for p in "${pids[@]}"; do awk '{print $14+$15}' /proc/$p/stat; done | paste -sd+ | bc)
echo "bytes/node/s: $(echo "($b1-$b0)/$n/$secs" | bc -l | cut -c1-7)  packets/node/s: $(echo "($k1-$k0)/$n/$secs" | bc -l | cut -c1-5)  cpu ticks all nodes: $((c1-c0)) over ${secs}s"
for p in "${pids[@]}"; do kill -9 $p; done; wait 2>/dev/null
nft delete table inet $tbl; rm -rf $dir
