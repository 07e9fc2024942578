"""Metering (docs/http.md, docs/redis.md) through real nginx, on the Redis store and, where the
docs say both stores behave alike, on the memory store too: per-subject buckets, cost,
idempotent retries, credits (402), unlimited meters, balances in GET /api/usage, top-off,
usage events.

The subject is chosen per request with X-Api-Key: the metering stack sets
`$charge_gate_subject $http_x_api_key` at server level (EXTRA slot), so the protected /api/
location and the shipped usage locations (/api/usage, topoff, events) all see it; a request
without the header has an empty subject (`_anonymous`).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, defaultdict

import pytest

from harness import (
    assert_allowed,
    assert_json,
    assert_out_of_charge,
    fetch_events,
    wait_until,
)

TOKEN = "s3cret-admin.Token_42"
ADMIN = {"Authorization": "Bearer " + TOKEN}
HOUR_MS = 3_600_000
QUICK_MS = 720  # 0.0002 h
IDEM_TTL_S = 300

SETTINGS = f"""\
adminToken: "{TOKEN}"
idempotencyTtlSeconds: {IDEM_TTL_S}
# 20 racing retries of one request below: each of the 19 repeats is within the bound.
idempotencyMaxRepeats: 25
eventsMaxLen: 100000
"""

CONFIG = """\
pools:
  - id: calls
    maxCharges: 3
    rechargeIntervalHours: 24
    per: subject
  - id: quick
    maxCharges: 3
    rechargeIntervalHours: 0.0002
    per: subject
  - id: bulk
    maxCharges: 10
    rechargeIntervalHours: 24
    label: Bulk
    group: Shared
  - id: credits
    maxCharges: 10
    recharge: none
    per: subject
  - id: meter
    maxCharges: unlimited
    per: subject
routes:
  - prefix: /api/calls
    pools: [calls]
    idempotent: true
  - prefix: /api/quick
    pools: [quick]
    idempotent: true
  - prefix: /api/bulk
    pools: [bulk]
    idempotent: true
  - prefix: /api/bulk5
    pools: [bulk]
    cost: 5
    idempotent: true
  - prefix: /api/mixed
    pools: [bulk, {id: credits, cost: 3}]
    cost: 2
    idempotent: true
  - prefix: /api/paid
    pools: [calls, {id: credits, cost: 4}]
    idempotent: true
  - prefix: /api/credits
    pools: [credits]
    idempotent: true
  - prefix: /api/credits5
    pools: [{id: credits, cost: 5}]
    idempotent: true
  - prefix: /api/meter
    pools: [meter]
    idempotent: true
  - prefix: /api/meter3
    pools: [{id: meter, cost: 3}]
    idempotent: true
"""

# (pool, amount) spent by each route, in route order.
ROUTE_POOLS = {
    "/api/calls": [("calls", 1)],
    "/api/quick": [("quick", 1)],
    "/api/bulk": [("bulk", 1)],
    "/api/bulk5": [("bulk", 5)],
    "/api/mixed": [("bulk", 2), ("credits", 3)],
    "/api/paid": [("calls", 1), ("credits", 4)],
    "/api/credits": [("credits", 1)],
    "/api/credits5": [("credits", 5)],
    "/api/meter": [("meter", 1)],
    "/api/meter3": [("meter", 3)],
}

EXTRA = """\
        # The subject is the caller's API key (empty without the header: _anonymous).
        set $charge_gate_subject $http_x_api_key;
"""

KEY_RE = re.compile(r'^\{"current":(-?\d+),"lastUpdatedAt":(\d+)\}$')
STATE_KEYS = ["id", "label", "group", "current", "max", "rechargeIntervalHours", "nextRechargeAt", "fullAt",
              "availableBalance", "usedBalance", "balanceLimit"]
UNAUTHORIZED = b'{"error":"unauthorized"}'
FORBIDDEN_OFF = b'{"error":"forbidden","message":"admin endpoints are off: set adminToken in the config"}'


# --------------------------------------------------------------------------------------------
# helpers


def h(text: str | bytes) -> str:
    """SafeToken's key form of a subject outside [A-Za-z0-9._:@-]{1,64}."""
    b = text if isinstance(text, bytes) else text.encode()
    return "h:" + hashlib.sha256(b).hexdigest()[:32]


def idem_record(subject: str, key: str) -> str:
    """The record of one client key of one subject (KeySpace.idempotency)."""
    return "charge:#idem:" + hashlib.sha256(f"{subject}\n{key}".encode()).hexdigest()[:32]


def fingerprint(route: str, methods: str, method: str, uri: str) -> str:
    """What the record binds: the route itself (prefix and methods), the method and the URI."""
    fields = [f"{route} {methods}", method, uri]
    return hashlib.sha256("".join(f"{len(f.encode())}:{f}" for f in fields).encode()).hexdigest()[:32]


def as_(subject, extra: dict | None = None) -> dict:
    """Headers for a request as `subject` (None: no X-Api-Key header at all)."""
    headers = {} if subject is None else {"X-Api-Key": subject}
    headers.update(extra or {})
    return headers


def parse_key(raw: str | None):
    if raw is None:
        return None
    m = KEY_RE.match(raw)
    assert m, raw
    return int(m.group(1)), int(m.group(2))


def atomic(stack, *keys):
    """Redis TIME (ms), then GET and PTTL of each key, read atomically in one script."""
    script = ("local t = redis.call('TIME') local out = {t[1], t[2]} "
              "for i = 1, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '' "
              "out[#out + 1] = redis.call('PTTL', KEYS[i]) end return out")
    r = stack.redis.client.command("EVAL", script, len(keys), *keys)
    now = int(r[0]) * 1000 + int(r[1]) // 1000
    pairs = [(r[2 + 2 * i] or None, r[3 + 2 * i]) for i in range(len(keys))]
    return now, pairs


def ordered(r):
    """The JSON body with key order kept (lists of pairs turned into dicts, order checked by callers)."""
    return json.loads(r.body, object_pairs_hook=lambda pairs: pairs)


def states(r) -> dict:
    """GET /api/usage (or a top-off answer) as {poolId: STATE}, checking each STATE's key order."""
    assert r.status == 200, r
    assert_json(r)
    doc = ordered(r)
    if doc and doc[0][0] == "pools":
        assert [k for k, _ in doc] == ["pools"], r
        items = doc[0][1]
    else:
        items = [doc]
    out = {}
    for pairs in items:
        keys = [k for k, _ in pairs]
        d = dict(pairs)
        scoped = d["id"] in ("calls", "quick", "credits", "meter")
        assert keys == STATE_KEYS + (["subject"] if scoped else []), keys
        out[d["id"]] = d
    return out


def usage(stack, subject) -> dict:
    return states(stack.get("/api/usage", headers=as_(subject)))


def admin_view(stack, subject: str) -> dict:
    from urllib.parse import quote

    return states(stack.get("/api/usage?subject=" + quote(subject, safe=""), headers=ADMIN))


def limited(id, current, max, hours, *, last=None, interval=None, subject=None, label=None, group=""):
    """The exact STATE of a limited pool. `last`: lastUpdatedAt when not full."""
    if current >= max or interval is None:
        nxt = full_at = None
    else:
        nxt = last + interval
        full_at = last + (max - current) * interval
    d = {"id": id, "label": label or id, "group": group, "current": current, "max": max,
         "rechargeIntervalHours": hours, "nextRechargeAt": nxt, "fullAt": full_at,
         "availableBalance": current, "usedBalance": max - current, "balanceLimit": max}
    if subject is not None:
        d["subject"] = subject
    return d


def unlimited(id, used, subject=None):
    d = {"id": id, "label": id, "group": "", "current": None, "max": None, "rechargeIntervalHours": None,
         "nextRechargeAt": None, "fullAt": None, "availableBalance": None, "usedBalance": used, "balanceLimit": None}
    if subject is not None:
        d["subject"] = subject
    return d


def assert_402(r, pool, available, required):
    assert r.status == 402, r
    assert_json(r)
    assert r.body == ('{"error":"insufficient_credits","poolId":"%s","availableBalance":%d,"required":%d}'
                      % (pool, available, required)).encode(), r
    assert r.headers_named("Retry-After") == [], r


def topoff(stack, body, headers=ADMIN, **kw):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.post("/api/usage/topoff", headers={**headers, "Content-Type": "application/json"}, body=data, **kw)


def events(stack, **query):
    return fetch_events(stack, TOKEN, **query)


def ev_tuple(e):
    return (e["pool"], e["subject"], e["amount"], e["route"], e["method"], e["uri"], e["idempotencyKey"])


def check_event_ids(evs):
    """Ids strictly increasing (ms-seq), each id's ms at or after the event's time."""
    prev = (-1, -1)
    for e in evs:
        ms, seq = (int(x) for x in e["id"].split("-"))
        assert (ms, seq) > prev, evs
        assert ms >= e["time"], e
        prev = (ms, seq)


def after_denials(send, seconds: float):
    """The first answer of `send()` that is not a 429, sending again for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        r = send()
        if r.status != 429 or time.monotonic() > deadline:
            return r
        time.sleep(0.02)


def hits_now(stack) -> int:
    return len(stack.app_hits_settled())


@pytest.fixture
def mstack(any_store):
    """The metering stack, on the Redis store and on the memory store."""
    return any_store(CONFIG, settings=SETTINGS, extra=EXTRA)


@pytest.fixture
def rstack(make_stack):
    """The metering stack on Redis only (for checks of Redis state)."""
    return make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)


# --------------------------------------------------------------------------------------------
# 1. subjects


def test_subjects_have_their_own_buckets(mstack):
    s = mstack
    for _ in range(3):
        assert_allowed(s.get("/api/calls/x", headers=as_("alice")), "GET", "/api/calls/x")
    assert_out_of_charge(s.get("/api/calls/x", headers=as_("alice")), "calls")
    # bob's bucket is untouched by alice's spending
    for _ in range(3):
        assert_allowed(s.get("/api/calls/y", headers=as_("bob")), "GET", "/api/calls/y")
    assert_out_of_charge(s.get("/api/calls/y", headers=as_("bob")), "calls")
    assert usage(s, "alice")["calls"]["current"] == 0
    assert usage(s, "bob")["calls"]["current"] == 0
    assert usage(s, "carol")["calls"] == limited("calls", 3, 3, 24, subject="carol")
    if s.redis:
        keys = sorted(s.redis.client.command("KEYS", "charge:calls*"))
        assert keys == ["charge:calls:alice", "charge:calls:bob"]
        assert parse_key(s.key("calls:alice"))[0] == 0
        assert parse_key(s.key("calls:bob"))[0] == 0
    assert s.app_hits_settled(6) == ["GET /api/calls/x 200"] * 3 + ["GET /api/calls/y 200"] * 3


def test_empty_subject_is_anonymous_never_a_free_pass(mstack):
    s = mstack
    assert_allowed(s.get("/api/calls/a"), "GET", "/api/calls/a")                    # no header
    assert_allowed(s.get("/api/calls/a", headers={"X-Api-Key": ""}), "GET", "/api/calls/a")  # empty
    assert_allowed(s.get("/api/calls/a"), "GET", "/api/calls/a")
    assert_out_of_charge(s.get("/api/calls/a"), "calls")
    assert_out_of_charge(s.get("/api/calls/a", headers={"X-Api-Key": ""}), "calls")
    u = usage(s, None)
    assert u["calls"] == {**u["calls"], "current": 0, "subject": "_anonymous"}
    assert admin_view(s, "_anonymous")["calls"]["current"] == 0
    # a named subject still has a full bucket
    assert usage(s, "dave")["calls"]["current"] == 3
    if s.redis:
        assert s.redis.client.command("KEYS", "charge:calls*") == ["charge:calls:_anonymous"]
    assert len(s.app_hits_settled(3)) == 3


HOSTILE = [
    'quo"te',
    "<script>alert('x')</script>",
    "k" * 5000,
    "ünïcødé-客户",
    "with some spaces",
    "a" * 65,                 # allowed characters, one too many
    "semi;colon,comma",
    "back\\slash",
]


def test_hostile_subjects_become_hashed_keys(mstack):
    s = mstack
    for n, subject in enumerate(HOSTILE):
        hdr = {"X-Api-Key": subject.encode("utf-8")}
        key = h(subject)
        uri = f"/api/calls/h{n}"
        assert_allowed(s.get(uri, headers=hdr), "GET", uri)
        r = s.get("/api/usage", headers=hdr)
        assert r.status == 200, r
        assert_json(r)
        doc = json.loads(r.body)          # stays valid JSON
        by_id = {p["id"]: p for p in doc["pools"]}
        assert by_id["calls"]["subject"] == key, (subject[:40], r)
        assert by_id["calls"]["current"] == 2, r
        assert subject.encode() not in r.body
        if s.redis:
            raw = s.redis.client.get("charge:calls:" + key)
            assert parse_key(raw)[0] == 2, (subject[:40], raw)
    # the edge of the allowed form: 64 allowed characters (and e-mail-like ids) stay as they are
    for n, subject in enumerate(["b" * 64, "user@example.com", "org:42.team_A-1"]):
        assert_allowed(s.get(f"/api/calls/ok{n}", headers=as_(subject)), "GET", f"/api/calls/ok{n}")
        assert usage(s, subject)["calls"] == {**usage(s, subject)["calls"], "current": 2, "subject": subject}
    if s.redis:
        keys = set(s.redis.client.command("KEYS", "charge:calls:*"))
        expected = {"charge:calls:" + h(x) for x in HOSTILE} | {
            "charge:calls:" + x for x in ["b" * 64, "user@example.com", "org:42.team_A-1"]}
        assert keys == expected
        for k in keys:
            assert re.fullmatch(r"charge:calls:(h:[0-9a-f]{32}|[A-Za-z0-9._:@-]{1,64})", k), k
    # the events carry the key form, never the raw subject
    evs = events(s)
    assert [e["subject"] for e in evs] == [h(x) for x in HOSTILE] + ["b" * 64, "user@example.com", "org:42.team_A-1"]


def test_per_subject_key_lives_until_the_pool_is_full(mstack):
    """quick: 3 charges, one back every 720 ms. The key's PTTL is the time to full; it is gone
    (a full pool) once that time has passed."""
    s = mstack
    for _ in range(3):
        assert_allowed(s.get("/api/quick/t", headers=as_("ttl")), "GET", "/api/quick/t")
    u = usage(s, "ttl")["quick"]
    full_at = u["fullAt"]
    assert full_at is not None and u["current"] < 3
    if s.redis:
        now, [(raw, pttl)] = atomic(s, "charge:quick:ttl")
        current, last = parse_key(raw)
        expected_full = last + (3 - current) * QUICK_MS
        assert expected_full == full_at
        assert abs(pttl - (expected_full - now)) <= 50, (pttl, expected_full - now, raw)
        assert 0 < pttl <= 3 * QUICK_MS
        # another subject's key has its own TTL: one spend from full = one interval
        assert_allowed(s.get("/api/quick/t", headers=as_("ttl2")), "GET", "/api/quick/t")
        now, [(raw2, pttl2)] = atomic(s, "charge:quick:ttl2")
        c2, last2 = parse_key(raw2)
        assert c2 == 2
        assert abs(pttl2 - (last2 + QUICK_MS - now)) <= 50, (pttl2, raw2)

        def gone():
            return s.redis.client.command("EXISTS", "charge:quick:ttl") == 0

        wait_until(gone, 5, interval=0.005, what="the per-subject key to expire")
        vanished = s.redis.client.now_ms()
        assert vanished >= full_at - 50, (vanished, full_at)
        assert vanished <= full_at + 300, (vanished, full_at)
    else:
        time.sleep(max(0, full_at - time.time() * 1000) / 1000 + 0.05)
    assert usage(s, "ttl")["quick"] == limited("quick", 3, 3, 0.0002, subject="ttl")


# --------------------------------------------------------------------------------------------
# 2. cost


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


def test_cost_on_a_credits_pool_is_402_and_spends_nothing(mstack):
    s = mstack
    for _ in range(6):
        assert s.get("/api/credits/x", headers=as_("eve")).status == 200   # 10 -> 4
    raw_before = s.redis.client.get("charge:credits:eve") if s.redis else None
    assert_402(s.get("/api/credits5/x", headers=as_("eve")), "credits", 4, 5)
    assert usage(s, "eve")["credits"] == limited("credits", 4, 10, None, subject="eve")
    if s.redis:
        assert s.redis.client.get("charge:credits:eve") == raw_before
        assert parse_key(raw_before)[0] == 4
        # a pool that never refills keeps its key (no TTL)
        assert s.redis.client.command("PTTL", "charge:credits:eve") == -1
    assert len(s.app_hits_settled(6)) == 6


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
    assert [ev_tuple(e) for e in evs] == [
        t for i in (1, 2, 3) for t in [("bulk", "fay", 2, "/api/mixed", "POST", f"/api/mixed/{i}", ""),
                                       ("credits", "fay", 3, "/api/mixed", "POST", f"/api/mixed/{i}", "")]]
    check_event_ids(evs)


# --------------------------------------------------------------------------------------------
# 3. idempotency


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
    assert [ev_tuple(e) for e in events(s)] == [
        ("calls", "gus", 1, "/api/calls", "POST", "/api/calls/o", "order-1"),
        ("calls", "gus", 1, "/api/calls", "POST", "/api/calls/o", "order-2"),
        ("calls", "hal", 1, "/api/calls", "POST", "/api/calls/o", "order-1"),
        ("calls", "hal", 1, "/api/calls", "POST", "/api/calls/o", h(long_key)),
    ]
    assert len(s.app_hits_settled(8)) == 8
    if s.redis:
        fp = fingerprint("/api/calls", "*", "POST", "/api/calls/o")
        records = {idem_record("gus", "order-1"): 3, idem_record("gus", "order-2"): 0,
                   idem_record("hal", "order-1"): 0, idem_record("hal", long_key): 1}
        assert set(s.redis.client.command("KEYS", "charge:#idem:*")) == set(records)
        now, got = atomic(s, *sorted(records))
        for (key, repeats), (raw, pttl) in zip(sorted(records.items()), got):
            # the record holds the request it belongs to and its free repeats so far; it lives
            # idempotencyTtlSeconds from the spend
            assert raw == f"{fp}:{repeats}", (key, raw)
            assert IDEM_TTL_S * 1000 - 10_000 < pttl <= IDEM_TTL_S * 1000, pttl


def test_concurrent_retries_with_one_key_spend_once(mstack):
    s = mstack
    n = 20
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def one(i):
        barrier.wait(5)
        results[i] = s.post("/api/bulk/pay", headers={"Idempotency-Key": "pay-7f3a", "X-Api-Key": "ivy"})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for r in results:
        assert_allowed(r, "POST", "/api/bulk/pay")
    assert usage(s, None)["bulk"]["current"] == 9
    evs = events(s)
    assert [ev_tuple(e) for e in evs] == [("bulk", "ivy", 1, "/api/bulk", "POST", "/api/bulk/pay", "pay-7f3a")]
    assert len(s.app_hits_settled(n)) == n
    if s.redis:
        assert parse_key(s.key("bulk"))[0] == 9
        assert s.redis.client.command("KEYS", "charge:#idem:*") == [idem_record("ivy", "pay-7f3a")]
        assert s.redis.client.command("XLEN", "charge:#events") == 1


def test_a_denied_request_repeated_is_decided_afresh(mstack):
    s = mstack
    for k in ("a", "b"):
        assert s.post("/api/credits5/x", headers=as_("jo", {"Idempotency-Key": k})).status == 200  # 10 -> 0
    hdr = as_("jo", {"Idempotency-Key": "retry-me"})
    assert_402(s.post("/api/credits5/x", headers=hdr), "credits", 0, 5)
    assert_402(s.post("/api/credits5/x", headers=hdr), "credits", 0, 5)
    if s.redis:
        assert s.redis.client.command("EXISTS", idem_record("jo", "retry-me")) == 0
    # top off 5: the same key now passes, once
    r = topoff(s, {"poolId": "credits", "subject": "jo", "amount": 5})
    assert states(r)["credits"]["current"] == 5
    assert_allowed(s.post("/api/credits5/x", headers=hdr), "POST", "/api/credits5/x")
    assert_allowed(s.post("/api/credits5/x", headers=hdr), "POST", "/api/credits5/x")
    assert usage(s, "jo")["credits"]["current"] == 0
    if s.redis:
        assert s.redis.client.command("EXISTS", idem_record("jo", "retry-me")) == 1
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


# --------------------------------------------------------------------------------------------
# 4. 402 over 429


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
    raw = (s.redis.client.get("charge:calls:kim"), s.redis.client.get("charge:credits:kim")) if s.redis else None
    for method in ("GET", "POST"):
        r = s.request(method, "/api/paid/now", headers=as_("kim"))
        assert_402(r, "credits", 2, 4)
        assert r.header("Content-Type") == "application/json"
    assert usage(s, "kim") == before
    if s.redis:
        assert (s.redis.client.get("charge:calls:kim"), s.redis.client.get("charge:credits:kim")) == raw
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


# --------------------------------------------------------------------------------------------
# 5. unlimited


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
        now, [(raw, pttl)] = atomic(s, "charge:meter:max")
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


# --------------------------------------------------------------------------------------------
# 6. balances


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
        assert parse_key(s.redis.client.get("charge:calls:nia")) == (2, last_calls)
        assert parse_key(s.key("bulk")) == (8, last_bulk)
        assert parse_key(s.redis.client.get("charge:credits:nia"))[0] == 7
        assert parse_key(s.redis.client.get("charge:meter:nia"))[0] == 3
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


def test_admin_view_needs_the_token(mstack):
    s = mstack
    assert s.get("/api/calls/1", headers=as_("pat")).status == 200
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN + "x"},
                    {"Authorization": TOKEN}, {"Authorization": "bearer " + TOKEN},
                    {"Authorization": "Bearer " + TOKEN[:-1]}, as_("pat")]:
        r = s.get("/api/usage?subject=pat", headers=headers)
        assert r.status == 401, (headers, r)
        assert_json(r)
        assert r.body == UNAUTHORIZED, r
        assert r.header("WWW-Authenticate") == "Bearer", r
    # the caller's own view needs no token
    assert usage(s, "pat")["calls"]["current"] == 2


# --------------------------------------------------------------------------------------------
# 7. top-off


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
        assert parse_key(s.redis.client.get("charge:credits:quin"))[0] == 10
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
        now, [(raw, pttl)] = atomic(s, "charge:calls:quin")
        c, last = parse_key(raw)
        assert c == 1
        assert abs(pttl - (last + 2 * 24 * HOUR_MS - now)) <= 50, (pttl, raw)
    # nginx may answer the denial it cached for up to edgeDenySeconds (1 s) after a top-off
    assert_allowed(after_denials(lambda: s.get("/api/calls/x", headers=as_("quin")), 1.5), "GET", "/api/calls/x")
    r = topoff(s, {"poolId": "calls", "subject": "quin"})
    assert states(r) == {"calls": limited("calls", 3, 3, 24, subject="quin")}
    if s.redis:
        assert s.redis.client.command("EXISTS", "charge:calls:quin") == 0
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
        assert s.redis.client.command("KEYS", "charge:*") == []


def test_admin_endpoints_are_off_without_admin_token(make_stack):
    s = make_stack(CONFIG, settings="eventsMaxLen: 1000\n", extra=EXTRA)
    for r in [topoff(s, {"poolId": "bulk"}), topoff(s, {"poolId": "bulk"}, headers={}),
              s.get("/api/usage/events", headers=ADMIN), s.get("/api/usage/events"),
              s.get("/api/usage?subject=x", headers=ADMIN)]:
        assert r.status == 403, r
        assert_json(r)
        assert r.body == FORBIDDEN_OFF, r
    assert usage(s, "x")["calls"]["current"] == 3


def test_admin_endpoints_are_loopback_only(rstack):
    """The shipped snippet allows 127.0.0.1 and ::1 only: a client on 127.0.0.2 (still
    loopback) gets nginx's own 403 for top-off and events, token or not."""
    s = rstack
    for _ in range(3):
        assert s.get("/api/calls/x", headers=as_("ray")).status == 200
    body = json.dumps({"poolId": "calls", "subject": "ray"}).encode()
    log_before = s.responder.log_text().count("top-off")
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"}, body=body, source="127.0.0.2")
    assert r.status == 403, r
    assert b"403 Forbidden" in r.body and r.header("Content-Type") == "text/html", r
    r = s.get("/api/usage/events", headers=ADMIN, source="127.0.0.2")
    assert r.status == 403, r
    assert b"403 Forbidden" in r.body, r
    assert usage(s, "ray")["calls"]["current"] == 0
    assert s.responder.log_text().count("top-off") == log_before
    # the usage view is not restricted to loopback
    r = s.get("/api/usage", headers=as_("ray"), source="127.0.0.2")
    assert states(r)["calls"]["current"] == 0
    edge = [e for e in s.edge_log() if e["uri"].startswith("/api/usage/")]
    assert [(e["method"], e["uri"], e["status"]) for e in edge] == [
        ("POST", "/api/usage/topoff", 403), ("GET", "/api/usage/events", 403)]
    # from 127.0.0.1 with the token: 200
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"}, body=body, source="127.0.0.1")
    assert states(r) == {"calls": limited("calls", 3, 3, 24, subject="ray")}
    r = s.get("/api/usage/events", headers=ADMIN, source="127.0.0.1")
    assert r.status == 200, r
    assert len(r.json()["events"]) == 3


# --------------------------------------------------------------------------------------------
# 8. events


SUBJECTS = ["u0", "u1", "u2", None]    # None: no header (_anonymous)


def _plan(i: int, j: int):
    """Request j of thread i: (method, uri, route, subject, idempotency key or None)."""
    subject = SUBJECTS[i % 4]
    slot = j % 5
    if slot == 0:
        return ("GET" if j % 2 == 0 else "POST"), f"/api/calls/{i}-{j}", "/api/calls", subject, None
    if slot == 1:
        return ("GET" if j % 2 == 0 else "POST"), f"/api/meter/{i}-{j}", "/api/meter", subject, None
    if slot == 2:
        return ("GET" if j % 2 == 0 else "POST"), f"/api/mixed/{i}-{j}", "/api/mixed", subject, None
    key = f"k-{j % 10}-{(j // 10) % 2}"
    route = "/api/calls" if slot == 3 else ("/api/meter" if j % 10 == 4 else "/api/mixed")
    return "POST", f"{route}/idem/{key}", route, subject, key


def test_events_match_the_spends_of_a_concurrent_run(mstack):
    s = mstack
    n_threads, per = 8, 25
    results = {}
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def run(i):
        barrier.wait(10)
        for j in range(per):
            method, uri, route, subject, key = _plan(i, j)
            extra = {"Idempotency-Key": key} if key else {}
            r = s.request(method, uri, headers=as_(subject, extra))
            with lock:
                results[(i, j)] = r.status

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert len(results) == n_threads * per, elapsed
    assert set(results.values()) <= {200, 429, 402}, Counter(results.values())
    assert Counter(results.values())[429] > 0, Counter(results.values())   # calls ran out: denials happened

    # The spends that happened, from the answers: every allowed request without a key, and for
    # each (subject, route, key) with at least one allowed request, exactly one spend.
    expected = Counter()
    groups = defaultdict(list)
    for (i, j), status in results.items():
        method, uri, route, subject, key = _plan(i, j)
        subj = subject or "_anonymous"
        if key:
            groups[(subj, route, key, method, uri)].append(status)
        elif status == 200:
            for pool, amount in ROUTE_POOLS[route]:
                expected[(pool, subj, amount, route, method, uri, "")] += 1
    for (subj, route, key, method, uri), statuses in groups.items():
        if 200 in statuses:
            for pool, amount in ROUTE_POOLS[route]:
                expected[(pool, subj, amount, route, method, uri, key)] += 1

    evs = events(s, limit=7)
    assert Counter(ev_tuple(e) for e in evs) == expected
    check_event_ids(evs)
    assert events(s, limit=1000) == evs
    assert events(s) == evs
    # and what the pools say agrees: 3 calls per subject, bulk emptied by 5 mixed spends of 2
    per_subject_calls = Counter(e["subject"] for e in evs if e["pool"] == "calls")
    assert per_subject_calls == {"u0": 3, "u1": 3, "u2": 3, "_anonymous": 3}
    assert sum(e["amount"] for e in evs if e["pool"] == "bulk") == 10
    meters = [(i, j) for (i, j) in results if _plan(i, j)[2] == "/api/meter"]
    assert all(results[k] == 200 for k in meters)
    for subject in SUBJECTS:
        subj = subject or "_anonymous"
        u = admin_view(s, subj)
        assert u["calls"]["current"] == 0
        assert u["credits"]["usedBalance"] == sum(e["amount"] for e in evs if e["pool"] == "credits" and e["subject"] == subj)
        assert u["meter"]["usedBalance"] == sum(e["amount"] for e in evs if e["pool"] == "meter" and e["subject"] == subj)
    assert len(s.app_hits_settled(sum(1 for v in results.values() if v == 200), timeout=3)) == \
        sum(1 for v in results.values() if v == 200)
    if s.redis:
        assert s.redis.client.command("XLEN", "charge:#events") == len(evs)

    # filters
    assert events(s, limit=7, pool="calls") == [e for e in evs if e["pool"] == "calls"]
    assert events(s, limit=7, subject="u1") == [e for e in evs if e["subject"] == "u1"]
    assert events(s, limit=5, subject="_anonymous", pool="credits") == [
        e for e in evs if e["subject"] == "_anonymous" and e["pool"] == "credits"]
    assert events(s, pool="nope") == []
    assert events(s, subject="nobody") == []
    t_mid = evs[len(evs) // 2]["time"]
    t_q = evs[len(evs) // 4]["time"]
    assert events(s, limit=7, since=t_mid) == [e for e in evs if e["time"] >= t_mid]
    assert events(s, limit=7, until=t_mid) == [e for e in evs if e["time"] <= t_mid]
    assert events(s, limit=3, since=t_q, until=t_mid, pool="meter") == [
        e for e in evs if t_q <= e["time"] <= t_mid and e["pool"] == "meter"]
    assert events(s, since=evs[-1]["time"] + 1) == []
    assert events(s, until=evs[0]["time"] - 1) == []
    # after= resumes strictly after an id
    assert events(s, limit=50, after=evs[9]["id"]) == evs[10:]

    # bad queries
    for q in ["limit=0", "limit=1001", "limit=x", "since=-1", "until=abc", "after=nope", "after=1-2-3"]:
        r = s.get("/api/usage/events?" + q, headers=ADMIN)
        assert r.status == 400, (q, r)
        assert_json(r)
        assert r.json()["error"] == "bad_request", (q, r)
    for headers in [{}, {"Authorization": "Bearer x"}]:
        r = s.get("/api/usage/events", headers=headers)
        assert r.status == 401 and r.body == UNAUTHORIZED, r


def test_no_event_log_when_events_max_len_is_0(make_stack):
    for redis in (True, False):
        s = make_stack(CONFIG, redis=redis, settings=f'adminToken: "{TOKEN}"\neventsMaxLen: 0\n', extra=EXTRA)
        assert s.get("/api/calls/x", headers=as_("sam")).status == 200
        assert s.post("/api/mixed/x", headers=as_("sam", {"Idempotency-Key": "k"})).status == 200
        assert s.get("/api/meter/x").status == 200
        r = s.get("/api/usage/events", headers=ADMIN)
        assert r.status == 200, r
        assert_json(r)
        assert r.body == b'{"events":[],"next":null}', r
        assert usage(s, "sam")["credits"]["current"] == 7
        if redis:
            keys = s.redis.client.command("KEYS", "*")
            assert "charge:#events" not in keys, keys
            assert sorted(keys) == sorted(["charge:calls:sam", "charge:bulk", "charge:credits:sam", "charge:meter:_anonymous",
                                           idem_record("sam", "k"), "charge:#idemq:sam"])
