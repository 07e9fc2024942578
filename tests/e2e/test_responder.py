"""The responder process: reload on SIGHUP, exit on SIGTERM, socket ownership, `listen: inherit`
(docs/config.md, README "Command line")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import (
    BIN,
    DEFAULT_POOLS,
    assert_allowed,
    assert_out_of_charge,
    unix_connectable,
    wait_until,
)


def test_sighup_with_a_broken_config_keeps_the_old_one(stack):
    assert stack.post("/api/generate").status == 200
    stack.write_config(raw="pools:\n  - id: generate-image\n    maxCharges: -3\n    bogusKey: 1\nroutes: [\n")
    stack.responder.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert stack.responder.alive(), stack.responder.log_tail()
    # still enforcing the old config
    for _ in range(4):
        assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert_out_of_charge(stack.post("/api/generate"), "generate-image")
    assert stack.usage()["generate-image"]["max"] == 5
    # the rejection is logged, naming the file
    assert str(stack.config) in stack.responder.log_text(), stack.responder.log_tail()


def test_sighup_with_a_good_config_takes_effect(stack):
    assert stack.usage()["describe-image"]["max"] == 20
    new_body = DEFAULT_POOLS.replace(
        "  - id: describe-image\n    maxCharges: 20\n", "  - id: describe-image\n    maxCharges: 1\n"
    ) + "  - prefix: /api/brand-new\n    pools: [fast]\n"
    stack.write_config(body=new_body)
    stack.responder.signal(signal.SIGHUP)
    wait_until(lambda: stack.usage()["describe-image"]["max"] == 1, 3, interval=0.05, what="the reloaded config")
    assert_allowed(stack.get("/api/describe"), "GET", "/api/describe")
    assert_out_of_charge(stack.get("/api/describe"), "describe-image")
    assert_allowed(stack.get("/api/brand-new"), "GET", "/api/brand-new")
    assert_out_of_charge(stack.get("/api/brand-new"), "fast")
    assert stack.responder.alive()


def test_sighup_changing_redis_min_replicas_warns_and_keeps_the_running_value(stack):
    """redisMinReplicas and redisReplicaWaitMs need a restart (docs/config.md, "Reloading"): a
    reload that changes them names them in a warning, keeps the running values (no replica
    exists: a spend that waited for one would be answered 503) and applies the rest."""
    assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    new_body = DEFAULT_POOLS.replace(
        "  - id: describe-image\n    maxCharges: 20\n", "  - id: describe-image\n    maxCharges: 1\n"
    )
    stack.write_config(body=new_body, settings=stack.settings + "\nredisMinReplicas: 1\nredisReplicaWaitMs: 20\n")
    stack.responder.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in stack.responder.log_text(), 3, interval=0.05, what="the reload")
    log = stack.responder.log_text()
    assert ("reload: these take effect only after a restart, keeping the running values: "
            "redisMinReplicas, redisReplicaWaitMs") in log, stack.responder.log_tail()
    assert stack.usage()["describe-image"]["max"] == 1
    for _ in range(3):
        assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.state("generate-image")["current"] == 1


def test_sigterm_exits_zero_quickly(stack):
    assert stack.post("/api/generate").status == 200
    t0 = time.monotonic()
    stack.responder.signal(signal.SIGTERM)
    code = stack.responder.proc.wait(timeout=5)
    took = time.monotonic() - t0
    assert code == 0, stack.responder.log_tail()
    assert took < 3, f"SIGTERM took {took:.2f}s"


def test_sigterm_finishes_requests_in_flight(stack):
    """A request waiting on a slow Redis (DEBUG SLEEP 0.4 s < redisTimeoutMs 500) when SIGTERM
    arrives is still answered, then the process exits 0."""
    results = {}
    # the node that holds the pool (on a cluster, the primary of its slot)
    node = stack.redis_node_of(stack.keys.bucket("generate-image"))
    sleeper = threading.Thread(target=lambda: node.command("DEBUG", "SLEEP", "0.4"))
    client = threading.Thread(target=lambda: results.setdefault("r", stack.post("/api/generate")))
    sleeper.start()
    time.sleep(0.05)
    client.start()
    time.sleep(0.1)
    stack.responder.signal(signal.SIGTERM)
    client.join(timeout=10)
    sleeper.join(timeout=10)
    assert_allowed(results["r"], "POST", "/api/generate")
    assert stack.responder.proc.wait(timeout=5) == 0, stack.responder.log_tail()
    assert stack.state("generate-image")["current"] == 4


def test_sigint_exits_zero_quickly(stack):
    stack.responder.signal(signal.SIGINT)
    code = stack.responder.proc.wait(timeout=5)
    assert code == 0, stack.responder.log_tail()


def test_second_serve_on_the_same_socket_refuses(stack):
    ino = os.stat(stack.responder.sock).st_ino
    second = subprocess.run([str(BIN), "serve", "--config", str(stack.config)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=15)
    assert second.returncode != 0, second
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    assert str(stack.responder.sock) in lines[0], lines
    # the first one keeps its socket and keeps answering
    assert os.stat(stack.responder.sock).st_ino == ino
    assert stack.responder.alive()
    for _ in range(3):
        assert_allowed(stack.post("/api/generate"), "POST", "/api/generate")
    assert stack.state("generate-image")["current"] == 2


def test_serve_replaces_a_stale_socket(make_stack):
    """A socket file left by a dead responder (nobody listening) is not an obstacle."""
    s = make_stack(start=False)
    s.write_config()
    s.redis.start()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(s.responder.sock))
    stale.close()  # the file stays, nobody listens
    assert s.responder.sock.exists() and not unix_connectable(s.responder.sock)
    s.responder.start()
    s.nginx.start()
    assert_allowed(s.post("/api/generate"), "POST", "/api/generate")


def test_listen_inherit_from_a_launcher(make_stack):
    """Like spawn-fcgi or systemd: the launcher creates the listening socket, puts it on fd 0
    and execs charge-gate with `listen: inherit`."""
    s = make_stack(start=False)
    s.write_config(listen="inherit")
    s.redis.start()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(s.responder.sock))
    os.chmod(s.responder.sock, 0o660)
    listener.listen(128)
    try:
        s.responder.start(stdin=listener.fileno(), wait_socket=False)
    finally:
        listener.close()  # the child has its own copy on fd 0
    s.nginx.start()

    def answering():
        assert s.responder.alive(), s.responder.log_tail()
        return s.get("/api/usage").status == 200

    wait_until(answering, 10, interval=0.05, what="the inherited socket answering")
    for _ in range(5):
        assert_allowed(s.post("/api/generate"), "POST", "/api/generate")
    assert_out_of_charge(s.post("/api/generate"), "generate-image")
    s.responder.signal(signal.SIGTERM)
    assert s.responder.proc.wait(timeout=5) == 0


UNKNOWN = "redis: unix:// URL: parameter 1 is neither db nor password (its text is not shown: it may be a secret)"
TWICE = "redis: unix:// URL: db is given twice; give it once"
ESCAPE = "redis: the password has an invalid %-escape (write % itself as %25)"


@pytest.mark.parametrize("url,message", [
    ("unix:///run/redis.sock?hunter2", UNKNOWN),
    ("unix:///run/redis.sock?db=1&db=2", TWICE),
    ("redis://:hunter2%zz@127.0.0.1:6379/0", ESCAPE),
])
def test_a_bad_redis_url_is_named_and_its_secret_never_shown(tmp_dir, url, message):
    """The hostile review: a Redis URL error echoed an unknown parameter (a password typed
    without its name), and took ?db=1&db=2 and a %zz password as written."""
    bad = tmp_dir / "bad.yaml"
    bad.write_text(f"redis: {url}\n" + DEFAULT_POOLS)
    r = subprocess.run([str(BIN), "check-config", str(bad)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 1, r
    assert (r.stdout + r.stderr).strip() == f"{bad}:1: {message}", r
    good = tmp_dir / "good.yaml"
    good.write_text(DEFAULT_POOLS)
    for command in (["status"], ["events"], ["serve", "--listen", str(tmp_dir / "s.sock")]):
        r = subprocess.run([str(BIN), *command, "--config", str(good), "--redis", url], capture_output=True, text=True, timeout=15)
        assert r.returncode == 64, r
        assert r.stderr.splitlines()[0] == f"Error: --redis: {message}", r
        assert "hunter2" not in r.stdout + r.stderr, r


def test_check_config(tmp_dir):
    good = tmp_dir / "good.yaml"
    good.write_text(DEFAULT_POOLS)
    r = subprocess.run([str(BIN), "check-config", str(good)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "config ok: 7 pools, 11 routes", r
    bad = tmp_dir / "bad.yaml"
    bad.write_text("pools:\n  - id: a\n    maxCharges: 0\n    rechargeIntervalHours: 1\nroutes:\n  - prefix: /x\n    pools: [nope]\n")
    r = subprocess.run([str(BIN), "check-config", str(bad)], capture_output=True, text=True, timeout=15)
    assert r.returncode == 1, r
    out = (r.stdout + r.stderr).strip().splitlines()
    assert len(out) >= 2, out
    for line in out:
        assert line.startswith(f"{bad}:"), out
