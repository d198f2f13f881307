#!/usr/bin/env bash
# Peak RSS and time of `wikiedge snapshot build` on Redis, for one or more
# builds of wikiedge in turn, on the same scratch data.
#
#   bench/redis-snapshot.sh [--articles N] [--rounds R] NAME=BIN [NAME=BIN ...]
#
# Starts a scratch `redis-server` on a free loopback port (no persistence),
# writes N small articles (default 1,000,000; a few hundred bytes each)
# straight into its database 1, the `bulk` store, and runs each BIN's
# `snapshot build --project enwiki` against it R times (default 2),
# alternating, after deleting the previous build's parts so that every
# build writes its own. Prints one line per build (peak RSS from
# /usr/bin/time, seconds, user CPU) and stops Redis.
#
# Why: on Redis, whose SCAN has no order, a build's memory depends on how
# it sorts the keys (BENCHMARKS.md, "A snapshot build on Redis sorts its
# keys on disk"); the articles are small so that the key list is most of
# what grows with N.
#
# Needs redis-server and redis-cli (Debian: redis-server), python3 and GNU
# time (/usr/bin/time).
set -euo pipefail

articles=1000000
rounds=2
runs=()
while [ $# -gt 0 ]; do
    case "$1" in
    --articles) articles=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *=*) runs+=("$1"); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[ ${#runs[@]} -gt 0 ] || { echo "give at least one NAME=BIN" >&2; exit 2; }
for tool in redis-server redis-cli python3 /usr/bin/time; do
    command -v "$tool" > /dev/null || { echo "needs $tool" >&2; exit 2; }
done

tmp=$(mktemp -d -t wikiedge-redis-snapshot.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
    redis-cli -p "$port" shutdown nosave > /dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --logfile "$tmp/redis.log" --dir "$tmp"
for _ in $(seq 1 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done

cat > "$tmp/rt.toml" << EOF
[key_value_store.default]
type = "redis"
url = "redis://127.0.0.1:$port/0"

[key_value_store.bulk]
type = "redis"
url = "redis://127.0.0.1:$port/1"
EOF

# N articles in Redis's protocol, for redis-cli --pipe.
python3 - "$articles" << 'EOF' | redis-cli -p "$port" --pipe > "$tmp/fill.log"
import json, sys
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
cmd(b"SELECT", b"1")
for i in range(int(sys.argv[1])):
    name = "Title %07d" % i
    doc = {"name": name, "identifier": i + 1, "namespace": {"identifier": 0},
           "in_language": {"identifier": "en"}, "date_modified": "2024-01-01T00:00:00Z",
           "url": "https://en.wikipedia.org/wiki/" + name.replace(" ", "_"),
           "article_body": {"wikitext": "Lead of %s.\n== History ==\nText." % name}}
    key = "article:enwiki:" + name.replace(" ", "_")
    cmd(b"SET", key.encode(), ("[" + json.dumps(doc, separators=(",", ":")) + "]").encode())
EOF
echo "$(redis-cli -p "$port" -n 1 dbsize) keys in the bulk store ($(redis-cli -p "$port" info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p') of Redis memory)"

for round in $(seq 1 "$rounds"); do
    for run in "${runs[@]}"; do
        name=${run%%=*}
        bin=${run#*=}
        # Every build writes its parts: the previous build's go first.
        redis-cli -p "$port" -n 1 --scan --pattern 'snapshot*' |
            xargs -r -n 1000 redis-cli -p "$port" -n 1 del > /dev/null
        mkdir -p "$tmp/state"
        /usr/bin/time -o "$tmp/time" -f "%M %e %U" "$bin" snapshot build --project enwiki \
            --namespace 0 --state-dir "$tmp/state" --runtime-config-file "$tmp/rt.toml" \
            --quiet > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
        read -r kib seconds user < "$tmp/time"
        awk -v n="$name" -v r="$round" -v k="$kib" -v s="$seconds" -v u="$user" \
            'BEGIN { printf "%-10s round %d: peak %6.1f MiB, %6.2f s, user %6.2f s\n", n, r, k / 1024, s, u }'
    done
done
