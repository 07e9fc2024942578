"""deploy/local-stack: up, requests, down; failures are fast one-line errors (README, Quick start)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    BIN,
    LOCAL_STACK,
    RENDER_NGINX_CONF,
    SNIPPETS,
    RedisClient,
    assert_allowed,
    assert_out_of_charge,
    free_port,
    http_request,
    local_stack,
    pid_alive,
    port_open,
    wait_until,
)

PIDS = ["nginx", "charge-gate", "redis"]


def pids(d: Path) -> dict[str, int]:
    out = {}
    for name in PIDS:
        try:
            out[name] = int((d / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            pass
    return out


def one_line_error(r):
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def stack_dir(tmp_dir):
    d = tmp_dir / "stack"
    yield d
    # whatever happened, nothing may stay up
    subprocess.run([str(LOCAL_STACK), "down", "--dir", str(d)], stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=60)
    for pid in pids(d).values():
        if pid_alive(pid):
            os.kill(pid, 9)


def test_up_memory_then_down(stack_dir):
    port = free_port()
    t0 = time.monotonic()
    r = local_stack("up", "--memory", "--port", str(port), "--dir", str(stack_dir))
    assert r.returncode == 0, r
    assert time.monotonic() - t0 < 20
    assert f"http://127.0.0.1:{port}" in r.stdout
    assert "curl" in r.stdout
    running = pids(stack_dir)
    assert set(running) == {"nginx", "charge-gate"}, running
    assert all(pid_alive(p) for p in running.values())
    assert not (stack_dir / "redis.sock").exists()

    # the example config: generate-image holds 5, POST only
    for _ in range(5):
        assert_allowed(http_request(port, "POST", "/api/generate"), "POST", "/api/generate")
    assert_out_of_charge(http_request(port, "POST", "/api/generate"), "generate-image")
    assert_allowed(http_request(port, "GET", "/api/generate"), "GET", "/api/generate")
    r2 = http_request(port, "GET", "/api/usage")
    assert r2.status == 200, r2
    assert [p["id"] for p in r2.json()["pools"]][:2] == ["generate-image", "describe-image"]
    assert (stack_dir / "app-access.log").read_text().count("POST /api/generate 200") == 5

    # The example config settles /api/generate ({}: 5xx given back): nginx's line after each of
    # the 5 answers reaches the stack's responder, and each hold stands (the app answered 200).
    def holds(outcome):
        m = http_request(port, "GET", "/metrics")
        assert m.status == 200, m
        line = f'charge_gate_holds_total{{outcome="{outcome}"}} '
        return next((float(x[len(line):]) for x in m.body.decode().splitlines() if x.startswith(line)), None)
    wait_until(lambda: holds("stands") == 5, 10, what="the 5 holds settled through the local stack")
    assert holds("opened") == 5 and holds("refund") == 0

    # up again in the same dir: one-line error, nothing changed
    again = local_stack("up", "--memory", "--port", str(free_port()), "--dir", str(stack_dir), timeout=30)
    assert again.returncode == 1, again
    assert "already running" in one_line_error(again)
    assert pids(stack_dir) == running

    # down stops everything and is idempotent
    d = local_stack("down", "--dir", str(stack_dir))
    assert d.returncode == 0, d
    for pid in running.values():
        assert not pid_alive(pid), pid
    assert not port_open(port)
    assert not (stack_dir / "charge.sock").exists()
    d2 = local_stack("down", "--dir", str(stack_dir))
    assert d2.returncode == 0, d2


def test_up_with_redis(stack_dir):
    port = free_port()
    r = local_stack("up", "--port", str(port), "--dir", str(stack_dir))
    assert r.returncode == 0, r
    running = pids(stack_dir)
    assert set(running) == {"nginx", "charge-gate", "redis"}, running
    assert_allowed(http_request(port, "POST", "/api/generate"), "POST", "/api/generate")
    redis = RedisClient(stack_dir / "redis.sock")
    raw = redis.get("charge:generate-image")
    assert raw is not None and raw.startswith('{"current":4,"lastUpdatedAt":'), raw
    # Its hold, in Redis, settled by nginx's line through the stack's responder.
    def hold_statuses():
        cursor, keys = redis.command("SCAN", "0", "MATCH", "charge:#hold:*", "COUNT", "1000")
        return [json.loads(redis.get(k))["status"] for k in keys]
    wait_until(lambda: hold_statuses() == ["settled"], 10, what="the hold settled through the local stack")
    d = local_stack("down", "--dir", str(stack_dir))
    assert d.returncode == 0, d
    for pid in running.values():
        assert not pid_alive(pid), pid
    assert not port_open(port)


def test_up_on_a_busy_port_fails_fast(stack_dir):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        t0 = time.monotonic()
        r = local_stack("up", "--memory", "--port", str(port), "--dir", str(stack_dir), timeout=30)
        took = time.monotonic() - t0
        assert r.returncode == 1, r
        line = one_line_error(r)
        assert "busy" in line and str(port) in line, line
        assert took < 5, took
        assert not any(pid_alive(p) for p in pids(stack_dir).values())
    finally:
        busy.close()


def test_up_on_a_bound_but_not_listening_port_fails_cleanly(stack_dir):
    """nginx's own bind is the final word: still one line, and nothing left running."""
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    try:
        r = local_stack("up", "--memory", "--port", str(port), "--dir", str(stack_dir), timeout=30)
        assert r.returncode == 1, r
        line = one_line_error(r)
        assert str(port) in line, line
        assert not any(pid_alive(p) for p in pids(stack_dir).values())
    finally:
        busy.close()


def test_up_with_each_auth_profile(stack_dir):
    """--profile picks the server snippet and what goes with it (README, "Auth profiles"): edge,
    charge-gate-server.conf and the deny cache's path; keepalive, charge-gate-server-keepalive.conf
    and `keepalive 32;` in the upstream. Without it, the stack follows deploy/render-nginx-conf's
    default, the one place it is set."""
    default = subprocess.run([str(RENDER_NGINX_CONF), "--default-profile"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
    assert default in ("edge", "keepalive"), default
    snippet = {"edge": f"include {SNIPPETS}/charge-gate-server.conf;",
               "keepalive": f"include {SNIPPETS}/charge-gate-server-keepalive.conf;"}
    for asked in (None, "keepalive", "edge"):
        port = free_port()
        # not through local_stack(), which names this run's profile
        r = subprocess.run([str(LOCAL_STACK), "up", "--memory", "--port", str(port), "--dir", str(stack_dir)]
                           + (["--profile", asked] if asked else []),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, CHARGE_GATE_BIN=str(BIN)))
        assert r.returncode == 0, r
        profile = asked or default
        assert r.stdout.splitlines()[0].endswith(f"(memory store, {profile} profile)"), r.stdout
        conf = "\n".join(line.split("#", 1)[0] for line in (stack_dir / "nginx.conf").read_text().splitlines())
        upstream = conf[conf.index("upstream charge_gate {"):]
        upstream = upstream[:upstream.index("}")]
        if profile == "edge":
            assert snippet["edge"] in conf and snippet["keepalive"] not in conf, conf
            assert f"fastcgi_cache_path {stack_dir}/deny-cache " in conf, conf
            assert "keepalive" not in upstream, upstream
        else:
            assert snippet["keepalive"] in conf and snippet["edge"] not in conf, conf
            assert "fastcgi_cache_path" not in conf, conf
            assert "        keepalive 32;" in upstream, upstream
        # the example config: generate-image holds 5, POST only
        for _ in range(5):
            assert_allowed(http_request(port, "POST", "/api/generate"), "POST", "/api/generate")
        assert_out_of_charge(http_request(port, "POST", "/api/generate"), "generate-image")
        d = local_stack("down", "--dir", str(stack_dir))
        assert d.returncode == 0, d
        assert not port_open(port)


def test_bad_arguments_are_one_line_errors(tmp_dir):
    for args in (["up", "--port", "notaport", "--dir", str(tmp_dir / "x")],
                 ["up", "--config", str(tmp_dir / "missing.yaml"), "--dir", str(tmp_dir / "x")],
                 ["sideways"],
                 ["up", "--bogus"],
                 ["up", "--profile", "cached", "--dir", str(tmp_dir / "x")],
                 ["down", "--profile", "edge", "--dir", str(tmp_dir / "x")]):
        r = local_stack(*args, timeout=30)
        assert r.returncode == 1, (args, r)
        one_line_error(r)
