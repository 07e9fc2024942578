"""(d) Config reload under load: SIGHUP with a good changed file and with a broken one, many
times each, while a steady load runs. No request fails (no 5xx, no connection error, each
allowed request charged once); each broken file is logged (FILE:LINE) and the running config
keeps enforcing: a drained pool stays denied although the broken files drop its route."""

from __future__ import annotations

import os
import re
import signal
import time

from harness import http_request

from reliability import (
    SteadyLoad,
    check_accounting,
    config_yaml,
    figure,
    kinds,
    only_kinds,
    scale,
    wait_until,
)

EACH = scale(20, 100)  # good reloads and broken reloads
RATE = scale(300, 400)
THREADS = 8
TIGHT = 5

POOLS_A = f"""\
- {{id: d-open, maxCharges: 10000000, rechargeIntervalHours: 10, label: Open A}}
- {{id: d-tight, maxCharges: {TIGHT}, rechargeIntervalHours: 10}}
"""
POOLS_B = POOLS_A.replace("Open A", "Open B") + "- {id: d-extra, maxCharges: 3, rechargeIntervalHours: 1}\n"
ROUTES_A = """\
- {prefix: /api/rel/d-open, pools: [d-open]}
- {prefix: /api/rel/d-tight, pools: [d-tight]}
"""
ROUTES_B = ROUTES_A + "- {prefix: /api/rel/d-extra, pools: [d-extra]}\n"
# What the broken files would do if they were applied: drop the route of the drained pool
# (its requests would pass). Each has one error of another kind.
ROUTES_OPEN_ONLY = "- {prefix: /api/rel/d-open, pools: [d-open]}\n"
BROKEN = [  # (what, pools, routes, the error the log must show)
    ("an unknown key", POOLS_A.replace("label: Open A", "label: Open X, colour: red"), ROUTES_OPEN_ONLY,
     "colour: unknown key"),
    ("a route naming an unknown pool", POOLS_A, ROUTES_OPEN_ONLY + "- {prefix: /api/rel/d-x, pools: [nope]}\n",
     "unknown pool 'nope'"),
    ("a duplicate pool id", POOLS_A + "- {id: d-open, maxCharges: 1, rechargeIntervalHours: 1}\n", ROUTES_OPEN_ONLY,
     "duplicate pool id 'd-open'"),
    ("maxCharges 0", POOLS_A.replace(f"maxCharges: {TIGHT}", "maxCharges: 0"), ROUTES_OPEN_ONLY,
     "maxCharges: must be a whole number >= 1, got 0"),
    ("a YAML syntax error", POOLS_A + "- {id: [unclosed\n", ROUTES_OPEN_ONLY, "invalid YAML"),
]
SETTINGS = "workers: 4\nredisTimeoutMs: 1000"


def usage_pools(port: int) -> list[tuple[str, str]]:
    r = http_request(port, "GET", "/api/usage", timeout=10)
    assert r.status == 200, r
    return [(p["id"], p["label"]) for p in r.json()["pools"]]


def test_reload_good_and_broken_configs_under_load(make_cluster):
    c = make_cluster("", responders=1, nginxes=1, start=False)
    sock = c.redis.sock
    good = {"A": config_yaml(sock, POOLS_A, ROUTES_A, SETTINGS), "B": config_yaml(sock, POOLS_B, ROUTES_B, SETTINGS)}
    expect = {"A": [("d-open", "Open A"), ("d-tight", "d-tight")],
              "B": [("d-open", "Open B"), ("d-tight", "d-tight"), ("d-extra", "d-extra")]}
    c.config.write_text(good["A"])
    c.start()
    r = c.responders[0]
    pid = r.proc.pid
    port = c.nginxes[0].port

    def write(text: str):
        tmp = c.config.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, c.config)  # as an editor or a config manager does

    def log_count(text: str) -> int:
        return r.log_text().count(text)

    # drain the tight pool: from now on its route must answer 429, whatever is reloaded
    from reliability import Client, next_rid

    client = Client([port])
    drained = [client.send(0, "d-tight", next_rid()).kind for _ in range(TIGHT + 2)]
    client.close()
    assert drained == ["ok"] * TIGHT + ["429", "429"], drained

    load = SteadyLoad([port], RATE, THREADS, lambda k, i: ("d-open", None)).start()
    probe = SteadyLoad([port], 25, 1, lambda k, i: ("d-tight", None)).start()
    current = "A"
    reload_ms = []
    try:
        time.sleep(1.0)
        for n in range(2 * EACH):
            ok_before = log_count("config reloaded")
            bad_before = log_count("config reload failed")
            t0 = time.monotonic()
            if n % 2 == 0:
                current = "B" if current == "A" else "A"
                write(good[current])
                r.signal(signal.SIGHUP)
                wait_until(lambda: log_count("config reloaded") > ok_before, 10, interval=0.01, what="the reload")
            else:
                what, pools, routes, _ = BROKEN[(n // 2) % len(BROKEN)]
                write(config_yaml(sock, pools, routes, SETTINGS))
                r.signal(signal.SIGHUP)
                wait_until(lambda: log_count("config reload failed") > bad_before, 10, interval=0.01,
                           what=f"the refused reload ({what})")
            reload_ms.append((time.monotonic() - t0) * 1000)
            assert usage_pools(port) == expect[current], (n, current)
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        recs = load.stop()
        probes = probe.stop()

    only_kinds(recs, {"ok"}, "load during reloads")
    only_kinds(probes, {"429"}, "the drained pool during reloads")
    acc = check_accounting(c, recs, "d-open")
    assert acc["allowed"] == acc["charged"] == len(recs)
    assert log_count("config reloaded") == EACH
    assert log_count("config reload failed") == EACH
    log = r.log_text()
    for what, _, _, error in BROKEN:
        assert re.search(re.escape(str(c.config)) + r":[0-9]+: .*" + re.escape(error), log), \
            f"the reload of a file with {what} was not logged as FILE:LINE: ...{error}"
    assert r.alive() and r.proc.pid == pid
    figure("d_reload", "result", {
        "good reloads": EACH, "broken reloads": EACH, "requests during reloads": len(recs),
        "answers": kinds(recs), "drained-pool probes": kinds(probes),
        "reload_to_log_ms_max": round(max(reload_ms), 1), "charged": acc["charged"]})


def test_reload_to_the_largest_valid_values_keeps_serving(make_cluster):
    """A file that `charge-gate check-config` accepts must also be one a running responder can
    reload (and start with): the documented maxima: maxCharges 10^15 (with the shortest
    interval that keeps a full refill within 2^53 ms), rechargeIntervalHours 876000 (with the
    largest maxCharges that does), on a pool and on a per-subject pool."""
    import subprocess

    from reliability import BIN, Client, next_rid

    c = make_cluster("", responders=1, nginxes=1, start=False)
    sock = c.redis.sock
    c.config.write_text(config_yaml(sock, POOLS_A, ROUTES_A, SETTINGS))
    c.start()
    r = c.responders[0]
    pid = r.proc.pid
    big = POOLS_A + ("- {id: d-huge, maxCharges: 1000000000000000, rechargeIntervalHours: 0.000002}\n"
                     "- {id: d-huge-subj, maxCharges: 1000000000000000, rechargeIntervalHours: 0.000002, per: subject}\n"
                     "- {id: d-long, maxCharges: 2856, rechargeIntervalHours: 876000}\n"
                     "- {id: d-long-subj, maxCharges: 2856, rechargeIntervalHours: 876000, per: subject}\n")
    routes = ROUTES_A + "- {prefix: /api/rel/d-huge, pools: [d-huge, d-huge-subj, d-long, d-long-subj]}\n"
    text = config_yaml(sock, big, routes, SETTINGS)
    probe = c.dir / "probe.yaml"
    probe.write_text(text)
    checked = subprocess.run([str(BIN), "check-config", str(probe)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    c.config.write_text(text)
    r.signal(signal.SIGHUP)
    time.sleep(1.0)
    died = None if r.alive() else r.proc.returncode
    figure("d_reload", "reload to maxCharges 10^15 (7 ms interval) and rechargeIntervalHours 876000 (2856 charges)",
           {"check-config": checked.stdout.strip(), "responder after SIGHUP": "alive" if died is None else f"died ({died})"})
    if died is not None:
        log = r.log_text()
        why = [ln.strip() for ln in log.splitlines() if "runtime failure" in ln or "Fatal error" in ln][:1]
        where = [ln.strip() for ln in log.splitlines() if re.search(r" at /\S+\.swift:\d+", ln)][:2]
        raise AssertionError(f"the responder died on reloading a config that check-config accepts "
                             f"(exit {died}): {why} {where}")
    assert r.proc.pid == pid
    client = Client([c.nginxes[0].port])
    try:
        assert client.send(0, "d-huge", next_rid()).kind == "ok"
    finally:
        client.close()
