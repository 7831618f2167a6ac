#!/usr/bin/env python3
"""GET /v1/events: count and target changes as Server-Sent Events, filtered, resumed with
Last-Event-ID, reset when they cannot be, and kept alive while quiet."""
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from system import CAMPAIGN, System  # noqa: E402


class Stream:
    """One /v1/events stream, read event by event (comments are kept as their own items)."""

    def __init__(self, s, query="", last_event_id=None, token="viewer", timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=timeout)
        h = {"Authorization": "Bearer " + s.tokens[token]}
        if last_event_id:
            h["Last-Event-ID"] = last_event_id
        self.conn.request("GET", "/v1/events" + query, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        """The next item: ("comment", text) or (event name, id, data dict)."""
        fields, comment = {}, None
        while True:
            line = self.resp.readline().decode()
            if not line:
                raise EOFError("stream ended")
            line = line.rstrip("\r\n")
            if line == "":
                if fields:
                    return (fields.get("event", "message"), fields.get("id"),
                            json.loads(fields["data"]) if "data" in fields else None)
                if comment is not None:
                    return ("comment", comment)
                continue
            if line.startswith(":"):
                comment = line[1:].strip()
                continue
            key, _, value = line.partition(":")
            if key == "retry":
                continue  # the reconnection delay, not part of an event
            fields[key] = value[1:] if value.startswith(" ") else value

    def events(self, want, timeout=10):
        """Events (not comments) until `want(events)` is true."""
        got, deadline = [], time.time() + timeout
        while time.time() < deadline:
            item = self.next()
            if item[0] != "comment":
                got.append(item)
                if want(got):
                    return got
        raise AssertionError("not seen in %ss: %s" % (timeout, got))

    def close(self):
        self.conn.close()


def set_target(s, unit, target):
    status, r = s.connect("SetTargets", {"targets": [
        {"campaignId": CAMPAIGN, "unitCode": unit, "target": target}]}, token="admin")
    assert status == 200, r


def case_changes_arrive_as_events(s):
    st = Stream(s, "?campaign=" + CAMPAIGN)
    assert st.status == 200 and st.resp.getheader("Content-Type").startswith(
        "text/event-stream"), st.resp.getheaders()
    assert st.next() == ("comment", "connected")
    set_target(s, "25966", 9000)
    got = st.events(lambda g: {e[2]["unitCode"] for e in g} >= {"25966", "725", "74"})
    ward = [e for e in got if e[2]["unitCode"] == "25966"][0]
    assert ward[0] == "counts" and ward[2]["target"] == 9000, ward
    assert "stage" not in ward[2], "a target change has no stage: %s" % ward[2]
    ids = [int(e[1].split("-")[1]) for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    st.close()


def case_filter_by_unit(s):
    st = Stream(s, "?campaign=%s&unit=25969" % CAMPAIGN)
    st.next()
    set_target(s, "25966", 9100)
    set_target(s, "25969", 9200)
    got = st.events(lambda g: any(e[2]["unitCode"] == "25969" for e in g))
    assert all(e[2]["unitCode"] == "25969" for e in got), got
    st.close()


def case_resume_after_last_event_id(s):
    st = Stream(s)
    st.next()
    set_target(s, "25972", 4000)
    got = st.events(lambda g: any(e[2]["unitCode"] == "25972" for e in g))
    last = got[-1][1]
    st.close()
    # Changes made while the client was away...
    set_target(s, "25975", 5000)
    set_target(s, "25978", 6000)
    # ...arrive when it comes back with the id of the last event it saw, none twice.
    st = Stream(s, last_event_id=last)
    st.next()
    got = st.events(lambda g: {"25975", "25978"} <= {e[2]["unitCode"] for e in g})
    n0 = int(last.split("-")[1])
    assert all(int(e[1].split("-")[1]) > n0 for e in got), (last, got)
    st.close()


def case_reset_when_it_cannot_resume(s):
    st = Stream(s, last_event_id="00000000-12")
    assert st.next() == ("comment", "connected")
    kind, _, data = st.next()
    assert kind == "reset" and "read the figures again" in data["reason"], (kind, data)
    st.close()


def case_keepalive_while_quiet(s):
    st = Stream(s, "?campaign=no-such-campaign")
    st.next()
    t0 = time.time()
    assert st.next() == ("comment", "keep-alive")
    assert 0.5 < time.time() - t0 < 4, time.time() - t0
    st.close()


def case_recorded_event_streams(s):
    st = Stream(s, "?unit=25981")
    st.next()
    ev = {"idempotencyKey": "events-test-1", "campaignId": CAMPAIGN, "citizenId": "074199054321",
          "unitCode": "25981", "stage": "STAGE_COLLECTED", "channel": "CHANNEL_OWN_PHONE",
          "venue": "VENUE_OFFICE", "occurredAt": "2023-07-30T03:00:00Z", "consent": True}
    _, before = s.connect("GetProgress", {"campaignId": CAMPAIGN, "unitCode": "25981"})
    status, r = s.connect("RecordEvents", {"events": [ev]}, token="admin")
    assert status == 200 and r.get("recorded") == 1, r
    got = st.events(lambda g: any(e[2].get("stage") == "STAGE_COLLECTED" for e in g))
    e = [x for x in got if x[2].get("stage") == "STAGE_COLLECTED"][0][2]
    assert e["collected"] == before["unit"]["collected"] + 1, (e, before["unit"])
    st.close()


def case_no_token_401(s):
    conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=5)
    conn.request("GET", "/v1/events")
    assert conn.getresponse().status == 401
    conn.close()


CASES = [
    case_changes_arrive_as_events,
    case_filter_by_unit,
    case_resume_after_last_event_id,
    case_reset_when_it_cannot_resume,
    case_keepalive_while_quiet,
    case_recorded_event_streams,
    case_no_token_401,
]

if __name__ == "__main__":
    sys.exit(System.run_cases(CASES, sys.argv[1:], gateway_args=["--sse-keepalive-s=1"]))
