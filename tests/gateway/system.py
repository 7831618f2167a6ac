#!/usr/bin/env python3
"""The whole phuxanh system for the gateway's tests: real processes on real databases.

System() makes two fresh databases on the cluster of PX_TEST_PG_URL (tests/run.sh starts
one), starts px-roster, px-activation and px-gateway on free ports, writes a token file with
one token per role, optionally loads the Thuận An demo (deploy/load-demo.sh), and waits until
the gateway's /readyz says every service answers. stop() ends the processes and drops the
databases. Tests in Python import it; tests in other languages run under it:

    system.py --build BUILD_DIR [--no-demo] -- node test.mjs

which exports PX_GW_URL, PX_GW_TOKEN_<ROLE>, PX_GW_ADMIN_TOKEN..., the pids, and the paths
of the logs, then stops everything when the command ends (its exit status is ours).

The system runs under CURVE (docs/PROTOCOL.md) unless System(curve=False): a key pair per
process name, made with pxctl keys gen in the system's directory (keys/), and one allow-list
listing them all; env() gives pxctl its own key.
"""
import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The tokens every system has: name -> (role, the rest of its line). The recorders cover one
# ward (25966 Lái Thiêu) and one district (725 Thuận An) of the demo tree; "bulk" is a viewer
# whose rate limit load tests do not reach.
TOKENS = {
    "admin": ("admin", ""),
    "viewer": ("viewer", ""),
    "planner": ("planner", ""),
    "recorder": ("recorder", "units=25966"),
    "recorder-district": ("recorder", "units=725"),
    "bulk": ("viewer", "rate=1000000 burst=1000000"),
}
CAMPAIGN = "tn-cuoi-tuan-2023"
# The names (and x-callers) of the processes that speak to the services: each has a key pair.
CURVE_NAMES = ("roster", "activation", "gateway", "pxctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql_bin():
    bindir = os.environ.get("PX_PG_BINDIR", "/usr/lib/postgresql/15/bin")
    p = os.path.join(bindir, "psql")
    return p if os.path.exists(p) else shutil.which("psql")


def admin_sql(sql):
    url = os.environ.get("PX_TEST_PG_URL")
    if not url:
        sys.exit("PX_TEST_PG_URL is not set: run the tests through tests/run.sh")
    subprocess.run([psql_bin(), url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def db_url(name):
    base = os.environ["PX_TEST_PG_URL"]
    return base.rsplit("/", 1)[0] + "/" + name


class System:
    def __init__(self, build=None, name="gw", feed_heartbeat_ms=300, gateway_args=(),
                 log_level="info", gateway_env=None, log_streams=False, log_env=None,
                 curve=True):
        self.build = build or os.environ.get("PX_BIN_DIR") or os.path.join(ROOT, "build")
        self.dir = tempfile.mkdtemp(prefix="px-gw-test-")
        tag = "%s_%d_%s" % (name, os.getpid(), secrets.token_hex(3))
        self.dbs = {"roster": tag + "_roster", "activation": tag + "_activation"}
        self.roster_ep = "tcp://127.0.0.1:%d" % free_port()
        self.activation_ep = "tcp://127.0.0.1:%d" % free_port()
        self.feed_ep = "tcp://127.0.0.1:%d" % free_port()
        self.http_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.http_port
        self.feed_heartbeat_ms = feed_heartbeat_ms
        self.gateway_args = list(gateway_args)
        self.gateway_extra_env = dict(gateway_env or {})  # PX_* settings of this gateway
        self.log_level = log_level
        self.procs = {}
        self.tokens = {}
        self.extra_tokens = {}  # name -> (role, the rest of its line), see add_token
        self.tokens_file = os.path.join(self.dir, "tokens")
        self.secret = secrets.token_hex(32)
        self.curve = curve
        self.keys_dir = os.path.join(self.dir, "keys")
        self.allow_file = os.path.join(self.keys_dir, "allow")
        # With log_streams every process publishes its log lines (log-endpoint, docs/LOGS.md)
        # and env() tells pxctl where (PX_LOG_ENDPOINTS); log_env: more PX_LOG_* settings.
        self.log_streams = log_streams
        self.log_env = dict(log_env or {})
        self.log_eps = {}  # process name -> (PUB endpoint, history endpoint)

    # ------------------------------------------------------------ processes
    def bin(self, rel):
        return os.path.join(self.build, rel)

    def log(self, name):
        return os.path.join(self.dir, name + ".log")

    def _spawn(self, name, argv, env):
        full = dict(os.environ)
        full.update(env)
        if self.log_streams:
            if name not in self.log_eps:
                self.log_eps[name] = (self._log_ep(), self._log_ep())
            eps = self.log_eps[name]
            full.update({"PX_LOG_ENDPOINT": eps[0], "PX_LOG_HISTORY_ENDPOINT": eps[1]})
            full.update(self.log_env)
        out = open(self.log(name), "ab")
        p = subprocess.Popen(argv, env=full, stdout=subprocess.PIPE, stderr=out,
                             start_new_session=True)
        line = p.stdout.readline().decode(errors="replace")
        if not line.startswith("READY"):
            p.wait(timeout=10)
            raise RuntimeError("%s did not start (%s); its log:\n%s"
                               % (name, line.strip(), open(self.log(name)).read()[-3000:]))
        self.procs[name] = p
        return p

    def make_keys(self):
        """A key pair per name of CURVE_NAMES and the allow-list of them all (once)."""
        if not self.curve or os.path.exists(self.allow_file):
            return
        lines = ["# every process of this test system"]
        for name in CURVE_NAMES:
            out = subprocess.run([self.bin("services/pxctl/pxctl"), "keys", "gen", name,
                                  "--dir", self.keys_dir], check=True,
                                 stdout=subprocess.PIPE).stdout.decode()
            lines.append(out.strip())
        with open(self.allow_file + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(self.allow_file + ".tmp", self.allow_file)

    def curve_env(self, name):
        """The PX_CURVE_* settings of the process called name ({} without CURVE)."""
        if not self.curve:
            return {}
        self.make_keys()
        return {"PX_CURVE_SECRET_KEY": os.path.join(self.keys_dir, name + "_secret"),
                "PX_CURVE_ALLOW": self.allow_file}

    def _log_ep(self):
        """A free endpoint none of this system's (chosen, maybe not yet bound) ones has."""
        taken = {self.roster_ep, self.activation_ep, self.feed_ep,
                 "tcp://127.0.0.1:%d" % self.http_port}
        taken.update(ep for pair in self.log_eps.values() for ep in pair)
        while True:
            ep = "tcp://127.0.0.1:%d" % free_port()
            if ep not in taken:
                return ep

    def start_roster(self):
        return self._spawn("roster", [self.bin("services/roster/px-roster")], {
            **self.curve_env("roster"),
            "PX_DB_URL": db_url(self.dbs["roster"]),
            "PX_LISTEN": self.roster_ep,
            "PX_ACTIVATION_ENDPOINTS": self.activation_ep,
            "PX_WORKERS": "2",
            "PX_LOG_LEVEL": self.log_level,
        })

    def start_activation(self, name="activation", activation_ep=None, feed_ep=None):
        """px-activation on the system's database; another name and endpoints make a replica."""
        return self._spawn(name, [self.bin("services/activation/px-activation")], {
            **self.curve_env("activation"),
            "PX_DB_URL": db_url(self.dbs["activation"]),
            "PX_LISTEN": activation_ep or self.activation_ep,
            "PX_ROSTER_ENDPOINTS": self.roster_ep,
            "PX_CITIZEN_KEY": self.secret,
            "PX_PUB_ENDPOINT": feed_ep or self.feed_ep,
            "PX_PUB_HEARTBEAT_MS": str(self.feed_heartbeat_ms),
            "PX_VERIFY_INTERVAL_MS": "1000",
            "PX_WORKERS": "2",
            "PX_LOG_LEVEL": self.log_level,
        })

    def gateway_env(self):
        return {
            **self.curve_env("gateway"),
            "PX_HTTP_LISTEN": "127.0.0.1:%d" % self.http_port,
            "PX_ROSTER_ENDPOINTS": self.roster_ep,
            "PX_ACTIVATION_ENDPOINTS": self.activation_ep,
            "PX_ACTIVATION_FEED": self.feed_ep,
            "PX_FEED_HEARTBEAT_MS": str(self.feed_heartbeat_ms),
            "PX_TOKENS_FILE": self.tokens_file,
            "PX_LOG_LEVEL": self.log_level,
        }

    def start_gateway(self, extra_env=None):
        env = self.gateway_env()
        env.update(self.gateway_extra_env)
        env.update(extra_env or {})
        return self._spawn("gateway", [self.bin("services/gateway/px-gateway")] +
                           self.gateway_args, env)

    def stop_process(self, name, sig=signal.SIGTERM, timeout=15):
        p = self.procs.pop(name, None)
        if not p:
            return None
        try:
            p.send_signal(sig)
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            return p.wait()

    def pid(self, name):
        return self.procs[name].pid

    # ------------------------------------------------------------ tokens
    def add_token(self, name, role, units="", options=""):
        """Adds a token beyond the standard ones (written by the next write_tokens); options are
        more fields of its line, e.g. "rate=1 burst=2". Returns the token."""
        rest = " ".join(x for x in (("units=" + units) if units else "", options) if x)
        self.extra_tokens[name] = (role, rest)
        self.tokens.setdefault(name, secrets.token_urlsafe(32))
        return self.tokens[name]

    def write_tokens(self, extra_lines=(), omit=()):
        """Writes the token file (atomically): every standard and added token except those
        named in omit, then extra_lines as they are."""
        lines = ["# written by tests/gateway/system.py"]
        every = dict(TOKENS)
        every.update(self.extra_tokens)
        for name, (role, rest) in every.items():
            tok = self.tokens.get(name) or secrets.token_urlsafe(32)
            self.tokens[name] = tok
            if name in omit:
                continue
            line = "%s %s %s" % (hashlib.sha256(tok.encode()).hexdigest(), name, role)
            if rest:
                line += " " + rest
            lines.append(line)
        lines += list(extra_lines)
        with open(self.tokens_file + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(self.tokens_file + ".tmp", self.tokens_file)

    def stored_keys(self, keys):
        """Which of these idempotency keys the activation database holds (events written)."""
        keys = list(keys)
        if not keys:
            return set()
        lits = ",".join("'%s'" % k.replace("'", "''") for k in keys)
        rows = self.sql("activation", "SELECT idempotency_key FROM events WHERE idempotency_key "
                        "IN (%s)" % lits)
        return {r[0] for r in rows}

    def sql(self, service, query):
        """Rows (lists of text) of a query on a service's database ("activation", "roster")."""
        out = subprocess.run([psql_bin(), db_url(self.dbs[service]), "-v", "ON_ERROR_STOP=1",
                              "-qAt", "-F", "\t", "-c", query], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
        return [line.split("\t") for line in out.splitlines()]

    # ------------------------------------------------------------ whole system
    def start(self, demo=True):
        for db in self.dbs.values():
            admin_sql("CREATE DATABASE %s" % db)
        self.write_tokens()
        self.start_roster()
        self.start_activation()
        if demo:
            self.load_demo()
        self.start_gateway()
        self.wait_ready()
        return self

    def load_demo(self):
        env = dict(os.environ)
        env.update({
            "PX_ROSTER_ENDPOINTS": self.roster_ep,
            "PX_ACTIVATION_ENDPOINTS": self.activation_ep,
            "PX_PXCTL_BIN": self.bin("services/pxctl/pxctl"),
            "PX_DEMO_CITIZENS": os.environ.get("PX_DEMO_CITIZENS", "600"),
        })
        env.update(self.curve_env("pxctl"))  # the loader is pxctl
        with open(self.log("demo"), "ab") as out:
            subprocess.run([os.path.join(ROOT, "deploy/load-demo.sh")], env=env, check=True,
                           stdout=out, stderr=out)

    def wait_ready(self, timeout=30):
        """Waits for /readyz to say ready and, when the roster holds units, for the gateway to
        have read its unit tree (a recorder's call is UNAVAILABLE until then)."""
        deadline = time.time() + timeout
        last = None
        units = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    body = json.load(r) if r.status == 200 else None
                if body is not None:
                    if units is None:
                        units = int(self.sql("roster", "SELECT count(*) FROM units")[0][0])
                    if units == 0 or int(body.get("unit_tree_version", 0)) > 0:
                        return body
                    last = "the unit tree is not read yet"
            except urllib.error.HTTPError as e:
                last = e.read().decode(errors="replace")
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError("gateway not ready within %ds: %s" % (timeout, last))

    def stop_processes(self):
        """Stops every process (the gateway first); {name: exit status}."""
        return {name: self.stop_process(name)
                for name in ["gateway"] + [n for n in self.procs if n != "gateway"]}

    def stop(self):
        """Stops everything; returns {name: exit status} of what was still running (0 is a
        clean exit; under the sanitizers a leak or an error makes it non-zero)."""
        codes = {}
        for name in ["gateway"] + [n for n in self.procs if n != "gateway"]:
            codes[name] = self.stop_process(name)
        for db in self.dbs.values():
            try:
                admin_sql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
            except subprocess.CalledProcessError:
                pass
        if not os.environ.get("PX_TEST_KEEP_LOGS"):
            shutil.rmtree(self.dir, ignore_errors=True)
        return codes

    def env(self):
        e = {
            "PX_GW_URL": self.url,
            "PX_GW_CAMPAIGN": CAMPAIGN,
            "PX_GW_DIR": self.dir,
            "PX_GW_TOKENS_FILE": self.tokens_file,
            "PX_ACTIVATION_ENDPOINT": self.activation_ep,
            # what pxctl reads (and any client of the services)
            "PX_ROSTER_ENDPOINTS": self.roster_ep,
            "PX_ACTIVATION_ENDPOINTS": self.activation_ep,
            "PX_ACTIVATION_FEED": self.feed_ep,
            "PX_GATEWAY_URL": self.url,
            "PX_TOKENS_FILE": self.tokens_file,
            **self.curve_env("pxctl"),
        }
        if self.log_eps:
            e["PX_LOG_ENDPOINTS"] = ",".join("%s=%s+%s" % (n, pub, hist)
                                             for n, (pub, hist) in self.log_eps.items())
        for var, name in (("PX_GW_PID", "gateway"), ("PX_ACTIVATION_PID", "activation"),
                          ("PX_ROSTER_PID", "roster")):
            if name in self.procs:  # a test may have stopped one
                e[var] = str(self.pid(name))
        for name, tok in self.tokens.items():
            e["PX_GW_TOKEN_" + name.upper().replace("-", "_")] = tok
        return e

    # ------------------------------------------------------------ calling the gateway
    def request(self, method, path, body=None, token="admin", headers=None, timeout=30):
        """(status, headers, body bytes) of one HTTP request; token is a role name or None."""
        h = dict(headers or {})
        if token:
            h.setdefault("Authorization", "Bearer " + self.tokens.get(token, token))
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def connect(self, method, message, token="admin", headers=None, service="activation"):
        """A Connect JSON call: (status, parsed JSON answer)."""
        svc = {"activation": "phuxanh.activation.v1.ActivationService",
               "roster": "phuxanh.roster.v1.RosterService"}[service]
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, _, body = self.request("POST", "/%s/%s" % (svc, method), json.dumps(message),
                                       token=token, headers=h)
        return status, json.loads(body) if body else None


def event(unit, key=None, citizen=None, stage="STAGE_COLLECTED",
          occurred_at="2023-07-29T03:00:00Z"):
    """One ActivationEvent (proto3 JSON) of the demo campaign, with a fresh idempotency key
    and a fresh citizen (a Hà Nội ID born in 1985, never one of the demo's) unless given."""
    return {
        "idempotencyKey": key or "test-" + secrets.token_hex(8),
        "campaignId": CAMPAIGN,
        "citizenId": citizen or "001085%06d" % secrets.randbelow(1000000),
        "unitCode": unit,
        "stage": stage,
        "channel": "CHANNEL_OWN_PHONE",
        "venue": "VENUE_OFFICE",
        "occurredAt": occurred_at,
        "consent": True,
    }


def protos():
    """(activation_pb2, roster_pb2): the message classes protoc made at build time
    (tests/gateway/CMakeLists.txt; PX_GW_PY_DIR says where)."""
    gen = os.environ.get("PX_GW_PY_DIR") or os.path.join(
        os.environ.get("PX_BIN_DIR") or os.path.join(ROOT, "build"), "tests/gateway/py")
    if gen not in sys.path:
        sys.path.insert(0, gen)
    from phuxanh.activation.v1 import activation_pb2  # noqa: E402 pylint: disable=import-error
    from phuxanh.roster.v1 import roster_pb2  # noqa: E402 pylint: disable=import-error
    return activation_pb2, roster_pb2


def run_cases(cases, argv, demo=True, system_class=None, **system_args):
    """Runs cases (functions taking the System) against one started system (of system_class,
    a subclass of System, when given), or only the one named in argv; prints ok/FAIL per case;
    returns the exit status."""
    only = argv[0] if argv else None
    system = (system_class or System)(**system_args)
    failed = 0
    try:
        system.start(demo=demo)
        for case in cases:
            if only and case.__name__ != only:
                continue
            t = time.monotonic()
            try:
                case(system)
                print("ok   %s (%.1f s)" % (case.__name__, time.monotonic() - t), flush=True)
            except Exception as e:  # noqa: BLE001 - a failed case is reported, not raised
                failed += 1
                print("FAIL %s: %s: %s" % (case.__name__, type(e).__name__, e), flush=True)
    finally:
        codes = {}
        try:
            codes = system.stop_processes()
        finally:
            bad = {n: c for n, c in codes.items() if c not in (0, None)}
            if bad:
                failed += 1
                print("FAIL clean exit: %s" % bad, flush=True)
            if failed:
                for name in ("gateway", "activation", "roster"):
                    path = system.log(name)
                    if os.path.exists(path):
                        sys.stderr.write("---- last lines of %s.log\n" % name)
                        sys.stderr.write("".join(open(path, errors="replace").readlines()[-40:]))
            system.stop()
    print("%d failed" % failed)
    return 1 if failed else 0


System.run_cases = staticmethod(run_cases)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", help="the build tree (default: PX_BIN_DIR or build/)")
    ap.add_argument("--no-demo", action="store_true", help="do not load the demo data")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("a command to run is needed after --")
    system = System(build=args.build)
    rc = 1
    try:
        system.start(demo=not args.no_demo)
        env = dict(os.environ)
        env.update(system.env())
        rc = subprocess.run(cmd, env=env).returncode
    finally:
        bad = {n: c for n, c in system.stop_processes().items() if c not in (0, None)}
        if bad:
            sys.stderr.write("processes did not exit cleanly: %s\n" % bad)
            rc = rc or 1
        if rc != 0:
            for name in ("gateway", "activation", "roster"):
                path = system.log(name)
                if os.path.exists(path):
                    sys.stderr.write("---- last lines of %s.log\n" % name)
                    sys.stderr.write("".join(open(path, errors="replace").readlines()[-30:]))
        system.stop()
    sys.exit(rc)


if __name__ == "__main__":
    main()
