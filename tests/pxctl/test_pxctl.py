#!/usr/bin/env python3
"""pxctl against the whole running system (tests/gateway/system.py): real services, real gateway.

Each case runs the pxctl binary with the system's settings in its environment, as an operator's
shell would have them, and checks what it prints and its exit status against what the services
(or the gateway, a different path to the same figures) answer. The last cases break the system on
purpose (a database refusing connections, then the activation service stopped) for the health
exit codes, so they run in the order of the table at the end.
"""
import base64
import hashlib
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "gateway"))
from system import CAMPAIGN, System, admin_sql, event, protos, run_cases  # noqa: E402

PROJECT_VERSION = None  # read from pxctl --version


def pxctl_bin(system):
    return system.bin("services/pxctl/pxctl")


def run(system, *args, stdin=None, env=None, timeout=60):
    """Runs pxctl with the system's settings; (exit status, stdout bytes, stderr text)."""
    full = dict(os.environ)
    full.update(system.env())
    full["USER"] = "op-test"
    full.pop("NO_COLOR", None)
    full.update(env or {})
    p = subprocess.run([pxctl_bin(system)] + list(args), input=stdin, env=full,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def width(s):
    """Columns a terminal gives s: combining marks none, East Asian wide two."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def gw_progress(system, unit):
    status, body = system.connect("GetProgress", {"campaignId": CAMPAIGN, "unitCode": unit})
    expect(status == 200, "gateway GetProgress: %s %s" % (status, body))
    return body


def wait_for(pred, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError("not within %ds: %s" % (timeout, what))


# ------------------------------------------------------------------ help and usage

def help_everywhere(system):
    rc, out, _ = run(system, "--help")
    text = out.decode()
    expect(rc == 0, "pxctl --help: %d" % rc)
    for code in ("0  done", "1  the operation failed", "2  usage", "3  a service",
                 "4  a service answered"):
        expect(code in text, "pxctl --help documents exit status %r" % code)
    commands = re.findall(r"^  ([a-z]+)  ", text, re.M)
    for c in ("call", "health", "progress", "tokens", "keys", "completion", "help"):
        expect(c in commands, "%s in pxctl --help" % c)
    for c in commands:
        rc, out, err = run(system, c, "--help")
        expect(rc == 0 and b"Usage" in out, "pxctl %s --help: %d %s %s" % (c, rc, out[:200], err))
        rc2, out2, _ = run(system, "help", c)
        expect(rc2 == 0 and out2 == out, "pxctl help %s is pxctl %s --help" % (c, c))
    for c in ("tokens add", "tokens list", "tokens revoke", "keys gen"):
        rc, out, err = run(system, *c.split(), "--help")
        expect(rc == 0 and b"--" in out, "pxctl %s --help: %d %s" % (c, rc, err))
    rc, _, err = run(system, "nonsense")
    expect(rc == 2 and "nonsense" in err, "unknown command: %d %s" % (rc, err))
    rc, _, err = run(system, "progress", "--nonsense")
    expect(rc == 2 and "--nonsense" in err, "unknown flag: %d %s" % (rc, err))
    rc, _, err = run(system, "call", "roster")
    expect(rc == 2 and "METHOD" in err, "missing argument: %d %s" % (rc, err))
    rc, _, err = run(system, "progress", "--csv=maybe")
    expect(rc == 2 and "switch" in err, "a switch's value: %d %s" % (rc, err))


# ------------------------------------------------------------------ call

def call_json(system):
    req = {"campaignId": CAMPAIGN, "unitCode": "725"}
    rc, out, err = run(system, "call", "activation", "GetProgress", json.dumps(req))
    expect(rc == 0, "call: %d %s" % (rc, err))
    got = json.loads(out)
    expect(got == gw_progress(system, "725"), "pxctl call answers what the gateway answers")
    # from stdin, with proto field names
    rc, out2, err = run(system, "call", "activation", "GetProgress", "-",
                        stdin=b'{"campaign_id": "%s", "unit_code": "725"}' % CAMPAIGN.encode())
    expect(rc == 0 and json.loads(out2) == got, "call with JSON on stdin: %d %s" % (rc, err))
    # Health and Metrics are served beside each service
    rc, out, err = run(system, "call", "roster", "Check")
    expect(rc == 0 and json.loads(out).get("status") == "SERVING", "roster Check: %s" % out)
    rc, out, err = run(system, "call", "roster", "ListCampaigns")
    expect(rc == 0 and json.loads(out)["campaigns"][0]["id"] == CAMPAIGN, "ListCampaigns {}")


def call_proto_round_trip(system):
    activation_pb2, _ = protos()
    from google.protobuf import json_format  # noqa: E402 pylint: disable=import-outside-toplevel
    req = activation_pb2.GetProgressRequest(campaign_id=CAMPAIGN, unit_code="25966")
    rc, out, err = run(system, "call", "--proto", "activation", "GetProgress",
                       stdin=req.SerializeToString())
    expect(rc == 0, "call --proto: %d %s" % (rc, err))
    rep = activation_pb2.GetProgressResponse()
    rep.ParseFromString(out)
    expect(rep.unit.unit_code == "25966" and len(rep.children) > 0, "a GetProgressResponse")
    rc, out, err = run(system, "call", "activation", "GetProgress",
                       json.dumps({"campaignId": CAMPAIGN, "unitCode": "25966"}))
    expect(rc == 0, "call json: %d %s" % (rc, err))
    expect(json_format.MessageToDict(rep) == json.loads(out),
           "the binary answer says what the JSON answer says")
    rc, _, err = run(system, "call", "--proto", "activation", "GetProgress", stdin=b"\xff\xff")
    expect(rc == 1 and "GetProgressRequest" in err, "bad protobuf on stdin: %d %s" % (rc, err))


def call_errors(system):
    rc, out, err = run(system, "call", "activation", "GetProgress",
                       '{"campaignId": "%s", "unitCod": "725"}' % CAMPAIGN)
    expect(rc == 1 and "INVALID_ARGUMENT" in err and "unitCod" in err and not out,
           "an unknown field is named: %d %s" % (rc, err))
    rc, _, err = run(system, "call", "activation", "RecordEvents",
                     '{"events": [{"stage": "STAGE_DONE"}]}')
    expect(rc == 1 and "events[0].stage" in err, "a bad nested field is named: %s" % err)
    rc, _, err = run(system, "call", "activation", "GetProgress", '{"campaignId": ')
    expect(rc == 1 and "INVALID_ARGUMENT" in err, "malformed JSON: %d %s" % (rc, err))
    # refused by the service: the code's name, its message, the request id
    rc, _, err = run(system, "call", "activation", "GetProgress",
                     '{"campaignId": "no-such-campaign", "unitCode": "725"}', "--as", "op-ngoc")
    expect(rc == 1 and "NOT_FOUND" in err, "refused: %d %s" % (rc, err))
    rid = re.search(r"request id ([0-9a-f]{32})", err)
    expect(rid, "the request id is named: %s" % err)
    # the service saw pxctl acting for the operator under that request id
    def logged():
        for line in open(system.log("activation"), errors="replace"):
            if rid.group(1) in line:
                rec = json.loads(line)
                return rec.get("caller") == "pxctl" and rec.get("on_behalf_of") == "op-ngoc"
        return False
    wait_for(logged, "the activation log shows caller pxctl acting for op-ngoc")
    rc, _, err = run(system, "call", "nowhere", "GetProgress")
    expect(rc == 2 and "roster or activation" in err, "unknown service: %d %s" % (rc, err))
    rc, _, err = run(system, "call", "roster", "GetProgress")
    expect(rc == 2 and "no method" in err, "a method of the other service: %d %s" % (rc, err))
    rc, _, err = run(system, "call", "roster", "ListUnits",
                     env={"PX_ROSTER_ENDPOINTS": "tcp://127.0.0.1:1"})
    expect(rc == 3 and "UNAVAILABLE" in err, "nobody there: %d %s" % (rc, err))
    rc, out, _ = run(system, "call", "--list", "activation")
    methods = [line.split()[0] for line in out.decode().splitlines()]
    expect("GetProgress" in methods and "Check" in methods, "--list: %s" % methods)


# ------------------------------------------------------------------ health

def health_rows(system, *extra):
    rc, out, err = run(system, "health", "--json", *extra)
    return rc, json.loads(out or b"[]"), err


def health_ok(system):
    rc, out, err = run(system, "health")
    expect(rc == 0, "health: %d %s %s" % (rc, out, err))
    lines = out.decode().splitlines()
    expect(lines[0].split()[:4] == ["SERVICE", "ENDPOINT", "STATUS", "VERSION"], lines[0])
    rc, rows, err = health_rows(system)
    expect(rc == 0, "health --json: %d %s" % (rc, err))
    by = {r["service"]: r for r in rows}
    expect(set(by) == {"roster", "activation", "gateway"}, "three rows: %s" % rows)
    for r in rows:
        expect(r["status"] == "SERVING" and r["version"] == PROJECT_VERSION,
               "%s serving, version %s: %s" % (r["service"], PROJECT_VERSION, r))
    # two endpoints of one service are asked each (one of them nobody's)
    rc, rows, _ = health_rows(system, "--roster-endpoints",
                              "%s,tcp://127.0.0.1:1" % system.roster_ep)
    statuses = sorted(r["status"] for r in rows if r["service"] == "roster")
    expect(rc == 3 and statuses == ["SERVING", "UNAVAILABLE"], "replicas: %d %s" % (rc, rows))


def health_not_serving(system):
    """The roster's database refuses connections: the roster answers NOT_SERVING, exit 4."""
    db = system.dbs["roster"]
    admin_sql("ALTER DATABASE %s ALLOW_CONNECTIONS false" % db)
    try:
        admin_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
                  % db)
        rc, rows, err = health_rows(system)
        by = {r["service"]: r for r in rows}
        expect(rc == 4 and by["roster"]["status"] == "NOT_SERVING" and
               by["activation"]["status"] == "SERVING",
               "a service not serving: %d %s %s" % (rc, rows, err))
    finally:
        admin_sql("ALTER DATABASE %s ALLOW_CONNECTIONS true" % db)
    wait_for(lambda: health_rows(system)[0] == 0, "health back to 0", timeout=20)


def health_unavailable(system):
    """The activation service stopped: exit 3, its row UNAVAILABLE. (Last: it breaks things.)"""
    system.stop_process("activation")
    rc, rows, err = health_rows(system)
    by = {r["service"]: r for r in rows}
    expect(rc == 3 and by["activation"]["status"] == "UNAVAILABLE" and
           by["roster"]["status"] == "SERVING", "activation gone: %d %s %s" % (rc, rows, err))
    rc, out, _ = run(system, "health")
    expect(rc == 3 and re.search(r"^activation .*UNAVAILABLE", out.decode(), re.M),
           "the table says so too: %s" % out)


# ------------------------------------------------------------------ progress

def check_alignment(lines):
    """Every column ends (numbers) or starts (text) at the same display column in each row."""
    rows = [re.split(r"(\s{2,})", line) for line in lines]
    ncols = len(rows[0][::2])
    for k in range(1, ncols):
        starts = set()
        for parts in rows:
            cells = parts[::2]
            if len(cells) < ncols:
                continue
            col = width("".join(parts[:2 * k]))
            starts.add(col + width(cells[k]) if k >= 2 else col)
        expect(len(starts) == 1, "column %d lines up by display width: %s\n%s"
               % (k, starts, "\n".join(lines)))


def progress_table(system):
    rc, out, err = run(system, "progress", "--campaign", CAMPAIGN, "--unit", "725")
    expect(rc == 0, "progress: %d %s" % (rc, err))
    lines = out.decode().splitlines()
    expect(lines[0].split() == ["CODE", "UNIT", "TARGET", "COLLECTED", "APPROVED", "ACTIVATED",
                                "%"], lines[0])
    expect(set(lines[-2]) == {"-"}, "a rule above the total: %r" % lines[-2])
    body = [line for line in lines if not set(line) <= {"-"}]
    names = [re.split(r"\s{2,}", line)[1] for line in body[1:]]
    expect(any(len(n.encode()) != width(n) for n in names),
           "some names' bytes differ from their columns: %s" % names)
    expect("Lái Thiêu" in names and "Bình Chuẩn" in names and "Thuận Giao" in names, names)
    check_alignment(body)
    gw = gw_progress(system, "725")
    table = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line) for line in body[1:]}
    for row in [gw["unit"]] + gw["children"]:
        cells = table[row["unitCode"]]
        expect(cells[1] == row["unitName"] and
               cells[2:6] == [str(row.get(k, 0)) for k in
                              ("target", "collected", "approved", "activated")],
               "row %s: %s vs %s" % (row["unitCode"], cells, row))
    expect(list(table)[-1] == "725", "the unit's own row comes last")


def progress_green(system):
    """A ward reaching its target gets the mark: Thuận Giao's target lowered to what it has."""
    gw = gw_progress(system, "725")
    ward = next(r for r in gw["children"] if r["unitCode"] == "25972")
    old_target = ward["target"]
    status, body = system.connect("SetTargets", {"targets": [
        {"campaignId": CAMPAIGN, "unitCode": "25972", "target": ward.get("activated", 0)}]})
    expect(status == 200, "SetTargets: %s %s" % (status, body))
    try:
        rc, out, err = run(system, "progress", "--unit", "725")
        expect(rc == 0, "progress: %d %s" % (rc, err))
        lines = out.decode().splitlines()
        line = next(x for x in lines if x.startswith("25972"))
        expect(line.rstrip().endswith("\u2713"), "the green mark: %r" % line)
        expect(not any(x.rstrip().endswith("\u2713") for x in lines if x.startswith("25966")),
               "no mark for a ward short of its target")
        check_alignment([x for x in lines if not set(x) <= {"-"}])
    finally:
        system.connect("SetTargets", {"targets": [
            {"campaignId": CAMPAIGN, "unitCode": "25972", "target": old_target}]})


def progress_csv_json(system):
    gw = gw_progress(system, "725")
    rc, out, err = run(system, "progress", "--unit", "725", "--json")
    expect(rc == 0 and json.loads(out) == gw, "--json is GetProgress: %d %s" % (rc, err))
    rc, out, err = run(system, "progress", "--unit", "725", "--csv")
    expect(rc == 0, "--csv: %d %s" % (rc, err))
    import csv  # noqa: E402 pylint: disable=import-outside-toplevel
    rows = list(csv.DictReader(out.decode().splitlines()))
    want = [gw["unit"]] + gw["children"]
    expect(len(rows) == len(want), "one CSV row per unit: %d %d" % (len(rows), len(want)))
    for r, w in zip(rows, want):
        expect(r["unit_code"] == w["unitCode"] and r["unit_name"] == w["unitName"], r)
        for k, jk in (("target", "target"), ("collected", "collected"),
                      ("approved", "approved"), ("activated", "activated"),
                      ("rejected", "rejected"), ("approved_not_activated", "approvedNotActivated"),
                      ("follow_ups_open", "followUpsOpen")):
            expect(int(r[k]) == w.get(jk, 0), "%s %s: %s vs %s" % (w["unitCode"], k, r[k], w))
        expect(float(r["percent"]) == w.get("percent", 0.0) and
               float(r["activation_rate"]) == w.get("activationRate", 0.0), "percentages: %s" % r)
        expect(r["green"] == ("true" if w.get("green") else "false"), r)


def progress_defaults(system):
    """No --campaign, no --unit: the roster's campaign and its area (725)."""
    rc, out, err = run(system, "progress", "--json", env={"PX_CAMPAIGN": "", "PX_UNIT": ""})
    expect(rc == 0, "progress: %d %s" % (rc, err))
    expect(json.loads(out)["unit"]["unitCode"] == "725", "the campaign's area")
    rc, out, err = run(system, "progress", "--json", "--campaign", "no-such-campaign")
    expect(rc == 1 and "NOT_FOUND" in err, "unknown campaign: %d %s" % (rc, err))


class LineReader:
    """Lines of a pipe, each waited for at most a bound (a hung pxctl fails the case)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def line(self, timeout):
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError("no line within %ds" % timeout)
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise AssertionError("pxctl ended")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line


def progress_watch(system):
    """--watch --json prints a reading per change the feed announces."""
    full = dict(os.environ)
    full.update(system.env())
    with tempfile.TemporaryFile() as errf:
        p = subprocess.Popen([pxctl_bin(system), "progress", "--unit", "25966", "--watch",
                              "--json", "--refresh-s", "600"], env=full,
                             stdout=subprocess.PIPE, stderr=errf)
        rc = None
        try:
            out = LineReader(p.stdout)
            first = json.loads(out.line(15))
            expect(first["unit"]["unitCode"] == "25966", first)
            time.sleep(0.5)  # the subscription reaches the publisher
            status, body = system.connect("RecordEvents", {"events": [event("25966")]})
            expect(status == 200 and body.get("recorded") == 1, "RecordEvents: %s" % body)
            second = json.loads(out.line(5))
            expect(second["unit"]["collected"] == first["unit"]["collected"] + 1,
                   "the new citizen shows: %s -> %s" % (first["unit"], second["unit"]))
        finally:
            p.send_signal(signal.SIGTERM)
            rc = p.wait(timeout=10)
            errf.seek(0)
            err = errf.read().decode(errors="replace")
        expect(rc == 0, "--watch ends cleanly on SIGTERM: %d %s" % (rc, err))


# ------------------------------------------------------------------ tokens

def gw_status_with(system, token):
    return system.request("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN, token=token)[0]


def tokens_cycle(system):
    path = system.tokens_file
    before = open(path).read()
    expect(before.startswith("#"), "the test's file starts with a comment")
    pid = str(system.pid("gateway"))
    rc, out, err = run(system, "tokens", "add", "ops-viewer", "viewer", "--reload", "--pid", pid)
    expect(rc == 0, "tokens add: %d %s" % (rc, err))
    token = out.decode().strip()
    expect(re.fullmatch(r"[A-Za-z0-9_-]{43}", token), "32 random bytes in base64url: %r" % token)
    expect(len(base64.urlsafe_b64decode(token + "=")) == 32, "32 bytes")
    text = open(path).read()
    digest = hashlib.sha256(token.encode()).hexdigest()
    expect(token not in text and ("%s ops-viewer viewer" % digest) in text,
           "only the token's SHA-256 is stored")
    expect(text.startswith(before), "every line before it kept, comments included")
    expect(stat.S_IMODE(os.stat(path).st_mode) == 0o600, "mode 600")
    wait_for(lambda: gw_status_with(system, token) == 200, "the gateway takes the new token")

    rc, out, err = run(system, "tokens", "list")
    listing = out.decode()
    expect(rc == 0, "tokens list: %d %s" % (rc, err))
    line = next(x for x in listing.splitlines() if x.startswith("ops-viewer "))
    expect(line.split()[1] == "viewer", line)
    expect(re.search(r"recorder-district\s+recorder\s+725\s", listing), listing)
    expect(not re.search(r"[0-9a-f]{64}", listing) and token not in listing,
           "no whole hash, no token in the list")

    rc, _, err = run(system, "tokens", "revoke", "ops-viewer", "--reload", "--pid", pid)
    expect(rc == 0, "tokens revoke: %d %s" % (rc, err))
    expect(open(path).read() == before, "the file is as it was")
    wait_for(lambda: gw_status_with(system, token) == 401, "the revoked token answers 401")
    expect(gw_status_with(system, "viewer") == 200, "the others still work")


def tokens_refusals(system):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "var", "gw", "tokens")  # neither directory there yet
        env = {"PX_TOKENS_FILE": path}
        rc, out, err = run(system, "tokens", "add", "w1", "recorder", env=env)
        expect(rc == 2 and "units" in err and not os.path.exists(path), "recorder without units")
        rc, out, err = run(system, "tokens", "add", "w1", "recorder", "--units", "25966,725",
                           "--rate", "5", "--burst", "10", env=env)
        expect(rc == 0 and out.strip(), "add to a new file: %d %s" % (rc, err))
        expect(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700, "its directory 700")
        expect(stat.S_IMODE(os.stat(os.path.join(d, "var")).st_mode) == 0o755, "a parent 755")
        line = [x for x in open(path).read().splitlines() if " w1 " in x][0]
        expect(line.split()[1:] == ["w1", "recorder", "units=25966,725", "rate=5", "burst=10"],
               line)
        rc, _, err = run(system, "tokens", "add", "w1", "viewer", env=env)
        expect(rc == 1 and "--replace" in err, "a name taken: %d %s" % (rc, err))
        rc, out, err = run(system, "tokens", "add", "w1", "viewer", "--replace", env=env)
        expect(rc == 0, "--replace: %d %s" % (rc, err))
        lines = open(path).read().splitlines()
        expect(len(lines) == 1 and lines[0].split()[1:] == ["w1", "viewer"], lines)
        rc, _, err = run(system, "tokens", "add", "bad name", "viewer", env=env)
        expect(rc == 2, "a bad name: %d %s" % (rc, err))
        rc, _, err = run(system, "tokens", "add", "x", "owner", env=env)
        expect(rc == 2 and "role" in err, "a bad role: %d %s" % (rc, err))
        rc, _, err = run(system, "tokens", "revoke", "nobody", env=env)
        expect(rc == 1 and "nobody" in err, "revoke unknown: %d %s" % (rc, err))
        # --reload never signals a process that is not a px-gateway (this one would die)
        rc, _, err = run(system, "tokens", "revoke", "w1", "--reload", "--pid",
                         str(os.getpid()), env=env)
        expect(rc == 3 and "not a px-gateway" in err, "--reload to a stranger: %d %s" % (rc, err))
        # a line the gateway would refuse is kept, and named
        with open(path, "a") as f:
            f.write("not-a-hash someone viewer\n")
        rc, _, err = run(system, "tokens", "list", env=env)
        expect(rc == 1 and "line 1" in err, "a bad line named: %d %s" % (rc, err))
        rc, _, err = run(system, "tokens", "list", env={"PX_TOKENS_FILE": ""})
        expect(rc == 2 and "PX_TOKENS_FILE" in err, "no file given: %d %s" % (rc, err))


# ------------------------------------------------------------------ keys

def keys_gen(system):
    import zmq  # noqa: E402 pylint: disable=import-outside-toplevel
    with tempfile.TemporaryDirectory() as d:
        kdir = os.path.join(d, "etc", "keys")
        rc, out, err = run(system, "keys", "gen", "gateway", "--dir", kdir)
        expect(rc == 0, "keys gen: %d %s" % (rc, err))
        pub_path, sec_path = os.path.join(kdir, "gateway"), os.path.join(kdir, "gateway_secret")
        expect(stat.S_IMODE(os.stat(sec_path).st_mode) == 0o600, "the secret is mode 600")
        expect(stat.S_IMODE(os.stat(pub_path).st_mode) == 0o644, "the public file is readable")
        pub_text, sec_text = open(pub_path).read(), open(sec_path).read()
        public = re.search(r'public-key = "(.{40})"', pub_text).group(1)
        secret = re.search(r'secret-key = "(.{40})"', sec_text).group(1)
        expect(out.decode() == public + " gateway\n", "the allow-list line is printed: %r" % out)
        expect("secret-key" not in pub_text, "no secret in the public file")
        expect(re.search(r'public-key = "(.{40})"', sec_text).group(1) == public, "one pair")
        expect(zmq.curve_public(secret.encode()).decode() == public,
               "the secret key's public key is the public key")
        rc, _, err = run(system, "keys", "gen", "gateway", "--dir", kdir)
        expect(rc == 1 and "exists" in err and open(pub_path).read() == pub_text,
               "an existing pair is kept: %d %s" % (rc, err))
        rc, out, err = run(system, "keys", "gen", "gateway", "--dir", kdir, "--force")
        expect(rc == 0 and out.decode().split()[0] != public, "--force replaces it")
        expect(sorted(os.listdir(kdir)) == ["gateway", "gateway_secret"], "no stray files")
        rc, _, err = run(system, "keys", "gen", "../up", "--dir", kdir)
        expect(rc == 2, "a name that is a path: %d %s" % (rc, err))


# ------------------------------------------------------------------ CURVE

def curve_identity(system):
    """The system runs under CURVE: pxctl is served with its own key; without a key, or with
    a key the services do not list, it is refused, and says so."""
    if not system.curve:
        return
    rc, out, err = run(system, "call", "roster", "ListCampaigns")
    expect(rc == 0, "with its key: %d %s" % (rc, err))
    rc, out, err = run(system, "call", "roster", "ListCampaigns", "--timeout-ms", "3000",
                       env={"PX_CURVE_SECRET_KEY": "", "PX_CURVE_ALLOW": ""})
    expect(rc != 0 and out == b"", "plaintext is refused: %d %s %s" % (rc, out, err))
    with tempfile.TemporaryDirectory() as d:
        rc, _, err = run(system, "keys", "gen", "stranger", "--dir", d)
        expect(rc == 0, "keys gen: %s" % err)
        rc, out, err = run(system, "call", "roster", "ListCampaigns", "--timeout-ms", "3000",
                           env={"PX_CURVE_SECRET_KEY": os.path.join(d, "stranger_secret")})
        expect(rc == 1 and "UNAUTHENTICATED" in err and "CURVE key" in err,
               "an unlisted key: %d %s" % (rc, err))
        # Only one of the two options: refused before anything is sent.
        rc, _, err = run(system, "call", "roster", "ListCampaigns",
                         env={"PX_CURVE_ALLOW": ""})
        expect(rc == 2 and "curve-secret-key is set but not curve-allow" in err,
               "half a CURVE setting: %d %s" % (rc, err))
    refused = [ln for ln in open(system.log("roster"), errors="replace")
               if '"CURVE-REFUSED"' in ln]
    expect(refused, "the roster logged the refusal")


# ------------------------------------------------------------------ completion

def completion_bash(system):
    rc, out, err = run(system, "completion", "bash")
    expect(rc == 0, "completion bash: %d %s" % (rc, err))
    with tempfile.NamedTemporaryFile("wb", suffix=".bash", delete=False) as f:
        f.write(out)
        script = f.name
    try:
        p = subprocess.run(["bash", "-n", script], stderr=subprocess.PIPE)
        expect(p.returncode == 0, "bash -n: %s" % p.stderr)
        probe = r'''
source "$1"
complete -p pxctl || exit 1
c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _pxctl; echo "${COMPREPLY[*]}"; }
c "$2" pr
c "$2" call ""
c "$2" call roster GetU
c "$2" progress --wa
c "$2" tokens ""
c "$2" tokens add --re
c "$2" help to
'''
        full = dict(os.environ)
        full.update(system.env())
        p = subprocess.run(["bash", "-c", probe, "probe", script, pxctl_bin(system)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full, timeout=60)
        lines = p.stdout.decode().splitlines()
        expect(p.returncode == 0 and lines[0].startswith("complete -F _pxctl pxctl"),
               "complete -p pxctl: %s %s" % (lines, p.stderr))
        want = ["progress", "roster activation", "GetUnits", "--watch", "add list revoke",
                "--replace --reload", "tokens"]
        expect(lines[1:] == want, "completions %s, want %s" % (lines[1:], want))
    finally:
        os.unlink(script)


def main():
    global PROJECT_VERSION  # pylint: disable=global-statement
    build = os.environ.get("PX_BIN_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")
    PROJECT_VERSION = subprocess.run([os.path.join(build, "services/pxctl/pxctl"), "--version"],
                                     stdout=subprocess.PIPE, check=True
                                     ).stdout.decode().split()[1]
    cases = [
        help_everywhere,
        call_json,
        call_proto_round_trip,
        call_errors,
        health_ok,
        progress_table,
        progress_green,
        progress_csv_json,
        progress_defaults,
        progress_watch,
        tokens_cycle,
        tokens_refusals,
        keys_gen,
        curve_identity,
        completion_bash,
        health_not_serving,
        health_unavailable,  # last: it stops the activation service
    ]
    sys.exit(run_cases(cases, sys.argv[1:], build=build, name="pxctl"))


if __name__ == "__main__":
    main()
