"""Denials answered by nginx itself (the edge deny cache): the responder marks a cacheable 429
with X-Accel-Expires, the auth location caches it (charge-gate-server.conf), and nothing else
is ever served from that cache. Each test counts what reached the responder (its /metrics) or
reads nginx's own cache status ($upstream_cache_status of the auth subrequest, logged as
"cache" in the stack's access log), so it fails when the cache is missing, leaks, or is kept
too long. The edge profile's alone: skipped on the keepalive profile (README, "Auth profiles"),
whose auth location has no cache (tests/e2e/test_keepalive.py: its denials, from memory).
"""

from __future__ import annotations

import time

import pytest

from harness import allowed_within, assert_allowed, assert_out_of_charge, edge_profile_only, scrape

pytestmark = edge_profile_only()

TOKEN = "edge-T0ken"
ADMIN = {"Authorization": "Bearer " + TOKEN}

CONFIG = """\
pools:
  - id: two-sec              # one charge back every 2 s
    maxCharges: 1
    rechargeIntervalHours: 0.00055555555556
  - id: plenty
    maxCharges: 20
    rechargeIntervalHours: 24
  - id: persub
    maxCharges: 1
    rechargeIntervalHours: 24
    per: subject
  - id: credits
    maxCharges: 1
    recharge: none
    per: subject
  - id: keyed
    maxCharges: 1
    rechargeIntervalHours: 24
    per: subject
routes:
  - prefix: /api/two
    pools: [two-sec]
  - prefix: /api/plenty
    pools: [plenty]
  - prefix: /api/persub
    pools: [persub]
  - prefix: /api/credits
    pools: [persub, credits]
  - prefix: /api/keyed
    pools: [keyed]
    idempotent: true
"""

EXTRA = """\
        set $charge_gate_subject $http_x_api_key;
"""


def stack_with(make_stack, edge: int = 1, workers: int = 2, extra: str = ""):
    settings = f"adminToken: {TOKEN}\nworkers: {workers}\nedgeDenySeconds: {edge}\n"
    return make_stack(CONFIG, settings=settings, extra=EXTRA + extra)


def as_(subject: str, **headers) -> dict:
    return {"X-Api-Key": subject, **headers}


def cache_statuses(stack, uri_prefix: str) -> list[str]:
    time.sleep(0.1)  # the access log line is written after the answer
    return [e["cache"] for e in stack.edge_log() if e["request_uri"].startswith(uri_prefix)]


def decided(stack, pool: str, outcome: str) -> int:
    return int(scrape(stack).get(f'charge_gate_decisions_total{{pool="{pool}",outcome="{outcome}"}}', 0))


def test_a_denial_flood_is_answered_by_nginx(make_stack):
    s = stack_with(make_stack, edge=5)
    assert_allowed(s.post("/api/plenty", headers=as_("a")), "POST", "/api/plenty")
    for _ in range(19):
        assert s.post("/api/plenty", headers=as_("a")).status == 200
    for _ in range(200):
        assert_out_of_charge(s.post("/api/plenty", headers=as_("a")), "plenty")
    statuses = cache_statuses(s, "/api/plenty")[20:]
    assert statuses.count("HIT") >= 190, statuses
    assert decided(s, "plenty", "out_of_charge") <= 10
    assert len(s.app_hits_settled(20)) == 20


def test_a_cached_denial_never_outlives_the_pools_next_charge(make_stack):
    """two-sec gets a charge back 2 s after it was spent; edgeDenySeconds (5) is not the bound
    here: the denial is cached only to the end of the last whole second before the charge."""
    s = stack_with(make_stack, edge=5)
    assert_allowed(s.get("/api/two", headers=as_("a")), "GET", "/api/two")
    first = time.monotonic()
    wait_ms = assert_out_of_charge(s.get("/api/two", headers=as_("a")), "two-sec")
    due = first + wait_ms / 1000
    allowed_at = None
    while time.monotonic() < due + 2:
        r = s.get("/api/two", headers=as_("a"))
        if r.status == 200:
            allowed_at = time.monotonic()
            break
        assert_out_of_charge(r, "two-sec")
        time.sleep(0.01)
    assert allowed_at is not None, "still denied 2 s after retryAfterMs"
    assert allowed_at >= due - 0.05, "allowed before the charge came back"
    assert allowed_at - due < 0.25, f"denied {allowed_at - due:.3f} s past the pool's next charge"
    assert "HIT" in cache_statuses(s, "/api/two"), "the cache answered nothing"


def test_an_allow_is_never_cached(make_stack):
    s = stack_with(make_stack, edge=5)
    for i in range(20):
        assert_allowed(s.get("/api/plenty", headers=as_("a")), "GET", "/api/plenty")
    assert_out_of_charge(s.get("/api/plenty", headers=as_("a")), "plenty")
    assert s.state("plenty")["current"] == 0
    assert decided(s, "plenty", "allowed") == 20
    assert "HIT" not in cache_statuses(s, "/api/plenty")[:20]
    assert len(s.app_hits_settled(20)) == 20


def test_one_subjects_denial_is_never_served_to_another(make_stack):
    s = stack_with(make_stack, edge=5)
    assert_allowed(s.get("/api/persub/x", headers=as_("alice")), "GET", "/api/persub/x")
    for _ in range(5):
        assert_out_of_charge(s.get("/api/persub/x", headers=as_("alice")), "persub")
    assert "HIT" in cache_statuses(s, "/api/persub/x")
    assert_allowed(s.get("/api/persub/x", headers=as_("bob")), "GET", "/api/persub/x")
    assert_out_of_charge(s.get("/api/persub/x", headers=as_("bob")), "persub")


def test_a_request_with_the_idempotency_header_always_asks_the_responder(make_stack):
    s = stack_with(make_stack, edge=5)
    assert_allowed(s.post("/api/keyed/o", headers=as_("k", **{"Idempotency-Key": "order-1"})), "POST", "/api/keyed/o")
    for _ in range(5):  # the pool is empty: these are cached for (POST, k, /api/keyed/o)
        assert_out_of_charge(s.post("/api/keyed/o", headers=as_("k")), "keyed")
    assert "HIT" in cache_statuses(s, "/api/keyed/o")
    for _ in range(3):  # the repeat of the allowed request is allowed: the cache was bypassed
        assert_allowed(s.post("/api/keyed/o", headers=as_("k", **{"Idempotency-Key": "order-1"})), "POST", "/api/keyed/o")
    assert cache_statuses(s, "/api/keyed/o")[-3:] == ["BYPASS"] * 3
    # and a keyed denial is not stored for the keyless requests that follow
    assert_out_of_charge(s.post("/api/keyed/p", headers=as_("k", **{"Idempotency-Key": "order-2"})), "keyed")
    assert_out_of_charge(s.post("/api/keyed/p", headers=as_("k")), "keyed")
    assert cache_statuses(s, "/api/keyed/p") == ["BYPASS", "MISS"]


def test_a_top_off_takes_effect_within_edge_deny_seconds(make_stack):
    s = stack_with(make_stack, edge=1)
    assert_allowed(s.get("/api/persub/t", headers=as_("t")), "GET", "/api/persub/t")
    for _ in range(5):
        assert_out_of_charge(s.get("/api/persub/t", headers=as_("t")), "persub")
    r = s.post("/api/usage/topoff", headers=ADMIN, body=b'{"poolId":"persub","subject":"t","amount":1}')
    assert r.status == 200, r
    allowed_within(lambda: s.get("/api/persub/t", headers=as_("t")), "persub", 1.2, "a cached denial outlived edgeDenySeconds")


def test_402_and_503_are_never_cached(make_stack):
    s = stack_with(make_stack, edge=5)
    assert s.get("/api/credits/x", headers=as_("c")).status == 200  # persub and credits: 1 -> 0
    for _ in range(10):
        r = s.get("/api/credits/x", headers=as_("c"))
        assert r.status == 402, r
    assert decided(s, "credits", "insufficient_credits") == 10
    assert "HIT" not in cache_statuses(s, "/api/credits/x")
    s.redis.kill()
    for _ in range(5):
        r = s.get("/api/plenty", headers=as_("u"))
        assert r.status == 503, r
    assert "HIT" not in cache_statuses(s, "/api/plenty")
    s.redis.start()
    # Redis is back: the next requests are allowed (a cached 503 would keep answering). The
    # bound is generous for a loaded machine; the point is that it ends.
    deadline = time.monotonic() + 15
    while True:
        r = s.get("/api/plenty", headers=as_("u"))
        if r.status == 200 or time.monotonic() > deadline:
            break
        assert r.status == 503, r
        time.sleep(0.05)
    assert_allowed(r, "GET", "/api/plenty")


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_denials_stay_exact_for_every_method(make_stack, method):
    s = stack_with(make_stack, edge=5)
    assert s.request(method, "/api/persub/m", headers=as_("m")).status == 200
    for i in range(4):
        r = s.request(method, "/api/persub/m", headers=as_("m"))
        assert r.status == 429, r
        assert r.header("Retry-After") == "86400", r
        assert r.header("RateLimit") is not None, r
        if method != "HEAD":
            assert_out_of_charge(r, "persub")
    statuses = cache_statuses(s, "/api/persub/m")
    assert statuses[1] == "MISS" and "HIT" in statuses[2:], statuses


def test_edge_deny_seconds_0_turns_it_off(make_stack):
    s = stack_with(make_stack, edge=0, workers=1)
    for _ in range(20):
        assert s.get("/api/plenty", headers=as_("o")).status == 200
    for _ in range(30):
        assert_out_of_charge(s.get("/api/plenty", headers=as_("o")), "plenty")
    assert "HIT" not in cache_statuses(s, "/api/plenty")
    assert decided(s, "plenty", "out_of_charge") == 30


def test_a_location_can_turn_the_edge_cache_off(make_stack):
    """`set $charge_gate_edge_cache off;` before the protect include: every request there asks
    the responder, while the default location beside it keeps the cache."""
    off = """
        location /api/plenty/off/ {
            set $charge_gate_edge_cache off;
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/app.sock;
        }
"""
    s = stack_with(make_stack, edge=5, workers=1, extra=off)
    for _ in range(20):
        assert s.get("/api/plenty/off/x", headers=as_("q")).status == 200
    for _ in range(30):
        assert_out_of_charge(s.get("/api/plenty/off/x", headers=as_("q")), "plenty")
    assert set(cache_statuses(s, "/api/plenty/off/")) == {"BYPASS"}
    assert decided(s, "plenty", "out_of_charge") == 30
    for _ in range(10):
        assert_out_of_charge(s.get("/api/plenty/on", headers=as_("q")), "plenty")
    assert "HIT" in cache_statuses(s, "/api/plenty/on")


def test_a_denial_is_stored_only_when_its_key_comes_again(make_stack):
    """fastcgi_cache_min_uses 2: a flood over ever new URIs writes no cache file per request
    (nginx's keys zone counts them in memory); a repeated one is stored once, then hit."""
    s = stack_with(make_stack, edge=5)
    for _ in range(20):
        assert s.get("/api/plenty", headers=as_("f")).status == 200
    for i in range(50):
        assert_out_of_charge(s.get(f"/api/plenty/u{i}", headers=as_("f")), "plenty")
    cache_dir = s.dir / "deny-cache"

    def files() -> int:
        return sum(1 for p in cache_dir.rglob("*") if p.is_file())

    assert files() == 0, "a denial seen once was written to the cache"
    for _ in range(5):
        assert_out_of_charge(s.get("/api/plenty/again", headers=as_("f")), "plenty")
    assert files() == 1
    assert cache_statuses(s, "/api/plenty/again") == ["MISS", "MISS", "HIT", "HIT", "HIT"]
