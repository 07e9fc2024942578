"""What operators scrape and read: /metrics through nginx (issue 6)."""

from __future__ import annotations

import re
import signal
import time

from harness import assert_out_of_charge, scrape, single_redis_only


def test_metrics_count_decisions_redis_and_reloads(make_stack):
    # The responder's own counts: nginx's deny cache (which answers without asking it) is off.
    stack = make_stack(settings="workers: 2\nedgeDenySeconds: 0\n")
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    for _ in range(30):
        assert_out_of_charge(stack.post("/api/generate"), "generate-image")
    assert stack.get("/api/combo").status == 200

    m = scrape(stack)
    assert m['charge_gate_decisions_total{pool="generate-image",outcome="allowed"}'] == 5
    assert m['charge_gate_decisions_total{pool="generate-image",outcome="out_of_charge"}'] == 30
    # At most one store-decided denial per worker: the rest came from memory.
    assert m['charge_gate_denied_from_memory_total{pool="generate-image"}'] >= 28
    assert m['charge_gate_decisions_total{pool="combo-a",outcome="allowed"}'] == 1
    assert m['charge_gate_decisions_total{pool="combo-b",outcome="allowed"}'] == 1
    # Every store call was timed: 5 + 1 spends and at least one denial.
    assert m["charge_gate_redis_roundtrip_seconds_count"] >= 7
    assert m["charge_gate_redis_connects_total"] >= 1
    assert m["charge_gate_redis_errors_total{kind=\"timeout\"}"] == 0

    stack.responder.signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline:
        m = scrape(stack)
        if m.get('charge_gate_config_reloads_total{result="ok"}', 0) >= 1:
            break
        time.sleep(0.05)
    assert m['charge_gate_config_reloads_total{result="ok"}'] == 1


@single_redis_only("killed, then started again")
def test_metrics_count_service_unavailable_and_reconnects(make_stack):
    stack = make_stack(settings="workers: 1\n")
    assert stack.post("/api/generate").status == 200
    stack.redis.kill()
    r = stack.post("/api/generate")
    assert r.status == 503, r
    stack.redis.start()
    deadline = time.time() + 5
    while stack.post("/api/generate").status != 200 and time.time() < deadline:
        time.sleep(0.05)
    m = scrape(stack)
    assert m['charge_gate_decisions_total{pool="generate-image",outcome="service_unavailable"}'] >= 1
    assert m["charge_gate_redis_reconnects_total"] >= 1
    assert m['charge_gate_redis_errors_total{kind="unavailable"}'] >= 1


def test_metrics_are_for_loopback_only(stack):
    r = stack.request("GET", "/metrics", source="127.0.0.2")
    assert r.status == 403, r
    assert "charge_gate" not in r.text


def _started(make_stack, *args):
    stack = make_stack(start=False)
    stack.write_config()
    stack.redis.start()
    stack.responder.start(extra_args=list(args))
    stack.nginx.start()
    return stack


def _log_lines(stack, predicate, count, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        lines = [l for l in stack.responder.log_text().splitlines() if predicate(l)]
        if len(lines) >= count or time.time() > deadline:
            return lines
        time.sleep(0.05)


def test_json_logs_one_line_per_denial_with_hashed_subject_and_request_id(make_stack):
    import json
    stack = _started(make_stack, "--log-format", "json")
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    assert_out_of_charge(stack.post("/api/generate"), "generate-image")
    lines = _log_lines(stack, lambda l: '"denied out_of_charge"' in l, 1)
    assert len(lines) == 1, stack.responder.log_text()
    event = json.loads(lines[0])
    assert event["level"] == "info" and event["pool"] == "generate-image" and event["route"] == "/api/generate"
    assert re.fullmatch(r"s:[0-9a-f]{16}", event["subject"]), event
    assert "127.0.0.1" not in lines[0]
    assert re.fullmatch(r"[0-9a-f]{32}", event["requestId"]), event
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["ts"]), event
    # Every line of the responder's log is one JSON object.
    for line in stack.responder.log_text().splitlines():
        if line.strip():
            json.loads(line)


def test_text_logs_with_plain_subjects_and_no_secrets(make_stack):
    stack = make_stack(start=False, settings="adminToken: very-secret-token\n")
    stack.write_config()
    stack.redis.start()
    stack.responder.start(extra_args=["--log-subjects", "plain"])
    stack.nginx.start()
    for _ in range(6):
        stack.post("/api/generate")
    lines = _log_lines(stack, lambda l: " denied out_of_charge " in l, 1)
    assert len(lines) == 1 and "subject=127.0.0.1" in lines[0], stack.responder.log_text()
    r = stack.request("POST", "/api/usage/topoff", headers={"Authorization": "Bearer wrong-guess"}, body=b'{"poolId":"generate-image"}')
    assert r.status == 401
    r = stack.request("POST", "/api/usage/topoff", headers={"Authorization": "Bearer very-secret-token"}, body=b'{"poolId":"generate-image"}')
    assert r.status == 200
    assert _log_lines(stack, lambda l: " top-off " in l, 1)
    text = stack.responder.log_text()
    assert "very-secret-token" not in text and "wrong-guess" not in text


def test_status_prints_the_usage_table_from_redis(stack):
    import subprocess
    from harness import BIN
    for _ in range(2):
        assert stack.post("/api/generate").status == 200
    r = subprocess.run([str(BIN), "status", "--config", str(stack.config)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["POOL", "GROUP", "LEFT", "NEXT", "CHARGE", "FULL", "IN", "SUBJECT"]
    row = next(l for l in lines if l.startswith("generate-image"))
    assert row.split()[:4] == ["generate-image", "AI", "3/5", "[######....]"], row
    assert row.split()[4:] == ["2h", "4h"], row  # the next charge in 2 h; 2 missing x 2 h
    assert any(l.split()[:3] == ["describe-image", "20/20", "[##########]"] for l in lines), lines


def test_status_without_redis_says_where_to_look(make_stack):
    import subprocess
    from harness import BIN
    stack = make_stack(redis=False)
    r = subprocess.run([str(BIN), "status", "--config", str(stack.config)], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert r.stderr.strip() == "status: the config names no redis; the memory store lives inside the responder: curl http://127.0.0.1/api/usage"
