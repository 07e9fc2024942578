"""End-to-end harness (used by conftest.py and the test modules): real nginx + real charge-gate + real redis-server, all private.

Each test gets a fresh stack in its own short temp dir (unix socket paths are limited to 107
bytes): a redis-server on DIR/redis.sock (no TCP, no persistence), `charge-gate serve --config
DIR/charge-gate.yaml` on DIR/charge.sock, and nginx on a free 127.0.0.1 port with a config
rendered from deploy/nginx-stack.conf.in (the template deploy/local-stack uses too), which
includes the project's nginx/ snippets unmodified and puts a stand-in app on DIR/app.sock with
its own access log (DIR/app-access.log).

Every wait is bounded, every process is stopped at teardown (also when the test failed), and a
test that runs longer than CHARGE_GATE_E2E_TEST_TIMEOUT seconds (default 120) fails.

CHARGE_GATE_BIN: the binary (default .build/debug/charge-gate).
CHARGE_GATE_E2E_KEEP=1: keep the temp dirs (logs) of failed tests.
CHARGE_GATE_E2E_PROFILE: the auth profile every stack is rendered with, unless a test names its
  own: edge or keepalive (README, "Auth profiles"); default deploy/render-nginx-conf's
  (`--default-profile`). deploy/local-stack is started with it too.
CHARGE_GATE_E2E_STORE: what every Redis stack runs on: `redis` (default: a redis-server of its own
  per stack, as above) or `cluster`: one Redis Cluster for the whole session (scripts/redis-cluster:
  3 primaries, 3 replicas, under the session's base dir, stopped at exit), each stack on
  `redis-cluster://SEEDS` with a keyPrefix of its own (`cN:`) and keys in KeySpace's cluster
  layout (`Stack.keys`). The memory-store variants of `any_store` tests are skipped there (they
  run in the other steps), and so are tests about a single redis-server itself
  (`single_redis_only`: restarts, eviction, its socket or its commands).
"""

from __future__ import annotations


import atexit
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path



ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "nginx"
TEMPLATE = ROOT / "deploy" / "nginx-stack.conf.in"
LOCAL_STACK = ROOT / "deploy" / "local-stack"
REDIS_PRIVATE = ROOT / "scripts" / "redis-private"
REDIS_CLUSTER = ROOT / "scripts" / "redis-cluster"
RENDER_NGINX_CONF = ROOT / "deploy" / "render-nginx-conf"
TEST_TIMEOUT = int(os.environ.get("CHARGE_GATE_E2E_TEST_TIMEOUT", "120"))


def _binary() -> Path:
    raw = os.environ.get("CHARGE_GATE_BIN", ".build/debug/charge-gate")
    p = Path(raw)
    if not p.is_absolute():
        cwd_p = Path.cwd() / p
        p = cwd_p if cwd_p.exists() else ROOT / p
    return p


BIN = _binary()

PROFILES = ("edge", "keepalive")


def _profile() -> str:
    raw = os.environ.get("CHARGE_GATE_E2E_PROFILE", "")
    if not raw:
        r = subprocess.run([str(RENDER_NGINX_CONF), "--default-profile"], capture_output=True, text=True, timeout=20)
        raw = r.stdout.strip()
    if raw not in PROFILES:
        raise SystemExit(f"CHARGE_GATE_E2E_PROFILE must be one of {', '.join(PROFILES)}, got {raw!r}")
    return raw


# The auth profile of this run (Stack's default).
PROFILE = _profile()


def edge_profile_only():
    """pytest mark for a test about nginx's edge deny cache (the fastcgi_cache of the edge
    profile's charge-gate-server.conf): skipped when the run's profile has none."""
    import pytest

    return pytest.mark.skipif(PROFILE != "edge", reason=f"about nginx's edge deny cache, which the {PROFILE} "
                              "profile does not have (CHARGE_GATE_E2E_PROFILE)")


STORES = ("redis", "cluster")


def _store() -> str:
    raw = os.environ.get("CHARGE_GATE_E2E_STORE", "") or "redis"
    if raw not in STORES:
        raise SystemExit(f"CHARGE_GATE_E2E_STORE must be one of {', '.join(STORES)}, got {raw!r}")
    return raw


# What every Redis stack of this run uses: its own redis-server, or the session's cluster.
STORE = _store()
CLUSTER = STORE == "cluster"


def single_redis_only(reason: str):
    """pytest mark for a test about one redis-server itself (killed and restarted, reconfigured,
    evicting, its unix socket) or about the single-node key layout alone: skipped when the run's
    stacks share a Redis Cluster (CHARGE_GATE_E2E_STORE=cluster). `reason` says what it needs."""
    import pytest

    return pytest.mark.skipif(CLUSTER, reason=f"single redis-server only: {reason} (this run's store is a "
                              "Redis Cluster: CHARGE_GATE_E2E_STORE=cluster)")


def cluster_bug(bug: str):
    """pytest mark for a test that the responder fails on a Redis Cluster (CHARGE_GATE_E2E_STORE=
    cluster) for a known reason, `bug`: an expected failure there, strict (the day it passes, the
    mark must go), and an ordinary test on a single redis-server."""
    import pytest

    return pytest.mark.xfail(CLUSTER, reason=f"responder bug on a Redis Cluster: {bug}", strict=True)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

# tests/e2e/run passes its own base dir (it cleans up after a killed pytest); else a new one.
_BASE = Path(os.environ.get("CHARGE_GATE_E2E_BASE") or tempfile.mkdtemp(prefix="cg-e2e-", dir="/tmp"))
_BASE.mkdir(parents=True, exist_ok=True)


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when pytest dies (PR_SET_PDEATHSIG), so that a killed test
    run leaves no redis-server or charge-gate behind. nginx daemonizes: tests/e2e/run stops it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort
        pass
_ALL_STACKS: list["Stack"] = []


def cleanup_all() -> None:
    """Stops every stack ever made here and removes the temp dirs (unless CHARGE_GATE_E2E_KEEP)."""
    for s in _ALL_STACKS:
        try:
            s.stop()
        except Exception:  # noqa: BLE001 - best effort, everything must be tried
            pass
    try:
        SESSION_CLUSTER.stop()
    except Exception:  # noqa: BLE001 - best effort
        pass
    if not os.environ.get("CHARGE_GATE_E2E_KEEP"):
        shutil.rmtree(_BASE, ignore_errors=True)


atexit.register(cleanup_all)


# --------------------------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_at_once(n: int, request, start: float, timeout: float = 30) -> list:
    """`request()` from `n` threads released together by a barrier (which fails a thread whose
    peers have not all arrived within `start` s); their results in thread order (None where a
    thread did not finish within `timeout`)."""
    import threading

    barrier = threading.Barrier(n)
    results: list = [None] * n

    def one(i):
        barrier.wait(start)
        results[i] = request()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def unix_connectable(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def live_pid(pidfile: Path) -> int | None:
    """The pid in `pidfile` when that process is alive; None when there is no readable pid or
    it is dead."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid: int, sig=signal.SIGTERM, timeout: float = 5.0) -> None:
    """Sends `sig`, waits up to `timeout`, then SIGKILL."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_popen(proc: subprocess.Popen | None, sig=signal.SIGTERM, timeout: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for k, v in self.header_list:
            if k.lower() == name.lower():
                return v
        return None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.header_list} {self.body[:300]!r}>"


def http_request(port: int, method: str, path: str, headers: dict | list | None = None,
                 body: bytes | None = None, timeout: float = 10.0, source: str | None = None) -> Response:
    """One request with http.client, the path sent verbatim (`/api//x`, `%67`, `..` kept).
    `source`: bind the client socket to this local address first (e.g. "127.0.0.2": still
    loopback traffic, but nginx sees $remote_addr 127.0.0.2)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes, returns everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)


def local_stack(*args, timeout=60, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs deploy/local-stack ARGS with this binary (CHARGE_GATE_BIN), output captured; `up`
    on this run's auth profile (PROFILE) unless ARGS name one."""
    env = dict(os.environ, CHARGE_GATE_BIN=str(BIN), **(env or {}))
    if args[:1] == ("up",) and not any(a == "--profile" or a.startswith("--profile=") for a in args):
        args = (*args, "--profile", PROFILE)
    return subprocess.run([str(LOCAL_STACK), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=env)


# --------------------------------------------------------------------------------------------
# Redis


class RedisCommands:
    """What RedisClient and ClusterClient share on top of their `command`."""

    def command(self, *args):
        raise NotImplementedError

    def get(self, key: str):
        return self.command("GET", key)

    def now_ms(self) -> int:
        sec, usec = self.command("TIME")
        return int(sec) * 1000 + int(usec) // 1000

    def info(self, section: str) -> dict[str, str]:
        """`INFO section` as a dict of its `field:value` lines."""
        out = {}
        for line in self.command("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out

    def command_stats(self, name: str) -> dict[str, int]:
        """The integer fields of `cmdstat_NAME` (`calls`, `rejected_calls`, ...) since the last
        CONFIG RESETSTAT; {} when the command has not run."""
        stat = self.info("commandstats").get(f"cmdstat_{name}", "")
        fields = dict(kv.split("=", 1) for kv in stat.split(",") if "=" in kv)
        return {k: int(v) for k, v in fields.items() if v.isdigit()}

    def script_calls(self, rejected: bool = False) -> int:
        """EVALSHA + EVAL calls since the last CONFIG RESETSTAT (`rejected`: those Redis refused
        before running them too)."""
        total = 0
        for name in ("evalsha", "eval"):
            stats = self.command_stats(name)
            total += stats.get("calls", 0) + (stats.get("rejected_calls", 0) if rejected else 0)
        return total


def file_tail(path: Path, n: int) -> str:
    """The last `n` lines of the log at `path` ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class RedisClient(RedisCommands):
    """A minimal RESP client (no redis-cli needed): over the unix socket `path`, or over TCP when
    `path` is a (host, port) pair (a cluster node)."""

    def __init__(self, path: Path | tuple[str, int], timeout: float = 5.0):
        self.path = path
        self.timeout = timeout

    def command(self, *args):
        tcp = isinstance(self.path, tuple)
        s = socket.socket(socket.AF_INET if tcp else socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path if tcp else str(self.path))
            out = [f"*{len(args)}\r\n".encode()]
            for a in args:
                b = a if isinstance(a, bytes) else str(a).encode()
                out.append(b"$%d\r\n%s\r\n" % (len(b), b))
            s.sendall(b"".join(out))
            f = s.makefile("rb")
            return self._read(f)
        finally:
            s.close()

    def _read(self, f):
        line = f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read(f) for _ in range(n)]
        raise RuntimeError(f"unexpected RESP {line!r}")


class RedisServer:
    def __init__(self, dir: Path):
        self.dir = dir
        self.sock = dir / "redis.sock"
        self.proc: subprocess.Popen | None = None
        self.client = RedisClient(self.sock)

    @property
    def url(self) -> str:
        """The config's `redis:` for this server."""
        return f"unix://{self.sock}"

    # How long a start may take (a persistent subclass reads its data first).
    start_timeout = 10

    def persistence_args(self) -> list[str]:
        """Where and how Redis keeps data: nowhere, here (a subclass overrides it)."""
        return ["--dir", str(self.dir), "--save", "", "--appendonly", "no"]

    def start(self):
        if self.sock.exists():
            self.sock.unlink()
        log = open(self.dir / "redis.log", "ab")
        # scripts/redis-private run: the project's one way to start a private Redis; it execs
        # redis-server, so self.proc is the server itself.
        self.proc = subprocess.Popen(
            [str(REDIS_PRIVATE), "run", str(self.dir), "--debug-command", "--", *self.persistence_args()],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            env={**os.environ, "REDIS_SERVER": REDIS_SERVER})
        log.close()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited at start: " + self.log_tail())
            try:
                return self.client.command("PING") == "PONG"
            except (OSError, RuntimeError):  # RuntimeError: -LOADING while persisted data is read
                return False

        wait_until(ready, self.start_timeout, interval=0.005, what="redis-server")

    def kill(self):
        stop_popen(self.proc, signal.SIGKILL)

    def stop(self):
        stop_popen(self.proc, signal.SIGTERM)

    def log_tail(self, n=20) -> str:
        return file_tail(self.dir / "redis.log", n)


# --------------------------------------------------------------------------------------------
# Redis Cluster (CHARGE_GATE_E2E_STORE=cluster)


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), Redis Cluster's key hash."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def key_slot(key: str | bytes) -> int:
    """The cluster slot of `key` (its hash tag when it has a non-empty one), as CLUSTER KEYSLOT."""
    b = key if isinstance(key, bytes) else key.encode()
    start = b.find(b"{")
    if start >= 0:
        end = b.find(b"}", start + 1)
        if end > start + 1:
            b = b[start + 1:end]
    return crc16(b) % 16384


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def slot_tag(slot: int) -> str:
    """The tag the cluster store gives `slot` (ClusterSlot.tag(forSlot:)): the first base-36
    text, counting up from 0, whose CRC16 lands in it."""
    n = 0
    while True:
        text = _base36(n)
        if crc16(text.encode()) % 16384 == slot:
            return text
        n += 1


class KeySpace:
    """Where the responder keeps what (Sources/ChargeGateCore/Store/KeySpace.swift, docs/redis.md):
    the single-node layout (next-charge's keys), or the cluster layout (hash tags: a subject's keys
    share `{SUBJECT}`, a global pool's bucket is `PREFIX{POOL}`, streams and holds one per slot).
    Subjects in key form (`metering_support.h` for one that is hashed)."""

    def __init__(self, prefix: str = "charge:", cluster: bool = False):
        self.prefix = prefix
        self.cluster = cluster

    @staticmethod
    def tag(subject: str) -> str:
        """A subject's hash tag: `{SUBJECT}`, `{#}` for none (no key form holds `#`)."""
        return "{" + (subject or "#") + "}"

    def bucket(self, pool: str, subject: str | None = None) -> str:
        """A global pool's bucket, or with `subject` a per-subject pool's."""
        if subject is None:
            return self.prefix + ("{" + pool + "}" if self.cluster else pool)
        return self.prefix + pool + ":" + (self.tag(subject) if self.cluster else subject)

    def named(self, name: str) -> str:
        """The bucket named as the single-node key's tail: `POOL` or `POOL:SUBJECT`."""
        pool, sep, subject = name.partition(":")
        return self.bucket(pool, subject if sep else None)

    def plan(self, subject: str) -> str:
        return self.prefix + "#plan:" + (self.tag(subject) if self.cluster else subject)

    def idempotency(self, subject: str, client_key: str) -> str:
        import hashlib

        digest = hashlib.sha256(f"{subject}\n{client_key}".encode()).hexdigest()[:32]
        return self.prefix + "#idem:" + (self.tag(subject) + ":" if self.cluster else "") + digest

    def idempotency_quota(self, subject: str) -> str:
        return self.prefix + "#idemq:" + (self.tag(subject) if self.cluster else subject)

    @property
    def events(self) -> str:
        """The event stream (on a cluster the base of one stream per slot: `events_in`)."""
        return self.prefix + "#events"

    def events_in(self, slot: int) -> str:
        """The cluster's event stream of `slot`: `PREFIX#events:{TAG}`."""
        return self.events + ":{" + slot_tag(slot) + "}"

    def hold(self, id: str, slot: int | None = None) -> str:
        """A settled request's hold; on a cluster the one in `slot`: `PREFIX#hold:{TAG}:ID`."""
        if slot is None:
            return self.prefix + "#hold:" + id
        return self.prefix + "#hold:{" + slot_tag(slot) + "}:" + id

    def hold_claim(self, id: str) -> str:
        """Where a cluster spend claims hold id `id`: `PREFIX#holdref:{ID}`."""
        return self.prefix + "#holdref:{" + id + "}"


# Commands without keys, sent to one primary (KEYS, DBSIZE and FLUSHALL go to every primary).
_KEYLESS = {"TIME", "PING", "INFO", "CONFIG", "DEBUG", "CLUSTER", "SCAN", "SCRIPT", "CLIENT", "ROLE", "WAIT",
            "ECHO", "LASTSAVE", "MEMORY", "COMMAND"}
# Commands whose every argument is a key (split by slot when they span several).
_ALL_KEYS = {"DEL", "EXISTS", "UNLINK", "TOUCH"}


class ClusterClient(RedisCommands):
    """A cluster-aware RedisClient: each command goes to the primary that owns its keys' slot
    (the slot map from CLUSTER SLOTS, read again on MOVED). `KEYS`, `DBSIZE` and `FLUSHALL` are
    asked of every primary (KEYS: the keys of all, sorted); DEL/EXISTS/... over several slots are
    split; any other command whose keys span slots fails with CROSSSLOT, as on a cluster."""

    def __init__(self, seeds: list[tuple[str, int]], timeout: float = 5.0):
        self.seeds = seeds
        self.timeout = timeout
        self._slots: list[tuple[int, int, tuple[str, int]]] = []

    def refresh(self):
        last = None
        for seed in self.seeds:
            try:
                reply = RedisClient(seed, self.timeout).command("CLUSTER", "SLOTS")
            except (OSError, RuntimeError, ConnectionError) as e:
                last = e
                continue
            self._slots = sorted((int(r[0]), int(r[1]), (r[2][0] or seed[0], int(r[2][1]))) for r in reply)
            if self._slots:
                return
        raise AssertionError(f"no seed of the cluster answered CLUSTER SLOTS: {last!r}")

    def primaries(self) -> list[tuple[str, int]]:
        if not self._slots:
            self.refresh()
        seen = []
        for _, _, node in self._slots:
            if node not in seen:
                seen.append(node)
        return seen

    def node_of(self, slot: int) -> tuple[str, int]:
        """The primary that serves `slot`."""
        if not self._slots:
            self.refresh()
        for lo, hi, node in self._slots:
            if lo <= slot <= hi:
                return node
        raise AssertionError(f"slot {slot} is not served")

    def on(self, node: tuple[str, int]) -> RedisClient:
        return RedisClient(node, self.timeout)

    @staticmethod
    def keys_of(args) -> list[str]:
        name = str(args[0]).upper()
        if name in ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL"):
            return [str(a) for a in args[3:3 + int(args[2])]]
        if name in _ALL_KEYS:
            return [str(a) for a in args[1:]]
        if name in _KEYLESS or len(args) < 2:
            return []
        return [str(args[1])]

    def command(self, *args):
        name = str(args[0]).upper()
        if name in ("CONFIG", "SHUTDOWN", "ACL") and str(args[1]).upper() not in ("GET", "LIST", "WHOAMI"):
            raise AssertionError(f"{name} {args[1]} would change the session's cluster for every later test: "
                                 "mark the test single_redis_only")
        if name == "KEYS":
            return sorted(k for node in self.primaries() for k in self.on(node).command(*args))
        if name == "DBSIZE":
            return sum(self.on(node).command(*args) for node in self.primaries())
        if name in ("FLUSHALL", "FLUSHDB"):
            for node in self.primaries():
                self.on(node).command(*args)
            return "OK"
        keys = self.keys_of(args)
        slots = {key_slot(k) for k in keys}
        if len(slots) > 1:
            if name in _ALL_KEYS:
                return sum(self.command(args[0], k) for k in keys)
            raise RuntimeError("redis error: CROSSSLOT Keys in request don't hash to the same slot")
        for attempt in range(3):
            node = self.node_of(next(iter(slots))) if slots else self.primaries()[0]
            try:
                return self.on(node).command(*args)
            except RuntimeError as e:
                if attempt < 2 and str(e).startswith(("redis error: MOVED", "redis error: TRYAGAIN")):
                    time.sleep(0.05)
                    self.refresh()
                    continue
                raise


class SessionCluster:
    """The one Redis Cluster of a CHARGE_GATE_E2E_STORE=cluster session (scripts/redis-cluster
    start: 3 primaries with a replica each, in the session's base dir), started by the first stack
    that needs it and stopped at exit (cleanup_all; tests/e2e/run stops what a killed run left)."""

    def __init__(self, dir: Path):
        self.dir = dir
        self.seeds: list[tuple[str, int]] = []
        self._client: ClusterClient | None = None

    def start(self):
        if self.seeds:
            return self
        r = subprocess.run([str(REDIS_CLUSTER), "start", str(self.dir), "--wait", "60"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "REDIS_SERVER": REDIS_SERVER})
        if r.returncode != 0:
            raise AssertionError(f"scripts/redis-cluster start failed: {r.stderr.strip()}")
        self.seeds = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in r.stdout.strip().split(","))]
        self._client = ClusterClient(self.seeds)
        return self

    @property
    def client(self) -> ClusterClient:
        self.start()
        return self._client

    @property
    def url(self) -> str:
        """`redis-cluster://` with every node as a seed, primaries first."""
        self.start()
        return "redis-cluster://" + ",".join(f"{h}:{p}" for h, p in self.seeds)

    def stop(self):
        if self.seeds or any(self.dir.glob("node-*")):
            subprocess.run([str(REDIS_CLUSTER), "stop", str(self.dir)], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
        self.seeds = []

    def log_tail(self, n=5) -> str:
        out = []
        for log in sorted(self.dir.glob("node-*/redis.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            out.append(f"[{log.parent.name}]\n" + "\n".join(lines))
        return "\n".join(out)


SESSION_CLUSTER = SessionCluster(_BASE / "cluster")

_prefix_counter = 0


def _next_prefix() -> str:
    """A keyPrefix no other stack of this session has: `cN:` (no brace: the cluster's tags)."""
    global _prefix_counter
    _prefix_counter += 1
    return f"c{_prefix_counter}:"


class ClusterRedis:
    """What a stack sees of the session's cluster, in place of its own RedisServer: the client,
    the URL, and its key prefix. It cannot be killed or restarted: a test that does so is about a
    single redis-server (`single_redis_only`)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.cluster = SESSION_CLUSTER

    @property
    def client(self) -> ClusterClient:
        return self.cluster.client

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def sock(self):
        raise AssertionError("a Redis Cluster has no unix socket: mark the test single_redis_only")

    def start(self):
        self.cluster.start()

    def stop(self):
        pass  # the session's cluster outlives the stack; its keys are under the stack's prefix

    def kill(self):
        raise AssertionError("the session's Redis Cluster is not killed by a test: mark it single_redis_only")

    def log_tail(self, n=20) -> str:
        return self.cluster.log_tail(max(1, n // 6))


# --------------------------------------------------------------------------------------------
# the stack


DEFAULT_POOLS = """\
pools:
  - id: generate-image
    maxCharges: 5
    rechargeIntervalHours: 2
    label: Image generation
    group: AI
  - id: describe-image
    maxCharges: 20
    rechargeIntervalHours: 0.5
  - id: fast
    maxCharges: 1
    rechargeIntervalHours: 0.0005
  - id: combo-a
    maxCharges: 3
    rechargeIntervalHours: 1
  - id: combo-b
    maxCharges: 1
    rechargeIntervalHours: 2
  - id: burst
    maxCharges: 50
    rechargeIntervalHours: 24
  - id: redir
    maxCharges: 2
    rechargeIntervalHours: 24
routes:
  - prefix: /api/generate
    pools: [generate-image]
    methods: [POST]
  - prefix: /api/describe
    pools: [describe-image]
  - prefix: /api/fast
    pools: [fast]
  - prefix: /api/combo
    pools: [combo-a, combo-b]
  - prefix: /api/combo-rev
    pools: [combo-b, combo-a]
  - prefix: /api/combo-a-only
    pools: [combo-a]
  - prefix: /api/combo-b-only
    pools: [combo-b]
  - prefix: /api/burst
    pools: [burst]
  - prefix: /api/redir
    pools: [redir]
  - prefix: /api/private
    pools: [generate-image]
  - prefix: /api/app-forbidden
    pools: [describe-image]
"""

# Locations the tests need besides the template's gated /api/ (rendered into its EXTRA slot).
TEST_EXTRA = """\
        # nginx itself refuses (a `deny` beside the gate): must stay a plain 403.
        location /api/private/ {
            deny all;
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/app.sock;
        }
        # The app refuses after an allow, and nginx intercepts it: must stay a plain 403.
        location /api/app-forbidden {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_intercept_errors on;
            proxy_pass http://unix:@DIR@/app.sock;
        }
        # The app fails after an allow, and nginx intercepts it: must stay a plain 500.
        location /api/app-error {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_intercept_errors on;
            proxy_pass http://unix:@DIR@/app.sock;
        }
        # Protected content reached through an internal redirect (try_files here; index and
        # rewrite ... last do the same): the access phase, and auth_request, run twice.
        location /api/redir/a/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            try_files /nonexistent /api/redir/b$uri;
        }
        location /api/redir/b/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/app.sock;
        }
        # Two internal redirects in a row: /api/redir/twice/x -> /api/redir/a/... -> /api/redir/b/...
        location /api/redir/twice/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            try_files /nonexistent /api/redir/a$uri;
        }
        # The documented line that turns the RateLimit fields off.
        location /api/describe/quiet/ {
            set $charge_gate_ratelimit_headers off;
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/app.sock;
        }
        # A misconfigured auth location that names an unknown role: never a free pass.
        location = /_bogus_auth {
            internal;
            fastcgi_pass charge_gate;
            fastcgi_pass_request_body off;
            fastcgi_param CHARGE_GATE_ROLE bogus;
            fastcgi_param CHARGE_GATE_URI $charge_gate_uri;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param REQUEST_URI $request_uri;
        }
        location /api/misconfigured/ {
            set $charge_gate_uri $uri;
            auth_request /_bogus_auth;
            auth_request_set $charge_gate_status $upstream_http_x_charge_status;
            auth_request_set $charge_gate_body $upstream_http_x_charge_body;
            auth_request_set $charge_gate_retry_after $upstream_http_x_charge_retry_after;
            auth_request_set $charge_gate_upstream_status $upstream_status;
            error_page 403 = @charge_gate_denied;
            error_page 500 = @charge_gate_error;
            proxy_pass http://unix:@DIR@/app.sock;
        }
"""


def render_nginx_conf(dir: Path, port: int, extra: str = "", http_extra: str = "", profile: str | None = None) -> str:
    """Renders deploy/nginx-stack.conf.in exactly as deploy/local-stack does, on the auth
    `profile` (default: this run's, PROFILE). `http_extra`: text for the template's http-block
    slot (maps, zones), written to DIR/http-extra.conf."""
    args = [str(RENDER_NGINX_CONF), "--dir", str(dir), "--port", str(port), "--profile", profile or PROFILE,
            "--extra", "-"]
    if http_extra:
        http_extra_file = Path(dir) / "http-extra.conf"
        http_extra_file.write_text(http_extra)
        args += ["--http-extra", str(http_extra_file)]
    r = subprocess.run(args, input=extra, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError(f"deploy/render-nginx-conf failed: {r.stderr.strip()}")
    return r.stdout


class Nginx:
    def __init__(self, dir: Path, port: int, extra: str, http_extra: str = "", profile: str | None = None):
        self.dir = dir
        self.port = port
        self.extra = extra
        self.http_extra = http_extra
        self.profile = profile or PROFILE
        self.conf = dir / "nginx.conf"

    def start(self):
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.conf.write_text(render_nginx_conf(self.dir, self.port, self.extra, self.http_extra, self.profile))
        r = subprocess.run([NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.dir / "error.log")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise AssertionError(f"nginx failed to start: {r.stderr.strip()}")
        wait_until(lambda: self.pid() is not None, 5, what="nginx pid file")

    def pid(self) -> int | None:
        return live_pid(self.dir / "nginx.pid")

    def stop(self):
        pid = self.pid()
        if pid is None:
            return
        try:
            children = [int(c) for c in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                       text=True, timeout=5).stdout.split()]
        except (OSError, subprocess.SubprocessError, ValueError):
            children = []
        stop_pid(pid, signal.SIGTERM, 5)
        for c in children:
            if pid_alive(c):
                stop_pid(c, signal.SIGKILL, 1)


class Responder:
    def __init__(self, dir: Path, config: Path):
        self.dir = dir
        self.config = config
        self.sock = dir / "charge.sock"
        self.proc: subprocess.Popen | None = None
        self.log = dir / "charge-gate.log"

    def start(self, extra_args: list[str] | None = None, stdin=subprocess.DEVNULL, wait_socket=True):
        if not BIN.exists():
            raise AssertionError(f"charge-gate binary not found at {BIN} (set CHARGE_GATE_BIN)")
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([str(BIN), "serve", "--config", str(self.config)] + (extra_args or []),
                                     stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        log.close()
        if wait_socket:
            def ready():
                if self.proc.poll() is not None:
                    raise AssertionError(f"charge-gate exited at start ({self.proc.returncode}): " + self.log_tail())
                return unix_connectable(self.sock)

            wait_until(ready, 15, what="charge-gate socket")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        stop_popen(self.proc, signal.SIGTERM, 5)

    def kill(self):
        stop_popen(self.proc, signal.SIGKILL)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=30) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])


class Stack:
    """redis-server + charge-gate + nginx in one temp dir; nginx on the auth `profile` (edge or
    keepalive; default this run's, PROFILE). With CHARGE_GATE_E2E_STORE=cluster the Redis is the
    session's cluster (ClusterRedis) under a keyPrefix of the stack's own; `keys` is where the
    responder keeps what, in either layout."""

    def __init__(self, config_body: str = DEFAULT_POOLS, *, redis: bool = True, settings: str = "",
                 extra: str = TEST_EXTRA, start_responder: bool = True, http_extra: str = "",
                 profile: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="s", dir=_BASE))
        self.port = free_port()
        if redis and CLUSTER:
            self.redis = ClusterRedis(_next_prefix())
        else:
            self.redis = RedisServer(self.dir) if redis else None
        self.keys = KeySpace(self.redis.prefix, True) if isinstance(self.redis, ClusterRedis) else KeySpace()
        self.config = self.dir / "charge-gate.yaml"
        self.config_body = config_body
        self.settings = settings
        self.nginx = Nginx(self.dir, self.port, extra, http_extra, profile)
        self.profile = self.nginx.profile
        self.responder = Responder(self.dir, self.config)
        self.start_responder = start_responder
        _ALL_STACKS.append(self)

    # config -----------------------------------------------------------------------------

    def config_text(self, body: str | None = None, settings: str | None = None, listen: str | None = None) -> str:
        head = f"listen: {listen or self.dir / 'charge.sock'}\n"
        if self.redis is not None:
            head += f"redis: {self.redis.url}\n"
        if self.cluster:
            head += f"keyPrefix: \"{self.keys.prefix}\"\n"
        head += "redisTimeoutMs: 500\n"
        s = self.settings if settings is None else settings
        if s:
            head += textwrap.dedent(s).strip("\n") + "\n"
        return head + (self.config_body if body is None else body)

    def write_config(self, body: str | None = None, settings: str | None = None, listen: str | None = None,
                     raw: str | None = None):
        self.config.write_text(raw if raw is not None else self.config_text(body, settings, listen))

    # lifecycle --------------------------------------------------------------------------

    def start(self):
        self.write_config()
        if self.redis is not None:
            self.redis.start()
        if self.start_responder:
            self.responder.start()
        self.nginx.start()
        return self

    def stop(self):
        for step in (self.nginx.stop, self.responder.stop, lambda: self.redis and self.redis.stop()):
            try:
                step()
            except Exception:  # keep going: everything must be stopped
                pass

    # requests ---------------------------------------------------------------------------

    def request(self, method: str, path: str, headers=None, body: bytes | None = None, timeout: float = 10.0,
                source: str | None = None) -> Response:
        return http_request(self.port, method, path, headers, body, timeout, source)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def raw(self, data: bytes, timeout: float = 10.0) -> bytes:
        return raw_request(self.port, data, timeout)

    # observations -----------------------------------------------------------------------

    def app_hits(self) -> list[str]:
        """Lines of the stand-in app's access log: `METHOD REQUEST_URI STATUS`."""
        try:
            return (self.dir / "app-access.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def app_hits_settled(self, expected: int | None = None, timeout: float = 1.0) -> list[str]:
        """The app log once it has `expected` lines (or after a short settle time)."""
        if expected is None:
            time.sleep(0.15)
            return self.app_hits()
        try:
            wait_until(lambda: len(self.app_hits()) >= expected, timeout, what=f"{expected} app hits")
        except AssertionError:
            pass
        time.sleep(0.05)
        return self.app_hits()

    def edge_log(self) -> list[dict]:
        """The gated server's access log (JSON lines: method, request_uri, uri, status, gate)."""
        try:
            lines = (self.dir / "access.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    @property
    def cluster(self) -> bool:
        """Whether this stack's Redis is the session's cluster."""
        return isinstance(self.redis, ClusterRedis)

    def key(self, pool: str):
        """The raw bucket of `pool` (`POOL`, or `POOL:SUBJECT` for a per-subject pool)."""
        return self.redis.client.get(self.keys.named(pool))

    def state(self, pool: str):
        raw = self.key(pool)
        return None if raw is None else json.loads(raw)

    def redis_keys(self, pattern: str = "*") -> list[str]:
        """The keys under this stack's prefix matching `pattern` (after the prefix), sorted: every
        key (`KEYS PREFIX*`) on a single redis-server or on every primary of the cluster."""
        return sorted(self.redis.client.command("KEYS", self.keys.prefix + pattern))

    def redis_nodes(self) -> list[RedisClient]:
        """A client of each node that holds data: the redis-server, or every primary of the cluster
        (for per-node commands such as INFO)."""
        if not self.cluster:
            return [self.redis.client]
        c = self.redis.client
        return [c.on(node) for node in c.primaries()]

    def redis_node_of(self, key: str) -> RedisClient:
        """A client of the node that holds `key`: the redis-server, or its slot's primary."""
        if not self.cluster:
            return self.redis.client
        c = self.redis.client
        return c.on(c.node_of(key_slot(key)))

    def event_streams(self) -> list[str]:
        """The event streams: `PREFIX#events`, or on a cluster every slot's that exists."""
        if not self.cluster:
            return [self.keys.events]
        return self.redis_keys("#events:{*}")

    def events_len(self) -> int:
        """XLEN of the event stream (on a cluster, the sum over every slot's)."""
        return sum(self.redis.client.command("XLEN", k) for k in self.event_streams())

    def usage(self) -> dict:
        r = self.get("/api/usage")
        assert r.status == 200, r
        return {p["id"]: p for p in r.json()["pools"]}

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> str:
        parts = [f"--- stack dir {self.dir} port {self.port} profile {self.profile}"
                 + (f" cluster {self.redis.url} keyPrefix {self.keys.prefix}" if self.cluster else "")]
        parts.append("--- charge-gate.log (tail)\n" + self.responder.log_tail(40))
        parts.append("--- nginx error.log (tail)\n" + "\n".join(self.error_log().splitlines()[-20:]))
        if self.redis is not None:
            parts.append(("--- the cluster's redis.logs (tails)\n" if self.cluster else "--- redis.log (tail)\n")
                         + self.redis.log_tail(10))
        return "\n".join(parts)


# helpers used by several test modules ---------------------------------------------------------

OUT_OF_CHARGE = re.compile(r'^\{"error":"out_of_charge","retryAfterMs":(\d+),"poolId":"([A-Za-z0-9._-]+)"\}$')
SERVICE_UNAVAILABLE = b'{"error":"service_unavailable"}'


def app_body(method: str, uri: str) -> bytes:
    return ('{"ok":true,"method":"%s","uri":"%s"}' % (method, uri)).encode()


def assert_json(r: Response):
    assert r.header("Content-Type") == "application/json", r


def assert_allowed(r: Response, method: str, uri: str):
    assert r.status == 200, r
    assert_json(r)
    assert r.body == app_body(method, uri), r


def assert_out_of_charge(r: Response, pool: str) -> int:
    """Asserts the exact 429 and returns retryAfterMs."""
    assert r.status == 429, r
    assert_json(r)
    m = OUT_OF_CHARGE.match(r.text)
    assert m, r
    assert m.group(2) == pool, r
    n = int(m.group(1))
    assert r.headers_named("Retry-After") == [str(-(-n // 1000))], r
    return n


def allowed_within(request, pool: str, seconds: float, what: str, interval: float = 0.02) -> Response:
    """Sends `request()` until it answers 200 and returns that answer: every answer before it
    must be the exact 429 of `pool`, and the 200 must come within `seconds` of the first
    (else `what`). For a denial cached at the edge or in a worker's memory that must end
    within its bound after a top-off or a plan change."""
    start = time.monotonic()
    while True:
        r = request()
        if r.status == 200:
            return r
        assert_out_of_charge(r, pool)
        assert time.monotonic() - start < seconds, what
        time.sleep(interval)


def assert_unavailable(r: Response):
    assert r.status == 503, r
    assert_json(r)
    assert r.body == SERVICE_UNAVAILABLE, r
    assert r.header("Retry-After") is None, r


def scrape(stack: Stack, **kw) -> dict[str, float]:
    """GET /metrics through nginx: {sample name with its labels: value}."""
    r = stack.get("/metrics", **kw)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


# Metering helpers (docs/http.md) ------------------------------------------------------------

EVENT_KEYS = ["id", "time", "pool", "subject", "amount", "route", "method", "uri", "idempotencyKey", "plan", "kind"]
# After EVENT_KEYS, each only when the event has it, in this order (docs/http.md, events).
EVENT_OPTIONAL_KEYS = ["hold", "status"]
# The columns of `charge-gate events --format csv`: every one on every line.
EVENT_CSV_KEYS = EVENT_KEYS + EVENT_OPTIONAL_KEYS


def in_stream_order(stack: Stack, rows: list, stream) -> list:
    """`rows` (the log's events, or what a test expects of them) in the order the log keeps:
    as they are off a cluster; on a cluster grouped by `stream(row)`, the slot its event is
    written in (a subject's for its pools, a global pool's own), each group in its own order (a
    stable sort): the log merges one stream per slot, and events that two slots wrote in one
    millisecond have no order between them (docs/http.md)."""
    return sorted(rows, key=stream) if stack.cluster else rows


def fetch_events(stack: Stack, token: str, limit: int | None = None, **query) -> list[dict]:
    """Every event of GET /api/usage/events?QUERY (admin), following `next` page by page with
    `after`; checks each page's shape (events then next, each event's keys in order)."""
    from urllib.parse import urlencode

    events: list[dict] = []
    after = None
    for _ in range(100_000):
        q = {k: v for k, v in query.items() if v is not None}
        if limit is not None:
            q["limit"] = limit
        if after is not None:
            q["after"] = after
        r = stack.get("/api/usage/events" + ("?" + urlencode(q) if q else ""),
                      headers={"Authorization": "Bearer " + token})
        assert r.status == 200, r
        assert_json(r)
        doc = json.loads(r.body, object_pairs_hook=lambda pairs: pairs)
        assert [k for k, _ in doc] == ["events", "next"], r
        page = [dict(pairs) for pairs in doc[0][1]]
        for pairs in doc[0][1]:
            keys = [k for k, _ in pairs]
            assert keys == EVENT_KEYS + [k for k in EVENT_OPTIONAL_KEYS if k in keys], pairs
        if limit is not None:
            if stack.cluster and len(page) > limit:
                # On a cluster the log merges one stream per slot, whose ids may be equal: a page
                # keeps every event of its last id (so that `after` loses none), past `limit`.
                assert {e["id"] for e in page[limit - 1:]} == {page[-1]["id"]}, r
            else:
                assert len(page) <= limit, r
        events += page
        after = doc[1][1]
        if after is None:
            return events
        if page:
            assert after == page[-1]["id"], r
    raise AssertionError("the events never ended (next never null)")


# --------------------------------------------------------------------------------------------
# shared by the conftests (e2e and reliability)


class TestTimeout(Exception):
    """A test ran past its limit."""


@contextlib.contextmanager
def alarm(seconds: int):
    """Raises TestTimeout in the test if it runs longer than `seconds`."""
    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded {seconds}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def tear_down(request, made) -> None:
    """Stops what a test started (stacks or clusters); prints their diagnostics when the test
    failed, and keeps their state dirs then if CHARGE_GATE_E2E_KEEP is set."""
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for thing in made:
        if failed:
            print(thing.diagnostics())
        thing.stop()
        if not (failed and os.environ.get("CHARGE_GATE_E2E_KEEP")):
            shutil.rmtree(thing.dir, ignore_errors=True)
