#!/usr/bin/env bash
# deploy/quickstart.sh - runs the whole phuxanh system on this machine (Debian 12).
#
#   deploy/quickstart.sh           install what is missing, build, start PostgreSQL and the services
#   deploy/quickstart.sh status    print what runs
#   deploy/quickstart.sh stop      stop the services and PostgreSQL
#   deploy/quickstart.sh token NAME ROLE [UNITS]
#                                  add an API token (viewer, recorder, planner or admin; a
#                                  recorder's units comma separated), shown once, stored hashed
#
# Everything lives under ./var: the PostgreSQL cluster (var/pg), logs (var/log), pid files
# (var/run). Running it again reuses what is there: no second initdb, no second copy of a
# service that already runs. The services' ZeroMQ links run under CURVE with a key pair per
# process in var/keys (made once by pxctl keys gen) and one allow-list, var/keys/allow; PX_CURVE=off
# starts them on plaintext links instead. Environment: PX_PG_PORT (default 55439), PX_PG_BINDIR,
# PX_CURVE.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"
# shellcheck source=SCRIPTDIR/lib/packages.sh
source deploy/lib/packages.sh

PGBIN="${PX_PG_BINDIR:-$PX_PG_BINDIR_DEFAULT}"
PG_PORT_WANTED="${PX_PG_PORT:-55439}"
VAR="$ROOT/var"
LOGDIR="$VAR/log"
RUNDIR="$VAR/run"
PGLOG="$LOGDIR/postgres.log"

ROSTER_ENDPOINT="tcp://127.0.0.1:7101"
ACTIVATION_ENDPOINT="tcp://127.0.0.1:7102"
ACTIVATION_FEED="tcp://127.0.0.1:7103"
GATEWAY_HTTP="127.0.0.1:8080"
# Each process publishes its log lines on PORT and keeps the recent ones behind PORT+1
# (docs/LOGS.md); these are pxctl logs' default --log-endpoints.
log_port() {
    case "$1" in
    roster) echo 7111 ;; activation) echo 7113 ;; gateway) echo 7115 ;;
    esac
}
TOKENS_FILE="$ROOT/var/gateway/tokens"
DEMO_CAMPAIGN="tn-cuoi-tuan-2023"
SERVICES=(roster activation gateway) # start order; stopped in reverse
KEYS_DIR="$ROOT/var/keys"
ALLOW_FILE="$KEYS_DIR/allow"
# Every process that speaks to the services, by the name it calls as (its key's name).
CURVE_NAMES=(roster activation gateway pxctl)
DATABASES=(roster activation)

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ---------------------------------------------------------------- helpers
# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# The cluster lives in ./var/pg. As root it belongs to the postgres system user (the server
# refuses to run as root), who must be able to reach it; when a parent of this checkout is closed
# to that user, the cluster goes to /var/tmp/phuxanh-<hash of the checkout path> instead.
PG_FALLBACK="/var/tmp/phuxanh-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
pg_base() { # pg_os_user (may be empty)
    if [ "$IS_ROOT" -eq 0 ] || [ -f "$VAR/pg/data/PG_VERSION" ]; then
        echo "$VAR/pg"
    elif [ -f "$PG_FALLBACK/data/PG_VERSION" ]; then
        echo "$PG_FALLBACK"
    elif [ -n "$1" ] && [ -d "$VAR" ] && runuser -u "$1" -- test -x "$VAR" 2>/dev/null; then
        echo "$VAR/pg"
    else
        echo "$PG_FALLBACK"
    fi
}

# pg_cmd CMD...: runs CMD as the cluster's owner, from a directory that user can read.
pg_cmd() {
    (
        cd "$PGBASE"
        if [ -n "$PG_OS_USER" ]; then
            runuser -u "$PG_OS_USER" -- "$@"
        else
            "$@"
        fi
    )
}

# Sets PGBASE, PGDATA and PG_OS_USER for an existing cluster (stop, status) or a new one (start).
pg_locate() { # create: 1 to pick (and maybe create) the system user
    PG_OS_USER=""
    if [ "$IS_ROOT" -eq 1 ]; then
        if [ "$1" = 1 ]; then
            PG_OS_USER="$(px_pg_os_user)"
        elif id -u postgres >/dev/null 2>&1; then
            PG_OS_USER=postgres
        fi
    fi
    PGBASE="$(pg_base "$PG_OS_USER")"
    PGDATA="$PGBASE/data"
    if [ "$IS_ROOT" -eq 1 ] && [ -d "$PGDATA" ]; then
        PG_OS_USER="$(stat -c %U "$PGDATA")"
    fi
}

pg_running() {
    [ -f "$PGDATA/PG_VERSION" ] && pg_cmd "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

# The port the running server listens on (line 4 of postmaster.pid).
pg_port() {
    sed -n 4p "$PGDATA/postmaster.pid"
}

service_bin() {
    echo "$ROOT/build/services/$1/px-$1"
}

# service_pid NAME: prints the pid of NAME when it runs (its pid file names a live process whose
# program is that service's binary).
service_pid() {
    local pidfile="$RUNDIR/$1.pid" pid argv0
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && alive "$pid" || return 1
    argv0="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1)"
    [ "$argv0" = "$(service_bin "$1")" ] || return 1
    echo "$pid"
}

service_where() {
    case "$1" in
    roster) echo "$ROSTER_ENDPOINT" ;;
    activation) echo "$ACTIVATION_ENDPOINT" ;;
    gateway) echo "http://$GATEWAY_HTTP" ;;
    esac
}

# ---------------------------------------------------------------- API tokens
# set_token NAME ROLE [UNITS]: a new token for NAME (replacing NAME's if any), printed on stdout
# and stored only as its SHA-256 in the gateway's token file (`pxctl tokens add`).
set_token() {
    local name="$1" role="$2" units="${3:-}" pxctl="$ROOT/build/services/pxctl/pxctl"
    if [ ! -x "$pxctl" ]; then
        echo "error: ${pxctl#"$ROOT"/} is not built (deploy/quickstart.sh builds it)" >&2
        return 1
    fi
    "$pxctl" tokens add "$name" "$role" --replace --file "$TOKENS_FILE" ${units:+--units "$units"}
}

# Tells a running gateway to read the token file again.
reload_gateway_tokens() {
    local pid
    if pid="$(service_pid gateway)"; then
        kill -HUP "$pid"
    fi
}

# ---------------------------------------------------------------- CURVE keys
# make_keys: a key pair per name of CURVE_NAMES (kept once made: the allow-lists trust them),
# and the allow-list of them all, written anew from the public certificates.
make_keys() {
    local name pxctl="$ROOT/build/services/pxctl/pxctl" tmp
    for name in "${CURVE_NAMES[@]}"; do
        if [ ! -s "$KEYS_DIR/${name}_secret" ]; then
            "$pxctl" keys gen "$name" --dir "$KEYS_DIR" --force >/dev/null
        fi
    done
    tmp="$(mktemp "$ALLOW_FILE.XXXXXX")"
    {
        echo "# deploy/quickstart.sh: the processes of this machine (<public key> <name>)"
        for name in "${CURVE_NAMES[@]}"; do
            printf '%s %s\n' "$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$KEYS_DIR/$name")" "$name"
        done
    } >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$ALLOW_FILE"
}

# curve_env NAME: the PX_CURVE_* assignments of process NAME (none with PX_CURVE=off).
curve_env() {
    if [ "${PX_CURVE:-on}" != off ]; then
        echo "PX_CURVE_SECRET_KEY=$KEYS_DIR/$1_secret"
        echo "PX_CURVE_ALLOW=$ALLOW_FILE"
    fi
}

# ---------------------------------------------------------------- start
start_postgres() {
    mkdir -p "$VAR" "$LOGDIR" "$RUNDIR"
    pg_locate 1
    if [ "$PGBASE" != "$VAR/pg" ]; then
        echo "    note: $PG_OS_USER cannot reach $VAR, so the cluster lives in $PGBASE"
    fi
    mkdir -p "$PGBASE"
    if [ -n "$PG_OS_USER" ]; then
        chown "$PG_OS_USER": "$PGBASE"
        chmod 700 "$PGBASE"
    fi
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        echo "==> initializing a PostgreSQL 15 cluster in $PGDATA"
        pg_cmd "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
            >>"$PGLOG" 2>&1 || { tail -n 20 "$PGLOG" >&2; exit 1; }
        local sockdir="$PGBASE/run"
        # A unix socket path must fit in 107 bytes; past that the server listens on TCP only.
        if [ ${#sockdir} -gt 90 ]; then
            sockdir=""
        else
            pg_cmd mkdir -p "$sockdir"
        fi
        pg_cmd tee -a "$PGDATA/postgresql.conf" >/dev/null <<CONF

# deploy/quickstart.sh: a local cluster for one machine, reachable from this machine only.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
CONF
    fi
    if pg_running; then
        PG_PORT="$(pg_port)"
        echo "==> PostgreSQL already running on 127.0.0.1:$PG_PORT"
        if [ "$PG_PORT" != "$PG_PORT_WANTED" ]; then
            echo "    (not on PX_PG_PORT=$PG_PORT_WANTED; stop it first to change the port)"
        fi
    else
        echo "==> starting PostgreSQL on 127.0.0.1:$PG_PORT_WANTED (log: $PGLOG)"
        if ! pg_cmd "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -o "-p $PG_PORT_WANTED" start \
            >>"$PGLOG" 2>&1; then
            echo "error: PostgreSQL did not start; the end of $PGLOG:" >&2
            tail -n 15 "$PGLOG" >&2
            echo "(if port $PG_PORT_WANTED is taken, choose another: PX_PG_PORT=NNNN $0)" >&2
            exit 1
        fi
        PG_PORT="$PG_PORT_WANTED"
    fi
    local i
    for i in $(seq 1 100); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres && break
        sleep 0.1
    done
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres ||
        { echo "error: PostgreSQL does not answer on port $PG_PORT" >&2; exit 1; }

    # Each service's database with its two roles, as on a production server (deploy/postgres/):
    # the service migrates as px_<name>_owner and serves as px_<name>, which has no DDL.
    PX_PSQL="$PGBIN/psql" deploy/postgres/setup.sh \
        "postgresql://postgres@127.0.0.1:$PG_PORT/postgres" "${DATABASES[@]}" | sed 's/^/    /'
}

# db_env NAME: the database settings of service NAME (its runtime and its owner role).
db_env() {
    echo "PX_DB_URL=postgresql://px_$1@127.0.0.1:$PG_PORT/$1"
    echo "PX_DB_MIGRATE_URL=postgresql://px_$1_owner@127.0.0.1:$PG_PORT/$1"
}

START_FAILED=0
start_service() { # name, env assignments...
    local name="$1" bin pid
    shift
    bin="$(service_bin "$name")"
    if [ ! -x "$bin" ]; then
        echo "    skipped $name: ${bin#"$ROOT"/} is not built (yet)"
        return 0
    fi
    if pid="$(service_pid "$name")"; then
        echo "    $name already running (pid $pid)"
        return 0
    fi
    local lp
    lp="$(log_port "$name")"
    (exec setsid env PX_LOG_ENDPOINT="tcp://127.0.0.1:$lp" \
        PX_LOG_HISTORY_ENDPOINT="tcp://127.0.0.1:$((lp + 1))" "$@" "$bin" \
        </dev/null >>"$LOGDIR/$name.log" 2>&1) &
    pid=$!
    echo "$pid" >"$RUNDIR/$name.pid"
    sleep 0.5
    if alive "$pid"; then
        echo "    started $name (pid $pid, log var/log/$name.log)"
    else
        rm -f "$RUNDIR/$name.pid"
        START_FAILED=1
        echo "    $name exited at once; the end of var/log/$name.log:" >&2
        tail -n 15 "$LOGDIR/$name.log" | sed 's/^/      /' >&2
    fi
}

cmd_start() {
    px_install_packages "${PX_DEBIAN_PACKAGES[@]}"

    # Same tree and build type as tests/run.sh --quick, but warnings do not stop a start.
    echo "==> building build/"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPX_WERROR=OFF -DPX_SANITIZE= >/dev/null
    cmake --build build --target px-system -j"$(nproc 2>/dev/null || echo 2)"

    start_postgres

    # The activation service's citizen-key secret, made once and kept: with another key no
    # stored citizen would be recognized again.
    if [ ! -s "$VAR/citizen.key" ]; then
        (umask 077 && head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VAR/citizen.key")
    fi
    chmod 600 "$VAR/citizen.key"

    # The gateway's tokens: an admin token made once (shown then), and a viewer token for the
    # dashboard and the curl line below, made anew on every start (the old one stops working).
    local admin_tok="" viewer_tok
    if [ ! -s "$TOKENS_FILE" ] || ! grep -q -E '^[0-9a-f]{64} quickstart-admin ' "$TOKENS_FILE"; then
        admin_tok="$(set_token quickstart-admin admin)"
    fi
    viewer_tok="$(set_token quickstart-viewer viewer)"
    reload_gateway_tokens

    if [ "${PX_CURVE:-on}" != off ]; then
        echo "==> CURVE keys in var/keys (allow-list var/keys/allow)"
        make_keys
    fi
    local -a roster_curve activation_curve gateway_curve
    mapfile -t roster_curve < <(curve_env roster)
    mapfile -t activation_curve < <(curve_env activation)
    mapfile -t gateway_curve < <(curve_env gateway)

    echo "==> starting the services"
    # shellcheck disable=SC2046 # db_env's two words
    start_service roster "${roster_curve[@]}" $(db_env roster) PX_LISTEN="$ROSTER_ENDPOINT" \
        PX_ACTIVATION_ENDPOINTS="$ACTIVATION_ENDPOINT"
    # shellcheck disable=SC2046
    start_service activation "${activation_curve[@]}" $(db_env activation) \
        PX_LISTEN="$ACTIVATION_ENDPOINT" \
        PX_ROSTER_ENDPOINTS="$ROSTER_ENDPOINT" PX_CITIZEN_KEY_FILE="$VAR/citizen.key" \
        PX_PUB_ENDPOINT="$ACTIVATION_FEED"
    start_service gateway "${gateway_curve[@]}" PX_HTTP_LISTEN="$GATEWAY_HTTP" PX_ROSTER_ENDPOINTS="$ROSTER_ENDPOINT" \
        PX_ACTIVATION_ENDPOINTS="$ACTIVATION_ENDPOINT" PX_ACTIVATION_FEED="$ACTIVATION_FEED" \
        PX_TOKENS_FILE="$TOKENS_FILE" PX_PUBLIC_PROGRESS=on

    # ------------------------------------------------------------ load demo data
    # Roster data, activation targets, the first wave's plan, then a weekend of events: in
    # that order (see deploy/load-demo.sh). Without a running activation service the roster
    # is loaded alone and the wave planned evenly.
    if [ -x deploy/load-demo.sh ]; then
        echo "==> loading the demo data (deploy/load-demo.sh)"
        local act_ep="$ACTIVATION_ENDPOINT"
        service_pid activation >/dev/null || act_ep=""
        local -a demo_curve # the loader is pxctl, with its key
        mapfile -t demo_curve < <(curve_env pxctl)
        if ! env "${demo_curve[@]}" PX_ROSTER_ENDPOINTS="$ROSTER_ENDPOINT" \
            PX_ACTIVATION_ENDPOINTS="$act_ep" deploy/load-demo.sh; then
            echo "error: deploy/load-demo.sh failed" >&2
            START_FAILED=1
        fi
    fi

    echo
    cmd_status
    echo
    if service_pid gateway >/dev/null; then
        echo "Dashboard:  http://$GATEWAY_HTTP/   (asks for a viewer token: the one below)"
        if [ -n "$admin_tok" ]; then
            echo "Admin token (shown this once; stored only hashed in var/gateway/tokens):"
            echo "    $admin_tok"
        fi
        echo "Viewer token (new on every start):"
        echo "    $viewer_tok"
        echo "Progress of the demo's district, from another system:"
        echo "    curl -H 'Authorization: Bearer $viewer_tok' \\"
        echo "         'http://$GATEWAY_HTTP/v1/progress?campaign=$DEMO_CAMPAIGN&unit=725'"
        echo "More tokens: deploy/quickstart.sh token NAME ROLE [UNITS]"
        echo
    fi
    if [ "${PX_CURVE:-on}" != off ]; then
        echo "pxctl speaks CURVE with its own key:"
        echo "    export PX_CURVE_SECRET_KEY=$KEYS_DIR/pxctl_secret PX_CURVE_ALLOW=$ALLOW_FILE"
    fi
    echo "Logs: var/log/, and live from every service: build/services/pxctl/pxctl logs -f"
    echo "Stop everything: deploy/quickstart.sh stop"
    return "$START_FAILED"
}

# ---------------------------------------------------------------- stop
stop_service() {
    local name="$1" pid i
    if ! pid="$(service_pid "$name")"; then
        rm -f "$RUNDIR/$name.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        echo "    $name did not stop within 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUNDIR/$name.pid"
    echo "    stopped $name (pid $pid)"
}

cmd_stop() {
    local i
    echo "==> stopping the services"
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        stop_service "${SERVICES[$i]}"
    done
    pg_locate 0
    if pg_running; then
        echo "==> stopping PostgreSQL ($PGDATA)"
        pg_cmd "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 stop -m fast >>"$PGLOG" 2>&1
    fi
    echo "stopped."
}

# ---------------------------------------------------------------- status
cmd_status() {
    local name pid
    pg_locate 0
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        echo "PostgreSQL   not initialized (deploy/quickstart.sh creates it in $VAR/pg)"
    elif pg_running; then
        echo "PostgreSQL   running   postgresql://postgres@127.0.0.1:$(pg_port)/   databases:" \
            "${DATABASES[*]}   data $PGDATA"
    else
        echo "PostgreSQL   stopped   data $PGDATA"
    fi
    for name in "${SERVICES[@]}"; do
        if pid="$(service_pid "$name")"; then
            printf '%-12s running   %s   pid %s\n' "$name" "$(service_where "$name")" "$pid"
        elif [ -x "$(service_bin "$name")" ]; then
            printf '%-12s stopped\n' "$name"
        else
            printf '%-12s not built\n' "$name"
        fi
    done
}

case "${1:-start}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
token)
    [ $# -ge 3 ] || { echo "usage: $0 token NAME ROLE [UNITS]" >&2; exit 2; }
    set_token "$2" "$3" "${4:-}"
    reload_gateway_tokens
    ;;
-h | --help | help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
