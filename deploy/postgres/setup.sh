#!/usr/bin/env bash
# deploy/postgres/setup.sh - creates (or brings up to date) the services' databases and roles on
# an existing PostgreSQL server.
#
#   deploy/postgres/setup.sh ADMIN_URL [SERVICE[=DATABASE]]...
#
# ADMIN_URL: a libpq URL of a superuser (or a role with CREATEDB and CREATEROLE), e.g.
# postgresql://postgres@db.example:5432/postgres. SERVICE is roster or activation (default:
# both), each in a database of its own name unless =DATABASE says otherwise. For each it runs
# service-db.sql: px_SERVICE_owner for migrations (PX_DB_MIGRATE_URL), px_SERVICE at run time
# (PX_DB_URL); see docs/OPERATIONS.md. Safe to run again.
set -euo pipefail

HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
PSQL="${PX_PSQL:-psql}"

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    [ $# -ge 1 ] && exit 0
    exit 2
fi
ADMIN_URL="$1"
shift
[ $# -gt 0 ] || set -- roster activation

for spec in "$@"; do
    service="${spec%%=*}"
    db="$service"
    [ "$spec" != "$service" ] && db="${spec#*=}"
    case "$service" in
    roster | activation) ;;
    *) echo "error: unknown service '$service' (roster or activation)" >&2; exit 2 ;;
    esac
    if ! [[ "$db" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
        echo "error: database name '$db': lower-case letters, digits and _ only" >&2
        exit 2
    fi
    "$PSQL" "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -v service="$service" -v db="$db" \
        -f "$HERE/service-db.sql" >/dev/null
    echo "$service: database $db, roles px_${service}_owner (migrations) and px_${service} (runtime)"
done
