#!/usr/bin/env bash
# fractions.sh: up to what fraction of its own closed-loop maximum a server
# keeps its open-loop p99. Measures the running server PID's closed-loop
# maximum (`loadgen -c 32`, 5 s after 2 s of warm-up), then loads it at
# fixed rates of 70, 75, 80, 85 and 90% of that maximum (FRACTIONS to
# change them; 5 s after 2 s each), ROUNDS times, and prints for each rate
# the p99 (timed from each request's due time) and the server's CPU per
# request. The bench's (o) loads only 80%: this shows how far the edge is
# from it, for the host and for a static server alike.
#
#   bench/diagnostics/fractions.sh PID URL [ROUNDS] [-H 'Name: value' ...]
#
# To compare two servers, alternate them round by round:
#   for r in 1 2 3; do fractions.sh HOST_PID HOST_URL 1 -H "$AUTH"; fractions.sh BASE_PID BASE_URL 1; done
#
# Needs a release loadgen (`cargo build --release -p wikiedge-bench`).
set -euo pipefail
pid=${1:?server pid}; url=${2:?url}; rounds=${3:-1}
shift $(( $# >= 3 ? 3 : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
loadgen=${LOADGEN:-$here/../../target/release/loadgen}
fractions=${FRACTIONS:-0.70 0.75 0.80 0.85 0.90}

# FIELD of the loadgen's JSON on stdin, as the Python expression EXPR of `d`.
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

for r in $(seq "$rounds"); do
  max=$("$loadgen" -c 32 -d 5 --warmup 2 --json --server-pid "$pid" "$@" "$url" \
    | field 'round(d["requests_per_s"])')
  line="$(date -u +%H:%M:%S) pid $pid max $max req/s:"
  for f in $fractions; do
    rate=$(python3 -c "print(max(1, int($max * $f)))")
    point=$("$loadgen" --rate "$rate" -d 5 --warmup 2 --json --server-pid "$pid" "$@" "$url" \
      | field '"%.1f ms/%.0f µs" % (d["latency"]["p99_us"] / 1000, d["server_cpu"]["us_per_request"])')
    line="$line $f: $point;"
  done
  echo "$line"
done
