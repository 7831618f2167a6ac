#!/usr/bin/env python3
"""pxctl logs against the whole running system, every process with a log stream (docs/LOGS.md).

One gateway request (RecordEvents naming a volunteer, so activation asks the roster's CheckDuty)
is followed by `pxctl logs -f --request-id` through all three processes, in time order; the
filters (--service, --level, --request-id, --since) are checked on the lines the processes kept;
a reader that does not read while the gateway logs thousands of lines is told exactly how many
it lost, while the gateway keeps answering at once; a line with control characters cannot reach
the terminal raw.
"""
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "gateway"))
from system import event, run_cases  # noqa: E402


def pxctl(system, *args, timeout=60):
    """(exit status, stdout text, stderr text) of one pxctl run with the system's settings."""
    env = dict(os.environ)
    env.update(system.env())
    env.pop("NO_COLOR", None)
    p = subprocess.run([system.bin("services/pxctl/pxctl")] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Follower:
    """`pxctl logs -f ARGS` in the background, its stdout read (or not) by a thread."""

    def __init__(self, system, *args, read=True):
        env = dict(os.environ)
        env.update(system.env())
        self.p = subprocess.Popen([system.bin("services/pxctl/pxctl"), "logs", "-f"] +
                                  list(args), env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.thread = None
        # stderr is read all along: a pipe nobody reads fills with its "… N lines lost"
        # notices (64 KiB) and then blocks pxctl in a write, which reads nothing any more.
        self.err = []
        self.err_thread = threading.Thread(target=lambda: self.err.extend(self.p.stderr),
                                           daemon=True)
        self.err_thread.start()
        if read:
            self.read()
        time.sleep(1.0)  # its subscriptions take hold (a SUB joins asynchronously)

    def read(self):
        def run():
            for line in self.p.stdout:
                self.lines.append(line.decode(errors="replace"))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_for(self, pred, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(list(self.lines)):
                return
            time.sleep(0.05)
        raise AssertionError("not within %ds: %s; got %d lines" % (timeout, what,
                                                                   len(self.lines)))

    def stop(self):
        """Interrupts it; (exit status, stderr text)."""
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        if self.thread:
            self.thread.join(timeout=5)
        self.err_thread.join(timeout=5)
        return self.p.returncode, b"".join(self.err).decode(errors="replace")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def record(system, request_id):
    """RecordEvents through the gateway, naming a volunteer (activation then asks the roster's
    CheckDuty), with this X-Request-Id."""
    ev = event("25966")
    ev["volunteerCode"] = "TN0001"
    status, body = system.connect("RecordEvents", {"events": [ev]},
                                  headers={"X-Request-Id": request_id})
    expect(status == 200, "RecordEvents: %s %s" % (status, body))


def parsed(lines):
    out = []
    for line in lines:
        obj = json.loads(line)  # piped: JSON lines, every one
        expect(isinstance(obj, dict), "not an object: %r" % line)
        out.append(obj)
    return out


# ------------------------------------------------------------------ cases

def usage_and_errors(system):
    rc, out, _ = pxctl(system, "logs", "--help")
    expect(rc == 0 and "--request-id" in out and "--since" in out and "PX_LOG_ENDPOINTS" in out,
           "logs --help: %d %s" % (rc, out[:300]))
    rc, out, _ = pxctl(system, "--help")
    expect(" logs " in out, "pxctl --help lists logs")
    rc, out, _ = pxctl(system, "completion", "bash")
    expect(rc == 0 and "logs" in out, "completion names logs")
    for bad in (["--since", "yesterday"], ["--level", "loud"], ["--format", "xml"],
                ["--service", "a b"], ["--log-endpoints", "nonsense"],
                ["--log-endpoints", "x=tcp://127.0.0.1:1+"], ["--request-id", ""]):
        rc, _, err = pxctl(system, "logs", *bad)
        expect(rc == 2 and "pxctl logs:" in err, "%s: %d %s" % (bad, rc, err))
    # A process that does not answer: said once, within the timeout, exit 3. (Named as one
    # of the system's processes: under CURVE its key is found by that name.)
    t = time.monotonic()
    rc, _, err = pxctl(system, "logs", "--log-endpoints",
                       "roster=tcp://127.0.0.1:9+tcp://127.0.0.1:9", "--history-timeout-ms", "500")
    expect(rc == 3 and "roster" in err and "did not send its history" in err,
           "dead process: %d %s" % (rc, err))
    expect(time.monotonic() - t < 5, "a dead process costs one timeout")
    if system.curve:
        # Under CURVE a stream is read with its process's key, found by its name.
        rc, _, err = pxctl(system, "logs", "--log-endpoints", "tcp://127.0.0.1:9")
        expect(rc == 2 and "with CURVE, name each process" in err, "unnamed: %d %s" % (rc, err))
        rc, _, err = pxctl(system, "logs", "--log-endpoints", "dead=tcp://127.0.0.1:9")
        expect(rc == 2 and 'no key named "dead"' in err, "unknown name: %d %s" % (rc, err))


def request_through_all_three(system):
    rid = "logs-" + secrets.token_hex(6)
    f = Follower(system, "--request-id", rid)
    record(system, rid)
    f.wait_for(lambda ls: {o["service"] for o in parsed(ls)} >= {"gateway", "activation",
                                                                 "roster"},
               "lines of gateway, activation and roster")
    time.sleep(0.5)
    rc, err = f.stop()
    expect(rc == 0, "pxctl logs -f interrupted: %d %s" % (rc, err))
    objs = parsed(f.lines)
    expect(all(o.get("request_id") == rid for o in objs), "only the request's lines")
    ts = [o["ts"] for o in objs]
    expect(ts == sorted(ts), "in time order: %s" % ts)
    # (Not the order of cause and effect: a service logs a call once it has answered it, so
    # the gateway's line may come before activation's.)
    system.last_rid = rid


def filters(system):
    rid = getattr(system, "last_rid", None)
    if not rid:
        rid = "logs-" + secrets.token_hex(6)
        record(system, rid)
        time.sleep(0.3)
    rc, out, _ = pxctl(system, "logs", "--since", "5m", "--request-id", rid, "--service",
                       "activation")
    objs = parsed(out.splitlines())
    expect(rc == 0 and objs and {o["service"] for o in objs} == {"activation"},
           "--service activation: %s" % out)
    rc, out, _ = pxctl(system, "logs", "--since", "5m", "--request-id", rid, "--service",
                       "roster,gateway")
    expect({o["service"] for o in parsed(out.splitlines())} == {"roster", "gateway"},
           "--service roster,gateway: %s" % out)
    # The calls' own lines are debug; the gateway's request line is info.
    rc, out, _ = pxctl(system, "logs", "--since", "5m", "--request-id", rid, "--level", "info")
    objs = parsed(out.splitlines())
    expect(objs and all(o["level"] in ("info", "warn", "error") for o in objs) and
           {o["service"] for o in objs} == {"gateway"}, "--level info: %s" % out)
    rc, out, _ = pxctl(system, "logs", "--since", "5m", "--level", "error", "--request-id", rid)
    expect(rc == 0 and out == "", "--level error: nothing: %r" % out)
    # Text for people: readable, one line each, not JSON.
    rc, out, _ = pxctl(system, "logs", "--since", "5m", "--request-id", rid, "--format", "text")
    lines = out.splitlines()
    expect(len(lines) >= 3 and not any(l.startswith("{") for l in lines) and
           any(" roster RPC-CALL " in l and "request_id=" + rid in l for l in lines) and
           any("GW-HTTP" in l for l in lines), "text: %s" % out)


def since_uses_history(system):
    rid = "logs-" + secrets.token_hex(6)
    record(system, rid)  # before any reader exists
    time.sleep(0.3)
    rc, out, err = pxctl(system, "logs", "--since", "1m", "--request-id", rid)
    objs = parsed(out.splitlines())
    expect(rc == 0 and {o["service"] for o in objs} == {"gateway", "activation", "roster"},
           "--since 1m: %d %s %s" % (rc, out, err))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    rc, out, _ = pxctl(system, "logs", "--since", later, "--request-id", rid)
    expect(rc == 0 and out == "", "--since a later time: nothing: %r" % out)
    # -f --since: the history first, then the live lines, none twice.
    f = Follower(system, "--since", "1m", "--request-id", rid)
    f.wait_for(lambda ls: len(ls) >= len(objs), "the history")
    record(system, rid)
    f.wait_for(lambda ls: len(ls) >= 2 * len(objs), "the live lines after the history")
    time.sleep(0.5)
    rc, err = f.stop()
    got = parsed(f.lines)
    expect(rc == 0 and len(got) == 2 * len(objs), "history then live, none twice: %d, %d %s"
           % (len(got), len(objs), err))
    expect(len({json.dumps(o, sort_keys=True) for o in got}) == len(got), "no line twice")


def slow_reader_told_what_it_lost(system):
    # A reader holding few lines that reads nothing while the gateway logs thousands of big
    # lines (a 404 path of 6000 bytes is in each).
    f = Follower(system, "--service", "gateway", "--hwm", "10", read=False)
    pad = "x" * 6000

    def flood(k):
        for i in range(1500):
            system.request("GET", "/nope/%s/%d" % (pad, i), token=None,
                           headers={"X-Request-Id": "flood-%d-%d" % (k, i)})
    threads = [threading.Thread(target=flood, args=(k,)) for k in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    slowest = 0.0
    probes = 0
    while any(t.is_alive() for t in threads):
        a = time.monotonic()
        status, _, _ = system.request("GET", "/healthz", token=None, timeout=5)
        slowest = max(slowest, time.monotonic() - a)
        expect(status == 200, "the gateway answers while its reader is stalled: %s" % status)
        probes += 1
        time.sleep(0.02)
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    print("# 6000 requests in %.1f s with a stalled log reader; slowest of %d probes %.3f s"
          % (took, probes, slowest), flush=True)
    expect(slowest < 1.0, "the gateway was slowed: a probe took %.3f s" % slowest)
    # Now it reads: everything is either printed or counted lost, to the line.
    f.read()
    marker = "marker-" + secrets.token_hex(4)
    time.sleep(0.3)
    system.request("GET", "/healthz", token=None, headers={"X-Request-Id": marker})
    f.wait_for(lambda ls: any('"%s"' % marker in l for l in ls), "the marker", timeout=60)
    rc, err = f.stop()
    lost = sum(int(m.group(1)) for m in re.finditer(r"^… (\d+) lines? of gateway lost$", err,
                                                      re.M))
    expect(lost > 0, "told it lost lines: %r" % err[-500:])
    received = [l.rstrip("\n") for l in f.lines]
    with open(system.log("gateway"), errors="replace") as fh:
        written = [l.rstrip("\n") for l in fh]
    first = written.index(received[0])
    last = written.index(received[-1])
    print("# received %d, told lost %d, logged %d" % (len(received), lost, last - first + 1),
          flush=True)
    expect(len(received) + lost == last - first + 1,
           "received %d + lost %d != logged %d" % (len(received), lost, last - first + 1))


def no_terminal_escapes(system):
    rid = "logs-" + secrets.token_hex(6)
    system.request("GET", "/nope/%1b%5b31mred%07", token=None, headers={"X-Request-Id": rid})
    deadline = time.time() + 15  # the history is big after the flood above, and ASan slow
    while True:
        rc, out, err = pxctl(system, "logs", "--since", "1m", "--request-id", rid, "--format",
                             "text")
        if (rc == 0 and "GW-HTTP" in out) or time.time() > deadline:
            break
        time.sleep(0.3)
    expect(rc == 0 and "GW-HTTP" in out, "the line: %d %r %s" % (rc, out, err))
    expect("\x1b" not in out and "\x07" not in out, "control characters reached the terminal")
    expect("\\u001b[31mred\\u0007" in out, "shown escaped: %r" % out)


CASES = [
    usage_and_errors,
    request_through_all_three,
    filters,
    since_uses_history,
    slow_reader_told_what_it_lost,
    no_terminal_escapes,
]

if __name__ == "__main__":
    sys.exit(run_cases(CASES, sys.argv[1:], name="pxlogs", log_level="debug", log_streams=True,
                       log_env={"PX_LOG_HWM": "50", "PX_LOG_HISTORY": "20000"}))
