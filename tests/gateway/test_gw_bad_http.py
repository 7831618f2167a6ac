#!/usr/bin/env python3
"""Malformed HTTP against the real gateway, through raw sockets: a table of requests no
well-behaved client sends, each with the answer it must get (or a closed connection), and
where the request could write (a RecordEvents batch with a fresh idempotency key), proof that
nothing was written.

"MHD" in the table marks answers libmicrohttpd (0.9.75, Debian 12) gives by itself before the
gateway's code sees the request: those bodies are libmicrohttpd's HTML, without X-Request-Id.
Everything else is the gateway's Connect JSON error with X-Request-Id.

The second half runs against a second gateway with short idle and body timeouts and a
per-address connection limit: slow heads, bodies that stop half way, trickled bodies.
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawhttp  # noqa: E402
from rawhttp import request_bytes  # noqa: E402
from system import CAMPAIGN, System, event, protos  # noqa: E402

ACT = "/phuxanh.activation.v1.ActivationService/"
RECORD = ACT + "RecordEvents"
MAX_BODY = 1048576
CLOSE = "closed"  # the connection is closed without an answer
ANSWER_WAIT_S = 5  # an answer (or a close) must come within this: a hang is a failure


def auth(s, role="admin"):
    return [("Authorization", "Bearer " + s.tokens[role])]


def json_headers(s, role="admin"):
    return auth(s, role) + [("Content-Type", "application/json")]


def record_body(key):
    return json.dumps({"events": [event("25966", key=key)]}).encode()


def chunked(data, piece=16384):
    out = []
    for i in range(0, len(data), piece):
        part = data[i:i + piece]
        out.append(b"%x\r\n" % len(part) + part + b"\r\n")
    return b"".join(out) + b"0\r\n\r\n"


def fresh_key():
    return "bad-http-" + os.urandom(6).hex()


def answer(s, data):
    """The first answer to data on a new connection, or CLOSE."""
    try:
        r = rawhttp.exchange(s.url, data, timeout=ANSWER_WAIT_S)
    except socket.timeout:
        raise AssertionError("no answer and no close within %d s: the connection is held"
                             % ANSWER_WAIT_S) from None
    return CLOSE if r is None else r


def check(r, expected, body_has=None, ours=True):
    if expected == CLOSE:
        assert r == CLOSE, r
        return
    assert r != CLOSE, "closed without an answer (expected %s)" % expected
    assert r.status == expected, (r.status, expected, r.body[:300])
    if ours:
        assert r.header("X-Request-Id"), r.headers
        if r.status >= 400:
            assert r.header("Content-Type") == "application/json", r.headers
            j = json.loads(r.body)
            assert j["code"] and j["message"], j
    if body_has:
        assert body_has.encode() in r.body, (body_has, r.body[:300])


# ------------------------------------------------------------------ the framing table

def _framing(name, build, expected, body_has=None, ours=True, writes=False, why=""):
    """A RecordEvents request framed by build(s, headers, body) -> bytes."""
    def case(s):
        key = fresh_key()
        r = answer(s, build(s, json_headers(s), record_body(key)))
        check(r, expected, body_has, ours)
        stored = s.stored_keys([key])
        if writes:
            assert stored == {key}, "the control request wrote nothing"
        else:
            assert not stored, "written despite the refusal"
    case.__name__ = "case_" + name
    case.__doc__ = why
    return case


def _cl(h, body):
    return h + [("Content-Length", str(len(body)))]


FRAMING = [
    _framing("control_content_length", lambda s, h, b: request_bytes("POST", RECORD, _cl(h, b),
                                                                    b), 200, writes=True,
             why="the table's control: a sane request writes, so a refusal that writes shows"),
    _framing("control_chunked", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "chunked")], chunked(b)), 200, writes=True),
    _framing("chunked_any_case_and_extension", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "Chunked")],
        b"%x;ext=1\r\n" % len(b) + b + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"), 200, writes=True,
             why="chunk extensions and trailers are legal and ignored"),
    _framing("content_length_and_transfer_encoding", lambda s, h, b: request_bytes(
        "POST", RECORD, _cl(h, b) + [("Transfer-Encoding", "chunked")], chunked(b)), 400,
             "ambiguous framing", why="the classic request smuggling shape"),
    _framing("content_length_twice_same", lambda s, h, b: request_bytes(
        "POST", RECORD, _cl(h, b) + [("Content-Length", str(len(b)))], b), 400, "more than once"),
    _framing("content_length_twice_different", lambda s, h, b: request_bytes(
        "POST", RECORD, _cl(h, b) + [("Content-Length", "5")], b), 400, "more than once"),
    _framing("transfer_encoding_twice", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "chunked")] * 2, chunked(b)), 400,
             "more than once"),
    _framing("content_length_negative", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Content-Length", "-1")], b), 400, ours=False,
             why="MHD: its own 400 page (0.9.75 writes its status line and headers twice)"),
    _framing("content_length_garbage", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Content-Length", "12abc")], b), 400, ours=False, why="MHD"),
    _framing("content_length_plus_sign", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Content-Length", "+%d" % len(b))], b), 400, ours=False,
             why="MHD"),
    _framing("content_length_overflow", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Content-Length", "9" * 30)], b), 413, ours=False,
             why="MHD: a length past 2^64 is 'too large'"),
    _framing("transfer_encoding_identity", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "identity")], b), 400,
             "Transfer-Encoding",
             why="RFC 9112 6.3: chunked is not the final coding, the length is unknown: 400"),
    _framing("transfer_encoding_gzip_chunked", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "gzip, chunked")], chunked(b)), 501,
             "Transfer-Encoding", why="RFC 9110: a transfer coding we do not know: 501"),
    _framing("transfer_encoding_chunked_then_identity", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "chunked, identity")], chunked(b)), 400,
             "Transfer-Encoding"),
    _framing("chunk_size_not_hex", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "chunked")], b"zz\r\n" + b + b"\r\n0\r\n\r\n"),
             400, ours=False, why="MHD"),
    _framing("chunk_size_overflow", lambda s, h, b: request_bytes(
        "POST", RECORD, h + [("Transfer-Encoding", "chunked")],
        b"f" * 20 + b"\r\n" + b + b"\r\n0\r\n\r\n"), 413, ours=False, why="MHD"),
    _framing("host_twice", lambda s, h, b: request_bytes(
        "POST", RECORD, [("Host", "a.test"), ("Host", "b.test")] + _cl(h, b), b), 400, "Host",
             why="RFC 9112 3.2: more than one Host is 400"),
    _framing("host_missing_http11", lambda s, h, b: (
        "POST %s HTTP/1.1\r\n" % RECORD + "".join("%s: %s\r\n" % kv for kv in _cl(h, b)) +
        "\r\n").encode() + b, 400, ours=False, why="MHD"),
    _framing("http_version_2", lambda s, h, b: request_bytes(
        "POST", RECORD, _cl(h, b), b, version="HTTP/2.0"), 505, ours=False, why="MHD"),
    _framing("request_line_garbage", lambda s, h, b: b"HELLO THERE\r\n\r\n" + b, 400,
             ours=False, why="MHD: its own 400 page (a bare 'HELLO' line: closed, no answer)"),
    _framing("request_line_one_word", lambda s, h, b: b"HELLO\r\n\r\n", CLOSE, why="MHD"),
    _framing("space_in_header_name", lambda s, h, b: request_bytes(
        "POST", RECORD, _cl(h, b) + [("X Bad", "1")], b), 400, "header name",
             why="RFC 9110 5.1: a field name is a token"),
]


def _smuggle(name, header):
    """A header spelled so that one reader takes it for framing and another does not
    ("Content-Length : N", space before the colon): RFC 9112 5.1 says refuse with 400. The
    body carries a whole second request, which must never be answered."""
    def case(s):
        key = fresh_key()
        inner_body = record_body(key)
        inner = request_bytes("POST", RECORD, _cl(json_headers(s), inner_body), inner_body)
        outer = request_bytes("POST", ACT + "GetProgress", json_headers(s, "viewer") + [
            (header, str(len(inner)) if "Length" in header else "chunked")],
            inner if "Length" in header else chunked(inner))
        with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
            c.send(outer)
            first = c.response()
            second = c.response() if first else None
        assert first is not None and first.status == 400, first
        assert b"header name" in first.body, first.body
        assert second is None, "the smuggled request was answered: %r" % second
        assert not s.stored_keys([key]), "the smuggled request wrote"
    case.__name__ = "case_" + name
    return case


SMUGGLING = [
    _smuggle("smuggle_content_length_space_before_colon", "Content-Length "),
    _smuggle("smuggle_transfer_encoding_space_before_colon", "Transfer-Encoding "),
]


# ------------------------------------------------------------------ heads and bodies too big

def case_header_block_too_big(s):
    # MHD bounds the head by the connection's memory (max-header, 32 KiB): 431, its own page.
    r = answer(s, request_bytes("GET", "/healthz", [("X-Big", "a" * 40000)]))
    check(r, 431, ours=False)
    r = answer(s, request_bytes("GET", "/healthz", [("X-H%d" % i, "a" * 10) for i in range(3000)]))
    check(r, 431, ours=False)
    r = answer(s, request_bytes("GET", "/v1/progress?campaign=%s&unit=725" % ("a" * 40000), []))
    check(r, 414, ours=False)  # MHD: a request line past the memory is 414


def case_declared_body_too_big_answered_before_the_body(s):
    key = fresh_key()
    body = record_body(key)
    body += b" " * (2 * MAX_BODY - len(body))
    head = request_bytes("POST", RECORD, json_headers(s) + [("Content-Length", str(len(body)))])
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        sent, r = rawhttp.send_body_watching(c, head, body)
    assert r is not None, "closed without an answer"
    assert sent == 0, "%d bytes of the body went before the answer" % sent
    check(r, 413, "exceeds the limit")
    assert json.loads(r.body)["code"] == "resource_exhausted", r.body
    assert r.header("Connection") == "close", r.headers
    assert not s.stored_keys([key])


def _chunked_post(s, body, pace=0.0):
    head = request_bytes("POST", RECORD, json_headers(s) + [("Transfer-Encoding", "chunked")])
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        return rawhttp.send_body_watching(c, head, chunked(body), pace=pace, first_wait=0)


def case_chunked_body_growing_past_the_limit(s):
    """A body of unknown length crossing max-body: 413, nothing written, and the answer
    arrives (not a bare close)."""
    key = fresh_key()
    body = record_body(key)
    body += b" " * (MAX_BODY + 200000 - len(body))
    sent, r = _chunked_post(s, body)
    assert r is not None, "closed without an answer after %d bytes" % sent
    check(r, 413, "exceeds the limit")
    assert json.loads(r.body)["code"] == "resource_exhausted", r.body
    assert not s.stored_keys([key])
    # Exactly at the limit, chunked: served.
    key = fresh_key()
    body = record_body(key)
    body += b" " * (MAX_BODY - len(body))
    _, r = _chunked_post(s, body)
    check(r, 200)
    assert s.stored_keys([key]) == {key}


def case_chunked_body_far_past_the_limit_is_cut_off(s):
    """A chunked body that does not end is not read for ever: the connection is closed."""
    body = b" " * (16 * MAX_BODY)
    sent, r = _chunked_post(s, b"{" + body)
    assert sent < 8 * MAX_BODY, "the gateway read %d bytes of a refused body" % sent
    assert r is None or r.status == 413, r


# ------------------------------------------------------------------ bodies the gateway reads

def _content(name, body_of, expected_status, body_has, ctype="application/json"):
    """RecordEvents with a body_of(key) the decoder must refuse: 400 naming it, nothing
    written."""
    def case(s):
        key = fresh_key()
        body = body_of(key)
        h = auth(s) + [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        r = answer(s, request_bytes("POST", RECORD, h, body))
        check(r, expected_status, body_has)
        assert not s.stored_keys([key]), "written"
    case.__name__ = "case_" + name
    return case


def _json_event_with(key, field, raw_value):
    e = event("25966", key=key)
    e[field] = "@@@"
    return json.dumps({"events": [e]}).encode().replace(b'"@@@"', raw_value)


def _pb_event_with(key, field, raw_value):
    act, _ = protos()
    e = event("25966", key=key)
    msg = act.RecordEventsRequest(events=[act.ActivationEvent(
        idempotency_key=key, campaign_id=CAMPAIGN, citizen_id=e["citizenId"], unit_code="25966",
        stage=act.STAGE_COLLECTED, channel=act.CHANNEL_OWN_PHONE, venue=act.VENUE_OFFICE,
        consent=True, note="@@@@")])
    msg.events[0].occurred_at.FromJsonString(e["occurredAt"])
    data = msg.SerializeToString()
    if field == "note":
        assert len(raw_value) == 4
        return data.replace(b"@@@@", raw_value)
    return data.replace(e["citizenId"].encode(), raw_value)


CONTENT = [
    _content("json_invalid_utf8", lambda k: _json_event_with(k, "note", b'"caf\xe9"'), 400,
             "UTF-8"),
    _content("json_escaped_nul", lambda k: _json_event_with(k, "note", b'"a\\u0000b"'), 400,
             "NUL"),
    _content("json_raw_nul", lambda k: _json_event_with(k, "note", b'"a\x00b"'), 400,
             "control character"),
    _content("json_lone_surrogate", lambda k: _json_event_with(k, "note", b'"\\ud800"'), 400,
             "Unicode"),
    _content("json_nested_deep", lambda k: b'{"events":' + b"[" * 5000 + b"]" * 5000 + b"}", 400,
             "nested too deeply"),
    _content("json_nested_objects", lambda k: b'{"events":[' + b'{"note":' * 3000 + b"1" +
             b"}" * 3000 + b"]}", 400, "invalid JSON"),
    _content("json_number_1e400", lambda k: _json_event_with(k, "stage", b"1e400"), 400,
             "out of range"),
    _content("json_int32_overflow", lambda k: _json_event_with(k, "stage", b"99999999999999999999"),
             400, "out of range"),
    _content("json_int32_just_past", lambda k: _json_event_with(k, "stage", b"2147483648"), 400,
             "out of range"),
    _content("json_fraction_for_enum", lambda k: _json_event_with(k, "stage", b"1.5"), 400,
             "fraction"),
    _content("json_trailing_text", lambda k: record_body(k) + b" x", 400, "after the JSON"),
    _content("json_byte_order_mark", lambda k: b"\xef\xbb\xbf" + record_body(k), 400,
             "invalid JSON"),
    _content("json_duplicate_key", lambda k: record_body(k)[:-1] + b',"events":[]}', 400,
             "duplicate"),
    _content("proto_nul_in_string", lambda k: _pb_event_with(k, "citizen_id", b"0010\x008512345"),
             400, "events[0].citizen_id: holds a NUL byte", "application/proto"),
    _content("proto_invalid_utf8_in_string", lambda k: _pb_event_with(k, "note", b"\xff\xfe\xfd!"),
             400, "events[0].note: is not valid UTF-8", "application/proto"),
    _content("proto_truncated", lambda k: _pb_event_with(k, "note", b"abcd")[:-3], 400,
             "malformed protobuf", "application/proto"),
]


# ------------------------------------------------------------------ paths and queries

def case_static_path_traversal(s):
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/index.html/..",
                 "//etc/passwd", "/%2f%2fetc/passwd", "/..%2f..%2fetc%2fpasswd", "/./index.html",
                 "/static/../../../etc/passwd", "/index.html%2f..", "/%2e%2e%5c%2e%2e%5cetc"):
        r = answer(s, request_bytes("GET", path, []))
        check(r, 404)
        assert b"root:" not in r.body, path
    r = answer(s, request_bytes("GET", "/index.html", []))  # the control
    check(r, 200)


def case_nul_in_path(s):
    """A decoded NUL would cut the path short in C: "/index.html%00.png" must not be served
    as /index.html, nor a Connect path with %00 reach its method."""
    for path in ("/index.html%00", "/index.html%00.png", "/healthz%00x", "/v1/progress%00"):
        r = answer(s, request_bytes("GET", path, auth(s, "viewer")))
        check(r, 404)
    body = json.dumps({"campaignId": CAMPAIGN, "unitCode": "725"}).encode()
    r = answer(s, request_bytes("POST", ACT + "GetProgress%00x", _cl(json_headers(s, "viewer"),
                                                                       body), body))
    check(r, 404)


def case_query_nul_and_bad_utf8(s):
    for q in ("campaign=a%00b&unit=725", "campaign=%s&unit=72%%005" % CAMPAIGN,
              "campaign=%ff&unit=725", "campaign=%s&unit=725&x%%00y=1" % CAMPAIGN,
              "campaign=%c3&unit=725"):
        r = answer(s, request_bytes("GET", "/v1/progress?" + q, auth(s, "viewer")))
        check(r, 400, "NUL character or is not valid UTF-8")
    r = answer(s, request_bytes("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN,
                                auth(s, "viewer")))
    check(r, 200)


def case_counts_unit_list_naming_none(s):
    """/v1/counts?unit=,, names no unit: refused, not a request left waiting for calls that
    were never made (its connection suspended for good)."""
    for units in (",", ",,,", "%2C"):
        r = answer(s, request_bytes("GET", "/v1/counts?campaign=%s&unit=%s" % (CAMPAIGN, units),
                                    auth(s, "viewer")))
        check(r, 400, "unit")
    r = answer(s, request_bytes("GET", "/v1/counts?campaign=%s&unit=725,,25966," % CAMPAIGN,
                                auth(s, "viewer")))
    check(r, 200)


# ------------------------------------------------------------------ connections

def case_http10(s):
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        c.send(b"GET /healthz HTTP/1.0\r\n\r\n")  # no Host: fine in 1.0
        r = c.response()
        check(r, 200)
        assert c.closed_by_peer(2), "HTTP/1.0 without keep-alive must close"
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        c.send(request_bytes("GET", "/healthz", [("Connection", "keep-alive")],
                             version="HTTP/1.0"))
        check(c.response(), 200)
        c.send(request_bytes("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN,
                             auth(s, "viewer") + [("Connection", "keep-alive")],
                             version="HTTP/1.0"))
        r = c.response()
        check(r, 200)
        assert json.loads(r.body)["unit"]["unitCode"] == "725"


def case_pipelined_requests(s):
    key = fresh_key()
    body = record_body(key)
    reqs = [request_bytes("GET", "/healthz", []),
            request_bytes("POST", RECORD, _cl(json_headers(s), body), body),
            request_bytes("GET", "/v1/progress?campaign=%s&unit=25966" % CAMPAIGN,
                          auth(s, "viewer")),
            request_bytes("POST", ACT + "GetProgress", [("Content-Type", "application/json"),
                                                        ("Content-Length", "2")], b"{}"),
            request_bytes("GET", "/healthz", [])]
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        c.send(b"".join(reqs))
        got = [c.response() for _ in reqs]
    assert [r and r.status for r in got] == [200, 200, 200, 401, 200], got
    assert json.loads(got[1].body)["recorded"] == 1, got[1].body
    assert s.stored_keys([key]) == {key}
    ids = [r.header("X-Request-Id") for r in got]
    assert len(set(ids)) == len(ids), ids


def case_pipelined_after_a_refusal_is_not_served(s):
    """After a request refused from its head (its body unread), nothing more on that
    connection is read: a request hidden behind it must not run."""
    key = fresh_key()
    body = record_body(key)
    bad = request_bytes("POST", RECORD, _cl(json_headers(s), body) +
                        [("Transfer-Encoding", "chunked")], chunked(body))
    then = request_bytes("POST", RECORD, _cl(json_headers(s), body), body)
    with rawhttp.Conn(s.url, timeout=ANSWER_WAIT_S) as c:
        c.send(bad + then)
        first = c.response()
        second = c.response() if first else None
    check(first, 400)
    assert second is None, second
    assert not s.stored_keys([key])


# ------------------------------------------------------------------ slow clients (own system)

IDLE_S = 2
BODY_S = 3
PER_IP = 6


def case_slow_clients(_s):
    """A second gateway with PX_IDLE_TIMEOUT_S=2, PX_BODY_TIMEOUT_S=3 and
    PX_PER_IP_CONNECTIONS=6: what libmicrohttpd and the gateway do with slow clients."""
    slow = System(name="gwslow", gateway_env={"PX_IDLE_TIMEOUT_S": str(IDLE_S),
                                              "PX_BODY_TIMEOUT_S": str(BODY_S),
                                              "PX_PER_IP_CONNECTIONS": str(PER_IP)})
    failures = []
    try:
        slow.start()
        for sub in (_slow_head_quiet, _slow_head_trickled, _per_ip_limit, _body_stops_half_way,
                    _body_trickled_past_body_timeout):
            try:
                sub(slow)
            except AssertionError as e:
                failures.append("%s: %s" % (sub.__name__, e))
    finally:
        failures += ["%s exited with status %s" % (n, c) for n, c in slow.stop().items() if c]
    assert not failures, "; ".join(failures)


def _slow_head_quiet(s):
    """A head that stops coming: closed by the idle timeout, no answer."""
    with rawhttp.Conn(s.url, timeout=10) as c:
        t = time.monotonic()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert c.closed_by_peer(IDLE_S + 3), "a quiet half head kept open"
        took = time.monotonic() - t
    assert IDLE_S - 0.5 <= took <= IDLE_S + 3, took
    assert not c.buf, c.buf


def _slow_head_trickled(s):
    """Slowloris: a head trickled in pieces, each within the idle timeout. libmicrohttpd has
    only an inactivity timeout, no deadline for a whole head, so such a connection lives as
    long as it trickles (recorded in the report for the lead); what bounds it is its size
    (max-header, 32 KiB: then 431) and the per-address connection limit (_per_ip_limit)."""
    with rawhttp.Conn(s.url, timeout=10) as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t = time.monotonic()
        r = None
        for i in range(16):  # 16 x 4 KiB: past the 32 KiB bound
            time.sleep(IDLE_S / 4)
            if not c.try_send(b"X-Slow-%d: %s\r\n" % (i, b"a" * 4096)) or \
                    c.closed_by_peer(0.01):
                break
        r = c.response()
        took = time.monotonic() - t
    assert r is not None and r.status == 431, r
    assert took > IDLE_S, "closed by the idle timeout while it trickled? %.1f s" % took


def _per_ip_limit(s):
    """Connections from one address past PX_PER_IP_CONNECTIONS are closed at once."""
    conns = []
    try:
        for _ in range(PER_IP + 3):
            c = rawhttp.Conn(s.url, timeout=5)
            c.try_send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # half a head: held open
            conns.append(c)
        time.sleep(0.3)
        held = sum(0 if c.closed_by_peer(0.2) else 1 for c in conns)
        assert 0 < held <= PER_IP, "%d connections from one address held open" % held
    finally:
        for c in conns:
            c.close()
    time.sleep(0.3)
    r = answer(s, request_bytes("GET", "/healthz", []))
    check(r, 200)


def _body_stops_half_way(s):
    key = fresh_key()
    body = record_body(key)
    with rawhttp.Conn(s.url, timeout=10) as c:
        c.send(request_bytes("POST", RECORD, _cl(json_headers(s), body), body[:len(body) // 2]))
        assert c.closed_by_peer(IDLE_S + 3), "a body stopped half way kept open"
        assert not c.buf or c.buf.startswith(b"HTTP/1.1 408"), c.buf
    assert not s.stored_keys([key]), "half a body wrote"


def _body_trickled_past_body_timeout(s):
    """A body trickled within the idle timeout but not within the body timeout: the
    connection is closed once the body timeout has passed (libmicrohttpd 0.9.75 cannot send
    an answer in the middle of a body), and nothing is written."""
    key = fresh_key()
    body = record_body(key)
    with rawhttp.Conn(s.url, timeout=10) as c:
        c.send(request_bytes("POST", RECORD, _cl(json_headers(s), body)))
        t = time.monotonic()
        closed = False
        for i in range(len(body) - 1):
            time.sleep(0.5)
            if not c.try_send(body[i:i + 1]) or c.closed_by_peer(0.01):
                closed = True
                break
            if time.monotonic() - t > BODY_S + IDLE_S + 3:
                break
        took = time.monotonic() - t
    assert closed, "a body trickled for %.1f s was still being read" % took
    assert took <= BODY_S + 2, took
    assert not s.stored_keys([key]), "a trickled body past its timeout wrote"


CASES = FRAMING + SMUGGLING + [
    case_header_block_too_big,
    case_declared_body_too_big_answered_before_the_body,
    case_chunked_body_growing_past_the_limit,
    case_chunked_body_far_past_the_limit_is_cut_off,
] + CONTENT + [
    case_static_path_traversal,
    case_nul_in_path,
    case_query_nul_and_bad_utf8,
    case_counts_unit_list_naming_none,
    case_http10,
    case_pipelined_requests,
    case_pipelined_after_a_refusal_is_not_served,
    case_slow_clients,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:]))
