#!/usr/bin/env bash
# tests/bench/ingest/run.sh [--events N] [--rounds N] [--single N] [--quick]
#
# The ingest benchmark: events/s through RecordEvents (batches of 100, 8 calls in flight on one
# px_rpc_client) against raw libpq batched INSERTs of the same number of rows, with the columns
# of the events table, into a copy of that table (raw_events: LIKE events INCLUDING ALL) in the
# same database in the same run (8 connections, each batch one durable transaction); then
# single-event calls, one in flight, p50/p99 in ms. The two sides take turns in rounds (5, of
# --events each), and the figures are medians over the rounds (ratio: of the per-round ratios).
#
# Starts its own throwaway PostgreSQL (initdb in a temporary directory; as the postgres user
# when run as root; fsync and synchronous_commit=on: every commit is durable) and px-activation
# (8 workers, its unit tree loaded by SQL, no px-roster: events name no volunteer, so the
# roster is not asked), and stops both on exit.
#
# Last line: ingest: events_per_s=.. raw_events_per_s=.. ratio=.. single_p50_ms=.. single_p99_ms=..
# rounds=..
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
logs=$build/bench/ingest-logs
events=20000
rounds=5
single=1000
readonly WORKERS=8 INFLIGHT=8 BATCH=100

while [[ $# -gt 0 ]]; do
    case $1 in
        --events) events=${2:?}; shift 2 ;;
        --single) single=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --quick) events=2000; rounds=3; single=200; shift ;;
        *) sed -n '2p' "${BASH_SOURCE[0]}" | sed 's/^# //' >&2; exit 2 ;;
    esac
done
[[ -f $build/CMakeCache.txt ]] || {
    echo "ingest: $build is not configured: run tests/bench/run.sh ingest" >&2
    exit 1
}
mkdir -p "$logs"
: >"$logs/activation.log"

# shellcheck source=tests/bench/common/act_env.sh
source "$root/tests/bench/common/act_env.sh"
tmp=$(mktemp -d /tmp/px-bench-ingest.XXXXXX)
chmod 755 "$tmp"
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    act_env_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "ingest: building px-activation bench-act-ingest" >&2
if ! cmake --build "$build" --target px-activation bench-act-ingest -j "$(nproc)" \
        >"$logs/build.log" 2>&1; then
    tail -n 30 "$logs/build.log" >&2
    exit 1
fi

echo "ingest: starting PostgreSQL and px-activation" >&2
act_env_pg_start "$tmp"
# First start applies the migrations; then the tree goes in and the service starts again.
act_env_act_start activation --pub-endpoint ""
act_env_act_stop
act_env_sql activation "$(act_env_tree_sql 0 0 4)"
# The campaign as the roster would have told the service (its local copy of campaigns).
act_env_sql activation "INSERT INTO campaigns (id, name, starts_on, ends_on)
    VALUES ('bench-ingest', 'Bench', current_date - 30, current_date + 30)"
act_env_sql activation "CREATE TABLE raw_events (LIKE events INCLUDING ALL)"
pub_port=$(act_env_free_port)
act_env_act_start activation --workers "$WORKERS" --pub-endpoint "tcp://127.0.0.1:$pub_port"

wards=25966,25963,25969,25972,25975,25978,25981,25984,25987,25990
echo "ingest: measuring ($rounds rounds of $events events a side, $single single calls)" >&2
line=$("$build/bench/bench-act-ingest" --endpoint "$ACT_ENDPOINT" \
    --db-url "$PG_URL_BASE/activation" --wards "$wards" --events "$events" --rounds "$rounds" --single "$single" \
    --inflight "$INFLIGHT" --batch "$BATCH" 2>"$logs/client.log" | tail -n 1) || {
    cat "$logs/client.log" >&2
    echo "ingest: the client failed" >&2
    exit 1
}
n_events=$(act_env_sql activation "SELECT count(*) FROM events")
n_raw=$(act_env_sql activation "SELECT count(*) FROM raw_events")
echo "ingest: rows stored: events=$n_events raw_events=$n_raw" \
    "(synchronous_commit=$(act_env_sql activation "SHOW synchronous_commit"))"
echo "ingest: $line"
