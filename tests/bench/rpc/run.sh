#!/usr/bin/env bash
# tests/bench/rpc/run.sh [--ways ours,raw,grpc] [--quick] [--calls N] [--warmup N]
#                        [--seconds S] [--warmup-seconds S] [--rounds N]
#
# The rpc benchmark: a 200-byte unary echo, measured three ways in one run:
#   ours  bench-rpc-ours (px_rpc_client)  ->  px-testd        /phuxanh.test.v1.Echo/Echo
#   raw   bench-raw-zmq-client (DEALER)   ->  bench-raw-zmq-server (ROUTER), no envelope
#   grpc  bench-grpc-client (sync stub)   ->  bench-grpc-server (sync, default thread pool)
# Each server runs in its own process on a free 127.0.0.1 port and is stopped before the next
# way starts, so the three never share the machine's two cores. Each client measures p50/p99
# latency with one call in flight and calls/s with 16 in flight, and prints one key=value line.
# The ways take turns in rounds (ours, raw, gRPC; ours, raw, gRPC; ... 5 by default), so that a
# noisy moment of the machine falls on one round: each figure is the median over the rounds,
# and each ratio the median of the per-round ratios.
#
# Prints each way's line per round, then one summary line:
#   rpc: p50_us=.. p99_us=.. raw_p50_us=.. raw_p99_us=.. grpc_p50_us=.. grpc_p99_us=..
#        p50_ratio=.. grpc_p50_ratio=.. thr16=.. raw_thr16=.. grpc_thr16=.. thr16_ratio=..
#        grpc_thr16_ratio=.. rounds=..
# (all on one line; ratios are ours/raw and ours/gRPC). A way that was not asked for or
# failed reads "na" there, and a failure makes the exit status 1.
#
# Expects a build tree configured with -DPX_BENCH=ON in PX_BENCH_BUILD_DIR (default
# build-bench/): tests/bench/run.sh rpc does that first. Logs go to $PX_BENCH_BUILD_DIR/bench/rpc-logs/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
bin=$build/bench
logs=$build/bench/rpc-logs

# Ports are picked below the kernel's usual ephemeral range (32768+), so they cannot collide
# with the local side of some outgoing connection.
readonly PORT_MIN=20000 PORT_SPAN=12000
readonly READY_WAIT_S=15   # a server that has not printed READY by then has failed
readonly STOP_WAIT_S=5     # then SIGKILL
readonly START_TRIES=5     # a port taken between our probe and the server's bind: try another
readonly INFLIGHT=16

ways=ours,raw,grpc
calls=10000
warmup=1000
seconds=2
warmup_seconds=0.5
rounds=5

usage() {
    sed -n '2,3p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --ways) ways=${2:?}; shift 2 ;;
        --calls) calls=${2:?}; shift 2 ;;
        --warmup) warmup=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --warmup-seconds) warmup_seconds=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --quick) calls=2000; warmup=200; seconds=1; warmup_seconds=0.5; rounds=3; shift ;;
        *) usage ;;
    esac
done
[[ -f $build/CMakeCache.txt ]] || {
    echo "rpc: $build is not configured: run tests/bench/run.sh rpc" >&2
    exit 1
}
mkdir -p "$logs"

# The server and client processes we started, if running; the traps stop them on any exit.
# The client runs in the background under `wait` so that a signal is handled at once, not
# after the client's own run.
server_pid=
client_pid=

# shellcheck disable=SC2317 # called from the EXIT trap
stop_client() {
    [[ -n $client_pid ]] || return 0
    kill -TERM "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    client_pid=
}

stop_server() {
    [[ -n $server_pid ]] || return 0
    local pid=$server_pid i
    server_pid=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_WAIT_S * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "rpc: server $pid ignored SIGTERM for ${STOP_WAIT_S}s, killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
trap 'stop_client; stop_server' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port on 127.0.0.1 nothing listens on (a refused connect means free).
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

# start_server WAY CMD... (CMD words may hold @PORT@): starts it on a free port and waits for
# its "READY <endpoint>" line; sets server_pid and server_endpoint.
start_server() {
    local way=$1 log=$logs/$1-server.log port try i line
    shift
    for ((try = 0; try < START_TRIES; try++)); do
        port=$(free_port) || break
        "${@//@PORT@/$port}" >"$log" 2>&1 &
        server_pid=$!
        for ((i = 0; i < READY_WAIT_S * 20; i++)); do
            line=$(grep -m1 '^READY ' "$log" || true)
            if [[ -n $line ]]; then
                server_endpoint=${line#READY }
                return 0
            fi
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.05
        done
        stop_server
    done
    echo "rpc: $way server did not become ready; its log ($log):" >&2
    tail -n 20 "$log" >&2 || true
    return 1
}

# field KEY LINE: the value of KEY=value in a result line, or nothing.
field() {
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == key) { print substr($i, n + 1); exit } } }' <<<"$2"
}

# ratio A B: A/B with 2 decimals, or na.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "na" || b == "na" || b + 0 == 0) print "na"; else printf "%.2f\n", a / b }'
}

declare -A build_targets=(
    [ours]="bench-rpc-ours px-testd"
    [raw]="bench-raw-zmq-server bench-raw-zmq-client"
    [grpc]="bench-grpc-server bench-grpc-client"
)
declare -A client_bin=(
    [ours]=$bin/bench-rpc-ours
    [raw]=$bin/bench-raw-zmq-client
    [grpc]=$bin/bench-grpc-client
)
# Each way's server command, read through a nameref in run_way.
# shellcheck disable=SC2034
ours_server=("$build/tests/support/px-testd" --listen "tcp://127.0.0.1:@PORT@" --log-level warn)
# shellcheck disable=SC2034
raw_server=("$bin/bench-raw-zmq-server" --listen "tcp://127.0.0.1:@PORT@")
# shellcheck disable=SC2034
grpc_server=("$bin/bench-grpc-server" --listen "127.0.0.1:@PORT@")

client_args=(--size 200 --warmup "$warmup" --calls "$calls" --warmup-seconds "$warmup_seconds"
             --seconds "$seconds" --inflight "$INFLIGHT")
# A bound on each client run: its phases at a pessimistic 1 ms a call, plus a minute.
client_timeout=$(awk -v n="$((warmup + calls))" -v s="$seconds" -v w="$warmup_seconds" \
    'BEGIN { printf "%d\n", n / 1000 + s + w + 60 }')

declare -A p50 p99 thr
status=0

# build_way WAY: builds its client and server.
build_way() {
    local way=$1
    echo "rpc: building ${build_targets[$way]}" >&2
    # shellcheck disable=SC2086 # the target list is meant to split
    if ! cmake --build "$build" --target ${build_targets[$way]} -j "$(nproc)" \
            >"$logs/$way-build.log" 2>&1; then
        tail -n 30 "$logs/$way-build.log" >&2
        echo "rpc: $way: build failed (whole log: $logs/$way-build.log)" >&2
        return 1
    fi
}

# run_way WAY: serves, measures; fills p50/p99/thr[WAY] or returns 1.
run_way() {
    local way=$1 line
    local -n server_cmd=${way}_server
    start_server "$way" "${server_cmd[@]}" || return 1
    timeout "$client_timeout" "${client_bin[$way]}" --endpoint "$server_endpoint" \
        "${client_args[@]}" >"$logs/$way-client.out" 2>"$logs/$way-client.log" &
    client_pid=$!
    local rc=0
    wait "$client_pid" || rc=$?
    client_pid=
    stop_server
    if [[ $rc -ne 0 ]]; then
        cat "$logs/$way-client.log" >&2
        if [[ $rc -eq 124 ]]; then
            echo "rpc: $way: client timed out after ${client_timeout}s" >&2
        else
            echo "rpc: $way: client failed (exit $rc)" >&2
        fi
        return 1
    fi
    line=$(tail -n 1 "$logs/$way-client.out")
    p50[$way]=$(field p50_us "$line")
    p99[$way]=$(field p99_us "$line")
    thr[$way]=$(field "thr$INFLIGHT" "$line")
    if [[ -z ${p50[$way]} || -z ${p99[$way]} || -z ${thr[$way]} ]]; then
        echo "rpc: $way: client printed no figures: '$line'" >&2
        return 1
    fi
    printf '%-5s %s\n' "$way:" "$line"
}

# median V...: the median of the numbers given (na when one of them is na, or none is given).
median() {
    printf '%s\n' "$@" | sort -g | awk '
        /^na$/ { na = 1 } { v[NR] = $1 }
        END { if (na || NR == 0) print "na";
              else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A want
for way in ours raw grpc; do
    [[ ,$ways, == *,$way,* ]] || continue
    if build_way "$way"; then
        want[$way]=1
    else
        status=1
    fi
done

# Each way's figures, round by round (space separated), and the per-round ratios.
declare -A all_p50 all_p99 all_thr
r_p50=() r_gp50=() r_thr=() r_gthr=()
for ((round = 1; round <= rounds; round++)); do
    echo "rpc: round $round of $rounds" >&2
    for way in ours raw grpc; do
        p50[$way]=na p99[$way]=na thr[$way]=na
        [[ -n ${want[$way]:-} ]] || continue
        if ! run_way "$way"; then
            p50[$way]=na p99[$way]=na thr[$way]=na
            status=1
        fi
        all_p50[$way]+="${p50[$way]} "
        all_p99[$way]+="${p99[$way]} "
        all_thr[$way]+="${thr[$way]} "
    done
    r_p50+=("$(ratio "${p50[ours]}" "${p50[raw]}")")
    r_gp50+=("$(ratio "${p50[ours]}" "${p50[grpc]}")")
    r_thr+=("$(ratio "${thr[ours]}" "${thr[raw]}")")
    r_gthr+=("$(ratio "${thr[ours]}" "${thr[grpc]}")")
done

for way in ours raw grpc; do
    if [[ -n ${want[$way]:-} ]]; then
        # shellcheck disable=SC2086 # the lists are meant to split
        p50[$way]=$(median ${all_p50[$way]})
        # shellcheck disable=SC2086
        p99[$way]=$(median ${all_p99[$way]})
        # shellcheck disable=SC2086
        thr[$way]=$(median ${all_thr[$way]})
    else
        p50[$way]=na p99[$way]=na thr[$way]=na
    fi
done

echo "rpc: p50_us=${p50[ours]} p99_us=${p99[ours]}" \
    "raw_p50_us=${p50[raw]} raw_p99_us=${p99[raw]}" \
    "grpc_p50_us=${p50[grpc]} grpc_p99_us=${p99[grpc]}" \
    "p50_ratio=$(median "${r_p50[@]}")" \
    "grpc_p50_ratio=$(median "${r_gp50[@]}")" \
    "thr16=${thr[ours]} raw_thr16=${thr[raw]} grpc_thr16=${thr[grpc]}" \
    "thr16_ratio=$(median "${r_thr[@]}")" \
    "grpc_thr16_ratio=$(median "${r_gthr[@]}")" \
    "rounds=$rounds"
exit "$status"
