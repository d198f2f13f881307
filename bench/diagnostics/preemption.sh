#!/usr/bin/env bash
# preemption.sh: what the load generator's wake-ups cost a server that
# shares the cores with it. Loads the running server PID in a closed loop
# (`loadgen -c 32`) with the load threads at the normal scheduling policy
# and then at SCHED_BATCH (`chrt -b 0`: the same share of the CPU, but a
# load thread woken by a response no longer preempts the thread running),
# alternating ROUNDS times, and prints for each run the requests/s, p99,
# the server's and the load generator's CPU per request, and the server's
# involuntary context switches per request (its threads and its child
# processes' threads, as nginx's workers are).
#
#   bench/diagnostics/preemption.sh PID URL [ROUNDS] [-H 'Name: value' ...]
#
# Needs `chrt` (util-linux) and a release loadgen
# (`cargo build --release -p wikiedge-bench`).
set -euo pipefail
pid=${1:?server pid}; url=${2:?url}; rounds=${3:-3}
shift $(( $# >= 3 ? 3 : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
loadgen=${LOADGEN:-$here/../../target/release/loadgen}

# The server's involuntary context switches: its threads and those of its
# children, which is where nginx's workers run.
preempted() {
  local p t n=0
  for p in "$pid" $(cat /proc/"$pid"/task/*/children 2>/dev/null); do
    for t in /proc/"$p"/task/*/status; do
      n=$(( n + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t" 2>/dev/null || echo 0) ))
    done
  done
  echo "$n"
}

printf '%-6s %-6s %10s %9s %12s %12s %16s\n' round policy req/s p99 "server µs" "loadgen µs" "preempted/req"
for r in $(seq "$rounds"); do
  for policy in normal batch; do
    run=("$loadgen" -c 32 -d 5 --warmup 1 --server-pid "$pid" "$@" "$url")
    [ "$policy" = batch ] && run=(chrt -b 0 "${run[@]}")
    # Counted over the whole run, warm-up included: per request, the
    # warm-up's requests are added to the measured ones.
    before=$(preempted)
    out=$("${run[@]}" 2>&1)
    after=$(preempted)
    rps=$(sed -n 's/^requests .*(\([0-9.]*\) req\/s)/\1/p' <<< "$out")
    p99=$(grep -oP 'p99 \K\S+' <<< "$out" | head -1)
    server=$(grep -oP 'server CPU\s+\K\d+' <<< "$out" || echo -)
    load=$(grep -oP 'loadgen CPU\s+\K\d+' <<< "$out" || echo -)
    per=$(python3 -c "print(f'{($after - $before) / ($rps * 6):.3f}')")
    printf '%-6s %-6s %10s %9s %12s %12s %16s\n' "$r" "$policy" "$rps" "$p99" "$server" "$load" "$per"
  done
done
