"""What operators scrape and read: /metrics through nginx (issue 6)."""

from __future__ import annotations

import re
import signal
import time

from harness import assert_out_of_charge


def scrape(stack, **kw) -> dict[str, float]:
    r = stack.get("/metrics", **kw)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_decisions_redis_and_reloads(make_stack):
    stack = make_stack(settings="workers: 2\n")
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
