"""The usage endpoints: GET /api/usage and /api/usage/check (docs/http.md). They never consume.

GET /api/usage lists every pool's STATE in config order; on the metering stack of
metering_support.py (both stores) with balances: per-subject pools as the caller's own, global
ones as they are, credits and unlimited pools, the same view for an admin naming the subject.
Who may ask for another subject's view: test_admin.py.
"""

from __future__ import annotations

import json

from harness import assert_json
from metering_support import ADMIN, admin_view, as_, h, limited, parse_key, states, unlimited, usage

HOUR_MS = 3_600_000

# The STATE keys of docs/http.md, in order. Metering adds balance keys; they are allowed here
# but not checked (test_balances_in_usage below checks them).
STATE_KEYS = ["id", "label", "group", "current", "max", "rechargeIntervalHours", "nextRechargeAt", "fullAt"]
METERING_KEYS = {"availableBalance", "usedBalance", "balanceLimit", "subject"}


def pools_of(r):
    assert r.status == 200, r
    assert_json(r)
    doc = json.loads(r.body, object_pairs_hook=lambda pairs: pairs)
    assert [k for k, _ in doc] == ["pools"], r
    pools = []
    for pairs in doc[0][1]:
        keys = [k for k, _ in pairs]
        core = [k for k in keys if k not in METERING_KEYS]
        assert core == STATE_KEYS, keys
        pools.append({k: v for k, v in pairs if k in STATE_KEYS})
    return pools


def full(id, max, hours, label=None, group=""):
    return {"id": id, "label": label or id, "group": group, "current": max, "max": max,
            "rechargeIntervalHours": hours, "nextRechargeAt": None, "fullAt": None}


def test_usage_lists_every_pool_in_config_order(stack):
    pools = pools_of(stack.get("/api/usage"))
    assert pools == [
        full("generate-image", 5, 2, "Image generation", "AI"),
        full("describe-image", 20, 0.5),
        full("fast", 1, 0.0005),
        full("combo-a", 3, 1),
        full("combo-b", 1, 2),
        full("burst", 50, 24),
        full("redir", 2, 24),
    ]


def test_usage_after_spending(stack):
    assert stack.post("/api/generate").status == 200
    last = stack.state("generate-image")["lastUpdatedAt"]
    pools = pools_of(stack.get("/api/usage"))
    assert pools[0] == {**full("generate-image", 5, 2, "Image generation", "AI"), "current": 4,
                        "nextRechargeAt": last + 2 * HOUR_MS, "fullAt": last + 2 * HOUR_MS}
    assert stack.post("/api/generate").status == 200
    pools = pools_of(stack.get("/api/usage"))
    assert pools[0]["current"] == 3
    assert pools[0]["nextRechargeAt"] == last + 2 * HOUR_MS
    assert pools[0]["fullAt"] == last + 2 * 2 * HOUR_MS
    # the other pools are still full
    assert pools[1] == full("describe-image", 20, 0.5)


def test_check(stack):
    r = stack.get("/api/usage/check?pools=generate-image,describe-image")
    assert r.status == 200, r
    assert_json(r)
    assert r.json() == {"ok": True, "pools": [{"id": "generate-image", "available": True},
                                              {"id": "describe-image", "available": True}]}
    assert list(r.json().keys()) == ["ok", "pools"]
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    r = stack.get("/api/usage/check?pools=generate-image,describe-image")
    assert r.status == 200, r
    assert r.json() == {"ok": False, "pools": [{"id": "generate-image", "available": False},
                                               {"id": "describe-image", "available": True}]}
    r = stack.get("/api/usage/check?pools=describe-image")
    assert r.json() == {"ok": True, "pools": [{"id": "describe-image", "available": True}]}


def test_check_bad_requests(stack):
    for path in ["/api/usage/check", "/api/usage/check?pools=", "/api/usage/check?other=1"]:
        r = stack.get(path)
        assert r.status == 400, (path, r)
        assert_json(r)
        doc = r.json()
        assert list(doc.keys()) == ["error", "message"], r
        assert doc["error"] == "bad_request"
        assert isinstance(doc["message"], str) and doc["message"], r
    for path, unknown in [("/api/usage/check?pools=x", "x"),
                          ("/api/usage/check?pools=generate-image,nope", "nope")]:
        r = stack.get(path)
        assert r.status == 404, (path, r)
        assert_json(r)
        assert r.body == ('{"error":"unknown_pool","poolId":"%s"}' % unknown).encode(), r


def test_usage_endpoints_never_consume(stack):
    assert stack.post("/api/generate").status == 200
    before = {p: stack.key(p) for p in ["generate-image", "describe-image", "fast"]}
    for _ in range(5):
        assert stack.get("/api/usage").status == 200
        assert stack.get("/api/usage/check?pools=generate-image,describe-image,fast").status == 200
        assert stack.post("/api/usage").status in (200, 405)
    after = {p: stack.key(p) for p in ["generate-image", "describe-image", "fast"]}
    assert after == before
    assert before["describe-image"] is None and before["fast"] is None
    # and the app never saw them
    assert [h for h in stack.app_hits_settled() if "/api/usage" in h] == []


def test_balances_in_usage(mstack):
    s = mstack
    assert s.get("/api/calls/1", headers=as_("nia")).status == 200
    assert s.post("/api/mixed/1", headers=as_("nia")).status == 200
    assert s.get("/api/meter3/1", headers=as_("nia")).status == 200
    u = usage(s, "nia")
    assert list(u) == ["calls", "quick", "bulk", "credits", "meter"]
    last_calls = u["calls"]["nextRechargeAt"] - 24 * HOUR_MS
    last_bulk = u["bulk"]["nextRechargeAt"] - 24 * HOUR_MS
    if s.redis:
        assert parse_key(s.key("calls:nia")) == (2, last_calls)
        assert parse_key(s.key("bulk")) == (8, last_bulk)
        assert parse_key(s.key("credits:nia"))[0] == 7
        assert parse_key(s.key("meter:nia"))[0] == 3
    assert u == {
        "calls": limited("calls", 2, 3, 24, last=last_calls, interval=24 * HOUR_MS, subject="nia"),
        "quick": limited("quick", 3, 3, 0.0002, subject="nia"),
        "bulk": limited("bulk", 8, 10, 24, last=last_bulk, interval=24 * HOUR_MS, label="Bulk", group="Shared"),
        "credits": limited("credits", 7, 10, None, subject="nia"),
        "meter": unlimited("meter", 3, "nia"),
    }
    # another caller sees its own buckets, and the global pool as it is
    o = usage(s, "oto")
    assert o == {
        "calls": limited("calls", 3, 3, 24, subject="oto"),
        "quick": limited("quick", 3, 3, 0.0002, subject="oto"),
        "bulk": u["bulk"],
        "credits": limited("credits", 10, 10, None, subject="oto"),
        "meter": unlimited("meter", 0, "oto"),
    }
    # an admin may ask for nia's view from anywhere (here as the anonymous caller)
    r = s.get("/api/usage?subject=nia", headers=ADMIN)
    assert states(r) == u
    assert r.body == s.get("/api/usage", headers=as_("nia")).body
    # a hostile subject asked for by the admin is looked up in its key form
    assert s.get("/api/calls/1", headers={"X-Api-Key": "<b> x</b>"}).status == 200
    a = admin_view(s, "<b> x</b>")
    assert a["calls"] == limited("calls", 2, 3, 24, last=a["calls"]["nextRechargeAt"] - 24 * HOUR_MS,
                                 interval=24 * HOUR_MS, subject=h("<b> x</b>"))
    assert a == states(s.get("/api/usage", headers={"X-Api-Key": "<b> x</b>"}))
