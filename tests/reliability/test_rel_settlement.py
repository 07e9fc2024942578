"""(g) Settlement billed exactly: 3 responders behind 2 nginx on one Redis, a settled route
(`settle: {amount: header}`, the default refund [5xx]) whose stand-in app answers a random mix:
2xx with a random X-Charge-Amount (some above the hold: overage), 2xx without one (the hold
stands), 500 (refunded), 502 from an upstream that is down (refunded: nothing reached it), and
clients that leave before the app answers (refunded: 499 without an upstream status). Each nginx
sends its settlement lines to another responder. Per subject, what the pool was charged equals
exactly the reported amounts of the 2xx answers + the hold of every 2xx without an amount + the
hold of every line nginx could not send (counted from its error log at warn, and seen as the
holds still open), and the usage events (spend + settle) sum to the same. A settlement lost,
applied twice or applied to the wrong subject fails it."""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import UnixStreamServer

from reliability import append_figure, config_yaml, scale
from harness import wait_until

REQUESTS = scale(5000, 20000)
SUBJECTS = 20
THREADS = 24
HOLD = 1000
BALANCE = 10**12     # credits per subject: never runs out here
SLOW_S = 1.0         # the app's answer to a request the client leaves after LEAVE_S
LEAVE_S = 0.2
# What systemd sets at boot (docs/settlement.md, Transport); raised here while the responders'
# sockets are created when /proc/sys is writable (the test holds either way: a line nginx could
# not send is counted from its error log and its hold stays charged; CHARGE_GATE_REL_DGRAM_QLEN=10
# shows it).
QLEN_FILE = Path("/proc/sys/net/unix/max_dgram_qlen")
QLEN = int(os.environ.get("CHARGE_GATE_REL_DGRAM_QLEN", "512"))

# The settled locations: the app behind them (a unix socket), one that is down, and a settled
# access_log line per nginx to its own responder (the location has its own access_log, which
# replaces inherited ones: so the line is included here, as the snippet's comments say).
EXTRA = """\
        location /api/rel/settled/ {
            set $charge_gate_subject $http_x_subject;
            include @SNIPPETS@/charge-gate-protect.conf;
            auth_request_set $rel_responder $upstream_addr;
            proxy_set_header X-Charge-Hold $charge_gate_hold;
            proxy_read_timeout 10s;
            access_log syslog:server=unix:@SETTLE@,nohostname charge_gate_settle if=$charge_gate_hold;
            proxy_pass http://unix:@DIR@/settle-app.sock;
        }
        location /api/rel/settled/down/ {
            set $charge_gate_subject $http_x_subject;
            include @SNIPPETS@/charge-gate-protect.conf;
            auth_request_set $rel_responder $upstream_addr;
            access_log syslog:server=unix:@SETTLE@,nohostname charge_gate_settle if=$charge_gate_hold;
            proxy_pass http://unix:@DIR@/nobody-listens.sock;
        }
"""


class UnixHTTPServer(ThreadingHTTPServer, UnixStreamServer):
    daemon_threads = True
    request_queue_size = 512  # socketserver's 5 would refuse nginx's connections under load: 502s

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


class App:
    """The stand-in app: `/api/rel/settled/ok/<rid>?amount=N` answers 200 with X-Charge-Amount
    N (none when N is `none`), `/fail/` 500, `/slow/` 200 after SLOW_S. It records the hold
    each request carried, by rid."""

    def __init__(self, sock: Path):
        self.holds: dict[int, str] = {}
        lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                path, _, query = self.path.partition("?")
                parts = path.split("/")
                kind, rid = parts[4], int(parts[5])
                with lock:
                    app.holds[rid] = self.headers.get("X-Charge-Hold", "")
                if kind == "slow":
                    time.sleep(SLOW_S)
                status = 500 if kind == "fail" else 200
                self.send_response(status)
                amount = dict(p.split("=") for p in query.split("&") if "=" in p).get("amount")
                if amount and amount != "none":
                    self.send_header("X-Charge-Amount", amount)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        if sock.exists():
            sock.unlink()
        self.server = UnixHTTPServer(str(sock), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def open_holds(c) -> dict[str, dict]:
    """The holds still open in Redis (`charge:#hold:ID`, docs/redis.md), by id."""
    out: dict[str, dict] = {}
    cursor = "0"
    while True:
        cursor, keys = c.rc.command("SCAN", cursor, "MATCH", "charge:#hold:*", "COUNT", "1000")
        for key in keys:
            raw = c.rc.get(key)
            if raw is not None:
                record = json.loads(raw)
                if record["status"] == "open":
                    out[record["id"]] = record
        if cursor == "0":
            return out


def send(port: int, path: str, subject: str, leave: bool) -> int:
    """The status nginx answered, or 0 when the client left first."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        if leave:
            conn.connect()
            conn.sock.settimeout(LEAVE_S)
            conn.request("GET", path, headers={"X-Subject": subject})
            try:
                conn.getresponse().read()
            except (socket.timeout, TimeoutError):
                pass
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return 0
        conn.request("GET", path, headers={"X-Subject": subject})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_settlement_bills_exactly_across_three_responders_and_two_nginx(make_cluster):
    pools = f"- {{id: tokens, maxCharges: {BALANCE}, recharge: none, per: subject}}"
    routes = f"- {{prefix: /api/rel/settled, cost: {HOLD}, pools: [tokens], settle: {{amount: header}}}}"
    c = make_cluster("", responders=3, nginxes=2, start=False)
    c.config.write_text(config_yaml(c.redis.sock, pools, routes, "workers: 4\nredisTimeoutMs: 1000"))
    # nginx i sends its lines to responder i (responder 2 only answers auth subrequests).
    for i, n in enumerate(c.nginxes):
        n.extra = EXTRA.replace("@SETTLE@", str(c.responders[i].sock.parent / "settle.sock"))
    app = App(c.nginxes[0].dir.parent / "settle-app.sock")
    for n in c.nginxes:
        # one app for both nginx: each nginx's @DIR@/settle-app.sock links to it
        link = n.dir / "settle-app.sock"
        link.symlink_to(c.nginxes[0].dir.parent / "settle-app.sock")
    qlen_before = QLEN_FILE.read_text().strip()
    try:
        QLEN_FILE.write_text(str(QLEN))
    except OSError:
        pass
    try:
        c.start()
    finally:
        QLEN_FILE.exists() and os.access(QLEN_FILE, os.W_OK) and QLEN_FILE.write_text(qlen_before)
    qlen = qlen_before if not os.access(QLEN_FILE, os.W_OK) else str(QLEN)
    try:
        rng = random.Random(20261206)
        specs = []
        for i in range(REQUESTS):
            subject = f"s{rng.randrange(SUBJECTS)}"
            roll = rng.random()
            if roll < 0.55:
                kind, amount = "ok", str(rng.randrange(0, 3 * HOLD))
            elif roll < 0.62:
                kind, amount = "ok", "none"
            elif roll < 0.77:
                kind, amount = "fail", "none"
            elif roll < 0.90:
                kind, amount = "down", "none"
            else:
                kind, amount = "slow", str(rng.randrange(0, 3 * HOLD))
            specs.append((i, i % 2, subject, kind, amount))

        results: dict[int, int] = {}
        lock = threading.Lock()

        def run(chunk):
            for rid, node, subject, kind, amount in chunk:
                path = f"/api/rel/settled/{kind}/{rid}?amount={amount}"
                status = send(c.nginxes[node].port, path, subject, leave=kind == "slow")
                with lock:
                    results[rid] = status

        threads = [threading.Thread(target=run, args=(specs[k::THREADS],), daemon=True) for k in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
            assert not t.is_alive(), "a load thread hung"
        seconds = time.monotonic() - t0

        # Every answer is what the mix asked for: nothing denied (the balance never runs out).
        expected_status = {"ok": 200, "fail": 500, "down": 502, "slow": 0}
        wrong = [(s, results[s[0]]) for s in specs if results[s[0]] != expected_status[s[3]]]
        assert not wrong, f"{len(wrong)} unexpected answers: {wrong[:5]}"

        # Every line nginx sent is settled (the receivers apply them in the background), or
        # counted in its error log as not sent.
        def lost_lines() -> int:
            return sum(n.error_log().count("send() to syslog failed") for n in c.nginxes)

        # A hold is open until its line is applied (a settled one stays, marked, until its key
        # expires). Wait until the open ones are as many as the lines nginx could not send.
        wait_until(lambda: len(open_holds(c)) == lost_lines(), 60, what="every line sent to be settled")
        lost_records = open_holds(c)
        lost = set(lost_records)

        # Per subject: the charge the client's answers and the app's amounts call for.
        by_rid_hold = dict(app.holds)
        expected: dict[str, int] = {f"s{k}": 0 for k in range(SUBJECTS)}
        for rid, node, subject, kind, amount in specs:
            hold = by_rid_hold.get(rid)
            if kind == "down":
                continue  # never reached the app: refunded (or its line lost: counted below)
            assert hold, f"request {rid} ({kind}) reached the app without a hold"
            if hold in lost:
                continue
            if kind == "ok":
                expected[subject] += HOLD if amount == "none" else int(amount)
            # fail: refunded; slow: the client left before the answer: refunded
        # the lines nginx could not send leave their holds charged
        for h, record in lost_records.items():
            expected[record["context"]["subject"]] += HOLD

        charged = {}
        for k in range(SUBJECTS):
            state = c.state(f"tokens:s{k}")
            charged[f"s{k}"] = 0 if state is None else BALANCE - int(state["current"])
        assert charged == expected, {s: (charged[s], expected[s]) for s in expected if charged[s] != expected[s]}

        # The events sum to the same, per subject (spend events + signed settle events).
        sums: dict[str, int] = {f"s{k}": 0 for k in range(SUBJECTS)}
        kinds: dict[str, int] = {}
        for e in c.events():
            if e.get("pool") != "tokens":
                continue
            sums[e["subject"]] += int(e["amount"])
            kinds[e.get("kind", "spend")] = kinds.get(e.get("kind", "spend"), 0) + 1
        assert sums == expected, {s: (sums[s], expected[s]) for s in expected if sums[s] != expected[s]}

        append_figure("g_settlement", "runs", {
            "requests": REQUESTS, "seconds": round(seconds, 1),
            "answers": {k: sum(1 for s in specs if s[3] == k) for k in expected_status},
            "events": kinds, "lines_not_sent": len(lost), "max_dgram_qlen": qlen,
            "charged_total": sum(charged.values()),
        })
    finally:
        app.stop()
