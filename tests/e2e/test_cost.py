"""Cost (docs/config.md): a route's `cost`, and a pool item's own cost over it
(`{id: credits, cost: 3}`); a cost larger than what is left is denied (429, the wait for the
charges missing) and spends nothing. Both stores, the metering stack of metering_support.py.
Credits pools (402) are in test_credits.py.
"""

from __future__ import annotations


from harness import assert_allowed, assert_out_of_charge, in_stream_order
from metering_support import HOUR_MS, as_, assert_402, check_event_ids, ev_tuple, events, given_back, usage


def test_cost_larger_than_what_is_left_denies_and_spends_nothing(mstack):
    s = mstack
    assert_allowed(s.get("/api/bulk5/a"), "GET", "/api/bulk5/a")   # 10 -> 5
    assert_allowed(s.get("/api/bulk/b"), "GET", "/api/bulk/b")     # 5 -> 4
    before = usage(s, None)["bulk"]
    assert before["current"] == 4
    raw_before = s.key("bulk") if s.redis else None
    r = s.get("/api/bulk5/c")
    n = assert_out_of_charge(r, "bulk")
    # one charge is missing: the wait is one interval from the last step
    assert HOUR_MS * 24 - 5000 < n <= HOUR_MS * 24, n
    assert usage(s, None)["bulk"] == before
    if s.redis:
        assert s.key("bulk") == raw_before
    # a cost of 4 would pass: four single charges do
    for _ in range(4):
        assert s.get("/api/bulk/d").status == 200
    assert_out_of_charge(s.get("/api/bulk/d"), "bulk")
    assert s.app_hits_settled(6) == ["GET /api/bulk5/a 200", "GET /api/bulk/b 200"] + ["GET /api/bulk/d 200"] * 4
    assert [(e["pool"], e["amount"], e["uri"]) for e in events(s)] == (
        [("bulk", 5, "/api/bulk5/a"), ("bulk", 1, "/api/bulk/b")] + [("bulk", 1, "/api/bulk/d")] * 4)


def test_item_cost_overrides_the_route_cost(mstack):
    """/api/mixed: cost 2 for the route, {id: credits, cost: 3} for one of its pools."""
    s = mstack
    assert_allowed(s.post("/api/mixed/1", headers=as_("fay")), "POST", "/api/mixed/1")
    u = usage(s, "fay")
    assert u["bulk"]["current"] == 8
    assert u["credits"]["current"] == 7
    assert_allowed(s.post("/api/mixed/2", headers=as_("fay")), "POST", "/api/mixed/2")
    assert_allowed(s.post("/api/mixed/3", headers=as_("fay")), "POST", "/api/mixed/3")
    u = usage(s, "fay")
    assert (u["bulk"]["current"], u["credits"]["current"]) == (4, 1)
    # credits 1 < 3: 402, and bulk keeps its 4
    assert_402(s.post("/api/mixed/4", headers=as_("fay")), "credits", 1, 3)
    u = usage(s, "fay")
    assert (u["bulk"]["current"], u["credits"]["current"]) == (4, 1)
    evs = events(s)
    expected = [t for i in (1, 2, 3) for t in [("bulk", "fay", 2, "/api/mixed", "POST", f"/api/mixed/{i}", ""),
                                               ("credits", "fay", 3, "/api/mixed", "POST", f"/api/mixed/{i}", "")]]
    standing, cancelled = given_back(evs)
    if s.cluster:
        # bulk and fay's credits live in different slots: bulk's is spent first, and the 402 in
        # fay's slot gave it back (a spend and its refund, SPEC §12). Each slot's events keep
        # their order.
        def slot(row):
            return row[0]  # bulk's own, or fay's (credits)

        assert in_stream_order(s, [ev_tuple(e) for e in standing], slot) == in_stream_order(s, expected, slot)
        assert [(a["pool"], a["amount"], a["uri"], b["amount"]) for a, b in cancelled] == [("bulk", 2, "/api/mixed/4", -2)]
    else:
        assert [ev_tuple(e) for e in evs] == expected
    check_event_ids(evs, s.cluster)
