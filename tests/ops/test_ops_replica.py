#!/usr/bin/env python3
"""Activation's count and progress reads on a PostgreSQL streaming replica (read-db-url).

The test makes its own primary and a hot standby of it (pg_basebackup -R), runs the whole
system on the primary with px-activation reading counts from the standby, and shows: reads go
to the replica (with its replay paused, a count just written is not seen at first); a replica
further behind than read-max-lag-ms is left for the primary (the count appears while replay is
still paused); stopping the replica in the middle of a run of writes and reads fails no call;
and a replica that returns is used again."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opsys import Cluster, psql  # noqa: E402
from system import CAMPAIGN, System, event, free_port  # noqa: E402

MAX_LAG_MS = 3000
PROBE_MS = 200
WARD = "25966"


class ReplicaSystem(System):
    replica = None  # the Cluster px-activation reads counts from

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a recorder the test's writers do not run into the rate limit of
        self.add_token("fast-recorder", "recorder", units="725",
                       options="rate=1000000 burst=1000000")

    def _spawn(self, name, argv, env):
        if name == "activation":
            env = dict(env, PX_READ_DB_URL=self.replica.db_url(self.dbs["activation"]),
                       PX_READ_MAX_LAG_MS=str(MAX_LAG_MS), PX_READ_PROBE_MS=str(PROBE_MS))
        return super()._spawn(name, argv, env)

    def events_of(self, name, event_id):
        """The log lines of process name with this event id, parsed."""
        out = []
        with open(self.log(name), errors="replace") as f:
            for line in f:
                if ('"event":"%s"' % event_id) in line:
                    out.append(json.loads(line))
        return out


def collected(s):
    status, body = s.connect("QueryCounts", {"campaignId": CAMPAIGN, "unitCode": WARD,
                                             "groupBy": ["GROUP_BY_STAGE"]}, token="bulk")
    assert status == 200, body
    return sum(int(r.get("count", 0)) for r in body.get("rows", [])
               if r.get("stage") == "STAGE_COLLECTED")


def record(s, n=1):
    """Records n events (fresh citizens) in WARD; returns how many were counted (a random
    citizen now and then is one already used, a duplicate)."""
    status, body = s.connect("RecordEvents", {"events": [event(WARD) for _ in range(n)]},
                             token="fast-recorder")
    assert status == 200, body
    assert int(body.get("refused", 0)) == 0, body
    return int(body.get("recorded", 0))


def wait_for(pred, timeout=20, what=""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def metric(s, name, labels=""):
    """A sample of the activation service's registry as the gateway's /metrics serves it."""
    status, _, body = s.request("GET", "/metrics", token="admin")
    assert status == 200, status
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and 'service="activation"' in line and labels in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no %s{%s} in /metrics" % (name, labels))


def replay(s, paused):
    psql(s.replica.url, "SELECT pg_wal_replay_%s()" % ("pause" if paused else "resume"))


def case_reads_go_to_the_replica(s):
    wait_for(lambda: s.events_of("activation", "ACT-REPLICA-UP"), what="ACT-REPLICA-UP")
    before = collected(s)
    replay(s, True)
    # The lag counts from the oldest change the replica has not replayed, which may be the
    # service's own background writes just after the pause rather than the events below: the
    # switch is due MAX_LAG_MS after the pause at the earliest (less a probe interval).
    paused = time.time()
    try:
        time.sleep(2 * PROBE_MS / 1000)
        added = record(s, 3)
        # Written on the primary, not yet replayed: a read from the replica does not see it.
        assert collected(s) == before, "the count was not read from the paused replica"
        # Further behind than allowed: reads go to the primary, which has it.
        wait_for(lambda: collected(s) == before + added, timeout=MAX_LAG_MS / 1000 + 10,
                 what="the primary's count once the replica lags")
        assert time.time() - paused >= (MAX_LAG_MS - PROBE_MS - 300) / 1000, \
            "left the replica too early"
        assert s.events_of("activation", "ACT-REPLICA-LAG")
    finally:
        replay(s, False)
    n_up = len(s.events_of("activation", "ACT-REPLICA-UP"))
    wait_for(lambda: len(s.events_of("activation", "ACT-REPLICA-UP")) > n_up,
             what="the replica used again once caught up")
    assert collected(s) == before + added
    # What the metrics say: reads ran on both, the replica is in use and caught up.
    assert metric(s, "px_activation_count_reads_total", 'target="replica"') > 0
    assert metric(s, "px_activation_count_reads_total", 'target="primary"') > 0
    assert metric(s, "px_activation_read_replica_usable") == 1
    assert 0 <= metric(s, "px_activation_read_replica_lag_seconds") <= MAX_LAG_MS / 1000


def case_replica_stopped_mid_run_fails_no_call(s):
    failures, calls = [], [0]
    stop = threading.Event()
    before = collected(s)
    written = [0]

    def writer():
        while not stop.is_set():
            try:
                written[0] += record(s, 2)
            except AssertionError as e:
                failures.append("RecordEvents: %s" % e)
            calls[0] += 1

    def reader():
        while not stop.is_set():
            for method, msg in (
                    ("QueryCounts", {"campaignId": CAMPAIGN, "unitCode": "725",
                                     "groupBy": ["GROUP_BY_STAGE"]}),
                    ("GetProgress", {"campaignId": CAMPAIGN, "unitCode": WARD}),
                    ("TopVolunteers", {"campaignId": CAMPAIGN, "unitCode": "725"})):
                status, body = s.connect(method, msg, token="bulk")
                calls[0] += 1
                if status != 200:
                    failures.append("%s: %s %s" % (method, status, body))

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                   for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        n_up = len(s.events_of("activation", "ACT-REPLICA-UP"))
        s.replica.stop("fast")
        time.sleep(2.5)
        s.replica.start()
        wait_for(lambda: len(s.events_of("activation", "ACT-REPLICA-UP")) > n_up,
                 what="the replica used again after its restart")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    assert calls[0] > 20, calls
    assert s.events_of("activation", "ACT-REPLICA-DOWN") or \
        s.events_of("activation", "ACT-REPLICA-FAIL"), "the replica's loss went unnoticed"
    try:
        wait_for(lambda: collected(s) == before + written[0], what="every written event counted")
    except AssertionError:
        raise AssertionError("collected %d, expected %d + %d" % (collected(s), before, written[0]))


CASES = [case_reads_go_to_the_replica, case_replica_stopped_mid_run_fails_no_call]


def main(argv):
    base = tempfile.mkdtemp(prefix="px-replica-test-")
    primary = replica = None
    try:
        primary = Cluster(base, "primary", free_port()).initdb().start()
        replica = Cluster(base, "replica", free_port()).basebackup_of(primary).start()
        ReplicaSystem.replica = replica
        # The system's databases go to this primary (and so to its replica).
        os.environ["PX_TEST_PG_URL"] = primary.url
        return System.run_cases(CASES, argv, system_class=ReplicaSystem, name="replica")
    finally:
        for c in (replica, primary):
            if c and c.running():
                c.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
