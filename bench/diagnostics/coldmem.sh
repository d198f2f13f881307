#!/usr/bin/env bash
# coldmem.sh: what a start that compiles costs the server's memory, against
# a start that maps. Starts `wikiedge up` on an empty compile cache, then
# again on the cache that start filled, and prints for each: the time to
# its first answer, its peak resident memory (VmHWM) and its resident
# memory after IDLE seconds without requests.
#
#   BIN=target/release/wikiedge IDLE=8 PORT=18097 bench/diagnostics/coldmem.sh
#
# Run from the repository root, after `wikiedge build` (or the bench's).
set -euo pipefail
bin=${BIN:-target/release/wikiedge}
idle=${IDLE:-8}
port=${PORT:-18097}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
for run in "empty cache" "warm cache"; do
  state=$(mktemp -d)
  WIKIEDGE_CACHE_DIR=$cache "$bin" up --listen "127.0.0.1:$port" --state-dir "$state" --quiet \
    > "$state.log" 2>&1 &
  pid=$!
  t0=$(date +%s%N)
  for _ in $(seq 1200); do
    curl -s -o /dev/null "127.0.0.1:$port/" && break
    kill -0 $pid 2>/dev/null || { cat "$state.log"; exit 1; }
    sleep 0.05
  done
  t1=$(date +%s%N)
  peak=$(kib $pid VmHWM)
  sleep "$idle"
  rss=$(kib $pid VmRSS)
  echo "$run: ready after $(( (t1 - t0) / 1000000 )) ms, VmHWM $((peak / 1024)) MiB, after ${idle} s idle $((rss / 1024)) MiB"
  kill $pid
  wait $pid 2>/dev/null || true
  rm -rf "$state" "$state.log"
done
