#!/usr/bin/env python3
"""The services as an operator runs them on PostgreSQL (deploy/postgres/): each migrates as its
database's owner role and serves as its runtime role, which reads and writes rows and nothing
more - no CREATE, ALTER, DROP or TRUNCATE, no connection to the other service's database - and
tables a later migration adds are the runtime role's to use at once (default privileges). The
activation database here was made and migrated by the superuser first, as an older quickstart
did: setup.sh takes it over."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsys import psql, run_cases, setup_roles, url_as  # noqa: E402
from system import CAMPAIGN, event  # noqa: E402


def case_services_serve_as_runtime_roles(s):
    for service in ("roster", "activation"):
        _, out, _ = psql(s.owner_url(service),
                         "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = "
                         "current_database() AND pid <> pg_backend_pid() AND usename IS NOT NULL")
        users = set(out.split())
        assert users == {"px_" + service}, (service, users)


def case_the_system_works(s):
    status, body = s.connect("RecordEvents", {"events": [event("25966")]}, token="recorder")
    assert status == 200, body
    status, body = s.connect("GetProgress", {"campaignId": CAMPAIGN, "unitCode": "725"},
                             token="viewer")
    assert status == 200 and int(body["unit"].get("collected", 0)) > 0, body
    status, body = s.connect("ListUnits", {"parentCode": "725"}, token="viewer",
                             service="roster")
    assert status == 200 and len(body.get("units", [])) > 5, body


def case_tables_belong_to_the_owner(s):
    for service in ("roster", "activation"):
        _, out, _ = psql(s.owner_url(service),
                         "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
        assert out.split() == ["px_%s_owner" % service], (service, out)


def case_runtime_role_has_no_ddl(s):
    for service, table in (("roster", "units"), ("activation", "events")):
        url = s.runtime_url(service)
        for sql in ("CREATE TABLE px_intruder (a int)",
                    "CREATE INDEX px_intruder ON %s ((1))" % table,
                    "ALTER TABLE %s ADD COLUMN px_intruder int" % table,
                    "DROP TABLE %s" % table,
                    "TRUNCATE %s" % table,
                    "CREATE SCHEMA px_intruder",
                    "CREATE FUNCTION px_intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'"):
            rc, _, err = psql(url, sql, check=False)
            assert rc != 0 and ("permission denied" in err or "must be owner" in err), \
                (service, sql, rc, err)
        # rows it may read and write
        rc, out, err = psql(url, "SELECT count(*) FROM %s" % table, check=False)
        assert rc == 0 and int(out) > 0, (service, err)


def case_no_role_reaches_the_other_database(s):
    for mine, other in (("roster", "activation"), ("activation", "roster")):
        for role in ("px_" + mine, "px_%s_owner" % mine):
            rc, _, err = psql(url_as(role, s.dbs[other]), "SELECT 1", check=False)
            assert rc != 0 and "permission denied for database" in err, (role, other, err)


def case_later_migrations_are_granted(s):
    """A table the owner makes later (as a migration does) is the runtime role's at once."""
    psql(s.owner_url("roster"), "CREATE TABLE px_later (id bigserial PRIMARY KEY, a int)")
    try:
        rc, _, err = psql(s.runtime_url("roster"),
                          "INSERT INTO px_later (a) VALUES (1); UPDATE px_later SET a = 2; "
                          "DELETE FROM px_later", check=False)
        assert rc == 0, err
    finally:
        psql(s.owner_url("roster"), "DROP TABLE px_later")


def case_setup_again_changes_nothing(s):
    setup_roles(os.environ["PX_TEST_PG_URL"], s.dbs)
    case_tables_belong_to_the_owner(s)
    case_the_system_works(s)


def case_restart_without_owner_url(s):
    """An up-to-date database starts under the runtime role alone (no DDL needed)."""
    s.stop_process("roster")
    s.migrate = False
    try:
        s.start_roster()
    finally:
        s.migrate = True
    status, body = s.connect("ListUnits", {"parentCode": "725"}, token="viewer",
                             service="roster")
    assert status == 200, body


CASES = [
    case_services_serve_as_runtime_roles,
    case_the_system_works,
    case_tables_belong_to_the_owner,
    case_runtime_role_has_no_ddl,
    case_no_role_reaches_the_other_database,
    case_later_migrations_are_granted,
    case_setup_again_changes_nothing,
    case_restart_without_owner_url,
]

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv[1:], name="roles", premigrated=("activation",)))
