# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # sets ACT_* for the caller; reads its build and logs
# tests/bench/common/act_env.sh - sourced by the activation benchmarks (ingest, scale): a
# throwaway PostgreSQL and px-activation, stopped by the caller's EXIT trap (act_env_stop).
# The roster benchmark takes its PostgreSQL from here too, through roster_env.sh.
#
#   act_env_pg_start DIR [DB]   initdb in DIR/pg (as postgres when root), durable settings
#                               (fsync, synchronous_commit=on), a free port, database DB
#                               (default activation); sets PG_URL_BASE
#   act_env_sql DB SQL          psql -v ON_ERROR_STOP=1 on database DB
#   act_env_act_start DB [ARGS] px-activation on DB, a free port, the bench secret; sets
#                               ACT_ENDPOINT and ACT_PID (waits for READY)
#   act_env_act_stop            SIGTERM, then SIGKILL after 10 s
#   act_env_stop                both (for the EXIT trap)
#   bench_svc_start NAME DB [ARGS], bench_svc_stop PID
#                               any px-NAME of the build, as act_env_act_start/stop do it
# Expects $build (the bench build tree) and $logs (a log directory).

PG_BIN=${PX_PG_BINDIR:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
ACT_SECRET=5f0e8c3a1b2d4e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7
PG_DIR=
PG_PORT=
PG_USER_OS=
PG_URL_BASE=
ACT_PID=
ACT_ENDPOINT=
SVC_PID=
SVC_ENDPOINT=

act_env_free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

act_env_pg() { # CMD...: as the cluster's owner
    if [[ -n $PG_USER_OS ]]; then
        (cd / && runuser -u "$PG_USER_OS" -- "$@")
    else
        "$@"
    fi
}

act_env_pg_start() {
    PG_DIR=$1/pg
    mkdir -p "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        PG_USER_OS=postgres
        chown postgres: "$PG_DIR"
    fi
    act_env_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 >"$logs/initdb.log" 2>&1 || { tail "$logs/initdb.log" >&2; return 1; }
    PG_PORT=$(act_env_free_port)
    act_env_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 -l "$PG_DIR/log" \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on \
            -c synchronous_commit=on -c shared_buffers=512MB -c max_wal_size=8GB \
            -c max_connections=100" start >/dev/null || { tail "$PG_DIR/log" >&2; return 1; }
    PG_URL_BASE="postgresql://postgres@127.0.0.1:$PG_PORT"
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "${2:-activation}"
}

act_env_sql() { # DB SQL
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -tA \
        -c "$2"
}

# A service of this build (services/NAME/px-NAME) on database DB and a free port, its output
# in $logs/NAME.{out,log}; waits for its READY line (so its migrations have run). Sets SVC_PID
# (also when it did not start, for the caller to stop) and SVC_ENDPOINT.
bench_svc_start() { # NAME DB [extra args]
    local name=$1 db=$2 port i line
    shift 2
    port=$(act_env_free_port)
    SVC_ENDPOINT=
    # Emptied here, not by the redirection below: that happens in the child, after this shell
    # may already have read an earlier start's READY line.
    : >"$logs/$name.out"
    "$build/services/$name/px-$name" --listen "tcp://127.0.0.1:$port" \
        --db-url "$PG_URL_BASE/$db" --log-level warn "$@" \
        >"$logs/$name.out" 2>>"$logs/$name.log" &
    SVC_PID=$!
    for ((i = 0; i < 600; i++)); do
        line=$(grep -m1 '^READY ' "$logs/$name.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            SVC_ENDPOINT=${line#READY }
            return 0
        fi
        kill -0 "$SVC_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: px-$name did not start; $logs/$name.log:" >&2
    tail -n 20 "$logs/$name.log" >&2
    return 1
}

bench_svc_stop() { # PID: SIGTERM, then SIGKILL after 10 s
    [[ -n $1 ]] || return 0
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

act_env_act_start() { # DB [extra args]
    local rc=0
    bench_svc_start activation "$1" --citizen-key "$ACT_SECRET" "${@:2}" || rc=$?
    ACT_PID=$SVC_PID
    ACT_ENDPOINT=$SVC_ENDPOINT
    return "$rc"
}

act_env_act_stop() {
    local pid=$ACT_PID
    ACT_PID=
    bench_svc_stop "$pid"
}

act_env_stop() {
    act_env_act_stop
    if [[ -n $PG_DIR && -f $PG_DIR/data/postmaster.pid ]]; then
        act_env_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 stop -m fast >/dev/null 2>&1 || true
    fi
    if [[ -n $PG_DIR && -z ${PX_BENCH_KEEP:-} ]]; then
        rm -rf "${PG_DIR:?}"
    fi
}

# The unit tree the benchmarks use, as INSERTs into the activation database's local copy of
# the roster's tree (units): Bình Dương (74) > Thuận An (725, its 10 real wards from
# units.csv) and EXTRA_DISTRICTS generated districts (D01..) of WARDS_PER wards each, every
# ward with NBH_PER neighborhoods. The service reads this table at start, so no px-roster is
# needed (it is optional: nothing here asks it).
act_env_tree_sql() { # extra_districts wards_per nbh_per
    cat <<SQL
INSERT INTO units (code, name, level, parent_code, version) VALUES
  ('74', 'Bình Dương', 1, NULL, 1), ('725', 'Thuận An', 2, '74', 1)
ON CONFLICT DO NOTHING;
INSERT INTO units (code, name, level, parent_code, version)
SELECT w, 'Phường ' || w, 3, '725', 1
FROM unnest(ARRAY['25966','25963','25969','25972','25975','25978','25981','25984','25987',
                  '25990']) AS w
ON CONFLICT DO NOTHING;
INSERT INTO units (code, name, level, parent_code, version)
SELECT 'D' || lpad(d::text, 2, '0'), 'Huyện ' || d, 2, '74', 1 FROM generate_series(1, $1) d;
INSERT INTO units (code, name, level, parent_code, version)
SELECT 'D' || lpad(d::text, 2, '0') || 'W' || lpad(w::text, 2, '0'), 'Xã ' || d || '-' || w, 3,
       'D' || lpad(d::text, 2, '0'), 1
FROM generate_series(1, $1) d, generate_series(1, $2) w;
INSERT INTO units (code, name, level, parent_code, version)
SELECT u.code || '-' || lpad(n::text, 2, '0'), 'Khu phố ' || n, 4, u.code, 1
FROM units u, generate_series(1, $3) n WHERE u.level = 3;
INSERT INTO units_sync (id, tree_version) VALUES (1, 1) ON CONFLICT DO NOTHING;
SQL
}
