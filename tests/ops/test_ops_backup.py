#!/usr/bin/env python3
"""Backup and restore as docs/OPERATIONS.md tells it: deploy/postgres/backup.sh dumps both
databases of a running system (on the roles of deploy/postgres/), deploy/postgres/restore.sh
puts them into a fresh cluster, and the services started there - with the same citizen-key
secret, which the dumps do not hold - answer GetProgress and QueryCounts exactly as before,
and still know a citizen recorded before the backup. With another secret the counts are the
same but that citizen is not recognized: the secret is part of the backup, kept apart."""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsys import ROOT, Cluster, RoleSystem, psql_bin  # noqa: E402
from system import CAMPAIGN, event, free_port  # noqa: E402

CITIZEN = "001085%06d" % secrets.randbelow(1000000)


def answers(s):
    """What the checks compare: progress of the district, counts by day and stage."""
    out = {}
    for method, msg in (
            ("GetProgress", {"campaignId": CAMPAIGN, "unitCode": "725"}),
            ("QueryCounts", {"campaignId": CAMPAIGN, "unitCode": "725",
                             "groupBy": ["GROUP_BY_DAY", "GROUP_BY_STAGE"]}),
            ("QueryCounts", {"campaignId": CAMPAIGN, "unitCode": "725",
                             "groupBy": ["GROUP_BY_UNIT", "GROUP_BY_STAGE"]})):
        status, body = s.connect(method, msg, token="bulk")
        assert status == 200, (method, body)
        out["%s %s" % (method, msg.get("groupBy"))] = body
    status, body = s.connect("ListUnits", {"parentCode": "725"}, token="bulk", service="roster")
    assert status == 200 and body.get("units"), body
    out["ListUnits"] = body
    return out


def citizen_status(s):
    status, body = s.connect("GetCitizenStatus", {"campaignId": CAMPAIGN, "citizenId": CITIZEN},
                             token="admin")
    return status, body


def run(argv, **kw):
    env = dict(os.environ, PX_PSQL=psql_bin())
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    assert p.returncode == 0, (argv, p.stdout.decode(errors="replace"))
    return p.stdout.decode(errors="replace")


def start_on(cluster, dbs, secret, tokens):
    """The system's three processes on the restored databases of cluster."""
    os.environ["PX_TEST_PG_URL"] = cluster.url
    s = RoleSystem(name="restored")
    s.dbs = dict(dbs)
    s.secret = secret
    s.tokens = dict(tokens)
    s.write_tokens()
    s.start_roster()
    s.start_activation()
    s.start_gateway()
    s.wait_ready()
    return s


def stop_processes(s):
    codes = s.stop_processes()
    shutil.rmtree(s.dir, ignore_errors=True)
    assert all(c in (0, None) for c in codes.values()), codes


def main():
    work = tempfile.mkdtemp(prefix="px-backup-test-")
    original = RoleSystem(name="backup")
    fresh = None
    failed = 0
    try:
        original.start(demo=True)
        status, body = original.connect(
            "RecordEvents", {"events": [event("25966", citizen=CITIZEN)]}, token="recorder")
        assert status == 200 and int(body.get("recorded", 0)) == 1, body
        before = answers(original)
        status, known = citizen_status(original)
        assert status == 200, known

        # Back up while the services run, as the owner roles.
        backup = os.path.join(work, "backup")
        print(run([os.path.join(ROOT, "deploy/postgres/backup.sh"), backup] +
                  ["%s=%s" % (svc, original.owner_url(svc)) for svc in ("roster", "activation")]),
              end="")
        assert sorted(os.listdir(backup)) == ["SHA256SUMS", "activation.dump", "roster.dump"]
        for name in ("activation.dump", "roster.dump"):
            data = open(os.path.join(backup, name), "rb").read()
            assert original.secret.encode() not in data, "the citizen key is in " + name

        # A fresh cluster, the restore, and the same answers from services started on it.
        fresh = Cluster(work, "fresh", free_port()).initdb().start()
        print(run([os.path.join(ROOT, "deploy/postgres/restore.sh"), fresh.url, backup] +
                  ["%s=%s" % (svc, db) for svc, db in original.dbs.items()]), end="")
        # A second restore over the now full databases is refused, nothing touched.
        p = subprocess.run([os.path.join(ROOT, "deploy/postgres/restore.sh"), fresh.url, backup,
                            "roster=%s" % original.dbs["roster"]],
                           env=dict(os.environ, PX_PSQL=psql_bin()), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        assert p.returncode != 0 and b"already holds" in p.stdout, p.stdout

        cases = []
        restored = start_on(fresh, original.dbs, original.secret, original.tokens)
        try:
            after = answers(restored)
            cases.append(("same_answers_after_restore", before == after,
                          "differ: %s" % [k for k in before if before[k] != after.get(k)]))
            status, body = citizen_status(restored)
            cases.append(("citizen_known_with_the_same_key", status == 200 and body == known,
                          "%s %s" % (status, body)))
        finally:
            stop_processes(restored)
        other = start_on(fresh, original.dbs, secrets.token_hex(32), original.tokens)
        try:
            after = answers(other)
            cases.append(("counts_need_no_key", before == after, "answers differ"))
            status, body = citizen_status(other)
            cases.append(("citizen_unknown_with_another_key", status == 404, "%s %s"
                          % (status, body)))
        finally:
            stop_processes(other)
        for name, ok, detail in cases:
            print("%s %s%s" % ("ok  " if ok else "FAIL", name, "" if ok else ": " + detail))
            failed += 0 if ok else 1
    except Exception as e:  # noqa: BLE001 - reported as a failure
        failed += 1
        print("FAIL backup_restore: %s: %s" % (type(e).__name__, e))
    finally:
        if fresh and fresh.running():
            fresh.stop("immediate")
        os.environ["PX_TEST_PG_URL"] = ORIGINAL_PG_URL
        original.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % failed)
    return 1 if failed else 0


ORIGINAL_PG_URL = os.environ.get("PX_TEST_PG_URL", "")

if __name__ == "__main__":
    sys.exit(main())
