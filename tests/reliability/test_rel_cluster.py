"""(g) Redis Cluster under load (SPEC §12, issue 23): three primaries with their replicas
(tests/reliability/rcluster.py, scripts/redis-cluster), three responders on
`redis-cluster://SEEDS` behind two nginx, a steady load, and these faults in turn, each on its
own pools and on subjects picked for their slots (`{SUBJECT}`: CRC16 -> slot):

- **reshard**: a new primary (and its replica) joins (`redis-cli --cluster add-node`: a node
  the responders were never told about), then `redis-cli --cluster reshard` moves a primary's
  lowest RESHARD_SLOTS slots (the hot subjects live there) to it while the load runs;
- **migrate**: one slot holding hot subjects moved by hand, slowly (IMPORTING / MIGRATING, its
  keys in MIGRATE_STEPS groups with a pause before each, then `SETSLOT NODE`): the split slot
  answers `ASK` and `TRYAGAIN` for about a second;
- **failover**: `CLUSTER FAILOVER` on a replica of the primary holding the hot subjects;
- **kill**: kill -9 of that primary (cluster-node-timeout NODE_TIMEOUT_MS), started again under
  the load once its replica took over (empty, it rejoins as a replica of the new primary);
- **lagging**: the same kill 0.3 s after the primary's replication links were cut (clients
  still served): what it acknowledged meanwhile never reached a replica.

The routes: per-subject `hot` (never runs out), per-subject `tight` (TIGHT charges: exact 429s
through the fault), `combo`, a per-subject pool and a global pool in another slot (spent slot
by slot: the global step first, the subject's home step last, a failed home step gives the
global charge back), and `idem`, idempotent, whose requests (each its own key) a retrying
client sends again after every 503 until it gets an answer. Three quarters of the requests are
for hot subjects (on the faulted slots), the rest for cold ones (another primary).

Checked in every phase: every answer is the app's 200, the exact 429 or the exact 503; the app
saw exactly the 200s, each once; no request (no idempotency key, however often it was sent) has
two spend events in a pool; a 429 left nothing charged; every bucket equals its maximum minus what its events charged (spends and give-backs);
the responders keep their pids and spend again on every hot subject after the fault without
anything being restarted; nothing hung (no auth subrequest reached nginx's
fastcgi_read_timeout); a subject on a primary the fault leaves alone got a 503 only while the
cluster answered CLUSTERDOWN (kills); after CLUSTER FAILOVER no script ran on the old primary. "Lost" counts the 200s whose spend event the surviving nodes lack
(spends acknowledged by the killed primary and not replicated): asserted 0 except for the kills
with `redisMinReplicas: 0`, where it is measured.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timezone

import pytest

from reliability import (
    Client,
    SteadyLoad,
    append_figure,
    check_accounting,
    check_app,
    figure,
    kinds,
    next_rid,
    only_kinds,
    scale,
)
from harness import wait_until  # noqa: E402  (tests/e2e, put on the path by reliability)
from rcluster import ClusterStack, StateWatch, keyslot, subjects_in

RATE = scale(300, 400)
THREADS = 8
BEFORE = scale(1.5, 4.0)        # load before the fault
AFTER = scale(1.5, 4.0)         # load after the fault is over
ROUNDS = scale(1, 2)            # each fault this many times (--long)
NODE_TIMEOUT_MS = 1000          # cluster-node-timeout
TIMEOUT_MS = 100                # redisTimeoutMs (also the bound on TRYAGAIN waits)
RESHARD_SLOTS = 1024
MIGRATE_STEPS = 10              # migrate by hand: the slot's keys in this many groups,
MIGRATE_PAUSE = 0.1             # this long before each group and before SETSLOT NODE
LAG_S = 0.3
MAX = 10_000_000
TIGHT = 20
RETRIES = 100                   # an idempotent request is sent again after a 503, up to this often
HOT = 6                         # hot subjects per phase (on the faulted slots)
COLD = 3                        # cold subjects per phase (on a primary the fault leaves alone)


def config(phases: list[str]) -> tuple[str, str]:
    pools, routes = [], []
    for p in phases:
        pools += [
            f"- {{id: {p}-hot, maxCharges: {MAX}, rechargeIntervalHours: 10, per: subject}}",
            f"- {{id: {p}-tight, maxCharges: {TIGHT}, rechargeIntervalHours: 10, per: subject}}",
            f"- {{id: {p}-cs, maxCharges: {MAX}, rechargeIntervalHours: 10, per: subject}}",
            f"- {{id: {p}-gb, maxCharges: {MAX}, rechargeIntervalHours: 10}}",
            f"- {{id: {p}-ih, maxCharges: {MAX}, rechargeIntervalHours: 10, per: subject}}",
        ]
        routes += [
            f"- {{prefix: /api/rel/{p}-hot, pools: [{p}-hot]}}",
            f"- {{prefix: /api/rel/{p}-tight, pools: [{p}-tight]}}",
            f"- {{prefix: /api/rel/{p}-combo, pools: [{p}-gb, {p}-cs]}}",
            f"- {{prefix: /api/rel/{p}-idem, pools: [{p}-ih], idempotent: true}}",
        ]
    return "\n".join(pools), "\n".join(routes)


def settings(min_replicas: int) -> str:
    return (f"workers: 4\nredisTimeoutMs: {TIMEOUT_MS}\nredisMinReplicas: {min_replicas}\nredisReplicaWaitMs: 50\n"
            f"edgeDenySeconds: 0\nidempotencyMaxRepeats: {RETRIES}")


def picker(p: str, hot: list[str], cold: list[str]):
    def pick(k: int, i: int):
        j = k * 7919 + i
        subject = cold[(j // 4) % len(cold)] if j % 4 == 3 else hot[(j // 4) % len(hot)]
        route = f"{p}-tight" if j % 10 == 0 else f"{p}-combo" if j % 10 == 5 else f"{p}-hot"
        return route, {"X-Subject": subject}
    return pick


class Retrier:
    """Idempotent requests (`Idempotency-Key`, one path per key) from `threads` threads, one new
    key every `gap` s, each sent again after a 503 (every 50 ms, at most RETRIES times) as a
    client that must not pay twice would: the answer ends 200 once, charged once."""

    def __init__(self, ports: list[int], route: str, hot: list[str], cold: list[str], threads: int = 2,
                 gap: float = 0.025):
        self.ports, self.route, self.hot, self.cold, self.gap = ports, route, hot, cold, gap
        self.records: list = []
        self.keys: dict[int, str] = {}   # prid -> key
        self._stop = threading.Event()
        self._ts = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)]

    def start(self):
        for t in self._ts:
            t.start()
        return self

    def _run(self, k: int):
        client = Client(self.ports)
        n = 0
        try:
            while not self._stop.is_set():
                subject = self.cold[n % len(self.cold)] if n % 4 == 3 else self.hot[n % len(self.hot)]
                prid, key = next_rid(), f"{self.route}-{k}-{n}"
                self.keys[prid] = key
                for _ in range(RETRIES):
                    r = client.send(n % len(self.ports), self.route, next_rid(),
                                    headers={"Idempotency-Key": key, "X-Subject": subject}, prid=prid)
                    self.records.append(r)
                    if r.kind != "503":
                        break
                    time.sleep(0.05)
                n += 1
                self._stop.wait(self.gap)
        finally:
            client.close()

    def stop(self) -> list:
        self._stop.set()
        for t in self._ts:
            t.join(timeout=30)
            assert not t.is_alive(), "a retrying thread hung"
        return self.records


def subject_of(r) -> str:
    return r.headers["X-Subject"]


# --------------------------------------------------------------------------------------------
# one phase


def choose(c: ClusterStack, mode: str, p: str) -> dict:
    """Where the fault lands and which subjects are hot (on the faulted slots) and cold. For
    "reshard", a new primary (and its replica) joins the cluster first: the slots move to a node
    the responders were never told about."""
    rc = c.redis_cluster
    gb_owner = rc.owner(keyslot("{" + p + "-gb}"))
    primaries = sorted(rc.primaries(), key=lambda n: n.port)
    # the faulted primary never holds the global pool: its step (given back when the home step
    # fails) runs on a healthy primary
    src = next(n for n in primaries if n is not gb_owner)
    dst = None
    if mode == "reshard":
        dst = rc.add_node()
        rc.add_node(replica_of=dst)
        rc.primaries_wanted += 1
        rc.wait_ready(30)
    elif mode == "migrate":
        dst = next(n for n in primaries if n is not src and n is not gb_owner)
    calm = next(n for n in primaries if n is not src and n is not dst)
    if mode == "reshard":
        slots = set(rc.slots_of(src)[:RESHARD_SLOTS])
    elif mode == "migrate":
        mine = rc.slots_of(src)
        slots = {mine[len(mine) // 2]}
    else:
        slots = set(rc.slots_of(src))
    hot = subjects_in(slots, HOT, f"{p}h")
    cold = subjects_in(set(rc.slots_of(calm)), COLD, f"{p}c")
    return {"src": src, "dst": dst, "calm": calm, "slots": slots, "hot": hot, "cold": cold}


def phase(c: ClusterStack, mode: str, p: str, min_replicas: int) -> dict:
    rc = c.redis_cluster
    where = choose(c, mode, p)
    src, dst, hot, cold = where["src"], where["dst"], where["hot"], where["cold"]
    pids = [r.proc.pid for r in c.responders]
    for n in rc.live():
        n.client.command("CONFIG", "RESETSTAT")
    extra: dict = {}
    redirects: dict[str, int] = {}
    # the primaries a cold subject's spend reaches (its own, the global pool's)
    watch = StateWatch([n for n in rc.primaries() if n is not src]).start()
    log_marks = [len(r.log_text()) for r in c.responders]
    wall_minus_monotonic = time.time() - time.monotonic()  # the responders log wall-clock times
    nginx_marks = [len(n.error_log()) for n in c.nginxes]
    load = SteadyLoad([n.port for n in c.nginxes], RATE, THREADS, picker(p, hot, cold)).start()
    retrier = Retrier([n.port for n in c.nginxes], f"{p}-idem", hot, cold).start()
    try:
        time.sleep(BEFORE)
        t_fault = time.monotonic()
        if mode == "reshard":
            rc.reshard(src, dst, RESHARD_SLOTS)
            assert all(rc.owner(s) is dst for s in where["slots"]), "the hot slots did not move"
        elif mode == "migrate":
            slot = next(iter(where["slots"]))
            stream = [k for k in src.client.command("CLUSTER", "GETKEYSINSLOT", slot, 100_000) if "#events" in k]
            done = rc.migrate_slot_by_hand(slot, src, dst, MIGRATE_STEPS, MIGRATE_PAUSE,
                                           key_order=lambda keys: sorted(keys, key=lambda k: ("#events" in k, k)))
            assert rc.owner(slot) is dst, "the slot did not move"
            extra["keys_migrated"] = done["keys"]
            extra["asking_on_target"] = dst.command_calls("asking")
            assert stream, "no event stream in the migrated slot"
        elif mode == "failover":
            replica = rc.replicas_of(src)[0]
            assert replica.client.command("CLUSTER", "FAILOVER") == "OK"
            wait_until_role(replica, "master", 15)
            wait_until_role(src, "slave", 15)
            # from now on no spend may run on the old primary (it redirects: MOVED)
            add_redirects(redirects, [src])
            src.client.command("CONFIG", "RESETSTAT")
        elif mode in ("kill", "lagging"):
            if mode == "lagging":
                rc.cut_replicas(src)
                time.sleep(LAG_S)
            src.kill()
            some = next(iter(where["slots"]))
            survivors = [n for n in rc.live()]

            def moved():
                try:
                    return all(n.client.command("CLUSTER", "INFO").split("cluster_state:", 1)[1][:2] == "ok"
                               for n in survivors) and rc.owner(some) is not src
                except (OSError, RuntimeError, IndexError):
                    return False

            wait_until(moved, 20, interval=0.02, what="a replica to take over the killed primary's slots")
        else:
            raise AssertionError(mode)
        t_done = time.monotonic()
        if mode in ("kill", "lagging"):
            # the killed node comes back under the load (empty: no persistence) and rejoins as a
            # replica of the new primary
            src.start()
        # spending resumes by itself: a 200 for every hot subject sent after the fault is over
        wait_until(lambda: {subject_of(r) for r in list(load.records) if r.kind == "ok" and r.t0 > t_done} >= set(hot),
                   15, what="a 200 for every hot subject after the fault")
        time.sleep(AFTER)
    finally:
        recs = load.stop()
        retried = retrier.stop()
        down = watch.stop()
    add_redirects(redirects, rc.live())
    if mode == "failover":
        extra["script_calls_on_the_old_primary"] = src.command_calls("evalsha") + src.command_calls("eval")
        assert extra["script_calls_on_the_old_primary"] == 0, "a spend ran on the old primary after the failover"
    figs = check_phase(c, recs, p, hot, cold, min_replicas, mode, retried)
    recs = recs + retried
    # no hang: no auth subrequest waited for nginx's fastcgi_read_timeout (3 s)
    timed_out = sum(n.error_log()[mark:].count("upstream timed out") for n, mark in zip(c.nginxes, nginx_marks))
    slowest = max(r.t1 - r.t0 for r in recs)
    slow = sorted(recs, key=lambda r: r.t0 - r.t1)[:3]
    assert timed_out == 0 and slowest < 2.5, (
        f"{mode}: the responder hung: {timed_out} timeouts, slowest {slowest:.2f} s: "
        + "; ".join(f"{r} sent {r.t0 - t_fault:+.3f} s from the fault ({t_done - t_fault:.3f} s long)" for r in slow))
    assert [r.proc.pid for r in c.responders] == pids and all(r.alive() for r in c.responders), "a responder restarted"
    t503 = [r for r in recs if r.kind == "503"]
    hot_recs = [r for r in recs if subject_of(r) in hot]
    last_503 = max((r.t1 for r in t503), default=None)
    first_ok = min((r.t1 for r in hot_recs if r.kind == "ok" and r.t0 >= t_fault
                    and (last_503 is None or r.t1 > last_503)), default=None)
    # A subject on a primary the fault leaves alone gets a 503 only while the cluster is down
    # (every node answers CLUSTERDOWN from the moment the dead primary is marked failed until
    # its replica is elected), give or take a request in flight at either edge, or when the
    # responders logged, outside those windows, a CLUSTERDOWN, a healthy node that did not
    # answer within redisTimeoutMs or replicas that did not acknowledge within
    # redisReplicaWaitMs (this box's load); never for want of a primary.
    cold_503 = [r for r in t503 if subject_of(r) in cold]
    slack = 0.3
    stray = [r for r in cold_503 if not any(r.t1 >= a - slack and r.t0 <= b + slack for a, b in down)]
    logged = lines_503(c, log_marks)
    why = reasons_503(logged)

    def outside(line: str) -> bool:
        stamp = datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        t = stamp.timestamp() - wall_minus_monotonic
        return not any(a - slack <= t <= b + slack for a, b in down)

    # outside the watched windows: a CLUSTERDOWN too short for the watcher (a few ms, seen during
    # CLUSTER FAILOVER), a timeout, or a healthy primary's replicas slower than
    # redisReplicaWaitMs to acknowledge
    excused = [line for line in logged if outside(line) and (
        "answered CLUSTERDOWN" in line or " store timed out" in line
        or ("spend not acknowledged by" in line and f" of {src.address} " not in line))]
    assert len(stray) <= len(excused), (
        f"{mode}: 503s on a healthy primary's subjects outside CLUSTERDOWN {down}: {stray[:5]}; reasons {why}")
    return {
        "fault_ms": round((t_done - t_fault) * 1000),
        **figs,
        "503s": len(t503),
        "503s_on_cold_subjects": len(cold_503),
        "cluster_down_ms": [round((b - a) * 1000) for a, b in down],
        "503s_on_cold_subjects_outside_it": len(stray),
        "why_503_in_the_logs": why,
        "503_window_ms": 0 if not t503 else round((last_503 - min(r.t0 for r in t503)) * 1000),
        "fault_to_first_200_after_the_last_503_ms": None if first_ok is None else round((first_ok - t_fault) * 1000),
        "redirects_answered": redirects,
        "slowest_answer_ms": round(slowest * 1000),
        **extra,
    }


def add_redirects(into: dict[str, int], nodes) -> None:
    """Adds the redirects and cluster errors `nodes` answered since their CONFIG RESETSTAT."""
    for n in nodes:
        for k, v in n.info("errorstats").items():
            name = k.removeprefix("errorstat_")
            if name in ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"):
                into[name] = into.get(name, 0) + int(v.split("=", 1)[1])


def lines_503(c: ClusterStack, marks: list[int]) -> list[str]:
    """The responders' "... answered 503" log lines since `marks` (their log sizes)."""
    return [line for r, mark in zip(c.responders, marks) for line in r.log_text()[mark:].splitlines()
            if "answered 503" in line]


def reasons_503(lines: list[str]) -> dict[str, int]:
    """The reasons of `lines_503`, with their numbers, addresses and request fields taken out."""
    out: dict[str, int] = {}
    for line in lines:
        text = line.split(" error ", 1)[-1].split(": answered 503", 1)[0]
        text = re.sub(r"redis://127\.0\.0\.1:\d+/0", "redis://NODE", text)
        text = re.sub(r"127\.0\.0\.1:\d+", "NODE", text)
        text = re.sub(r"\b\d+\b", "N", text)
        out[text] = out.get(text, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def wait_until_role(node, role: str, timeout: float):
    wait_until(lambda: node.info("replication").get("role") == role, timeout, interval=0.02, what=f"{node} to be {role}")


def check_phase(c: ClusterStack, recs, p: str, hot: list[str], cold: list[str], min_replicas: int, mode: str,
                retried) -> dict:
    """The agreement checks of one phase (asserting what must hold); returns its counts. `recs`:
    the steady load's requests (each its own path); `retried`: the idempotent requests (every
    attempt of one key shares its path)."""
    everything = recs + retried
    only_kinds(everything, {"ok", "429", "503"}, f"{mode}: answers")
    for route in (f"{p}-hot", f"{p}-tight", f"{p}-combo", f"{p}-idem"):
        check_app(c, everything, route)  # the app saw exactly the 200s, each as often as allowed
    assert not any(r.kind == "429" for r in everything if r.route != f"{p}-tight"), "a 429 on a pool that cannot run out"

    # path id -> its requests (one, or every attempt of one idempotency key)
    paths: dict[int, list] = {}
    for r in everything:
        paths.setdefault(r.prid, []).append(r)
    events = [e for e in c.events() if e.get("pool", "").startswith(p + "-")]
    spends: dict[tuple[str, int], int] = {}   # (pool, path) -> spend events
    net: dict[tuple[str, int], int] = {}      # (pool, path) -> charged net of give-backs
    by_bucket: dict[str, int] = {}            # bucket -> charged net, from the events
    for e in events:
        path = int(e["uri"].rsplit("/", 1)[1])
        pool, amount = e["pool"], int(e["amount"])
        if "kind" not in e:
            spends[(pool, path)] = spends.get((pool, path), 0) + 1
        else:
            assert e["kind"] == "settle" and amount <= 0, e
        net[(pool, path)] = net.get((pool, path), 0) + amount
        bucket = f"{{{pool}}}" if pool.endswith("-gb") else f"{pool}:{{{e['subject']}}}"
        by_bucket[bucket] = by_bucket.get(bucket, 0) + amount

    # never two spends of one request (or of one idempotency key) in one pool
    twice = {k: n for k, n in spends.items() if n > 1 and k[1] in paths}
    assert not twice, f"{mode}: requests charged twice (pool, path): {[(k, n, paths[k[1]]) for k, n in twice.items()][:5]}"
    odd = {k: v for k, v in net.items() if v not in (0, 1) and k[1] in paths}
    assert not odd, f"{mode}: net charges other than 0 or 1: {list(odd.items())[:5]}"

    pools_of = {f"{p}-hot": [f"{p}-hot"], f"{p}-tight": [f"{p}-tight"], f"{p}-combo": [f"{p}-gb", f"{p}-cs"],
                f"{p}-idem": [f"{p}-ih"]}
    lost, spent_503, charged_429 = [], [], []
    for path, tries in paths.items():
        charged = [net.get((pool, path), 0) for pool in pools_of[tries[0].route]]
        if any(r.kind == "ok" for r in tries):
            if not all(charged):
                lost.append(tries[-1])
        elif any(charged):
            (charged_429 if tries[-1].kind == "429" else spent_503).append(tries[-1])
    assert not charged_429, f"{mode}: answered 429 but charged: {charged_429[:5]}"

    # every bucket is its maximum minus what its events charged (nothing recharges here)
    for bucket, used in by_bucket.items():
        state = c.state(bucket)
        top = TIGHT if bucket.startswith(f"{p}-tight:") else MAX
        assert state is not None and top - state["current"] == used, f"{mode}: bucket {bucket}: {state} vs {used} charged"

    # the tight pool: no subject got more than it holds (lost charges aside)
    for s in hot + cold:
        got = sum(1 for r in recs if r.route == f"{p}-tight" and r.kind == "ok" and subject_of(r) == s)
        lost_s = sum(1 for r in lost if r.route == f"{p}-tight" and subject_of(r) == s)
        assert got <= TIGHT + lost_s, f"{mode}: {s} got {got} from a pool of {TIGHT}"

    if min_replicas >= 1 or mode not in ("kill", "lagging"):
        assert not lost, f"{mode}: {len(lost)} allowed requests have no charge (free passes): {lost[:5]}"
        # and the single-pool routes once more through the other tests' own check
        for route in (f"{p}-hot", f"{p}-tight"):
            check_accounting(c, recs, route)
    keys = {r.prid for r in retried}
    unanswered = [paths[k][-1] for k in keys if paths[k][-1].kind != "ok"]
    assert not unanswered, f"{mode}: idempotent requests still 503 after {RETRIES} tries: {unanswered[:5]}"
    return {
        "requests": len(everything),
        "answers": kinds(everything),
        "lost_charges": len(lost),
        "spent_but_503": len(spent_503),
        "given_back": sum(1 for e in events if e.get("kind") == "settle"),
        "idempotent": {
            "keys": len(keys),
            "sent_again_after_a_503": len(retried) - len(keys),
            "ended_200": sum(1 for k in keys if paths[k][-1].kind == "ok"),
            "spends": sum(n for (pool, _), n in spends.items() if pool == f"{p}-ih"),
        },
    }


def run(c: ClusterStack, modes: list[str], min_replicas: int, name: str):
    n = 0
    for _ in range(ROUNDS):
        for mode in modes:
            c.redis_cluster.wait_ready(30)
            figs = phase(c, mode, f"p{n}", min_replicas)
            append_figure(name, mode, figs)
            n += 1
    c.redis_cluster.wait_ready(30)


@pytest.fixture
def make_cluster_stack(request):
    from reliability import harness

    made: list[ClusterStack] = []

    def factory(phases: list[str], min_replicas: int, replicas: int) -> ClusterStack:
        pools, routes = config(phases)
        c = ClusterStack(pools, routes, settings(min_replicas), replicas=replicas, node_timeout_ms=NODE_TIMEOUT_MS)
        made.append(c)
        return c.start()

    yield factory
    harness.tear_down(request, made)


def load_figure(min_replicas: int, replicas: int) -> str:
    return (f"{RATE} req/s from {THREADS} threads over 2 nginx, 3 responders x 4 workers, redisTimeoutMs {TIMEOUT_MS}, "
            f"redisMinReplicas {min_replicas}, 3 primaries x {replicas} replica(s) (each reshard adds a primary with "
            f"1 replica), cluster-node-timeout {NODE_TIMEOUT_MS} ms")


def test_reshard_failover_and_kill_without_replica_acks(make_cluster_stack):
    """redisMinReplicas 0 (one replica per primary): resharding, a slot migrated by hand, a
    manual failover, and two kills; lost charges measured for the kills."""
    modes = ["reshard", "migrate", "failover", "kill", "lagging"]
    c = make_cluster_stack([f"p{n}" for n in range(len(modes) * ROUNDS)], 0, 1)
    run(c, modes, 0, "g_cluster_min_replicas_0")
    figure("g_cluster_min_replicas_0", "load", load_figure(0, 1))


def test_kill_with_replica_acks_loses_nothing(make_cluster_stack):
    """redisMinReplicas 1 (two replicas per primary: one is promoted, the other still
    acknowledges): the kills lose no allowed request's charge."""
    modes = ["kill", "lagging"]
    c = make_cluster_stack([f"p{n}" for n in range(len(modes) * ROUNDS)], 1, 2)
    run(c, modes, 1, "g_cluster_min_replicas_1")
    figure("g_cluster_min_replicas_1", "load", load_figure(1, 2))

