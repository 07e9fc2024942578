"""Redis Cluster for the reliability tests: a throwaway cluster made by scripts/redis-cluster
(N primaries with R replicas each, every node a private redis-server in its own directory of
the stack's throwaway dir, on a loopback port and a unix socket), and the faults the cluster
tests apply to it: resharding (`redis-cli --cluster reshard`, or one slot migrated by hand,
slowly), `CLUSTER FAILOVER` on a replica, kill -9 of a primary (optionally after cutting its
replicas off), a killed node started again, a new node joined (`redis-cli --cluster add-node`).

`ClusterStack` is reliability.Cluster with that cluster in place of the single Redis: the same
responders (each on `redis: redis-cluster://SEEDS`), the same nginx, the same request
bookkeeping; the usage events are read from every slot's stream (`prefix#events:{TAG}`) on every
primary and merged, and a bucket is read on the primary of its slot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from reliability import ROOT, Cluster, config_yaml, harness
from harness import RedisClient, file_tail, free_port, live_pid, pid_alive, wait_until

REDIS_CLUSTER = ROOT / "scripts" / "redis-cluster"
REDIS_PRIVATE = ROOT / "scripts" / "redis-private"
SLOTS = 16384


# --------------------------------------------------------------------------------------------
# slots


def _crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def keyslot(key: str) -> int:
    """The slot of `key` (its hash tag when it has a non-empty one), as CLUSTER KEYSLOT."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return _crc16(key.encode()) % SLOTS


def subjects_in(slots: set[int], count: int, stem: str) -> list[str]:
    """`count` subject names `stem-N` whose tag `{SUBJECT}` lands in one of `slots`."""
    out, n = [], 0
    while len(out) < count:
        name = f"{stem}-{n}"
        if keyslot("{" + name + "}") in slots:
            out.append(name)
        n += 1
        assert n < 10_000_000, f"no subject for slots {sorted(slots)[:5]}..."
    return out


# --------------------------------------------------------------------------------------------
# nodes


class ClusterNode:
    """One node of the cluster: its directory DIR/node-PORT (scripts/redis-cluster's layout)."""

    def __init__(self, dir: Path, node_timeout_ms: int):
        self.dir = dir
        self.port = int(dir.name.split("-", 1)[1])
        self.node_timeout_ms = node_timeout_ms
        self.sock = dir / "redis.sock"
        self.client = RedisClient(self.sock, timeout=5.0)
        self._id: str | None = None

    def __repr__(self):
        return f"<node {self.address}>"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = self.client.command("CLUSTER", "MYID")
        return self._id

    def pid(self) -> int | None:
        return live_pid(self.dir / "redis.pid")

    def alive(self) -> bool:
        return self.pid() is not None

    def kill(self):
        """kill -9, and wait until it is gone."""
        pid = self.pid()
        assert pid is not None, f"{self} is not running"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 5, what=f"{self} to die")

    def start(self):
        """Starts the node again as scripts/redis-cluster started it (same port, its nodes.conf:
        it rejoins with its id and learns its role from the cluster; no data: no persistence)."""
        r = subprocess.run(
            [str(REDIS_PRIVATE), "start", str(self.dir), "--port", str(self.port), "--debug-command", "--",
             "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", str(self.dir / "nodes.conf"),
             "--cluster-node-timeout", str(self.node_timeout_ms), "--repl-diskless-sync-delay", "0",
             "--repl-ping-replica-period", "1"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"restart of {self} failed: {r.stderr.strip()}"

    def info(self, section: str) -> dict[str, str]:
        return self.client.info(section)

    def command_calls(self, name: str) -> int:
        """`cmdstat_NAME` calls since the last CONFIG RESETSTAT."""
        return self.client.command_stats(name).get("calls", 0)

    def log_tail(self, n=12) -> str:
        return file_tail(self.dir / "redis.log", n)


class RedisCluster:
    """`primaries` primaries with `replicas` replicas each (scripts/redis-cluster start), with
    the cluster-node-timeout `node_timeout_ms`."""

    def __init__(self, dir: Path, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000):
        self.dir = dir
        self.primaries_wanted = primaries
        self.replicas_wanted = replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[ClusterNode] = []
        self.seeds = ""

    def start(self):
        r = subprocess.run(
            [str(REDIS_CLUSTER), "start", str(self.dir), "--primaries", str(self.primaries_wanted),
             "--replicas", str(self.replicas_wanted), "--node-timeout", str(self.node_timeout_ms)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, f"scripts/redis-cluster start failed: {r.stderr.strip()}"
        self.seeds = r.stdout.strip()
        self.nodes = [ClusterNode(d, self.node_timeout_ms) for d in sorted(self.dir.glob("node-*"))]
        assert len(self.nodes) == self.primaries_wanted * (1 + self.replicas_wanted), self.nodes
        return self

    def stop(self):
        subprocess.run([str(REDIS_CLUSTER), "stop", str(self.dir)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)

    # who is who --------------------------------------------------------------------------

    def live(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive()]

    def node(self, address: str) -> ClusterNode:
        return next(n for n in self.nodes if n.address == address)

    def view(self, asked: ClusterNode | None = None) -> list[dict]:
        """CLUSTER NODES as one live node sees it: [{id, address, flags, master, slots}]."""
        asked = asked or self.live()[0]
        out = []
        for line in asked.client.command("CLUSTER", "NODES").splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            slots: set[int] = set()
            for r in parts[8:]:
                if r.startswith("["):
                    continue  # an open migration: [slot->-id] / [slot-<-id]
                a, _, b = r.partition("-")
                slots.update(range(int(a), int(b or a) + 1))
            out.append({"id": parts[0], "address": parts[1].split("@")[0], "flags": set(parts[2].split(",")),
                        "master": None if parts[3] == "-" else parts[3], "slots": slots})
        return out

    def owner(self, slot: int) -> ClusterNode:
        """The primary serving `slot` (CLUSTER SLOTS of the first live node that answers)."""
        for asked in self.live():
            try:
                for start, end, primary, *_ in asked.client.command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        return self.node(f"{primary[0]}:{primary[1]}")
            except (OSError, RuntimeError):
                continue
        raise AssertionError(f"no node names the owner of slot {slot}")

    def primaries(self) -> list[ClusterNode]:
        return [n for n in self.live() if n.info("replication").get("role") == "master"]

    def replicas_of(self, primary: ClusterNode) -> list[ClusterNode]:
        pid = primary.id
        ids = {e["id"]: e for e in self.view()}
        return [n for n in self.live() if ids.get(n.id, {}).get("master") == pid]

    def slots_of(self, primary: ClusterNode) -> list[int]:
        mine = next(e for e in self.view(primary) if "myself" in e["flags"])
        return sorted(mine["slots"])

    def wait_ready(self, timeout: float = 30):
        """Until every live node says cluster_state:ok with every slot ok, every live node names
        the same owner for every slot, every primary has its replicas, and every replica's link
        is up (the state scripts/redis-cluster start waits for; after a fault: healed)."""
        why = ["?"]

        def ready():
            try:
                live = self.live()
                owners = set()
                for n in live:
                    info = dict(line.split(":", 1) for line in n.client.command("CLUSTER", "INFO").splitlines()
                                if ":" in line)
                    if info.get("cluster_state", "").strip() != "ok" or info.get("cluster_slots_ok", "").strip() != str(SLOTS):
                        why[0] = f"{n}: {info.get('cluster_state')}, {info.get('cluster_slots_ok')} slots ok"
                        return False
                    owners.add(tuple((int(s), int(e), p[1]) for s, e, p, *_ in sorted(n.client.command("CLUSTER", "SLOTS"))))
                if len(owners) != 1:
                    why[0] = "the nodes disagree on the slot map"
                    return False
                masters = 0
                for n in live:
                    rep = n.info("replication")
                    if rep.get("role") == "master":
                        masters += 1
                        if int(rep.get("connected_slaves", 0)) < self.replicas_wanted:
                            why[0] = f"{n} has {rep.get('connected_slaves')} replicas"
                            return False
                    elif rep.get("master_link_status") != "up":
                        why[0] = f"replica {n}: link {rep.get('master_link_status')}"
                        return False
                if masters != self.primaries_wanted:
                    why[0] = f"{masters} primaries"
                    return False
                return True
            except (OSError, RuntimeError, ValueError) as e:
                why[0] = repr(e)
                return False

        try:
            wait_until(ready, timeout, interval=0.1, what="a healthy cluster")
        except AssertionError as e:
            raise AssertionError(f"{e}: {why[0]}") from None

    def add_node(self, replica_of: ClusterNode | None = None) -> ClusterNode:
        """A new empty node joined to the cluster (`redis-cli --cluster add-node`): a primary
        without slots, or a replica of `replica_of`; returns once every node knows it."""
        import socket

        for _ in range(50):
            port = free_port()
            if port + 10000 > 65535:
                continue
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port + 10000)) != 0:
                    break
        node = ClusterNode(self.dir / f"node-{port}", self.node_timeout_ms)
        node.dir.mkdir()
        node.start()
        args = ["redis-cli", "--cluster", "add-node", node.address, self.live()[0].address]
        if replica_of is not None:
            args += ["--cluster-slave", "--cluster-master-id", replica_of.id]
        r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"add-node failed: {r.stdout[-1500:]} {r.stderr[-500:]}"
        self.nodes.append(node)
        wait_until(lambda: all(node.id in {e["id"] for e in self.view(n)} for n in self.live()), 15,
                   what=f"every node to know {node}")
        return node

    # faults ------------------------------------------------------------------------------

    def reshard(self, src: ClusterNode, dst: ClusterNode, slots: int) -> subprocess.CompletedProcess:
        """`redis-cli --cluster reshard` of `slots` slots from `src` to `dst` (redis-cli takes
        the source's lowest-numbered slots)."""
        r = subprocess.run(
            ["redis-cli", "--cluster", "reshard", src.address, "--cluster-from", src.id, "--cluster-to", dst.id,
             "--cluster-slots", str(slots), "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"reshard failed: {r.stdout[-1500:]} {r.stderr[-500:]}"
        return r

    def migrate_slot_by_hand(self, slot: int, src: ClusterNode, dst: ClusterNode, steps: int, pause: float,
                             key_order=None) -> dict:
        """Moves `slot` from `src` to `dst` as redis-cli does, but slowly: IMPORTING on `dst`,
        MIGRATING on `src`, then its keys in `steps` groups (one `MIGRATE ... KEYS` each), `pause`
        seconds before each group and before the final `SETSLOT NODE` (on `dst`, `src`, then
        every other primary). While the slot is split, a command whose keys are all still on
        `src` runs there; one with a key `src` lacks gets `ASK`, and `dst` (after `ASKING`) runs
        it when it has every key, else answers `TRYAGAIN` (so does a spend that would create a
        key, until the end). Returns what it did."""
        dst.client.command("CLUSTER", "SETSLOT", slot, "IMPORTING", src.id)
        src.client.command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id)
        keys = src.client.command("CLUSTER", "GETKEYSINSLOT", slot, 100_000)
        if key_order:
            keys = key_order(keys)
        groups = [keys[i * len(keys) // steps:(i + 1) * len(keys) // steps] for i in range(steps)]
        moved = 0
        for group in groups:
            time.sleep(pause)
            if group:
                src.client.command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *group)
                moved += len(group)
        # keys made on `src` meanwhile (a spend that found all its keys there)
        while rest := src.client.command("CLUSTER", "GETKEYSINSLOT", slot, 100_000):
            src.client.command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *rest)
            moved += len(rest)
        time.sleep(pause)
        dst.client.command("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
        src.client.command("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
        for n in self.primaries():
            if n not in (src, dst):
                try:
                    n.client.command("CLUSTER", "SETSLOT", slot, "NODE", dst.id)
                except RuntimeError:
                    pass  # it learnt already
        return {"keys": moved}

    def cut_replicas(self, primary: ClusterNode):
        """The primary's replicas cut off (their links killed; PSYNC, SYNC and REPLCONF refused
        to them by ACL): what it acknowledges from now on reaches no replica. Clients and the
        cluster bus are untouched (a partition of the replication links alone)."""
        primary.client.command("ACL", "SETUSER", "default", "-psync", "-sync", "-replconf")
        primary.client.command("CLIENT", "KILL", "TYPE", "replica")

    # reads -------------------------------------------------------------------------------

    def get(self, key: str):
        return self.owner(keyslot(key)).client.command("GET", key)

    def streams(self, prefix: str) -> list[tuple[ClusterNode, str]]:
        """Every event stream `prefix#events:{TAG}` on every primary."""
        out = []
        for n in self.primaries():
            cursor = "0"
            while True:
                cursor, keys = n.client.command("SCAN", cursor, "MATCH", prefix + "#events:{*}", "COUNT", 1000,
                                                "TYPE", "stream")
                out += [(n, k) for k in keys]
                if cursor == "0":
                    break
        return out

    def events(self, prefix: str) -> list[dict]:
        """Every usage event of every slot's stream (dicts: id + fields + `stream`)."""
        out: list[dict] = []
        for n, key in self.streams(prefix):
            start = "-"
            while True:
                page = n.client.command("XRANGE", key, start, "+", "COUNT", 1000)
                for eid, flat in page:
                    e = dict(zip(flat[0::2], flat[1::2]))
                    e["id"], e["stream"] = eid, key
                    out.append(e)
                if len(page) < 1000:
                    break
                ms, seq = page[-1][0].split("-")
                start = f"{ms}-{int(seq) + 1}"
        return out

    def diagnostics(self) -> str:
        parts = []
        for n in self.nodes:
            parts.append(f"--- {n.dir.name} {'alive' if n.alive() else 'down'} log (tail)\n" + n.log_tail(10))
        return "\n".join(parts)


class StateWatch:
    """Polls the `cluster_state` of `nodes` every `interval` s from a thread: when the cluster
    was down as any of them saw it (the nodes of a cluster that lost a slot's primary answer
    `CLUSTERDOWN` for every slot until a replica takes over: cluster-require-full-coverage is
    Redis's default)."""

    def __init__(self, nodes: list[ClusterNode], interval: float = 0.01):
        self.nodes = nodes
        self.interval = interval
        self.changes: list[tuple[float, bool]] = []   # (monotonic time, all ok) at each change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        clients = [RedisClient(n.sock, timeout=1.0) for n in self.nodes]
        last = None
        while not self._stop.is_set():
            ok = True
            for client in clients:
                try:
                    ok &= client.command("CLUSTER", "INFO").split("cluster_state:", 1)[1].split()[0] == "ok"
                except (OSError, RuntimeError, IndexError):
                    ok = False
            if ok != last:
                self.changes.append((time.monotonic(), ok))
                last = ok
            self._stop.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        """Stops; returns the (start, end) of each time some node's state was not ok."""
        self._stop.set()
        self._thread.join(timeout=5)
        out, down = [], None
        for t, ok in self.changes:
            if not ok and down is None:
                down = t
            elif ok and down is not None:
                out.append((down, t))
                down = None
        if down is not None:
            out.append((down, time.monotonic()))
        return out


# --------------------------------------------------------------------------------------------
# the stack


class ClusterStack(Cluster):
    """A Redis Cluster (`primaries` x (1 + `replicas`) nodes), `responders` charge-gate
    processes on `redis-cluster://SEEDS`, `nginxes` nginx each listing every responder."""

    def __init__(self, pools: str, routes: str, settings: str, *, responders: int = 3, nginxes: int = 2,
                 primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000):
        self.dir = Path(tempfile.mkdtemp(prefix="k", dir=harness._BASE))
        self.redis_cluster = RedisCluster(self.dir / "redis", primaries, replicas, node_timeout_ms)
        self.config = self.dir / "charge-gate.yaml"
        text = config_yaml(self.dir / "unused", pools, routes, settings)
        self.config_rest = "\n".join(line for line in text.splitlines() if not line.startswith("redis: ")) + "\n"
        self.add_processes(responders, nginxes)

    def start_store(self):
        self.redis_cluster.start()
        self.config.write_text(f"redis: redis-cluster://{self.redis_cluster.seeds}\n" + self.config_rest)

    def store_stops(self) -> list:
        return [self.redis_cluster.stop]

    @property
    def rc(self) -> RedisClient:
        raise AssertionError("a cluster has no single Redis: use redis_cluster")

    def events(self, prefix: str = "charge:") -> list[dict]:
        return self.redis_cluster.events(prefix)

    def state(self, key: str, prefix: str = "charge:"):
        import json

        raw = self.redis_cluster.get(prefix + key)
        return None if raw is None else json.loads(raw)

    def store_name(self) -> str:
        return f", redis-cluster://{self.redis_cluster.seeds}"

    def store_diagnostics(self) -> str:
        return self.redis_cluster.diagnostics()
