"""deploy/local-stack up --sentinel (README, Quick start): a primary, a replica and three
sentinels in DIR, the responder on redis-sentinel://; a failover by hand (docs/redis.md's
SENTINEL FAILOVER) under requests: 503s at most while there is no master, spending resumes on
the replica without a restart, down stops all of it."""

from __future__ import annotations

import time

import pytest

from harness import RedisClient, free_port, http_request, pid_alive, wait_until
from test_local_stack import port_open, run

PORTS = [6391, 6392, 26391, 26392, 26393]
NODES = ["redis-primary", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"]


def test_local_stack_with_sentinel_fails_over_by_hand(tmp_dir):
    busy = [p for p in PORTS if port_open(p)]
    if busy:
        pytest.skip(f"ports {busy} are in use on this machine")
    d = tmp_dir / "sstack"
    port = free_port()
    r = run("up", "--sentinel", "--port", str(port), "--dir", str(d), timeout=120)
    try:
        assert r.returncode == 0, r.stderr
        assert "redis-sentinel://127.0.0.1:26391,127.0.0.1:26392,127.0.0.1:26393/charge-gate" in r.stdout, r.stdout
        assert "SENTINEL FAILOVER charge-gate" in r.stdout and "DEBUG SLEEP 30" in r.stdout, r.stdout
        responder = int((d / "charge-gate.pid").read_text())
        assert http_request(port, "GET", "/api/describe/a").status == 200

        sentinel = RedisClient(d / "sentinel-1" / "redis.sock")
        assert sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "charge-gate") == ["127.0.0.1", "6391"]
        wait_until(lambda: int(dict(zip(*[iter(sentinel.command("SENTINEL", "MASTER", "charge-gate"))] * 2))
                                   .get("num-slaves", 0)) >= 1, 15, interval=0.1, what="the sentinels to see the replica")
        assert sentinel.command("SENTINEL", "FAILOVER", "charge-gate") == "OK"
        # Requests meanwhile: 200 (before the failover, then on the new primary) or 503 (none).
        statuses = []
        switched = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            switched = switched or sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "charge-gate")[1] == "6392"
            statuses.append(http_request(port, "GET", "/api/describe/b").status)
            if switched and statuses[-1] == 200:
                break
            time.sleep(0.05)
        assert set(statuses) <= {200, 503}, statuses
        assert switched and statuses[-1] == 200, statuses
        assert pid_alive(responder), "the responder restarted"
        log = (d / "charge-gate.log").read_text()
        assert "redis failover seen: master 'charge-gate' moved from 127.0.0.1:6391 to 127.0.0.1:6392" in log, log[-2000:]
    finally:
        down = run("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    for name in NODES:
        assert name in down.stdout, down.stdout
    assert not any(port_open(p) for p in PORTS)
