#!/usr/bin/env bash
# deploy/postgres/backup.sh - a pg_dump of each service's database into a directory.
#
#   deploy/postgres/backup.sh DIR SERVICE=URL...
#
# e.g. backup.sh /var/backups/phuxanh/$(date +%F) \
#        roster=postgresql:///roster?user=px_roster_owner \
#        activation=postgresql:///activation?user=px_activation_owner
#
# Writes DIR/SERVICE.dump (pg_dump's custom format: compressed, restored by restore.sh in any
# order of tables) for each, and DIR/SHA256SUMS. Dump as the owner role (it reads every
# table) or a superuser. The dumps hold citizens' keyed hashes and notes but not the
# citizen-key secret: back that file up apart (another medium, another custodian), since a
# dump together with its key is enough to test whether a given ID number is in it.
set -euo pipefail

PGBIN="${PX_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
[ -x "$PGBIN/pg_dump" ] || PGBIN="$(dirname "$(command -v pg_dump)")"

usage() { sed -n '2,15s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 2; }
DIR="$1"
shift
(umask 077 && mkdir -p "$DIR")
for spec in "$@"; do
    service="${spec%%=*}"
    url="${spec#*=}"
    case "$service" in
    roster | activation) ;;
    *) echo "error: '$spec': SERVICE=URL with SERVICE roster or activation" >&2; exit 2 ;;
    esac
    # --no-owner/--no-acl: restore.sh makes the objects as the target's owner role, whose
    # default privileges grant the runtime role; names of this server's roles do not travel.
    (umask 077 && "$PGBIN/pg_dump" --format=custom --no-owner --no-acl --no-comments \
        --file="$DIR/$service.dump.tmp" "$url")
    mv "$DIR/$service.dump.tmp" "$DIR/$service.dump"
    echo "$service: $DIR/$service.dump ($(stat -c %s "$DIR/$service.dump") bytes)"
done
(cd "$DIR" && sha256sum -- *.dump >SHA256SUMS)
