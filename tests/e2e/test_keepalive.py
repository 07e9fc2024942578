"""The keepalive auth profile (README, "Auth profiles"): charge-gate-server-keepalive.conf and
`keepalive 32;` in `upstream charge_gate`. Every stack here names its profile, whatever
CHARGE_GATE_E2E_PROFILE says.

- Kept connections: 200 sequential gated requests cost the responder a handful of FastCGI
  connections (its charge_gate_fastcgi_connections_total), where the edge profile costs one per
  request; every answer and every charge is right on both.
- A responder restarted (SIGTERM, then started again) while nginx holds kept connections, under
  load: every answer is a 200 or the 503 JSON, the charges are exactly the 200s, and gated
  requests pass again at once, on the same nginx (no reload).
- A denial flood: the exact 429 with its headers every time, each decided by the responder (no
  cache in nginx on this profile), almost all from a worker's memory, over kept connections.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from harness import SERVICE_UNAVAILABLE, app_body, assert_allowed, assert_out_of_charge, scrape

MAX = 100_000
CONFIG = f"""\
pools:
  - id: many
    maxCharges: {MAX}
    rechargeIntervalHours: 1000
  - id: one
    maxCharges: 1
    rechargeIntervalHours: 1000
routes:
  - prefix: /api/many
    pools: [many]
  - prefix: /api/one
    pools: [one]
"""
WORKERS = 2
SETTINGS = f"workers: {WORKERS}\n"


@pytest.fixture
def keepalive(make_stack):
    """Factory: a started stack on the keepalive profile (the Redis store)."""
    def factory(**kw):
        s = make_stack(CONFIG, settings=SETTINGS, profile="keepalive", **kw)
        assert "keepalive 32;" in s.nginx.conf.read_text()
        return s
    return factory


def connections(stack) -> int:
    """FastCGI connections the responder has accepted so far (its /metrics). The scrape itself
    takes one of the upstream's idle kept connections when there is one (nginx's keepalive
    cache is the upstream's, whatever location asks; the metrics location does not keep it, so
    the responder closes it after the answer), else opens one: a scrape counts 0 or 1."""
    m = scrape(stack)
    name = "charge_gate_fastcgi_connections_total"
    assert name in m, f"the responder has no {name} metric"
    return int(m[name])


def charged(stack, pool: str) -> int:
    """Charges spent from the global `pool` (MAX - what is left)."""
    state = stack.state(pool)
    return 0 if state is None else MAX - state["current"]


def event_uris(stack, pool: str) -> list[str]:
    """The URI of every usage event of `pool` (one per spend)."""
    out = []
    for _, flat in stack.redis.client.command("XRANGE", "charge:#events", "-", "+"):
        e = dict(zip(flat[0::2], flat[1::2]))
        if e.get("pool") == pool:
            out.append(e["uri"])
    return out


def sequential(stack, n: int, prefix: str) -> None:
    for i in range(n):
        assert_allowed(stack.post(f"{prefix}/{i}"), "POST", f"{prefix}/{i}")


# --------------------------------------------------------------------------------------------
# kept connections


def test_sequential_requests_share_a_handful_of_connections(make_stack):
    """The profile does what it says: the same 200 requests cost the responder 200 connections
    on the edge profile and a handful on the keepalive profile."""
    used = {}
    for profile in ("keepalive", "edge"):
        s = make_stack(CONFIG, settings=SETTINGS, profile=profile)
        before = connections(s)
        sequential(s, 200, "/api/many")
        used[profile] = connections(s) - before  # the second scrape's included
        assert charged(s, "many") == 200
        assert len(s.app_hits_settled(200)) == 200
        s.stop()
    assert used["keepalive"] <= 5, used
    assert used["edge"] >= 200, used


# --------------------------------------------------------------------------------------------
# a restart under kept connections


class Load:
    """`threads` clients sending POST /api/many/<thread>-<i> one after the other until stop(),
    each request on a new client connection; records (path, t_sent, t_answered, status, body,
    content type)."""

    def __init__(self, stack, threads: int = 4):
        self.stack = stack
        self.records: list[tuple] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(k,), daemon=True) for k in range(threads)]

    def run(self, k: int):
        i = 0
        while not self.stopping.is_set():
            path = f"/api/many/{k}-{i}"
            t0 = time.monotonic()
            try:
                r = self.stack.post(path, timeout=10)
                self.records.append((path, t0, time.monotonic(), r.status, r.body, r.header("Content-Type")))
            except OSError as e:
                self.records.append((path, t0, time.monotonic(), 0, repr(e).encode(), None))
            i += 1
            time.sleep(0.002)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> list[tuple]:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a load thread hung"
        return self.records


def nginx_processes(stack) -> tuple[int, list[int]]:
    master = stack.nginx.pid()
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, timeout=5).stdout.split()
    return master, sorted(int(w) for w in workers)


def test_a_responder_restart_under_kept_connections(keepalive):
    """SIGTERM to the responder while nginx holds kept connections to it, then the same command
    again, under a steady load (nginx untouched). Fail-closed and exact: every answer is the
    app's 200 or the 503 JSON (the pool cannot run out: a 429 would be a wrong answer), the app
    saw exactly the 200s, and the events charge exactly the 200s' paths, each once (nothing
    passes without its charge, nothing is charged twice or for a 503). Then gated requests
    pass again at once, and on kept connections, without a reload of nginx."""
    s = keepalive()
    processes = nginx_processes(s)
    load = Load(s).start()
    try:
        time.sleep(1.0)
        # nginx is on kept connections when the responder stops: many requests, few connections
        accepted, answered = connections(s), len(load.records)
        s.responder.stop()  # SIGTERM, and wait for the exit
        assert s.responder.proc.returncode == 0, s.responder.log_tail()
        t_stopped = time.monotonic()
        time.sleep(0.2)
        t_start = time.monotonic()
        s.responder.start()
        t_ready = time.monotonic()
        time.sleep(1.5)
    finally:
        records = load.stop()
    assert answered >= 100 and accepted <= 16, (answered, accepted)

    ok = {p for p, _, _, status, body, ctype in records
          if status == 200 and body == app_body("POST", p) and ctype == "application/json"}
    unavailable = {p for p, _, _, status, body, ctype in records
                   if status == 503 and body == SERVICE_UNAVAILABLE and ctype == "application/json"}
    wrong = [r for r in records if r[0] not in ok and r[0] not in unavailable]
    assert not wrong, f"{len(wrong)} answers neither the app's 200 nor the 503 JSON: {wrong[:5]}"
    assert len(ok) > 100, len(ok)

    app = [line.split(" ")[1] for line in s.app_hits_settled(len(ok))]
    assert sorted(app) == sorted(ok), "the app saw other requests than the 200s"
    uris = event_uris(s, "many")
    assert len(uris) == len(set(uris)), "a request was charged twice"
    assert sorted(uris) == sorted(ok), (f"charged: {len(uris)}, 200s: {len(ok)}; charged but not 200: "
                                        f"{sorted(set(uris) - set(ok))[:5]}; 200 but not charged: "
                                        f"{sorted(set(ok) - set(uris))[:5]}")
    assert charged(s, "many") == len(ok)

    # Back at once: every request sent after the new responder listened passed.
    after = [r for r in records if r[1] >= t_ready]
    assert after, "no request was sent after the restart"
    failed = [r for r in after if r[0] not in ok]
    assert not failed, f"{len(failed)} of {len(after)} requests sent after the restart failed: {failed[:5]}"
    # Requests sent and answered while no responder ran got the 503 (own socket, no socket
    # activation).
    down = [r for r in records if r[1] >= t_stopped and r[2] <= t_start]
    assert down, "no request was answered while the responder was down"
    assert all(r[0] in unavailable for r in down), [r for r in down if r[0] not in unavailable][:5]

    # The same nginx, its connections to the new responder kept again.
    assert nginx_processes(s) == processes
    before = connections(s)
    sequential(s, 50, "/api/many/again")
    assert connections(s) - before <= 3


# --------------------------------------------------------------------------------------------
# a denial flood


def script_calls(stack) -> int:
    """EVALSHA + EVAL calls Redis has answered so far."""
    return stack.redis.client.script_calls()


def test_a_denial_flood_is_answered_by_the_responder_from_memory(keepalive):
    """No cache in nginx on this profile: each of 300 repeated denials is the exact 429 with its
    headers, decided by the responder (its decisions count every one; nginx's cache status is
    empty and nothing is written under a cache path), from a worker's memory but for at most
    one store call per worker per second, over a handful of kept connections."""
    s = keepalive()
    assert_allowed(s.post("/api/one"), "POST", "/api/one")
    m0 = scrape(s)
    conns0 = connections(s)
    calls0 = script_calls(s)
    n = 300
    started = time.monotonic()
    for _ in range(n):
        r = s.get("/api/one")
        wait = assert_out_of_charge(r, "one")
        assert r.header("RateLimit-Policy") == '"one";q=1;w=3600000', r
        assert r.header("RateLimit") == f'"one";r=0;t={(wait + 999) // 1000}', r
    seconds = int(time.monotonic() - started) + 1
    m = scrape(s)

    def grew(name):
        return m.get(name, 0) - m0.get(name, 0)

    assert grew('charge_gate_decisions_total{pool="one",outcome="out_of_charge"}') == n
    assert grew('charge_gate_denied_from_memory_total{pool="one"}') >= n - WORKERS * seconds
    assert script_calls(s) - calls0 <= WORKERS * seconds
    assert connections(s) - conns0 <= 5
    time.sleep(0.1)
    entries = [e for e in s.edge_log() if e["request_uri"] == "/api/one"]
    assert [e["status"] for e in entries] == [200] + [429] * n, entries[:3]
    assert {e["cache"] for e in entries} == {""}, {e["cache"] for e in entries}
    assert not (s.dir / "deny-cache").exists()
    assert s.state("one")["current"] == 0
    assert s.app_hits_settled(1) == ["POST /api/one 200"]
