"""Settlement end to end (docs/settlement.md), on both stores: nginx's line after each response
(the shipped charge-gate-settle.conf, pointed at the responder's own socket DIR/settle.sock)
reaches the responder's reader and applier, which settle the hold on the store. A 2xx with an
amount charges exactly it (the rest of the hold back), a 5xx gives the hold back, an amount
above the hold is charged on top (the pool owes, usage shows `owed`, the next request is
refused until a top-off pays the debt back), the body bytes sent are metered; datagrams forged
at the socket (an unknown hold, the auth location's, a replay of a settled line, garbage)
change nothing and are counted; the events sum to what the pool was charged.
"""

from __future__ import annotations

import signal
import socket
import time

from harness import SNIPPETS, fetch_events, scrape, wait_until
from metering_support import TOKEN, topoff

CONFIG = """\
pools:
  - id: credits
    maxCharges: 100
    recharge: none
  - id: calls
    maxCharges: 10
    rechargeIntervalHours: 100
  - id: transfer
    maxCharges: 50
    recharge: none
routes:
  - prefix: /api/chat
    cost: 10
    pools: [credits, {id: calls, cost: 1}]
    settle: {amount: header}
  - prefix: /api/dl
    cost: 8
    pools: [transfer]
    settle: {amount: {bytesSent: 1024}}
"""

SETTINGS = f'adminToken: "{TOKEN}"\neventsMaxLen: 10000\n'

# The stand-in app: an amount from the path, a failure, and a 3000-byte file.
HTTP_EXTRA = """
    server {
        listen unix:@DIR@/settle-app.sock;
        access_log off;
        location ~ ^/api/chat/amount/(?<amount>[0-9]+)$ {
            add_header X-Charge-Amount $amount;
            return 200 'chat';
        }
        location /api/chat/fail {
            return 500 'failed';
        }
        location /api/dl/ {
            alias @DIR@/files/;
        }
    }
"""

EXTRA = """
        include @DIR@/settle.conf;
        location /api/chat/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/settle-app.sock;
        }
        location /api/dl/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            proxy_pass http://unix:@DIR@/settle-app.sock;
        }
"""


def settle_stack(any_store):
    s = any_store(CONFIG, settings=SETTINGS, extra=EXTRA, http_extra=HTTP_EXTRA, start=False)
    shipped = (SNIPPETS / "charge-gate-settle.conf").read_text()
    (s.dir / "settle.conf").write_text(shipped.replace("/run/charge-gate/settle.sock", str(s.dir / "settle.sock")))
    (s.dir / "files").mkdir()
    (s.dir / "files" / "big.bin").write_bytes(b"x" * 3000)
    s.start()
    return s


def holds(s) -> dict[str, float]:
    m = scrape(s)
    return {k: m.get(f'charge_gate_holds_total{{outcome="{k}"}}', 0) for k in
            ("opened", "refund", "amount", "overage", "stands", "bad_amount", "expired", "duplicate", "unknown", "voided",
             "ignored")}


def lines(s) -> dict[str, float]:
    m = scrape(s)
    return {k: m.get(f'charge_gate_settle_lines_total{{result="{k}"}}', 0) for k in
            ("accepted", "too_long", "malformed", "bad_field", "auth_location", "dropped")}


def settled(s, n: int):
    """Waits until n holds have been settled (the applier runs beside the requests)."""
    def done():
        h = holds(s)
        return h["refund"] + h["amount"] + h["overage"] + h["stands"] + h["bad_amount"] >= n
    wait_until(done, 10, what=f"{n} settlements")


def send(s, payload: str) -> None:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        c.sendto(("<190>Dec  6 13:20:08 nginx: " + payload).encode(), str(s.dir / "settle.sock"))
    finally:
        c.close()


def test_nginx_lines_settle_holds_exactly_and_forged_ones_change_nothing(any_store):
    s = settle_stack(any_store)

    # An amount below the hold: 10 held, 4 charged; calls (its own cost) stays charged.
    assert s.post("/api/chat/amount/4").status == 200
    settled(s, 1)
    u = s.usage()
    assert (u["credits"]["current"], u["calls"]["current"]) == (96, 9), u

    # The app fails: everything given back.
    assert s.post("/api/chat/fail").status == 500
    settled(s, 2)
    u = s.usage()
    assert (u["credits"]["current"], u["calls"]["current"]) == (96, 9), u

    # Bytes sent: 3000 bytes at 1024 a charge is 3 (8 held).
    r = s.get("/api/dl/big.bin")
    assert r.status == 200 and len(r.body) == 3000, r
    settled(s, 3)
    assert s.usage()["transfer"]["current"] == 47

    # Above the hold: 150 charged, 140 on top of the 10 held: the pool owes 54.
    assert s.post("/api/chat/amount/150").status == 200
    settled(s, 4)
    u = s.usage()
    assert (u["credits"]["current"], u["credits"].get("owed"), u["calls"]["current"]) == (0, 54, 8), u
    r = s.post("/api/chat/amount/1")
    assert r.status == 402 and r.json()["poolId"] == "credits", r
    # A top-off pays the debt back first: 54 owed + 60 leaves 6, still short of the hold (10).
    assert topoff(s, {"poolId": "credits", "amount": 60}).status == 200
    assert s.post("/api/chat/amount/1").status == 402
    assert topoff(s, {"poolId": "credits", "amount": 10}).status == 200
    assert s.post("/api/chat/amount/1").status == 200
    settled(s, 5)
    assert s.usage()["credits"]["current"] == 15

    h = holds(s)
    assert h == {"opened": 5, "refund": 1, "amount": 3, "overage": 1, "stands": 0, "bad_amount": 0, "expired": 0,
                 "duplicate": 0, "unknown": 0, "voided": 0, "ignored": 0}, h
    assert lines(s) == {"accepted": 5, "too_long": 0, "malformed": 0, "bad_field": 0, "auth_location": 0, "dropped": 0}

    # The events: each spend, then its settlement per pool; they sum to what was charged.
    evs = fetch_events(s, TOKEN)
    first = [e for e in evs if e["pool"] == "credits"]
    assert [(e["kind"], e["amount"]) for e in first] == [
        ("spend", 10), ("settle", -6), ("spend", 10), ("settle", -10), ("spend", 10), ("settle", 140),
        ("spend", 10), ("settle", -9)], first
    assert all(e["hold"] for e in evs), evs
    assert [e.get("status") for e in first if e["kind"] == "settle"] == [200, 500, 200, 200], first
    charged = {p: sum(e["amount"] for e in evs if e["pool"] == p) for p in ("credits", "calls", "transfer")}
    assert charged == {"credits": 4 + 150 + 1, "calls": 3, "transfer": 3}, charged

    # Forged datagrams at the socket change nothing and are counted: a hold never made, the auth
    # location's line, a replay of a settled hold's line, garbage.
    before = s.usage()
    hold = first[0]["hold"]
    send(s, "cg1|" + "f" * 32 + "|main|200|200|10|5|0.001|1733491208.123|0")
    send(s, f"cg1|{hold}|auth|200|200|10|5|0.001|1733491208.123|0")
    send(s, f"cg1|{hold}|main|200|200|10|5|0.001|1733491208.123|0")
    send(s, "hello")
    wait_until(lambda: holds(s)["unknown"] == 1 and holds(s)["duplicate"] == 1, 10, what="the forged lines counted")
    assert s.usage() == before
    assert lines(s) == {"accepted": 7, "too_long": 0, "malformed": 1, "bad_field": 0, "auth_location": 1, "dropped": 0}
    assert len(fetch_events(s, TOKEN)) == len(evs)


def test_a_client_that_leaves_before_the_gate_answers_is_charged_nothing(any_store):
    # The responder is stopped while the auth subrequest waits; the client leaves; nginx logs
    # the request under its id without the decision (499, or 000 when it notices only as the
    # auth answer comes). When the responder runs again, its worker spends under that id and
    # its reader takes the line, in either order: the hold is given back (opened, then refund)
    # or the line voids the id first and the spend is refused. Either way nothing is charged.
    # Should nginx notice the client gone only after the app answered (it then ran the
    # request), that request is charged its amount like any other. Three times, so that both
    # orders are likely seen.
    s = settle_stack(any_store)

    def levels():
        return {pool: state["current"] for pool, state in s.usage().items()}
    before = levels()
    for _ in range(3):
        s.responder.signal(signal.SIGSTOP)
        try:
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"POST /api/chat/amount/5 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.3)
            c.close()
            time.sleep(0.2)  # nginx logs the request
        finally:
            s.responder.signal(signal.SIGCONT)

    def done():
        h = holds(s)
        return h["refund"] + h["voided"] + h["amount"] == 3 and h["opened"] == h["refund"] + h["amount"]
    wait_until(done, 10, what="three holds settled or voided")
    h = holds(s)
    assert h["unknown"] == h["duplicate"] == h["overage"] == h["stands"] == 0, h
    ran = int(h["amount"])  # requests the app answered (5 tokens each)
    assert ran < 3, h  # the stopped responder keeps most requests from reaching the app
    assert levels() == {**before, "credits": before["credits"] - 5 * ran, "calls": before["calls"] - ran}
    evs = fetch_events(s, TOKEN)
    assert sum(e["amount"] for e in evs if e["pool"] == "credits") == 5 * ran, evs
    assert sum(e["amount"] for e in evs if e["pool"] == "calls") == ran, evs
    # The refunds (a per-call pool given back): lines of requests that delivered nothing.
    refunds = [e for e in evs if e["kind"] == "settle" and e["pool"] == "calls" and e["amount"] < 0]
    assert len(refunds) == h["refund"] and all(e.get("status") in (499, 0) for e in refunds), evs
    # A refused spend answered 503 to nobody, and says why in the responder's log.
    if h["voided"]:
        wait_until(lambda: "hold was voided" in s.responder.log_text(), 5, what="the refusal's log line")


def test_a_request_nginx_gave_up_on_at_the_gate_timeout_is_charged_nothing(any_store):
    # The responder hangs past fastcgi_read_timeout (3 s) while the client waits: nginx answers
    # the 503 JSON (upstream status 504, no decision captured) and writes the line under the
    # request's id. When the responder runs again its worker spends under that id, too late:
    # the hold is given back, or the line voided the id first and the spend is refused. Without
    # the line the late spend's hold would stand: a 503 charged.
    s = settle_stack(any_store)

    def levels():
        return {pool: state["current"] for pool, state in s.usage().items()}
    before = levels()
    s.responder.signal(signal.SIGSTOP)
    try:
        r = s.post("/api/chat/amount/5", body=b"", timeout=10)
    finally:
        s.responder.signal(signal.SIGCONT)
    assert r.status == 503 and r.json() == {"error": "service_unavailable"}, r

    def done():
        h = holds(s)
        return h["refund"] + h["voided"] == 1 and h["opened"] == h["refund"]
    wait_until(done, 10, what="the hold given back or the id voided")
    h = holds(s)
    assert h["amount"] == h["unknown"] == h["stands"] == 0, h
    assert levels() == before
    assert sum(e["amount"] for e in fetch_events(s, TOKEN) if e["pool"] == "credits") == 0
