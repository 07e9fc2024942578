"""Hostile clients at the nginx edge (issue 4): method tricks on charged routes, a spoofed
X-Forwarded-For when the subject is the client address, and a Redis password that must never
reach a log line, an error or an answer."""

from __future__ import annotations

import time

from harness import assert_out_of_charge

POOLS = """\
pools:
  - id: reads
    maxCharges: 2
    rechargeIntervalHours: 24
  - id: any
    maxCharges: 3
    rechargeIntervalHours: 24
  - id: per-ip
    maxCharges: 2
    rechargeIntervalHours: 24
    per: subject
routes:
  - prefix: /api/reads
    pools: [reads]
    methods: [GET]
  - prefix: /api/any
    pools: [any]
  - prefix: /api/per-ip
    pools: [per-ip]
"""


def test_head_is_charged_like_get_and_every_method_on_an_open_route(make_stack):
    stack = make_stack(config_body=POOLS)
    # HEAD does the app's work of a GET: charged on a GET-only route.
    assert stack.request("HEAD", "/api/reads").status == 200
    assert stack.get("/api/reads").status == 200
    r = stack.request("HEAD", "/api/reads")
    assert r.status == 429, r
    # A route without `methods` charges every method: OPTIONS and methods nginx does not know.
    assert stack.request("OPTIONS", "/api/any").status == 200
    assert stack.request("PURGE", "/api/any").status == 200
    raw = stack.raw(b"FOOBAR /api/any HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
    assert stack.state("any")["current"] == 0
    assert_out_of_charge(stack.request("DELETE", "/api/any"), "any")
    raw = stack.raw(b"FOOBAR /api/any HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 429"), raw[:200]


def test_a_spoofed_x_forwarded_for_does_not_change_the_subject(make_stack):
    stack = make_stack(config_body=POOLS)
    for i in range(2):
        r = stack.get("/api/per-ip", headers={"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"203.0.113.{i}"})
        assert r.status == 200, r
    r = stack.get("/api/per-ip", headers={"X-Forwarded-For": "198.51.100.99"})
    assert_out_of_charge(r, "per-ip")
    assert stack.key("per-ip:127.0.0.1") is not None
    assert stack.redis_keys("per-ip:*") == [stack.keys.bucket("per-ip", "127.0.0.1")]


def test_the_redis_password_never_appears(make_stack):
    password = "pw-Zq81-never-shown"
    stack = make_stack(config_body=POOLS, start=False)
    stack.write_config()
    stack.redis.start()
    # The responder is given a wrong password: every gated request fails closed. (A cluster's
    # nodes have none, and answer its AUTH with an error: the same.)
    if stack.cluster:
        url = stack.redis.url
        text = stack.config.read_text().replace(f"redis: {url}",
                                                url.replace("redis-cluster://", f"redis: redis-cluster://:{password}@"))
    else:
        stack.redis.client.command("CONFIG", "SET", "requirepass", "the-real-one")
        text = stack.config.read_text().replace(f"redis: unix://{stack.redis.sock}",
                                                f"redis: unix://{stack.redis.sock}?password={password}")
    assert password in text
    stack.config.write_text(text)
    stack.responder.start()
    stack.nginx.start()
    answers = [stack.get("/api/any") for _ in range(3)] + [stack.get("/api/usage"), stack.get("/api/usage/check?pools=any")]
    for r in answers:
        assert r.status == 503, r
        assert r.json() == {"error": "service_unavailable"}
        assert password not in r.text and password not in str(r.header_list)
    time.sleep(0.3)
    log = stack.responder.log_text()
    assert "store unavailable" in log, log
    assert password not in log
    assert "***" in log or "AUTH" in log, log
    err = (stack.dir / "error.log").read_text(errors="replace")
    assert password not in err
