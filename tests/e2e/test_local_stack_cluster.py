"""deploy/local-stack up --cluster (README, Quick start; SPEC §12): three primaries
(127.0.0.1:7001-7003) and three replicas (7004-7006) in DIR/cluster/, made by scripts/redis-cluster
(`redis-cli --cluster create`), the responder on redis-cluster://. `up` means ready: when it
returns, every node sees all 16384 slots assigned and ok, every primary has its replica and every
replica is in sync (link up, no sync under way, the primary's offset reached). Through nginx the
gate spends on the cluster (200, then 429 on the example's 5-charge pool); down stops every node.
A replica that never syncs makes up fail in one bounded line, leaving nothing running."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from harness import RedisClient, free_port, http_request, local_stack, pid_alive, port_open, wait_until

PORTS = [7001, 7002, 7003, 7004, 7005, 7006]
BUS_PORTS = [p + 10000 for p in PORTS]
SEEDS = ",".join(f"127.0.0.1:{p}" for p in PORTS)


def fields(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def node(d: Path, port: int) -> RedisClient:
    return RedisClient(d / "cluster" / f"node-{port}" / "redis.sock")


def redis_servers_of(d: Path) -> list[str]:
    """The command lines of running redis-servers that name d (their title names the socket)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmdline and f"{d}/" in cmdline and pid_alive(int(pid)):
            found.append(f"{pid}: {cmdline.strip()}")
    return found


def skip_if_busy():
    busy = [p for p in PORTS + BUS_PORTS if port_open(p)]
    if busy:
        pytest.skip(f"ports {busy} are in use on this machine")


def test_local_stack_with_cluster_is_ready_and_gates(tmp_dir):
    skip_if_busy()
    d = tmp_dir / "cstack"
    port = free_port()
    r = local_stack("up", "--cluster", "--port", str(port), "--dir", str(d), timeout=120)
    try:
        assert r.returncode == 0, r.stderr
        assert f"redis-cluster://{SEEDS}" in r.stdout, r.stdout
        assert "The cluster: primaries 127.0.0.1:7001-7003, each with its replica in sync (" in r.stdout, r.stdout
        assert "redis-cli -p 7001 CLUSTER NODES" in r.stdout and "CLUSTER FAILOVER" in r.stdout, r.stdout
        responder = int((d / "charge-gate.pid").read_text())

        # Right after up, with nothing waited for here: every node sees the whole cluster ok ...
        for p in PORTS:
            info = fields(node(d, p).command("CLUSTER", "INFO"))
            assert (info["cluster_state"], info["cluster_slots_assigned"], info["cluster_slots_ok"],
                    info["cluster_known_nodes"], info["cluster_size"]) == ("ok", "16384", "16384", "6", "3"), (p, info)
        # ... every slot is served by one of 7001-7003, each range with one replica ...
        covered = 0
        replica_of = {}
        for start, end, primary, *replicas in node(d, 7001).command("CLUSTER", "SLOTS"):
            assert primary[0] == "127.0.0.1" and primary[1] in (7001, 7002, 7003), primary
            assert len(replicas) == 1 and replicas[0][1] in (7004, 7005, 7006), replicas
            replica_of[replicas[0][1]] = primary[1]
            covered += end - start + 1
        assert covered == 16384
        assert sorted(replica_of) == [7004, 7005, 7006] and sorted(replica_of.values()) == [7001, 7002, 7003], replica_of
        for replica, primary in replica_of.items():
            assert f"{replica} of {primary}" in r.stdout, r.stdout
        # ... and every replica has synced (its link up, no sync under way, the primary's offset
        # reached, read first).
        for replica, primary in replica_of.items():
            mine = node(d, primary).info("replication")
            assert (mine["role"], mine["connected_slaves"]) == ("master", "1"), (primary, mine)
            offset = int(mine["master_repl_offset"])
            theirs = node(d, replica).info("replication")
            assert (theirs["role"], theirs["master_port"], theirs["master_link_status"], theirs["master_sync_in_progress"]) \
                == ("slave", str(primary), "up", "0"), (replica, theirs)
            assert int(theirs["slave_repl_offset"]) >= offset, (replica, theirs, offset)

        # Through nginx, on the cluster: the example's generate-image pool holds 5.
        statuses = [http_request(port, "POST", "/api/generate").status for _ in range(6)]
        assert statuses == [200] * 5 + [429], statuses
        assert pid_alive(responder)
        # The spends are in the cluster: the global pool's bucket (its own hash tag, docs/redis.md)
        # on the primary that serves its slot, acknowledged by that primary's replica.
        key = "charge:{generate-image}"
        slot = node(d, 7001).command("CLUSTER", "KEYSLOT", key)
        owner = next(primary[1] for start, end, primary, *_ in node(d, 7001).command("CLUSTER", "SLOTS")
                     if start <= slot <= end)
        assert node(d, owner).command("EXISTS", key) == 1, (owner, key)
        assert node(d, owner).command("WAIT", "1", "2000") == 1, "the replica did not acknowledge the spends"

        # A clean failover at once (CLUSTER FAILOVER, as up prints it): the replica takes the slot
        # with every spend, and the gate follows it without a restart: the pool stays empty
        # (429, or 503 while the slot moves; never a 200), other routes keep spending.
        replica = next(rep for rep, primary in replica_of.items() if primary == owner)
        assert node(d, replica).command("CLUSTER", "FAILOVER") == "OK"
        wait_until(lambda: node(d, replica).info("replication")["role"] == "master", 10,
                   what=f"127.0.0.1:{replica} promoted")
        answers = []
        deadline = time.monotonic() + 10
        while not answers or (answers[-1] == 503 and time.monotonic() < deadline):
            answers.append(http_request(port, "POST", "/api/generate").status)
            time.sleep(0.05)
        assert set(answers) <= {429, 503} and answers[-1] == 429, answers
        assert node(d, replica).command("EXISTS", key) == 1
        assert http_request(port, "GET", "/api/describe/a").status == 200
        assert pid_alive(responder), "the responder restarted"
        usage = {pool["id"]: pool for pool in http_request(port, "GET", "/api/usage").json()["pools"]}
        assert usage["generate-image"]["current"] == 0, usage
    finally:
        down = local_stack("down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    for p in PORTS:
        assert f"cluster/node-{p}" in down.stdout, down.stdout
    assert redis_servers_of(d) == []
    assert not any(port_open(p) for p in PORTS + BUS_PORTS)


def test_up_cluster_fails_clearly_when_a_replica_never_syncs(tmp_dir):
    """The wait is bounded: with a redis-server wrapper that makes every primary wait 60 s
    before a replica's first sync, up fails after 20 s with one line naming a replica, its
    primary and what it reported; nothing is left running."""
    skip_if_busy()
    wrapper = tmp_dir / "redis-server"
    wrapper.write_text(f"#!/usr/bin/env bash\nexec {shutil.which('redis-server')} \"$@\" --repl-diskless-sync-delay 60\n")
    wrapper.chmod(0o755)
    d = tmp_dir / "stuck"
    started = time.monotonic()
    r = local_stack("up", "--cluster", "--port", str(free_port()), "--dir", str(d), timeout=120,
                    env={"REDIS_SERVER": str(wrapper)})
    assert r.returncode == 1, r
    assert 19 < time.monotonic() - started < 80
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("local-stack: the cluster is not ready after 20 s: replica 127.0.0.1:"), lines
    assert "master_link_status:down" in lines[0] and f"(logs: {d}/cluster/node-*/redis.log)" in lines[0], lines
    assert "ChargeGate stack up" not in r.stdout, r.stdout
    assert not (d / "charge-gate.pid").exists()
    assert redis_servers_of(d) == []
    assert not any(port_open(p) for p in PORTS + BUS_PORTS)


def test_up_cluster_refuses_a_busy_bus_port_and_another_store(tmp_dir):
    """Before anything starts: a busy cluster bus port is one line naming it; --cluster with
    --sentinel or --memory is one line."""
    skip_if_busy()
    d = tmp_dir / "busy"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 17003))
        s.listen()
        r = local_stack("up", "--cluster", "--port", str(free_port()), "--dir", str(d))
    assert r.returncode == 1, r
    assert r.stderr.strip() == \
        "local-stack: port 17003 on 127.0.0.1 is busy (--cluster uses 7001-7006 and their cluster bus ports 17001-17006)", r.stderr
    assert not (d / "cluster").exists()
    for other in ("--sentinel", "--memory"):
        r = local_stack("up", "--cluster", other, "--dir", str(d))
        assert (r.returncode, r.stderr.strip()) == (1, f"local-stack: {other} and --cluster do not go together"), r


def test_up_cluster_refuses_a_key_prefix_with_braces_before_any_node_starts(tmp_dir):
    """keyPrefix may hold no { or } on a cluster (the store's hash tags): the config is checked
    as the responder will read it on the cluster, before anything starts."""
    skip_if_busy()
    example = (Path(__file__).resolve().parents[2] / "deploy" / "charge-gate.example.yaml").read_text()
    assert 'keyPrefix: "charge:"\n' in example
    config = tmp_dir / "braces.yaml"
    config.write_text(example.replace('keyPrefix: "charge:"\n', 'keyPrefix: "cg{x}:"\n'))
    line = 1 + example[:example.index('keyPrefix: "charge:"')].count("\n")
    d = tmp_dir / "braces"
    r = local_stack("up", "--cluster", "--config", str(config), "--port", str(free_port()), "--dir", str(d))
    assert r.returncode == 1, r
    assert r.stderr.strip() == (f"local-stack: config rejected with --cluster: {config}:{line}: keyPrefix: must not contain "
                                "{ or } with a redis-cluster:// store (keys take hash tags), got 'cg{x}:'"), r.stderr
    assert not (d / "cluster").exists() and not (d / "tmp" / "cluster-config.yaml").exists()
    assert redis_servers_of(d) == []
