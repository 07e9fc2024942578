"""A Redis Cluster end to end (SPEC §12): real nginx with the project's snippets, the responder on
`redis-cluster://` seeds (the session's cluster: CHARGE_GATE_E2E_STORE=cluster, scripts/test's
"e2e on a Redis Cluster" step; skipped otherwise), each stack under its own keyPrefix, the keys
in KeySpace's cluster layout (a subject's keys share `{SUBJECT}`, a global pool's bucket is
`PREFIX{POOL}`, one event stream per slot). The routes here put their pools in different slots
on different primaries (checked against the cluster's own slot map): such a route is spent slot
by slot, the subject's slot last, and a later slot's no gives back what the earlier ones spent.

(a) a global and a per-subject pool: the per-subject pool's 429 charges the global pool nothing
    (usage; a spend and its refund in the global pool's slot's stream; the give-back metric);
(b) two global pools on two primaries: all or nothing, whichever slot says no;
(c) an idempotent retry on such a route is charged once, also when retries race;
(d) `charge-gate events` merges every slot's stream in time order, every event once;
(e) `charge-gate status` and `charge-gate plan` against the cluster;
(f) a settled route over three slots: a 5xx refunds every slot's hold; nginx's line for a
    client that left voids the id, and the spend that comes later is refused.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections import Counter

import pytest

from harness import (
    BIN,
    CLUSTER,
    PROFILE,
    SNIPPETS,
    Responder,
    all_at_once,
    allowed_within,
    assert_allowed,
    assert_out_of_charge,
    fetch_events,
    key_slot,
    scrape,
    slot_tag,
    wait_until,
)
from metering_support import TOKEN, given_back, topoff

pytestmark = pytest.mark.skipif(not CLUSTER, reason="a Redis Cluster's own cases: run with CHARGE_GATE_E2E_STORE=cluster")

# 8 racing retries of one request (c): each of the 7 repeats within the bound.
SETTINGS = f'adminToken: "{TOKEN}"\neventsMaxLen: 10000\nidempotencyMaxRepeats: 25\n'
EXTRA = "        set $charge_gate_subject $http_x_api_key;\n"

# shared and per (bob's) / ga and gb: slots on different primaries (the tests check it).
CONFIG = """\
pools:
  - id: shared
    maxCharges: 100
    rechargeIntervalHours: 100
  - id: per
    maxCharges: 2
    rechargeIntervalHours: 100
    per: subject
  - id: ga
    maxCharges: 3
    rechargeIntervalHours: 100
  - id: gb
    maxCharges: 5
    rechargeIntervalHours: 200
routes:
  - prefix: /api/both
    pools: [shared, per]
  - prefix: /api/two
    pools: [ga, gb]
  - prefix: /api/gb-only
    pools: [gb]
  - prefix: /api/idem
    pools: [shared, per]
    idempotent: true
"""

GIVEN_BACK = 'charge_gate_cluster_give_backs_total{result="given_back"}'
GIVE_BACK_FAILED = 'charge_gate_cluster_give_backs_total{result="failed"}'


def as_(subject: str, key: str | None = None) -> dict:
    return {"X-Api-Key": subject, **({"Idempotency-Key": key} if key else {})}


def usage(s, subject: str | None = None) -> dict:
    r = s.get("/api/usage", headers=as_(subject) if subject else None)
    assert r.status == 200, r
    return {p["id"]: p["current"] for p in r.json()["pools"]}


def give_backs(s) -> tuple[float, float]:
    m = scrape(s)
    return m.get(GIVEN_BACK, 0), m.get(GIVE_BACK_FAILED, 0)


def on_two_primaries(s, a: str, b: str) -> None:
    """Keys `a` and `b` hash to different slots, served by different primaries, as the
    cluster itself says (CLUSTER KEYSLOT, CLUSTER SLOTS)."""
    c = s.redis.client
    for k in (a, b):
        assert c.command("CLUSTER", "KEYSLOT", k) == key_slot(k), k
    assert key_slot(a) != key_slot(b), (a, b)
    assert c.node_of(key_slot(a)) != c.node_of(key_slot(b)), (a, b, c.node_of(key_slot(a)))


def stream(s, slot: int) -> list[tuple[str, dict]]:
    """The raw entries of the event stream of `slot` (PREFIX#events:{TAG}): (id, fields)."""
    out = []
    for entry_id, flat in s.redis.client.command("XRANGE", s.keys.events_in(slot), "-", "+") or []:
        out.append((entry_id, dict(zip(flat[::2], flat[1::2]))))
    return out


def export(s, *args) -> list[dict]:
    r = subprocess.run([str(BIN), "events", "--config", str(s.config), *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines()]


def id_key(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


# --------------------------------------------------------------------------------------------
# (a) (b) (c): routes across slots


def test_a_per_subject_denial_gives_the_global_pools_charge_back(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    shared, per = s.keys.bucket("shared"), s.keys.bucket("per", "bob")
    on_two_primaries(s, shared, per)
    for i in range(2):
        assert_allowed(s.get(f"/api/both/{i}", headers=as_("bob")), "GET", f"/api/both/{i}")
    assert give_backs(s) == (0, 0)

    # bob's per is empty: shared's slot is spent first (the subject's slot comes last), then
    # given back when per says no. The client sees the 429 of per, and shared is not charged.
    assert_out_of_charge(s.get("/api/both/no", headers=as_("bob")), "per")
    assert usage(s, "bob") == {"shared": 98, "per": 0, "ga": 3, "gb": 5}
    assert json.loads(s.key("shared"))["current"] == 98
    assert json.loads(s.key("per:bob"))["current"] == 0
    assert give_backs(s) == (1, 0)
    assert s.app_hits_settled(2) == ["GET /api/both/0 200", "GET /api/both/1 200"]

    # The log: the denied request's spend on shared, then its refund (a settle of the same
    # hold, without a status), both in shared's slot's stream; nothing of it in bob's.
    evs = fetch_events(s, TOKEN, limit=2)
    denied = [e for e in evs if e["uri"] == "/api/both/no"]
    assert [(e["pool"], e["kind"], e["amount"]) for e in denied] == [("shared", "spend", 1), ("shared", "settle", -1)], evs
    spend, refund = denied
    assert spend["hold"] == refund["hold"] and "status" not in refund, denied
    in_shared = [(i, f) for i, f in stream(s, key_slot(shared)) if f["uri"] == "/api/both/no"]
    assert [i for i, _ in in_shared] == [spend["id"], refund["id"]], in_shared
    assert [f.get("kind", "spend") for _, f in in_shared] == ["spend", "settle"], in_shared
    assert [f for _, f in stream(s, key_slot(per)) if f["uri"] == "/api/both/no"] == []
    # The step hold that carried the give-back, in shared's slot (PREFIX#step:{TAG}:ID), settled.
    step = s.redis.client.get(f"{s.keys.prefix}#step:{{{slot_tag(key_slot(shared))}}}:{spend['hold']}")
    assert step is not None and json.loads(step)["status"] == "settled", step
    # Per pool, the events sum to what was charged; what stands is the two allowed requests.
    assert {p: sum(e["amount"] for e in evs if e["pool"] == p) for p in ("shared", "per")} == {"shared": 2, "per": 2}
    standing, cancelled = given_back(evs)
    assert Counter((e["pool"], e["uri"]) for e in standing) == Counter(
        {("shared", "/api/both/0"): 1, ("per", "/api/both/0"): 1, ("shared", "/api/both/1"): 1, ("per", "/api/both/1"): 1})
    assert len(cancelled) == 1
    # The export says the same.
    assert [(e["id"], e["kind"], e["amount"]) for e in export(s, "--pool", "shared") if e["uri"] == "/api/both/no"] == [
        (spend["id"], "spend", 1), (refund["id"], "settle", -1)]


def test_two_global_pools_on_two_primaries_are_spent_all_or_nothing(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    ga, gb = s.keys.bucket("ga"), s.keys.bucket("gb")
    on_two_primaries(s, ga, gb)

    # gb empty: /api/two is denied at gb's slot (spent first: ga's, the route's first pool's, is
    # the home slot) and ga is never written.
    for _ in range(5):
        assert s.get("/api/gb-only").status == 200
    assert_out_of_charge(s.get("/api/two/x"), "gb")
    assert s.key("ga") is None
    assert give_backs(s) == (0, 0)

    # gb full again: three spend both; then ga is empty and says no after gb's slot spent: gb
    # is given back.
    assert topoff(s, {"poolId": "gb"}).status == 200
    allowed_within(lambda: s.get("/api/two/x"), "gb", 2.0, "still denied 2 s after the top-off")
    for _ in range(2):
        assert_allowed(s.get("/api/two/x"), "GET", "/api/two/x")
    assert (json.loads(s.key("ga"))["current"], json.loads(s.key("gb"))["current"]) == (0, 2)
    for _ in range(2):
        assert_out_of_charge(s.get("/api/two/y"), "ga")
    assert (json.loads(s.key("ga"))["current"], json.loads(s.key("gb"))["current"]) == (0, 2)
    assert usage(s) == {"shared": 100, "per": 2, "ga": 0, "gb": 2}
    # the second denial may come from a worker's memory of the first: at least one give-back
    given, failed = give_backs(s)
    assert given >= 1 and failed == 0, (given, failed)
    assert len(s.app_hits_settled(5 + 3)) == 8
    evs = fetch_events(s, TOKEN)
    assert {p: sum(e["amount"] for e in evs if e["pool"] == p) for p in ("ga", "gb")} == {"ga": 3, "gb": 5 + 3}
    _, cancelled = given_back(evs)
    assert [(a["pool"], a["uri"]) for a, _ in cancelled] == [("gb", "/api/two/y")] * int(given)


def test_an_idempotent_retry_across_slots_is_charged_once(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    on_two_primaries(s, s.keys.bucket("shared"), s.keys.idempotency("carol", "order-1"))
    for _ in range(3):
        assert_allowed(s.post("/api/idem/o", headers=as_("carol", "order-1")), "POST", "/api/idem/o")
    assert usage(s, "carol") == {"shared": 99, "per": 1, "ga": 3, "gb": 5}
    # A repeat is answered in carol's slot before any other slot spends: no give-back.
    assert give_backs(s) == (0, 0)
    # The key on another request: 422, and nothing spent anywhere.
    r = s.post("/api/idem/other", headers=as_("carol", "order-1"))
    assert r.status == 422 and r.json() == {"error": "idempotency_key_reused"}, r
    assert usage(s, "carol")["shared"] == 99 and give_backs(s) == (0, 0)
    record = s.redis.client.get(s.keys.idempotency("carol", "order-1"))
    assert record is not None and record.endswith(":2"), record   # two free repeats given

    # Eight retries racing with a new key: every one allowed, charged once; a racer that spent
    # shared's slot before carol's said "repeat" got it back.
    results = all_at_once(8, lambda: s.post("/api/idem/p", headers=as_("carol", "order-2")), start=10)
    for r in results:
        assert_allowed(r, "POST", "/api/idem/p")
    assert usage(s, "carol") == {"shared": 98, "per": 0, "ga": 3, "gb": 5}
    evs = fetch_events(s, TOKEN)
    standing, cancelled = given_back(evs)
    assert Counter((e["pool"], e["idempotencyKey"]) for e in standing) == Counter(
        {("shared", "order-1"): 1, ("per", "order-1"): 1, ("shared", "order-2"): 1, ("per", "order-2"): 1})
    assert all(a["pool"] == "shared" and a["idempotencyKey"] == "order-2" for a, _ in cancelled), cancelled
    assert give_backs(s) == (len(cancelled), 0)
    assert len(s.app_hits_settled(3 + 8)) == 11


# --------------------------------------------------------------------------------------------
# (d) the event log: one stream per slot, merged


def test_the_export_merges_every_slots_stream_in_time_order(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    c = s.redis.client
    # Subjects whose slots are on each of the three primaries, and the global pools' own.
    subjects = ["alice", "bob", "erin", "ivan"]
    for n in range(6):
        for subject in subjects:
            s.get(f"/api/both/{n}", headers=as_(subject))          # per: 2 each, then 429s (given back)
            if n % 2 == 0:
                s.post(f"/api/idem/{n}", headers=as_(subject, f"k{n % 4}"))
        s.get(f"/api/two/{n}")                                       # ga: 3, then 429s (given back)
    streams = s.event_streams()
    nodes = {c.node_of(key_slot(k)) for k in streams}
    assert len(nodes) == 3, (streams, nodes)
    raw = [(i, f) for k in streams for i, f in stream(s, key_slot(k))]

    evs = export(s)
    assert len(evs) == len(raw) == s.events_len() >= 40
    ids = [id_key(e["id"]) for e in evs]
    assert ids == sorted(ids), "the export is not in time order"
    # Every stream entry once: the same multiset of (id, pool, subject, amount, uri, kind)
    # (two slots' streams may hold the same id).
    def entry(i, f):
        return i, f["pool"], f["subject"], int(f["amount"]), f["uri"], f.get("kind", "spend")

    def event(e):
        return e["id"], e["pool"], e["subject"], e["amount"], e["uri"], e["kind"]

    assert Counter(map(event, evs)) == Counter(entry(i, f) for i, f in raw)
    assert len(set(map(event, evs))) == len(evs)
    # Each stream's own order is kept.
    for k in streams:
        own = [entry(i, f) for i, f in stream(s, key_slot(k))]
        assert [event(e) for e in evs if event(e) in set(own)] == own, k
    # The API, three events a page, has exactly the same events in the same order.
    assert fetch_events(s, TOKEN, limit=3) == evs
    # Filters and --sum over the merged log.
    t = evs[len(evs) // 2]["time"]
    assert export(s, "--since", str(t)) == [e for e in evs if e["time"] >= t]
    assert export(s, "--subject", "erin") == [e for e in evs if e["subject"] == "erin"]
    sums = {(r["subject"], r["pool"]): r for r in export(s, "--sum")}
    for (subject, pool), row in sums.items():
        mine = [e for e in evs if (e["subject"], e["pool"]) == (subject, pool)]
        assert row["spent"] + row["settled"] == sum(e["amount"] for e in mine), row
        assert row["requests"] == sum(1 for e in mine if e["kind"] == "spend"), row
    assert usage(s)["ga"] == 0 and sum(e["amount"] for e in evs if e["pool"] == "ga") == 3


# --------------------------------------------------------------------------------------------
# (e) the command line against the cluster

PLANS = """\
pools:
  - id: gen
    per: subject
    maxCharges: 2
    rechargeIntervalHours: 24
  - id: shared
    maxCharges: 7
    rechargeIntervalHours: 1
  - id: credits
    maxCharges: 100
    recharge: none
plans:
  - id: free
  - id: pro
    pools:
      gen: {maxCharges: 50}
defaultPlan: free
routes:
  - prefix: /api/generate
    pools: [shared, gen]
  - prefix: /api/held
    cost: 10
    pools: [credits, {id: shared, cost: 1}, {id: gen, cost: 1}]
    settle: {by: app}
"""


def plan_cli(s, *args) -> dict:
    r = subprocess.run([str(BIN), "plan", *args, "--config", str(s.config)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    return json.loads(r.stdout)


def status(s, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "status", "--config", str(s.config), *args], capture_output=True, text=True,
                          timeout=20)


def test_plan_and_status_on_the_cluster(make_stack):
    s = make_stack(PLANS, settings=SETTINGS, extra=EXTRA)
    on_two_primaries(s, s.keys.bucket("shared"), s.keys.plan("dave"))
    # plan set: the record in dave's slot, beside his buckets; the running responder applies it.
    assert plan_cli(s, "set", "dave", "pro") == {"subject": "dave", "plan": "pro", "source": "stored", "periodAnchor": None}
    assert s.redis.client.get(s.keys.plan("dave")) == '{"plan":"pro"}'
    assert key_slot(s.keys.plan("dave")) == key_slot(s.keys.bucket("gen", "dave"))
    assert plan_cli(s, "get", "dave")["source"] == "stored"
    for _ in range(3):   # more than free's 2
        assert_allowed(s.post("/api/generate", headers=as_("dave")), "POST", "/api/generate")
    assert usage(s, "dave")["gen"] == 47
    assert json.loads(s.key("gen:dave")) == {**json.loads(s.key("gen:dave")), "current": 47, "max": 50}

    r = status(s, "--subject", "dave")
    assert r.returncode == 0 and r.stderr == "", r
    lines = r.stdout.splitlines()
    assert lines[0] == "plan: pro (stored)", lines
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.strip()}
    assert rows["gen"][1] == "47/50" and rows["gen"][-1] == "dave", rows
    assert rows["shared"][1] == "4/7", rows

    assert plan_cli(s, "clear", "dave")["source"] == "default"
    assert s.redis.client.get(s.keys.plan("dave")) is None
    r = status(s, "--subject", "dave")
    assert r.stdout.splitlines()[0] == "plan: free (default)", r.stdout


def test_status_lists_an_open_hold_across_slots_once(make_stack):
    """One request on a settled route whose pools live in three slots holds in each slot (a
    hold per slot, found through its claim); `charge-gate status` lists the request's hold once,
    with every pool it holds, as on one node."""
    s = make_stack(PLANS, settings=SETTINGS, extra=EXTRA)
    assert_allowed(s.post("/api/held/x", headers=as_("erin")), "POST", "/api/held/x")
    holds = s.redis_keys("#hold:*")
    assert len(holds) == 3, holds
    r = status(s, "--subject", "erin")
    assert r.returncode == 0 and r.stderr == "", r
    text = r.stdout
    assert "open holds: 1" in text, text
    row = [line for line in text.splitlines() if "/api/held" in line]
    assert len(row) == 1 and "credits 10, shared 1, gen 1" in row[0], text


# --------------------------------------------------------------------------------------------
# (f) settlement across slots

SETTLED = """\
pools:
  - id: credits
    maxCharges: 100
    recharge: none
  - id: calls
    maxCharges: 10
    rechargeIntervalHours: 100
  - id: quota
    maxCharges: 5
    rechargeIntervalHours: 100
    per: subject
routes:
  - prefix: /api/chat
    cost: 10
    pools: [credits, {id: calls, cost: 1}, {id: quota, cost: 1}]
    settle: {amount: header}
"""

# The stand-in app of the settlement tests (an amount from the path, a failure).
from test_settle import HTTP_EXTRA as SETTLE_HTTP_EXTRA  # noqa: E402


SETTLE_EXTRA = EXTRA + """
        include @DIR@/settle.conf;
        location /api/chat/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/settle-app.sock;
        }
"""


def settled_stack(make_stack, own_settle_socket: str | None = None):
    """The settled stack; nginx's lines go to DIR/settle.sock, the responder's own settlement
    socket is DIR/`own_settle_socket` when given (another responder then reads the lines)."""
    s = make_stack(SETTLED, settings=SETTINGS, extra=SETTLE_EXTRA, http_extra=SETTLE_HTTP_EXTRA, start=False)
    if own_settle_socket:
        s.settings += f"settleListen: {s.dir / own_settle_socket}\n"
    shipped = (SNIPPETS / "charge-gate-settle.conf").read_text()
    (s.dir / "settle.conf").write_text(shipped.replace("/run/charge-gate/settle.sock", str(s.dir / "settle.sock")))
    s.start()
    return s


def holds_metric(s) -> dict:
    m = scrape(s)
    return {k: m.get(f'charge_gate_holds_total{{outcome="{k}"}}', 0) for k in ("opened", "refund", "amount", "voided")}


def test_a_5xx_refunds_every_slots_hold(make_stack):
    s = settled_stack(make_stack)
    slots = {key_slot(s.keys.bucket("credits")), key_slot(s.keys.bucket("calls")), key_slot(s.keys.bucket("quota", "bob"))}
    assert len({s.redis.client.node_of(slot) for slot in slots}) == 3

    assert s.post("/api/chat/amount/4", headers=as_("bob")).status == 200
    assert s.post("/api/chat/fail", headers=as_("bob")).status == 500
    wait_until(lambda: holds_metric(s)["refund"] + holds_metric(s)["amount"] == 2, 10, what="two settlements")
    assert holds_metric(s) == {"opened": 2, "refund": 1, "amount": 1, "voided": 0}
    # 4 of the 10 held charged, calls and quota per call; the failure gave every slot back.
    assert usage(s, "bob") == {"credits": 96, "calls": 9, "quota": 4}

    evs = fetch_events(s, TOKEN)
    failed = [e for e in evs if e["uri"] == "/api/chat/fail"]
    hold = failed[0]["hold"]
    assert Counter((e["pool"], e["kind"], e["amount"], e.get("status")) for e in failed) == Counter({
        ("credits", "spend", 10, None): 1, ("calls", "spend", 1, None): 1, ("quota", "spend", 1, None): 1,
        ("credits", "settle", -10, 500): 1, ("calls", "settle", -1, 500): 1, ("quota", "settle", -1, 500): 1})
    assert {e["hold"] for e in failed} == {hold}
    # Its holds: one per slot (PREFIX#hold:{TAG}:ID), each settled; the claim names the slots.
    for slot in slots:
        record = s.redis.client.get(s.keys.hold(hold, slot))
        assert record is not None and json.loads(record)["status"] == "settled", (slot, record)
    # The claim: each pool's slot in route order, then the home slot (bob's): S,S,S/H.
    claim = s.redis.client.get(s.keys.hold_claim(hold))
    home = key_slot(s.keys.bucket("quota", "bob"))
    assert claim == ",".join(str(key_slot(k)) for k in (
        s.keys.bucket("credits"), s.keys.bucket("calls"), s.keys.bucket("quota", "bob"))) + f"/{home}", claim
    assert len(s.redis_keys("#hold:*")) == 2 * 3
    # Each settle event is in its pool's slot's stream, after the spend.
    for pool, key in (("credits", s.keys.bucket("credits")), ("quota", s.keys.bucket("quota", "bob"))):
        mine = [f.get("kind", "spend") for _, f in stream(s, key_slot(key)) if f["uri"] == "/api/chat/fail"]
        assert mine == ["spend", "settle"], (pool, mine)


def test_a_client_that_leaves_voids_the_id_before_the_late_spend(make_stack):
    """Two responders on the cluster: A answers nginx's auth subrequests, B reads nginx's
    settlement lines (any responder settles any hold). A is stopped while a request waits on
    it; the client leaves (or nginx gives up at the gate's read timeout, on the keepalive
    profile); nginx's line reaches B, which voids the request's id in its claim (nothing was
    claimed yet). When A runs again, its spend finds the id void and spends nothing."""
    s = settled_stack(make_stack, "settle-a.sock")
    b_dir = s.dir / "b"
    b_dir.mkdir()
    b_config = b_dir / "charge-gate.yaml"
    text = s.config.read_text()
    b_config.write_text(text.replace(f"listen: {s.dir / 'charge.sock'}", f"listen: {b_dir / 'charge.sock'}")
                        .replace(f"settleListen: {s.dir}/settle-a.sock", f"settleListen: {s.dir}/settle.sock"))
    b = Responder(b_dir, b_config)
    b.start()
    try:
        before = usage(s, "bob")
        s.responder.signal(signal.SIGSTOP)
        try:
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"POST /api/chat/amount/5 HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: bob\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.3)
            c.close()

            def voided():
                claims = s.redis_keys("#holdref:*")
                return claims and all(s.redis.client.get(k) == "void" for k in claims) and claims

            claims = wait_until(voided, 8.0 if PROFILE == "keepalive" else 4.0, interval=0.05,
                                what="B voiding the id nginx's line names")
        finally:
            s.responder.signal(signal.SIGCONT)
        assert len(claims) == 1, claims
        wait_until(lambda: "hold was voided" in s.responder.log_text(), 5, what="A refusing the late spend")
        assert s.redis_keys("#hold:*") == []
        assert usage(s, "bob") == before
        assert fetch_events(s, TOKEN) == []
        assert s.app_hits_settled() == []
    finally:
        b.stop()
