#!/usr/bin/env bash
# deploy/postgres/restore.sh - restores backup.sh's dumps into a server made ready for them.
#
#   deploy/postgres/restore.sh ADMIN_URL DIR [SERVICE[=DATABASE]]...
#
# ADMIN_URL: a superuser of the target server (libpq URL to any database). For each service
# (default: the dumps found in DIR) it checks DIR/SHA256SUMS, runs setup.sh (the database and
# its two roles), refuses a database that already holds tables, and restores the dump in one
# transaction as px_SERVICE_owner, so px_SERVICE may use every table as before. Then start the
# services with the same citizen-key secret as the dumped ones: with another, no stored citizen
# is recognized again (the counts are unaffected).
set -euo pipefail

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
PGBIN="${PX_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
[ -x "$PGBIN/pg_restore" ] || PGBIN="$(dirname "$(command -v pg_restore)")"

usage() { sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 2; }
ADMIN_URL="$1"
DIR="$2"
shift 2
if [ $# -eq 0 ]; then
    for f in "$DIR"/*.dump; do
        [ -f "$f" ] && set -- "$@" "$(basename "$f" .dump)"
    done
fi
[ $# -gt 0 ] || { echo "error: no dumps in $DIR" >&2; exit 2; }
(cd "$DIR" && sha256sum --check --quiet SHA256SUMS) ||
    { echo "error: $DIR/SHA256SUMS does not match the dumps" >&2; exit 1; }

# url_for DB: ADMIN_URL with its database replaced (URI form only).
url_for() {
    local base="${ADMIN_URL%%\?*}" query=""
    [ "$base" != "$ADMIN_URL" ] && query="?${ADMIN_URL#*\?}"
    case "$base" in
    postgres://*/* | postgresql://*/*) base="${base%/*}" ;;
    esac
    echo "$base/$1$query"
}

for spec in "$@"; do
    service="${spec%%=*}"
    db="$service"
    [ "$spec" != "$service" ] && db="${spec#*=}"
    [ -f "$DIR/$service.dump" ] || { echo "error: no $DIR/$service.dump" >&2; exit 2; }
    PX_PSQL="$PGBIN/psql" "$HERE/setup.sh" "$ADMIN_URL" "$service=$db" >/dev/null
    tables="$("$PGBIN/psql" "$(url_for "$db")" -X -qAt \
        -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
    if [ "$tables" != 0 ]; then
        echo "error: database $db already holds $tables tables; restore into an empty one" >&2
        exit 1
    fi
    "$PGBIN/pg_restore" --exit-on-error --single-transaction --no-owner --no-acl \
        --role="px_${service}_owner" --dbname="$(url_for "$db")" "$DIR/$service.dump"
    echo "$service: restored into database $db"
done
