"""`charge-gate events` (docs/http.md, events): the export of the usage event log from the stack's Redis,
as JSON Lines and CSV, against what GET /api/usage/events answers; its filters; and a large
log exported page by page in bounded memory.

CHARGE_GATE_LONG=1 makes the large log 1,000,000 events (default 200,000).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import os
import re
import subprocess
import time
from urllib.parse import urlencode

import pytest

from harness import BIN, EVENT_CSV_KEYS, assert_json, fetch_events

TOKEN = "export-T0ken"
ADMIN = {"Authorization": "Bearer " + TOKEN}
SETTINGS = f'adminToken: "{TOKEN}"\neventsMaxLen: 5000000\n'
CONFIG = """\
pools:
  - id: calls
    maxCharges: 100
    rechargeIntervalHours: 24
    per: subject
  - id: credits
    maxCharges: 50
    recharge: none
    per: subject
  - id: meter
    maxCharges: unlimited
routes:
  - prefix: /api/calls
    pools: [calls]
  - prefix: /api/paid
    pools: [calls, {id: credits, cost: 2}]
    idempotent: true
  - prefix: /api/meter
    pools: [meter]
"""
EXTRA = "        set $charge_gate_subject $http_x_api_key;\n"
HOSTILE = "<o'b, \"r\">"

LONG = os.environ.get("CHARGE_GATE_LONG") == "1"
LARGE_N = 1_000_000 if LONG else 200_000
# Bounds for the exporter's peak RSS (debug builds included): it must not grow with the log.
RSS_LIMIT_KB = 96 * 1024
RSS_GROWTH_KB = 24 * 1024


def run_export(*args, config, check=True, timeout=120):
    r = subprocess.run([str(BIN), "events", "--config", str(config), *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode(errors="replace"))
        assert r.stderr == b"", r.stderr
    return r


def key_form(subject: str) -> str:
    """SafeToken.key(for:): the subject itself when safe and not starting with h:, else hashed."""
    if subject == "":
        return "_anonymous"
    if re.fullmatch(r"[A-Za-z0-9._:@-]{1,64}", subject) and not subject.startswith("h:"):
        return subject
    return "h:" + hashlib.sha256(subject.encode()).hexdigest()[:32]


def api_body(stack, **query) -> bytes:
    """The raw body of one GET /api/usage/events page holding everything (limit 1000)."""
    q = {k: v for k, v in query.items() if v is not None}
    q["limit"] = 1000
    r = stack.get("/api/usage/events?" + urlencode(q), headers=ADMIN)
    assert r.status == 200, r
    assert_json(r)
    assert r.json()["next"] is None, "more than one page: raise the limit"
    return r.body


def jsonl_as_api_body(out: bytes) -> bytes:
    lines = out.decode().split("\n")
    assert lines[-1] == "", out[-200:]
    return b'{"events":[' + ",".join(lines[:-1]).encode() + b'],"next":null}'


def csv_field(value) -> str:
    text = str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def expected_csv(evs) -> str:
    out = ",".join(EVENT_CSV_KEYS) + "\n"
    for e in evs:
        out += ",".join(csv_field(e.get(k, "")) for k in EVENT_CSV_KEYS) + "\n"
    return out


def iso(ms: int, fraction=True) -> str:
    d = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    if fraction:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def logged(make_stack):
    """A stack with a small, varied event log (uris with a comma, a quote, a newline, non-ASCII;
    a hostile subject; idempotency keys; multi-pool routes; an unlimited pool)."""
    s = make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)
    reqs = [
        ("GET", "/api/calls/a,b%22c", {"X-Api-Key": "alice"}),
        ("POST", "/api/paid/inv", {"X-Api-Key": "bob", "Idempotency-Key": "inv,1 \"x\""}),
        ("POST", "/api/paid/inv", {"X-Api-Key": "bob", "Idempotency-Key": "inv,1 \"x\""}),  # repeat
        ("GET", "/api/meter/%C3%A9t%C3%A9", {"X-Api-Key": HOSTILE.encode()}),
        ("GET", "/api/calls/line%0Abreak", {"X-Api-Key": "alice"}),
        ("PUT", "/api/calls/sp%20ace", {}),
        ("POST", "/api/paid/2", {"X-Api-Key": "alice", "Idempotency-Key": "k-2"}),
        ("GET", "/api/meter/x", {}),
        ("DELETE", "/api/calls/cr%0Dx", {"X-Api-Key": HOSTILE.encode()}),
        ("GET", "/api/meter/y", {"X-Api-Key": "bob"}),
    ]
    for n, (method, uri, headers) in enumerate(reqs):
        r = s.request(method, uri, headers=headers)
        assert r.status == 200, (uri, r)
        if n in (2, 5, 7):
            time.sleep(0.01)   # distinct times for the since/until windows
    return s


def test_jsonl_and_csv_equal_the_api(logged):
    s = logged
    evs = fetch_events(s, TOKEN)
    assert len(evs) == 11
    assert [e["uri"] for e in evs][:2] == ['/api/calls/a,b"c', "/api/paid/inv"]
    assert s.events_len() == 11

    out = run_export(config=s.config).stdout
    assert jsonl_as_api_body(out) == api_body(s)
    assert out.count(b"\n") == 11  # one line each, even for the uris with a newline or CR
    # the JSONL format is the default; naming it changes nothing
    assert run_export("--format", "jsonl", config=s.config).stdout == out

    text = run_export("--format", "csv", config=s.config).stdout.decode()
    assert text == expected_csv(evs)
    lines = text.split("\n")
    assert lines[0] == "id,time,pool,subject,amount,route,method,uri,idempotencyKey,plan,kind,hold,status"
    first = evs[0]
    assert lines[1] == f'{first["id"]},{first["time"]},calls,alice,1,/api/calls,GET,"/api/calls/a,b""c",,,spend,,'
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == EVENT_CSV_KEYS
    assert rows[1:] == [[str(e.get(k, "")) for k in EVENT_CSV_KEYS] for e in evs]
    # the event of the idempotent request carries the key's h: form (it holds a comma and quotes)
    paid = [r for r in rows[1:] if r[5] == "/api/paid"]
    assert [(r[2], r[3], r[4], r[8][:2]) for r in paid] == [
        ("calls", "bob", "1", "h:"), ("credits", "bob", "2", "h:"), ("calls", "alice", "1", "k-"),
        ("credits", "alice", "2", "k-")]


def test_export_filters(logged):
    s = logged
    evs = fetch_events(s, TOKEN)
    t1 = evs[3]["time"]   # after the first pause
    t2 = evs[6]["time"]
    hostile = key_form(HOSTILE)   # evs[3]'s on one node (a cluster orders events of one ms by slot)
    assert hostile.startswith("h:") and len(hostile) == 34
    cases = [
        (["--pool", "credits"], {"pool": "credits"}),
        (["--pool", "meter"], {"pool": "meter"}),
        (["--subject", "alice"], {"subject": "alice"}),
        (["--subject", HOSTILE], {"subject": HOSTILE}),
        (["--subject", hostile, "--key-form"], {"subjectKey": hostile}),
        # the key form named as a subject is another subject (one nginx may pass as it is)
        (["--subject", hostile], {"subject": hostile}),
        (["--since", str(t1)], {"since": t1}),
        (["--until", str(t2)], {"until": t2}),
        (["--since", str(t1), "--until", str(t2)], {"since": t1, "until": t2}),
        (["--since", iso(t1)], {"since": t1}),
        (["--until", iso(t2)], {"until": t2}),
        (["--until", iso(t2, fraction=False)], {"until": t2 - t2 % 1000}),
        (["--since", str(t1), "--pool", "calls", "--subject", "alice"], {"since": t1, "pool": "calls", "subject": "alice"}),
        (["--pool", "nope"], {"pool": "nope"}),
        (["--since", str(evs[-1]["time"] + 1)], {"since": evs[-1]["time"] + 1}),
    ]
    for args, query in cases:
        out = run_export(*args, config=s.config).stdout
        assert jsonl_as_api_body(out) == api_body(s, **query), args
        # and what the filter means, independently of the API
        want = [e for e in evs
                if ("pool" not in query or e["pool"] == query["pool"])
                and ("subject" not in query or e["subject"] == key_form(query["subject"]))
                and ("subjectKey" not in query or e["subject"] == query["subjectKey"])
                and ("since" not in query or e["time"] >= query["since"])
                and ("until" not in query or e["time"] <= query["until"])]
        assert [json.loads(x)["id"] for x in out.decode().splitlines()] == [e["id"] for e in want], args
        csv_out = run_export(*args, "--format", "csv", config=s.config).stdout.decode()
        assert csv_out == expected_csv(want), args
    # the anonymous subject by its name
    out = run_export("--subject", "_anonymous", config=s.config).stdout
    assert [json.loads(x)["uri"] for x in out.decode().splitlines()] == ["/api/calls/sp ace", "/api/meter/x"]


def test_export_redis_override_and_errors(logged, tmp_dir):
    s = logged
    text = s.config.read_text()
    real = s.redis.url
    assert f"redis: {real}\n" in text
    elsewhere = tmp_dir / "elsewhere.yaml"
    elsewhere.write_text(text.replace(f"redis: {real}\n", f"redis: unix://{tmp_dir}/none.sock\n"))
    out = run_export("--redis", real, config=elsewhere).stdout
    assert jsonl_as_api_body(out) == api_body(s)
    r = run_export(config=elsewhere, check=False)
    assert r.returncode == 1 and r.stdout == b"", r
    assert r.stderr.decode().startswith("events: "), r.stderr

    off = tmp_dir / "off.yaml"
    off.write_text(text.replace("eventsMaxLen: 5000000\n", "eventsMaxLen: 0\n"))
    r = run_export(config=off, check=False)
    assert (r.returncode, r.stdout) == (1, b""), r
    assert r.stderr.decode() == "events: eventsMaxLen is 0 in the config: no event log is kept\n", r.stderr

    memory = tmp_dir / "memory.yaml"
    memory.write_text(text.replace(f"redis: {real}\n", ""))
    r = run_export(config=memory, check=False)
    assert (r.returncode, r.stdout) == (1, b""), r
    assert r.stderr.decode() == ("events: the config names no redis; the memory store keeps events inside the "
                                 "responder (GET /api/usage/events)\n"), r.stderr

    for args, word in [(["--format", "xml"], "--format"), (["--since", "yesterday"], "--since"),
                       (["--until", "1e3"], "--until"), (["--redis", "http://x"], "--redis")]:
        r = run_export(*args, config=s.config, check=False)
        assert r.returncode != 0 and r.stdout == b"", (args, r)
        assert word in r.stderr.decode(), (args, r.stderr)


# --------------------------------------------------------------------------------------------
# a large log

# Appends events [from, to) with exactly the script's XADD field layout (ChargeScript.swift:
# pool, subject, amount, route, method, uri, idem, time), 1000 per millisecond, explicit ids.
FILL = """
local base = tonumber(ARGV[1])
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do
  local ms = string.format('%d', base + math.floor(i / 1000))
  redis.call('XADD', KEYS[1], ms .. '-' .. string.format('%d', i % 1000),
    'pool', 'meter', 'subject', 'u' .. string.format('%d', i % 7), 'amount', '1',
    'route', '/api/meter', 'method', 'GET', 'uri', '/api/meter/' .. string.format('%d', i),
    'idem', '', 'time', ms)
end
return redis.call('XLEN', KEYS[1])
"""


def export_streaming(config, *args, check_line=None):
    """Runs the exporter with stdout read line by line (nothing kept); returns
    (lines, seconds, peak RSS in KB of that very process, from wait4)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([str(BIN), "events", "--config", str(config), *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    try:
        for line in proc.stdout:
            if check_line is not None:
                check_line(n, line)
            n += 1
    except BaseException:
        proc.kill()
        os.wait4(proc.pid, 0)
        raise
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, (proc.returncode, err)
    assert err == b"", err
    return n, seconds, usage.ru_maxrss


def test_large_log_exports_in_order_in_bounded_memory(make_stack):
    s = make_stack(CONFIG, settings=SETTINGS, extra="")
    base = 1_700_000_000_000
    # on a cluster, one slot's stream (the export merges every slot's)
    stream = s.keys.events_in(0) if s.cluster else s.keys.events
    t0 = time.monotonic()
    for a in range(0, LARGE_N, 50_000):
        s.redis.client.command("EVAL", FILL, 1, stream, base, a, min(LARGE_N, a + 50_000))
    fill_s = time.monotonic() - t0
    assert s.events_len() == LARGE_N

    # the filled entries read back through the API like live ones
    first = fetch_events(s, TOKEN, limit=3, until=base)[:3]
    assert first[0] == {"id": f"{base}-0", "time": base, "pool": "meter", "subject": "u0", "amount": 1,
                        "route": "/api/meter", "method": "GET", "uri": "/api/meter/0", "idempotencyKey": "", "plan": "",
                        "kind": "spend"}
    assert len(fetch_events(s, TOKEN, limit=1000, until=base)) == 1000

    # a small export as the baseline
    n_small, _, rss_small = export_streaming(s.config, "--until", str(base))
    assert n_small == 1000

    def check(k, line):
        if k % 997 == 0 or k == LARGE_N - 1:   # a sample: full decode
            e = json.loads(line)
            ms = base + k // 1000
            assert e == {"id": f"{ms}-{k % 1000}", "time": ms, "pool": "meter", "subject": f"u{k % 7}",
                         "amount": 1, "route": "/api/meter", "method": "GET", "uri": f"/api/meter/{k}",
                         "idempotencyKey": "", "plan": "", "kind": "spend"}, (k, line)
        else:                                   # every line: its place in the order
            assert line.endswith(b',"uri":"/api/meter/%d","idempotencyKey":"","plan":"","kind":"spend"}\n' % k), (k, line)

    n, seconds, rss = export_streaming(s.config, check_line=check)
    print(f"\nexport of {LARGE_N} events: fill {fill_s:.1f}s, export {seconds:.1f}s, "
          f"peak RSS {rss / 1024:.1f} MB (baseline export of 1000: {rss_small / 1024:.1f} MB)")
    assert n == LARGE_N
    assert rss < RSS_LIMIT_KB, (rss, rss_small)
    assert rss - rss_small < RSS_GROWTH_KB, (rss, rss_small)
