"""The hostile-input review's reproductions (issue 14) that have no behaviour of their own
here, through real nginx, on the Redis store and, where the hole was in shared code, on the
memory store too: the responder's deny cache keyed by route, and internal keys (the event
stream, idempotency records) apart from the pools' keys. Each test is the attack as it was
reproduced; before the fix each one passed requests to the app uncharged or broke the gate.
Now every one ends in a denial or an untouched victim.

The review's other reproductions are with their behaviour: idempotency keys (rows 1, 2 and 6,
and the second review's row 9) in test_idempotency.py, subjects (row 4, and the second review's
row 10) in test_subjects.py. The stack is metering_support.REVIEW_CONFIG (conftest.py: `st` on
each store, `rst` on Redis); the subject is the caller's API key (X-Api-Key), as an operator
with header subjects sets it.
"""

from __future__ import annotations

import hashlib
import json

from harness import assert_allowed, assert_out_of_charge, fetch_events, single_redis_only
from metering_support import REVIEW_CONFIG, REVIEW_EXTRA, REVIEW_SETTINGS, TOKEN, as_, usage_of


# 3. The memory deny cache was keyed by prefix: a POST flood denied the GET route.
def test_a_denial_flood_on_one_route_does_not_deny_its_sibling(st):
    s = st
    assert_allowed(s.post("/api/dc", headers=as_("x")), "POST", "/api/dc")
    denied = allowed = 0
    for _ in range(60):
        r = s.post("/api/dc", headers=as_("x"))
        assert_out_of_charge(r, "small")
        denied += 1
        g = s.get("/api/dc", headers=as_("x"))
        assert_allowed(g, "GET", "/api/dc")
        assert g.header("RateLimit-Policy") == '"big";q=995;w=358200000', g
        allowed += 1
    assert (denied, allowed) == (60, 60)
    assert usage_of(s, "x")["big"]["current"] == 995 - 60


# 5. Internal keys shared the pools' namespace: a pool `events` broke the event stream, a
#    per-subject pool `idem` could be reached by a crafted subject.
def test_pools_named_events_and_idem_never_meet_internal_keys(rst):
    s = rst
    for i in range(3):
        assert_allowed(s.post(f"/api/ev/{i}", headers=as_("e")), "POST", f"/api/ev/{i}")
        assert_allowed(s.post(f"/api/idem/{i}", headers=as_("e", f"key-{i}")), "POST", f"/api/idem/{i}") if i < 2 else None
    c = s.redis.client
    k = s.keys
    assert c.command("TYPE", k.bucket("events")) == "string"
    assert json.loads(c.command("GET", k.bucket("events")))["current"] == 47
    assert [c.command("TYPE", stream) for stream in s.event_streams()] == ["stream"] * len(s.event_streams())
    assert s.events_len() == 3 + 2 * 2
    assert s.redis_keys("#idem:*") == sorted(k.idempotency("e", f"key-{i}") for i in range(2))
    if not s.cluster:
        assert k.idempotency("e", "key-0") == "charge:#idem:" + hashlib.sha256(b"e\nkey-0").hexdigest()[:32]
    assert c.command("TYPE", k.bucket("idem", "e")) == "string"  # the pool's own bucket
    # Every spend keeps working, and the export has every event.
    assert_allowed(s.post("/api/ev/4", headers=as_("e")), "POST", "/api/ev/4")
    assert len(fetch_events(s, TOKEN)) == 3 + 4 + 1


@single_redis_only("the event stream of versions before 0.3 (`charge:events`), which a cluster never reads "
                   "(KeySpace.legacyEvents)")
def test_events_written_before_the_upgrade_stay_exportable(make_stack):
    cfg = REVIEW_CONFIG.replace("  - id: events\n", "  - id: evpool\n").replace("pools: [events]", "pools: [evpool]")
    s = make_stack(cfg, settings=REVIEW_SETTINGS, extra=REVIEW_EXTRA)
    c = s.redis.client
    c.command("XADD", "charge:events", "1000-0", "pool", "perkey", "subject", "old", "amount", "1", "route", "/api/plain",
              "method", "POST", "uri", "/api/plain/old", "idem", "", "time", "1000")
    assert_allowed(s.post("/api/plain/new", headers=as_("new")), "POST", "/api/plain/new")
    evs = fetch_events(s, TOKEN)
    assert [(e["subject"], e["uri"]) for e in evs] == [("old", "/api/plain/old"), ("new", "/api/plain/new")]
    assert c.command("XLEN", "charge:events") == 1, "the old stream is read, never written"
