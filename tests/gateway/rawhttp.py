"""HTTP/1.1 by hand, for the gateway tests that must send what no well-behaved client would
(ambiguous framing, trickled heads, pipelines) and see exactly what comes back, including a
connection closed without an answer.

    conn = Conn(system.url)
    conn.send(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    r = conn.response()        # Response, or None when the server closed without answering
    r.status, r.header("content-type"), r.body
"""
import select
import socket
import time
import urllib.parse


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, as sent
        self.body = body

    def header(self, name):
        """The first value of a header (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.reason, self.body[:200])


class Closed(Exception):
    """The server closed the connection (before or in the middle of an answer)."""


class Conn:
    def __init__(self, url, timeout=10):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def try_send(self, data):
        """send, but a connection the server has closed is reported as False."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _more(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exactly(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_request=False, head_only=False):
        """Reads one answer; None when the connection closes before its first byte.
        head_only: the status and headers only (a stream that does not end)."""
        try:
            status_line = self._line()
        except Closed:
            return None
        version, status, reason = (status_line.decode("latin-1").split(" ", 2) + [""])[:3]
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers.append((k.strip(), v.strip()))
        r = Response(version, int(status), reason, headers, b"")
        if head_only or head_request or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if "chunked" in te:
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exactly(size)
                self._line()
            r.body = body
        elif cl is not None:
            r.body = self._exactly(int(cl))
        else:
            try:
                while True:
                    self._more()
            except Closed:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def closed_by_peer(self, wait=2.0):
        """True when the server closes the connection within wait seconds (no more bytes)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


def send_body_watching(conn, head, body, piece=16384, pace=0.0, first_wait=0.5):
    """Sends head, waits up to first_wait s for an early answer (as curl does after
    Expect: 100-continue), then sends body piece by piece, stopping as soon as the server
    answers or stops reading: an early answer (413) is read rather than lost to a reset.
    Returns (bytes of the body sent, the answer or None)."""
    conn.send(head)
    sent = 0
    readable, _, _ = select.select([conn.sock], [], [], first_wait)
    while sent < len(body) and not readable:
        if not conn.try_send(body[sent:sent + piece]):
            break
        sent += min(piece, len(body) - sent)
        readable, _, _ = select.select([conn.sock], [], [], pace)
    return sent, conn.response()


def exchange(url, data, timeout=10):
    """Sends data on a new connection and reads one answer (None: closed without one)."""
    with Conn(url, timeout=timeout) as c:
        c.send(data)
        return c.response()


def request_bytes(method, path, headers=(), body=b"", version="HTTP/1.1", host="gw.test"):
    """The bytes of a request: headers is a list of (name, value) sent as given (add your
    own Content-Length); Host is added first unless given."""
    lines = ["%s %s %s" % (method, path, version)]
    if not any(k.lower() == "host" for k, _ in headers):
        lines.append("Host: " + host)
    lines += ["%s: %s" % (k, v) for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def elapsed(fn):
    """(fn(), seconds it took)."""
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t
