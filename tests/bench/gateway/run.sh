#!/usr/bin/env bash
# tests/bench/gateway/run.sh [--rounds N] [--seconds S] [--events N] [--log-level L] [--quick]
#
# The gateway benchmark, two comparisons each against a baseline measured in the same run,
# the sides interleaved in rounds (default 5):
#
#   reads   wrk -t2 -c32 --latency, S seconds a side a round (default 5), on
#             gateway: GET /v1/progress?campaign=tn-cuoi-tuan-2023&unit=725 (a viewer token),
#             bare:    bench-gw-bare, libmicrohttpd set up as px-gateway's http.c sets it up
#                      (same flags, 2 threads, keep-alive) answering the gateway's own answer to
#                      that GET, byte for byte, to the same request (bare_http.c),
#             connect: POST /phuxanh.activation.v1.ActivationService/GetProgress, Connect JSON.
#           The gateway answers from its progress cache while the activation feed is whole
#           (services/gateway/progress.c): the path every real caller takes; an answer expires
#           after the gateway's progress-max-age-ms (5 s) and is fetched again, as it would be.
#   writes  RecordEvents, 100 events a call, 8 calls in flight, N new events a side a round
#           (default 10,000): through the gateway as Connect JSON (and application/proto),
#           and straight to px-activation over ZeroMQ (record_client.c).
#
# Starts its own durable throwaway PostgreSQL (act_env.sh: fsync, synchronous_commit=on),
# px-roster and px-activation on their own databases, loads the Thuận An demo into them
# (deploy/load-demo.sh), writes a token file (a viewer and an admin token whose rate limits the
# load cannot reach), starts px-gateway (defaults: 2 HTTP threads, 1 backend thread, log level
# info unless --log-level) and stops everything on exit. The machine's cores are shared by
# wrk and the server on both sides alike. --quick is a smoke run: 2 rounds of 1 s, 1,000
# events a side a round, 1 s warm-ups.
#
# Last line (figures: medians over the rounds; ratios: medians of the rounds' ratios):
#   gateway: rps=.. bare_rps=.. ratio=.. p99_ms=.. bare_p99_ms=.. p99_ratio=.. connect_rps=..
#            record_events_per_s=.. direct_events_per_s=.. record_ratio=.. connect_ratio=..
#            connect_p99_ms=.. cpu_us_per_req=.. bare_cpu_us_per_req=.. connect_cpu_us_per_req=..
#            record_proto_events_per_s=.. record_proto_ratio=.. rounds=..
# (cpu_us_per_req: the server process's CPU time over the requests it answered, all threads;
# it shows the price of a request even when neighbours on the machine move requests/s.)
# Targets: ratio >= 0.5, p99_ratio <= 2, record_ratio >= 0.8; each is marked ok or MISSED on
# the line before the last (a miss is a finding, not a failure: the exit status stays 0).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
logs=$build/bench/gateway-logs
rounds=5
seconds=5
events=10000
log_level=info
readonly CONNS=32 WRK_THREADS=2 HTTP_THREADS=2 INFLIGHT=8 BATCH=100
readonly CAMPAIGN=tn-cuoi-tuan-2023 UNIT=725
readonly GET_PATH="/v1/progress?campaign=$CAMPAIGN&unit=$UNIT"
readonly CONNECT_PATH=/phuxanh.activation.v1.ActivationService/GetProgress
# An untimed wrk run a side before the rounds, longer than the gateway's progress-max-age-ms
# (5 s): the first answer to expire sends every connection to px-activation at once, whose
# workers have not run GetProgress yet (statements to prepare, cold caches). A system in
# service is past that; the expiries during the rounds are measured as they come.
warmup_s=6
readonly READY_WAIT_S=60 # the gateway must be ready (services up, feed whole) by then

usage() {
    sed -n '2p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds) rounds=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --events) events=${2:?}; shift 2 ;;
        --log-level) log_level=${2:?}; shift 2 ;;
        --quick) rounds=2; seconds=1; events=1000; warmup_s=1; shift ;;
        *) usage ;;
    esac
done
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $seconds =~ ^[0-9]+$ && $seconds -ge 1 &&
    $events =~ ^[0-9]+$ && $events -ge 1 ]] || usage
[[ -f $build/CMakeCache.txt ]] || {
    echo "gateway: $build is not configured: run tests/bench/run.sh gateway" >&2
    exit 1
}
command -v wrk >/dev/null || {
    echo "gateway: wrk is not installed: run tests/bench/run.sh gateway" >&2
    exit 1
}
# The services and the gateway read PX_* settings from the environment: only what this script
# sets may count, so that a variable left in the caller's shell cannot change what is measured.
for v in $(compgen -e); do
    case $v in
        PX_BENCH_* | PX_PG_BINDIR | PX_DEMO_DATA) ;;
        PX_*) unset "$v" ;;
    esac
done
mkdir -p "$logs"
for f in roster activation gateway bare demo client wrk; do
    : >"$logs/$f.log"
done

# shellcheck source=tests/bench/common/act_env.sh
source "$root/tests/bench/common/act_env.sh"
tmp=$(mktemp -d /tmp/px-bench-gateway.XXXXXX)
chmod 755 "$tmp"
roster_pid=
gw_pid=
bare_pid=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    bench_svc_stop "$bare_pid"
    bench_svc_stop "$gw_pid"
    act_env_stop # px-activation (ACT_PID) and PostgreSQL
    bench_svc_stop "$roster_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "gateway: $*" >&2
    exit 1
}

echo "gateway: building the services, pxctl (the demo loader) and the bench clients" >&2
if ! cmake --build "$build" --target px-roster px-activation px-gateway pxctl \
        bench-gw-bare bench-gw-record -j 2 >"$logs/build.log" 2>&1; then
    tail -n 30 "$logs/build.log" >&2
    exit 1
fi

# ---------------------------------------------------------------- the system

# Ports of their own, picked ahead: the roster and the activation service each need the
# other's endpoint when they start.
ports=()
while [[ ${#ports[@]} -lt 5 ]]; do
    p=$(act_env_free_port)
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
roster_ep=tcp://127.0.0.1:${ports[0]}
act_ep=tcp://127.0.0.1:${ports[1]}
pub_ep=tcp://127.0.0.1:${ports[2]}
gw_port=${ports[3]}
bare_port=${ports[4]}

echo "gateway: starting PostgreSQL, px-roster and px-activation" >&2
act_env_pg_start "$tmp" roster
"$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres activation
# A later --listen wins over bench_svc_start's own (the last value of an option counts).
PX_ACTIVATION_ENDPOINTS=$act_ep bench_svc_start roster roster --listen "$roster_ep" \
    --workers 2 || { roster_pid=$SVC_PID; fail "px-roster did not start"; }
roster_pid=$SVC_PID
# 8 workers: the 8 calls in flight of either recording side run at once.
act_env_act_start activation --listen "$act_ep" --roster-endpoints "$roster_ep" \
    --pub-endpoint "$pub_ep" --workers 8 || fail "px-activation did not start"

echo "gateway: loading the Thuận An demo (deploy/load-demo.sh)" >&2
PX_ROSTER_ENDPOINTS=$roster_ep PX_ACTIVATION_ENDPOINTS=$act_ep \
    PX_PXCTL_BIN=$build/services/pxctl/pxctl \
    "$root/deploy/load-demo.sh" >"$logs/demo.log" 2>&1 || {
    tail -n 20 "$logs/demo.log" >&2
    fail "loading the demo failed"
}
wards=$(awk -F, -v c="$CAMPAIGN" '$1 == c { printf "%s%s", n++ ? "," : "", $2 }' \
    "${PX_DEMO_DATA:-$root/../shared/data/thuan-an}/targets.csv")
[[ -n $wards ]] || fail "no wards of $CAMPAIGN in the demo's targets.csv"

# Tokens: random, only their SHA-256 in the gateway's file; the tokens themselves stay in
# files of $tmp (never on a command line, never in a log).
new_token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
viewer_tok=$(new_token)
admin_tok=$(new_token)
umask 077
{
    echo "# tests/bench/gateway/run.sh: the largest rate limits the file allows (1e6/s), far above any load here"
    echo "$(sha "$viewer_tok") bench viewer rate=1000000 burst=1000000"
    echo "$(sha "$admin_tok") bench-admin admin rate=1000000 burst=1000000"
} >"$tmp/tokens"
printf '%s\n' "$admin_tok" >"$tmp/admin.token"
printf 'Authorization: Bearer %s\n' "$viewer_tok" >"$tmp/viewer.header"
# wrk's scripts: set once, so wrk builds each request once and sends it as is (no Lua per
# request). The bare server gets the gateway's GET, header and all.
cat >"$tmp/get.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $viewer_tok"
EOF
connect_body="{\"campaignId\":\"$CAMPAIGN\",\"unitCode\":\"$UNIT\"}"
cat >"$tmp/connect.lua" <<EOF
wrk.method = "POST"
wrk.body = '$connect_body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $viewer_tok"
EOF
umask 022
chmod 644 "$tmp/tokens" # the gateway may read it as any user; it holds only hashes

# SVC-style start of a process printing "READY <url>": sets START_PID and START_URL.
start_ready() { # NAME CMD...
    local name=$1 i line
    shift
    START_URL=
    : >"$logs/$name.out"
    "$@" >"$logs/$name.out" 2>>"$logs/$name.log" &
    START_PID=$!
    for ((i = 0; i < 300; i++)); do
        line=$(grep -m1 '^READY ' "$logs/$name.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            START_URL=${line#READY }
            return 0
        fi
        kill -0 "$START_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$logs/$name.log" >&2
    return 1
}

echo "gateway: starting px-gateway (log level $log_level)" >&2
start_ready gateway env PX_HTTP_LISTEN="127.0.0.1:$gw_port" PX_ROSTER_ENDPOINTS="$roster_ep" \
    PX_ACTIVATION_ENDPOINTS="$act_ep" PX_ACTIVATION_FEED="$pub_ep" \
    PX_TOKENS_FILE="$tmp/tokens" PX_HTTP_THREADS="$HTTP_THREADS" PX_LOG_LEVEL="$log_level" \
    "$build/services/gateway/px-gateway" || { gw_pid=$START_PID; fail "px-gateway did not start"; }
gw_pid=$START_PID
gw_url=$START_URL
for ((i = 0; i < READY_WAIT_S * 10; i++)); do
    code=$(curl -s -o "$tmp/readyz" -w '%{http_code}' "$gw_url/readyz" || true)
    [[ $code == 200 ]] && break
    sleep 0.1
done
[[ $code == 200 ]] || fail "px-gateway not ready within ${READY_WAIT_S}s: $(cat "$tmp/readyz")"

# The body the bare server answers: the gateway's own answer to the benchmark's GET.
code=$(curl -s -H @"$tmp/viewer.header" -o "$tmp/body.json" -w '%{http_code}' \
    "$gw_url$GET_PATH")
[[ $code == 200 ]] || fail "GET $GET_PATH answered $code: $(head -c 300 "$tmp/body.json")"
body_bytes=$(wc -c <"$tmp/body.json")
code=$(curl -s -H @"$tmp/viewer.header" -H 'Content-Type: application/json' \
    --data "$connect_body" -o "$tmp/connect.json" -w '%{http_code}' "$gw_url$CONNECT_PATH")
[[ $code == 200 ]] || fail "POST $CONNECT_PATH answered $code: $(head -c 300 "$tmp/connect.json")"
cmp -s "$tmp/body.json" "$tmp/connect.json" ||
    fail "the Connect GetProgress answer differs from the GET's"

start_ready bare "$build/bench/bench-gw-bare" --port "$bare_port" --body "$tmp/body.json" \
    --threads "$HTTP_THREADS" || { bare_pid=$START_PID; fail "bench-gw-bare did not start"; }
bare_pid=$START_PID
bare_url=$START_URL
curl -s -H @"$tmp/viewer.header" -o "$tmp/bare.json" "$bare_url$GET_PATH"
cmp -s "$tmp/body.json" "$tmp/bare.json" || fail "the bare server's answer differs"
echo "gateway: body $body_bytes bytes (GetProgress of $UNIT, from the demo)" >&2

# ---------------------------------------------------------------- reads under wrk

# CPU time a process has used so far, in clock ticks (user + system, all its threads).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
readonly TICK_US=$((1000000 / $(getconf CLK_TCK)))

# A wrk run against the server of process PID: "rps p99_ms cpu_us_per_request", or failure
# when any answer was not 2xx or a socket failed. The CPU figure is the server's own time
# (every thread) over the requests answered: what a request costs it, whatever else the
# machine is doing, where requests/s also feel the neighbours.
wrk_run() { # LABEL SECONDS SCRIPT URL PID
    local out t0 t1
    t0=$(cpu_ticks "$5")
    out=$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"$2s" --latency -s "$3" "$4") ||
        fail "wrk ($1) failed"
    t1=$(cpu_ticks "$5")
    printf '==== %s\n%s\n' "$1" "$out" >>"$logs/wrk.log"
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        grep -E 'Non-2xx|Socket errors' <<<"$out" >&2
        fail "wrk ($1): errors (see $logs/wrk.log)"
    fi
    awk -v cpu_us=$(((t1 - t0) * TICK_US)) '
        /^Requests\/sec:/ { rps = $2 }
        / requests in / { n = $1 }
        $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                      f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : u == "m" ? 60000 : -1
                      p99 = f < 0 ? -1 : v * f }
        END { if (rps == "" || p99 == "" || p99 < 0 || n < 1) exit 1
              printf "%s %.3f %.1f\n", rps, p99, cpu_us / n }' \
        <<<"$out" || fail "wrk ($1): cannot read its figures (see $logs/wrk.log)"
}

field() { # KEY LINE: the value of KEY=value in LINE
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == key) { print substr($i, n + 1); exit } } }' <<<"$2"
}

metric() { # NAME{LABELS}: its value in the gateway's /metrics, 0 when absent
    curl -s -H @"$tmp/viewer.header" "$gw_url/metrics" |
        awk -v k="$1" 'index($0, k " ") == 1 { v = $2 } END { print v + 0 }'
}

echo "gateway: load before the reads: $(uptime)" >&2
echo "gateway: warm-up (${warmup_s}s a side)" >&2
wrk_run warm-gateway "$warmup_s" "$tmp/get.lua" "$gw_url$GET_PATH" "$gw_pid" >/dev/null
wrk_run warm-bare "$warmup_s" "$tmp/get.lua" "$bare_url$GET_PATH" "$bare_pid" >/dev/null
wrk_run warm-connect "$warmup_s" "$tmp/connect.lua" "$gw_url$CONNECT_PATH" "$gw_pid" >/dev/null
hits0=$(metric 'px_gateway_progress_cache_total{result="hit"}')
miss0=$(metric 'px_gateway_progress_cache_total{result="miss"}')

rows=() # per round: rps bare_rps p99 bare_p99 connect_rps connect_p99 cpu bare_cpu connect_cpu
for ((r = 1; r <= rounds; r++)); do
    g_rps='' b_rps='' c_rps=''
    read -r g_rps g_p99 g_cpu < <(wrk_run "round $r gateway" "$seconds" "$tmp/get.lua" \
        "$gw_url$GET_PATH" "$gw_pid")
    read -r b_rps b_p99 b_cpu < <(wrk_run "round $r bare" "$seconds" "$tmp/get.lua" \
        "$bare_url$GET_PATH" "$bare_pid")
    read -r c_rps c_p99 c_cpu < <(wrk_run "round $r connect" "$seconds" "$tmp/connect.lua" \
        "$gw_url$CONNECT_PATH" "$gw_pid")
    [[ -n $g_rps && -n $b_rps && -n $c_rps ]] || fail "round $r: wrk failed"
    echo "gateway: round $r: gateway $g_rps req/s p99 $g_p99 ms ${g_cpu} cpu-us/req;" \
        "bare $b_rps req/s p99 $b_p99 ms ${b_cpu} cpu-us/req;" \
        "connect $c_rps req/s p99 $c_p99 ms ${c_cpu} cpu-us/req ($(cut -d' ' -f1 /proc/loadavg))" >&2
    rows+=("$g_rps $b_rps $g_p99 $b_p99 $c_rps $c_p99 $g_cpu $b_cpu $c_cpu")
done
hits=$(($(metric 'px_gateway_progress_cache_total{result="hit"}') - hits0))
misses=$(($(metric 'px_gateway_progress_cache_total{result="miss"}') - miss0))
echo "gateway: progress cache over the rounds: $hits hits, $misses misses" \
    "(an answer lives progress-max-age-ms)" >&2

# Medians of the figures and of the rounds' ratios.
reads=$(printf '%s\n' "${rows[@]}" | awk '
    function med(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { n++; g[n] = $1; b[n] = $2; gp[n] = $3; bp[n] = $4; c[n] = $5; cp[n] = $6
      ra[n] = $1 / $2; pr[n] = $3 / $4; cr[n] = $5 / $2; gc[n] = $7; bc[n] = $8; cc[n] = $9 }
    END {
        printf "rps=%.0f bare_rps=%.0f ratio=%.2f p99_ms=%.2f bare_p99_ms=%.2f p99_ratio=%.2f",
            med(g, n), med(b, n), med(ra, n), med(gp, n), med(bp, n), med(pr, n)
        printf " connect_rps=%.0f|connect_ratio=%.2f connect_p99_ms=%.2f", med(c, n), med(cr, n), med(cp, n)
        printf " cpu_us_per_req=%.1f bare_cpu_us_per_req=%.1f connect_cpu_us_per_req=%.1f\n",
            med(gc, n), med(bc, n), med(cc, n)
    }')

# ---------------------------------------------------------------- writes

echo "gateway: load before the writes: $(uptime)" >&2
echo "gateway: RecordEvents, $rounds rounds of $events events a side ($BATCH a call," \
    "$INFLIGHT in flight)" >&2
record=$("$build/bench/bench-gw-record" --url "$gw_url" --token-file "$tmp/admin.token" \
    --endpoint "$act_ep" --wards "$wards" --rounds "$rounds" --events "$events" \
    --inflight "$INFLIGHT" --batch "$BATCH" 2>"$logs/client.log" | tail -n 1) || {
    cat "$logs/client.log" >&2
    fail "the recording client failed"
}
grep '^record: round' "$logs/client.log" | sed 's/^record:/gateway: record:/' >&2
[[ $record == record_events_per_s=* ]] || {
    cat "$logs/client.log" >&2
    fail "the recording client printed no figures"
}
stored=$(act_env_sql activation "SELECT count(*) FROM events WHERE idempotency_key LIKE 'gwb-%'")
expected=$(((rounds * events + INFLIGHT * BATCH) * 3))
[[ $stored -eq $expected ]] || fail "events stored: $stored, expected $expected"
echo "gateway: events stored by the benchmark: $stored" \
    "(synchronous_commit=$(act_env_sql activation "SHOW synchronous_commit"))" >&2
echo "gateway: load after: $(uptime)" >&2

targets=$(awk -v r="$(field ratio "$reads")" -v p="$(field p99_ratio "$reads")" \
    -v w="$(field record_ratio "$record")" 'BEGIN {
        printf "ratio %s >= 0.5 %s; p99_ratio %s <= 2 %s; record_ratio %s >= 0.8 %s\n",
            r, (r >= 0.5 ? "ok" : "MISSED"), p, (p <= 2 ? "ok" : "MISSED"),
            w, (w >= 0.8 ? "ok" : "MISSED") }')
echo "gateway: targets: $targets" >&2

# The issue's keys first, then the extras.
record_main=${record% record_proto_events_per_s=*}
record_main=${record_main% rounds=*}
record_proto=
[[ $record == *record_proto_events_per_s=* ]] && record_proto=" record_proto_${record#* record_proto_}"
record_proto=${record_proto% rounds=*}
echo "gateway: ${reads%%|*} $record_main ${reads#*|}$record_proto rounds=$rounds"
