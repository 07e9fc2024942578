"""The usage endpoints: GET /api/usage and /api/usage/check (docs/http.md). They never consume."""

from __future__ import annotations

import json

from harness import assert_json

HOUR_MS = 3_600_000

# The STATE keys of docs/http.md, in order. Metering adds balance keys; they are allowed here
# but not checked (out of scope for now).
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


def test_admin_endpoints_are_loopback_only_in_the_snippet(stack):
    """Only the nginx side (allow/deny); the admin logic itself is metering (docs/http.md)."""
    text = (stack.nginx.conf.parent / "nginx.conf").read_text()
    assert "charge-gate-usage.conf" in text
    from harness import SNIPPETS
    usage = (SNIPPETS / "charge-gate-usage.conf").read_text()
    for loc in ["location = /api/usage/topoff", "location = /api/usage/events", "location = /api/usage/plan"]:
        block = usage.split(loc, 1)[1].split("\n}", 1)[0]
        assert "allow 127.0.0.1;" in block and "allow ::1;" in block and "deny all;" in block, loc
    # The two admin writes that take a body (top-off, plan) pass its length; nothing else does.
    assert usage.count("fastcgi_param CONTENT_LENGTH") == 2
