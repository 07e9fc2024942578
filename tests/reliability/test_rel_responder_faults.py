"""(c) The responder dies or is restarted under a steady load.

1. Own socket (as deploy/local-stack runs it): kill -9 the only responder behind nginx; while it
   is down nginx answers the 503 JSON and the app sees nothing; started again, service resumes.
2. `listen: inherit` behind a launcher that holds the listening socket and restarts the child
   (systemd socket activation style): requests sent while no child runs wait in the socket's
   backlog and succeed. A graceful restart (SIGTERM: requests in flight finish) fails none; a
   kill -9 can fail only the requests the dead child had accepted (at most one per worker).
In every case: the app sees only allowed requests, and each request is charged at most once.
"""

from __future__ import annotations

import os
import re
import signal
import time

from reliability import (
    Launcher,
    SteadyLoad,
    check_accounting,
    config_yaml,
    figure,
    first_ok_after,
    kinds,
    only_kinds,
    pid_alive,
    scale,
    unix_connectable,
    wait_until,
    window,
)

RATE = scale(300, 400)
THREADS = 8
WORKERS = 4
MAX = 10_000_000
SETTLE = 0.05
RESTARTS = scale(2, 6)  # per kind, with the launcher


def config(sock, pools: list[str]) -> str:
    p = "\n".join(f"- {{id: {x}, maxCharges: {MAX}, rechargeIntervalHours: 10}}" for x in pools)
    r = "\n".join(f"- {{prefix: /api/rel/{x}, pools: [{x}]}}" for x in pools)
    return config_yaml(sock, p, r, f"workers: {WORKERS}\nredisTimeoutMs: 1000")


def test_responder_killed_then_started_again(make_cluster):
    c = make_cluster("", responders=1, nginxes=1, start=False)
    c.config.write_text(config(c.redis.sock, ["c-kill"]))
    c.start()
    r = c.responders[0]
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, lambda k, i: ("c-kill", None)).start()
    try:
        time.sleep(scale(1.5, 5))
        old = r.proc.pid
        t_kill = time.monotonic()
        r.kill()
        time.sleep(scale(1.0, 3.0))
        t_start = time.monotonic()
        c.start_responder(r)  # the same command again, as local-stack or systemd would
        t_ready = time.monotonic()
        time.sleep(scale(2.0, 5.0))
    finally:
        recs = load.stop()
    assert r.proc.pid != old and r.alive()
    only_kinds(recs, {"ok", "503"}, "responder killed")
    down = window(recs, t_kill + SETTLE, t_start)
    assert down and all(x.kind == "503" for x in down), [x for x in down if x.kind != "503"][:5]
    gap = first_ok_after(recs, t_start)  # from the start command: includes the startup
    assert gap is not None and gap < 2.0, gap
    acc = check_accounting(c, recs, "c-kill")
    assert "connect() to unix:" in c.nginxes[0].error_log()  # it really was down
    figure("c_responder_faults", "kill -9, own socket, started again", {
        "requests": acc["requests"], "503 while down": len(down), "first_200_after_start_ms": round(gap * 1000),
        "socket_ready_after_start_ms": round((t_ready - t_start) * 1000),
        "allowed": acc["allowed"], "charged": acc["charged"], "spent_but_503": acc["spent_but_503"],
        "answers": acc["answers"]})


def test_inherited_socket_restarts_wait_in_the_backlog(make_cluster):
    # On the edge profile, where every auth subrequest is a new connection and waits in the
    # inherited socket's backlog while no child runs. On the keepalive profile the old child's
    # kept connections are its own: it answers on them for a grace and then closes those still
    # idle, and a request nginx sent on one just then is lost (nginx does not resend an auth
    # subrequest: a resend could spend twice), the 503 JSON: seen once in two graceful restarts
    # at 300 req/s (README, "Auth profiles"; the rolling restart below holds the keepalive
    # profile to 200-or-503 with exact charges).
    c = make_cluster("", responders=1, nginxes=1, start=False, start_responders=False, profile="edge")
    c.config.write_text(config(c.redis.sock, ["c-inherit"]))
    c.start()
    r = c.responders[0]
    launcher = Launcher(r.dir, r.sock, c.config, restart_delay=0.3)
    launcher.start()
    c.extra_pids.append(launcher.proc.pid)
    figs = {}
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, lambda k, i: ("c-inherit", None)).start()
    marks = []  # (kind, t_signal, t_new_child)
    try:
        time.sleep(1.0)
        for n in range(RESTARTS * 2):
            how = signal.SIGTERM if n % 2 == 0 else signal.SIGKILL
            old = launcher.child_pid()
            assert old is not None
            t0 = time.monotonic()
            os.kill(old, how)
            wait_until(lambda: launcher.child_pid() not in (None, old), 15, interval=0.01, what="a new child")
            t1 = time.monotonic()
            marks.append((how, t0, t1))
            time.sleep(1.5)
    finally:
        recs = load.stop()
    try:
        assert launcher.restarts() == RESTARTS * 2 + 1, launcher.log_tail()
        only_kinds(recs, {"ok", "503"}, "restarts behind an inherited socket")
        acc = check_accounting(c, recs, "c-inherit")
        for how, t0, t1 in marks:
            name = "SIGTERM (graceful)" if how == signal.SIGTERM else "SIGKILL"
            # requests sent from the signal until the new child runs, and answered any time
            during = [x for x in recs if t0 <= x.t0 <= t1]
            around = [x for x in recs if x.t0 <= t1 + 0.5 and x.t1 >= t0]
            failed = [x for x in around if x.kind != "ok"]
            waited = max((x.t1 - x.t0 for x in during), default=0.0)
            entry = figs.setdefault(name, {"restarts": 0, "no_child_ms": [], "sent_while_no_child": 0,
                                           "of_which_failed": 0, "failed_around_restart": 0, "longest_wait_ms": 0})
            entry["restarts"] += 1
            entry["no_child_ms"].append(round((t1 - t0) * 1000))
            entry["sent_while_no_child"] += len(during)
            entry["of_which_failed"] += sum(1 for x in during if x.kind != "ok")
            entry["failed_around_restart"] += len(failed)
            entry["longest_wait_ms"] = max(entry["longest_wait_ms"], round(waited * 1000))
            if how == signal.SIGTERM:
                assert not failed, f"a graceful restart failed requests: {failed[:5]}"
            else:
                # only what the killed child had accepted can fail: at most one per worker
                assert len(failed) <= WORKERS, failed
            assert during, "no request was sent while the child was restarting"
        total_failed = sum(1 for x in recs if x.kind != "ok")
        figs["all"] = {"requests": acc["requests"], "allowed": acc["allowed"], "charged": acc["charged"],
                       "spent_but_503": acc["spent_but_503"], "failed": total_failed, "answers": kinds(recs),
                       "restart_delay_s": launcher.restart_delay}
    finally:
        launcher.stop()
    assert not pid_alive(launcher.proc.pid)
    assert not unix_connectable(r.sock)
    for k, v in figs.items():
        figure("c_responder_faults", f"inherit + launcher: {k}", v)


def test_one_of_three_responders_killed_mid_request_never_double_charges(make_cluster):
    """3 responders behind one nginx (the snippet says `fastcgi_next_upstream error`). A
    responder is killed while its requests are in flight: their spends were already written to
    Redis (held here by pausing Redis for 80 ms around the kill, which widens the window a crash
    between the spend and the answer always has). nginx may send the same request to another
    responder; that must never charge one client request twice."""
    c = make_cluster("", responders=3, nginxes=1, start=False)
    c.config.write_text(config(c.redis.sock, ["c-multi"]))
    c.start()
    kills = scale(6, 20)
    # GET and POST alike: nginx's auth subrequest is a GET whatever the client's method
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS,
                      lambda k, i: ("c-multi", None, "POST" if (k + i) % 2 else "GET")).start()
    try:
        time.sleep(1.0)
        for n in range(kills):
            victim = c.responders[n % 3]
            os.kill(c.redis.proc.pid, signal.SIGSTOP)
            time.sleep(0.04)
            victim.kill()
            time.sleep(0.04)
            os.kill(c.redis.proc.pid, signal.SIGCONT)
            time.sleep(0.3)
            c.start_responder(victim)
            time.sleep(0.5)
    finally:
        os.kill(c.redis.proc.pid, signal.SIGCONT)
        recs = load.stop()
    only_kinds(recs, {"ok", "503"}, "responders killed mid-request")
    ev = c.event_rids("c-multi")
    twice = sorted(rid for rid, n in ev.items() if n > 1)
    by_rid = {r.rid: r for r in recs}
    figure("c_responder_faults", "1 of 3 responders killed mid-request (x%d)" % kills, {
        "requests": len(recs), "answers": kinds(recs), "charged twice": len(twice),
        "charged twice, answered": kinds([by_rid[x] for x in twice if x in by_rid]),
        "charged twice, client method": sorted(by_rid[x].method for x in twice if x in by_rid)})
    assert not twice, (f"{len(twice)} client requests were charged twice (nginx retried them on another "
                       f"responder after the first had spent): e.g. {[by_rid.get(x) for x in twice[:5]]}")
    acc = check_accounting(c, recs, "c-multi")
    figure("c_responder_faults", "1 of 3 responders killed mid-request (x%d)" % kills, {
        "requests": acc["requests"], "answers": acc["answers"], "charged twice": 0,
        "spent_but_503": acc["spent_but_503"]})


def restart_one_by_one(c, rounds: int):
    """Restarts the three responders one after the other, `rounds` times round: SIGTERM (each
    exits 0), then the same command again (a new process), a pause between restarts."""
    for n in range(3 * rounds):
        victim = c.responders[n % 3]
        old = victim.proc.pid
        victim.stop()
        assert victim.proc.returncode == 0, victim.proc.returncode
        c.start_responder(victim)
        assert victim.proc.pid != old
        time.sleep(scale(1.5, 4.0))


def test_rolling_restart_of_three_responders_never_double_charges(make_cluster):
    """3 responders behind one nginx (own sockets, `max_fails=3 fail_timeout=1s` as README
    "Deploying" recommends), restarted one after the other (SIGTERM: queued requests and those
    in flight are answered, the socket goes away; then the same command again) under a steady
    load. The auth subrequest is never resent to another responder (`fastcgi_next_upstream
    off`: a resend after the first one spent would charge twice), so a request nginx sends to a
    socket that is momentarily missing gets the 503 JSON: fail-closed, never the app, never a
    double charge. Nothing queued is reset and nginx never runs out of live responders.
    (With socket activation the socket outlives the process and nothing fails at all: see
    test_inherited_socket_restarts_wait_in_the_backlog.)"""
    c = make_cluster("", responders=3, nginxes=1, start=False)
    c.config.write_text(config(c.redis.sock, ["c-rolling"]))
    c.start()
    rounds = scale(1, 3)
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, lambda k, i: ("c-rolling", None)).start()
    try:
        time.sleep(1.0)
        restart_one_by_one(c, rounds)
    finally:
        recs = load.stop()
    acc = check_accounting(c, recs, "c-rolling")
    err = c.nginxes[0].error_log()
    nginx_says = {
        "queued then reset (retried on another)": err.count("recv() failed (104: Connection reset by peer) while reading response header"),
        "server temporarily disabled (max_fails)": err.count("upstream server temporarily disabled"),
        "no live upstreams (503)": err.count("no live upstreams"),
    }
    figure("c_responder_faults", f"rolling graceful restart of 3 responders (x{rounds})", {
        "requests": acc["requests"], "answers": acc["answers"], "allowed": acc["allowed"],
        "charged": acc["charged"], "spent_but_503": acc["spent_but_503"], "nginx error log": nginx_says})
    only_kinds(recs, {"ok", "503"}, f"rolling restart (nginx error log: {nginx_says})")
    missing_socket = len(re.findall(r"connect\(\) to unix:\S+ failed \((2|111):", err))
    assert nginx_says["queued then reset (retried on another)"] == 0, nginx_says
    assert nginx_says["no live upstreams (503)"] == 0, nginx_says
    failed = acc["answers"].get("503", 0)
    assert failed <= missing_socket, (failed, missing_socket, nginx_says)


def test_rolling_restart_on_the_keepalive_profile_never_double_charges(make_cluster):
    """The rolling restart above on the keepalive auth profile (README, "Auth profiles"): three
    responders behind two nginx, each nginx's upstream with `keepalive 32`, so nginx holds kept
    FastCGI connections to every responder when it is stopped. A stopping responder answers
    what came on its kept connections and closes them; a request sent on one it closed, or to
    its missing socket, gets the 503 JSON, never a resend to another responder (a double
    charge) and never the app uncharged. The connections are kept before and after: the
    responders accept a few dozen for thousands of requests."""
    c = make_cluster("", responders=3, nginxes=2, start=False, profile="keepalive")
    c.config.write_text(config(c.redis.sock, ["c-keepalive"]))
    c.start()
    for n in c.nginxes:
        assert "keepalive 32;" in n.conf.read_text()
    rounds = scale(1, 3)
    ports = [n.port for n in c.nginxes]
    load = SteadyLoad(ports, RATE, THREADS, lambda k, i: ("c-keepalive", None)).start()
    try:
        time.sleep(1.0)
        kept_before = (c.fastcgi_connections(), len(load.records))
        restart_one_by_one(c, rounds)
        # every responder restarted: what their new processes accepted, for what was sent since
        since = len(load.records)
        time.sleep(1.0)
        kept_after = (c.fastcgi_connections(), len(load.records) - since)
    finally:
        recs = load.stop()
    acc = check_accounting(c, recs, "c-keepalive")
    errs = [n.error_log() for n in c.nginxes]
    nginx_says = {
        "queued then reset": sum(e.count("recv() failed (104: Connection reset by peer)") for e in errs),
        "kept connection closed under a request": sum(e.count("upstream prematurely closed") for e in errs),
        "server temporarily disabled (max_fails)": sum(e.count("upstream server temporarily disabled") for e in errs),
        "no live upstreams (503)": sum(e.count("no live upstreams") for e in errs),
    }
    missing_socket = sum(len(re.findall(r"connect\(\) to unix:\S+ failed \((2|111):", e)) for e in errs)
    figure("c_responder_faults", f"rolling graceful restart of 3 responders, 2 nginx, keepalive profile (x{rounds})", {
        "requests": acc["requests"], "answers": acc["answers"], "allowed": acc["allowed"],
        "charged": acc["charged"], "spent_but_503": acc["spent_but_503"], "nginx error logs": nginx_says,
        "connections accepted / requests, before": list(kept_before),
        "connections accepted by the new processes / requests since": list(kept_after)})
    only_kinds(recs, {"ok", "503"}, f"rolling restart, keepalive (nginx error logs: {nginx_says})")
    assert nginx_says["queued then reset"] == 0, nginx_says
    assert nginx_says["kept connection closed under a request"] == 0, nginx_says
    assert nginx_says["no live upstreams (503)"] == 0, nginx_says
    failed = acc["answers"].get("503", 0)
    assert failed <= missing_socket, (failed, missing_socket, nginx_says)
    # kept: (responders' scrapes and the nginx workers' first connections aside) far fewer
    # connections than requests, before the restarts and after them
    for accepted, sent in (kept_before, kept_after):
        assert sent >= 200 and accepted <= 48, (kept_before, kept_after)


def test_graceful_stop_answers_what_was_queued(make_cluster):
    """SIGTERM to the only responder (own socket) under load: "finish the requests in flight
    and exit 0". Requests nginx had already handed over (queued in the listening socket's
    backlog) must be answered, not reset; started again, service resumes. Requests that arrive
    while no process listens get the 503 JSON (unavoidable without socket activation)."""
    # On the edge profile, for the reason the inherited-socket test below gives: on keepalive a
    # request nginx sends on an idle kept connection just as the stopping responder closes it is
    # reset (the 503 JSON; docs/protocol.md, "the responder restarted"), which this test's
    # "nothing queued is reset" does not allow; it failed so once in four runs of the layer. The
    # keepalive profile's restarts are held to 200-or-503 with exact charges by the rolling
    # restart test.
    c = make_cluster("", responders=1, nginxes=1, start=False, profile="edge")
    c.config.write_text(config(c.redis.sock, ["c-term"]))
    c.start()
    r = c.responders[0]
    rounds = scale(3, 10)
    load = SteadyLoad([c.nginxes[0].port], RATE, THREADS, lambda k, i: ("c-term", None)).start()
    try:
        time.sleep(1.0)
        for _ in range(rounds):
            r.stop()
            assert r.proc.returncode == 0, r.proc.returncode
            c.start_responder(r)
            time.sleep(1.0)
    finally:
        recs = load.stop()
    acc = check_accounting(c, recs, "c-term")
    only_kinds(recs, {"ok", "503"}, "graceful restarts")
    err = c.nginxes[0].error_log()
    reset = err.count("recv() failed (104: Connection reset by peer) while reading response header")
    refused = len(re.findall(r"connect\(\) to unix:\S+ failed \((2|111):", err))
    figure("c_responder_faults", f"graceful restart (SIGTERM) of the only responder (x{rounds})", {
        "requests": acc["requests"], "answers": acc["answers"],
        "503: queued then reset by the stopping responder": reset,
        "503: no process listening (connect refused)": refused,
        "spent_but_503": acc["spent_but_503"]})
    assert reset == 0, (f"{reset} requests already queued at the responder's socket were reset by the "
                        f"graceful stop (nginx: 'recv() failed (104: Connection reset by peer) while reading "
                        f"response header') instead of being answered")
