"""Idempotent retries (docs/http.md): an Idempotency-Key on an `idempotent: true` route.

A retry is charged once, also when 20 race; the record binds the route (prefix and methods),
the method and the URI with its query, so the key on another request is 422
idempotency_key_reused, never a free pass; at most idempotencyMaxRepeats repeats are free, then
a repeat is charged like a new request; at most idempotencyMaxKeysPerSubject records per
subject; a denied request repeated with its key is decided afresh; on a route that is not
idempotent the header counts for nothing. Both stores (the records checked in Redis), on the
metering stacks of metering_support.py: `mstack` (25 free repeats) and the hostile-input
reviews' `st`/`rst` (3 free repeats, 5 records per subject).

Where another behaviour meets the key, its test stays with that behaviour:
test_edge_deny_cache.py (a request with the header always asks the responder), test_shadow.py
(a reused key passes on a shadow route), test_events_export.py (the key in exported events).
"""

from __future__ import annotations


from harness import all_at_once, assert_allowed, assert_out_of_charge, fetch_events, in_stream_order
from metering_support import (
    IDEM_TTL_S,
    TOKEN,
    as_,
    assert_402,
    assert_reused,
    atomic,
    ev_tuple,
    events,
    fingerprint,
    given_back,
    h,
    idem_record,
    parse_key,
    states,
    topoff,
    usage,
    usage_of,
)


def test_idempotent_retry_is_charged_once(mstack):
    s = mstack
    hdr = as_("gus", {"Idempotency-Key": "order-1"})
    for _ in range(4):
        assert_allowed(s.post("/api/calls/o", headers=hdr), "POST", "/api/calls/o")
    assert usage(s, "gus")["calls"]["current"] == 2
    # another key spends again; another subject with the same key is another record
    assert_allowed(s.post("/api/calls/o", headers=as_("gus", {"Idempotency-Key": "order-2"})), "POST", "/api/calls/o")
    assert_allowed(s.post("/api/calls/o", headers=as_("hal", {"Idempotency-Key": "order-1"})), "POST", "/api/calls/o")
    # the same key for another request (another route, URI or method) is refused: 422, not charged
    for method, uri in (("POST", "/api/quick/o"), ("POST", "/api/calls/other"), ("GET", "/api/calls/o")):
        r = s.request(method, uri, headers=hdr)
        assert r.status == 422 and r.body == b'{"error":"idempotency_key_reused"}', r
    assert usage(s, "gus")["calls"]["current"] == 1
    assert usage(s, "gus")["quick"]["current"] == 3
    assert usage(s, "hal")["calls"]["current"] == 2
    # a key outside the safe form is recorded in its h: form
    long_key = "K" * 100 + " !"
    assert_allowed(s.post("/api/calls/o", headers=as_("hal", {"Idempotency-Key": long_key})), "POST", "/api/calls/o")
    assert_allowed(s.post("/api/calls/o", headers=as_("hal", {"Idempotency-Key": long_key})), "POST", "/api/calls/o")
    assert usage(s, "hal")["calls"]["current"] == 1
    logged = [ev_tuple(e) for e in events(s)]
    expected = [
        ("calls", "gus", 1, "/api/calls", "POST", "/api/calls/o", "order-1"),
        ("calls", "gus", 1, "/api/calls", "POST", "/api/calls/o", "order-2"),
        ("calls", "hal", 1, "/api/calls", "POST", "/api/calls/o", "order-1"),
        ("calls", "hal", 1, "/api/calls", "POST", "/api/calls/o", h(long_key)),
    ]
    # gus's and hal's events: on a cluster two slots' streams (the CI run that compared them in
    # one order saw hal's order-1 and gus's order-2 in one millisecond, the other way round)
    assert in_stream_order(s, logged, lambda t: t[1]) == in_stream_order(s, expected, lambda t: t[1])
    assert len(s.app_hits_settled(8)) == 8
    if s.redis:
        fp = fingerprint("/api/calls", "*", "POST", "/api/calls/o")
        records = {idem_record(s, "gus", "order-1"): 3, idem_record(s, "gus", "order-2"): 0,
                   idem_record(s, "hal", "order-1"): 0, idem_record(s, "hal", long_key): 1}
        assert set(s.redis_keys("#idem:*")) == set(records)
        now, got = atomic(s, *sorted(records))
        for (key, repeats), (raw, pttl) in zip(sorted(records.items()), got):
            # the record holds the request it belongs to and its free repeats so far; it lives
            # idempotencyTtlSeconds from the spend
            assert raw == f"{fp}:{repeats}", (key, raw)
            assert IDEM_TTL_S * 1000 - 10_000 < pttl <= IDEM_TTL_S * 1000, pttl


def test_concurrent_retries_with_one_key_spend_once(mstack):
    s = mstack
    n = 20
    pay = {"Idempotency-Key": "pay-7f3a", "X-Api-Key": "ivy"}
    results = all_at_once(n, lambda: s.post("/api/bulk/pay", headers=pay), start=5)
    for r in results:
        assert_allowed(r, "POST", "/api/bulk/pay")
    assert usage(s, None)["bulk"]["current"] == 9
    evs = events(s)
    # On a cluster bulk and ivy's record live in different slots: a retry that raced the first
    # spent bulk's slot, then the record answered a repeat and that slot was given back (a spend
    # and its refund, SPEC §12); what stands is one spend.
    standing, cancelled = given_back(evs)
    assert [ev_tuple(e) for e in standing] == [("bulk", "ivy", 1, "/api/bulk", "POST", "/api/bulk/pay", "pay-7f3a")]
    assert s.cluster or not cancelled, cancelled
    assert len(s.app_hits_settled(n)) == n
    if s.redis:
        assert parse_key(s.key("bulk"))[0] == 9
        assert s.redis_keys("#idem:*") == [idem_record(s, "ivy", "pay-7f3a")]
        assert s.events_len() == len(evs)


def test_a_denied_request_repeated_is_decided_afresh(mstack):
    s = mstack
    for k in ("a", "b"):
        assert s.post("/api/credits5/x", headers=as_("jo", {"Idempotency-Key": k})).status == 200  # 10 -> 0
    hdr = as_("jo", {"Idempotency-Key": "retry-me"})
    assert_402(s.post("/api/credits5/x", headers=hdr), "credits", 0, 5)
    assert_402(s.post("/api/credits5/x", headers=hdr), "credits", 0, 5)
    if s.redis:
        assert s.redis.client.command("EXISTS", idem_record(s, "jo", "retry-me")) == 0
    # top off 5: the same key now passes, once
    r = topoff(s, {"poolId": "credits", "subject": "jo", "amount": 5})
    assert states(r)["credits"]["current"] == 5
    assert_allowed(s.post("/api/credits5/x", headers=hdr), "POST", "/api/credits5/x")
    assert_allowed(s.post("/api/credits5/x", headers=hdr), "POST", "/api/credits5/x")
    assert usage(s, "jo")["credits"]["current"] == 0
    if s.redis:
        assert s.redis.client.command("EXISTS", idem_record(s, "jo", "retry-me")) == 1
    # likewise for a 429: after a top-off the same key is charged (and only once)
    for _ in range(3):
        assert s.get("/api/calls/z", headers=as_("jo")).status == 200
    ch = as_("jo", {"Idempotency-Key": "c-1"})
    assert_out_of_charge(s.get("/api/calls/z", headers=ch), "calls")
    assert_out_of_charge(s.get("/api/calls/z", headers=ch), "calls")
    assert states(topoff(s, {"poolId": "calls", "subject": "jo", "amount": 1}))["calls"]["current"] == 1
    assert_allowed(s.get("/api/calls/z", headers=ch), "GET", "/api/calls/z")
    assert_allowed(s.get("/api/calls/z", headers=ch), "GET", "/api/calls/z")
    assert usage(s, "jo")["calls"]["current"] == 0
    assert [ev_tuple(e) for e in events(s, pool="credits")] == [
        ("credits", "jo", 5, "/api/credits5", "POST", "/api/credits5/x", "a"),
        ("credits", "jo", 5, "/api/credits5", "POST", "/api/credits5/x", "b"),
        ("credits", "jo", 5, "/api/credits5", "POST", "/api/credits5/x", "retry-me"),
    ]
    assert [e["idempotencyKey"] for e in events(s, pool="calls")] == ["", "", "", "c-1"]
    # 2 + 2 allowed + 3 + 2 allowed reached the app; the denials did not
    assert len(s.app_hits_settled(9)) == 9


# Hostile-input review (issue 14, row 1 in RELIABILITY.md): a reused Idempotency-Key was
# unlimited free passes to other URIs under the route.
def test_a_key_reused_for_other_uris_is_422_never_a_free_pass(st):
    s = st
    assert_allowed(s.post("/api/small/first", headers=as_("mallory", "K1")), "POST", "/api/small/first")
    hits = len(s.app_hits_settled(1))
    for i in range(5):
        assert_reused(s.post(f"/api/small/other-{i}", headers=as_("mallory", "K1")))
    assert len(s.app_hits_settled()) == hits, "a reused key reached the app"
    # The pool stays empty: a new request is a plain 429.
    assert_out_of_charge(s.post("/api/small/new", headers=as_("mallory")), "small")
    assert usage_of(s, "mallory")["small"]["current"] == 0


def test_repeats_of_one_request_are_bounded_then_charged(st):
    s = st
    hdr = as_("rita", "order-9")
    for _ in range(1 + 3):  # the spend, then idempotencyMaxRepeats free repeats
        assert_allowed(s.post("/api/idem/o", headers=hdr), "POST", "/api/idem/o")
    assert usage_of(s, "rita")["idem"]["current"] == 1
    # Past the bound, the repeat is charged like a new request ...
    assert_allowed(s.post("/api/idem/o", headers=hdr), "POST", "/api/idem/o")
    assert usage_of(s, "rita")["idem"]["current"] == 0
    # ... and denied once the pool is empty.
    assert_out_of_charge(s.post("/api/idem/o", headers=hdr), "idem")
    evs = fetch_events(s, TOKEN, pool="idem")
    assert [(e["subject"], e["idempotencyKey"]) for e in evs] == [("rita", "order-9")] * 2


def test_the_header_is_ignored_on_a_route_that_is_not_idempotent(st):
    s = st
    for _ in range(3):
        assert_allowed(s.post("/api/plain/x", headers=as_("sam", "K")), "POST", "/api/plain/x")
    assert_out_of_charge(s.post("/api/plain/x", headers=as_("sam", "K")), "perkey")
    assert [e["idempotencyKey"] for e in fetch_events(s, TOKEN, pool="perkey")] == ["", "", ""]


# Hostile-input review (issue 14, row 2): routes with one prefix and different methods
# shared the record.
def test_a_key_from_the_get_route_gives_no_free_post(st):
    s = st
    assert_allowed(s.get("/api/dc", headers=as_("mallory", "K2")), "GET", "/api/dc")
    assert_allowed(s.post("/api/dc", headers=as_("mallory")), "POST", "/api/dc")  # small: 1 -> 0
    hits = len(s.app_hits_settled(2))
    for _ in range(5):
        assert_reused(s.post("/api/dc", headers=as_("mallory", "K2")))
    assert len(s.app_hits_settled()) == hits
    assert_out_of_charge(s.post("/api/dc", headers=as_("mallory", "K3")), "small")


# Hostile-input review (issue 14, row 6): idempotency keys on an always-allowed route added
# Redis keys without bound.
def test_idempotency_records_per_subject_are_bounded(rst):
    s = rst
    for i in range(40):
        assert_allowed(s.post("/api/meter", headers=as_("flooder", f"k-{i}")), "POST", "/api/meter")
    c = s.redis.client
    assert len(s.redis_keys("#idem:*")) == 5
    assert c.command("GET", s.keys.idempotency_quota("flooder")) == "40"
    # Another subject has its own allowance of records.
    assert_allowed(s.post("/api/meter", headers=as_("other", "k-0")), "POST", "/api/meter")
    assert len(s.redis_keys("#idem:*")) == 6
    # Keys past the bound are not remembered: their repeats are charged (counted), never free.
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 40
    assert_allowed(s.post("/api/meter", headers=as_("flooder", "k-39")), "POST", "/api/meter")
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 41
    assert_allowed(s.post("/api/meter", headers=as_("flooder", "k-0")), "POST", "/api/meter")
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 41


# Hostile-input review (issue 20, row 9): the idempotency fingerprint left out the query:
# `?prompt=b` with the key of `?prompt=a` was replayed free while the app did new work.
def test_a_key_reused_with_another_query_is_422_never_a_free_pass(st):
    s = st
    assert_allowed(s.post("/api/idem/gen?prompt=a", headers=as_("quinn", "Q1")), "POST", "/api/idem/gen?prompt=a")
    hits = len(s.app_hits_settled(1))
    for query in ["prompt=b", "prompt=a&x=1", "prompt=%61", ""]:
        uri = "/api/idem/gen" + ("?" + query if query else "")
        assert_reused(s.post(uri, headers=as_("quinn", "Q1")))
    assert len(s.app_hits_settled()) == hits, "a reused key reached the app"
    # The request itself, with its query as sent, is still a free repeat.
    assert_allowed(s.post("/api/idem/gen?prompt=a", headers=as_("quinn", "Q1")), "POST", "/api/idem/gen?prompt=a")
    mine = usage_of(s, "quinn")
    assert (mine["idem"]["current"], mine["credits"]["current"]) == (1, 9)
    assert len(fetch_events(s, TOKEN, pool="idem")) == 1
