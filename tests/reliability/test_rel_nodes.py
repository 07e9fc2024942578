"""(a) Several nodes, one Redis: 3 responders behind 2 nginx, hammered together. The number of
requests allowed is exactly what the buckets allow, counted three ways (200s at the client, hits
at the app, usage events in Redis), every run; idempotent retries racing across nodes are
charged exactly once per key (every retry of a key has the same URI and is free within
idempotencyMaxRepeats; the key on another URI is refused with 422; one retry past the bound is
charged again)."""

from __future__ import annotations

import random

from reliability import (
    Client,
    burst,
    check_app,
    check_accounting,
    config_yaml,
    figure,
    append_figure,
    kinds,
    next_rid,
    only_kinds,
    scale,
)

RUNS = scale(3, 5)
GLOBAL_REQ = scale(1200, 4000)     # on a global pool of 40
SUBJECTS = scale(8, 20)            # per-subject pool of 5 each
SUBJ_REQ = scale(1000, 4000)
COMBO_REQ = scale(800, 2000)       # [ca (30), {cb (40), cost 2}]: 20 pass, ca keeps 10
IDEM_KEYS = scale(40, 100)         # each sent IDEM_TRIES times
IDEM_TRIES = scale(15, 20)         # all free but the first: idempotencyMaxRepeats = IDEM_TRIES - 1
THREADS = scale(24, 32)

GLOBAL_MAX, SUBJ_MAX, CA_MAX, CB_MAX, CB_COST, IDEM_MAX = 40, 5, 30, 40, 2, 1_000_000
HUGE = 1000  # hours: nothing recharges during the test


def config(cluster_dir_sock) -> str:
    pools, routes = [], []
    for k in range(RUNS):
        pools += [
            f"- {{id: r{k}-global, maxCharges: {GLOBAL_MAX}, rechargeIntervalHours: {HUGE}}}",
            f"- {{id: r{k}-subj, maxCharges: {SUBJ_MAX}, rechargeIntervalHours: {HUGE}, per: subject}}",
            f"- {{id: r{k}-ca, maxCharges: {CA_MAX}, rechargeIntervalHours: {HUGE}}}",
            f"- {{id: r{k}-cb, maxCharges: {CB_MAX}, rechargeIntervalHours: {HUGE}}}",
            f"- {{id: r{k}-idem, maxCharges: {IDEM_MAX}, rechargeIntervalHours: {HUGE}}}",
        ]
        routes += [
            f"- {{prefix: /api/rel/r{k}-global, pools: [r{k}-global]}}",
            f"- {{prefix: /api/rel/r{k}-subj, pools: [r{k}-subj]}}",
            f"- {{prefix: /api/rel/r{k}-combo, pools: [r{k}-ca, {{id: r{k}-cb, cost: {CB_COST}}}]}}",
            f"- {{prefix: /api/rel/r{k}-idem, pools: [r{k}-idem], idempotent: true}}",
        ]
    settings = f"workers: 4\nredisTimeoutMs: 1000\nidempotencyMaxRepeats: {IDEM_TRIES - 1}"
    return config_yaml(cluster_dir_sock, "\n".join(pools), "\n".join(routes), settings)


def test_exact_budgets_across_three_responders_and_two_nginx(make_cluster):
    c = make_cluster("", responders=3, nginxes=2, start=False)
    c.config.write_text(config(c.redis.sock))
    c.start()
    ports = [n.port for n in c.nginxes]
    pids = [r.proc.pid for r in c.responders]
    rng = random.Random(20251121)

    for k in range(RUNS):
        specs = []
        for i in range(GLOBAL_REQ):
            specs.append((i % 2, f"r{k}-global", None))
        for i in range(SUBJ_REQ):
            specs.append((i % 2, f"r{k}-subj", {"X-Subject": f"user-{i % SUBJECTS}"}))
        for i in range(COMBO_REQ):
            specs.append((i % 2, f"r{k}-combo", None))
        # the retries of one key are the same request: one path (prid) for all of them
        idem_paths = {f"key-{k}-{j}": next_rid() for j in range(IDEM_KEYS)}
        for j in range(IDEM_KEYS):
            for t in range(IDEM_TRIES):
                specs.append(((j + t) % 2, f"r{k}-idem", {"Idempotency-Key": f"key-{k}-{j}"}, idem_paths[f"key-{k}-{j}"]))
        rng.shuffle(specs)
        recs = burst(ports, specs, THREADS)
        assert len(recs) == len(specs)
        only_kinds(recs, {"ok", "429"}, f"run {k}")

        # global pool: exactly 40, counted at the client, the app and the event log
        g = check_accounting(c, recs, f"r{k}-global")
        assert g["allowed"] == GLOBAL_MAX and g["charged"] == GLOBAL_MAX, g
        assert c.state(f"r{k}-global")["current"] == 0

        # per-subject pool: exactly 5 per subject
        s = check_accounting(c, recs, f"r{k}-subj")
        per_subject: dict[str, int] = {}
        for r in recs:
            if r.route == f"r{k}-subj" and r.kind == "ok":
                per_subject[r.headers["X-Subject"]] = per_subject.get(r.headers["X-Subject"], 0) + 1
        assert per_subject == {f"user-{i}": SUBJ_MAX for i in range(SUBJECTS)}, per_subject
        assert s["charged"] == SUBJ_MAX * SUBJECTS, s
        for i in range(SUBJECTS):
            assert c.state(f"r{k}-subj:user-{i}")["current"] == 0

        # two pools, all or none: cb (40, cost 2) allows 20, and ca (30) keeps exactly 10
        a = check_accounting(c, recs, f"r{k}-ca", route=f"r{k}-combo")
        b = check_accounting(c, recs, f"r{k}-cb", route=f"r{k}-combo")
        assert a["allowed"] == CB_MAX // CB_COST == a["charged"] == b["charged"], (a, b)
        assert c.state(f"r{k}-ca")["current"] == CA_MAX - CB_MAX // CB_COST
        assert c.state(f"r{k}-cb")["current"] == 0
        assert {e["amount"] for e in c.events() if e["pool"] == f"r{k}-cb"} == {str(CB_COST)}

        # idempotent retries racing over both nginx and all three responders: one spend per key
        idem = [r for r in recs if r.route == f"r{k}-idem"]
        assert len(idem) == IDEM_KEYS * IDEM_TRIES and all(r.kind == "ok" for r in idem), kinds(idem)
        check_app(c, recs, f"r{k}-idem")  # each key's path: IDEM_TRIES times at the app
        idem_events = [e for e in c.events() if e["pool"] == f"r{k}-idem"]
        keys = [e["idem"] for e in idem_events]
        assert len(keys) == IDEM_KEYS and sorted(keys) == sorted(idem_paths), keys
        assert c.event_rids(f"r{k}-idem") == {prid: 1 for prid in idem_paths.values()}
        assert c.state(f"r{k}-idem")["current"] == IDEM_MAX - IDEM_KEYS

        # after the race: a key on another URI is refused (422, nothing spent, the app never
        # sees it), and one more retry of a key past idempotencyMaxRepeats is charged again
        client = Client(ports)
        try:
            reused = [client.send(j % 2, f"r{k}-idem", next_rid(), headers={"Idempotency-Key": f"key-{k}-{j}"})
                      for j in range(3)]
            assert all(r.status == 422 and "idempotency_key_reused" in r.detail for r in reused), reused
            assert c.state(f"r{k}-idem")["current"] == IDEM_MAX - IDEM_KEYS
            key = f"key-{k}-0"
            past = client.send(1, f"r{k}-idem", next_rid(), headers={"Idempotency-Key": key}, prid=idem_paths[key])
            assert past.kind == "ok", past
            assert c.state(f"r{k}-idem")["current"] == IDEM_MAX - IDEM_KEYS - 1
        finally:
            client.close()
        app = c.app_settled({idem_paths[key]: IDEM_TRIES + 1})
        assert not any(r.rid in app for r in reused), reused
        assert app[idem_paths[key]] == IDEM_TRIES + 1

        append_figure("a_nodes", "runs", {
            "requests": len(recs),
            "global": f"{g['allowed']} allowed / {g['charged']} events / budget {GLOBAL_MAX}",
            "per_subject": f"{s['allowed']} allowed / {s['charged']} events / budget {SUBJ_MAX}x{SUBJECTS}",
            "combo": f"{a['allowed']} allowed / {a['charged']}+{b['charged']} events / budget {CB_MAX // CB_COST}",
            "idempotent": f"{len(idem)} requests, {IDEM_KEYS} keys, {len(idem_events)} spends; 3 reuses 422, 1 retry past the bound charged",
            "answers": kinds(recs),
            "seconds": round(max(r.t1 for r in recs) - min(r.t0 for r in recs), 2),
        })

    # every responder took part, none restarted
    used = c.edge_responders()
    for r in c.responders:
        assert used.get(f"unix:{r.sock}", 0) > 100, used
    assert [r.proc.pid for r in c.responders] == pids and all(r.alive() for r in c.responders)
    figure("a_nodes", "allowed requests per responder (nginx rel_edge log)", sorted(used.values()))
