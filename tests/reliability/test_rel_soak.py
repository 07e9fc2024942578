"""(e) Soak: a steady mixed load (allowed, denied, per-subject with churn, idempotent repeats)
for 60 s (bounded) or 10 min (--long). Every few seconds: the responder's RSS, open fds and
threads, and Redis's connection count and memory. After a warm-up: RSS grows by less than
10 MB, fds and threads stay flat, Redis sees exactly one connection per worker; no request
fails, and the app sees exactly the allowed requests."""

from __future__ import annotations

import threading
import time

from reliability import (
    SteadyLoad,
    check_app,
    config_yaml,
    fd_count,
    figure,
    next_rid,
    only_kinds,
    rss_kb,
    scale,
    thread_count,
)

DURATION = scale(60, 600)
WARMUP = scale(12, 60)
EVERY = scale(3, 10)
RATE = scale(300, 300)
THREADS = 8
WORKERS = 4
RSS_GROWTH_LIMIT_KB = 10 * 1024
REGULARS = 20

POOLS = """\
- {id: s-open, maxCharges: 100000000, rechargeIntervalHours: 10}
- {id: s-subj, maxCharges: 3, rechargeIntervalHours: 0.0005, per: subject}
- {id: s-tight, maxCharges: 2, rechargeIntervalHours: 0.0002}
- {id: s-idem, maxCharges: 100000000, rechargeIntervalHours: 10}
"""
ROUTES = """\
- {prefix: /api/rel/s-open, pools: [s-open]}
- {prefix: /api/rel/s-subj, pools: [s-subj]}
- {prefix: /api/rel/s-tight, pools: [s-tight]}
- {prefix: /api/rel/s-idem, pools: [s-idem], idempotent: true}
"""
SETTINGS = f"workers: {WORKERS}\nredisTimeoutMs: 1000\nidempotencyTtlSeconds: 5\neventsMaxLen: 5000"


def pick(k: int, i: int):
    m = i % 20
    if m < 10:
        return "s-open", None
    if m < 13:  # a few regulars, often out of charge
        return "s-subj", {"X-Subject": f"regular-{(k * 7 + i) % REGULARS}"}
    if m < 15:  # passers-by: a new subject each time (a key that expires 1.8 s later)
        return "s-subj", {"X-Subject": f"passer-{k}-{i}"}
    if m < 18:
        return "s-tight", None
    # each key sent 4 times (i = 18, 19, 38, 39 of each 40) within about a second: the same
    # request (one path per key), so one spend and 3 free repeats (idempotencyMaxRepeats 5)
    key = f"k{k}-{i // 40}"
    if key not in IDEM_PATHS:  # one thread per k: no race
        IDEM_PATHS[key] = next_rid()
    return "s-idem", {"Idempotency-Key": key}, "GET", IDEM_PATHS[key]


IDEM_PATHS: dict[str, int] = {}  # idempotency key -> the path id its requests share


def redis_used_memory(c) -> int:
    info = c.rc.command("INFO", "memory")
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise AssertionError("no used_memory in INFO")


def series(xs):
    return {"min": min(xs), "max": max(xs), "last": xs[-1]}


def test_soak(make_cluster):
    c = make_cluster("", responders=1, nginxes=1, start=False)
    c.config.write_text(config_yaml(c.redis.sock, POOLS, ROUTES, SETTINGS))
    c.start()
    r = c.responders[0]
    pid = r.proc.pid
    samples = []  # (t, rss_kb, fds, threads, redis_clients, redis_used_memory, dbsize, xlen, fastcgi_open)
    stop = threading.Event()
    errors = []

    def sample():
        t0 = time.monotonic()
        while not stop.is_set():
            try:
                samples.append((round(time.monotonic() - t0, 1), rss_kb(pid), fd_count(pid), thread_count(pid),
                                c.redis_clients(), redis_used_memory(c), c.rc.command("DBSIZE"),
                                c.rc.command("XLEN", "charge:#events"),
                                int(c.responder_metrics(0)["charge_gate_fastcgi_connections_open"])))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
            stop.wait(EVERY)

    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, pick).start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        time.sleep(DURATION)
    finally:
        recs = load.stop()
        stop.set()
        sampler.join(timeout=30)
    assert not errors, errors
    assert r.alive() and r.proc.pid == pid

    only_kinds(recs, {"ok", "429"}, "soak")
    for route in ("s-open", "s-subj", "s-tight", "s-idem"):
        check_app(c, recs, route)
    by_route = {}
    for x in recs:
        by_route.setdefault(x.route, {}).setdefault(x.kind, 0)
        by_route[x.route][x.kind] += 1
    assert by_route["s-open"].get("429", 0) == 0 and by_route["s-idem"].get("429", 0) == 0, by_route
    assert by_route["s-tight"].get("429", 0) > 0 and by_route["s-subj"].get("429", 0) > 0, by_route
    # one spend per idempotency key; a key whose requests spread over more than the TTL (5 s,
    # a stalled machine) may be spent again
    idem: dict[str, list] = {}
    for x in recs:
        if x.route == "s-idem":
            idem.setdefault(x.headers["Idempotency-Key"], []).append(x)
    spread = sum(1 for xs in idem.values() if max(x.t1 for x in xs) - min(x.t0 for x in xs) > 4.0)
    spent = 100000000 - c.state("s-idem")["current"]
    assert len(idem) <= spent <= len(idem) + spread, (spent, len(idem), spread)

    after = [s for s in samples if s[0] >= WARMUP]
    assert len(after) >= 3, samples
    base = after[0]
    rss = [s[1] for s in after]
    fds = [s[2] for s in after]
    threads = [s[3] for s in after]
    clients = [s[4] for s in after]
    growth = max(rss) - base[1]
    figure("e_soak", "load", f"{RATE} req/s for {DURATION} s ({len(recs)} requests), warm-up {WARMUP} s, "
                             f"sample every {EVERY} s, workers {WORKERS}")
    figure("e_soak", "answers", {k: v for k, v in sorted(by_route.items())})
    figure("e_soak", "idempotent", f"{sum(len(xs) for xs in idem.values())} requests, {len(idem)} keys, {spent} spends")
    figure("e_soak", "rss_kb (whole run)", series([s[1] for s in samples]))
    figure("e_soak", "rss_kb after warm-up", series(rss) | {"growth_kb": growth})
    figure("e_soak", "open fds", series([s[2] for s in samples]))
    figure("e_soak", "threads", series([s[3] for s in samples]))
    figure("e_soak", "redis connections", series([s[4] for s in samples]))
    figure("e_soak", "redis used_memory", series([s[5] for s in samples]))
    figure("e_soak", "redis keys", series([s[6] for s in samples]))
    figure("e_soak", "usage events kept (eventsMaxLen 5000)", series([s[7] for s in samples]))
    figure("e_soak", "FastCGI connections open", series([s[8] for s in samples]))
    figure("e_soak", "samples (t, rss_kb, fds, threads, redis_conns, redis_mem, keys, events, fastcgi_open)", samples)

    assert growth < RSS_GROWTH_LIMIT_KB, f"RSS grew by {growth} kB after the warm-up"
    # fds: listen socket, stdio, one Redis connection per worker, and the FastCGI connections
    # open (the responder's gauge, read just after: on the keepalive profile nginx keeps as many
    # as it likes, up to its upstream keepalive; on edge one per request in flight). Without
    # them the count stays put but for what opened or closed between the two reads.
    steady = [s[2] - s[8] for s in after]
    assert max(steady) - min(steady) <= WORKERS, (fds, [s[8] for s in after])
    assert len(set(threads)) == 1, threads
    assert all(n == WORKERS for n in clients), clients
