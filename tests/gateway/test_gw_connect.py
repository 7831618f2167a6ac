#!/usr/bin/env python3
"""The gateway's Connect protocol (connectrpc.com/docs/protocol), unary, against the real
services: the server-side cases of Connect's conformance suites translated to our own methods
(/work/notes/conformance.md has the reading of the suites this follows).

Suites and what became of them here:
- connect_with_get: GET of GetProgress (NO_SIDE_EFFECTS) in JSON and in proto with base64url,
  padded and unpadded, params in any order and unknown ones; GET of a method with effects 405.
- connect_to_http_code, errors: every code our real paths can produce, end to end, with its
  HTTP status, its JSON body {code, message} and Content-Type application/json. canceled (499),
  unknown/internal/data_loss (500) cannot be caused from outside with real services, so they
  are not here. The conformance error cases also check an exact message and an error detail
  echoing the request; both need the conformance service's echo, which we do not run.
- server_message_size: the limit is the gateway's max-body (1 MiB): a body of exactly the limit
  is served, one byte more is refused. Connect says 429 resource_exhausted; the issue asked for
  413 (the HTTP meaning), so we answer 413 with the Connect JSON code resource_exhausted, which
  is what Connect clients read. The streaming cases do not apply (see below).
- timeouts: Connect-Timeout-Ms syntax, and a real deadline: the activation process is stopped
  (SIGSTOP) so the call outlives it and the gateway answers 504 deadline_exceeded itself.
- duplicate_metadata: does not apply. The gateway forwards no client header to the services
  but X-Request-Id (one value) and the token's name, and sends no upstream metadata back, so
  there is no multi-valued header or Trailer- header to keep. What remains, and is tested: every
  answer carries X-Request-Id, a caller's sane X-Request-Id comes back unchanged.
- connect_server_unexpected: unexpected content type (415 + Accept-Post), verb (405 + Allow),
  URI (404, code unimplemented), compression (501 unimplemented naming identity), plus
  Connect-Protocol-Version 2 (400). Our 415 and 405 answers carry a JSON body whose code is
  "unknown", the same code Connect clients infer from those statuses without a body.
Not applicable at all: every streaming case of these suites (server-stream, client-stream,
bidi-stream: the gateway serves unary only; /v1/events is SSE, not Connect streaming),
unexpected-compressed-message and server-stream/no-request (streaming envelopes), and the
gRPC and gRPC-Web suites. Also: the echo of request headers and GET query parameters that
connect_with_get and errors compare (needs the conformance service), x-custom-header and
Trailer-X-Custom-Trailer (our methods send no custom metadata), and compressed requests that
succeed (the gateway is identity-only and says so with 501).
"""
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rawhttp  # noqa: E402
from system import CAMPAIGN, System, protos  # noqa: E402

ACT = "/phuxanh.activation.v1.ActivationService/"
ROS = "/phuxanh.roster.v1.RosterService/"
JSON = {"Content-Type": "application/json"}
PROTO = {"Content-Type": "application/proto"}
MAX_BODY = 1048576  # the gateway's default max-body
PROGRESS_Q = {"campaignId": CAMPAIGN, "unitCode": "25966"}


def call(s, method, path, body=None, token="viewer", headers=None):
    """One request through urllib; every answer must carry X-Request-Id."""
    status, h, data = s.request(method, path, body, token=token, headers=headers)
    assert h.get("X-Request-Id"), (status, dict(h))
    return status, h, data


def expect_error(answer, http_status, code):
    """An error answer: the status, Content-Type application/json, body {code, message}."""
    status, h, body = answer
    assert status == http_status, (status, http_status, body)
    assert h.get("Content-Type", "").split(";")[0] == "application/json", dict(h)
    j = json.loads(body)
    assert set(j) == {"code", "message"}, j
    assert j["code"] == code, (j, code)
    assert isinstance(j["message"], str) and j["message"], j
    return j


def pb_progress_request(campaign=CAMPAIGN, unit="25966"):
    act, _ = protos()
    return act.GetProgressRequest(campaign_id=campaign, unit_code=unit).SerializeToString()


def pb_to_dict(data, cls):
    from google.protobuf import json_format
    msg = cls()
    msg.ParseFromString(data)
    return json_format.MessageToDict(msg)


# ------------------------------------------------------------------ bodies and codecs

def case_post_json_and_proto_agree(s):
    act, _ = protos()
    st, h, body = call(s, "POST", ACT + "GetProgress", json.dumps(PROGRESS_Q), headers=JSON)
    assert st == 200 and h["Content-Type"] == "application/json", (st, dict(h))
    as_json = json.loads(body)
    st, h, body = call(s, "POST", ACT + "GetProgress", pb_progress_request(), headers=PROTO)
    assert st == 200 and h["Content-Type"] == "application/proto", (st, dict(h))
    as_proto = pb_to_dict(body, act.GetProgressResponse)
    assert as_json == as_proto, (as_json, as_proto)
    assert as_json["unit"]["unitName"] == "Lái Thiêu", as_json
    # QueryCounts is never answered from the gateway's memory: the service's answer both ways.
    q = {"campaignId": CAMPAIGN, "unitCode": "725", "groupBy": ["GROUP_BY_STAGE"]}
    st, _, body = call(s, "POST", ACT + "QueryCounts", json.dumps(q), headers=JSON)
    assert st == 200, body
    pq = act.QueryCountsRequest(campaign_id=CAMPAIGN, unit_code="725",
                                group_by=[act.GROUP_BY_STAGE]).SerializeToString()
    st, _, pbody = call(s, "POST", ACT + "QueryCounts", pq, headers=PROTO)
    assert st == 200, pbody
    assert json.loads(body) == pb_to_dict(pbody, act.QueryCountsResponse), (body, pbody)


def case_snake_and_camel_case_in(s):
    answers = []
    for q in ({"campaignId": CAMPAIGN, "unitCode": "25966"},
              {"campaign_id": CAMPAIGN, "unit_code": "25966"},
              {"campaign_id": CAMPAIGN, "unitCode": "25966"}):
        st, _, body = call(s, "POST", ACT + "GetProgress", json.dumps(q), headers=JSON)
        assert st == 200, (q, body)
        answers.append(json.loads(body))
    assert answers[0] == answers[1] == answers[2]
    # Enums by name or number, 64-bit and 32-bit integers as numbers or strings.
    q = {"campaign_id": CAMPAIGN, "unit_code": "725", "group_by": [3], "page_size": "10"}
    st, _, body = call(s, "POST", ACT + "QueryCounts", json.dumps(q), headers=JSON)
    assert st == 200, body


def case_unknown_json_field_refused(s):
    # Our documented choice: strict. connect-go discards unknown keys; we name them.
    q = dict(PROGRESS_Q, unitName="x")
    j = expect_error(call(s, "POST", ACT + "GetProgress", json.dumps(q), headers=JSON), 400,
                     "invalid_argument")
    assert "unitName" in j["message"], j
    # The same key in both spellings is one field given twice.
    q = {"campaignId": CAMPAIGN, "campaign_id": CAMPAIGN, "unitCode": "25966"}
    expect_error(call(s, "POST", ACT + "GetProgress", json.dumps(q), headers=JSON), 400,
                 "invalid_argument")


def case_content_type_params_and_case(s):
    body = json.dumps(PROGRESS_Q)
    for ct in ("application/json; charset=utf-8", "application/json;charset=UTF-8",
               'application/json; charset="utf-8"', "Application/JSON", "application/json; charset=utf8"):
        st, h, data = call(s, "POST", ACT + "GetProgress", body, headers={"Content-Type": ct})
        assert st == 200, (ct, st, data)
        assert h["Content-Type"] == "application/json", (ct, dict(h))
    st, h, _ = call(s, "POST", ACT + "GetProgress", pb_progress_request(),
                    headers={"Content-Type": "APPLICATION/PROTO"})
    assert st == 200 and h["Content-Type"] == "application/proto", (st, dict(h))


def case_unsupported_content_type_415(s):
    for ct in ("application/json; charset=latin1", "text/plain", "image/jpeg", "application/foo",
               "application/connect+json", "application/jsonx"):
        ans = call(s, "POST", ACT + "GetProgress", json.dumps(PROGRESS_Q),
                   headers={"Content-Type": ct})
        expect_error(ans, 415, "unknown")
        accept = [v.strip() for v in ans[1]["Accept-Post"].split(",")]
        assert sorted(accept) == ["application/json", "application/proto"], (ct, accept)
    # Our documented order: the token is checked before the content type (and the body).
    expect_error(call(s, "POST", ACT + "GetProgress", "not json", token=None,
                      headers={"Content-Type": "image/jpeg"}), 401, "unauthenticated")
    # No Content-Type at all (urllib would add one: raw request).
    r = rawhttp.exchange(s.url, rawhttp.request_bytes(
        "POST", ACT + "GetProgress",
        [("Authorization", "Bearer " + s.tokens["viewer"]), ("Content-Length", "2")], b"{}"))
    assert r.status == 415 and r.header("Accept-Post"), r
    assert json.loads(r.body)["code"] == "unknown" and r.header("X-Request-Id"), r


def case_wrong_verb_405_with_allow(s):
    for verb in ("DELETE", "PUT", "PATCH", "OPTIONS"):
        ans = call(s, verb, ACT + "GetProgress", json.dumps(PROGRESS_Q), headers=JSON)
        expect_error(ans, 405, "unknown")
        assert ans[1]["Allow"] == "GET, POST", dict(ans[1])
    for method in ("RecordEvents", "GetCitizenStatus", "ListFollowUps", "SetTargets"):
        path = ACT + method + "?encoding=json&message=%7B%7D"
        ans = call(s, "GET", path, token="admin")
        expect_error(ans, 405, "unknown")
        assert ans[1]["Allow"] == "POST", (method, dict(ans[1]))
    ans = call(s, "GET", ROS + "Assign?encoding=json&message=%7B%7D", token="admin")
    expect_error(ans, 405, "unknown")
    assert ans[1]["Allow"] == "POST", dict(ans[1])


def case_unknown_method_and_service_404(s):
    for path in (ACT + "Nope", "/phuxanh.activation.v1.NoSuchService/GetProgress",
                 "/no.such.Service/Method", ACT + "getprogress"):
        expect_error(call(s, "POST", path, "{}", headers=JSON), 404, "unimplemented")


def case_protocol_version_header(s):
    body = json.dumps(PROGRESS_Q)
    for v in ("2", "0", "1.0", "v1"):
        h = dict(JSON, **{"Connect-Protocol-Version": v})
        expect_error(call(s, "POST", ACT + "GetProgress", body, headers=h), 400,
                     "invalid_argument")
    st, _, _ = call(s, "POST", ACT + "GetProgress", body,
                    headers=dict(JSON, **{"Connect-Protocol-Version": "1"}))
    assert st == 200
    st, _, _ = call(s, "POST", ACT + "GetProgress", body, headers=JSON)  # missing: accepted
    assert st == 200


def case_timeout_header_syntax(s):
    body = json.dumps({"campaignId": CAMPAIGN, "unitCode": "725"})
    for v in ("abc", "12345678901", "-5", "1.5", "", " ", "1e3", "+5", "0x10"):
        h = dict(JSON, **{"Connect-Timeout-Ms": v})
        j = expect_error(call(s, "POST", ACT + "QueryCounts", body, headers=h), 400,
                         "invalid_argument")
        assert "Connect-Timeout-Ms" in j["message"], (v, j)
    for v in ("9999999999", "60000", "1000"):  # 10 digits: accepted (clamped to max-timeout)
        st, _, data = call(s, "POST", ACT + "QueryCounts", body,
                           headers=dict(JSON, **{"Connect-Timeout-Ms": v}))
        assert st == 200, (v, st, data)
    # 0: a deadline already past, as connect-go reads it: the call is never sent.
    expect_error(call(s, "POST", ACT + "QueryCounts", body,
                      headers=dict(JSON, **{"Connect-Timeout-Ms": "0"})), 504,
                 "deadline_exceeded")


def case_compression(s):
    body = json.dumps(PROGRESS_Q)
    for enc in ("gzip", "foo", "br", "deflate"):
        ans = call(s, "POST", ACT + "GetProgress", body,
                   headers=dict(JSON, **{"Content-Encoding": enc}))
        j = expect_error(ans, 501, "unimplemented")
        assert "identity" in j["message"], j
    st, h, _ = call(s, "POST", ACT + "GetProgress", body,
                    headers=dict(JSON, **{"Content-Encoding": "identity"}))
    assert st == 200, st
    # connect-go always offers gzip: answered uncompressed, no Content-Encoding.
    st, h, data = call(s, "POST", ACT + "GetProgress", body,
                       headers=dict(JSON, **{"Accept-Encoding": "gzip, br"}))
    assert st == 200 and "Content-Encoding" not in h and json.loads(data)["unit"], dict(h)
    # GET: compression=gzip is 501 too, identity fine.
    msg = urllib.parse.quote(body, safe="")
    ans = call(s, "GET", ACT + "GetProgress?encoding=json&compression=gzip&message=" + msg)
    expect_error(ans, 501, "unimplemented")
    st, _, _ = call(s, "GET", ACT + "GetProgress?encoding=json&compression=identity&message=" +
                    msg)
    assert st == 200


# ------------------------------------------------------------------ GET

def case_get_json_and_proto(s):
    body = json.dumps(PROGRESS_Q)
    st, _, posted = call(s, "POST", ACT + "GetProgress", body, headers=JSON)
    assert st == 200
    msg = urllib.parse.quote(body, safe="")
    st, h, got = call(s, "GET", ACT + "GetProgress?connect=v1&encoding=json&message=" + msg)
    assert st == 200 and h["Content-Type"] == "application/json", (st, dict(h), got)
    assert json.loads(got) == json.loads(posted)
    st, _, pposted = call(s, "POST", ACT + "GetProgress", pb_progress_request(), headers=PROTO)
    assert st == 200
    b64 = base64.urlsafe_b64encode(pb_progress_request()).decode()
    assert b64.endswith("="), b64  # this message's length makes padding appear
    unpadded = b64.rstrip("=")
    padded = urllib.parse.quote(b64, safe="")  # '=' percent-encoded, as Connect says
    for m in (unpadded, padded):
        st, h, got = call(s, "GET", ACT + "GetProgress?connect=v1&encoding=proto&base64=1&"
                          "message=" + m)
        assert st == 200 and h["Content-Type"] == "application/proto", (m, st, got)
        assert got == pposted, m
    # Reordered (as Go sorts them), and with an unknown parameter.
    st, _, got = call(s, "GET", ACT + "GetProgress?base64=1&connect=v1&encoding=proto&foo=bar&"
                      "message=" + unpadded)
    assert st == 200 and got == pposted
    st, _, got = call(s, "GET", ACT + "GetProgress?message=" + msg + "&zzz=1&encoding=json")
    assert st == 200 and json.loads(got) == json.loads(posted)  # connect= may be left out
    # Go's url.Values (connect-go) writes spaces as '+', and its JSON may hold spaces.
    spaced = urllib.parse.quote_plus(json.dumps(PROGRESS_Q, separators=(", ", ": ")))
    assert "+" in spaced
    st, _, got = call(s, "GET", ACT + "GetProgress?encoding=json&message=" + spaced)
    assert st == 200 and json.loads(got) == json.loads(posted), got
    # JSON may come base64url too; base64 other than 1 means "not base64".
    b64json = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    st, _, got = call(s, "GET", ACT + "GetProgress?encoding=json&base64=1&message=" + b64json)
    assert st == 200 and json.loads(got) == json.loads(posted), got
    st, _, got = call(s, "GET", ACT + "GetProgress?encoding=json&base64=0&message=" + msg)
    assert st == 200 and json.loads(got) == json.loads(posted), got


def case_get_refusals(s):
    msg = urllib.parse.quote(json.dumps(PROGRESS_Q), safe="")
    expect_error(call(s, "GET", ACT + "GetProgress?connect=v1&message=" + msg), 400,
                 "invalid_argument")  # no encoding
    expect_error(call(s, "GET", ACT + "GetProgress?connect=v1&encoding=json"), 400,
                 "invalid_argument")  # no message
    expect_error(call(s, "GET", ACT + "GetProgress?connect=v2&encoding=json&message=" + msg),
                 400, "invalid_argument")
    ans = call(s, "GET", ACT + "GetProgress?encoding=xml&message=" + msg)
    expect_error(ans, 415, "unknown")
    expect_error(call(s, "GET", ACT + "GetProgress?encoding=proto&base64=1&message=%21%21"),
                 400, "invalid_argument")  # not base64url
    # A GET has no body.
    expect_error(call(s, "GET", ACT + "GetProgress?encoding=json&message=" + msg, body=b"{}"),
                 415, "unknown")
    # The message is the same JSON a POST takes: strict there too.
    bad = urllib.parse.quote(json.dumps(dict(PROGRESS_Q, extra=1)), safe="")
    expect_error(call(s, "GET", ACT + "GetProgress?encoding=json&message=" + bad), 400,
                 "invalid_argument")


# ------------------------------------------------------------------ size

def _post_big(s, body, ctype):
    """POST through a raw socket that watches for an early answer; as call() returns it."""
    head = rawhttp.request_bytes("POST", ACT + "GetProgress", [
        ("Authorization", "Bearer " + s.tokens["viewer"]), ("Content-Type", ctype),
        ("Content-Length", str(len(body)))])
    with rawhttp.Conn(s.url) as c:
        sent, r = rawhttp.send_body_watching(c, head, body)
    assert r is not None, "closed without an answer after %d bytes" % sent
    assert sent == 0, "%d bytes of the body were sent before the answer" % sent
    assert r.header("X-Request-Id"), r.headers
    return r.status, dict(r.headers), r.body


def case_body_size_limit(s):
    """A body of exactly max-body is served; one byte more is 413 resource_exhausted."""
    base = json.dumps(PROGRESS_Q).encode()
    exact = base + b" " * (MAX_BODY - len(base))
    st, _, data = call(s, "POST", ACT + "GetProgress", exact, headers=JSON)
    assert st == 200 and json.loads(data)["unit"], (st, data[:200])
    # One byte more: refused from its head (Content-Length), before the body is read, so the
    # client must read the answer while sending (urllib would only see a broken pipe).
    j = expect_error(_post_big(s, exact + b" ", "application/json"), 413, "resource_exhausted")
    assert str(MAX_BODY) in j["message"], j
    # Proto: a real request and one unknown length-delimited field (1000) filling up to the
    # limit; unknown fields are skipped, as proto3 says.
    msg = pb_progress_request()
    tag = bytes([0xC2, 0x3E])  # field 1000, wire type 2

    def varint(n):
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    fill = MAX_BODY - len(msg) - len(tag) - 3  # a 3-byte length: the filler is < 2 MiB
    body = msg + tag + varint(fill) + b"x" * fill
    assert len(body) == MAX_BODY and len(varint(fill)) == 3
    st, h, data = call(s, "POST", ACT + "GetProgress", body, headers=PROTO)
    assert st == 200 and h["Content-Type"] == "application/proto", (st, data[:200])
    body = msg + tag + varint(fill + 1) + b"x" * (fill + 1)
    expect_error(_post_big(s, body, "application/proto"), 413, "resource_exhausted")


# ------------------------------------------------------------------ codes end to end

def case_error_codes_end_to_end(s):
    def post(path, q, token="admin", headers=JSON):
        return call(s, "POST", path, json.dumps(q) if isinstance(q, dict) else q, token=token,
                    headers=headers)
    expect_error(post(ACT + "GetProgress", "{", "viewer"), 400, "invalid_argument")
    expect_error(post(ACT + "GetProgress", PROGRESS_Q, None), 401, "unauthenticated")
    expect_error(post(ACT + "ForgetCitizen", {"campaignId": CAMPAIGN,
                                              "citizenId": "074205000001"}, "viewer"),
                 403, "permission_denied")
    expect_error(post(ACT + "GetProgress", {"campaignId": "no-such-campaign", "unitCode": "725"},
                      "viewer"), 404, "not_found")
    # The demo's first wave (2023-07-29) is planned full: TN0001 is in it, at 25963.
    day = {"campaignId": CAMPAIGN, "day": "2023-07-29"}
    st, _, data = post(ROS + "ListAssignments", dict(day, volunteerCode="TN0001"), "planner")
    assert st == 200, data
    held = json.loads(data)["assignments"][0]
    other = "25966" if held["unitCode"] != "25966" else "25963"
    expect_error(post(ROS + "Assign", dict(day, volunteerCode="TN0001", unitCode=other),
                      "planner"), 409, "already_exists")
    st, _, data = post(ROS + "ListWaves", {"campaignId": CAMPAIGN}, "planner")
    wave = [w for w in json.loads(data)["waves"] if w["day"] == "2023-07-29"][0]
    assert wave.get("assigned") == wave["capacity"], wave
    st, _, data = post(ROS + "ListAssignments", dict(day, pageSize=1000), "planner")
    taken = {a["volunteerCode"] for a in json.loads(data)["assignments"]}
    free = next("TN%04d" % i for i in range(1, 400) if "TN%04d" % i not in taken)
    expect_error(post(ROS + "Assign", dict(day, volunteerCode=free, unitCode="25966"),
                      "planner"), 429, "resource_exhausted")
    expect_error(post(ROS + "CheckOut", dict(day, volunteerCode="TN0001"), "planner"), 400,
                 "failed_precondition")
    # Nothing of these refusals was written.
    st, _, data = post(ROS + "ListAssignments", dict(day, volunteerCode="TN0001"), "planner")
    assert json.loads(data)["assignments"] == [held], data
    expect_error(post(ACT + "GetProgress", PROGRESS_Q, headers=dict(JSON, **{
        "Content-Encoding": "gzip"})), 501, "unimplemented")
    # A refusal quoting what it was sent stays valid UTF-8 JSON.
    j = expect_error(post(ACT + "GetProgress", {"campaignId": "chiến-dịch", "unitCode": "725"},
                          "viewer"), 400, "invalid_argument")
    assert "campaign_id" in j["message"], j


def _stop_activation(s):
    pid = s.pid("activation")
    os.kill(pid, signal.SIGSTOP)
    # Stopped before the test goes on: every thread of it, as /proc says ('T').
    deadline = time.time() + 2
    while time.time() < deadline:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.01)


def _resume_activation(s):
    os.kill(s.pid("activation"), signal.SIGCONT)  # harmless to a running process
    deadline = time.time() + 20
    while time.time() < deadline:  # ready again, and calls go through
        st, _, _ = s.request("POST", ACT + "QueryCounts",
                             json.dumps({"campaignId": CAMPAIGN, "unitCode": "725"}),
                             headers=JSON)
        if st == 200:
            return
        time.sleep(0.2)
    raise AssertionError("the activation service did not come back after SIGCONT")


def case_deadline_504(s):
    """The service is stopped: the gateway itself ends the call at the caller's deadline."""
    q = json.dumps({"campaignId": CAMPAIGN, "unitCode": "25969", "groupBy": ["GROUP_BY_DAY"]})
    _stop_activation(s)
    try:
        t = time.monotonic()
        ans = call(s, "POST", ACT + "QueryCounts", q,
                   headers=dict(JSON, **{"Connect-Timeout-Ms": "300"}))
        took = time.monotonic() - t
    finally:
        _resume_activation(s)
    expect_error(ans, 504, "deadline_exceeded")
    assert 0.25 <= took < 2.0, took


def case_unavailable_503(s):
    """A service gone (killed: no connection): calls fail 503 unavailable at once. (A service
    stopped but connected is slow, not gone: its calls wait for their deadlines, 504 above.)"""
    q = json.dumps({"campaignId": CAMPAIGN, "unitCode": "725"})
    s.stop_process("activation", signal.SIGKILL)
    seen = []
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            ans = call(s, "POST", ACT + "QueryCounts", q, token="viewer",
                       headers=dict(JSON, **{"Connect-Timeout-Ms": "500"}))
            seen.append(ans[0])
            if ans[0] == 503:
                break
            time.sleep(0.1)
        t = time.monotonic()
        fast = call(s, "POST", ACT + "QueryCounts", q, token="viewer", headers=JSON)
        took = time.monotonic() - t
    finally:
        s.start_activation()
        _resume_activation(s)
    assert seen[-1] == 503, seen
    expect_error(ans, 503, "unavailable")
    expect_error(fast, 503, "unavailable")
    assert took < 1.0, took  # refused at once, not after the default deadline
    s.wait_ready(timeout=20)


# ------------------------------------------------------------------ headers, clients

def case_request_id_on_every_answer(s):
    answers = [
        s.request("GET", "/healthz", token=None),
        s.request("GET", "/no/such/route", token=None),
        s.request("POST", ACT + "GetProgress", "{}", token=None, headers=JSON),
        s.request("DELETE", ACT + "GetProgress", token=None),
        s.request("POST", ACT + "GetProgress", json.dumps(PROGRESS_Q), token="viewer",
                  headers={"Content-Type": "text/plain"}),
        s.request("POST", ACT + "GetProgress", json.dumps(PROGRESS_Q), token="viewer",
                  headers=JSON),
        s.request("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN, token="viewer"),
        s.request("GET", "/v1/counts?campaign=%s&unit=725&format=csv" % CAMPAIGN,
                  token="viewer"),
    ]
    ids = [h.get("X-Request-Id") for _, h, _ in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids
    # A sane caller id is kept; a long or odd one is replaced.
    _, h, _ = call(s, "POST", ACT + "GetProgress", json.dumps(PROGRESS_Q), headers=dict(
        JSON, **{"X-Request-Id": "conn-test.0001:a_b"}))
    assert h["X-Request-Id"] == "conn-test.0001:a_b", dict(h)
    for bad in ("x" * 65, "a b", "id\"quote", "ün"):
        try:
            _, h, _ = call(s, "POST", ACT + "GetProgress", json.dumps(PROGRESS_Q),
                           headers=dict(JSON, **{"X-Request-Id": bad}))
        except UnicodeEncodeError:
            continue  # urllib refuses to send it at all
        assert h["X-Request-Id"] != bad and len(h["X-Request-Id"]) <= 64, dict(h)


def case_pipelined_connect_calls(s):
    """Calls answered by a backend thread (the request suspended meanwhile) keep their order
    on one keep-alive connection, pipelined."""
    tok = [("Authorization", "Bearer " + s.tokens["viewer"]),
           ("Content-Type", "application/json")]
    units = ["725", "25966", "25963", "25969"]
    raw = b""
    for u in units:
        b = json.dumps({"campaignId": CAMPAIGN, "unitCode": u}).encode()
        raw += rawhttp.request_bytes("POST", ACT + "QueryCounts",
                                     tok + [("Content-Length", str(len(b)))], b)
    with rawhttp.Conn(s.url) as c:
        c.send(raw)
        got = [c.response() for _ in units]
    singly = []
    for u in units:
        st, _, data = call(s, "POST", ACT + "QueryCounts",
                           json.dumps({"campaignId": CAMPAIGN, "unitCode": u}), headers=JSON)
        singly.append(json.loads(data))
    assert [r.status for r in got] == [200] * len(units), got
    assert [json.loads(r.body) for r in got] == singly


def case_curl_readme_line(s):
    """The README's shape of call works as written, with curl."""
    url = "%s/v1/progress?campaign=%s&unit=725" % (s.url, CAMPAIGN)
    out = subprocess.run(["curl", "-sS", "--fail-with-body", "-H",
                          "Authorization: Bearer " + s.tokens["viewer"], url],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    j = json.loads(out.stdout)
    assert j["unit"]["unitCode"] == "725" and j["unit"]["unitName"] == "Thuận An", j["unit"]
    # And a Connect call from curl, as the protocol docs show one.
    out = subprocess.run(["curl", "-sS", "--fail-with-body", "-H",
                          "Authorization: Bearer " + s.tokens["viewer"], "-H",
                          "Content-Type: application/json", "--data",
                          json.dumps(PROGRESS_Q), s.url + ACT + "GetProgress"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["unit"]["unitCode"] == "25966"


CASES = [
    case_post_json_and_proto_agree,
    case_snake_and_camel_case_in,
    case_unknown_json_field_refused,
    case_content_type_params_and_case,
    case_unsupported_content_type_415,
    case_wrong_verb_405_with_allow,
    case_unknown_method_and_service_404,
    case_protocol_version_header,
    case_timeout_header_syntax,
    case_compression,
    case_get_json_and_proto,
    case_get_refusals,
    case_body_size_limit,
    case_error_codes_end_to_end,
    case_deadline_504,
    case_unavailable_503,
    case_request_id_on_every_answer,
    case_pipelined_connect_calls,
    case_curl_readme_line,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:]))
