#!/usr/bin/env python3
"""A service that goes away: the gateway answers 503 `unavailable` (fast, once it knows),
/readyz names what is missing, and everything comes back without restarting the gateway; with
two replicas of a service, losing one loses nothing."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System, free_port  # noqa: E402


def counts(s, day):
    """A QueryCounts (never answered from the gateway's memory) for one day."""
    return s.connect("QueryCounts", {"campaignId": CAMPAIGN, "unitCode": "725",
                                     "groupBy": ["GROUP_BY_STAGE"], "fromDay": day,
                                     "toDay": day}, token="viewer")


def ready(s):
    status, _, body = s.request("GET", "/readyz", token=None)
    return status, json.loads(body)


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def case_down_is_503_then_back_without_restart(s):
    status, _ = counts(s, "2023-07-29")
    assert status == 200
    gw_pid = s.pid("gateway")
    s.stop_process("activation", signal.SIGKILL)
    t0 = time.time()
    status, r = counts(s, "2023-07-30")
    assert status == 503 and r["code"] == "unavailable", (status, r)
    # The first call finds out within its tries of a short connection wait.
    assert time.time() - t0 < 2.5, "the first call took %.1f s" % (time.time() - t0)
    # Once found out, it is skipped fast: no call waits for a connection again.
    assert wait_for(lambda: ready(s)[0] == 503)
    t0 = time.time()
    for _ in range(20):
        status, r = counts(s, "2023-07-31")
        assert status == 503 and r["code"] == "unavailable", (status, r)
    per_call = (time.time() - t0) / 20
    assert per_call < 0.1, "a call to a service known down took %.3f s" % per_call
    status, body = ready(s)
    assert status == 503 and "activation" in body["missing"], body
    assert body["services"]["roster"]["serving"] is True, body
    # Back on the same endpoint: the gateway finds it by itself.
    s.start_activation()
    assert wait_for(lambda: counts(s, "2023-08-01")[0] == 200), "no recovery"
    assert wait_for(lambda: ready(s)[0] == 200), ready(s)
    assert s.pid("gateway") == gw_pid


def case_two_replicas_one_lost(s):
    # A second activation process on the same database, on endpoints of its own; a gateway
    # given both (calls and feeds).
    second = dict(activation_ep="tcp://127.0.0.1:%d" % free_port(),
                  feed_ep="tcp://127.0.0.1:%d" % free_port())
    s.start_activation(name="activation2", **second)
    s.stop_process("gateway")
    s.start_gateway({"PX_ACTIVATION_ENDPOINTS": s.activation_ep + "," + second["activation_ep"],
                     "PX_ACTIVATION_FEED": s.feed_ep + "," + second["feed_ep"]})
    s.wait_ready()
    for day in range(1, 11):
        assert counts(s, "2023-08-%02d" % day)[0] == 200
    s.stop_process("activation", signal.SIGKILL)
    failed = [d for d in range(11, 27) if counts(s, "2023-08-%02d" % d)[0] != 200]
    assert not failed, "calls failed with one replica left: %s" % failed


CASES = [case_down_is_503_then_back_without_restart, case_two_replicas_one_lost]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:]))
