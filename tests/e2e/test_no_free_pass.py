"""The hostile-input review's reproductions (issue 14), through real nginx, on the Redis store
and, where the hole was in shared code, on the memory store too. Each test is the attack as it
was reproduced; before the fix each one passed requests to the app uncharged or broke the
gate. Now every one ends in a denial, a 422, or an untouched victim.

The subject is the caller's API key (X-Api-Key), as an operator with header subjects sets it.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from harness import allowed_within, assert_allowed, assert_json, assert_out_of_charge, fetch_events

TOKEN = "s3cret-admin.Token_42"
ADMIN = {"Authorization": "Bearer " + TOKEN}

SETTINGS = f"""\
adminToken: "{TOKEN}"
idempotencyTtlSeconds: 300
idempotencyMaxRepeats: 3
idempotencyMaxKeysPerSubject: 5
eventsMaxLen: 100000
"""

CONFIG = """\
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

EXTRA = """\
        set $charge_gate_subject $http_x_api_key;
"""

REUSED = b'{"error":"idempotency_key_reused"}'


def h(text: str) -> str:
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def as_(subject: str | None, key: str | None = None) -> dict:
    headers = {} if subject is None else {"X-Api-Key": subject}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def assert_reused(r):
    assert r.status == 422, r
    assert_json(r)
    assert r.body == REUSED, r
    assert r.header("Retry-After") is None, r


def usage_of(s, subject: str | None) -> dict:
    r = s.get("/api/usage", headers=as_(subject))
    assert r.status == 200, r
    return {p["id"]: p for p in r.json()["pools"]}


@pytest.fixture
def st(any_store):
    return any_store(CONFIG, settings=SETTINGS, extra=EXTRA)


@pytest.fixture
def rst(make_stack):
    return make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)


# 1. A reused Idempotency-Key was unlimited free passes to other URIs under the route.
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


# 2. Routes with one prefix and different methods shared the record.
def test_a_key_from_the_get_route_gives_no_free_post(st):
    s = st
    assert_allowed(s.get("/api/dc", headers=as_("mallory", "K2")), "GET", "/api/dc")
    assert_allowed(s.post("/api/dc", headers=as_("mallory")), "POST", "/api/dc")  # small: 1 -> 0
    hits = len(s.app_hits_settled(2))
    for _ in range(5):
        assert_reused(s.post("/api/dc", headers=as_("mallory", "K2")))
    assert len(s.app_hits_settled()) == hits
    assert_out_of_charge(s.post("/api/dc", headers=as_("mallory", "K3")), "small")


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


# 4. A subject sent in the hashed form shared the victim's bucket.
def test_a_subject_in_the_hashed_form_cannot_drain_the_victim(st):
    s = st
    victim = "victim key/with spaces"
    assert_allowed(s.post("/api/paid", headers=as_(victim)), "POST", "/api/paid")
    shown = usage_of(s, victim)["perkey"]["subject"]
    assert shown == h(victim)
    # The attacker sends the victim's hashed form, as usage JSON and events show it.
    for _ in range(3):
        r = s.post("/api/paid", headers=as_(shown))
        assert r.status == 200, r
    assert_out_of_charge(s.post("/api/paid", headers=as_(shown)), "perkey")
    # The victim's buckets are untouched: two charges and nine credits left.
    mine = usage_of(s, victim)
    assert (mine["perkey"]["current"], mine["credits"]["current"]) == (2, 9)
    assert usage_of(s, shown)["perkey"]["subject"] == h(shown)
    for _ in range(2):
        assert s.post("/api/paid", headers=as_(victim)).status == 200
    # An admin may still name the victim by the hashed form, as a key form (subjectKey).
    r = s.get("/api/usage?subjectKey=" + shown, headers=ADMIN)
    assert {p["id"]: p for p in r.json()["pools"]}["credits"]["current"] == 7


# 5. Internal keys shared the pools' namespace: a pool `events` broke the event stream, a
#    per-subject pool `idem` could be reached by a crafted subject.
def test_pools_named_events_and_idem_never_meet_internal_keys(rst):
    s = rst
    for i in range(3):
        assert_allowed(s.post(f"/api/ev/{i}", headers=as_("e")), "POST", f"/api/ev/{i}")
        assert_allowed(s.post(f"/api/idem/{i}", headers=as_("e", f"key-{i}")), "POST", f"/api/idem/{i}") if i < 2 else None
    c = s.redis.client
    assert c.command("TYPE", "charge:events") == "string"
    assert json.loads(c.command("GET", "charge:events"))["current"] == 47
    assert c.command("TYPE", "charge:#events") == "stream"
    assert c.command("XLEN", "charge:#events") == 3 + 2 * 2
    assert sorted(c.command("KEYS", "charge:#idem:*")) == sorted(
        "charge:#idem:" + hashlib.sha256(f"e\nkey-{i}".encode()).hexdigest()[:32] for i in range(2))
    assert c.command("TYPE", "charge:idem:e") == "string"  # the pool's own bucket
    # Every spend keeps working, and the export has every event.
    assert_allowed(s.post("/api/ev/4", headers=as_("e")), "POST", "/api/ev/4")
    assert len(fetch_events(s, TOKEN)) == 3 + 4 + 1


def test_events_written_before_the_upgrade_stay_exportable(make_stack):
    cfg = CONFIG.replace("  - id: events\n", "  - id: evpool\n").replace("pools: [events]", "pools: [evpool]")
    s = make_stack(cfg, settings=SETTINGS, extra=EXTRA)
    c = s.redis.client
    c.command("XADD", "charge:events", "1000-0", "pool", "perkey", "subject", "old", "amount", "1", "route", "/api/plain",
              "method", "POST", "uri", "/api/plain/old", "idem", "", "time", "1000")
    assert_allowed(s.post("/api/plain/new", headers=as_("new")), "POST", "/api/plain/new")
    evs = fetch_events(s, TOKEN)
    assert [(e["subject"], e["uri"]) for e in evs] == [("old", "/api/plain/old"), ("new", "/api/plain/new")]
    assert c.command("XLEN", "charge:events") == 1, "the old stream is read, never written"


# 6. Idempotency keys on an always-allowed route added Redis keys without bound.
def test_idempotency_records_per_subject_are_bounded(rst):
    s = rst
    for i in range(40):
        assert_allowed(s.post("/api/meter", headers=as_("flooder", f"k-{i}")), "POST", "/api/meter")
    c = s.redis.client
    assert len(c.command("KEYS", "charge:#idem:*")) == 5
    assert c.command("GET", "charge:#idemq:flooder") == "40"
    # Another subject has its own allowance of records.
    assert_allowed(s.post("/api/meter", headers=as_("other", "k-0")), "POST", "/api/meter")
    assert len(c.command("KEYS", "charge:#idem:*")) == 6
    # Keys past the bound are not remembered: their repeats are charged (counted), never free.
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 40
    assert_allowed(s.post("/api/meter", headers=as_("flooder", "k-39")), "POST", "/api/meter")
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 41
    assert_allowed(s.post("/api/meter", headers=as_("flooder", "k-0")), "POST", "/api/meter")
    assert usage_of(s, "flooder")["meter"]["usedBalance"] == 41


# 7. The idempotency fingerprint left out the query: `?prompt=b` with the key of `?prompt=a`
#    was replayed free while the app did new work.
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


# 8. Admin calls took a subject that looked hashed as a key form: a top-off for the subject
#    literally named `h:<32 hex>` refilled the customer whose key form that is.
def test_an_admin_call_for_a_literal_hashed_subject_never_touches_the_victim(st):
    s = st
    victim = "victim key/with spaces"
    for _ in range(3):
        assert s.post("/api/plain", headers=as_(victim)).status == 200
    assert_out_of_charge(s.post("/api/plain", headers=as_(victim)), "perkey")
    literal = h(victim)  # a subject nginx may pass as it is: another customer's API key, say
    assert s.post("/api/plain", headers=as_(literal)).status == 200

    def topoff(body: dict):
        return s.request("POST", "/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"},
                         body=json.dumps(body).encode())

    r = topoff({"poolId": "perkey", "subject": literal})
    assert r.status == 200, r
    assert r.json()["subject"] == h(literal), r
    assert_out_of_charge(s.post("/api/plain", headers=as_(victim)), "perkey")
    assert usage_of(s, victim)["perkey"]["current"] == 0
    # Reads and the events filter name the literal subject too.
    r = s.get("/api/usage?subject=" + literal, headers=ADMIN)
    assert {p["id"]: p for p in r.json()["pools"]}["perkey"]["subject"] == h(literal), r
    assert {e["subject"] for e in fetch_events(s, TOKEN, pool="perkey", subject=literal)} == {h(literal)}
    # The victim is reached only by its key form, named as such.
    r = topoff({"poolId": "perkey", "subjectKey": literal})
    assert r.status == 200, r
    assert r.json()["subject"] == literal, r
    assert usage_of(s, victim)["perkey"]["current"] == 3
    allowed_within(lambda: s.post("/api/plain", headers=as_(victim)), "perkey", 2.5, "the victim's top-off did not show")
    assert {e["subject"] for e in fetch_events(s, TOKEN, pool="perkey", subjectKey=literal)} == {literal}
    # A key form that is none, or both names at once, is a 400.
    for body, message in [({"poolId": "perkey", "subjectKey": "h:ABC"}, "subjectKey: "),
                          ({"poolId": "perkey", "subject": "a", "subjectKey": "a"}, "subject, subjectKey: ")]:
        r = topoff(body)
        assert r.status == 400 and r.json()["message"].startswith(message), r
