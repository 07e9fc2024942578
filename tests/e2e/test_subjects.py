"""Subjects (docs/http.md): each subject has its own bucket of a per-subject pool, and the
bucket's key lives until the pool is full again; an empty subject is `_anonymous`, never a free
pass; a subject outside [A-Za-z0-9._:@-]{1,64} is keyed by its hash (`h:` + 32 hex), and neither
a client sending another subject's hashed form nor an admin call naming a literal `h:...`
subject reaches that subject's buckets (the hostile-input reviews' reproductions).

Through real nginx on both stores, on the metering stacks of metering_support.py (the subject
is the caller's X-Api-Key).
"""

from __future__ import annotations

import json
import re
import time

from harness import (
    allowed_within,
    assert_allowed,
    assert_json,
    assert_out_of_charge,
    fetch_events,
    wait_until,
)
from metering_support import (
    ADMIN,
    QUICK_MS,
    TOKEN,
    admin_view,
    as_,
    atomic,
    events,
    h,
    limited,
    parse_key,
    usage,
    usage_of,
)


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
        keys = sorted(s.redis_keys("calls*"))
        assert keys == [s.keys.bucket("calls", "alice"), s.keys.bucket("calls", "bob")]
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
        assert s.redis_keys("calls*") == [s.keys.bucket("calls", "_anonymous")]
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
            raw = s.key("calls:" + key)
            assert parse_key(raw)[0] == 2, (subject[:40], raw)
    # the edge of the allowed form: 64 allowed characters (and e-mail-like ids) stay as they are
    for n, subject in enumerate(["b" * 64, "user@example.com", "org:42.team_A-1"]):
        assert_allowed(s.get(f"/api/calls/ok{n}", headers=as_(subject)), "GET", f"/api/calls/ok{n}")
        assert usage(s, subject)["calls"] == {**usage(s, subject)["calls"], "current": 2, "subject": subject}
    if s.redis:
        keys = set(s.redis_keys("calls:*"))
        expected = {s.keys.bucket("calls", h(x)) for x in HOSTILE} | {
            s.keys.bucket("calls", x) for x in ["b" * 64, "user@example.com", "org:42.team_A-1"]}
        assert keys == expected
        form = r"(h:[0-9a-f]{32}|[A-Za-z0-9._:@-]{1,64})"
        for k in keys:
            assert re.fullmatch(re.escape(s.keys.prefix + "calls:") + (r"\{" + form + r"\}" if s.cluster else form), k), k
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
        now, [(raw, pttl)] = atomic(s, s.keys.named("quick:ttl"))
        current, last = parse_key(raw)
        expected_full = last + (3 - current) * QUICK_MS
        assert expected_full == full_at
        assert abs(pttl - (expected_full - now)) <= 50, (pttl, expected_full - now, raw)
        assert 0 < pttl <= 3 * QUICK_MS
        # another subject's key has its own TTL: one spend from full = one interval
        assert_allowed(s.get("/api/quick/t", headers=as_("ttl2")), "GET", "/api/quick/t")
        now, [(raw2, pttl2)] = atomic(s, s.keys.named("quick:ttl2"))
        c2, last2 = parse_key(raw2)
        assert c2 == 2
        assert abs(pttl2 - (last2 + QUICK_MS - now)) <= 50, (pttl2, raw2)

        def gone():
            return s.redis.client.command("EXISTS", s.keys.named("quick:ttl")) == 0

        wait_until(gone, 5, interval=0.005, what="the per-subject key to expire")
        vanished = s.redis.client.now_ms()
        assert vanished >= full_at - 50, (vanished, full_at)
        assert vanished <= full_at + 300, (vanished, full_at)
    else:
        time.sleep(max(0, full_at - time.time() * 1000) / 1000 + 0.05)
    assert usage(s, "ttl")["quick"] == limited("quick", 3, 3, 0.0002, subject="ttl")


# Hostile-input review (issue 14, row 4 in RELIABILITY.md): a subject sent in the hashed
# form shared the victim's bucket.
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


# Hostile-input review (issue 20, row 10): admin calls took a subject that looked hashed as a
# key form: a top-off for the subject literally named `h:<32 hex>` refilled the customer
# whose key form that is.
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
