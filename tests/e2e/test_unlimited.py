"""Unlimited pools (`maxCharges: unlimited`, docs/config.md): a meter never denies, counts
every spend exactly (also concurrent ones, and a cost), shows usedBalance in GET /api/usage,
and has nothing to top off. Both stores, the metering stack of metering_support.py.
"""

from __future__ import annotations

import threading
from collections import Counter

from harness import assert_allowed
from metering_support import (
    admin_view,
    as_,
    atomic,
    check_event_ids,
    events,
    parse_key,
    topoff,
    unlimited,
    usage,
)


def test_unlimited_pool_never_denies_and_counts_exactly(mstack):
    s = mstack
    n_threads, per = 6, 5
    results = []
    lock = threading.Lock()

    def run(i):
        for j in range(per):
            r = s.get(f"/api/meter/{i}-{j}", headers=as_("max"))
            with lock:
                results.append(r)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 30 and all(r.status == 200 for r in results), [r for r in results if r.status != 200]
    for _ in range(10):
        assert_allowed(s.post("/api/meter3/big", headers=as_("max")), "POST", "/api/meter3/big")
    assert usage(s, "max")["meter"] == unlimited("meter", 60, "max")
    assert admin_view(s, "max")["meter"] == unlimited("meter", 60, "max")
    assert usage(s, "nobody")["meter"] == unlimited("meter", 0, "nobody")
    if s.redis:
        now, [(raw, pttl)] = atomic(s, s.keys.named("meter:max"))
        assert parse_key(raw)[0] == 60
        assert pttl == -1
    evs = events(s, limit=13)
    assert len(evs) == 40
    assert Counter((e["pool"], e["subject"], e["amount"], e["route"]) for e in evs) == Counter(
        {("meter", "max", 1, "/api/meter"): 30, ("meter", "max", 3, "/api/meter3"): 10})
    assert sorted(e["uri"] for e in evs[:30]) == sorted(f"/api/meter/{i}-{j}" for i in range(n_threads) for j in range(per))
    check_event_ids(evs)
    # top-off has nothing to add to a meter
    r = topoff(s, {"poolId": "meter", "subject": "max"})
    assert r.status == 400, r
    assert r.json() == {"error": "bad_request", "message": "poolId: meter is unlimited: there is nothing to top off"}
