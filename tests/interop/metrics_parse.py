#!/usr/bin/env python3
"""Interop test: the Prometheus text our C runtime renders from real services' GetMetrics
answers parses with the Prometheus Python client's parser (Debian python3-prometheus-client),
and says what it should.

Usage:
    metrics_parse.py --dump PATH/px-metrics-dump --roster PATH/px-roster
                     --activation PATH/px-activation

Needs PX_TEST_PG_URL (a URL to the superuser's 'postgres' database; tests/run.sh sets it) and
psql. The script creates two throwaway databases, starts px-roster and px-activation on them
(each on a free port), has px-metrics-dump make a few health checks on each and render both
services' metrics as one exposition labelled service="roster" / service="activation", parses
it with prometheus_client.parser.text_string_to_metric_families, and checks it. It stops the
services and drops the databases (also on failure), prints "N passed, M failed" and exits 0
only when every check passed.
"""

import argparse
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse

READY_TIMEOUT_S = 60.0
HEALTH_CALLS = 5
# A citizen-key secret for the throwaway activation service (tests only).
TEST_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

# Exposition format 0.0.4, line by line: stricter than the Python parser, which takes almost
# anything (and turns a stray sample into an "untyped" family of its own).
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
VALUE = r"(?:[+-]?Inf|NaN|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
SAMPLE_LINE = re.compile(r"^%s(?:\{%s(?:,%s)*\})? %s$" % (NAME, LABEL, LABEL, VALUE))
HELP_LINE = re.compile(r"^# HELP %s (?:[^\\\n]|\\\\|\\n)*$" % NAME)
TYPE_LINE = re.compile(r"^# TYPE %s (?:counter|gauge|histogram|summary|untyped)$" % NAME)

EXPECTED_FAMILIES = {
    # name as the parser reports it (a counter's "_total" is dropped): type
    "px_rpc_calls": "counter",
    "px_rpc_call_duration_seconds": "histogram",
    "px_rpc_in_flight": "gauge",
    "px_rpc_queued": "gauge",
    "px_db_reconnects": "counter",
    "px_metrics_label_sets_dropped": "counter",
    "px_activation_events": "counter",
    "px_activation_feed_dropped": "counter",
}


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def _die_with_parent():
    """In the child before exec: SIGKILL it if this script dies without stopping it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One of our programs as a child process that prints "READY <endpoint>" once serving."""

    def __init__(self, name, argv):
        self.name = name
        self.argv = argv
        self.proc = None
        self.endpoint = None

    def start(self):
        for _ in range(3):  # the free port may be taken between free_port() and the bind
            listen = "tcp://127.0.0.1:%d" % free_port()
            self.proc = subprocess.Popen(self.argv + ["--listen=" + listen],
                                         stdout=subprocess.PIPE, stderr=None,
                                         start_new_session=True, text=True, bufsize=1,
                                         preexec_fn=_die_with_parent)
            ready = threading.Event()
            threading.Thread(target=self._read_stdout, args=(ready,), daemon=True).start()
            if ready.wait(READY_TIMEOUT_S) and self.endpoint:
                return
            self.stop()
        raise RuntimeError("%s did not start" % self.name)

    def _read_stdout(self, ready):
        for line in self.proc.stdout:
            if not ready.is_set() and line.startswith("READY "):
                self.endpoint = line[len("READY "):].strip()
                ready.set()
        ready.set()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def psql(admin_url, sql):
    psql_bin = shutil.which("psql") or os.path.join(os.environ.get("PX_PG_BINDIR", ""), "psql")
    subprocess.run([psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL)


def db_url(admin_url, name):
    u = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


# ---------------------------------------------------------------- the checks

def check_lines(text, families):
    bad = [l for l in text.splitlines()
           if not (SAMPLE_LINE.match(l) or HELP_LINE.match(l) or TYPE_LINE.match(l))]
    expect(not bad, "lines outside the exposition format: %r" % bad[:3])
    expect(text.endswith("\n"), "the text does not end with a newline")
    return "%d lines" % len(text.splitlines())


def check_families(text, families):
    names = [f.name for f in families]
    expect(len(names) == len(set(names)), "a family appears twice: %r" % names)
    untyped = [f.name for f in families if f.type == "untyped"]
    expect(not untyped, "samples outside their family (parsed as untyped): %r" % untyped)
    types = {f.name: f.type for f in families}
    for name, typ in EXPECTED_FAMILIES.items():
        expect(types.get(name) == typ, "family %s: %s, not %s" % (name, types.get(name), typ))
    return "%d families" % len(families)


def check_service_labels(text, families):
    services = set()
    for f in families:
        for s in f.samples:
            expect(s.labels.get("service") in ("roster", "activation"),
                   "%s%r has no service label" % (s.name, s.labels))
            services.add(s.labels["service"])
    expect(services == {"roster", "activation"}, "services seen: %r" % services)
    return "every sample labelled"


def _sample(families, family, name, **labels):
    for f in families:
        if f.name != family:
            continue
        for s in f.samples:
            if s.name == name and s.labels == labels:
                return s
    return None


def check_health_calls_counted(text, families):
    for service in ("roster", "activation"):
        s = _sample(families, "px_rpc_calls", "px_rpc_calls_total", service=service,
                    method="/phuxanh.health.v1.Health/Check", code="OK")
        expect(s is not None and s.value == HEALTH_CALLS,
               "%s: health checks counted %r, want %d" % (service, s and s.value, HEALTH_CALLS))
        c = _sample(families, "px_rpc_call_duration_seconds",
                    "px_rpc_call_duration_seconds_count", service=service,
                    method="/phuxanh.health.v1.Health/Check")
        expect(c is not None and c.value == HEALTH_CALLS,
               "%s: durations observed %r" % (service, c and c.value))
        # At least the GetMetrics being answered (the activation service may be asking the
        # roster something at the same moment).
        g = _sample(families, "px_rpc_in_flight", "px_rpc_in_flight", service=service)
        expect(g is not None and g.value >= 1, "%s: in flight %r" % (service, g and g.value))
    return "%d each" % HEALTH_CALLS


def check_histograms(text, families):
    n = 0
    for f in families:
        if f.type != "histogram":
            continue
        series = {}
        for s in f.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if s.name.endswith("_bucket"):
                le = s.labels["le"]
                series[key]["buckets"].append((math.inf if le == "+Inf" else float(le), s.value))
            elif s.name.endswith("_count"):
                series[key]["count"] = s.value
            elif s.name.endswith("_sum"):
                series[key]["sum"] = s.value
        for key, h in series.items():
            b = h["buckets"]
            expect(b and b[-1][0] == math.inf, "%s%r: no +Inf bucket" % (f.name, key))
            expect([x[0] for x in b] == sorted(x[0] for x in b), "%s%r: le out of order" % (
                f.name, key))
            expect(all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)),
                   "%s%r: cumulative counts decrease" % (f.name, key))
            expect(h["count"] == b[-1][1], "%s%r: _count %r != +Inf %r" % (
                f.name, key, h["count"], b[-1][1]))
            expect(h["sum"] is not None and h["sum"] >= 0, "%s%r: no _sum" % (f.name, key))
            n += 1
    expect(n >= 2, "histogram series: %d" % n)
    return "%d histogram series" % n


def check_activation_families(text, families):
    for outcome in ("recorded", "duplicate", "refused"):
        s = _sample(families, "px_activation_events", "px_activation_events_total",
                    service="activation", outcome=outcome)
        expect(s is not None and s.value == 0, "events %s: %r" % (outcome, s and s.value))
    s = _sample(families, "px_activation_feed_dropped", "px_activation_feed_dropped_total",
                service="activation")
    expect(s is not None and s.value == 0, "feed dropped: %r" % (s and s.value))
    roster_events = [s for f in families if f.name == "px_activation_events" for s in f.samples
                     if s.labels.get("service") == "roster"]
    expect(not roster_events, "the roster has activation's families")
    return "present, zero"


CHECKS = [
    ("every line is in the exposition format", check_lines),
    ("families once each, typed as declared", check_families),
    ("every sample labelled by its service", check_service_labels),
    ("health checks counted per service", check_health_calls_counted),
    ("histograms are cumulative and end at +Inf = _count", check_histograms),
    ("the activation service's own families", check_activation_families),
]


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # runs the finally blocks


def main():
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", required=True)
    p.add_argument("--roster", required=True)
    p.add_argument("--activation", required=True)
    args = p.parse_args()
    admin = os.environ.get("PX_TEST_PG_URL")
    if not admin:
        print("PX_TEST_PG_URL is not set: this test needs PostgreSQL (tests/run.sh sets it)")
        return 1
    from prometheus_client.parser import text_string_to_metric_families

    dbs = ["px_metrics_py_%d_roster" % os.getpid(), "px_metrics_py_%d_act" % os.getpid()]
    services = []
    passed = failed = 0
    try:
        for d in dbs:
            psql(admin, 'CREATE DATABASE "%s"' % d)
        roster = Service("px-roster", [args.roster, "--db-url=" + db_url(admin, dbs[0]),
                                       "--log-level=warn", "--workers=2"])
        services.append(roster)
        roster.start()
        act = Service("px-activation", [
            args.activation, "--db-url=" + db_url(admin, dbs[1]), "--log-level=warn",
            "--workers=2", "--citizen-key=" + TEST_KEY, "--pub-endpoint=",
            "--roster-endpoints=" + roster.endpoint])
        services.append(act)
        act.start()
        out = subprocess.run([args.dump, "--calls=%d" % HEALTH_CALLS,
                              "roster=" + roster.endpoint, "activation=" + act.endpoint],
                             check=True, stdout=subprocess.PIPE, timeout=60)
        text = out.stdout.decode("utf-8")
        # The parser yields lazily: list() makes it read everything, and any error raises.
        try:
            families = list(text_string_to_metric_families(text))
        except Exception as e:
            print("FAIL the text does not parse: %s: %s" % (type(e).__name__, e), flush=True)
            print(text, flush=True)
            failed = len(CHECKS)
            return 1
        for title, fn in CHECKS:
            try:
                detail = fn(text, families)
                passed += 1
                print("PASS %s: %s" % (title, detail), flush=True)
            except CheckFailed as e:
                failed += 1
                print("FAIL %s: %s" % (title, e), flush=True)
        if failed:
            print(text, flush=True)
    finally:
        for s in reversed(services):
            s.stop()
        for d in dbs:
            try:
                psql(admin, 'DROP DATABASE IF EXISTS "%s"' % d)
            except Exception as e:
                print("note: could not drop %s: %s" % (d, e), flush=True)
        print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and passed == len(CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
