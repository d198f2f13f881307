#!/usr/bin/env bash
# Time the README's first command on a fresh clone, as a newcomer on a
# fresh machine meets it: an empty cargo home (no registry, no cached
# crates), an empty target dir, an empty compile cache, and the pinned
# toolchain WITHOUT the wasm32-wasip2 target (the command has to add it).
#
#   bench/fresh-clone.sh [--rev REV] [--keep] [--timeout SECS]
#
# REV (default HEAD) is resolved in this checkout and cloned from it. The
# toolchain comes from a private copy of $RUSTUP_HOME (~/.rustup) holding
# only the pinned toolchain, from which wasm32-wasip2 is removed; crates
# come from crates.io. The command is the first line of the README's first
# ```sh block, run as written; only WIKIEDGE_LISTEN=127.0.0.1:0 is set (so
# that another server on port 3000 cannot fail the run). The clock stops
# when the host prints its "Serving http://" line; the host is then stopped.
#
# Prints the time to each milestone, the 1-minute load average (sampled
# every 10 s: mean and max) and a summary line, and appends one JSON line to
# bench-results/fresh-clone.jsonl. Everything it made under /tmp is removed
# unless --keep. Run nothing else heavy meanwhile: it measures the machine.
set -euo pipefail

rev=HEAD
keep=0
timeout=3600
while [ $# -gt 0 ]; do
    case "$1" in
    --rev) rev=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --timeout) timeout=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

src=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
sha=$(git -C "$src" rev-parse --verify "$rev^{commit}")
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
work=$(mktemp -d /tmp/wikiedge-fresh.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
    if [ "$keep" = 0 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clone=$work/clone
git clone --quiet "$src" "$clone"
git -C "$clone" checkout --quiet --detach "$sha"

# The pinned toolchain, as rustup names it.
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$clone/rust-toolchain.toml")
host=$(rustc -vV | sed -n 's/^host: //p')
tc=$channel-$host
mkdir -p "$work/rustup/toolchains" "$work/cargo-home" "$work/cache"
cp "$rustup_home/settings.toml" "$work/rustup/"
[ -d "$rustup_home/update-hashes" ] && cp -a "$rustup_home/update-hashes" "$work/rustup/"
# A real copy (the installed one may be a symlink to another toolchain).
cp -a "$(readlink -f "$rustup_home/toolchains/$tc")" "$work/rustup/toolchains/$tc"
RUSTUP_HOME=$work/rustup rustup target remove --toolchain "$tc" wasm32-wasip2 >/dev/null 2>&1 || true
if RUSTUP_HOME=$work/rustup rustup target list --toolchain "$tc" --installed | grep -qx wasm32-wasip2; then
    echo "could not remove wasm32-wasip2 from the toolchain copy" >&2
    exit 1
fi

cmd=$(awk '/^```sh/{f=1; next} f && /^```/{exit} f && NF && !/^#/{print; exit}' "$clone/README.md")
echo "rev $sha; toolchain $tc without wasm32-wasip2; empty CARGO_HOME and target dir"
echo "\$ $cmd"

log=$work/run.log
cd "$clone"
start=$(date +%s.%N)
env -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_ENCODED_RUSTFLAGS \
    RUSTUP_HOME="$work/rustup" CARGO_HOME="$work/cargo-home" \
    WIKIEDGE_CACHE_DIR="$work/cache" XDG_CACHE_HOME="$work/cache" \
    WIKIEDGE_LISTEN=127.0.0.1:0 \
    setsid bash -c "$cmd" >"$log" 2>&1 &
pid=$!

elapsed() { echo "$(date +%s.%N) - $start" | bc; }
declare -A seen=()
milestones=(
    "host built|Finished \`release\` profile"
    "target added|Added the Rust target"
    "components built|Finished building all components"
    "serving|Serving http://"
)
loads=()
next_load=0
status=timeout
while :; do
    now=$(elapsed)
    for m in "${milestones[@]}"; do
        name=${m%%|*}
        pat=${m#*|}
        if [ -z "${seen[$name]:-}" ] && grep -qF -- "$pat" "$log"; then
            seen[$name]=$now
            printf '%8.1f s  %s\n' "$now" "$name"
        fi
    done
    if [ -n "${seen[serving]:-}" ]; then status=ok; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then status=failed; break; fi
    if [ "$(echo "$now > $timeout" | bc)" = 1 ]; then break; fi
    if [ "$(echo "$now >= $next_load" | bc)" = 1 ]; then
        loads+=("$(cut -d' ' -f1 /proc/loadavg)")
        next_load=$(echo "$next_load + 10" | bc)
    fi
    sleep 1
done
kill -TERM -- "-$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=

load_mean=$(printf '%s\n' "${loads[@]}" | awk '{s+=$1; n++} END {printf "%.2f", s/n}')
load_max=$(printf '%s\n' "${loads[@]}" | sort -g | tail -1)
total=${seen[serving]:-$(elapsed)}
secs=$(printf '%.0f' "$total")
printf 'fresh-clone %s: %s after %d s (%d min %02d s); load average (1 min) mean %s, max %s\n' \
    "${sha:0:7}" "$status" "$secs" $((secs / 60)) $((secs % 60)) "$load_mean" "$load_max"
if [ "$status" != ok ]; then
    echo "--- last lines of the log:" >&2
    tail -20 "$log" >&2
fi

mkdir -p "$src/bench-results"
{
    printf '{"rev":"%s","status":"%s","command":"%s","at":"%s","nproc":%s' \
        "$sha" "$status" "$cmd" "$(date -u +%FT%TZ)" "$(nproc)"
    for m in "${milestones[@]}"; do
        name=${m%%|*}
        printf ',"%s_s":%s' "${name// /_}" "${seen[$name]:-null}"
    done
    printf ',"load1_mean":%s,"load1_max":%s}\n' "$load_mean" "$load_max"
} >>"$src/bench-results/fresh-clone.jsonl"
[ "$status" = ok ]
