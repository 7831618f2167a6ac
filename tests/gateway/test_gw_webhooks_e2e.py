#!/usr/bin/env python3
"""Webhooks through the whole system: a ward goes green in the activation service, the feed
tells the gateway, and a receiver this test runs gets a signed POST - after a 500 that is
retried, across a gateway restart between tries, and again on replay, always with the same
delivery id."""
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System  # noqa: E402

SECRET = "s3cr3t-for-the-webhook-test-0123456789abcdef"


class Receiver:
    """An HTTP server on a thread: answers `fail` times 500, then 200, and records every POST."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []
        self.fail = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.posts.append((dict(self.headers), body))
                    failing = outer.fail > 0
                    if failing:
                        outer.fail -= 1
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.posts) >= n:
                    return list(self.posts)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError("%d posts, wanted %d" % (len(self.posts), n))


def verify(headers, body):
    sig = headers["X-Phuxanh-Signature"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    want = hmac.new(SECRET.encode(), (parts["t"] + ".").encode() + body,
                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], want), "signature does not verify"
    assert abs(int(parts["t"]) - time.time()) < 300, parts["t"]


def green(s, unit):
    """Lowers the ward's target under its activated count: the ward turns green."""
    _, p = s.connect("GetProgress", {"campaignId": CAMPAIGN, "unitCode": unit}, token="admin")
    target = max(1, p["unit"].get("activated", 0))
    status, r = s.connect("SetTargets", {"targets": [
        {"campaignId": CAMPAIGN, "unitCode": unit, "target": target}]}, token="admin")
    assert status == 200, r


def case_green_signed_retried_restarted_replayed(s):
    rx = s.receiver
    rx.fail = 2  # the first try and the one after it are refused
    green(s, "25966")
    posts = rx.wait(2)
    delivery = posts[0][0]["X-Phuxanh-Delivery"]
    assert all(h["X-Phuxanh-Delivery"] == delivery for h, _ in posts), "same id on retries"
    # A restart while the delivery still waits for its third try loses nothing.
    s.stop_process("gateway")
    s.start_gateway(s.hook_env)
    posts = rx.wait(3)
    h, body = posts[2]
    assert h["X-Phuxanh-Delivery"] == delivery and h["X-Phuxanh-Event"] == "ward.green", h
    verify(h, body)
    event = json.loads(body)
    assert event["unit_code"] == "25966" and event["campaign_id"] == CAMPAIGN, event
    time.sleep(1.0)
    assert len(rx.posts) == 3, "delivered once: %d posts" % len(rx.posts)
    # The same ward green again (a lower target still) is no news.
    green(s, "25966")
    time.sleep(1.0)
    assert len(rx.posts) == 3, "no second announcement: %d posts" % len(rx.posts)
    # Replay from a minute ago: the same delivery again, same id.
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    status, _, body = s.request("POST", "/v1/webhooks/replay?since=" + since, b"",
                                token="admin")
    assert status == 200 and json.loads(body)["replayed"] >= 1, (status, body)
    posts = rx.wait(4)
    assert posts[3][0]["X-Phuxanh-Delivery"] == delivery
    verify(posts[3][0], posts[3][1])
    status, _, _ = s.request("POST", "/v1/webhooks/replay?since=" + since, b"", token="viewer")
    assert status == 403, status


CASES = [case_green_signed_retried_restarted_replayed]


def main():
    rx = Receiver()
    state = os.path.join(os.environ.get("TMPDIR", "/tmp"), "px-wh-%d" % os.getpid())
    os.makedirs(state, exist_ok=True)
    subs = os.path.join(state, "subscribers")
    with open(subs, "w") as f:
        f.write("# test\nrx %s secret=%s units=725 kinds=green\n" % (rx.url, SECRET))
    env = {"PX_WEBHOOKS_FILE": subs, "PX_STATE_DIR": state,
           "PX_WEBHOOKS_RETRY_FIRST_MS": "500", "PX_WEBHOOKS_RETRY_MAX_MS": "2000"}
    System.receiver = rx
    System.hook_env = env
    orig = System.start_gateway
    System.start_gateway = lambda self, extra=None: orig(self, dict(env, **(extra or {})))
    try:
        return System.run_cases(CASES, sys.argv[1:])
    finally:
        rx.server.shutdown()
        for name in os.listdir(state):
            os.unlink(os.path.join(state, name))
        os.rmdir(state)


if __name__ == "__main__":
    sys.exit(main())
