"""Top-off (POST /api/usage/topoff, docs/http.md): an amount adds, capped at the pool's
max; no amount fills (a recharging pool's key goes away); per-subject pools (a hostile subject
in its key form) and global ones; top-offs are not usage events; bad bodies, an unknown pool, a
missing token and another method write nothing. Both stores, the metering stack of
metering_support.py.

Elsewhere: the admin token and loopback rules in test_admin.py, a top-off under a plan in
test_plans.py, a top-off beating nginx's cached denial in test_edge_deny_cache.py.
"""

from __future__ import annotations


from harness import assert_allowed, assert_json, assert_out_of_charge
from metering_support import (
    ADMIN,
    HOUR_MS,
    TOKEN,
    UNAUTHORIZED,
    after_denials,
    as_,
    atomic,
    events,
    h,
    limited,
    parse_key,
    states,
    topoff,
    usage,
)


def test_topoff_adds_capped_and_fills(mstack):
    s = mstack
    for _ in range(7):
        assert s.get("/api/credits/x", headers=as_("quin")).status == 200     # 10 -> 3
    r = topoff(s, {"poolId": "credits", "subject": "quin", "amount": 4})
    assert states(r) == {"credits": limited("credits", 7, 10, None, subject="quin")}
    r = topoff(s, {"poolId": "credits", "subject": "quin", "amount": 100})
    assert states(r) == {"credits": limited("credits", 10, 10, None, subject="quin")}
    for _ in range(5):
        assert s.get("/api/credits/x", headers=as_("quin")).status == 200     # 10 -> 5
    r = topoff(s, {"poolId": "credits", "subject": "quin"})
    assert states(r) == {"credits": limited("credits", 10, 10, None, subject="quin")}
    assert usage(s, "quin")["credits"] == limited("credits", 10, 10, None, subject="quin")
    if s.redis:
        assert parse_key(s.key("credits:quin"))[0] == 10
    # a hostile subject in the body is topped off in its key form
    for _ in range(2):
        assert s.get("/api/credits/x", headers={"X-Api-Key": "a b"}).status == 200
    r = topoff(s, {"poolId": "credits", "subject": "a b", "amount": 1})
    assert states(r) == {"credits": limited("credits", 9, 10, None, subject=h("a b"))}
    # a recharging per-subject pool: an amount adds; no amount fills (and the key goes away)
    for _ in range(3):
        assert s.get("/api/calls/x", headers=as_("quin")).status == 200
    assert_out_of_charge(s.get("/api/calls/x", headers=as_("quin")), "calls")
    r = topoff(s, {"poolId": "calls", "subject": "quin", "amount": 1})
    st = states(r)["calls"]
    assert st["current"] == 1 and st["subject"] == "quin", st
    assert st == limited("calls", 1, 3, 24, last=st["nextRechargeAt"] - 24 * HOUR_MS, interval=24 * HOUR_MS, subject="quin")
    if s.redis:
        now, [(raw, pttl)] = atomic(s, s.keys.named("calls:quin"))
        c, last = parse_key(raw)
        assert c == 1
        assert abs(pttl - (last + 2 * 24 * HOUR_MS - now)) <= 50, (pttl, raw)
    # nginx may answer the denial it cached for up to edgeDenySeconds (1 s) after a top-off
    assert_allowed(after_denials(lambda: s.get("/api/calls/x", headers=as_("quin")), 1.5), "GET", "/api/calls/x")
    r = topoff(s, {"poolId": "calls", "subject": "quin"})
    assert states(r) == {"calls": limited("calls", 3, 3, 24, subject="quin")}
    if s.redis:
        assert s.redis.client.command("EXISTS", s.keys.named("calls:quin")) == 0
    # a global pool
    for _ in range(4):
        assert s.get("/api/bulk/x").status == 200
    r = topoff(s, {"poolId": "bulk", "amount": 2})
    st = states(r)["bulk"]
    assert st["current"] == 8
    r = topoff(s, {"poolId": "bulk"})
    assert states(r) == {"bulk": limited("bulk", 10, 10, 24, label="Bulk", group="Shared")}
    if s.redis:
        assert parse_key(s.key("bulk"))[0] == 10
    # top-offs are not usage: no event
    assert {e["pool"] for e in events(s)} == {"credits", "calls", "bulk"}
    assert len(events(s)) == 7 + 5 + 2 + 3 + 1 + 4


def test_topoff_errors(mstack):
    s = mstack
    bad = [
        b"", b"not json", b"[]", b'{"subject":"x"}', b'{"poolId":5}', b'{"poolId":"credits","subject":"x","amount":"3"}',
        b'{"poolId":"credits","subject":"x","amount":1.5}',
    ]
    for body in bad:
        r = topoff(s, body)
        assert r.status == 400, (body, r)
        assert_json(r)
        doc = r.json()
        assert list(doc) == ["error", "message"] and doc["error"] == "bad_request", (body, r)
    cases = [
        ({"poolId": "credits", "subject": "x", "amount": 0}, "amount: must be a whole number from 1 to 1e15"),
        ({"poolId": "credits", "subject": "x", "amount": -4}, "amount: must be a whole number from 1 to 1e15"),
        ({"poolId": "credits"}, "subject: required for per-subject pool credits"),
        ({"poolId": "bulk", "subject": "x"}, "subject: pool bulk is global"),
    ]
    for body, message in cases:
        r = topoff(s, body)
        assert r.status == 400, (body, r)
        assert r.json() == {"error": "bad_request", "message": message}, (body, r)
    r = topoff(s, {"poolId": "nope", "amount": 1})
    assert r.status == 404, r
    assert_json(r)
    assert r.body == b'{"error":"unknown_pool","poolId":"nope"}', r
    for headers in [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic " + TOKEN}]:
        r = topoff(s, {"poolId": "bulk"}, headers=headers)
        assert r.status == 401, r
        assert_json(r)
        assert r.body == UNAUTHORIZED, r
    r = s.get("/api/usage/topoff", headers=ADMIN)
    assert r.status == 405, r
    assert r.header("Allow") == "POST", r
    # nothing was written
    assert usage(s, "x")["credits"]["current"] == 10
    assert usage(s, None)["bulk"]["current"] == 10
    if s.redis:
        assert s.redis_keys("*") == []
