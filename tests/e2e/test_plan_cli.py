"""`charge-gate plan set|get|clear` (README "Plans and periods"): a subject's stored plan in Redis from the shell,
checked against the Redis key itself and against a running responder behind nginx."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

from harness import BIN, Stack, single_redis_only

PLAN_POOLS = """\
pools:
  - id: gen
    per: subject
    maxCharges: 2
    rechargeIntervalHours: 24
    label: Generation
  - id: monthly
    per: subject
    maxCharges: 10
    period: month
  - id: shared
    maxCharges: 7
    rechargeIntervalHours: 1
plans:
  - id: free
    label: Free
  - id: pro
    label: Pro
    pools:
      gen: {maxCharges: 50}
      monthly: {maxCharges: 1000}
defaultPlan: free
routes:
  - prefix: /api/generate
    pools: [gen, monthly]
"""

NO_PLANS = """\
pools:
  - id: gen
    per: subject
    maxCharges: 2
    rechargeIntervalHours: 24
routes:
  - prefix: /api/generate
    pools: [gen]
"""

ANSWER_KEYS = ["subject", "plan", "source", "periodAnchor"]


def cli(stack: Stack, *args: str, config=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "plan", *args, "--config", str(config or stack.config)],
                          capture_output=True, text=True, timeout=20)


def answer(r: subprocess.CompletedProcess) -> dict:
    """The one JSON line printed on success, its keys in the admin API's order."""
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    pairs = json.loads(lines[0], object_pairs_hook=lambda p: p)
    assert [k for k, _ in pairs] == ANSWER_KEYS, lines[0]
    return dict(pairs)


def redis_only(make_stack, body: str = PLAN_POOLS) -> Stack:
    """Redis and a config, no responder or nginx: what an operator's shell sees."""
    stack = make_stack(body, start=False)
    stack.write_config()
    stack.redis.start()
    return stack


def plan_key(stack: Stack, subject: str) -> str:
    return stack.keys.plan(subject)


def test_set_get_clear_round_trip_with_the_exact_redis_value(make_stack):
    stack = redis_only(make_stack)
    r = stack.redis.client

    assert answer(cli(stack, "get", "alice")) == {"subject": "alice", "plan": "free", "source": "default", "periodAnchor": None}
    assert r.get(plan_key(stack, "alice")) is None

    assert answer(cli(stack, "set", "alice", "pro")) == {"subject": "alice", "plan": "pro", "source": "stored", "periodAnchor": None}
    assert r.get(plan_key(stack, "alice")) == '{"plan":"pro"}'
    assert r.command("TTL", plan_key(stack, "alice")) == -1  # no expiry
    assert answer(cli(stack, "get", "alice")) == {"subject": "alice", "plan": "pro", "source": "stored", "periodAnchor": None}
    # Another subject is untouched.
    assert answer(cli(stack, "get", "bob"))["source"] == "default"

    # Setting the default plan explicitly stores it too (source stored, not default).
    assert answer(cli(stack, "set", "alice", "free"))["source"] == "stored"
    assert r.get(plan_key(stack, "alice")) == '{"plan":"free"}'

    assert answer(cli(stack, "clear", "alice")) == {"subject": "alice", "plan": "free", "source": "default", "periodAnchor": None}
    assert r.get(plan_key(stack, "alice")) is None
    # Clearing what is not there is fine, and says the same.
    assert answer(cli(stack, "clear", "alice")) == {"subject": "alice", "plan": "free", "source": "default", "periodAnchor": None}


def test_subjects_in_key_form_and_hashed(make_stack):
    stack = redis_only(make_stack)
    long_subject = "key with spaces / and more than sixty-four bytes ......................."
    got = answer(cli(stack, "set", long_subject, "pro"))
    hashed = got["subject"]
    assert hashed.startswith("h:") and len(hashed) == 34, got
    assert stack.redis.client.get(plan_key(stack, hashed)) == '{"plan":"pro"}'
    # The hashed form as usage JSON and events show it names the same subject, as a key form.
    assert answer(cli(stack, "get", "--key-form", hashed))["plan"] == "pro"
    # Named as a subject, the same text is another subject (one nginx may pass as it is): its
    # plan is its own, and setting or clearing it never touches the hashed subject's.
    literal = answer(cli(stack, "get", hashed))
    assert literal["subject"] != hashed and literal["source"] == "default", literal
    assert answer(cli(stack, "set", hashed, "free"))["subject"] == literal["subject"]
    assert answer(cli(stack, "clear", hashed))["subject"] == literal["subject"]
    assert stack.redis.client.get(plan_key(stack, hashed)) == '{"plan":"pro"}'
    assert answer(cli(stack, "clear", "--key-form", hashed))["source"] == "default"
    assert stack.redis.client.get(plan_key(stack, hashed)) is None
    r = cli(stack, "get", "--key-form", "h:NOT-HEX")
    assert r.returncode != 0 and "<subject> with --key-form: not a subject's key form" in r.stderr, r.stderr

    r = cli(stack, "get", "")
    assert r.returncode != 0 and "<subject>: give 1 to 1024 bytes" in r.stderr, r.stderr


def test_anchor_as_epoch_ms_and_iso_8601(make_stack):
    stack = redis_only(make_stack)
    r = stack.redis.client
    got = answer(cli(stack, "set", "alice", "pro", "--anchor", "1764547200000"))
    assert got == {"subject": "alice", "plan": "pro", "source": "stored", "periodAnchor": 1764547200000}
    assert r.get(plan_key(stack, "alice")) == '{"plan":"pro","periodAnchor":1764547200000}'
    assert answer(cli(stack, "get", "alice"))["periodAnchor"] == 1764547200000

    iso = "2026-01-31T12:30:00Z"
    ms = int(datetime(2026, 1, 31, 12, 30, tzinfo=timezone.utc).timestamp() * 1000)
    assert answer(cli(stack, "set", "bob", "free", "--anchor", iso))["periodAnchor"] == ms
    assert r.get(plan_key(stack, "bob")) == '{"plan":"free","periodAnchor":%d}' % ms
    # Fractional seconds and an offset.
    got = answer(cli(stack, "set", "carol", "pro", "--anchor", "2026-01-31T13:30:00.250+01:00"))
    assert got["periodAnchor"] == ms + 250
    # The edges of the range.
    assert answer(cli(stack, "set", "dave", "pro", "--anchor", "0"))["periodAnchor"] == 0
    assert answer(cli(stack, "set", "dave", "pro", "--anchor", str(2**53 - 1)))["periodAnchor"] == 2**53 - 1
    assert r.get(plan_key(stack, "dave")) == '{"plan":"pro","periodAnchor":%d}' % (2**53 - 1)

    # Out of range or unreadable: refused, nothing written (dave keeps his record).
    for bad in [str(2**53), "-1", "1969-12-31T23:59:59Z", "yesterday", "2026-13-01T00:00:00Z", ""]:
        res = cli(stack, "set", "dave", "free", "--anchor", bad)
        assert res.returncode == 64, (bad, res.returncode, res.stderr)
        assert "--anchor: expected epoch ms from 0 to 2^53 - 1, or ISO 8601" in res.stderr, (bad, res.stderr)
        assert res.stdout == "", res.stdout
    assert r.get(plan_key(stack, "dave")) == '{"plan":"pro","periodAnchor":%d}' % (2**53 - 1)
    assert r.get(plan_key(stack, "eve")) is None


def test_unknown_plan_is_refused_and_nothing_written(make_stack):
    stack = redis_only(make_stack)
    res = cli(stack, "set", "alice", "enterprise")
    assert res.returncode == 1
    assert res.stderr == "plan: unknown plan 'enterprise' (plans: free, pro)\n"
    assert res.stdout == ""
    assert stack.redis_keys() == []
    # A stored plan survives a refused change.
    answer(cli(stack, "set", "alice", "pro"))
    res = cli(stack, "set", "alice", "Pro")  # ids are case-sensitive
    assert res.returncode == 1 and res.stderr == "plan: unknown plan 'Pro' (plans: free, pro)\n"
    assert stack.redis.client.get(plan_key(stack, "alice")) == '{"plan":"pro"}'


def test_a_stored_plan_the_config_no_longer_has_reads_as_the_default(make_stack):
    stack = redis_only(make_stack)
    stack.redis.client.command("SET", plan_key(stack, "alice"), '{"plan":"gold","periodAnchor":5}')
    assert answer(cli(stack, "get", "alice")) == {"subject": "alice", "plan": "free", "source": "default", "periodAnchor": 5}
    assert answer(cli(stack, "clear", "alice"))["periodAnchor"] is None
    assert stack.redis.client.get(plan_key(stack, "alice")) is None


def test_without_plans_configured(make_stack):
    stack = redis_only(make_stack, NO_PLANS)
    res = cli(stack, "set", "alice", "pro")
    assert res.returncode == 1
    assert res.stderr == f"plan: no plans are configured in {stack.config} (add plans and defaultPlan first)\n"
    assert res.stdout == ""
    assert stack.redis_keys() == []
    null = {"subject": "alice", "plan": None, "source": "default", "periodAnchor": None}
    assert answer(cli(stack, "get", "alice")) == null
    # A record left from when plans were configured: still null, and clear removes it.
    stack.redis.client.command("SET", plan_key(stack, "alice"), '{"plan":"pro"}')
    assert answer(cli(stack, "get", "alice")) == null
    assert answer(cli(stack, "clear", "alice")) == null
    assert stack.redis.client.get(plan_key(stack, "alice")) is None


def test_memory_store_config_points_at_the_admin_api(make_stack):
    stack = make_stack(PLAN_POOLS, redis=False, start=False)
    stack.write_config()
    for verb, method in [("get", "GET"), ("clear", "DELETE")]:
        res = cli(stack, verb, "alice")
        assert res.returncode == 1, res
        assert res.stdout == ""
        assert res.stderr == ("plan: the config names no redis; the memory store lives inside the responder: use the admin API "
                              f"instead ({method} http://127.0.0.1/api/usage/plan?subject=S with the adminToken)\n")
    res = cli(stack, "set", "alice", "pro")
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines() == ["plan: the config names no redis; the memory store lives inside the responder: use the admin "
                                       "API instead (PUT http://127.0.0.1/api/usage/plan?subject=S with the adminToken)"]


@single_redis_only("killed, then named by its unix socket")
def test_redis_down_is_one_line_and_exit_1(make_stack):
    stack = redis_only(make_stack)
    stack.redis.kill()
    for args in [("set", "alice", "pro"), ("get", "alice"), ("clear", "alice")]:
        res = cli(stack, *args)
        assert res.returncode == 1, (args, res.returncode, res.stderr)
        assert res.stdout == ""
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("plan: store unavailable: "), (args, res.stderr)
    # --redis overrides the config's URL (here: a port nobody listens on).
    stack.redis.start()
    res = subprocess.run([str(BIN), "plan", "get", "alice", "--config", str(stack.config), "--redis", "redis://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1 and res.stderr.startswith("plan: store "), res.stderr
    res = subprocess.run([str(BIN), "plan", "set", "alice", "pro", "--config", str(stack.config),
                          "--redis", f"unix://{stack.redis.sock}"], capture_output=True, text=True, timeout=20)
    assert answer(res)["plan"] == "pro"


def test_a_plan_set_by_the_cli_is_applied_by_a_running_responder(make_stack):
    stack = make_stack(PLAN_POOLS)
    u = stack.get("/api/usage").json()
    assert u["plan"] == {"id": "free", "label": "Free", "source": "default"}
    free = {p["id"]: p for p in u["pools"]}
    assert free["gen"]["max"] == 2 and free["monthly"]["max"] == 10 and free["shared"]["max"] == 7

    # nginx's subject is the client address.
    got = answer(cli(stack, "set", "127.0.0.1", "pro", "--anchor", "2026-01-15T00:00:00Z"))
    assert got["subject"] == "127.0.0.1" and got["source"] == "stored"

    u = stack.get("/api/usage").json()
    assert list(u) == ["plan", "pools"]
    assert u["plan"] == {"id": "pro", "label": "Pro", "source": "stored"}
    pools = {p["id"]: p for p in u["pools"]}
    assert pools["gen"]["max"] == 50 and pools["gen"]["current"] == 50, pools["gen"]
    assert pools["monthly"]["max"] == 1000 and pools["monthly"]["current"] == 1000, pools["monthly"]
    assert pools["monthly"]["period"] == "month"
    # The anchor moves the period: the 15th, 00:00 UTC, of some month.
    start = datetime.fromtimestamp(pools["monthly"]["periodStart"] / 1000, tz=timezone.utc)
    assert (start.day, start.hour, start.minute) == (15, 0, 0), start
    assert pools["shared"]["max"] == 7  # a global pool no plan touches

    # And the gate spends under pro: far more than free's 2.
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    assert {p["id"]: p for p in stack.get("/api/usage").json()["pools"]}["gen"]["current"] == 45

    # Cleared: the default plan's limits again; what was used stays used (2 - 5 -> 0).
    assert answer(cli(stack, "clear", "127.0.0.1"))["source"] == "default"
    u = stack.get("/api/usage").json()
    assert u["plan"]["source"] == "default"
    gen = {p["id"]: p for p in u["pools"]}["gen"]
    assert gen["max"] == 2 and gen["current"] == 0, gen


def test_an_upgrade_by_the_cli_lifts_a_denial_within_the_caches_bounds(make_stack):
    """The operator's case: a subject out of charge under free is upgraded from the shell. The
    responder's memory deny cache (1 s) and nginx's edge cache (edgeDenySeconds, 1 s by default)
    may answer the old 429 for a moment; after that the gate spends under pro."""
    from harness import allowed_within, assert_out_of_charge

    stack = make_stack(PLAN_POOLS, settings="workers: 2\n")
    for _ in range(2):
        assert stack.post("/api/generate").status == 200
    assert_out_of_charge(stack.post("/api/generate"), "gen")
    answer(cli(stack, "set", "127.0.0.1", "pro"))
    allowed_within(lambda: stack.post("/api/generate"), "gen", 2.5, "still denied 2.5 s after the upgrade", interval=0.05)
    gen = {p["id"]: p for p in stack.get("/api/usage").json()["pools"]}["gen"]
    assert gen["max"] == 50 and gen["current"] == 47, gen  # 2 + 1 used under pro's cap
