"""The nginx side of settlement (issue 22) through a real nginx: the shipped snippets write one
line per main request that holds charges, with the response's facts, to the settlement socket.

The receiver here is a plain Python unix datagram socket bound where nginx sends the lines
(DIR/settle.sock, the shipped charge-gate-settle.conf with that path); the responder's own
settlement socket is elsewhere (settleListen: DIR/responder-settle.sock), so that the two never
meet: these tests look at what nginx sends, not at what the responder does with it. The store is
the memory store (it records the holds and answers X-Charge-Hold); the gated server runs with
`log_subrequest on`, so that a line for the auth subrequest would show. Where a configuration
loses the line (a child location's own access_log, an intercepted app error that ends in a named
location), `charge-gate check-nginx` on the same nginx.conf says NOT SETTLED.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from harness import BIN, PROFILE, SNIPPETS, app_body, assert_out_of_charge, free_port, http_request, wait_until

CONFIG = """\
pools:
  - id: credits
    maxCharges: 1000
    rechargeIntervalHours: 100
  - id: scarce
    maxCharges: 1
    rechargeIntervalHours: 100
routes:
  - prefix: /api/metered
    pools: [{id: credits, cost: 10}]
    cost: 10
    settle: {amount: header}
  - prefix: /api/scarce
    pools: [scarce]
    settle: {}
  - prefix: /api/plain
    pools: [credits]
"""

# The metered app: 200 with an amount header, a 500, and an amount taken from the path. And a
# log format that shows a request's hold without being the settlement line.
HTTP_EXTRA = """
    log_format quiet_hold '$charge_gate_hold $charge_gate_origin $status';
    server {
        listen unix:@DIR@/metered.sock;
        access_log off;
        location / {
            add_header X-Charge-Amount 3;
            return 200 'metered';
        }
        location /api/metered/fail/ {
            return 500 'failed';
        }
        location ~ ^/api/metered/amount/(?<amount>[^/]+)$ {
            add_header X-Charge-Amount $amount;
            return 200 'amount';
        }
    }

    # A second gated server with the settlement line only in its protected location, which
    # intercepts the app's errors: an allowed request the app fails ends in
    # @charge_gate_error, which inherits this server's access_log (the template's edge log).
    server {
        listen 127.0.0.1:@PORT2@;
        server_name second;
        include @SNIPPETS@/@SERVER_SNIPPET@;

        location /api/metered/ {
            include @SNIPPETS@/charge-gate-protect.conf;
            include @DIR@/settle.conf;
            add_header X-Test-Hold $charge_gate_hold always;
            proxy_intercept_errors on;
            proxy_pass http://unix:@DIR@/metered.sock;
        }
    }
"""

METERED = "http://unix:@DIR@/metered.sock"

# The gated server's own part (the template's `location /api/` gates /api/scarce, /api/plain
# and every unrouted path, proxied to the stand-in app).
EXTRA = f"""
        log_subrequest on;
        include @DIR@/settle.conf;

        location /api/metered/ {{
            include @SNIPPETS@/charge-gate-protect.conf;
            add_header X-Test-Hold $charge_gate_hold always;
            proxy_pass {METERED};

            # A child location with its own access_log and no charge-gate-settle.conf: the
            # request is held (quiet.log shows the hold) but never settled.
            location /api/metered/quiet/ {{
                access_log @DIR@/quiet.log quiet_hold;
                proxy_pass {METERED};
            }}
        }}
        # An internal redirect after the allow: the auth location answers the second pass
        # itself, and the hold of the first pass must still reach the line.
        location /api/metered/redir/ {{
            include @SNIPPETS@/charge-gate-protect.conf;
            try_files /nonexistent /api/metered/after$uri;
        }}
        # Not protected: a client that leaves before the upstream answers writes no line.
        location /open/ {{
            fastcgi_pass charge_gate;
        }}
        # $charge_gate_origin in a subrequest's line and in its main request's (both to
        # origin.log; this auth_request is not the gate's).
        location /probe-origin/ {{
            access_log @DIR@/origin.log charge_gate_settle;
            auth_request /_charge_gate/probe;
            proxy_pass {METERED};
        }}
        location = /_charge_gate/probe {{
            internal;
            access_log @DIR@/origin.log charge_gate_settle;
            proxy_pass {METERED};
        }}
"""

LINE = re.compile(r"^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) nginx: (cg1\|.*)$")
FIELDS = ["mark", "hold", "origin", "status", "upstream_status", "upstream_bytes_sent", "body_bytes_sent",
          "upstream_response_time", "msec", "amount"]
HOLD = re.compile(r"^[0-9a-f]{32}$")


class Receiver:
    """A unix datagram socket bound where nginx sends the settlement lines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)  # nginx's workers may run as another user (the template's USER)
        self.received: list[bytes] = []

    def drain(self, quiet: float) -> None:
        self.sock.settimeout(quiet)
        try:
            while True:
                self.received.append(self.sock.recv(65536))
        except socket.timeout:
            pass

    def lines(self, expected: int, timeout: float = 3.0) -> list[dict]:
        """Every line received so far, once `expected` arrived (and nothing more within a short
        wait), each split into its fields."""
        deadline = time.monotonic() + timeout
        while len(self.received) < expected and time.monotonic() < deadline:
            self.drain(0.05)
        self.drain(0.3)
        return [parse(d) for d in self.received]

    def close(self) -> None:
        self.sock.close()


def parse(datagram: bytes) -> dict:
    m = LINE.match(datagram.decode())
    assert m, datagram
    values = m.group(3).split("|", len(FIELDS) - 1)
    assert len(values) == len(FIELDS), datagram
    return dict(zip(FIELDS, values))


def file_lines(path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [dict(zip(FIELDS, line.split("|", len(FIELDS) - 1))) for line in text.splitlines() if line]


@pytest.fixture
def settle(make_stack):
    """A started stack (memory store) whose nginx sends its settlement lines to a Python
    receiver: (stack, receiver)."""
    port2 = free_port()
    stack = make_stack(CONFIG, redis=False, extra=EXTRA, http_extra=HTTP_EXTRA.replace("@PORT2@", str(port2)), start=False)
    stack.port2 = port2
    stack.settings = f"settleListen: {stack.dir}/responder-settle.sock\n"
    shipped = (SNIPPETS / "charge-gate-settle.conf").read_text()
    assert "syslog:server=unix:/run/charge-gate/settle.sock,nohostname charge_gate_settle if=$charge_gate_hold;" in shipped
    (stack.dir / "settle.conf").write_text(shipped.replace("/run/charge-gate/settle.sock", str(stack.dir / "settle.sock")))
    receiver = Receiver(stack.dir / "settle.sock")
    try:
        stack.start()
        yield stack, receiver
    finally:
        receiver.close()


def assert_facts(line: dict, hold: str, status: str, amount: str, body: bytes):
    assert line["mark"] == "cg1" and line["origin"] == "main", line
    assert HOLD.match(line["hold"]) and line["hold"] == hold, line
    assert line["status"] == status and line["upstream_status"] == status, line
    assert int(line["upstream_bytes_sent"]) > 0, line  # the app got the request
    assert int(line["body_bytes_sent"]) == len(body), line
    assert re.fullmatch(r"\d+\.\d{3}", line["upstream_response_time"]), line
    assert abs(float(line["msec"]) - time.time()) < 30, line
    assert line["amount"] == amount, line


def test_one_line_per_main_request_with_the_responses_facts_none_for_the_auth_subrequest(settle):
    stack, receiver = settle
    holds = []
    for _ in range(3):
        r = stack.get("/api/metered/a")
        assert r.status == 200 and r.body == b"metered", r
        holds.append(r.header("X-Test-Hold"))
    failed = stack.get("/api/metered/fail/x")
    assert failed.status == 500, failed
    amounts = {}
    for amount in ["7", "x|1", "-5"]:
        r = stack.get(f"/api/metered/amount/{amount}")
        assert r.status == 200 and r.body == b"amount", r
        amounts[r.header("X-Test-Hold")] = amount

    lines = receiver.lines(7)
    assert len(lines) == 7, lines  # one per request: none for the auth subrequests
    assert len({line["hold"] for line in lines}) == 7, lines
    for hold, line in zip(holds, lines[:3]):
        assert_facts(line, hold, "200", "3", b"metered")
    assert_facts(lines[3], failed.header("X-Test-Hold"), "500", "-", b"failed")
    for line in lines[4:]:
        # The app's amount as it sent it, last: a `|` in it moves no other field.
        assert_facts(line, line["hold"], "200", amounts[line["hold"]], b"amount")


def test_no_line_for_a_denied_an_unrouted_or_an_unsettled_request(settle):
    stack, receiver = settle
    assert stack.get("/api/scarce").status == 200
    assert_out_of_charge(stack.get("/api/scarce"), "scarce")
    assert stack.get("/api/plain").body == app_body("GET", "/api/plain")  # charged, not settled
    assert stack.get("/api/unrouted").body == app_body("GET", "/api/unrouted")
    assert stack.get("/elsewhere").status == 404
    lines = receiver.lines(1)
    assert len(lines) == 1, lines
    line = lines[0]
    assert HOLD.match(line["hold"]) and line["origin"] == "main", line
    assert (line["status"], line["upstream_status"], line["amount"]) == ("200", "200", "-"), line
    assert int(line["body_bytes_sent"]) == len(app_body("GET", "/api/scarce")), line


def test_an_internal_redirect_after_the_allow_keeps_the_hold(settle):
    # try_files sends the allowed request to another protected location: its second auth
    # subrequest is answered by nginx (the allow replayed, nothing charged, no X-Charge-Hold),
    # and the request's line still carries the first pass's hold.
    stack, receiver = settle
    r = stack.get("/api/metered/redir/x")
    assert r.status == 200 and r.body == b"metered", r
    assert HOLD.match(r.header("X-Test-Hold") or ""), r
    lines = receiver.lines(1)
    assert len(lines) == 1, lines
    assert_facts(lines[0], r.header("X-Test-Hold"), "200", "3", b"metered")


def check_config(stack) -> str:
    """The stack's config, with settleListen where nginx sends the lines (as in production)."""
    path = stack.dir / "check.yaml"
    path.write_text(stack.config_text(settings=f"settleListen: {stack.dir}/settle.sock\n"))
    return str(path)


def test_a_child_location_with_its_own_access_log_loses_the_line_and_check_nginx_says_so(settle):
    stack, receiver = settle
    r = stack.get("/api/metered/quiet/x")
    assert r.status == 200 and r.body == b"metered", r
    hold = r.header("X-Test-Hold")
    assert HOLD.match(hold or ""), r
    assert receiver.lines(0) == []
    # Held all the same: the child's own access_log shows the line it would have sent.
    quiet = wait_until(lambda: (stack.dir / "quiet.log").exists() and (stack.dir / "quiet.log").read_text(), 2,
                       what="quiet.log")
    assert quiet == f"{hold} main 200\n"

    result = subprocess.run([str(BIN), "check-nginx", "--config", check_config(stack), "--nginx-conf", str(stack.nginx.conf),
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    lines = {line["route"]: line for line in report["routes"] if line["server"] == f"127.0.0.1:{stack.port} localhost"}
    metered = lines["/api/metered"]
    assert metered["verdict"] == "not_settled", metered
    finding = metered["finding"]
    assert finding["kind"] == "settle_line_missing", finding
    assert finding["uri"].startswith("/api/metered/quiet/"), finding
    conf = stack.nginx.conf.read_text().split("\n")
    assert conf[finding["line"] - 1].strip() == f"access_log {stack.dir}/quiet.log quiet_hold;", finding
    assert finding["file"] == str(stack.nginx.conf), finding
    # The routes written where the server's line is in effect are fine.
    assert lines["/api/scarce"]["verdict"] == "gated", lines["/api/scarce"]
    assert lines["/api/plain"]["verdict"] == "gated", lines["/api/plain"]

    # Against the responder's own socket (the stack's config), nginx's lines go elsewhere: every
    # settled route says so.
    result = subprocess.run([str(BIN), "check-nginx", "--config", str(stack.config), "--nginx-conf", str(stack.nginx.conf),
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = {line["route"]: line for line in json.loads(result.stdout)["routes"] if line["server"].endswith(" localhost")}
    assert lines["/api/scarce"]["finding"]["kind"] == "settle_line_socket", lines["/api/scarce"]
    assert lines["/api/plain"]["verdict"] == "gated", lines["/api/plain"]


def test_an_intercepted_app_error_is_logged_where_it_ends_and_check_nginx_says_so(settle):
    # The second server writes the line in its protected location only: a response that stays
    # there is settled, an app's 500 that error_page 500 = @charge_gate_error takes is logged by
    # that named location (the server's access_log), without the line.
    stack, receiver = settle
    ok = http_request(stack.port2, "GET", "/api/metered/a")
    assert ok.status == 200 and ok.body == b"metered", ok
    failed = http_request(stack.port2, "GET", "/api/metered/fail/x")
    assert failed.status == 500 and failed.body != b"failed", failed  # nginx's own 500, not the app's
    lines = receiver.lines(1)
    assert [line["hold"] for line in lines] == [ok.header("X-Test-Hold")], lines
    # Allowed (and held), then logged by @charge_gate_error with the server's edge log only:
    # the refund the app's failure should have brought is lost.
    edge = wait_until(lambda: [e for e in stack.edge_log() if e["uri"] == "/api/metered/fail/x"], 2, what="edge log")
    assert [(e["status"], e["gate"]) for e in edge] == [(500, "204")], edge

    result = subprocess.run([str(BIN), "check-nginx", "--config", check_config(stack), "--nginx-conf", str(stack.nginx.conf),
                             "--format", "json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    second = {line["route"]: line for line in json.loads(result.stdout)["routes"]
              if line["server"] == f"127.0.0.1:{stack.port2} second"}
    finding = second["/api/metered"]["finding"]
    assert finding["kind"] == "settle_line_missing", finding
    assert "where error_page 403 = @charge_gate_denied" in finding["message"], finding


def test_the_origin_of_a_subrequests_line_is_auth_and_of_its_main_requests_main(settle):
    # Subrequests share the main request's variables: without `volatile` on the map, the main
    # request's line would say `auth` too (seen with nginx 1.22.1).
    stack, _ = settle
    r = stack.get("/probe-origin/x")
    assert r.status == 200 and r.body == b"metered", r
    lines = wait_until(lambda: (lambda ls: ls if len(ls) >= 2 else None)(file_lines(stack.dir / "origin.log")), 2,
                       what="origin.log")
    assert [(line["origin"], line["status"]) for line in lines] == [("auth", "200"), ("main", "200")], lines
    assert lines[0]["hold"] == lines[1]["hold"] == "", lines  # no gate here, so no hold (an empty map value)


def test_nginx_never_waits_for_a_missing_receiver(settle):
    stack, receiver = settle
    receiver.close()
    os.unlink(receiver.path)
    start = time.monotonic()
    for _ in range(5):
        r = stack.get("/api/metered/a")
        assert r.status == 200 and r.body == b"metered", r
    assert time.monotonic() - start < 5
    # Lost, and said so only in nginx's error log.
    wait_until(lambda: "connect() failed" in stack.error_log(), 2, what="nginx's alert")


def leave_early(port: int, path: str, wait: float = 0.5) -> None:
    """Sends a request and closes the connection after `wait` seconds, unanswered."""
    c = socket.create_connection(("127.0.0.1", port))
    try:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        time.sleep(wait)
    finally:
        c.close()


# The keepalive profile's fastcgi_store in the auth location turns off nginx's watch for a client
# that leaves during the auth subrequest (nginx 1.22, ngx_http_upstream_init_request sets the
# broken-connection handlers only `if (!u->store && ...)`): there the client's leaving is not
# seen while the gate hangs; nginx gives up on the gate at fastcgi_read_timeout (3 s: upstream
# status 504, the 503 JSON to nobody) and the line under the request's id comes then, as for
# any auth subrequest nginx gave up on (charge-gate-http.conf's $charge_gate_hold).
def test_a_client_that_leaves_before_the_gate_answers_writes_a_line_under_its_request_id(settle):
    # The responder is stopped: the auth subrequest waits, the client leaves, nginx logs a 499
    # (or 000) with no decision captured. The line names the request's $request_id (under which the
    # responder will hold when it runs the spend after all) and says nothing was delivered. A
    # client that leaves an unprotected location (same server, same access_log) writes none.
    stack, receiver = settle
    stack.responder.signal(signal.SIGSTOP)
    try:
        leave_early(stack.port, "/api/metered/a")
        leave_early(stack.port, "/open/x")
        lines = receiver.lines(1, timeout=3.0 if PROFILE != "keepalive" else 6.0)
    finally:
        stack.responder.signal(signal.SIGCONT)
    assert len(lines) == 1, lines
    line = lines[0]
    assert HOLD.match(line["hold"]) and line["origin"] == "main", line
    assert (line["upstream_status"], line["upstream_bytes_sent"]) == ("-", "-"), line
    if PROFILE != "keepalive":
        # 499, or 000 when nginx notices the client gone only as the auth answer comes.
        assert line["status"] in ("499", "000") and line["body_bytes_sent"] == "0", line
    else:
        # Seen at the gate's timeout: the 503 (or the 499 once nginx finds the client gone).
        assert line["status"] in ("503", "499", "000"), line
    # Whether that id is the one the responder held under is test_settle.py's: the hold given
    # back, or the late spend refused.
