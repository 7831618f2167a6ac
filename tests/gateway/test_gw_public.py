#!/usr/bin/env python3
"""/public/v1/progress: units' progress without a token, small counts hidden, cached, and
rate-limited per client address."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System  # noqa: E402

THRESHOLD = 20
PATH = "/public/v1/progress?campaign=%s&unit=" % CAMPAIGN


def case_no_token_and_small_counts_hidden(s):
    status, h, body = s.request("GET", PATH + "25966", token=None)
    assert status == 200, (status, body)
    pub = json.loads(body)
    _, _, full = s.request("GET", "/v1/progress?campaign=%s&unit=25966" % CAMPAIGN,
                           token="admin")
    full = json.loads(full)
    assert pub["threshold"] == THRESHOLD and pub["unit"]["unitName"] == "Lái Thiêu", pub
    # The ward itself is above the threshold: shown as is.
    assert pub["unit"]["collected"] == full["unit"]["collected"], (pub["unit"], full["unit"])
    # Its neighborhoods are small: every count under the threshold is "<20", never the number.
    assert len(pub["children"]) == len(full["children"]) > 0
    hidden = 0
    for p, f in zip(pub["children"], full["children"]):
        for k in ("collected", "approved", "activated"):
            n = f.get(k, 0)
            if n < THRESHOLD:
                assert p[k] == "<%d" % THRESHOLD, (k, p, f)
                hidden += 1
            else:
                assert p[k] == n, (k, p, f)
        assert "followUpsOpen" not in p and "rejected" not in p, p
    assert hidden > 0, "the demo's neighborhoods should have small counts"


def case_cached_for_its_period(s):
    _, _, before = s.request("GET", PATH + "725", token=None)
    before = json.loads(before)
    # A new target shows at once on the authenticated route...
    status, r = s.connect("SetTargets", {"targets": [
        {"campaignId": CAMPAIGN, "unitCode": "725", "target": 123456}]}, token="admin")
    assert status == 200, r
    _, _, now = s.request("GET", "/v1/progress?campaign=%s&unit=725" % CAMPAIGN, token="admin")
    assert json.loads(now)["unit"]["target"] == 123456
    # ...and on the public one only once its cached answer is older than the period.
    _, _, cached = s.request("GET", PATH + "725", token=None)
    assert json.loads(cached)["unit"]["target"] == before["unit"]["target"]
    time.sleep(1.6)
    _, _, fresh = s.request("GET", PATH + "725", token=None)
    assert json.loads(fresh)["unit"]["target"] == 123456, fresh


def case_rate_limited_per_address(s):
    time.sleep(2.5)  # the bucket refills from the cases before
    codes = [s.request("GET", PATH + "74", token=None)[0] for _ in range(12)]
    assert codes[:3] == [200, 200, 200], codes
    assert 429 in codes, codes
    status, h, body = s.request("GET", PATH + "74", token=None)
    assert status == 429 and int(h["Retry-After"]) >= 1, (status, h)
    assert json.loads(body)["code"] == "resource_exhausted"


def case_bad_parameters(s):
    time.sleep(3)
    status, _, body = s.request("GET", "/public/v1/progress?campaign=%s" % CAMPAIGN, token=None)
    assert status == 400, (status, body)
    status, _, body = s.request("GET", PATH + "725&x=1", token=None)
    assert status == 400 and b"unknown parameter" in body, (status, body)


CASES = [
    case_no_token_and_small_counts_hidden,
    case_cached_for_its_period,
    case_rate_limited_per_address,
    case_bad_parameters,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:], gateway_args=[
        "--public-progress=on", "--public-threshold=%d" % THRESHOLD, "--public-cache-ms=1500",
        "--public-rate=1", "--public-burst=3"]))
