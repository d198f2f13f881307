#!/usr/bin/env bash
# rateprofile.sh: where a server's extra CPU per request goes at a fixed
# arrival rate, against its closed loop. Profiles the running server PID
# (perf, cpu-clock samples, kernel and user) under `loadgen -c 32` and then
# under `loadgen --rate RATE`, and prints each shared object's and each
# symbol's CPU per request in both, by the largest growth.
#
#   bench/diagnostics/rateprofile.sh PID URL [RATE] [-H 'Name: value' ...]
#
# Needs `perf` (Debian's linux-perf) and a release loadgen
# (`cargo build --release -p wikiedge-bench`). The figures are perf's own:
# sampling adds to what each request costs, the same in both runs.
set -euo pipefail
pid=${1:?server pid}; url=${2:?url}; rate=${3:-2000}
shift $(( $# >= 3 ? 3 : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
loadgen=${LOADGEN:-$here/../../target/release/loadgen}
freq=4000 secs=5 out=$(mktemp -d)
for mode in closed fixed; do
  if [ $mode = closed ]; then args=(-c 32); else args=(--rate "$rate"); fi
  "$loadgen" "${args[@]}" -d $((secs + 6)) "$@" "$url" > "$out/$mode.load" 2>&1 &
  load=$!
  sleep 3
  # Requests answered while perf records: the load generator's count over
  # the whole run would include its warm-up.
  perf record -q -F $freq -g -p "$pid" -o "$out/$mode.data" -- sleep $secs 2>/dev/null
  wait $load
  perf report -i "$out/$mode.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null \
    | grep -v '^#' | grep -v '^$' > "$out/$mode.sym"
  samples=$(perf script -i "$out/$mode.data" -F pid 2>/dev/null | wc -l)
  rps=$(sed -n 's/^requests .*(\([0-9.]*\) req\/s)/\1/p' "$out/$mode.load")
  echo "$mode $samples $rps" >> "$out/runs"
done
python3 "$here/rateprofile.py" "$out" $freq $secs
rm -rf "$out"
