"""Failure modes: the store or the responder unreachable, slow or hung; hostile input."""

from __future__ import annotations

import re
import signal
import threading
import time

from harness import (
    assert_allowed,
    assert_out_of_charge,
    assert_unavailable,
    single_redis_only,
    wait_until,
)


@single_redis_only("killed, then started again on the same socket")
def test_redis_down_is_503_then_recovers_without_restart(stack):
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    stack.redis.kill()
    hits_before = len(stack.app_hits_settled(1))

    for path in ["/api/generate", "/api/describe"]:
        assert_unavailable(stack.post(path))
    assert_unavailable(stack.get("/api/usage"))
    assert_unavailable(stack.get("/api/usage/check?pools=generate-image"))
    # a path that matches no route passes without touching the store
    assert_allowed(stack.get("/api/unrouted"), "GET", "/api/unrouted")
    hits = stack.app_hits_settled(hits_before + 1)
    assert hits[hits_before:] == ["GET /api/unrouted 200"], hits

    # Redis back on the same socket (empty: no persistence here): the same responder recovers.
    stack.redis.start()
    pid = stack.responder.proc.pid

    def recovered():
        r = stack.post("/api/generate")
        return r.status == 200

    wait_until(recovered, 2.5, interval=0.1, what="recovery after the Redis restart")
    assert stack.responder.alive() and stack.responder.proc.pid == pid
    # and it keeps counting correctly: every worker's connection is healthy again
    for _ in range(8):
        assert stack.get("/api/usage").status == 200
    assert stack.state("generate-image")["current"] == 4


def test_redis_slower_than_timeout_is_503_and_state_stays_right(make_stack):
    s = make_stack(settings="workers: 1")
    # This stack's config says redisTimeoutMs: 500.
    assert_allowed(s.post("/api/generate"), "POST", "/api/generate")
    # the node that holds the pool (on a cluster, its slot's primary: 1.5 s is below the
    # cluster's node timeout, 2 s, so no failover)
    node = s.redis_node_of(s.keys.bucket("generate-image"))
    sleeper = threading.Thread(target=lambda: node.command("DEBUG", "SLEEP", "1.5"))
    sleeper.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    r = s.post("/api/generate")
    took = time.monotonic() - t0
    assert_unavailable(r)
    assert took < 1.3, f"the 503 took {took:.2f}s (redisTimeoutMs is 500)"
    sleeper.join(timeout=5)
    # After the slow spell: the answers match the stored state (no late reply read as the
    # answer to the next command). The timed-out consume may or may not have been applied.
    time.sleep(0.2)
    spent_by_timeout = 5 - 1 - s.state("generate-image")["current"]
    assert spent_by_timeout in (0, 1)
    remaining = s.state("generate-image")["current"]
    for i in range(remaining):
        assert_allowed(s.post("/api/generate"), "POST", "/api/generate")
        assert s.state("generate-image")["current"] == remaining - 1 - i
    assert_out_of_charge(s.post("/api/generate"), "generate-image")
    assert s.usage()["generate-image"]["current"] == 0


def test_responder_killed_is_503_json(stack):
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    stack.responder.kill()
    hits_before = len(stack.app_hits_settled(1))
    for method, path in [("POST", "/api/generate"), ("GET", "/api/unrouted"), ("GET", "/api/describe/x.txt")]:
        r = stack.request(method, path)
        assert_unavailable(r)
        assert b"<html>" not in r.body
    # the usage endpoints too (the snippet turns nginx's 502 into the JSON 503)
    assert_unavailable(stack.get("/api/usage"))
    assert len(stack.app_hits_settled()) == hits_before


def test_responder_hung_is_503_within_the_read_timeout(stack):
    stack.responder.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = stack.post("/api/generate")
        took = time.monotonic() - t0
        assert_unavailable(r)
        assert took < 5, took
        assert stack.app_hits_settled() == []
    finally:
        stack.responder.signal(signal.SIGCONT)
    # and it serves again once resumed
    wait_until(lambda: stack.get("/api/usage").status == 200, 5, interval=0.1, what="responder answering again")


def test_hostile_input(stack):
    # 1. a 6 KB URI on a charged route is charged; on an unrouted path it passes
    long_tail = "a" * 6000
    r = stack.post("/api/generate/" + long_tail)
    assert r.status == 200, r
    assert stack.state("generate-image")["current"] == 4
    r = stack.get("/api/zzz/" + long_tail + "?q=" + "b" * 300)
    assert r.status == 200, r

    # 2. odd headers: long values, many of them, odd names, a forged decision
    headers = [("X-Long", "v" * 4000), ("Cookie", "c=" + "x" * 3000), ("Authorization", "Bearer \u00ff".encode("latin-1").decode("latin-1")),
               ("Idempotency-Key", "k" * 2000), ("X-Charge-Status", "204"), ("X-Charge-Body", '{"a":"</script>"}'),
               ("X-Empty", ""), ("X-Under_Score", "1"), ("Content-Type", "application/json")]
    headers += [(f"X-H{i}", str(i)) for i in range(60)]
    r = stack.post("/api/generate", headers=headers, body=b'{"prompt":"x"}')
    assert r.status == 200, r
    assert stack.state("generate-image")["current"] == 3

    # 3. raw requests nginx may refuse itself; none may reach the app on a drained route
    for _ in range(3):
        assert stack.post("/api/generate").status == 200
    assert stack.state("generate-image")["current"] == 0
    hits_before = len(stack.app_hits_settled(7))
    edge_before = len(stack.edge_log())
    for path in ["/api/generate", "/api/generate%00", "/api/generate%00.txt", "/api/x/..%2fgenerate",
                 "/api/x/..%2Fgenerate", "/api/x%2f..%2fgenerate", "/api/%2e%2e/api/generate", "/api/./%2e/generate",
                 "/api/generate%2f", "/api//%2fgenerate", "/api/generate;x=1", "/api/generate%3bx=1",
                 "/api/x/%2e%2e/generate", "/api/generate/%2e%2e/generate", "/api/generate%23frag"]:
        stack.post(path, headers={"X-Charge-Status": "204"})
    time.sleep(0.2)
    # No free pass: whatever spelling nginx routed to the drained route was denied.
    edge = stack.edge_log()[edge_before:]
    assert len(edge) == 15, edge
    for e in edge:
        if re.match(r"^/api/generate(/|$)", e["uri"]):
            assert e["status"] == 429, e
        assert e["status"] != 200 or e["gate"] in ("204", "unrouted"), e
    # a client-sent decision header with a denial never gets through
    assert_out_of_charge(stack.post("/api/generate", headers={"X-Charge-Status": "204"}), "generate-image")
    raw_requests = [
        b"POST /api/generate HTTP/1.1\r\nHost: x\r\nX-Charge-Status: 204\r\nConnection: close\r\n\r\n",
        b"POST /api/generate HTTP/1.0\r\n\r\n",
        b"POST /api/generate HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\x02\r\nConnection: close\r\n\r\n",
        b"POST /api/gen\x00erate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"POST http://evil/api/generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ]
    for raw in raw_requests:
        answer = stack.raw(raw, timeout=5)
        assert b'{"ok":true' not in answer, (raw, answer[:300])
    # Only the `;` and `%23` spellings reach the app: for nginx `;` is no separator, and %23
    # decodes to a `#` inside the path, so /api/generate;x=1 and /api/generate#frag are other
    # paths (no route: they pass, like /api/generated).
    assert stack.app_hits_settled()[hits_before:] == [
        "POST /api/generate;x=1 200", "POST /api/generate%3bx=1 200", "POST /api/generate%23frag 200"]

    # 4. the responder is alive and still answering correctly
    assert stack.responder.alive(), stack.responder.log_tail()
    assert stack.usage()["generate-image"]["current"] == 0
    assert_allowed(stack.get("/api/unrouted"), "GET", "/api/unrouted")
    assert stack.responder.alive()
