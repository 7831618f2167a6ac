#!/usr/bin/env python3
"""GetProgress answers kept in the gateway's memory: never older than what the feed has
delivered, and an expiry that sends one caller to the service, not all of them."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System, free_port  # noqa: E402

MAX_AGE_MS = 800
URL = "/v1/progress?campaign=%s&unit=" % CAMPAIGN


def progress(s, unit, port=None):
    if port is None:
        status, _, body = s.request("GET", URL + unit, token="viewer")
    else:
        url = s.url
        s.url = "http://127.0.0.1:%d" % port
        try:
            status, _, body = s.request("GET", URL + unit, token="viewer")
        finally:
            s.url = url
    assert status == 200, (status, body)
    return json.loads(body)


def hits(s):
    _, _, body = s.request("GET", "/metrics", token="admin")
    for ln in body.decode().splitlines():
        if ln.startswith('px_gateway_progress_cache_total{result="hit"}'):
            return float(ln.split()[1])
    return 0.0


def case_served_from_memory(s):
    progress(s, "725")
    h0 = hits(s)
    for _ in range(5):
        progress(s, "725")
    assert hits(s) - h0 >= 5, "five reads of a kept answer should be five hits"


def case_a_write_elsewhere_shows_through_the_feed(s):
    """A second gateway writes; the first, which has the answer in memory, must answer the
    new figures as soon as the feed has brought the change."""
    before = progress(s, "25966")["unit"]["target"]
    port = free_port()
    env = dict(os.environ, **s.gateway_env())
    env["PX_HTTP_LISTEN"] = "127.0.0.1:%d" % port
    other = subprocess.Popen([s.bin("services/gateway/px-gateway")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert other.stdout.readline().startswith(b"READY")
        url = s.url
        s.url = "http://127.0.0.1:%d" % port
        try:
            status, r = s.connect("SetTargets", {"targets": [
                {"campaignId": CAMPAIGN, "unitCode": "25966", "target": before + 7}]})
        finally:
            s.url = url
        assert status == 200, r
        deadline = time.time() + 2
        while time.time() < deadline:
            if progress(s, "25966")["unit"]["target"] == before + 7:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the change did not show within 2 s")
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(timeout=10)


def case_expiry_sends_one_caller(s):
    progress(s, "25969")
    time.sleep(MAX_AGE_MS / 1000 + 0.1)
    act = s.pid("activation")
    os.kill(act, signal.SIGSTOP)
    try:
        first = {}
        t = threading.Thread(target=lambda: first.update(p=progress(s, "25969")))
        t.start()
        time.sleep(0.2)  # the first caller now waits on the paused service
        t0 = time.time()
        second = progress(s, "25969")
        assert time.time() - t0 < 0.5, "the second caller waited %.2f s" % (time.time() - t0)
        assert second["unit"]["unitCode"] == "25969"
        assert t.is_alive(), "the first caller should still be waiting for the service"
    finally:
        os.kill(act, signal.SIGCONT)
    t.join(timeout=10)
    assert first["p"]["unit"]["unitCode"] == "25969"


CASES = [case_served_from_memory, case_a_write_elsewhere_shows_through_the_feed,
         case_expiry_sends_one_caller]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:],
                              gateway_args=["--progress-max-age-ms=%d" % MAX_AGE_MS]))
