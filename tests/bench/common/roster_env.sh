# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # sets ROSTER_* for the caller; reads its build and logs
# tests/bench/common/roster_env.sh - sourced by the roster benchmark: act_env.sh's throwaway
# PostgreSQL (same durable settings) and px-roster, stopped by the caller's EXIT trap
# (roster_env_stop).
#
#   act_env_pg_start DIR roster    from act_env.sh: PostgreSQL with a database "roster"
#   act_env_sql DB SQL             from act_env.sh
#   roster_env_start DB [ARGS]     px-roster on DB, a free port; sets ROSTER_ENDPOINT and
#                                  ROSTER_PID (waits for READY, so the migrations are applied)
#   roster_env_roster_stop         SIGTERM, then SIGKILL after 10 s
#   roster_env_stop                px-roster and PostgreSQL (for the EXIT trap)
# Expects $build (the bench build tree) and $logs (a log directory).

# shellcheck source=tests/bench/common/act_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/act_env.sh"

ROSTER_PID=
ROSTER_ENDPOINT=

roster_env_start() { # DB [extra args]
    local db=$1 port i line
    shift
    port=$(act_env_free_port)
    # Emptied here, not by the redirection below: that happens in the child, after this shell
    # may already have read an earlier start's READY line.
    : >"$logs/roster.out"
    "$build/services/roster/px-roster" --listen "tcp://127.0.0.1:$port" \
        --db-url "$PG_URL_BASE/$db" --log-level warn "$@" \
        >"$logs/roster.out" 2>>"$logs/roster.log" &
    ROSTER_PID=$!
    for ((i = 0; i < 600; i++)); do
        line=$(grep -m1 '^READY ' "$logs/roster.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            ROSTER_ENDPOINT=${line#READY }
            return 0
        fi
        kill -0 "$ROSTER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: px-roster did not start; $logs/roster.log:" >&2
    tail -n 20 "$logs/roster.log" >&2
    return 1
}

roster_env_roster_stop() {
    [[ -n $ROSTER_PID ]] || return 0
    local pid=$ROSTER_PID i
    ROSTER_PID=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

roster_env_stop() {
    roster_env_roster_stop
    act_env_stop
}
