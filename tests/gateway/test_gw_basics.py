#!/usr/bin/env python3
"""The gateway in front of the real services, loaded with the demo: the first things a caller
meets. Each case is a function; the table at the end runs them against one system."""
import json
import os
import sys

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


def case_request_id_travels(s):
    status, h, _ = s.request("GET", "/v1/progress?campaign=%s&unit=25966" % CAMPAIGN,
                             token="viewer", headers={"X-Request-Id": "test-rid-0001"})
    assert status == 200 and h["X-Request-Id"] == "test-rid-0001", h


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
    case_metrics_parse_as_prometheus,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:]))
