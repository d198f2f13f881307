#!/usr/bin/env bash
# Count the instructions the host process (host code, wasmtime, SQLite,
# libc and the guests' compiled code, all threads; not the kernel) spends
# per request, under valgrind's callgrind, for one or more manifests in turn.
#
#   bench/instructions.sh [options] NAME=MANIFEST[@HOST] [NAME=MANIFEST[@HOST] ...]
#
# Each NAME runs MANIFEST under HOST (default: --wikiedge), so builds of the
# components (two manifests) or of the host (two binaries) can be compared.
#   --component C   the component kept from each manifest (default articles);
#                   its routes and dependencies are kept, the rest dropped,
#                   so that valgrind compiles only what the request runs
#   --path P        the request (default /v2/articles/Anarchism)
#   --seconds S     measured seconds per manifest (default 15)
#   --warmup S      unmeasured load first (default 8)
#   --connections N (default 4)
#   --rounds R      manifests alternated R times (default 1)
#   --dump FILE     imported first (default
#                   ../shared/fixtures/dumps/enwiki-sample-206-pages.xml.bz2)
#   --wikiedge BIN  the host (default target/release/wikiedge)
#   --loadgen BIN   (default target/release/loadgen)
#
# Why: CPU time per request on this kind of shared machine swings by a
# third within minutes, more than most changes move it. An instruction
# count does not: two runs of one build agree within about 0.5%. It is a
# proxy, not a time: it leaves out the kernel, and `rep movsb` (glibc's
# memcpy for large copies) counts one instruction per byte, so copies are
# reported apart ("copy") from the rest ("other"). Threads run one at a
# time under valgrind, so work shared between concurrent requests (group
# commits) is shared less than natively. Compare builds with it; do not
# read it as a speed.
#
# Needs valgrind (Debian: `apt-get install valgrind`), python3 and curl;
# build first with `cargo build --release -p wikiedge -p wikiedge-bench`.
# The first run of a new component build compiles it under valgrind (minutes;
# cached in target/instructions-cache). Prints one line per run and a
# summary; raw callgrind files stay in the printed temp dir with --keep.
set -euo pipefail

component=articles
path=/v2/articles/Anarchism
seconds=15
warmup=8
conns=4
rounds=1
dump=../shared/fixtures/dumps/enwiki-sample-206-pages.xml.bz2
bin=target/release/wikiedge
loadgen=target/release/loadgen
keep=0
runs=()
while [ $# -gt 0 ]; do
    case "$1" in
    --component) component=$2; shift 2 ;;
    --path) path=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dump) dump=$2; shift 2 ;;
    --wikiedge) bin=$2; shift 2 ;;
    --loadgen) loadgen=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,39p' "$0"; exit 0 ;;
    *=*) runs+=("$1"); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ ${#runs[@]} -gt 0 ] || { echo "give at least one NAME=MANIFEST" >&2; exit 2; }
command -v valgrind > /dev/null || { echo "valgrind not found (apt-get install valgrind)" >&2; exit 2; }
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
for f in "$bin" "$loadgen" "$dump"; do
    [ -e "$f" ] || { echo "$f not found" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/wikiedge-instructions.XXXXXX)
cache="$root/target/instructions-cache"
pids=()
trimmed=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
    for t in "${trimmed[@]}"; do rm -f "$t"; done
    [ "$keep" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

export SPIN_VARIABLE_ADMIN_API_KEY=instructions-admin-key-0123456789
export SPIN_VARIABLE_PLANS='[{"name": "free", "monthly": {"ondemand": 5000, "snapshot": 15, "chunk": 1500}, "burst_per_second": 10}, {"name": "paid", "monthly": {"ondemand": 1099511627776, "snapshot": 1099511627776, "chunk": 1099511627776, "realtime": 1099511627776}, "burst_per_second": 1099511627776}]'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

# Keeps `component`, its routes and what it depends on; the copy sits beside
# the manifest so that relative paths still resolve.
trim() { # manifest, output
    python3 - "$1" "$component" "$2" << 'EOF'
import re, sys
src, keep, out = sys.argv[1:]
blocks = re.split(r'(?m)^(?=\[)', open(src).read())
kept = []
for b in blocks:
    head = b.split('\n', 1)[0]
    if head.startswith('[[trigger.'):
        if re.search(r'(?m)^component\s*=\s*"%s"' % re.escape(keep), b):
            kept.append(b)
        continue
    m = re.match(r'\[component\.([A-Za-z0-9_-]+)', head)
    if m and m.group(1) != keep:
        continue
    kept.append(b)
open(out, 'w').write(''.join(kept))
EOF
}

wait_ready() { # url, pid
    for _ in $(seq 1 3000); do
        kill -0 "$2" 2> /dev/null || return 1
        curl -s -o /dev/null -H "authorization: $bearer" "$1" && return 0
        sleep 0.2
    done
    return 1
}

echo "state, logs and callgrind files: $tmp"
"$bin" import "$dump" --project enwiki --state-dir "$tmp/state" > "$tmp/import.log" 2>&1

# An account and a token, made once on a native start of the full manifest.
first=${runs[0]#*=}
first=${first%%@*}
"$bin" up --from "$first" --listen "127.0.0.1:$port" --state-dir "$tmp/state" --quiet > "$tmp/native.log" 2>&1 &
pids+=($!)
bearer=
wait_ready "$base/v1/quota" "${pids[-1]}" || { echo "the host did not start: $tmp/native.log" >&2; exit 1; }
curl -sf -X POST -H 'content-type: application/json' -H "x-admin-key: $SPIN_VARIABLE_ADMIN_API_KEY" \
    -d '{"username":"instructions","password":"instructions-password-0123","plan":"paid"}' \
    "$base/v1/admin/accounts" > /dev/null
bearer="Bearer $(curl -sf -X POST -H 'content-type: application/json' \
    -d '{"username":"instructions","password":"instructions-password-0123"}' "$base/v1/login" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
kill "${pids[-1]}"; wait "${pids[-1]}" 2> /dev/null || true

results=()
for round in $(seq 1 "$rounds"); do
    for run in "${runs[@]}"; do
        name=${run%%=*}
        spec=${run#*=}
        host=$bin
        if [[ $spec == *@* ]]; then
            host=${spec#*@}
            spec=${spec%%@*}
        fi
        manifest="$(dirname "$spec")/.instructions-$$-$name.toml"
        trimmed+=("$manifest")
        trim "$spec" "$manifest"
        out="$tmp/$name-$round"
        mkdir -p "$out"
        valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
            --dump-instr=no --dump-line=no \
            "$host" up --from "$manifest" --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
            --quiet --cache-dir "$cache" > "$out/host.log" 2>&1 &
        vpid=$!
        pids+=($vpid)
        wait_ready "$base$path" "$vpid" || { echo "$name: the host did not start: $out/host.log" >&2; exit 1; }
        "$loadgen" -c "$conns" --warmup 0 -d "$warmup" -H "authorization: $bearer" "$base$path" > /dev/null 2>&1
        callgrind_control -z "$vpid" > /dev/null 2>&1
        "$loadgen" -c "$conns" --warmup 0 -d "$seconds" -H "authorization: $bearer" "$base$path" > "$out/load.txt" 2>&1
        callgrind_control -d "$vpid" > /dev/null 2>&1
        kill "$vpid"; wait "$vpid" 2> /dev/null || true
        line=$(python3 - "$out" "$name" << 'EOF'
import glob, re, subprocess, sys
out, name = sys.argv[1:]
load = open(out + '/load.txt').read()
n = int(re.search(r'requests\s+(\d+)', load).group(1))
ok = re.search(r'statuses\s+(.*)', load).group(1)
dump = sorted(glob.glob(out + '/callgrind.out.*'))[0]
flat = subprocess.run(['callgrind_annotate', '--inclusive=no', '--auto=no', '--threshold=100', dump],
                      capture_output=True, text=True, check=True).stdout
total = copy = 0
for l in flat.splitlines():
    m = re.match(r'^\s*([\d,]+) \(.*?\)\s+(.*)$', l)
    if not m:
        continue
    v = int(m.group(1).replace(',', ''))
    if 'PROGRAM TOTALS' in l:
        total = v
    elif re.search(r'mem(move|cpy)', m.group(2)):
        copy += v
print(f'{name} {n} {total // n} {copy // n} {(total - copy) // n} {ok}')
EOF
)
        results+=("$line")
        read -r n_ reqs tot cp other st <<< "$line"
        printf '%-12s round %d: %7d requests (%s), %9d instructions per request: copy %8d, other %8d\n' \
            "$n_" "$round" "$reqs" "$st" "$tot" "$cp" "$other"
    done
done

echo
echo "median per name (instructions per request):"
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics, collections
rows = collections.OrderedDict()
for l in sys.stdin:
    p = l.split()
    rows.setdefault(p[0], []).append((int(p[2]), int(p[3]), int(p[4])))
base = None
for name, rs in rows.items():
    tot, cp, other = (statistics.median(r[i] for r in rs) for i in range(3))
    rel = "" if base is None else f"  other {100 * (other - base) / base:+.1f}% against {first}"
    if base is None:
        base, first = other, name
    print(f"  {name:<12} total {tot:9.0f}  copy {cp:8.0f}  other {other:8.0f}{rel}")
'
