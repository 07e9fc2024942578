"""Redis with Sentinel for the reliability tests: a primary, a replica and three sentinels, each
started by scripts/redis-private (`run`: the Popen is the server itself) in its own directory of
the cluster's throwaway dir, on its own loopback port (sentinels and replication speak TCP) and
its own unix socket (the tests' admin commands), killed at teardown like everything else.

`SentinelCluster` is reliability.Cluster with that set in place of the single Redis: the same
responders (each `redis: redis-sentinel://...`), the same nginx, the same request bookkeeping,
and the usage events read from whichever node is the master now.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from reliability import Cluster, config_yaml, harness
from harness import (  # noqa: E402
    REDIS_PRIVATE,
    REDIS_SERVER,
    RedisClient,
    file_tail,
    free_port,
    stop_popen,
    wait_until,
)

MASTER = "mymaster"
DOWN_AFTER_MS = 1000       # sentinel down-after-milliseconds: how long before a node is down
FAILOVER_TIMEOUT_MS = 3000  # sentinel failover-timeout (a voter starts no failover of the same master within 2x)


class RedisNode:
    """One redis-server (data node or sentinel) started by `scripts/redis-private run`."""

    def __init__(self, dir: Path, port: int, mode: list[str]):
        self.dir = dir
        self.port = port
        self.mode = mode          # ["--replica-of", "127.0.0.1:P"], ["--sentinel", NAME, "H:P", ...] or []
        self.sock = dir / "redis.sock"
        self.client = RedisClient(self.sock, timeout=5.0)
        self.proc: subprocess.Popen | None = None
        dir.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, mode: list[str] | None = None):
        if mode is not None:
            self.mode = mode
        if self.sock.exists():
            self.sock.unlink()
        # Data nodes: DEBUG allowed (DEBUG SLEEP), and a replica that must resync starts at once
        # (Redis 7 waits repl-diskless-sync-delay, 5 s, for more replicas before a full sync).
        data = [] if "--sentinel" in self.mode else ["--debug-command"]
        tail = [] if "--sentinel" in self.mode else ["--", "--repl-diskless-sync-delay", "0"]
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [str(REDIS_PRIVATE), "run", str(self.dir), "--port", str(self.port), *data, *self.mode, *tail],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=harness._die_with_parent,
            env={**os.environ, "REDIS_SERVER": REDIS_SERVER})
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server {self.dir.name} exited at start: " + self.log_tail())
            try:
                return self.client.command("PING") == "PONG"
            except (OSError, RuntimeError):
                return False

        wait_until(ready, 10, interval=0.01, what=f"redis {self.dir.name}")

    def kill(self):
        stop_popen(self.proc, signal.SIGKILL)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stop_popen(self.proc, signal.SIGTERM)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def role(self) -> str:
        return self.client.command("ROLE")[0]

    def info(self, section: str) -> dict[str, str]:
        return self.client.info(section)

    def script_calls(self) -> int:
        """EVALSHA + EVAL calls since the last CONFIG RESETSTAT (rejected ones included)."""
        return self.client.script_calls(rejected=True)

    def log_tail(self, n=20) -> str:
        return file_tail(self.dir / "redis.log", n)


class SentinelCluster(Cluster):
    """A primary and `replicas` replicas, three sentinels, `responders` charge-gate processes on
    the sentinel URL, one nginx listing them all."""

    def __init__(self, pools: str, routes: str, settings: str, *, responders: int = 3, replicas: int = 1):
        self.dir = Path(tempfile.mkdtemp(prefix="q", dir=harness._BASE))
        self.nodes = [RedisNode(self.dir / f"n{i}", free_port(), []) for i in range(1 + replicas)]
        for n in self.nodes[1:]:
            n.mode = ["--replica-of", self.nodes[0].address]
        self.sentinels = [
            RedisNode(self.dir / f"s{i}", free_port(),
                      ["--sentinel", MASTER, self.nodes[0].address, "--quorum", "2",
                       "--down-after", str(DOWN_AFTER_MS), "--failover-timeout", str(FAILOVER_TIMEOUT_MS)])
            for i in range(3)]
        self.url = "redis-sentinel://" + ",".join(s.address for s in self.sentinels) + f"/{MASTER}"
        self.config = self.dir / "charge-gate.yaml"
        text = config_yaml(self.dir / "unused", pools, routes, settings)
        text = "\n".join(line for line in text.splitlines() if not line.startswith("redis: ")) + "\n"
        self.config.write_text(f"redis: {self.url}\n" + text)
        self.add_processes(responders, 1)

    # lifecycle ---------------------------------------------------------------------------

    def start_store(self):
        for node in self.nodes + self.sentinels:
            node.start()
        self.wait_healthy(timeout=20)

    def store_stops(self) -> list:
        return [s.stop for s in self.sentinels] + [n.stop for n in self.nodes]

    # who is who --------------------------------------------------------------------------

    def sentinel_master(self, sentinel: RedisNode) -> str | None:
        try:
            host, port = sentinel.client.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            return f"{host}:{port}"
        except (OSError, RuntimeError, TypeError, ValueError):
            return None

    def node(self, address: str) -> RedisNode:
        return next(n for n in self.nodes if n.address == address)

    @property
    def master(self) -> RedisNode:
        return self.node(self.sentinel_master(self.sentinels[0]))

    @property
    def replicas(self) -> list[RedisNode]:
        m = self.master
        return [n for n in self.nodes if n is not m]

    @property
    def rc(self) -> RedisClient:
        return self.master.client

    def wait_healthy(self, timeout: float = 30):
        """Until every sentinel names the same master, knows the two other sentinels, and sees
        every other data node as a replica in sync: a failover could start now."""

        def healthy():
            masters = {self.sentinel_master(s) for s in self.sentinels}
            if len(masters) != 1 or None in masters:
                return False
            address = masters.pop()
            others = [n for n in self.nodes if n.address != address]
            if not all(n.alive() for n in others):
                return False
            try:
                for other in others:
                    if other.role() != "slave" or other.info("replication").get("master_link_status") != "up":
                        return False
                for s in self.sentinels:
                    fields = s.client.command("SENTINEL", "MASTER", MASTER)
                    m = dict(zip(fields[0::2], fields[1::2]))
                    if m.get("flags") != "master" or int(m.get("num-other-sentinels", 0)) < 2:
                        return False
                    replicas = s.client.command("SENTINEL", "REPLICAS", MASTER)
                    good = {f"{r.get('ip')}:{r.get('port')}" for r in (dict(zip(x[0::2], x[1::2])) for x in replicas)
                            if r.get("flags") == "slave" and r.get("master-link-status") == "ok"}
                    if not all(other.address in good for other in others):
                        return False
            except (OSError, RuntimeError):
                return False
            return True

        wait_until(healthy, timeout, interval=0.1, what="a healthy primary, replica and three sentinels")

    def wait_switch(self, old: str, timeout: float = 20) -> str:
        """Until every sentinel names a master other than `old`; returns it."""

        def switched():
            names = {self.sentinel_master(s) for s in self.sentinels}
            return names.pop() if len(names) == 1 and None not in names and old not in names else None

        return wait_until(switched, timeout, interval=0.02, what=f"the sentinels to move from {old}")

    def demote(self, node: RedisNode, master: RedisNode):
        """What Sentinel does to an old master about 10 s after a failover (it checks replicas'
        INFO every 10 s), done at once so that the next fault finds a replica in sync:
        REPLICAOF the new master, then drop its clients."""
        node.client.command("REPLICAOF", "127.0.0.1", str(master.port))
        node.client.command("CLIENT", "KILL", "TYPE", "normal")

    def sleep_in_background(self, node: RedisNode, seconds: float) -> threading.Thread:
        """DEBUG SLEEP on `node`, from a thread (the call returns when it wakes)."""
        client = RedisClient(node.sock, timeout=seconds + 10)

        def run():
            try:
                client.command("DEBUG", "SLEEP", str(seconds))
            except (OSError, RuntimeError):
                pass

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    # observations ------------------------------------------------------------------------

    def failover_lines(self) -> list[list[str]]:
        """Per responder, its "redis failover seen" log lines."""
        return [[line for line in r.log_text().splitlines() if "redis failover seen" in line] for r in self.responders]

    def store_name(self) -> str:
        return f", {self.url}"

    def store_diagnostics(self) -> str:
        return "\n".join(f"--- {n.dir.name} {n.address} log (tail)\n" + n.log_tail(12) for n in self.nodes + self.sentinels)
