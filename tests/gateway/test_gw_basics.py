#!/usr/bin/env python3
"""The gateway in front of the real services, loaded with the demo: the first things a caller
meets. Each case is a function; the table at the end runs them against one system."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System  # noqa: E402

P = "/phuxanh.activation.v1.ActivationService/"


def case_ready(s):
    status, _, body = s.request("GET", "/readyz", token=None)
    r = json.loads(body)
    assert status == 200 and r["status"] == "ready" and r["missing"] == [], body


def case_progress_rest_and_connect_agree(s):
    status, h, body = s.request("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN,
                                token="viewer")
    assert status == 200, body
    assert h["X-Request-Id"], h
    rest = json.loads(body)
    assert rest["unit"]["unitName"] == "Thuận An", rest["unit"]
    assert len(rest["children"]) == 10, len(rest["children"])
    status, conn = s.connect("GetProgress", {"campaignId": CAMPAIGN, "unitCode": "725"},
                             token="viewer")
    assert status == 200 and conn == rest, (status, conn)


def case_no_token_401(s):
    status, h, body = s.request("POST", P + "GetProgress", "{}", token=None,
                                headers={"Content-Type": "application/json"})
    assert status == 401 and json.loads(body)["code"] == "unauthenticated", (status, body)
    assert h["WWW-Authenticate"] == "Bearer", h


def case_viewer_may_not_forget(s):
    status, r = s.connect("ForgetCitizen", {"campaignId": CAMPAIGN, "citizenId": "074205000001"},
                          token="viewer")
    assert status == 403 and r["code"] == "permission_denied", (status, r)


def log_lines(s, name):
    with open(s.log(name), errors="replace") as f:
        return [json.loads(ln) for ln in f if ln.startswith("{")]


def lines_with_id(s, name, rid, timeout=5):
    """The lines of process `name` carrying request id `rid`, waiting for at least one: the
    gateway logs a request once its answer is sent, so the line may follow the answer."""
    deadline = time.time() + timeout
    while True:
        got = [ln for ln in log_lines(s, name) if ln.get("request_id") == rid]
        if got or time.time() > deadline:
            return got
        time.sleep(0.02)


def case_request_id_travels(s):
    rid = "test-rid-0001"
    status, h, _ = s.request("POST", P + "QueryCounts",
                             json.dumps({"campaignId": CAMPAIGN, "unitCode": "25966"}),
                             token="viewer", headers={"X-Request-Id": rid,
                                                      "Content-Type": "application/json"})
    assert status == 200 and h["X-Request-Id"] == rid, h
    # The gateway's line for the request, and the activation service's for its call (the
    # services log every call at debug level, which this system runs at).
    gw = lines_with_id(s, "gateway", rid)
    assert len(gw) == 1 and gw[0]["event"] == "GW-HTTP" and gw[0]["status"] == 200, gw
    assert gw[0]["method"] == P + "QueryCounts" and gw[0]["token"] == "viewer", gw
    for key in ("ts", "level", "service", "msg", "duration_us", "code"):
        assert key in gw[0], key
    act = lines_with_id(s, "activation", rid)
    assert act and all(ln["caller"] == "gateway" for ln in act), act
    assert act[0]["on_behalf_of"] == "viewer", act[0]
    # A request without an id gets a new one, the same in both processes.
    status, h, _ = s.request("GET", "/v1/counts?campaign=%s&unit=25969" % CAMPAIGN,
                             token="viewer")
    new = h["X-Request-Id"]
    assert status == 200 and len(new) == 32, h
    assert lines_with_id(s, "activation", new)


def case_no_citizen_id_or_token_in_logs(s):
    cid = "074199012345"
    ev = {"idempotencyKey": "basics-log-1", "campaignId": CAMPAIGN, "citizenId": cid,
          "unitCode": "25966", "stage": "STAGE_COLLECTED", "channel": "CHANNEL_OWN_PHONE",
          "venue": "VENUE_OFFICE", "occurredAt": "2023-07-30T03:00:00Z", "consent": True}
    status, r = s.connect("RecordEvents", {"events": [ev, dict(ev, idempotencyKey="basics-log-2",
                                                               citizenId=cid + "9")]})
    assert status == 200 and r["results"][0].get("code", 0) == 0, r
    assert r["results"][1]["code"] == 3, r  # 13 digits: refused, naming the field only
    assert cid not in json.dumps(r), r
    for name in ("gateway", "activation", "roster"):
        text = open(s.log(name), errors="replace").read()
        assert cid not in text, "a citizen id in the %s log" % name
        for tok in s.tokens.values():
            assert tok not in text, "a token in the %s log" % name


def case_metrics_parse_as_prometheus(s):
    from prometheus_client.parser import text_string_to_metric_families
    s.request("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN, token="viewer")
    status, h, body = s.request("GET", "/metrics", token="viewer")
    assert status == 200, (status, body[:200])
    assert h["Content-Type"].startswith("text/plain; version=0.0.4"), h["Content-Type"]
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    reqs = fams["px_gateway_http_requests"]  # the parser drops _total from counter names
    assert any(sm.labels.get("route") == "/v1/progress" and sm.labels.get("code") == "200"
               for sm in reqs.samples), reqs.samples
    assert "px_gateway_http_request_duration_seconds" in fams
    calls = fams["px_rpc_calls"].samples
    assert {sm.labels["service"] for sm in calls} >= {"roster", "activation"}, calls[:3]
    up = {sm.labels["service"]: sm.value for sm in fams["px_gateway_service_up"].samples}
    assert up == {"roster": 1.0, "activation": 1.0}, up
    status, _, _ = s.request("GET", "/metrics", token=None)
    assert status == 401, status


CASES = [
    case_ready,
    case_progress_rest_and_connect_agree,
    case_no_token_401,
    case_viewer_may_not_forget,
    case_request_id_travels,
    case_no_citizen_id_or_token_in_logs,
    case_metrics_parse_as_prometheus,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:], log_level="debug"))
