#!/usr/bin/env python3
"""Interop test: a Python client of the phuxanh RPC protocol, written from docs/PROTOCOL.md
alone, against the C test server (px-testd).

Usage:
    health_check.py --server PATH/px-testd [--gen DIR]

--gen (or $PX_INTEROP_GEN) is a directory holding the classes `protoc --python_out` generated
from proto/phuxanh/rpc/v1/rpc.proto and proto/phuxanh/health/v1/health.proto. Without it the
script runs protoc itself into a temporary directory. --server may also come from $PX_TESTD.

The script starts the server on a free local port, waits for its "READY <endpoint>" line,
runs the checks, stops the server (also on failure) and prints "N passed, M failed". It
exits 0 only when every check passed.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HEALTH_CHECK = "/phuxanh.health.v1.Health/Check"
READY_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 5.0
CALL_TIMEOUT_MS = 5000

# Status codes used here (PROTOCOL.md section 9).
OK = 0
INVALID_ARGUMENT = 3
NOT_FOUND = 5
UNIMPLEMENTED = 12

HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


# ---------------------------------------------------------------- setup

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default=os.environ.get("PX_TESTD"),
                   help="path of the px-testd binary (default: $PX_TESTD)")
    p.add_argument("--gen", default=os.environ.get("PX_INTEROP_GEN"),
                   help="directory of the protoc --python_out classes (default: "
                        "$PX_INTEROP_GEN, else generated into a temporary directory)")
    args = p.parse_args()
    if not args.server:
        p.error("--server (or $PX_TESTD) is required")
    return args


def generate_classes(tmp):
    """Runs protoc --python_out for the two schema files into tmp; returns tmp."""
    proto_root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "..", "..", "proto"))
    protoc = shutil.which("protoc")
    if protoc is None:
        sys.exit("protoc not found: install the Debian package 'protobuf-compiler'")
    subprocess.run([protoc, "-I" + proto_root, "--python_out=" + tmp,
                    os.path.join(proto_root, "phuxanh/rpc/v1/rpc.proto"),
                    os.path.join(proto_root, "phuxanh/health/v1/health.proto")], check=True)
    return tmp


def import_modules(gen_dir):
    sys.path.insert(0, gen_dir)
    try:
        import zmq
        from phuxanh.rpc.v1 import rpc_pb2
        from phuxanh.health.v1 import health_pb2
    except ImportError as e:
        sys.exit("cannot import %s (%s): install the Debian packages 'python3-zmq' and "
                 "'python3-protobuf', and check --gen" % (e.name, e))
    return zmq, rpc_pb2, health_pb2


def _die_with_parent():
    """In the child before exec: have the kernel SIGKILL px-testd if this script dies without
    stopping it (e.g. killed by a ctest timeout). Linux only; elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """px-testd as a child process, in its own process group so it is killed with its
    children, if any."""

    def __init__(self, path):
        self.path = path
        self.proc = None
        self.endpoint = None
        self.lines = []

    def start(self):
        last_error = "not started"
        for _ in range(3):  # the free port may be taken between free_port() and the bind
            listen = "tcp://127.0.0.1:%d" % free_port()
            self.proc = subprocess.Popen([self.path, "--listen", listen],
                                         stdout=subprocess.PIPE, stderr=None,
                                         start_new_session=True, text=True, bufsize=1,
                                         preexec_fn=_die_with_parent)
            ready = threading.Event()
            threading.Thread(target=self._read_stdout, args=(ready,), daemon=True).start()
            if ready.wait(READY_TIMEOUT_S) and self.endpoint:
                return
            rc = self.proc.poll()
            last_error = ("exited with status %s" % rc if rc is not None
                          else "no READY line within %.0f s" % READY_TIMEOUT_S)
            self.stop()
        raise RuntimeError("px-testd did not start: %s (stdout: %r)"
                           % (last_error, self.lines[-5:]))

    def _read_stdout(self, ready):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if not ready.is_set() and line.startswith("READY "):
                self.endpoint = line[len("READY "):].strip()
                ready.set()
        ready.set()  # EOF: the server exited

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


# ---------------------------------------------------------------- the client

class Reply:
    def __init__(self, header, body):
        self.header = header
        self.body = body

    @property
    def code(self):
        return self.header.code

    def metadata(self):
        return {e.key: e.value for e in self.header.metadata}

    def __repr__(self):
        return "Reply(call_id=%d, code=%d, message=%r, metadata=%r, body=%d bytes)" % (
            self.header.call_id, self.header.code, self.header.message, self.metadata(),
            len(self.body))


class Client:
    """A DEALER client per PROTOCOL.md: two-frame requests and replies, matched by call_id."""

    def __init__(self, zmq, rpc_pb2, endpoint):
        self.zmq = zmq
        self.pb = rpc_pb2
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next_id = 1  # never 0: the server uses 0 for replies it cannot attribute
        self.in_flight = set()
        self.done = {}
        self.discarded = []

    def close(self):
        self.sock.close(0)
        self.ctx.term()

    def send(self, method, body, metadata=None, timeout_ms=CALL_TIMEOUT_MS, call_id=None):
        if call_id is None:
            call_id = self.next_id
            self.next_id += 1
        hdr = self.pb.RequestHeader(call_id=call_id, method=method, timeout_ms=timeout_ms)
        for k, v in (metadata or {}).items():
            hdr.metadata.add(key=k, value=v)
        self.in_flight.add(call_id)
        self.sock.send_multipart([hdr.SerializeToString(), body])
        return call_id

    def _receive_one(self, timeout_s):
        if not self.sock.poll(int(timeout_s * 1000), self.zmq.POLLIN):
            return False
        frames = self.sock.recv_multipart()
        if len(frames) != 2:
            self.discarded.append(("frames", len(frames)))
            return True
        hdr = self.pb.ResponseHeader()
        try:
            hdr.ParseFromString(frames[0])
        except Exception as e:  # protocol error: log and drop
            self.discarded.append(("header", repr(e)))
            return True
        if hdr.call_id not in self.in_flight:
            self.discarded.append(("call_id", hdr.call_id))
            return True
        self.in_flight.discard(hdr.call_id)
        self.done[hdr.call_id] = Reply(hdr, frames[1])
        return True

    def wait(self, call_id, timeout_s=REPLY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while call_id not in self.done:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive_one(left):
                self.in_flight.discard(call_id)  # give up: a late reply will be discarded
                raise CheckFailed("no reply to call_id %d within %.0f s" % (call_id, timeout_s))
        return self.done.pop(call_id)

    def call(self, method, body, **kw):
        return self.wait(self.send(method, body, **kw))


# ---------------------------------------------------------------- the checks

def check_a_serving(c, health_pb2):
    """Health/Check for the whole server: OK, SERVING, an x-request-id of 32 hex chars."""
    r = c.call(HEALTH_CHECK, health_pb2.HealthCheckRequest(service="").SerializeToString())
    expect(r.code == OK, "code %d, want 0 OK: %r" % (r.code, r))
    resp = health_pb2.HealthCheckResponse()
    resp.ParseFromString(r.body)
    expect(resp.status == health_pb2.HealthCheckResponse.SERVING,
           "status %d, want 1 SERVING" % resp.status)
    rid = r.metadata().get("x-request-id")
    expect(rid is not None, "no x-request-id in the response metadata: %r" % r)
    expect(HEX32.match(rid) is not None, "x-request-id %r is not 32 hex characters" % rid)
    return "request id %s" % rid


def check_b_unimplemented(c, health_pb2):
    """An unknown method: UNIMPLEMENTED, zero-length frame 2."""
    r = c.call("/phuxanh.nope.v1.X/Y", b"")
    expect(r.code == UNIMPLEMENTED, "code %d, want 12 UNIMPLEMENTED: %r" % (r.code, r))
    expect(len(r.body) == 0, "frame 2 of an error reply has %d bytes, want 0" % len(r.body))
    return "message %r" % r.header.message


def check_c_garbage(c, health_pb2):
    """Request bytes that do not decode as HealthCheckRequest: INVALID_ARGUMENT."""
    r = c.call(HEALTH_CHECK, b"\xff\xff\xff")
    expect(r.code == INVALID_ARGUMENT, "code %d, want 3 INVALID_ARGUMENT: %r" % (r.code, r))
    expect(len(r.body) == 0, "frame 2 of an error reply has %d bytes, want 0" % len(r.body))
    return "message %r" % r.header.message


def check_d_unknown_service(c, health_pb2):
    """Health for a service the server does not serve: NOT_FOUND."""
    r = c.call(HEALTH_CHECK,
               health_pb2.HealthCheckRequest(service="phuxanh.unknown.v1.Nope").SerializeToString())
    expect(r.code == NOT_FOUND, "code %d, want 5 NOT_FOUND: %r" % (r.code, r))
    return "message %r" % r.header.message


def check_e_request_id_echo(c, health_pb2):
    """An x-request-id sent by the client comes back unchanged."""
    rid = uuid.uuid4().hex
    r = c.call(HEALTH_CHECK, b"", metadata={"x-request-id": rid, "x-caller": "interop-test"})
    expect(r.code == OK, "code %d, want 0 OK: %r" % (r.code, r))
    got = r.metadata().get("x-request-id")
    expect(got == rid, "x-request-id %r came back as %r" % (rid, got))
    return "echoed %s" % rid


def check_f_two_in_flight(c, health_pb2):
    """Two calls in flight at once, told apart only by call_id: each gets its own answer."""
    id_ok = c.send(HEALTH_CHECK, health_pb2.HealthCheckRequest(service="").SerializeToString(),
                   call_id=1001)
    id_nf = c.send(HEALTH_CHECK, health_pb2.HealthCheckRequest(
        service="phuxanh.unknown.v1.Nope").SerializeToString(), call_id=1002)
    # Wait for the second one first: the first reply must be kept for its own call.
    r_nf = c.wait(id_nf)
    r_ok = c.wait(id_ok)
    expect(r_nf.header.call_id == id_nf and r_nf.code == NOT_FOUND,
           "call %d (unknown service) got %r" % (id_nf, r_nf))
    expect(r_ok.header.call_id == id_ok and r_ok.code == OK,
           "call %d (whole server) got %r" % (id_ok, r_ok))
    resp = health_pb2.HealthCheckResponse()
    resp.ParseFromString(r_ok.body)
    expect(resp.status == health_pb2.HealthCheckResponse.SERVING,
           "call %d: status %d, want 1 SERVING" % (id_ok, resp.status))
    return "both matched"


CHECKS = [
    ("a", "Health/Check \"\" is OK, SERVING, with a generated x-request-id", check_a_serving),
    ("b", "unknown method is UNIMPLEMENTED", check_b_unimplemented),
    ("c", "undecodable request is INVALID_ARGUMENT", check_c_garbage),
    ("d", "unknown health service is NOT_FOUND", check_d_unknown_service),
    ("e", "client x-request-id is echoed", check_e_request_id_echo),
    ("f", "two calls in flight are matched by call_id", check_f_two_in_flight),
]


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)  # runs the finally blocks: the server is stopped


def main():
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    args = parse_args()
    tmp = None
    gen = args.gen
    if not gen:
        tmp = tempfile.mkdtemp(prefix="px-interop-")
        gen = generate_classes(tmp)
    zmq, rpc_pb2, health_pb2 = import_modules(gen)

    server = Server(args.server)
    passed = failed = 0
    client = None
    try:
        try:
            server.start()
        except Exception as e:
            print("FAIL setup: %s" % e, flush=True)
            failed = len(CHECKS)
            return 1
        print("server %s ready at %s" % (args.server, server.endpoint), flush=True)
        client = Client(zmq, rpc_pb2, server.endpoint)
        for tag, title, fn in CHECKS:
            try:
                detail = fn(client, health_pb2)
                passed += 1
                print("PASS (%s) %s: %s" % (tag, title, detail), flush=True)
            except CheckFailed as e:
                failed += 1
                print("FAIL (%s) %s: %s" % (tag, title, e), flush=True)
            except Exception as e:  # a crash in one check must not hide the others
                failed += 1
                print("FAIL (%s) %s: %s: %s" % (tag, title, type(e).__name__, e), flush=True)
        if client.discarded:
            print("note: discarded replies: %r" % client.discarded, flush=True)
        if server.proc.poll() is not None:
            print("note: px-testd exited during the checks with status %d"
                  % server.proc.returncode, flush=True)
    finally:
        if client is not None:
            client.close()
        server.stop()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 and passed == len(CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
