#!/usr/bin/env bash
# tests/run.sh - builds phuxanh and runs every test, the way CI does.
#
#   tests/run.sh            everything: build/ and build-san/ (ASan+UBSan), format check, ctest
#   tests/run.sh --quick    build/ only (for developers)
#   tests/run.sh -R REGEX   only the tests whose names match REGEX (passed to ctest -R)
#
# Installs missing Debian packages, starts a throwaway PostgreSQL 15 cluster on a free port
# (removed on exit, even when this script is killed) and exports PX_TEST_PG_URL for the tests.
set -euo pipefail

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

QUICK=0
CTEST_FILTER=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    -R)
        [ $# -ge 2 ] || { echo "error: -R needs a regex" >&2; exit 2; }
        CTEST_FILTER=(-R "$2")
        shift
        ;;
    -R?*) CTEST_FILTER=(-R "${1#-R}") ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$ROOT"
# shellcheck source=SCRIPTDIR/../deploy/lib/packages.sh
source deploy/lib/packages.sh

JOBS="$(nproc 2>/dev/null || echo 2)"
PGBIN="${PX_PG_BINDIR:-$PX_PG_BINDIR_DEFAULT}"
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ---------------------------------------------------------------- packages
px_install_packages "${PX_DEBIAN_PACKAGES[@]}"

# ---------------------------------------------------------------- npm projects of the tests
# Every tests/gateway/*/package.json is an npm project whose tests ctest runs (the dashboard
# drives Debian's chromium with playwright-core, no browser download; node-connect holds
# off-the-shelf Connect clients). Node comes from Debian when the machine has none (only then:
# a machine whose node came from elsewhere, with its own npm, would conflict with Debian's npm
# package). `npm ci` installs exactly each lock file, and only when it changed since that
# project's last install (a copy of it in node_modules/ says which was installed).
if ! command -v node >/dev/null 2>&1; then
    px_install_packages nodejs npm
elif ! command -v npm >/dev/null 2>&1; then
    px_install_packages npm
fi
for pj in tests/gateway/*/package.json; do
    dir="$(dirname "$pj")"
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.px-installed-lock"; then
        echo "==> npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund) ||
            { echo "==> run.sh: FAILED (npm ci in $dir)"; exit 1; }
        cp "$dir/package-lock.json" "$dir/node_modules/.px-installed-lock"
    fi
done

# ---------------------------------------------------------------- formatting
FORMAT_OK=1
echo "==> checking formatting (clang-format, .clang-format at the root)"
SOURCES=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
        SOURCES+=("$f")
    done < <(git ls-files -z -co --exclude-standard -- services include tests)
else
    while IFS= read -r -d '' f; do
        SOURCES+=("${f#./}")
    done < <(find ./services ./include ./tests -type f -print0 2>/dev/null)
fi
FORMAT_FILES=()
for f in ${SOURCES[@]+"${SOURCES[@]}"}; do
    case "$f" in
    *.c | *.h) [ -f "$f" ] && FORMAT_FILES+=("$f") ;;
    esac
done
if [ ${#FORMAT_FILES[@]} -gt 0 ]; then
    if ! printf '%s\0' "${FORMAT_FILES[@]}" | xargs -0 clang-format --dry-run --Werror; then
        FORMAT_OK=0
        echo "FORMAT: some files are not clang-formatted; fix with:" >&2
        echo "  clang-format -i \$(git ls-files -co --exclude-standard -- services include tests | grep -E '\\.[ch]\$')" >&2
    fi
fi
echo "    ${#FORMAT_FILES[@]} files checked"

# ---------------------------------------------------------------- build
build_tree() { # dir, cmake args...
    local dir="$1"
    shift
    echo "==> configuring $dir/ ($*)"
    cmake -S . -B "$dir" "$@" || { echo "==> run.sh: FAILED (configuring $dir/)"; exit 1; }
    echo "==> building $dir/"
    cmake --build "$dir" -j"$JOBS" || { echo "==> run.sh: FAILED (building $dir/)"; exit 1; }
}

build_tree build -DPX_WERROR=ON -DPX_SANITIZE= -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$QUICK" -eq 0 ]; then
    build_tree build-san -DPX_WERROR=ON -DPX_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
fi

# ---------------------------------------------------------------- throwaway PostgreSQL
PGTMP="$(mktemp -d /tmp/px-test-pg.XXXXXX)"
PGDATA="$PGTMP/data"
PGSOCK="$PGTMP/sock"
PGLOG="$PGTMP/postgres.log"
PG_OS_USER=""
if [ "$IS_ROOT" -eq 1 ]; then
    PG_OS_USER="$(px_pg_os_user)"
    chown "$PG_OS_USER": "$PGTMP"
fi

# pg_cmd CMD...: runs a PostgreSQL binary as the cluster's owner, from a directory it can read.
pg_cmd() {
    (
        cd "$PGTMP"
        if [ -n "$PG_OS_USER" ]; then
            runuser -u "$PG_OS_USER" -- "$@"
        else
            "$@"
        fi
    )
}

CTEST_PGID=""
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$CTEST_PGID" ]; then
        kill -TERM -- "-$CTEST_PGID" 2>/dev/null || true
    fi
    if [ -f "$PGDATA/postmaster.pid" ]; then
        pg_cmd "$PGBIN/pg_ctl" -D "$PGDATA" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$PGTMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# The watchdog outlives a SIGKILL of this script: once our pid is gone (or a zombie nobody has
# reaped yet) it stops the cluster and removes the directory (twice, in case the server was still
# starting at the first attempt).
RUNAS=()
[ -n "$PG_OS_USER" ] && RUNAS=(runuser -u "$PG_OS_USER" --)
# shellcheck disable=SC2016
setsid bash -c '
    runpid="$1" pgtmp="$2" pgctl="$3"
    shift 3
    alive() {
        local stat
        kill -0 "$runpid" 2>/dev/null || return 1
        stat="$(cat "/proc/$runpid/stat" 2>/dev/null)" || return 0
        stat="${stat##*) }"
        [ "${stat%% *}" != Z ]
    }
    while alive; do sleep 1; done
    cd /
    if [ -s "$pgtmp/ctest.pgid" ]; then
        kill -TERM -- "-$(cat "$pgtmp/ctest.pgid")"
    fi
    for attempt in 1 2; do
        if [ -f "$pgtmp/data/postmaster.pid" ]; then
            "$@" "$pgctl" -D "$pgtmp/data" stop -m immediate
        fi
        [ "$attempt" = 1 ] && sleep 2
    done
    rm -rf "$pgtmp"
' px-test-pg-watchdog "$$" "$PGTMP" "$PGBIN/pg_ctl" ${RUNAS[@]+"${RUNAS[@]}"} \
    </dev/null >/dev/null 2>&1 &
disown

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "==> starting a throwaway PostgreSQL 15 in $PGTMP"
pg_cmd "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PGTMP/initdb.log" 2>&1 ||
    { cat "$PGTMP/initdb.log" >&2; exit 1; }
pg_cmd mkdir -p "$PGSOCK"
cat >>"$PGDATA/postgresql.conf" <<CONF

# tests/run.sh: a throwaway cluster; fsync off for speed, synchronous_commit left at its default.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGSOCK'
fsync = off
max_connections = 200
CONF

PORT=""
for attempt in 1 2 3 4 5; do
    candidate="$(free_port)"
    if pg_cmd "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 -o "-p $candidate" start >/dev/null; then
        PORT="$candidate"
        break
    fi
    echo "    could not start on port $candidate (attempt $attempt), retrying" >&2
done
if [ -z "$PORT" ]; then
    echo "error: PostgreSQL did not start; its log:" >&2
    cat "$PGLOG" >&2 || true
    exit 1
fi
for _ in $(seq 1 100); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres && break
    sleep 0.1
done
"$PGBIN/pg_isready" -h 127.0.0.1 -p "$PORT" -U postgres

export PX_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
export PX_PG_BINDIR="$PGBIN"
echo "    PX_TEST_PG_URL=$PX_TEST_PG_URL"

# ---------------------------------------------------------------- tests
# ctest runs in a process group of its own, in the background, so that a signal to this script is
# handled at once (bash defers traps while a foreground command runs) and the trap or the
# watchdog can stop the tests along with the cluster.
run_ctest() { # dir, env assignments...
    local dir="$1" rc=0
    shift
    echo "==> ctest in $dir/"
    (cd "$dir" && exec setsid env "$@" ctest --output-on-failure -j2 --timeout 300 \
        ${CTEST_FILTER[@]+"${CTEST_FILTER[@]}"}) &
    CTEST_PGID=$!
    echo "$CTEST_PGID" >"$PGTMP/ctest.pgid"
    wait "$CTEST_PGID" || rc=$?
    CTEST_PGID=""
    : >"$PGTMP/ctest.pgid"
    return "$rc"
}

PLAIN_RC=0
SAN_RC=skipped
run_ctest build || PLAIN_RC=$?
if [ "$QUICK" -eq 0 ]; then
    SAN_RC=0
    run_ctest build-san ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 || SAN_RC=$?
fi

# ---------------------------------------------------------------- summary
verdict() {
    case "$1" in
    0) echo ok ;;
    skipped) echo skipped ;;
    *) echo "FAILED" ;;
    esac
}
FAILED=0
[ "$FORMAT_OK" -eq 1 ] || FAILED=1
[ "$PLAIN_RC" = 0 ] || FAILED=1
case "$SAN_RC" in 0 | skipped) ;; *) FAILED=1 ;; esac
FMT_WORD=ok
[ "$FORMAT_OK" -eq 1 ] || FMT_WORD=FAILED
SUMMARY="format: $FMT_WORD; build/ tests: $(verdict "$PLAIN_RC"); build-san/ tests: $(verdict "$SAN_RC")"
if [ "$FAILED" -eq 0 ]; then
    echo "==> run.sh: PASSED ($SUMMARY)"
else
    echo "==> run.sh: FAILED ($SUMMARY)"
    exit 1
fi
