"""The gate at the nginx edge: allow, 429, exact waits, multi-pool routes, concurrency, URI
spellings, methods, plain 403s (docs/http.md, docs/redis.md)."""

from __future__ import annotations

import json
import re
import threading
import time

from harness import (
    app_body,
    assert_allowed,
    assert_json,
    assert_out_of_charge,
    assert_unavailable,
    http_request,
)

HOUR_MS = 3_600_000
KEY_RE = re.compile(r'^\{"current":(-?\d+),"lastUpdatedAt":(\d+)\}$')


def now_ms() -> int:
    return int(time.time() * 1000)


def test_allow_then_429_with_exact_body_and_retry_after(stack):
    for _ in range(5):
        assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    last = KEY_RE.match(stack.key("generate-image"))
    assert last and last.group(1) == "0", stack.key("generate-image")
    last_updated = int(last.group(2))

    before = stack.redis.client.now_ms()
    r = stack.post("/api/generate")
    after = stack.redis.client.now_ms()
    n = assert_out_of_charge(r, "generate-image")
    # The wait until one charge is back: lastUpdatedAt + interval - now (Redis clock).
    assert last_updated + 2 * HOUR_MS - after <= n <= last_updated + 2 * HOUR_MS - before, (n, last_updated)

    hits = stack.app_hits_settled(5)
    assert hits == ["POST /api/generate 200"] * 5, hits
    # the denial wrote nothing
    assert KEY_RE.match(stack.key("generate-image")).group(1) == "0"


def test_429_is_json_whatever_the_extension(stack):
    """`types { }` in the named location: a .txt URI must not turn the 429 into text/plain."""
    for _ in range(5):
        assert stack.post("/api/generate/a.txt").status == 200
    r = stack.post("/api/generate/b.txt")
    assert_out_of_charge(r, "generate-image")
    r = stack.post("/api/generate/c.html")
    assert_out_of_charge(r, "generate-image")


def test_the_wait_is_exact(stack):
    """fast: 1 charge, one back every 0.0005 h = 1800 ms."""
    assert_allowed(stack.get("/api/fast"), "GET", "/api/fast")
    n = assert_out_of_charge(stack.get("/api/fast"), "fast")
    assert 1000 < n <= 1800, n
    # Well before the wait is over: still denied, with the rest of the wait.
    time.sleep((n - 700) / 1000)
    n2 = assert_out_of_charge(stack.get("/api/fast"), "fast")
    assert 0 < n2 <= 700, n2
    # Exactly the announced wait later: allowed.
    time.sleep(n2 / 1000)
    assert_allowed(stack.get("/api/fast"), "GET", "/api/fast")
    assert len(stack.app_hits_settled(2)) == 2


def test_multi_pool_route_spends_all_or_nothing(stack):
    # combo-a: 3 / 1 h, combo-b: 1 / 2 h; /api/combo spends from both.
    assert_allowed(stack.get("/api/combo"), "GET", "/api/combo")
    assert stack.state("combo-a")["current"] == 2
    assert stack.state("combo-b")["current"] == 0
    a_before = stack.key("combo-a")

    # combo-b is empty: denied, and combo-a is not touched.
    assert_out_of_charge(stack.get("/api/combo"), "combo-b")
    assert stack.key("combo-a") == a_before
    usage = stack.usage()
    assert usage["combo-a"]["current"] == 2
    assert usage["combo-b"]["current"] == 0

    # Segment matching: /api/combo-a-only is its own route, not /api/combo.
    assert_allowed(stack.get("/api/combo-a-only"), "GET", "/api/combo-a-only")
    assert_allowed(stack.get("/api/combo-a-only"), "GET", "/api/combo-a-only")
    assert stack.state("combo-a")["current"] == 0
    assert_out_of_charge(stack.get("/api/combo-a-only"), "combo-a")

    # Both empty: the denial names the pool with the longest wait (combo-b, 2 h); whichever
    # order the route lists them in: the next test.
    n = assert_out_of_charge(stack.get("/api/combo"), "combo-b")
    assert n > HOUR_MS + 60_000, n
    assert stack.app_hits_settled(3) == ["GET /api/combo 200", "GET /api/combo-a-only 200", "GET /api/combo-a-only 200"]


def test_the_denial_names_the_longest_wait_whichever_the_order(stack):
    """combo-a (3 / 1 h) and combo-b (1 / 2 h), each drained alone: /api/combo-rev and
    /api/combo name combo-b, the wait until both hold a charge (docs/redis.md, the bucket, 4)."""
    for _ in range(3):
        assert_allowed(stack.get("/api/combo-a-only"), "GET", "/api/combo-a-only")
    assert_allowed(stack.get("/api/combo-b-only"), "GET", "/api/combo-b-only")
    for path in ("/api/combo-rev", "/api/combo"):
        n = assert_out_of_charge(stack.get(path), "combo-b")
        assert n > HOUR_MS + 60_000, (path, n)


def test_multi_pool_denial_leaves_the_other_pool_untouched(stack):
    # Drain combo-b alone, then /api/combo must not spend combo-a.
    assert_allowed(stack.get("/api/combo-b-only"), "GET", "/api/combo-b-only")
    assert stack.key("combo-a") is None
    assert_out_of_charge(stack.get("/api/combo"), "combo-b")
    assert_out_of_charge(stack.get("/api/combo-rev"), "combo-b")
    if stack.cluster:
        # combo-a and combo-b live in different slots: /api/combo-rev spends combo-a's slot first,
        # and gives it back when combo-b's says no (SPEC §12): a full pool again, written as such.
        state = stack.state("combo-a")
        assert state is None or state["current"] == 3, state
    else:
        assert stack.key("combo-a") is None  # missing key = full pool, never written
    assert stack.usage()["combo-a"]["current"] == 3


def test_200_concurrent_requests_against_a_pool_of_50(stack):
    n = 200
    results: list[int | None] = [None] * n
    errors: list[str] = []
    barrier = threading.Barrier(n)

    def one(i):
        try:
            barrier.wait(timeout=30)
            r = http_request(stack.port, "POST", f"/api/burst/{i}", timeout=30)
            results[i] = r.status
            if r.status == 200:
                assert r.body == app_body("POST", f"/api/burst/{i}")
            elif r.status == 429:
                assert json.loads(r.body)["poolId"] == "burst"
            else:
                errors.append(f"{i}: {r!r}")
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(f"{i}: {e!r}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:10]
    assert results.count(200) == 50, results
    assert results.count(429) == 150, results
    hits = stack.app_hits_settled(50)
    assert len(hits) == 50, hits
    assert stack.state("burst")["current"] == 0


def test_uri_spellings_spend_the_same_pool(stack):
    spellings = ["/api/generate", "/api//generate", "/api/./generate", "/api/x/../generate", "/api/%67enerate"]
    for i, path in enumerate(spellings):
        r = stack.post(path)
        assert r.status == 200, (path, r)
        assert stack.state("generate-image")["current"] == 4 - i, path
    # Out of charge, whatever the spelling.
    for path in spellings + ["/api/generate/", "/api/generate/x", "/api/generate?x=1", "/api/gener%61te/sub"]:
        assert_out_of_charge(stack.post(path), "generate-image")
    # Not the same route: /api/generated (segment matching) and an unrelated path.
    assert_allowed(stack.post("/api/generated"), "POST", "/api/generated")
    assert stack.state("generate-image")["current"] == 0
    hits = stack.app_hits_settled(6)
    assert [h.split(" ")[1] for h in hits] == spellings + ["/api/generated"], hits


def test_methods_are_honoured(stack):
    # /api/generate is POST-only: GET (and HEAD) are not charged.
    for _ in range(7):
        assert_allowed(stack.get("/api/generate"), "GET", "/api/generate")
    r = stack.request("HEAD", "/api/generate")
    assert r.status == 200, r
    assert stack.key("generate-image") is None
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.state("generate-image")["current"] == 4
    # a route without methods charges every method
    for i, m in enumerate(["GET", "POST", "PUT", "DELETE"]):
        r = stack.request(m, "/api/describe")
        assert r.status == 200, (m, r)
        assert stack.state("describe-image")["current"] == 19 - i, m


def test_request_matching_no_route_passes(stack):
    before = len(stack.app_hits())
    assert_allowed(stack.get("/api/nothing/here"), "GET", "/api/nothing/here")
    assert_allowed(stack.post("/api/other?q=1"), "POST", "/api/other?q=1")
    assert stack.app_hits_settled(before + 2)[-2:] == ["GET /api/nothing/here 200", "POST /api/other?q=1 200"]
    assert stack.redis_keys() == []


def test_redis_key_format(stack):
    before = stack.redis.client.now_ms()
    assert stack.post("/api/generate").status == 200
    after = stack.redis.client.now_ms()
    raw = stack.key("generate-image")
    m = KEY_RE.match(raw)
    assert m, raw
    assert m.group(1) == "4"
    assert before <= int(m.group(2)) <= after, (raw, before, after)
    # A spend on a pool that is not full keeps lastUpdatedAt.
    assert stack.post("/api/generate").status == 200
    assert stack.key("generate-image") == '{"current":3,"lastUpdatedAt":%s}' % m.group(2)


def test_state_written_by_the_reference_library_is_shared(stack):
    """A key in the reference format: partial recharge progress is kept (docs/redis.md, the bucket)."""
    interval = 2 * HOUR_MS
    now = stack.redis.client.now_ms()
    last = now - 2 * interval - 1000  # two charges earned, 1 s of progress towards a third
    stack.redis.client.command("SET", stack.keys.bucket("generate-image"), '{"current":0,"lastUpdatedAt":%d}' % last)
    usage = stack.usage()["generate-image"]
    assert usage["current"] == 2, usage
    assert usage["nextRechargeAt"] == last + 3 * interval, usage
    assert stack.post("/api/generate").status == 200
    assert stack.key("generate-image") == '{"current":1,"lastUpdatedAt":%d}' % (last + 2 * interval)
    assert stack.post("/api/generate").status == 200
    assert_out_of_charge(stack.post("/api/generate"), "generate-image")


def test_client_cannot_forge_the_decision(stack):
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    forged = {
        "X-Charge-Status": "204",
        "X-Charge-Body": '{"ok":true}',
        "X-Charge-Retry-After": "0",
    }
    assert_out_of_charge(stack.post("/api/generate", headers=forged), "generate-image")
    assert len(stack.app_hits_settled()) == 5


def test_plain_403_stays_plain(stack):
    # nginx's own 403 (`deny all` beside the gate)
    r = stack.get("/api/private/x")
    assert r.status == 403, r
    assert r.header("Content-Type") == "text/html", r
    assert b"<center><h1>403 Forbidden</h1></center>" in r.body, r
    assert r.header("Retry-After") is None
    # the app's 403 after an allow, intercepted by nginx
    r = stack.get("/api/app-forbidden")
    assert r.status == 403, r
    assert r.header("Content-Type") == "text/html", r
    assert b"<center><h1>403 Forbidden</h1></center>" in r.body, r
    assert stack.app_hits_settled(1) == ["GET /api/app-forbidden 403"]
    assert stack.state("describe-image")["current"] == 19


def test_plain_500_stays_plain(stack):
    """The 503 guard: a 500 after an allow (the app's, intercepted) is not the responder's."""
    r = stack.get("/api/app-error")
    assert r.status == 500, r
    assert r.header("Content-Type") == "text/html", r
    assert b"<center><h1>500 Internal Server Error</h1></center>" in r.body, r
    assert stack.app_hits_settled(1) == ["GET /api/app-error 500"]


def test_unknown_role_is_never_a_free_pass(stack):
    """protocol.md: no or an unknown CHARGE_GATE_ROLE -> 403 with X-Charge-Status: 503."""
    r = stack.get("/api/misconfigured/x")
    assert_unavailable(r)
    assert stack.app_hits_settled() == []


def test_dev_bypass_never_denies(make_stack):
    s = make_stack(settings="devBypass: true")
    for _ in range(8):
        assert_allowed(s.post("/api/generate"), "POST", "/api/generate")
        assert_allowed(s.get("/api/fast"), "GET", "/api/fast")
    # reads still work
    usage = s.usage()
    assert usage["generate-image"]["max"] == 5
    r = s.get("/api/usage/check?pools=generate-image,fast")
    assert r.status == 200, r
    assert_json(r)
    assert len(s.app_hits_settled(16)) == 16


def test_memory_store_gates_too(make_stack):
    s = make_stack(redis=False)
    for _ in range(5):
        assert_allowed(s.post("/api/generate"), "POST", "/api/generate")
    assert_out_of_charge(s.post("/api/generate"), "generate-image")
    assert s.usage()["generate-image"]["current"] == 0


def test_charged_path_is_exactly_the_one_nginx_routes(stack):
    """nginx hands over $uri already decoded: an encoded `?`, `#` or `%` is part of the path
    there (/api/generate%3fa routes as the path "/api/generate?a", whose segment is
    "generate?a"), so the responder must neither cut it nor decode it again."""
    for path in ["/api/generate%3fa", "/api/generate%23b", "/api/%2567enerate", "/api/generate%2b"]:
        assert_allowed(stack.post(path), "POST", path)
        assert stack.key("generate-image") is None, path
    # ... while an encoded character inside a real segment is the same path
    assert_allowed(stack.post("/api/generate/%3f"), "POST", "/api/generate/%3f")
    assert stack.state("generate-image")["current"] == 4


def test_an_internal_redirect_is_charged_once(stack):
    """try_files sends /api/redir/a/x to /api/redir/b/api/redir/a/x: two access phases, two
    auth subrequests, one client request. redir holds 2 charges: exactly 2 requests pass."""
    for _ in range(2):
        r = stack.get("/api/redir/a/x")
        assert r.status == 200, r
    assert_out_of_charge(stack.get("/api/redir/a/x"), "redir")
    assert stack.state("redir")["current"] == 0
    assert len(stack.app_hits_settled(2)) == 2


def _script_calls(stack) -> int:
    """EVALSHA + EVAL calls Redis has answered so far (every primary's, on a cluster)."""
    return sum(node.script_calls() for node in stack.redis_nodes())


def test_a_flood_on_an_empty_pool_is_denied_from_memory(make_stack):
    """Once a worker has seen a pool empty until T it answers the 429 itself: 4 workers, 400
    denied requests, at most one script call per worker (plus the one that drained the pool).
    Never an allow from memory: after a top-off the next request asks Redis and passes. (nginx's
    own deny cache is off here: test_edge_deny_cache.py covers it.)"""
    stack = make_stack(settings="workers: 4\nadminToken: t0ken\nedgeDenySeconds: 0\n")
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    for _ in range(4):
        assert stack.post("/api/generate").status == 200
    before = _script_calls(stack)
    started = time.monotonic()
    for _ in range(400):
        r = stack.post("/api/generate")
        assert r.status == 429, r
        assert r.json()["poolId"] == "generate-image"
    # A worker trusts what it remembered for at most 1 s (DenyCache.maxAgeMs), then asks once
    # more: one script call per worker per started second (one second on an idle machine).
    seconds = int(time.monotonic() - started) + 1
    assert _script_calls(stack) - before <= 4 * seconds
    assert stack.state("generate-image")["current"] == 0
    r = stack.request("POST", "/api/usage/topoff", headers={"Authorization": "Bearer t0ken"},
                      body=b'{"poolId":"generate-image","amount":1}')
    assert r.status == 200, r
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.post("/api/generate").status == 429
    assert len(stack.app_hits_settled(6)) == 6


def test_two_internal_redirects_are_charged_once(stack):
    """/api/redir/twice/x is redirected twice (three access phases): still one charge each."""
    for _ in range(2):
        r = stack.get("/api/redir/twice/x")
        assert r.status == 200, r
        assert r.header("RateLimit") is not None, r
    assert_out_of_charge(stack.get("/api/redir/twice/x"), "redir")
    assert stack.state("redir")["current"] == 0


def test_ratelimit_fields_on_allowed_and_denied_answers(stack):
    r = stack.post("/api/generate")
    assert r.status == 200, r
    assert r.header("RateLimit-Policy") == '"generate-image";q=5;w=36000'
    assert r.header("RateLimit") == '"generate-image";r=4;t=7200'
    for _ in range(4):
        assert stack.post("/api/generate").status == 200
    denied = stack.post("/api/generate")
    n = assert_out_of_charge(denied, "generate-image")
    assert denied.header("RateLimit-Policy") == '"generate-image";q=5;w=36000'
    assert denied.header("RateLimit") == f'"generate-image";r=0;t={(n + 999) // 1000}'
    # Multi-pool routes list every pool, in route order.
    r = stack.get("/api/combo")
    assert r.header("RateLimit-Policy") == '"combo-a";q=3;w=10800, "combo-b";q=1;w=7200'
    assert r.header("RateLimit") == '"combo-a";r=2;t=3600, "combo-b";r=0;t=7200'
    # Unrouted: nothing charged, no fields.
    r = stack.get("/api/unrouted")
    assert r.status == 200 and r.header("RateLimit") is None and r.header("RateLimit-Policy") is None


def test_ratelimit_fields_can_be_turned_off(stack):
    r = stack.get("/api/describe/quiet/x")
    assert r.status == 200, r
    assert r.header("RateLimit") is None and r.header("RateLimit-Policy") is None
    assert stack.state("describe-image")["current"] == 19


def test_a_combining_mark_after_a_slash_is_still_charged(stack):
    """nginx splits paths at the '/' byte; %CC%81 (U+0301) after it must not hide the segment
    boundary from the responder, or /api/generate/<mark>x would pass uncharged."""
    for path in ["/api/generate/%CC%81x", "/api/generate/%CC%81", "/api/generate/%E2%83%9D/y"]:
        r = stack.post(path)
        assert r.status == 200, r
    assert stack.state("generate-image")["current"] == 2
