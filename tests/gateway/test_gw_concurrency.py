#!/usr/bin/env python3
"""1,000 requests waiting at once on a slow service: none holds a thread, all are answered,
memory stays bounded, and the gateway keeps answering other requests meanwhile.

The activation service is made slow for real: its process is paused (SIGSTOP) while the
requests come in, and let go (SIGCONT) once all 1,000 are waiting in the gateway."""
import asyncio
import json
import os
import resource
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System  # noqa: E402

N = 1000
# What 1,000 suspended requests may cost the gateway, above its size before them: each holds
# its connection's memory pool (32 KiB by default) and a small request record.
RSS_GROWTH_MAX_KB = 120 * 1024
THREADS_MAX = 16


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


async def one(port, token, i, sent):
    body = json.dumps({"campaignId": CAMPAIGN, "unitCode": "725",
                       "groupBy": ["GROUP_BY_DAY"], "fromDay": "2023-07-%02d" % (1 + i % 28)})
    head = ("POST /phuxanh.activation.v1.ActivationService/QueryCounts HTTP/1.1\r\n"
            "Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Connect-Timeout-Ms: 60000\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (token, len(body)))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + body.encode())
    await writer.drain()
    sent.append(i)
    data = await reader.read()
    writer.close()
    return data.split(b"\r\n", 1)[0]


async def scenario(s):
    port = s.http_port
    token = s.tokens["bulk"]
    gw = s.pid("gateway")
    act = s.pid("activation")
    rss0 = proc_status(gw, "VmRSS")
    os.kill(act, signal.SIGSTOP)
    sent = []
    try:
        tasks = [asyncio.ensure_future(one(port, token, i, sent)) for i in range(N)]
        deadline = time.time() + 30
        while len(sent) < N and time.time() < deadline:
            await asyncio.sleep(0.05)
        assert len(sent) == N, "only %d requests could be sent" % len(sent)
        # Every request is in the gateway and waiting: check from /metrics.
        waiting = 0
        while time.time() < deadline:
            st, _, body = await asyncio.get_running_loop().run_in_executor(
                None, lambda: s.request("GET", "/metrics", token="admin", timeout=10))
            line = [ln for ln in body.decode().splitlines()
                    if ln.startswith("px_gateway_http_in_flight ")]
            waiting = float(line[0].split()[1]) if line else 0
            if waiting >= N:
                break
            await asyncio.sleep(0.1)
        assert waiting >= N, "in flight: %s" % waiting
        threads = proc_status(gw, "Threads")
        rss = proc_status(gw, "VmRSS")
        assert threads <= THREADS_MAX, "the gateway runs %d threads" % threads
        assert rss - rss0 <= RSS_GROWTH_MAX_KB, "RSS grew %d KiB" % (rss - rss0)
        # Meanwhile the gateway answers what needs no service, at once.
        t0 = time.time()
        st, _, _ = await asyncio.get_running_loop().run_in_executor(
            None, lambda: s.request("GET", "/healthz", token=None, timeout=5))
        assert st == 200 and time.time() - t0 < 1.0, (st, time.time() - t0)
        print("1,000 waiting: gateway threads=%d, RSS %d -> %d KiB" % (threads, rss0, rss),
              flush=True)
    finally:
        os.kill(act, signal.SIGCONT)
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    bad = [r for r in results if b" 200 " not in r + b" "]
    assert not bad, "%d of %d not answered 200, e.g. %r" % (len(bad), N, bad[:3])


def case_thousand_waiting_requests(s):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    asyncio.run(scenario(s))


CASES = [case_thousand_waiting_requests]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:]))
