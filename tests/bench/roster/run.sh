#!/usr/bin/env bash
# tests/bench/roster/run.sh [--upsert-rounds N] [--duty-rounds N] [--quick]
#
# The roster benchmark: UpsertVolunteers with 10,000 volunteers in one call and CheckDuty with
# 1,000 queries in one call, through px-roster over ZeroMQ, each against a direct libpq client
# doing the same work on the same database in the same run (roster_client.c says what each
# side does and what the baseline leaves out). p50 over --upsert-rounds rounds (default 5; each
# writes 10,000 new volunteers a side; rounds re-writing 10,000 changed rows are measured too)
# and --duty-rounds rounds (default 20; 1,000 fresh queries each), in milliseconds.
#
# Starts its own throwaway PostgreSQL (act_env's: initdb in a temporary directory, as the
# postgres user when run as root; fsync and synchronous_commit=on: every commit is durable)
# and px-roster (2 workers), and stops both on exit. CheckDuty is asked about data put in by
# load.sql after the upserts: Thuận An's tree, a campaign of 10 weekend waves and 3,000
# assignments.
#
# Last line: roster: upsert10k_ms=.. checkduty1000_ms=.. raw_upsert10k_ms=..
#            raw_checkduty1000_ms=.. upsert_ratio=.. checkduty_ratio=..   (ratio: ours / raw)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
logs=$build/bench/roster-logs
upsert_rounds=5
duty_rounds=20
readonly CAMPAIGN=tn-cuoi-tuan-2023 WORKERS=2

while [[ $# -gt 0 ]]; do
    case $1 in
        --upsert-rounds) upsert_rounds=${2:?}; shift 2 ;;
        --duty-rounds) duty_rounds=${2:?}; shift 2 ;;
        --quick) upsert_rounds=2; duty_rounds=5; shift ;;
        *) sed -n '2p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2 ;;
    esac
done
[[ -f $build/CMakeCache.txt ]] || {
    echo "roster: $build is not configured: run tests/bench/run.sh roster" >&2
    exit 1
}
mkdir -p "$logs"
: >"$logs/roster.log"
: >"$logs/client.log"

# shellcheck source=tests/bench/common/roster_env.sh
source "$root/tests/bench/common/roster_env.sh"
tmp=$(mktemp -d /tmp/px-bench-roster.XXXXXX)
chmod 755 "$tmp"
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    roster_env_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

field() {
    awk -v key="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == key) { print substr($i, n + 1); exit } } }' <<<"$2"
}

echo "roster: building px-roster bench-roster" >&2
if ! cmake --build "$build" --target px-roster bench-roster -j "$(nproc)" \
        >"$logs/build.log" 2>&1; then
    tail -n 30 "$logs/build.log" >&2
    exit 1
fi

echo "roster: starting PostgreSQL and px-roster" >&2
act_env_pg_start "$tmp" roster
roster_env_start roster --workers "$WORKERS"

client() { # MODE [ARGS]: the client's result line; its progress goes to client.log
    "$build/bench/bench-roster" "$@" --endpoint "$ROSTER_ENDPOINT" \
        --db-url "$PG_URL_BASE/roster" 2>>"$logs/client.log" | tail -n 1
}

echo "roster: measuring UpsertVolunteers ($upsert_rounds rounds)" >&2
upsert=$(client upsert --rounds "$upsert_rounds") || {
    cat "$logs/client.log" >&2
    echo "roster: the client failed" >&2
    exit 1
}

echo "roster: loading the tree, the campaign and its assignments (load.sql)" >&2
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d roster -v camp="$CAMPAIGN" \
    -f "$root/tests/bench/roster/load.sql" >"$logs/load.log" 2>&1 || {
    tail -n 20 "$logs/load.log" >&2
    exit 1
}

echo "roster: measuring CheckDuty ($duty_rounds rounds)" >&2
duty=$(client checkduty --campaign "$CAMPAIGN" --rounds "$duty_rounds") || {
    cat "$logs/client.log" >&2
    echo "roster: the client failed" >&2
    exit 1
}

echo "roster: rows stored: volunteers=$(act_env_sql roster "SELECT count(*) FROM volunteers")" \
    "units=$(act_env_sql roster "SELECT count(*) FROM units")" \
    "assignments=$(act_env_sql roster "SELECT count(*) FROM assignments")" \
    "audit=$(act_env_sql roster "SELECT count(*) FROM audit")" \
    "(synchronous_commit=$(act_env_sql roster "SHOW synchronous_commit"))"
echo "roster: upsert:    $upsert"
echo "roster: checkduty: $duty"

ours_up=$(field upsert10k_ms "$upsert")
raw_up=$(field raw_upsert10k_ms "$upsert")
ours_duty=$(field checkduty1000_ms "$duty")
raw_duty=$(field raw_checkduty1000_ms "$duty")
ratios=$(awk -v a="$ours_up" -v b="$raw_up" -v c="$ours_duty" -v d="$raw_duty" \
    'BEGIN { printf "upsert_ratio=%.2f checkduty_ratio=%.2f\n", a / b, c / d }')
echo "roster: upsert10k_ms=$ours_up checkduty1000_ms=$ours_duty raw_upsert10k_ms=$raw_up" \
    "raw_checkduty1000_ms=$raw_duty $ratios"
