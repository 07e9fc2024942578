"""A Redis that may evict keys (maxmemory-policy other than noeviction) would refill every bucket
it drops: the responder refuses to serve on it (the JSON 503, the app never reached) until the
policy is noeviction again, unless `serve --allow-eviction` says otherwise."""

from __future__ import annotations

from harness import assert_allowed, assert_unavailable, wait_until


def _set_policy(stack, policy: str) -> None:
    """Sets maxmemory-policy on the stack's private redis-server."""
    assert stack.redis.client.command("CONFIG", "SET", "maxmemory-policy", policy) == "OK"
    assert stack.redis.client.command("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", policy]


def _drop_connections(stack) -> None:
    """Closes the responder's idle connections (not this client's): its next command opens a
    new connection, and a new connection is checked."""
    stack.redis.client.command("CLIENT", "KILL", "TYPE", "normal")


def _started(make_stack, policy: str, *args):
    """A stack whose redis has `policy` before the responder starts (with `args`)."""
    stack = make_stack(start=False)
    stack.write_config()
    stack.redis.start()
    _set_policy(stack, policy)
    stack.responder.start(extra_args=list(args))
    stack.nginx.start()
    return stack


def _wait_for_log(stack, text: str, timeout: float = 5.0) -> None:
    wait_until(lambda: text in stack.responder.log_text(), timeout, interval=0.05, what=f"{text!r} in the responder's log")


def test_evicting_redis_is_503_then_serves_again_on_noeviction(stack):
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.state("generate-image")["current"] == 4
    pid = stack.responder.proc.pid

    _set_policy(stack, "allkeys-lru")
    _drop_connections(stack)
    hits_before = len(stack.app_hits_settled(1))
    # Every worker reconnects, reads the policy and refuses: never a free pass.
    for _ in range(6):
        assert_unavailable(stack.post("/api/generate"))
    assert_unavailable(stack.get("/api/usage"))
    # a path that matches no route passes without touching the store
    assert_allowed(stack.get("/api/unrouted"), "GET", "/api/unrouted")
    hits = stack.app_hits_settled(hits_before + 1)
    assert hits[hits_before:] == ["GET /api/unrouted 200"], hits
    assert stack.state("generate-image")["current"] == 4, "nothing was spent"
    _wait_for_log(stack, "has maxmemory-policy allkeys-lru")
    assert "set maxmemory-policy noeviction" in stack.responder.log_text()

    # noeviction back: the same responder serves again once its back-off (at most 200 ms) passes.
    _set_policy(stack, "noeviction")
    wait_until(lambda: stack.post("/api/generate").status == 200, 2.5, interval=0.05,
               what="serving again after noeviction")
    assert stack.responder.alive() and stack.responder.proc.pid == pid
    for _ in range(8):
        assert stack.get("/api/usage").status == 200
    assert stack.state("generate-image")["current"] == 3


def test_evicting_redis_at_start_up_is_503_and_names_the_policy(make_stack):
    stack = _started(make_stack, "volatile-ttl")
    for _ in range(3):
        assert_unavailable(stack.post("/api/generate"))
    assert stack.app_hits_settled() == []
    assert stack.state("generate-image") is None, "no bucket was written"
    _wait_for_log(stack, "has maxmemory-policy volatile-ttl")
    assert stack.responder.alive(), "refusing is per request: the responder keeps running"

    _set_policy(stack, "noeviction")
    wait_until(lambda: stack.post("/api/generate").status == 200, 2.5, interval=0.05,
               what="serving after noeviction")
    assert stack.state("generate-image")["current"] == 4


def test_allow_eviction_serves_on_allkeys_lru(make_stack):
    stack = _started(make_stack, "allkeys-lru", "--allow-eviction")
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    _drop_connections(stack)  # reconnects are not checked either
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.state("generate-image")["current"] == 3
    assert "maxmemory-policy" not in stack.responder.log_text()
