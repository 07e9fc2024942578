"""(b) Redis dies, hangs and comes back under a steady load.

Three outages, each under its own steady load on its own pool: kill -9 then a restart with its
data (append-only file, fsync always), SIGSTOP for 2 s then SIGCONT (commands time out), and a
kill -9 then a restart empty. For each:
- during the outage every gated request gets the 503 JSON, and the app sees only the allowed;
- the responder is never restarted (same pid, alive);
- service resumes within 1 s of Redis returning (the gap to the first 200 is reported);
- nothing is charged twice (one usage event per request at most), nothing allowed goes
  uncharged, and a charge whose answer was lost (a timeout after the write) is reported as
  "spent but answered 503": allowed by the design, never the reverse.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from reliability import (
    SteadyLoad,
    check_accounting,
    config_yaml,
    figure,
    first_ok_after,
    only_kinds,
    scale,
    window,
)

RATE = scale(400, 500)
THREADS = 8
BEFORE = scale(1.5, 5.0)      # steady load before the fault
AFTER = scale(2.5, 5.0)       # and after Redis is back
OUTAGE = scale(1.5, 5.0)      # kill -9 phases
HANG = 2.0                    # SIGSTOP phase (the brief's 2 s)
MAX = 10_000_000
RESUME_LIMIT = 1.0            # README: "service resumes within a second of Redis returning"
SETTLE = 0.05                 # a request sent this long after the fault met the fault
TIMEOUT_MS = 100


def config(sock) -> str:
    pools = "\n".join(f"- {{id: {p}, maxCharges: {MAX}, rechargeIntervalHours: 10}}"
                      for p in ("b-kill", "b-stop", "b-empty"))
    routes = "\n".join(f"- {{prefix: /api/rel/{p}, pools: [{p}]}}" for p in ("b-kill", "b-stop", "b-empty"))
    return config_yaml(sock, pools, routes, f"workers: 4\nredisTimeoutMs: {TIMEOUT_MS}")


def run_phase(c, pool: str, fault, restore, outage: float):
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, lambda k, i: (pool, None)).start()
    try:
        time.sleep(BEFORE)
        t_fault = time.monotonic()
        fault()
        time.sleep(outage)
        # Redis may answer from the moment restore() starts it, before it returns: the outage
        # ends there (a 200 just before t_back is no free pass; seen once under CI load).
        t_restoring = time.monotonic()
        t_back = restore()
        time.sleep(AFTER)
    finally:
        recs = load.stop()
    return recs, t_fault, (t_restoring, t_back)


@pytest.fixture
def cluster(make_cluster):
    c = make_cluster("", responders=1, nginxes=1, persistent=True, start=False)
    c.config.write_text(config(c.redis.sock))
    return c.start()


def outage_checks(c, recs, t_fault, t_restore, pid, name):
    t_restoring, t_back = t_restore
    only_kinds(recs, {"ok", "503"}, name)
    during = window(recs, t_fault + SETTLE, t_restoring)
    assert during, f"{name}: no request was answered during the outage"
    assert all(r.kind == "503" for r in during), [r for r in during if r.kind != "503"][:5]
    gap = first_ok_after(recs, t_back)
    assert gap is not None, f"{name}: service never resumed"
    assert gap < RESUME_LIMIT, f"{name}: the first 200 came {gap:.3f}s after Redis returned"
    r = c.responders[0]
    assert r.alive() and r.proc.pid == pid, f"{name}: the responder restarted or died"
    slowest = max(x.t1 - x.t0 for x in recs)
    return during, gap, slowest


def test_redis_killed_hung_and_emptied_under_load(cluster):
    c = cluster
    pid = c.responders[0].proc.pid
    figs = {}

    # 1. kill -9, restart with its data (AOF) on the same socket
    def restart_with_data():
        c.redis.start()
        return time.monotonic()

    recs, t_fault, t_back = run_phase(c, "b-kill", c.redis.kill, restart_with_data, OUTAGE)
    during, gap, slowest = outage_checks(c, recs, t_fault, t_back, pid, "kill -9 + restart with data")
    acc = check_accounting(c, recs, "b-kill")
    events = sum(1 for e in c.events() if e["pool"] == "b-kill")
    assert MAX - c.state("b-kill")["current"] == events, "spent in the bucket != usage events"
    figs["kill -9, restart with AOF data"] = {
        "outage_s": OUTAGE, "requests": acc["requests"], "503 during outage": len(during),
        "resume_gap_ms": round(gap * 1000), "allowed": acc["allowed"], "spent": events,
        "spent_but_503": acc["spent_but_503"], "answers": acc["answers"], "slowest_answer_s": round(slowest, 3)}

    # 2. SIGSTOP for 2 s, then SIGCONT: commands time out (redisTimeoutMs 100)
    def stop():
        os.kill(c.redis.proc.pid, signal.SIGSTOP)

    def cont():
        os.kill(c.redis.proc.pid, signal.SIGCONT)
        return time.monotonic()

    recs, t_fault, t_back = run_phase(c, "b-stop", stop, cont, HANG)
    during, gap, slowest = outage_checks(c, recs, t_fault, t_back, pid, "SIGSTOP 2 s")
    time.sleep(0.3)  # commands that were queued in Redis while it was stopped have run now
    acc = check_accounting(c, recs, "b-stop")
    events = sum(1 for e in c.events() if e["pool"] == "b-stop")
    assert MAX - c.state("b-stop")["current"] == events, "spent in the bucket != usage events"
    figs["SIGSTOP 2 s, SIGCONT"] = {
        "requests": acc["requests"], "503 during outage": len(during), "resume_gap_ms": round(gap * 1000),
        "allowed": acc["allowed"], "spent": events, "spent_but_503": acc["spent_but_503"],
        "answers": acc["answers"], "slowest_answer_s": round(slowest, 3)}

    # 3. kill -9, restart EMPTY (no data): budgets restart, service resumes
    def restart_empty():
        c.redis.wipe()
        c.redis.start()
        return time.monotonic()

    recs, t_fault, t_back = run_phase(c, "b-empty", c.redis.kill, restart_empty, OUTAGE)
    during, gap, slowest = outage_checks(c, recs, t_fault, t_back, pid, "kill -9 + restart empty")
    # Only what was charged after the restart is in the new Redis: every 200 sent after the
    # kill must be there.
    after_kill = {r.rid for r in recs if r.t0 >= t_fault + SETTLE}
    acc = check_accounting(c, recs, "b-empty", charged_rids=after_kill)
    events = sum(1 for e in c.events() if e["pool"] == "b-empty")
    assert MAX - c.state("b-empty")["current"] == events
    assert c.state("b-kill") is None and c.state("b-stop") is None, "the restart was not empty"
    figs["kill -9, restart empty"] = {
        "outage_s": OUTAGE, "requests": acc["requests"], "503 during outage": len(during),
        "resume_gap_ms": round(gap * 1000), "allowed after the kill": sum(1 for r in recs if r.kind == "ok" and r.rid in after_kill),
        "spent in the new Redis": events, "spent_but_503": acc["spent_but_503"], "answers": acc["answers"],
        "slowest_answer_s": round(slowest, 3)}

    assert c.responders[0].proc.pid == pid and c.responders[0].alive()
    for k, v in figs.items():
        figure("b_redis_faults", k, v)
    figure("b_redis_faults", "load", f"{RATE} req/s from {THREADS} threads, workers 4, redisTimeoutMs {TIMEOUT_MS}")
