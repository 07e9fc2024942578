"""Reliability harness: several responders and nginx instances on one Redis, loads that keep
every request's fate, faults (Redis killed / paused / emptied, responders killed, reloads), and
the figures the run reports.

Built on tests/e2e/harness.py (RedisServer, Responder, Nginx, the nginx template
deploy/nginx-stack.conf.in, cleanup_all); nothing there is changed.

Every gated request the loads send carries a request id in its path
(`/api/rel/<route>/<rid>`): the route prefixes match per segment, so the rid is charged like any
other path below the route, and it shows up
- at the client (status and body of that rid),
- in the stand-in app's access log (`GET /api/rel/<route>/<rid> 200`): the app saw it,
- in the usage event the spend appended (`uri`): Redis charged it.
So "the app saw a request that was not allowed", "an allowed request was not charged" and "a
request was charged twice" are exact set comparisons, not estimates.

Idempotent retries are the one exception: an idempotency record binds its key to the request's
URI (the same key on another URI is refused with 422), so the retries of one key share one path
id (`prid`, pinned by the load) and the comparisons count per path: the app sees a pinned path
once per allowed retry, and the event log charges it once per spend.

Environment:
  CHARGE_GATE_BIN                 the binary (default .build/debug/charge-gate)
  CHARGE_GATE_E2E_PROFILE         the auth profile of every cluster that names none (edge or
                                  keepalive; default deploy/render-nginx-conf's)
  CHARGE_GATE_RELIABILITY_LONG=1  the release-check sizes (minutes of soak, bigger counts)
  CHARGE_GATE_RELIABILITY_FIGURES a JSON file the figures are written to at the end
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import harness  # noqa: E402  (tests/e2e/harness.py)
from harness import (  # noqa: E402
    BIN,
    OUT_OF_CHARGE,
    PROFILE,
    SERVICE_UNAVAILABLE,
    Nginx,
    RedisClient,
    RedisServer,
    Responder,
    file_tail,
    free_port,
    live_pid,
    pid_alive,  # for the tests that import it from here
    render_nginx_conf,
    stop_pid,
    stop_popen,
    unix_connectable,
    wait_until,
)

LONG = os.environ.get("CHARGE_GATE_RELIABILITY_LONG") == "1"
MODE = "long" if LONG else "bounded"


def scale(bounded, long):
    """The bounded (CI) or the long (release check) size of something."""
    return long if LONG else bounded


# --------------------------------------------------------------------------------------------
# figures: what each test measured, printed at the end and written as JSON

FIGURES: dict[str, dict] = {}


def figure(test: str, key: str, value) -> None:
    FIGURES.setdefault(test, {})[key] = value


def append_figure(test: str, key: str, value) -> None:
    FIGURES.setdefault(test, {}).setdefault(key, []).append(value)


# --------------------------------------------------------------------------------------------
# processes


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().split(") ", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


# --------------------------------------------------------------------------------------------
# Redis with persistence


class PersistentRedis(RedisServer):
    """harness.RedisServer with an append-only file (fsync on every write, so that a kill -9
    loses nothing that was acknowledged) in DIR/redis-data, on the same unix socket."""

    def __init__(self, dir: Path, appendfsync: str = "always"):
        super().__init__(dir)
        self.data = dir / "redis-data"
        self.appendfsync = appendfsync

    start_timeout = 15

    def persistence_args(self) -> list[str]:
        self.data.mkdir(exist_ok=True)
        return ["--dir", str(self.data), "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
                "--maxmemory-policy", "noeviction"]

    def wipe(self):
        """Removes the persisted data (call while stopped): the next start is empty."""
        import shutil

        shutil.rmtree(self.data, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# nginx with several responders in its upstream

# Gated locations of the reliability stacks (rendered into the template's EXTRA slot). The
# subject comes from X-Subject (per-subject pools without a source address per subject), and
# the responder that answered each auth subrequest is logged per request.
REL_EXTRA = """\
        location /api/rel/ {
            set $charge_gate_subject $http_x_subject;
            include @SNIPPETS@/charge-gate-protect.conf;
            auth_request_set $rel_responder $upstream_addr;
            access_log @DIR@/rel-access.log rel_edge;
            proxy_pass http://unix:@DIR@/app.sock;
        }
"""

REL_LOG_FORMAT = "    log_format rel_edge '$request_method $request_uri $status $rel_responder';\n"


def responder_metrics_locations(sockets: list[Path]) -> str:
    """`GET /rel-metrics/<i>`: responder i's own /metrics (its socket, not the upstream: one
    connection per scrape, never one of the upstream's kept ones)."""
    return "".join(f"""
        location = /rel-metrics/{i} {{
            fastcgi_pass unix:{sock};
            fastcgi_pass_request_body off;
            fastcgi_pass_request_headers off;
            fastcgi_param CHARGE_GATE_ROLE metrics;
            fastcgi_param REQUEST_METHOD   $request_method;
            fastcgi_param REQUEST_URI      /metrics;
        }}
""" for i, sock in enumerate(sockets))


class MultiNginx(Nginx):
    """harness.Nginx whose `upstream charge_gate` lists several responder sockets, on the auth
    `profile` (default: the run's; keepalive: the rendered upstream's `keepalive` line is kept)."""

    def __init__(self, dir: Path, port: int, sockets: list[Path], extra: str = REL_EXTRA,
                 profile: str | None = None):
        super().__init__(dir, port, extra + responder_metrics_locations(sockets), profile=profile)
        self.sockets = sockets

    def render(self) -> str:
        text = render_nginx_conf(self.dir, self.port, self.extra, profile=self.profile)
        # As README "Deploying" recommends for several responders: a restarted one is retried
        # after 1 s, not avoided for nginx's default 10 s. Only the rendered `server` line is
        # replaced: the rest of the block (the keepalive profile's `keepalive 32;`) stays.
        servers = "".join(f"        server unix:{s} max_fails=3 fail_timeout=1s;\n" for s in self.sockets)

        def upstream(m: re.Match) -> str:
            block, k = re.subn(r"        server unix:\S+;\n", lambda _: servers, m.group(0), count=1)
            assert k == 1, f"no `server unix:...;` line in the rendered upstream: {m.group(0)}"
            return REL_LOG_FORMAT + block

        new, n = re.subn(r"    upstream charge_gate \{[^}]*\}", upstream, text, count=1)
        assert n == 1, "deploy/nginx-stack.conf.in has no `upstream charge_gate { ... }` block any more"
        block = new[new.index("upstream charge_gate {"):].split("}", 1)[0]
        assert ("keepalive " in block) == (self.profile == "keepalive"), block
        return new

    def start(self):
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.conf.write_text(self.render())
        r = subprocess.run([harness.NGINX, "-p", f"{self.dir}/", "-c", str(self.conf), "-e", str(self.dir / "error.log")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise AssertionError(f"nginx failed to start: {r.stderr.strip()}")
        wait_until(lambda: self.pid() is not None, 5, what="nginx pid file")

    # observations -----------------------------------------------------------------------

    def app_lines(self) -> list[str]:
        try:
            return (self.dir / "app-access.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def edge_lines(self) -> list[str]:
        try:
            return (self.dir / "rel-access.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""


# --------------------------------------------------------------------------------------------
# the cluster: one Redis, N responders, M nginx


def config_yaml(redis_sock: Path, pools: str, routes: str, settings: str = "") -> str:
    head = f"listen: {redis_sock.parent / 'unused.sock'}\nredis: unix://{redis_sock}\n"
    if settings:
        head += textwrap.dedent(settings).strip("\n") + "\n"
    return head + "pools:\n" + textwrap.dedent(pools).strip("\n") + "\nroutes:\n" + textwrap.dedent(routes).strip("\n") + "\n"


class Cluster:
    """redis-server + `responders` charge-gate processes (each on its own unix socket) +
    `nginxes` nginx instances, each nginx's upstream listing every responder, on the auth
    `profile` (edge or keepalive; default the run's, harness.PROFILE)."""

    def __init__(self, config: str, *, responders: int = 1, nginxes: int = 1, persistent: bool = False,
                 start_responders: bool = True, profile: str | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="r", dir=harness._BASE))
        self.redis = PersistentRedis(self.dir) if persistent else RedisServer(self.dir)
        self.config = self.dir / "charge-gate.yaml"
        self.config.write_text(config)
        self.add_processes(responders, nginxes, profile, start_responders)

    def add_processes(self, responders: int, nginxes: int, profile: str | None = None, start_responders: bool = True):
        """The `responders` charge-gate processes on `self.config` (each on its own unix socket)
        and `nginxes` nginx instances (each listing every responder) in `self.dir`; the stack
        is registered for harness.cleanup_all(), which stops it whatever happens. Every kind
        of stack (one Redis, Sentinel, a Redis Cluster) builds its processes here."""
        self.responders: list[Responder] = []
        for i in range(responders):
            d = self.dir / f"g{i}"
            d.mkdir()
            self.responders.append(Responder(d, self.config))
        self.sockets = [r.sock for r in self.responders]
        self.profile = profile or PROFILE
        self.nginxes: list[MultiNginx] = []
        for i in range(nginxes):
            d = self.dir / f"nginx{i}"
            d.mkdir()
            self.nginxes.append(MultiNginx(d, free_port(), self.sockets, profile=self.profile))
        self.start_responders = start_responders
        self.extra_pids: list[int] = []   # launchers and the like, stopped at the end
        harness._ALL_STACKS.append(self)

    @property
    def rc(self) -> RedisClient:
        return self.redis.client

    def start(self):
        self.start_store()
        if self.start_responders:
            for r in self.responders:
                self.start_responder(r)
        for n in self.nginxes:
            n.start()
        return self

    def start_store(self):
        """Starts Redis (a subclass: its own store) and returns once it answers."""
        self.redis.start()

    def start_responder(self, r: Responder):
        r.start(["--listen", str(r.sock)])

    def stop(self):
        steps = [n.stop for n in self.nginxes]
        steps += [(lambda p=p: stop_pid(p, signal.SIGTERM, 5)) for p in self.extra_pids]
        steps += [r.stop for r in self.responders]
        steps += self.store_stops()
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - everything must be tried
                pass

    def store_stops(self) -> list:
        """The steps that stop the store, after nginx and the responders (a stopped Redis is
        continued first, so that SIGTERM ends it)."""
        return [lambda: (self.redis.proc and self.redis.proc.poll() is None and os.kill(self.redis.proc.pid, signal.SIGCONT)),
                self.redis.stop]

    # observations -----------------------------------------------------------------------

    def app_rids(self) -> dict[int, int]:
        """rid -> number of times the app saw it (over every nginx's app)."""
        seen: dict[int, int] = {}
        for n in self.nginxes:
            for line in n.app_lines():
                m = re.match(r"^\S+ /api/rel/[^/ ]+/(\d+)(?:[/?]\S*)? \d+$", line)
                if m:
                    rid = int(m.group(1))
                    seen[rid] = seen.get(rid, 0) + 1
        return seen

    def app_settled(self, expected: set[int] | dict[int, int], timeout: float = 3.0) -> dict[int, int]:
        """app_rids() once it holds every rid of `expected` (a dict: at least that many hits of
        each; or after `timeout`), plus a short settle time for hits that should not be there."""
        want = expected if isinstance(expected, dict) else dict.fromkeys(expected, 1)

        def arrived():
            seen = self.app_rids()
            return all(seen.get(rid, 0) >= n for rid, n in want.items())

        try:
            wait_until(arrived, timeout, interval=0.05, what=f"{sum(want.values())} app hits")
        except AssertionError:
            pass
        time.sleep(0.1)
        return self.app_rids()

    def edge_responders(self) -> dict[str, int]:
        """responder socket -> auth subrequests it answered (from the rel_edge logs)."""
        counts: dict[str, int] = {}
        for n in self.nginxes:
            for line in n.edge_lines():
                parts = line.split(" ", 3)
                if len(parts) == 4:
                    for addr in parts[3].split(", "):
                        counts[addr] = counts.get(addr, 0) + 1
        return counts

    def events(self, prefix: str = "charge:") -> list[dict]:
        """Every entry of the usage-event stream (`prefix#events`: internal keys live under
        `prefix#`), as dicts (id + fields)."""
        out: list[dict] = []
        start = "-"
        while True:
            page = self.rc.command("XRANGE", prefix + "#events", start, "+", "COUNT", "1000")
            for eid, flat in page:
                e = dict(zip(flat[0::2], flat[1::2]))
                e["id"] = eid
                out.append(e)
            if len(page) < 1000:
                return out
            ms, seq = page[-1][0].split("-")
            start = f"{ms}-{int(seq) + 1}"

    def event_rids(self, pool: str, prefix: str = "charge:") -> dict[int, int]:
        """path id (the rid, or a pinned prid) -> number of usage events of `pool` that charged it."""
        seen: dict[int, int] = {}
        for e in self.events(prefix):
            if e.get("pool") != pool:
                continue
            m = re.match(r"^/api/rel/[^/]+/(\d+)", e.get("uri", ""))
            assert m, e
            rid = int(m.group(1))
            seen[rid] = seen.get(rid, 0) + 1
        return seen

    def responder_metrics(self, i: int) -> dict[str, float]:
        """Responder i's /metrics (through the first nginx): {sample with its labels: value}."""
        conn = http.client.HTTPConnection("127.0.0.1", self.nginxes[0].port, timeout=10)
        try:
            conn.request("GET", f"/rel-metrics/{i}")
            r = conn.getresponse()
            body = r.read().decode()
        finally:
            conn.close()
        assert r.status == 200, (r.status, body[:200])
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in body.splitlines() if line and not line.startswith("#")}

    def fastcgi_connections(self) -> int:
        """FastCGI connections every responder's current process has accepted (their scrapes'
        own included: one each)."""
        return sum(int(self.responder_metrics(i)["charge_gate_fastcgi_connections_total"])
                   for i in range(len(self.responders)))

    def state(self, key: str, prefix: str = "charge:"):
        raw = self.rc.get(prefix + key)
        return None if raw is None else json.loads(raw)

    def redis_clients(self) -> int:
        """Connections to Redis, not counting the one asking."""
        text = self.rc.command("CLIENT", "LIST")
        return sum(1 for line in text.splitlines() if line.strip() and "cmd=client|list" not in line)

    def diagnostics(self) -> str:
        parts = [f"--- stack dir {self.dir} profile {self.profile}{self.store_name()}"]
        for i, r in enumerate(self.responders):
            parts.append(f"--- responder {i} log (tail)\n" + r.log_tail(25))
        for i, n in enumerate(self.nginxes):
            parts.append(f"--- nginx {i} error.log (tail)\n" + "\n".join(n.error_log().splitlines()[-15:]))
        parts.append(self.store_diagnostics())
        return "\n".join(parts)

    def store_name(self) -> str:
        """What diagnostics' first line says of the store after the profile."""
        return ", one redis-server"

    def store_diagnostics(self) -> str:
        return "--- redis.log (tail)\n" + self.redis.log_tail(10)


# --------------------------------------------------------------------------------------------
# loads


class Rec:
    """One request's fate."""

    __slots__ = ("rid", "node", "route", "t0", "t1", "status", "kind", "detail", "headers", "method", "prid")

    def __init__(self, rid, node, route, t0, t1, status, kind, detail="", headers=None, method="GET", prid=None):
        self.rid, self.node, self.route, self.t0, self.t1 = rid, node, route, t0, t1
        self.status, self.kind, self.detail, self.headers = status, kind, detail, headers or {}
        self.method = method
        # the id in the request's path: its own rid, or the one its idempotent retries share
        self.prid = rid if prid is None else prid

    def __repr__(self):
        path = "" if self.prid == self.rid else f" path {self.prid}"
        return f"<{self.method} rid {self.rid}{path} {self.route} via {self.node} {self.kind} {self.status} {self.t0:.3f}..{self.t1:.3f} {self.detail}>"


_RIDS = itertools.count(1)


def next_rid() -> int:
    return next(_RIDS)  # atomic under the GIL


def classify(status: int, headers: list[tuple[str, str]], body: bytes) -> tuple[str, str]:
    """ok (the app's 200), 429, 503 (the exact JSON), or other:STATUS."""
    ctype = next((v for k, v in headers if k.lower() == "content-type"), None)
    if status == 200 and body.startswith(b'{"ok":true,') and ctype == "application/json":
        return "ok", ""
    if status == 503 and body == SERVICE_UNAVAILABLE and ctype == "application/json" \
            and not any(k.lower() == "retry-after" for k, _ in headers):
        return "503", ""
    if status == 429 and ctype == "application/json" and OUT_OF_CHARGE.match(body.decode("utf-8", "replace")):
        return "429", ""
    return f"other:{status}", body[:200].decode("utf-8", "replace")


class Client:
    """One keep-alive HTTP/1.1 connection per nginx, used by one thread. A request that fails
    at the connection level is recorded as an error and never retried."""

    def __init__(self, ports: list[int], timeout: float = 15.0):
        self.ports = ports
        self.timeout = timeout
        self.conns: dict[int, http.client.HTTPConnection] = {}

    def send(self, node: int, route: str, rid: int, method: str = "GET", headers: dict | None = None,
             prid: int | None = None) -> Rec:
        """`prid`: the id in the path when not `rid` (the retries of one idempotency key)."""
        port = self.ports[node]
        conn = self.conns.get(port)
        if conn is None:
            conn = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        path = f"/api/rel/{route}/{rid if prid is None else prid}"
        t0 = time.monotonic()
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            t1 = time.monotonic()
            kind, detail = classify(r.status, r.getheaders(), body)
            return Rec(rid, node, route, t0, t1, r.status, kind, detail, headers, method, prid)
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.conns.pop(port, None)
            return Rec(rid, node, route, t0, time.monotonic(), 0, "error", f"{type(e).__name__}: {e}", headers, method, prid)

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns.clear()


def burst(ports: list[int], specs: list[tuple], threads: int) -> list[Rec]:
    """Sends every spec (node, route, headers[, prid]) as fast as `threads` threads can, all
    starting together; returns the records. `prid` pins the path id (idempotent retries)."""
    out: list[Rec] = []
    lock = threading.Lock()
    chunks = [specs[i::threads] for i in range(threads)]
    gate = threading.Barrier(threads)

    def run(chunk):
        client = Client(ports)
        mine = []
        gate.wait()
        try:
            for node, route, headers, *pinned in chunk:
                mine.append(client.send(node, route, next_rid(), headers=headers, prid=pinned[0] if pinned else None))
        finally:
            client.close()
            with lock:
                out.extend(mine)

    ts = [threading.Thread(target=run, args=(c,), daemon=True) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
        assert not t.is_alive(), "a load thread hung"
    return out


class SteadyLoad:
    """`rate` requests per second (open loop as long as answers come back in time) from
    `threads` threads, spread over the nginx `ports`, until stop(). `pick(k, i)` gives
    (route, headers[, method[, prid]]) for the i-th request of thread k."""

    def __init__(self, ports: list[int], rate: float, threads: int, pick):
        self.ports = ports
        self.rate = rate
        self.threads = threads
        self.pick = pick
        self.records: list[Rec] = []
        self._stop = threading.Event()
        self._ts: list[threading.Thread] = []

    def start(self):
        for k in range(self.threads):
            t = threading.Thread(target=self._run, args=(k,), daemon=True)
            t.start()
            self._ts.append(t)
        return self

    def _run(self, k: int):
        client = Client(self.ports)
        period = self.threads / self.rate
        nxt = time.monotonic() + period * k / self.threads
        i = 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < nxt:
                    self._stop.wait(nxt - now)
                    continue
                nxt += period
                if nxt < now - 0.25:
                    nxt = now  # fell behind (a slow answer): no catch-up burst
                picked = self.pick(k, i)
                route, headers = picked[0], picked[1]
                method = picked[2] if len(picked) > 2 else "GET"
                prid = picked[3] if len(picked) > 3 else None
                self.records.append(client.send((k + i) % len(self.ports), route, next_rid(), method, headers, prid))
                i += 1
        finally:
            client.close()

    def stop(self) -> list[Rec]:
        self._stop.set()
        for t in self._ts:
            t.join(timeout=30)
            assert not t.is_alive(), "a load thread hung"
        return self.records


def kinds(records: list[Rec]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r.kind] = out.get(r.kind, 0) + 1
    return out


def only_kinds(records: list[Rec], allowed: set[str], what: str):
    bad = [r for r in records if r.kind not in allowed]
    assert not bad, f"{what}: {len(bad)} unexpected answers, e.g. {bad[:5]} (all: {kinds(records)})"


# --------------------------------------------------------------------------------------------
# the accounting every test applies


def check_app(cluster: Cluster, records: list[Rec], route: str) -> None:
    """The app saw exactly the paths of `route` the client got a 200 for, each as often as it
    got one: once per rid, and a path pinned for idempotent retries once per allowed retry."""
    mine = [r for r in records if r.route == route]
    ok: dict[int, int] = {}
    for r in mine:
        if r.kind == "ok":
            ok[r.prid] = ok.get(r.prid, 0) + 1
    by_prid = {r.prid: r for r in mine}
    app = cluster.app_settled(ok)
    app_mine = {prid: n for prid, n in app.items() if prid in by_prid}
    twice = {prid: (n, ok[prid]) for prid, n in app_mine.items() if prid in ok and n > ok[prid]}
    assert not twice, f"the app saw requests more often than allowed (path: seen, allowed): {list(twice.items())[:5]}"
    not_allowed = [by_prid[prid] for prid in app_mine if prid not in ok]
    assert not not_allowed, f"the app saw {len(not_allowed)} requests that were not allowed: {not_allowed[:5]}"
    missing = [by_prid[prid] for prid, n in ok.items() if app_mine.get(prid, 0) < n]
    assert not missing, f"{len(missing)} allowed requests never reached the app: {missing[:5]}"


def check_accounting(cluster: Cluster, records: list[Rec], pool: str, *, route: str | None = None,
                     charged_rids: set[int] | None = None) -> dict:
    """The exact comparisons, for the requests of `route` (default: `pool`), spending `pool`
    (requests with their own paths; idempotent retries sharing one are checked by their test):
    - the app saw exactly the rids the client got a 200 for, each once;
    - every event of `pool` charges a distinct rid (no request charged twice);
    - every 200 rid was charged (in `charged_rids` when given: only those must have an event);
    - events of rids that did not get a 200 are "spent but answered 503" (returned, asserted
      only to be rids that got a 503/error, never a 429);
    Returns the counts."""
    route = route or pool
    mine = [r for r in records if r.route == route]
    ok = {r.rid for r in mine if r.kind == "ok"}
    by_rid = {r.rid: r for r in mine}
    check_app(cluster, records, route)

    ev = cluster.event_rids(pool)
    ev_mine = {rid: n for rid, n in ev.items() if rid in by_rid}
    dup = {rid: n for rid, n in ev_mine.items() if n > 1}
    assert not dup, f"requests charged more than once (events per rid): {list(dup.items())[:10]}"
    must = ok if charged_rids is None else ok & charged_rids
    uncharged = [by_rid[rid] for rid in must if rid not in ev_mine]
    assert not uncharged, f"{len(uncharged)} requests were allowed but never charged (free passes): {uncharged[:5]}"
    spent_not_ok = [by_rid[rid] for rid in ev_mine if rid not in ok]
    wrong = [r for r in spent_not_ok if r.kind not in ("503", "error")]
    assert not wrong, f"charged requests that got neither a 200 nor a 503: {wrong[:5]}"
    return {
        "requests": len(mine),
        "allowed": len(ok),
        "charged": len(ev_mine),
        "spent_but_503": len(spent_not_ok),
        "answers": kinds(mine),
    }


def window(records: list[Rec], start: float, end: float) -> list[Rec]:
    """The requests sent after `start` and answered before `end`."""
    return [r for r in records if r.t0 >= start and r.t1 <= end]


def first_ok_after(records: list[Rec], t: float) -> float | None:
    """Seconds from `t` to the first 200 answered after it."""
    done = sorted(r.t1 for r in records if r.kind == "ok" and r.t1 > t)
    return None if not done else done[0] - t


# --------------------------------------------------------------------------------------------
# a socket-activation style launcher (listen: inherit)


LAUNCHER = HERE / "launcher.py"


class Launcher:
    """tests/reliability/launcher.py: holds the listening socket, runs `charge-gate serve
    --listen inherit` with it on fd 0, and starts it again whenever it exits (as systemd's
    socket activation with Restart=always does)."""

    def __init__(self, dir: Path, sock: Path, config: Path, restart_delay: float = 0.1):
        self.dir = dir
        self.sock = sock
        self.config = config
        self.restart_delay = restart_delay
        self.pidfile = dir / "launcher.child.pid"
        self.log = dir / "launcher.log"
        self.proc: subprocess.Popen | None = None

    def start(self):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--socket", str(self.sock), "--pidfile", str(self.pidfile),
             "--restart-delay", str(self.restart_delay), "--log", str(self.dir / "charge-gate.log"), "--",
             str(BIN), "serve", "--config", str(self.config), "--listen", "inherit"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=harness._die_with_parent)
        log.close()
        (self.dir / "launcher.pid").write_text(str(self.proc.pid))
        wait_until(lambda: self.child_pid() is not None and unix_connectable(self.sock), 15, what="launcher + child")

    def child_pid(self) -> int | None:
        return live_pid(self.pidfile)

    def restarts(self) -> int:
        try:
            return self.log.read_text().count("starting child")
        except OSError:
            return 0

    def stop(self):
        stop_popen(self.proc, signal.SIGTERM, 10)

    def log_tail(self, n=20) -> str:
        return file_tail(self.log, n)
