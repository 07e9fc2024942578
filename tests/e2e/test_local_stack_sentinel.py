"""deploy/local-stack up --sentinel (README, Quick start): a primary, a replica and three
sentinels in DIR, the responder on redis-sentinel://. `up` means ready: when it returns, the
replica is in sync and every sentinel knows it and the other sentinels, so a failover by hand
(docs/redis.md's SENTINEL FAILOVER) right away loses nothing (it once promoted a replica still
waiting for its first sync: Redis 7 waits repl-diskless-sync-delay, 5 s). Under requests: 503s
at most while there is no master, spending resumes on the replica without a restart, down
stops all of it."""

from __future__ import annotations

import shutil
import time

import pytest

from harness import RedisClient, free_port, http_request, local_stack, pid_alive, port_open

PORTS = [6391, 6392, 26391, 26392, 26393]
NODES = ["redis-primary", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"]


def pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2]))


def test_local_stack_with_sentinel_fails_over_by_hand(tmp_dir):
    busy = [p for p in PORTS if port_open(p)]
    if busy:
        pytest.skip(f"ports {busy} are in use on this machine")
    d = tmp_dir / "sstack"
    port = free_port()
    r = local_stack("up", "--sentinel", "--port", str(port), "--dir", str(d), timeout=120)
    try:
        assert r.returncode == 0, r.stderr
        assert "redis-sentinel://127.0.0.1:26391,127.0.0.1:26392,127.0.0.1:26393/charge-gate" in r.stdout, r.stdout
        assert "SENTINEL FAILOVER charge-gate" in r.stdout and "DEBUG SLEEP 30" in r.stdout, r.stdout
        assert "The replica (127.0.0.1:6392) is in sync, and every sentinel sees it and the other two." in r.stdout, r.stdout
        responder = int((d / "charge-gate.pid").read_text())
        assert http_request(port, "GET", "/api/describe/a").status == 200

        # Right after up: the replica has synced (its link up, nothing left to load, the
        # primary's offset reached) ...
        primary = RedisClient(d / "redis-primary" / "redis.sock")
        replica = RedisClient(d / "redis-replica" / "redis.sock")
        offset = int(primary.info("replication")["master_repl_offset"])
        mine = replica.info("replication")
        assert (mine["role"], mine["master_link_status"], mine["master_sync_in_progress"]) == ("slave", "up", "0"), mine
        assert int(mine["slave_repl_offset"]) >= offset, (mine, offset)
        # ... and every sentinel knows the replica and the two other sentinels.
        for i in (1, 2, 3):
            s = RedisClient(d / f"sentinel-{i}" / "redis.sock")
            master = pairs(s.command("SENTINEL", "MASTER", "charge-gate"))
            assert (master["num-slaves"], master["num-other-sentinels"]) == ("1", "2"), master
            assert [(r["ip"], r["port"], r["flags"]) for r in map(pairs, s.command("SENTINEL", "REPLICAS", "charge-gate"))] \
                == [("127.0.0.1", "6392", "slave")]

        # Spend, then fail over at once: the new primary holds every spend.
        for _ in range(3):
            assert http_request(port, "POST", "/api/generate").status == 200
        spent = primary.command("GET", "charge:generate-image")
        assert primary.command("WAIT", "1", "2000") == 1, "the replica did not acknowledge the spends"
        sentinel = RedisClient(d / "sentinel-1" / "redis.sock")
        assert sentinel.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "charge-gate") == ["127.0.0.1", "6391"]
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
        assert replica.command("ROLE")[0] == "master"
        assert replica.command("GET", "charge:generate-image") == spent, "the failover lost spends"
        # Through the stack too (another worker may still be finding the new master: 503 meanwhile).
        answers = []
        deadline = time.monotonic() + 10
        while not answers or (answers[-1].status == 503 and time.monotonic() < deadline):
            answers.append(http_request(port, "GET", "/api/usage"))
            time.sleep(0.05)
        assert answers[-1].status == 200, answers
        usage = {p["id"]: p for p in answers[-1].json()["pools"]}
        assert usage["generate-image"]["current"] == 2, usage
        log = (d / "charge-gate.log").read_text()
        assert "redis failover seen: master 'charge-gate' moved from 127.0.0.1:6391 to 127.0.0.1:6392" in log, log[-2000:]
    finally:
        down = local_stack("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    for name in NODES:
        assert name in down.stdout, down.stdout
    assert not any(port_open(p) for p in PORTS)


def test_up_fails_clearly_when_the_replica_never_syncs(tmp_dir):
    """The wait is bounded: a replica pointed at a port nowhere (a redis-server wrapper swaps its
    --replicaof) makes up fail with one line naming the replica and what it reported, and
    leaves nothing running."""
    busy = [p for p in PORTS if port_open(p)]
    if busy:
        pytest.skip(f"ports {busy} are in use on this machine")
    wrapper = tmp_dir / "redis-server"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        "args=()\n"
        "while [ $# -gt 0 ]; do\n"
        "  if [ \"$1\" = --replicaof ]; then args+=(--replicaof 127.0.0.1 1); shift 3; else args+=(\"$1\"); shift; fi\n"
        "done\n"
        f"exec {shutil.which('redis-server')} \"${{args[@]}}\"\n")
    wrapper.chmod(0o755)
    d = tmp_dir / "stuck"
    started = time.monotonic()
    r = local_stack("up", "--sentinel", "--port", str(free_port()), "--dir", str(d), timeout=120, env={"REDIS_SERVER": str(wrapper)})
    assert r.returncode == 1, r
    assert 19 < time.monotonic() - started < 60
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("local-stack: redis-replica did not sync with the primary within 20 s (master_link_status:down "), lines
    assert f"see {d}/redis-replica/redis.log)" in lines[0], lines
    assert "up:" not in r.stdout and "ChargeGate stack up" not in r.stdout, r.stdout
    assert not any(port_open(p) for p in PORTS)
