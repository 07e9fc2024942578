"""Shadow mode through real nginx and Redis: a shadow route is decided and spent
exactly as when enforced, but never blocked. A would-be 429/402 (or a store outage) passes to
the app; the responder's X-Charge-Shadow reaches the stack's access log as "shadow" (via
$charge_gate_shadow), the responder logs a shadow denial, and /metrics counts it as
shadow_out_of_charge / shadow_insufficient_credits / shadow_unavailable. Enforced routes beside
it (and a route `mode: enforce` under a top-level `mode: shadow`) still deny.
"""

from __future__ import annotations

import json
import re
import time

from harness import assert_allowed, assert_json, assert_out_of_charge, assert_unavailable, scrape, single_redis_only

TOKEN = "shadow-T0ken"
ADMIN = {"Authorization": "Bearer " + TOKEN}
SETTINGS = f'adminToken: "{TOKEN}"\nworkers: 2\nedgeDenySeconds: 5\neventsMaxLen: 10000\n'

CONFIG = """\
pools:
  - id: tiny
    maxCharges: 2
    rechargeIntervalHours: 24
  - id: strict
    maxCharges: 1
    rechargeIntervalHours: 24
  - id: credits
    maxCharges: 2
    recharge: none
    per: subject
  - id: persub
    maxCharges: 3
    rechargeIntervalHours: 24
    per: subject
  - id: pair-small
    maxCharges: 1
    rechargeIntervalHours: 24
    per: subject
  - id: pair-big
    maxCharges: 5
    rechargeIntervalHours: 24
    per: subject
  - id: keyed
    maxCharges: 5
    rechargeIntervalHours: 24
    per: subject
routes:
  - prefix: /api/shadow
    pools: [tiny]
    mode: shadow
  - prefix: /api/enforced
    pools: [strict]
  - prefix: /api/shadow-credits
    pools: [credits]
    mode: shadow
  - prefix: /api/shadow-sub
    pools: [persub]
    mode: shadow
  - prefix: /api/shadow-pair
    pools: [pair-small, pair-big]
    mode: shadow
  - prefix: /api/shadow-keyed
    pools: [keyed]
    idempotent: true
    mode: shadow
"""

# Everything in shadow mode but one route.
TOP_SHADOW = """\
mode: shadow
pools:
  - id: tiny
    maxCharges: 2
    rechargeIntervalHours: 24
  - id: strict
    maxCharges: 1
    rechargeIntervalHours: 24
routes:
  - prefix: /api/shadow
    pools: [tiny]
  - prefix: /api/enforced
    pools: [strict]
    mode: enforce
"""

EXTRA = """\
        set $charge_gate_subject $http_x_user;
"""

KEY_RE = re.compile(r'^\{"current":(-?\d+),"lastUpdatedAt":(\d+)\}$')


def as_(subject: str) -> dict:
    return {"X-User": subject}


def decided(stack, pool: str, outcome: str) -> int:
    return int(scrape(stack).get(f'charge_gate_decisions_total{{pool="{pool}",outcome="{outcome}"}}', 0))


def edge(stack, uri_prefix: str) -> list[dict]:
    time.sleep(0.1)  # the access log line is written after the answer
    return [e for e in stack.edge_log() if e["request_uri"].startswith(uri_prefix)]


def log_count(stack, text: str) -> int:
    return sum(1 for line in stack.responder.log_text().splitlines() if text in line)


def current(stack, pool: str, subject: str | None = None) -> int:
    r = stack.get("/api/usage", headers=as_(subject) if subject else {})
    assert r.status == 200, r
    return {p["id"]: p for p in r.json()["pools"]}[pool]["current"]


# --------------------------------------------------------------------------------------------


def test_a_shadow_route_passes_would_be_denials_and_reports_them(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    for i in range(8):
        assert_allowed(s.get(f"/api/shadow/{i}", headers=as_("a")), "GET", f"/api/shadow/{i}")
    # the same URI again and again: nothing of a shadow route is ever cached at the edge
    for _ in range(4):
        assert_allowed(s.get("/api/shadow/x", headers=as_("a")), "GET", "/api/shadow/x")
    # every request reached the app
    hits = s.app_hits_settled(12)
    assert hits == [f"GET /api/shadow/{i} 200" for i in range(8)] + ["GET /api/shadow/x 200"] * 4, hits
    entries = edge(s, "/api/shadow")
    assert [e["status"] for e in entries] == [200] * 12, entries
    # the two real allows carry no shadow reason; the ten would-be denials say out_of_charge
    assert [e["shadow"] for e in entries] == [""] * 2 + ["out_of_charge"] * 10, entries
    assert "HIT" not in [e["cache"] for e in entries], entries
    # the pool was spent exactly as when enforced, and never below 0
    assert KEY_RE.match(s.key("tiny")).group(1) == "0", s.key("tiny")
    assert current(s, "tiny") == 0
    # the responder logged each would-be denial, and counted them apart
    assert log_count(s, "shadow denied out_of_charge (passed)") == 10, s.responder.log_tail()
    assert decided(s, "tiny", "shadow_out_of_charge") == 10
    assert decided(s, "tiny", "allowed") == 2
    assert decided(s, "tiny", "out_of_charge") == 0

    # an enforced route beside it still denies
    assert_allowed(s.get("/api/enforced", headers=as_("a")), "GET", "/api/enforced")
    for _ in range(3):
        assert_out_of_charge(s.get("/api/enforced", headers=as_("a")), "strict")
    assert [e["shadow"] for e in edge(s, "/api/enforced")] == [""] * 4
    assert len(s.app_hits_settled(13)) == 13


def test_a_route_can_enforce_under_a_top_level_shadow_mode(make_stack):
    s = make_stack(TOP_SHADOW, settings=SETTINGS, extra=EXTRA)
    for _ in range(4):
        assert_allowed(s.get("/api/shadow", headers=as_("b")), "GET", "/api/shadow")
    assert [e["shadow"] for e in edge(s, "/api/shadow")] == ["", "", "out_of_charge", "out_of_charge"]
    assert_allowed(s.get("/api/enforced", headers=as_("b")), "GET", "/api/enforced")
    for _ in range(3):
        assert_out_of_charge(s.get("/api/enforced", headers=as_("b")), "strict")
    assert len(s.app_hits_settled(5)) == 5
    assert decided(s, "tiny", "shadow_out_of_charge") == 2
    assert decided(s, "strict", "shadow_out_of_charge") == 0
    assert decided(s, "strict", "out_of_charge") >= 1


def test_a_shadow_credits_pool_passes_with_insufficient_credits(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    for i in range(5):
        assert_allowed(s.get("/api/shadow-credits/x", headers=as_("c")), "GET", "/api/shadow-credits/x")
    entries = edge(s, "/api/shadow-credits")
    assert [e["shadow"] for e in entries] == ["", ""] + ["insufficient_credits"] * 3, entries
    assert len(s.app_hits_settled(5)) == 5
    assert decided(s, "credits", "shadow_insufficient_credits") == 3
    assert decided(s, "credits", "insufficient_credits") == 0
    assert log_count(s, "shadow denied insufficient_credits (passed)") == 3, s.responder.log_tail()
    assert current(s, "credits", "c") == 0
    assert KEY_RE.match(s.key("credits:c")).group(1) == "0"
    # a top-off still works, and spending resumes as when enforced
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"},
               body=json.dumps({"poolId": "credits", "subject": "c", "amount": 1}).encode())
    assert r.status == 200, r
    assert_allowed(s.get("/api/shadow-credits/x", headers=as_("c")), "GET", "/api/shadow-credits/x")
    assert edge(s, "/api/shadow-credits")[-1]["shadow"] == ""
    assert current(s, "credits", "c") == 0


@single_redis_only("killed, then started again")
def test_a_shadow_route_passes_while_redis_is_down(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    assert_allowed(s.get("/api/shadow/up", headers=as_("d")), "GET", "/api/shadow/up")
    s.redis.kill()
    for _ in range(3):
        assert_allowed(s.get("/api/shadow/down", headers=as_("d")), "GET", "/api/shadow/down")
        assert_unavailable(s.get("/api/enforced", headers=as_("d")))
    entries = edge(s, "/api/shadow/down")
    assert [(e["status"], e["shadow"]) for e in entries] == [(200, "service_unavailable")] * 3, entries
    assert [e["shadow"] for e in edge(s, "/api/enforced")] == [""] * 3
    assert s.app_hits_settled(4) == ["GET /api/shadow/up 200"] + ["GET /api/shadow/down 200"] * 3
    assert decided(s, "tiny", "shadow_unavailable") == 3
    assert decided(s, "tiny", "service_unavailable") == 0
    assert decided(s, "strict", "service_unavailable") == 3
    assert log_count(s, "passed (shadow mode)") == 3, s.responder.log_tail()
    # Redis back: the shadow route spends again (tiny had 1 left)
    s.redis.start()
    deadline = time.monotonic() + 15
    while True:
        r = s.get("/api/enforced", headers=as_("d"))
        if r.status != 503 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert_allowed(r, "GET", "/api/enforced")


def test_a_shadow_route_spends_exactly(any_store):
    s = any_store(CONFIG, settings=SETTINGS, extra=EXTRA)
    seen = []
    for _ in range(6):
        assert_allowed(s.get("/api/shadow-sub/e", headers=as_("e")), "GET", "/api/shadow-sub/e")
        seen.append(current(s, "persub", "e"))
    assert seen == [2, 1, 0, 0, 0, 0]
    r = s.get("/api/usage", headers=as_("e"))
    st = {p["id"]: p for p in r.json()["pools"]}["persub"]
    assert (st["current"], st["availableBalance"], st["usedBalance"]) == (0, 0, 3), st
    # another subject's bucket is untouched
    assert current(s, "persub", "f") == 3
    if s.redis:
        assert KEY_RE.match(s.key("persub:e")).group(1) == "0"
    # only the real spends are usage events
    r = s.get("/api/usage/events?pool=persub", headers=ADMIN)
    assert r.status == 200, r
    assert_json(r)
    assert len(r.json()["events"]) == 3, r
    assert [e["shadow"] for e in edge(s, "/api/shadow-sub")] == [""] * 3 + ["out_of_charge"] * 3
    assert len(s.app_hits_settled(6)) == 6

    # all or none, as when enforced: once pair-small is empty, pair-big is not spent either
    for _ in range(4):
        assert_allowed(s.get("/api/shadow-pair", headers=as_("e")), "GET", "/api/shadow-pair")
    assert (current(s, "pair-small", "e"), current(s, "pair-big", "e")) == (0, 4)
    assert [e["shadow"] for e in edge(s, "/api/shadow-pair")] == [""] + ["out_of_charge"] * 3


def test_a_reused_idempotency_key_passes_on_a_shadow_route(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    key = {"X-User": "k", "Idempotency-Key": "order-1"}
    assert_allowed(s.post("/api/shadow-keyed/a", headers=key), "POST", "/api/shadow-keyed/a")
    assert_allowed(s.post("/api/shadow-keyed/a", headers=key), "POST", "/api/shadow-keyed/a")   # a repeat
    assert_allowed(s.post("/api/shadow-keyed/b", headers=key), "POST", "/api/shadow-keyed/b")   # reused
    entries = edge(s, "/api/shadow-keyed")
    assert [e["shadow"] for e in entries] == ["", "", "idempotency_key_reused"], entries
    assert current(s, "keyed", "k") == 4          # spent once
    assert decided(s, "keyed", "shadow_idempotency_key_reused") == 1
    assert len(s.app_hits_settled(3)) == 3
