#!/usr/bin/env bash
# tests/bench/scale/run.sh [--citizens N] [--calls N] [--districts N]
#
# The scale benchmark: a province's worth of citizens (default 2,700,000) and their events in
# the activation database, then GetProgress for the province and for a ward, and QueryCounts
# by day for a district, p50/p99 over --calls calls each (default 200), against the same calls
# on the same tree with no events (measured first, on the same service).
#
# The tree (act_env_tree_sql): Bình Dương > Thuận An's 10 real wards and --districts generated
# districts (default 8) of 10 wards each, 4 neighborhoods a ward. The data is loaded FAST by
# direct SQL (load.sql: INSERT ... SELECT from generate_series, not through RecordEvents),
# writing citizens, events, totals, daily rows and follow-ups the way RecordEvents would,
# consistent with each other (run.sh checks the province's totals against the citizens).
#
# Starts its own throwaway PostgreSQL (durable settings) and px-activation (no px-roster: the
# tree is in its local table) and stops both on exit. ratio = loaded / empty p50, the worse
# of the measured calls (QueryCounts is left out while it answers UNIMPLEMENTED: "na").
#
# Last line: scale: citizens=.. progress_p50_ms=.. progress_p99_ms=.. counts_p99_ms=.. ratio=..
#            db_mb=.. rss_mb=..
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
logs=$build/bench/scale-logs
citizens=2700000
calls=200
districts=8
readonly CAMPAIGN=bench-scale

while [[ $# -gt 0 ]]; do
    case $1 in
        --citizens) citizens=${2:?}; shift 2 ;;
        --calls) calls=${2:?}; shift 2 ;;
        --districts) districts=${2:?}; shift 2 ;;
        *) sed -n '2p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2 ;;
    esac
done
[[ -f $build/CMakeCache.txt ]] || {
    echo "scale: $build is not configured: run tests/bench/run.sh scale" >&2
    exit 1
}
mkdir -p "$logs"
: >"$logs/activation.log"

# shellcheck source=tests/bench/common/act_env.sh
source "$root/tests/bench/common/act_env.sh"
tmp=$(mktemp -d /tmp/px-bench-scale.XXXXXX)
chmod 755 "$tmp"
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    act_env_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

field() {
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == key) { print substr($i, n + 1); exit } } }' <<<"$2"
}

echo "scale: building px-activation bench-act-scale" >&2
if ! cmake --build "$build" --target px-activation bench-act-scale -j "$(nproc)" \
        >"$logs/build.log" 2>&1; then
    tail -n 30 "$logs/build.log" >&2
    exit 1
fi

echo "scale: starting PostgreSQL and px-activation" >&2
act_env_pg_start "$tmp"
act_env_act_start activation --pub-endpoint ""
act_env_act_stop
act_env_sql activation "$(act_env_tree_sql "$districts" 10 4)"
# The campaign as the roster would have told the service (its local copy of campaigns).
act_env_sql activation "INSERT INTO campaigns (id, name, starts_on, ends_on)
    VALUES ('$CAMPAIGN', 'Bench', current_date - 30, current_date + 30)"
act_env_sql activation "INSERT INTO targets (campaign_id, unit_code, target)
    SELECT '$CAMPAIGN', code, 20000 FROM units WHERE level = 3"
act_env_act_start activation --pub-endpoint ""
nwards=$(act_env_sql activation "SELECT count(*) FROM units WHERE level = 3")

measure() {
    "$build/bench/bench-act-scale" --endpoint "$ACT_ENDPOINT" --campaign "$CAMPAIGN" \
        --province 74 --ward 25966 --district 725 --calls "$calls" 2>>"$logs/client.log" |
        tail -n 1
}

echo "scale: measuring the empty database ($nwards wards)" >&2
empty=$(measure)
echo "scale: empty:  $empty"

echo "scale: loading $citizens citizens by direct SQL (tests/bench/scale/load.sql)" >&2
t0=$(date +%s)
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d activation \
    -v n="$citizens" -v camp="$CAMPAIGN" -f "$root/tests/bench/scale/load.sql" \
    >"$logs/load.log" 2>&1 || { tail -n 20 "$logs/load.log" >&2; exit 1; }
load_s=$(($(date +%s) - t0))
n_events=$(act_env_sql activation "SELECT count(*) FROM events")
check=$(act_env_sql activation "SELECT (SELECT count FROM totals WHERE campaign_id = '$CAMPAIGN'
    AND unit_code = '74' AND stage = 3) = (SELECT count(*) FROM citizens
    WHERE campaign_id = '$CAMPAIGN' AND activated_at IS NOT NULL)")
echo "scale: loaded $citizens citizens, $n_events events in ${load_s}s by direct SQL" \
    "(totals agree with citizens: $check)"

echo "scale: measuring the loaded database" >&2
loaded=$(measure)
echo "scale: loaded: $loaded"

db_mb=$(act_env_sql activation "SELECT pg_database_size('activation') / 1048576")
rss_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$ACT_PID/status")
rss_mb=$((rss_kb / 1024))

ratio=$(awk -v e1="$(field progress_p50_ms "$empty")" -v l1="$(field progress_p50_ms "$loaded")" \
    -v e2="$(field ward_p50_ms "$empty")" -v l2="$(field ward_p50_ms "$loaded")" \
    -v e3="$(field counts_p50_ms "$empty")" -v l3="$(field counts_p50_ms "$loaded")" 'BEGIN {
        r = l1 / e1; if (l2 / e2 > r) r = l2 / e2;
        if (e3 != "na" && l3 != "na" && e3 + 0 > 0 && l3 / e3 > r) r = l3 / e3;
        printf "%.2f\n", r }')
echo "scale: citizens=$citizens progress_p50_ms=$(field progress_p50_ms "$loaded")" \
    "progress_p99_ms=$(field progress_p99_ms "$loaded")" \
    "counts_p99_ms=$(field counts_p99_ms "$loaded") ratio=$ratio db_mb=$db_mb rss_mb=$rss_mb"
