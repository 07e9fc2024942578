"""The admin endpoints (docs/http.md): top-off, GET /api/usage/events and the admin view
GET /api/usage?subject=. They need the bearer adminToken (401 otherwise; the caller's own view
needs none), are all 403 when no adminToken is set, and the shipped snippet lets only loopback
clients (127.0.0.1, ::1) reach top-off, events and plan (nginx's own 403 otherwise). On the
metering stacks of metering_support.py and the default stack.

Elsewhere: what each endpoint does in test_topoff.py, test_events.py and test_usage.py; the
plan admin API in test_plans.py; /metrics for loopback only in test_operator.py.
"""

from __future__ import annotations

import json

from harness import assert_json
from metering_support import (
    ADMIN,
    CONFIG,
    EXTRA,
    FORBIDDEN_OFF,
    TOKEN,
    UNAUTHORIZED,
    as_,
    limited,
    states,
    topoff,
    usage,
)


def test_admin_view_needs_the_token(mstack):
    s = mstack
    assert s.get("/api/calls/1", headers=as_("pat")).status == 200
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
                    {"Authorization": TOKEN}, {"Authorization": "bearer " + TOKEN},
                    {"Authorization": "Bearer " + TOKEN[:-1]}, as_("pat")]:
        r = s.get("/api/usage?subject=pat", headers=headers)
        assert r.status == 401, (headers, r)
        assert_json(r)
        assert r.body == UNAUTHORIZED, r
        assert r.header("WWW-Authenticate") == "Bearer", r
    # the caller's own view needs no token
    assert usage(s, "pat")["calls"]["current"] == 2


def test_admin_endpoints_are_off_without_admin_token(make_stack):
    s = make_stack(CONFIG, settings="eventsMaxLen: 1000\n", extra=EXTRA)
    for r in [topoff(s, {"poolId": "bulk"}), topoff(s, {"poolId": "bulk"}, headers={}),
              s.get("/api/usage/events", headers=ADMIN), s.get("/api/usage/events"),
              s.get("/api/usage?subject=x", headers=ADMIN)]:
        assert r.status == 403, r
        assert_json(r)
        assert r.body == FORBIDDEN_OFF, r
    assert usage(s, "x")["calls"]["current"] == 3


def test_admin_endpoints_are_loopback_only(rstack):
    """The shipped snippet allows 127.0.0.1 and ::1 only: a client on 127.0.0.2 (still
    loopback) gets nginx's own 403 for top-off and events, token or not."""
    s = rstack
    for _ in range(3):
        assert s.get("/api/calls/x", headers=as_("ray")).status == 200
    body = json.dumps({"poolId": "calls", "subject": "ray"}).encode()
    log_before = s.responder.log_text().count("top-off")
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"}, body=body, source="127.0.0.2")
    assert r.status == 403, r
    assert b"403 Forbidden" in r.body and r.header("Content-Type") == "text/html", r
    r = s.get("/api/usage/events", headers=ADMIN, source="127.0.0.2")
    assert r.status == 403, r
    assert b"403 Forbidden" in r.body, r
    assert usage(s, "ray")["calls"]["current"] == 0
    assert s.responder.log_text().count("top-off") == log_before
    # the usage view is not restricted to loopback
    r = s.get("/api/usage", headers=as_("ray"), source="127.0.0.2")
    assert states(r)["calls"]["current"] == 0
    edge = [e for e in s.edge_log() if e["uri"].startswith("/api/usage/")]
    assert [(e["method"], e["uri"], e["status"]) for e in edge] == [
        ("POST", "/api/usage/topoff", 403), ("GET", "/api/usage/events", 403)]
    # from 127.0.0.1 with the token: 200
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"}, body=body, source="127.0.0.1")
    assert states(r) == {"calls": limited("calls", 3, 3, 24, subject="ray")}
    r = s.get("/api/usage/events", headers=ADMIN, source="127.0.0.1")
    assert r.status == 200, r
    assert len(r.json()["events"]) == 3


def test_admin_endpoints_are_loopback_only_in_the_snippet(stack):
    """Only the nginx side (allow/deny); the admin logic itself is metering (docs/http.md)."""
    text = (stack.nginx.conf.parent / "nginx.conf").read_text()
    assert "charge-gate-usage.conf" in text
    from harness import SNIPPETS
    usage = (SNIPPETS / "charge-gate-usage.conf").read_text()
    for loc in ["location = /api/usage/topoff", "location = /api/usage/events", "location = /api/usage/plan",
                "location = /api/usage/settle"]:
        block = usage.split(loc, 1)[1].split("\n}", 1)[0]
        assert "allow 127.0.0.1;" in block and "allow ::1;" in block and "deny all;" in block, loc
        assert "satisfy all;" in block and "auth_request off;" in block, loc
    # The three admin writes that take a body (top-off, plan, settle) pass its length; nothing else does.
    assert usage.count("fastcgi_param CONTENT_LENGTH") == 3
