"""Credits (docs/http.md): a pool with `recharge: none` short of a request's cost answers
402 insufficient_credits (no Retry-After) and spends nothing, and its key never expires; a 402
wins over a 429 (waiting would not help), also over a 429 a worker remembers. Both stores, the
metering stack of metering_support.py. Top-offs are in test_topoff.py.
"""

from __future__ import annotations


from harness import assert_out_of_charge
from metering_support import as_, assert_402, hits_now, limited, parse_key, usage


def test_cost_on_a_credits_pool_is_402_and_spends_nothing(mstack):
    s = mstack
    for _ in range(6):
        assert s.get("/api/credits/x", headers=as_("eve")).status == 200   # 10 -> 4
    raw_before = s.key("credits:eve") if s.redis else None
    assert_402(s.get("/api/credits5/x", headers=as_("eve")), "credits", 4, 5)
    assert usage(s, "eve")["credits"] == limited("credits", 4, 10, None, subject="eve")
    if s.redis:
        assert s.key("credits:eve") == raw_before
        assert parse_key(raw_before)[0] == 4
        # a pool that never refills keeps its key (no TTL)
        assert s.redis.client.command("PTTL", s.keys.named("credits:eve")) == -1
    assert len(s.app_hits_settled(6)) == 6


def test_402_wins_over_429(mstack):
    """/api/paid spends calls (recharging) and 4 credits: with both short, waiting would not
    help, so the answer is the 402, without Retry-After, and the app is not reached."""
    s = mstack
    for _ in range(3):
        assert s.get("/api/calls/x", headers=as_("kim")).status == 200        # calls: 0
    for _ in range(8):
        assert s.get("/api/credits/x", headers=as_("kim")).status == 200      # credits: 2
    hits = hits_now(s)
    before = usage(s, "kim")
    raw = (s.key("calls:kim"), s.key("credits:kim")) if s.redis else None
    for method in ("GET", "POST"):
        r = s.request(method, "/api/paid/now", headers=as_("kim"))
        assert_402(r, "credits", 2, 4)
        assert r.header("Content-Type") == "application/json"
    assert usage(s, "kim") == before
    if s.redis:
        assert (s.key("calls:kim"), s.key("credits:kim")) == raw
    assert hits_now(s) == hits
    # with enough credits, the empty recharging pool answers 429 (with Retry-After)
    r = s.get("/api/paid/now", headers=as_("lee"))
    assert r.status == 200, r
    for _ in range(2):
        assert s.get("/api/calls/x", headers=as_("lee")).status == 200
    assert_out_of_charge(s.get("/api/paid/now", headers=as_("lee")), "calls")
    assert usage(s, "lee")["credits"]["current"] == 6


def test_402_wins_over_a_remembered_429(mstack):
    """The same precedence when the 429 was answered a moment ago: /api/mixed (bulk cost 2,
    credits cost 3) is 429 while only bulk is empty; once the caller's credits are short too,
    every answer must be the 402 (waiting would not help), never a 429 remembered by a
    worker with a Retry-After of a day."""
    s = mstack
    for n in range(5):
        assert s.get("/api/mixed/fill", headers=as_(f"filler{n}")).status == 200     # bulk: 0
    for _ in range(8):                       # every worker learns the 429 for (route, subject)
        assert_out_of_charge(s.get("/api/mixed/x", headers=as_("uma")), "bulk")
    for _ in range(8):
        assert s.get("/api/credits/x", headers=as_("uma")).status == 200              # credits: 2
    got = [s.get("/api/mixed/x", headers=as_("uma")) for _ in range(8)]
    assert [(r.status, r.body, r.header("Retry-After")) for r in got] == [
        (402, b'{"error":"insufficient_credits","poolId":"credits","availableBalance":2,"required":3}', None)] * 8
