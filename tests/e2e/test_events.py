"""Usage events (GET /api/usage/events, docs/http.md): one event per spend, per pool, with
the subject's key form, the route, method, URI and idempotency key; their ids strictly
increasing; exactly the spends of a concurrent mixed run (with retries); filters by pool,
subject, since, until; paging with limit and after; bad queries 400; no log at all with
eventsMaxLen: 0. Both stores, the metering stack of metering_support.py.

Elsewhere: `charge-gate events` (the export) in test_events_export.py; the events of each
behaviour (cost, subjects, top-off...) in its own test; the plan in events in test_plans.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

from harness import assert_json
from metering_support import (
    ADMIN,
    CONFIG,
    EXTRA,
    ROUTE_POOLS,
    TOKEN,
    UNAUTHORIZED,
    admin_view,
    as_,
    check_event_ids,
    ev_tuple,
    events,
    given_back,
    idem_record,
    usage,
)


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
    # On a cluster /api/mixed's bulk lives in another slot than the subject's credits: a spend
    # whose credits said no (402), or that a racing retry answered (a repeat), gave bulk's slot
    # back (a spend and its refund, SPEC §12). What stands is exactly the spends above.
    standing, cancelled = given_back(evs)
    assert Counter(ev_tuple(e) for e in standing) == expected
    assert s.cluster or not cancelled, cancelled
    assert all(a["pool"] == "bulk" and a["route"] == "/api/mixed" for a, _ in cancelled), cancelled
    check_event_ids(evs, s.cluster)
    assert events(s, limit=1000) == evs
    assert events(s) == evs
    # and what the pools say agrees: 3 calls per subject, bulk emptied by 5 mixed spends of 2
    per_subject_calls = Counter(e["subject"] for e in standing if e["pool"] == "calls")
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
        assert s.events_len() == len(evs)

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
    # after= resumes strictly after an id (on a cluster, events of several slots may share one)
    def id_key(e):
        return tuple(int(x) for x in e["id"].split("-"))

    assert events(s, limit=50, after=evs[9]["id"]) == [e for e in evs if id_key(e) > id_key(evs[9])]
    assert s.cluster or [e for e in evs if id_key(e) > id_key(evs[9])] == evs[10:]

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
            keys = s.redis_keys()
            assert not [k for k in keys if k.startswith(s.keys.events)], keys
            k = s.keys
            if s.cluster:
                # /api/mixed's bulk lives in another slot than sam's keys: its spend there records a
                # step hold (given back had sam's slot said no), which lapses (SPEC §12)
                keys = [key for key in keys if not key.startswith(k.prefix + "#step:")]
            assert keys == sorted([k.bucket("calls", "sam"), k.bucket("bulk"), k.bucket("credits", "sam"),
                                   k.bucket("meter", "_anonymous"), idem_record(s, "sam", "k"),
                                   k.idempotency_quota("sam")])
