"""The metering stacks several test modules share (subjects, cost, credits, idempotency,
unlimited pools, usage, top-off, admin endpoints, events; docs/http.md, docs/redis.md), and
their helpers. conftest.py makes the stacks: `mstack` (each store) and `rstack` (Redis only) on
CONFIG, `st` and `rst` on REVIEW_CONFIG.

The subject is chosen per request with X-Api-Key: the stacks set
`$charge_gate_subject $http_x_api_key` at server level (EXTRA slot), so the protected /api/
location and the shipped usage locations (/api/usage, topoff, events) all see it; a request
without the header has an empty subject (`_anonymous`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from harness import assert_json, fetch_events, key_slot

TOKEN = "s3cret-admin.Token_42"
ADMIN = {"Authorization": "Bearer " + TOKEN}
HOUR_MS = 3_600_000
QUICK_MS = 720  # 0.0002 h
IDEM_TTL_S = 300

SETTINGS = f"""\
adminToken: "{TOKEN}"
idempotencyTtlSeconds: {IDEM_TTL_S}
# 20 racing retries of one request (test_idempotency.py): each of the 19 repeats is within the bound.
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


def idem_record(stack, subject: str, key: str) -> str:
    """The record of one client key of one subject on `stack` (KeySpace.idempotency)."""
    return stack.keys.idempotency(subject, key)


def fingerprint(route: str, methods: str, method: str, uri: str) -> str:
    """What the record binds: the route itself (prefix and methods), the method and the URI."""
    fields = [f"{route} {methods}", method, uri]
    return hashlib.sha256("".join(f"{len(f.encode())}:{f}" for f in fields).encode()).hexdigest()[:32]


def as_(subject, extra: dict | str | None = None) -> dict:
    """Headers for a request as `subject` (None: no X-Api-Key header at all). `extra`: more
    headers, or a string: the Idempotency-Key."""
    headers = {} if subject is None else {"X-Api-Key": subject}
    if isinstance(extra, str):
        headers["Idempotency-Key"] = extra
    else:
        headers.update(extra or {})
    return headers


def parse_key(raw: str | None):
    if raw is None:
        return None
    m = KEY_RE.match(raw)
    assert m, raw
    return int(m.group(1)), int(m.group(2))


def atomic(stack, *keys):
    """Redis TIME (ms), then GET and PTTL of each key, read atomically in one script. On a
    cluster, one script per slot the keys live in (atomic within each; TIME of the first)."""
    script = ("local t = redis.call('TIME') local out = {t[1], t[2]} "
              "for i = 1, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '' "
              "out[#out + 1] = redis.call('PTTL', KEYS[i]) end return out")
    groups: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(key_slot(k) if stack.cluster else 0, []).append(i)
    now = None
    pairs: list = [None] * len(keys)
    for places in groups.values():
        r = stack.redis.client.command("EVAL", script, len(places), *(keys[i] for i in places))
        if now is None:
            now = int(r[0]) * 1000 + int(r[1]) // 1000
        for j, i in enumerate(places):
            pairs[i] = (r[2 + 2 * j] or None, r[3 + 2 * j])
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


def given_back(evs) -> tuple[list, list]:
    """A cluster's events split into those that stand and the pairs a give-back cancelled: on a
    route whose pools live in different slots, an earlier slot's spend carries a step hold
    (`hold`), and when a later slot says no (or answers a repeat) a `settle` of that hold without
    a status gives it back (SPEC §12). Returns (standing events, [(spend, settle), ...]); every
    such settle must cancel exactly one spend of its hold. On a single node nothing is cancelled."""
    spends = {}
    for e in evs:
        if e["kind"] == "spend" and "hold" in e:
            spends[(e["hold"], e["pool"])] = e
    cancelled = []
    dropped = set()
    for e in evs:
        if e["kind"] == "settle" and "status" not in e and (e.get("hold"), e["pool"]) in spends:
            spend = spends[(e["hold"], e["pool"])]
            if spend["amount"] + e["amount"] == 0:
                assert id(spend) not in dropped, ("a spend given back twice", spend, e)
                cancelled.append((spend, e))
                dropped.add(id(spend))
                dropped.add(id(e))
    return [e for e in evs if id(e) not in dropped], cancelled


def check_event_ids(evs, cluster: bool = False):
    """Ids strictly increasing (ms-seq), each id's ms at or after the event's time. On a cluster
    (`cluster`) the log merges one stream per slot, whose ids may be equal: non-decreasing."""
    prev = (-1, -1)
    for e in evs:
        ms, seq = (int(x) for x in e["id"].split("-"))
        assert (ms, seq) >= prev if cluster else (ms, seq) > prev, evs
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

# --------------------------------------------------------------------------------------------
# the stack of the hostile-input reviews' reproductions (RELIABILITY.md): small pools, at most
# 3 free repeats of one request, at most 5 idempotency records per subject


REVIEW_SETTINGS = f"""\
adminToken: "{TOKEN}"
idempotencyTtlSeconds: 300
idempotencyMaxRepeats: 3
idempotencyMaxKeysPerSubject: 5
eventsMaxLen: 100000
"""

REVIEW_CONFIG = """\
pools:
  - id: small
    maxCharges: 1
    rechargeIntervalHours: 100
  - id: big
    maxCharges: 995
    rechargeIntervalHours: 100
  - id: perkey
    maxCharges: 3
    rechargeIntervalHours: 100
    per: subject
  - id: credits
    maxCharges: 10
    recharge: none
    per: subject
  - id: idem
    maxCharges: 2
    rechargeIntervalHours: 100
    per: subject
  - id: events
    maxCharges: 50
    rechargeIntervalHours: 100
  - id: meter
    maxCharges: unlimited
    per: subject
routes:
  - prefix: /api/small
    pools: [small]
    idempotent: true
  - prefix: /api/dc
    pools: [small]
    methods: [POST]
    idempotent: true
  - prefix: /api/dc
    pools: [big]
    methods: [GET]
    idempotent: true
  - prefix: /api/plain
    pools: [perkey]
  - prefix: /api/paid
    pools: [perkey, credits]
  - prefix: /api/idem
    pools: [idem, credits]
    idempotent: true
  - prefix: /api/ev
    pools: [events]
  - prefix: /api/meter
    pools: [meter]
    idempotent: true
"""

REVIEW_EXTRA = """\
        set $charge_gate_subject $http_x_api_key;
"""


REUSED = b'{"error":"idempotency_key_reused"}'


def assert_reused(r):
    assert r.status == 422, r
    assert_json(r)
    assert r.body == REUSED, r
    assert r.header("Retry-After") is None, r


def usage_of(s, subject: str | None) -> dict:
    """GET /api/usage as `subject`: {poolId: STATE} (key order not checked)."""
    r = s.get("/api/usage", headers=as_(subject))
    assert r.status == 200, r
    return {p["id"]: p for p in r.json()["pools"]}
