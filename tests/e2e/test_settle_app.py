"""The app settles (POST /api/usage/settle, docs/http.md; docs/cli.md): through real nginx, a
stand-in app on a `by: app` route gets the hold's id in the X-Charge-Hold header nginx hands it
(`proxy_set_header X-Charge-Hold $charge_gate_hold`), reads the real amount from its own JSON
body and settles it through nginx's admin location; the events show each spend then its
settlement and sum to what was charged; `charge-gate events --sum` gives the totals and
`charge-gate status` the open holds (both read Redis).

Each test that settles runs on both stores (`any_store`); the Redis variant is skipped, with the
reason, while RedisStore.settle is still the stub of the settlement core (its Lua twin is another
part of issue 22): the probe is a settlement of an unknown hold, 404 when settling works, 503
from the stub.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import scrape, BIN, fetch_events, http_request, in_stream_order

TOKEN = "settle-T0ken"
ADMIN = {"Authorization": "Bearer " + TOKEN}
SETTINGS = f'adminToken: "{TOKEN}"\neventsMaxLen: 10000\n'
CONFIG = """\
pools:
  - id: credits
    maxCharges: 100000
    recharge: none
    per: subject
  - id: calls
    maxCharges: 50
    rechargeIntervalHours: 24
    per: subject
routes:
  # The app knows the amount (tokens in its JSON): it settles; nginx's lines are ignored.
  - prefix: /api/chat
    pools: [{id: credits, cost: 4000}, {id: calls, cost: 1}]
    cost: 4000
    settle: {by: app}
  # Served by the stack's own stand-in app, which never settles: its holds stay open.
  - prefix: /api/slow
    pools: [{id: credits, cost: 100}]
    cost: 100
    settle: {by: app}
  - prefix: /api/plain
    pools: [calls]
"""
HOLD_ID = re.compile(r"^[0-9a-f]{32}$")
STATE_KEYS = ["id", "label", "group", "current", "max", "rechargeIntervalHours", "nextRechargeAt", "fullAt",
              "availableBalance", "usedBalance", "balanceLimit"]
SHAPE = ('{"error":"bad_request","message":"body: expected JSON {\\"hold\\":\\"ID\\",\\"amount\\":N} or '
         '{\\"hold\\":\\"ID\\",\\"refund\\":true}"}').encode()


class App:
    """The stand-in app: `POST /api/chat` with `{"tokens":N}` (or `{"fail":true}`) settles the hold
    nginx handed it, through nginx, with that amount (or a refund), then answers its client with
    the settlement's status and answer. Every X-Charge-Hold it got is kept, in order."""

    def __init__(self):
        self.holds: list[str | None] = []
        self.nginx_port: int | None = None
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                hold = self.headers.get("X-Charge-Hold")
                app.holds.append(hold)
                settle = {"hold": hold, "refund": True} if body.get("fail") else {"hold": hold, "amount": body["tokens"]}
                r = http_request(app.nginx_port, "POST", "/api/usage/settle",
                                 {**ADMIN, "Content-Type": "application/json"}, json.dumps(settle).encode())
                out = json.dumps({"hold": hold, "settleStatus": r.status, "settle": json.loads(r.body)}).encode()
                self.send_response(502 if body.get("fail") else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def extra(self) -> str:
        return ("        set $charge_gate_subject $http_x_api_key;\n"
                "        location /api/chat {\n"
                "            include @SNIPPETS@/charge-gate-protect.conf;\n"
                "            proxy_set_header X-Charge-Hold $charge_gate_hold;\n"
                f"            proxy_pass http://127.0.0.1:{self.port};\n"
                "        }\n")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app():
    a = App()
    yield a
    a.stop()


def settle_stack(factory, app):
    s = factory(CONFIG, settings=SETTINGS, extra=app.extra())
    app.nginx_port = s.port
    return s


def settle(s, body: dict | bytes, headers=None, **kw):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return s.post("/api/usage/settle", headers={**(ADMIN if headers is None else headers), "Content-Type": "application/json"},
                  body=data, **kw)


def skip_unless_settling(s):
    """Skips the Redis variant while RedisStore.settle is the core's stub (it answers 503)."""
    r = settle(s, {"hold": "probe0", "refund": True})
    if s.redis is not None and r.status == 503:
        pytest.skip("RedisStore.settle is still the settlement core's stub on this branch (the Redis Lua twin is another part "
                    "of issue 22): the app's settlement answers 503 there")
    assert r.status == 404 and r.json() == {"error": "unknown_hold", "hold": "probe0"}, r


def chat(s, subject: str, body: dict):
    r = s.post("/api/chat", headers={"X-Api-Key": subject, "Content-Type": "application/json"}, body=json.dumps(body).encode())
    return r, r.json()


def pools(doc) -> dict:
    return {p["id"]: p for p in doc["pools"]}


def usage(s, subject: str) -> dict:
    r = s.get("/api/usage", headers={"X-Api-Key": subject})
    assert r.status == 200, r
    return pools(r.json())


def run_events(s, *args):
    r = subprocess.run([str(BIN), "events", "--config", str(s.config), *args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, (args, r.returncode, r.stderr.decode(errors="replace"))
    assert r.stderr == b"", r.stderr
    return r.stdout.decode()


def totals(events) -> dict:
    """{(subject, pool): (amount, spent, settled, requests, settlements)} from the events."""
    out = defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in events:
        t = out[(e["subject"], e["pool"])]
        t[0] += e["amount"]
        if e["kind"] == "spend":
            t[1] += e["amount"]
            t[3] += 1
        else:
            assert e["kind"] == "settle", e
            t[2] += e["amount"]
            t[4] += 1
    return {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------------------------


def test_the_app_settles_from_its_own_json_and_the_events_sum_to_what_was_charged(any_store, app):
    s = settle_stack(any_store, app)
    skip_unless_settling(s)

    # Below the hold: 4000 held, 1500 charged, 2500 given back.
    r, doc = chat(s, "alice", {"tokens": 1500})
    assert r.status == 200, r
    h1 = doc["hold"]
    assert HOLD_ID.match(h1), doc
    assert doc["settleStatus"] == 200, doc
    answer = doc["settle"]
    assert list(answer) == ["hold", "outcome", "pools"] and answer["hold"] == h1 and answer["outcome"] == "amount", answer
    credits, calls = answer["pools"]
    assert list(credits) == STATE_KEYS + ["subject", "difference"], credits
    assert (credits["id"], credits["current"], credits["usedBalance"], credits["subject"], credits["difference"]) == \
        ("credits", 98500, 1500, "alice", -2500), credits
    assert (calls["id"], calls["current"], calls["difference"]) == ("calls", 49, 0), calls

    # Above the hold: 5200 charged, 1200 spent on top.
    r, doc = chat(s, "alice", {"tokens": 5200})
    h2 = doc["hold"]
    assert doc["settle"]["outcome"] == "overage", doc
    assert [p["difference"] for p in doc["settle"]["pools"]] == [1200, 0], doc
    assert doc["settle"]["pools"][0]["current"] == 93300, doc

    # The app failed: it refunds the whole hold, the call too.
    r, doc = chat(s, "alice", {"fail": True})
    assert r.status == 502, r
    h3 = doc["hold"]
    assert doc["settle"]["outcome"] == "refund" and [p["difference"] for p in doc["settle"]["pools"]] == [-4000, -1], doc

    # Another subject, its own hold.
    _, doc = chat(s, "bob", {"tokens": 0})
    h4 = doc["hold"]
    assert [p["current"] for p in doc["settle"]["pools"]] == [100000, 49], doc

    assert app.holds == [h1, h2, h3, h4] and len(set(app.holds)) == 4
    u = usage(s, "alice")
    assert (u["credits"]["current"], u["calls"]["current"]) == (93300, 48), u

    # At most once: the same hold again is a 409 and changes nothing; an unknown one a 404.
    for body in ({"hold": h1, "amount": 1}, {"hold": h3, "refund": True}):
        r = settle(s, body)
        assert r.status == 409 and r.json() == {"error": "already_settled", "hold": body["hold"]}, r
    r = settle(s, {"hold": "f" * 32, "amount": 1})
    assert r.status == 404 and r.json() == {"error": "unknown_hold", "hold": "f" * 32}, r
    assert usage(s, "alice")["credits"]["current"] == 93300

    # /metrics counts the app's settlements as nginx's lines: 4 holds opened; 2 settled by an
    # amount, 1 past the hold, 1 refund; the 2 second settlements; the 2 unknown holds (the
    # probe of skip_unless_settling and the one above).
    m = scrape(s)
    holds = {k: m.get(f'charge_gate_holds_total{{outcome="{k}"}}') for k in
             ("opened", "amount", "overage", "refund", "duplicate", "unknown", "ignored", "stands", "expired", "bad_amount")}
    assert holds == {"opened": 4, "amount": 2, "overage": 1, "refund": 1, "duplicate": 2, "unknown": 2, "ignored": 0,
                     "stands": 0, "expired": 0, "bad_amount": 0}, holds

    # The events: each spend, then its settlement, per pool; kind and hold, no status (the app's).
    evs = fetch_events(s, TOKEN)
    got = [(e["kind"], e["pool"], e["subject"], e["amount"], e["hold"]) for e in evs]
    expected = [
        ("spend", "credits", "alice", 4000, h1), ("spend", "calls", "alice", 1, h1),
        ("settle", "credits", "alice", -2500, h1), ("settle", "calls", "alice", 0, h1),
        ("spend", "credits", "alice", 4000, h2), ("spend", "calls", "alice", 1, h2),
        ("settle", "credits", "alice", 1200, h2), ("settle", "calls", "alice", 0, h2),
        ("spend", "credits", "alice", 4000, h3), ("spend", "calls", "alice", 1, h3),
        ("settle", "credits", "alice", -4000, h3), ("settle", "calls", "alice", -1, h3),
        ("spend", "credits", "bob", 4000, h4), ("spend", "calls", "bob", 1, h4),
        ("settle", "credits", "bob", -4000, h4), ("settle", "calls", "bob", 0, h4),
    ]
    # alice's and bob's holds: on a cluster two slots, whose events of one millisecond have no order
    assert in_stream_order(s, got, lambda t: t[2]) == in_stream_order(s, expected, lambda t: t[2]), got
    assert all("status" not in e and e["route"] == "/api/chat" for e in evs), evs
    # Per subject and pool they sum to what was charged: what usage shows as used.
    t = totals(evs)
    assert t[("alice", "credits")] == (1500 + 5200, 12000, -5300, 3, 3)
    assert t[("alice", "calls")] == (2, 3, -1, 3, 3)
    assert t[("bob", "credits")][0] == 0 and t[("bob", "calls")][0] == 1
    assert 100000 - u["credits"]["current"] == t[("alice", "credits")][0]
    assert 50 - u["calls"]["current"] == t[("alice", "calls")][0]

    if s.redis is not None:
        out = run_events(s, "--sum")
        assert [json.loads(line) for line in out.splitlines()] == [
            {"subject": "alice", "pool": "calls", "amount": 2, "spent": 3, "settled": -1, "requests": 3, "settlements": 3},
            {"subject": "alice", "pool": "credits", "amount": 6700, "spent": 12000, "settled": -5300, "requests": 3,
             "settlements": 3},
            {"subject": "bob", "pool": "calls", "amount": 1, "spent": 1, "settled": 0, "requests": 1, "settlements": 1},
            {"subject": "bob", "pool": "credits", "amount": 0, "spent": 4000, "settled": -4000, "requests": 1,
             "settlements": 1},
        ]
        assert run_events(s, "--sum", "--pool", "credits", "--subject", "alice", "--format", "csv") == \
            "subject,pool,amount,spent,settled,requests,settlements\nalice,credits,6700,12000,-5300,3,3\n"


def test_a_settlement_past_zero_is_owed_and_shown_as_such(any_store, app):
    s = settle_stack(any_store, app)
    skip_unless_settling(s)
    _, doc = chat(s, "carol", {"tokens": 150000})
    assert doc["settle"]["outcome"] == "overage", doc
    credits = doc["settle"]["pools"][0]
    assert (credits["current"], credits["availableBalance"], credits["owed"], credits["difference"]) == (0, 0, 50000, 146000), credits
    r = s.get("/api/usage", headers={"X-Api-Key": "carol"})
    state = pools(json.loads(r.body))["credits"]
    assert (state["current"], state["owed"]) == (0, 50000), state
    keys = [k for k, _ in dict(json.loads(r.body, object_pairs_hook=lambda p: p))["pools"][0]]
    assert keys == STATE_KEYS + ["owed", "subject"], keys
    page = s.get("/api/usage", headers={"X-Api-Key": "carol", "Accept": "text/html"}).text
    assert '<b>-50,000</b> of 100,000 left <span class="state">overdrawn</span>' in page
    # Nothing passes while it owes: a 402 (credits never refill by themselves).
    r = s.post("/api/chat", headers={"X-Api-Key": "carol", "Content-Type": "application/json"}, body=b'{"tokens":1}')
    assert r.status == 402, r
    assert len(app.holds) == 1


def test_the_endpoint_refuses_what_it_should_through_nginx(any_store, app):
    s = settle_stack(any_store, app)
    # Loopback only (nginx), then the token, the method, the body.
    r = settle(s, {"hold": "x", "refund": True}, source="127.0.0.2")
    assert r.status == 403 and b"403 Forbidden" in r.body, r
    r = settle(s, {"hold": "x", "refund": True}, headers={})
    assert r.status == 401 and r.json() == {"error": "unauthorized"} and r.header("WWW-Authenticate") == "Bearer", r
    r = s.get("/api/usage/settle", headers=ADMIN)
    assert r.status == 405 and r.header("Allow") == "POST", r
    for body in (b"", b"{}", b'{"hold":"x","amount":1,"amount":2}', b'{"hold":"x","amount":5,"refund":true}'):
        r = settle(s, body)
        assert r.status == 400 and r.body == SHAPE, (body, r)
    for body in (b'{"hold":"x","amount":1.5}', b'{"hold":"x","amount":-1}', b'{"hold":"x","amount":1e3}',
                 b'{"hold":"x","amount":9007199254740993}'):
        r = settle(s, body)
        assert r.status == 400 and r.json()["message"].startswith("amount: "), (body, r)
    r = settle(s, {"hold": "a/b", "amount": 1})
    assert r.status == 400 and r.json()["message"].startswith("hold: "), r
    r = settle(s, b'{"hold":"x","amount":1' + b" " * 5000 + b"}")
    assert r.status == 413 and r.json() == {"error": "bad_request", "message": "body: at most 4096 bytes"}, r
    r = settle(s, b'{"hold":"x","amount":1' + b" " * 20000 + b"}")
    assert r.status == 413, r
    assert app.holds == []
    edge = [(e["method"], e["uri"], e["status"]) for e in s.edge_log() if e["uri"] == "/api/usage/settle"]
    assert edge[0] == ("POST", "/api/usage/settle", 403), edge


def test_events_sum_totals_what_an_invoice_needs(make_stack, app):
    """`--sum` on Redis over plain spends (settled routes need nothing else here): per subject and
    pool, in byte order, JSONL and CSV, with the export's filters."""
    s = make_stack(CONFIG, settings=SETTINGS, extra=app.extra())
    subjects = ["alice", "bob", "al,ice \"q\""]
    for n, subject in enumerate(subjects):
        for _ in range(n + 1):
            r = s.get("/api/plain/x", headers={"X-Api-Key": subject.encode()})
            assert r.status == 200, r
    evs = fetch_events(s, TOKEN)
    assert len(evs) == 6 and all(e["kind"] == "spend" and "hold" not in e for e in evs), evs
    keys = {e["subject"] for e in evs}
    hashed = next(k for k in keys if k.startswith("h:"))
    lines = [json.loads(line) for line in run_events(s, "--sum").splitlines()]
    assert lines == [
        {"subject": "alice", "pool": "calls", "amount": 1, "spent": 1, "settled": 0, "requests": 1, "settlements": 0},
        {"subject": "bob", "pool": "calls", "amount": 2, "spent": 2, "settled": 0, "requests": 2, "settlements": 0},
        {"subject": hashed, "pool": "calls", "amount": 3, "spent": 3, "settled": 0, "requests": 3, "settlements": 0},
    ]
    rows = list(csv.reader(io.StringIO(run_events(s, "--sum", "--format", "csv"), newline="")))
    assert rows == [["subject", "pool", "amount", "spent", "settled", "requests", "settlements"]] + \
        [[d["subject"], d["pool"], str(d["amount"]), str(d["spent"]), "0", str(d["requests"]), "0"] for d in lines]
    assert run_events(s, "--sum", "--subject", "bob") == \
        '{"subject":"bob","pool":"calls","amount":2,"spent":2,"settled":0,"requests":2,"settlements":0}\n'
    assert run_events(s, "--sum", "--pool", "credits") == ""
    assert run_events(s, "--sum", "--pool", "credits", "--format", "csv") == "subject,pool,amount,spent,settled,requests,settlements\n"
    last = max(e["time"] for e in evs)
    assert run_events(s, "--sum", "--since", str(last + 1)) == ""


def test_status_lists_the_open_holds(make_stack, app):
    """On Redis: the holds of /api/slow (the template's gated /api/ location: the stack's own
    stand-in app answers it and never settles) stay open, and `charge-gate status` lists them
    under the pools."""
    s = make_stack(CONFIG, settings=SETTINGS, extra=app.extra())
    app.nginx_port = s.port
    skip_unless_settling(s)
    for subject in ("dave", "erin"):
        r = s.get("/api/slow/x", headers={"X-Api-Key": subject.encode()})
        assert r.status == 200, r
    _, doc = chat(s, "dave", {"tokens": 10})   # settled: not listed
    r = subprocess.run([str(BIN), "status", "--config", str(s.config), "--subject", "dave", "--holds", "1"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    table, holds = out.split("\n\n", 1)
    assert table.splitlines()[0].split() == ["POOL", "GROUP", "LEFT", "NEXT", "CHARGE", "FULL", "IN", "SUBJECT"], out
    lines = holds.splitlines()
    assert lines[0] == "open holds: 2 (the oldest 1)", out
    assert lines[1].split() == ["HOLD", "SUBJECT", "ROUTE", "AGE", "SETTLE", "WITHIN", "HELD"], out
    cells = lines[2].split()
    assert HOLD_ID.match(cells[0]) and cells[1:3] == ["dave", "/api/slow"] and lines[2].endswith("credits 100"), out
    assert len(lines) == 3, out
