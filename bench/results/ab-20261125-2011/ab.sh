#!/bin/bash
# A/B of join convergence at N=64: werify-only runs, alternating two builds.
cd /work/main
for i in 1 2 3 4; do
  for v in A B; do
    if [ $v = A ]; then b=/tmp/werify-soak3-before; else b=/work/main/target/release/werify; fi
    out=$(WERIFY_BIN=$b KEEP_WORK=0 bash bench/compare-serf.sh 64 --systems werify --rounds 1 --idle 5 --settle 1 --queries 1 --kills 1 2>&1)
    echo "$v $i $(echo "$out" | grep -E 'converged 64/64|kill -9' | sed 's/^\[[0-9:]*\] //' | tr '\n' ' ')"
  done
done
