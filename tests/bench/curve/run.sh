#!/usr/bin/env bash
# tests/bench/curve/run.sh [--rounds N] [--quick] [--calls N] [--warmup N] [--seconds S]
#
# What CURVE costs on the RPC path: the rpc benchmark's 200-byte echo against two px-testd, one
# on plaintext links and one under CURVE (keys made for the run with pxctl keys gen; the
# client is listed as "bench", the server as "testd"). One client (bench-curve-client) holds a
# client of each and alternates between them in short turns - blocks of 200 calls for p50
# latency with one call in flight, 0.2 s slices for calls/s with 16 in flight - so that what
# else the machine does falls on both alike; a round is one such run, with fresh servers, and
# the figures are the medians over the rounds. Prints each round's two lines, then:
#   curve: p50_us=.. plain_p50_us=.. p50_ratio=.. thr16=.. plain_thr16=.. thr16_ratio=.. rounds=N
# Both ratios are CURVE's cost factor, above 1 when CURVE is slower: p50_ratio is CURVE's p50 over
# plaintext's, thr16_ratio plaintext's calls/s over CURVE's. The target is 1.3 at most. On a busy
# machine runs one after the other vary more than that, hence the turns within a run.
#
# Expects a build tree configured with -DPX_BENCH=ON in PX_BENCH_BUILD_DIR (default
# build-bench/): tests/bench/run.sh curve does that first. Logs: $PX_BENCH_BUILD_DIR/bench/curve-logs/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
bin=$build/bench
logs=$build/bench/curve-logs

readonly PORT_MIN=20000 PORT_SPAN=12000 # below the ephemeral range (see rpc/run.sh)
readonly READY_WAIT_S=15
readonly STOP_WAIT_S=5
readonly INFLIGHT=16

rounds=5
calls=10000
warmup=1000
seconds=2
warmup_seconds=0.5

usage() {
    sed -n '2p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=${2:?}; shift 2 ;;
        --calls) calls=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --quick) rounds=3; calls=2000; warmup=200; seconds=1; warmup_seconds=0.3; shift ;;
        *) usage ;;
    esac
done
[[ $rounds =~ ^[1-9][0-9]?$ ]] || { echo "curve: --rounds: 1 to 99" >&2; exit 2; }
[[ -f $build/CMakeCache.txt ]] || {
    echo "curve: $build is not configured: run tests/bench/run.sh curve" >&2
    exit 1
}
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.out # no stale READY lines

keys=
trap 'stop_servers; [[ -z $keys ]] || rm -rf "$keys"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "curve: building bench-curve-client px-testd pxctl" >&2
if ! cmake --build "$build" --target bench-curve-client px-testd pxctl -j "$(nproc)" \
        >"$logs/build.log" 2>&1; then
    tail -n 30 "$logs/build.log" >&2
    echo "curve: build failed (whole log: $logs/build.log)" >&2
    exit 1
fi

# The run's keys: one pair each for the server and the client, one allow-list for both.
keys=$(mktemp -d /tmp/px-bench-curve-XXXXXX)
{
    "$build/services/pxctl/pxctl" keys gen testd --dir "$keys"
    "$build/services/pxctl/pxctl" keys gen bench --dir "$keys"
} >"$keys/allow"

free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((PORT_MIN + RANDOM % PORT_SPAN))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

field() {
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == key) { print substr($i, n + 1); exit } } }' <<<"$2"
}

median() { # numbers as arguments
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "na"; else printf "%.2f\n", a / b }'
}

# start_server MODE: px-testd on a free port, plaintext or under CURVE (as "testd"); sets
# pid_MODE and ep_MODE.
pid_plain='' pid_curve='' ep_plain='' ep_curve=''
start_server() {
    local mode=$1 port log=$logs/$1-server.log i pid
    local -a env_=()
    if [[ $mode == curve ]]; then
        env_=(PX_CURVE_SECRET_KEY="$keys/testd_secret" PX_CURVE_ALLOW="$keys/allow")
    fi
    port=$(free_port) || { echo "curve: no free port" >&2; return 1; }
    : >"$log" # made before the server starts, so the wait below reads this run's log only
    env "${env_[@]}" "$build/tests/support/px-testd" --listen "tcp://127.0.0.1:$port" \
        --log-level warn >>"$log" 2>&1 &
    pid=$!
    printf -v "pid_$mode" '%s' "$pid"
    printf -v "ep_$mode" '%s' "tcp://127.0.0.1:$port"
    for ((i = 0; i < READY_WAIT_S * 20; i++)); do
        grep -qs '^READY ' "$log" && return 0
        sleep 0.05
    done
    echo "curve: px-testd ($mode) not ready; its log:" >&2
    tail -n 20 "$log" >&2
    return 1
}

stop_servers() {
    local pid i
    for pid in $pid_plain $pid_curve; do
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_WAIT_S * 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pid_plain='' pid_curve=''
}

# round N: both servers, one client alternating between them; appends the figures.
declare -a p50_plain=() p50_curve=() thr_plain=() thr_curve=()
round() {
    local r=$1 out=$logs/client-$1.out line mode p50 thr
    start_server plain && start_server curve || return 1
    if ! PX_BENCH_CURVE_ENDPOINT=$ep_curve PX_CURVE_SECRET_KEY="$keys/bench_secret" \
            PX_CURVE_ALLOW="$keys/allow" timeout 600 "$bin/bench-curve-client" \
            --endpoint "$ep_plain" --size 200 --warmup "$warmup" --calls "$calls" \
            --warmup-seconds "$warmup_seconds" --seconds "$seconds" --inflight "$INFLIGHT" \
            >"$out" 2>"$logs/client-$r.log"; then
        echo "curve: bench-curve-client failed; its log:" >&2
        cat "$logs/client-$r.log" >&2
        return 1
    fi
    stop_servers
    for mode in plain curve; do
        line=$(grep "^$mode " "$out" || true)
        p50=$(field p50_us "$line")
        thr=$(field "thr$INFLIGHT" "$line")
        [[ -n $p50 && -n $thr ]] || { echo "curve: no $mode figures in $out" >&2; return 1; }
        printf 'round %d %s\n' "$r" "$line"
        if [[ $mode == curve ]]; then
            p50_curve+=("$p50") thr_curve+=("$thr")
        else
            p50_plain+=("$p50") thr_plain+=("$thr")
        fi
    done
}

for ((r = 1; r <= rounds; r++)); do
    round "$r" || { stop_servers; echo "curve: round $r failed" >&2; exit 1; }
done

p50c=$(median "${p50_curve[@]}")
p50p=$(median "${p50_plain[@]}")
thrc=$(median "${thr_curve[@]}")
thrp=$(median "${thr_plain[@]}")
echo "curve: p50_us=$p50c plain_p50_us=$p50p p50_ratio=$(ratio "$p50c" "$p50p")" \
    "thr16=$thrc plain_thr16=$thrp thr16_ratio=$(ratio "$thrp" "$thrc") rounds=$rounds"
