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
    local rc=0
    bench_svc_start roster "$@" || rc=$?
    ROSTER_PID=$SVC_PID
    ROSTER_ENDPOINT=$SVC_ENDPOINT
    return "$rc"
}

roster_env_roster_stop() {
    local pid=$ROSTER_PID
    ROSTER_PID=
    bench_svc_stop "$pid"
}

roster_env_stop() {
    roster_env_roster_stop
    act_env_stop
}
