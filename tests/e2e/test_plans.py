"""Plans and billing periods through real nginx, on the Redis store and, where it is
cheap, on the memory store too: anchored and calendar periods, plan changes mid-period, the
plan nginx names (`$charge_gate_plan` from a map of an API-key header), the deny caches (nginx's
edge cache and the workers' memory cache) around a plan change, the admin plan API, the plan in
usage events, and the Redis formats with and without plans.

The subject is the X-User header (`set $charge_gate_subject $http_x_user;`) and nginx's plan is
a map of the X-Api-Key header (`set $charge_gate_plan $cg_plan_by_key;`), so that one subject
can come with different nginx plans. "now" is Redis TIME (the clock the script decides with);
on the memory store the system clock (the same clock on this machine).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from calendar import monthrange
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

from harness import (
    allowed_within, assert_allowed, assert_json, assert_out_of_charge, edge_profile_only, in_stream_order, key_slot)

TOKEN = "plan-Adm1n.token"
ADMIN = {"Authorization": "Bearer " + TOKEN}
DAY_MS = 86_400_000

# free: 3 a month / 3 a day; pro: 10 a month / 10 a day, and hourly 4 with a charge back every
# 3.6 s (2 a day otherwise); max: an unlimited month. `calls` is per subject but no plan sets it
# (it keeps next-charge's format); `shared` is global.
PLANS = """\
defaultPlan: free
plans:
  - id: free
    label: Free
    pools:
      monthly: { maxCharges: 3 }
      daily: { maxCharges: 3 }
  - id: pro
    label: Pro tier
    pools:
      monthly: { maxCharges: 10 }
      daily: { maxCharges: 10 }
      hourly: { maxCharges: 4, rechargeIntervalHours: 0.001 }
  - id: max
    pools:
      monthly: { maxCharges: unlimited }
pools:
  - id: monthly
    maxCharges: 3
    period: month
    per: subject
  - id: daily
    maxCharges: 3
    period: day
    per: subject
  - id: weekly
    maxCharges: 2
    period: week
    per: subject
  - id: calls
    maxCharges: 5
    rechargeIntervalHours: 24
    per: subject
  - id: shared
    maxCharges: 100
    rechargeIntervalHours: 24
  - id: hourly
    maxCharges: 2
    rechargeIntervalHours: 24
    per: subject
  - id: gday                 # a global pool with a period: the calendar day, for everybody
    maxCharges: 2
    period: day
routes:
  - prefix: /api/monthly
    pools: [monthly]
  - prefix: /api/daily
    pools: [daily]
  - prefix: /api/weekly
    pools: [weekly]
  - prefix: /api/calls
    pools: [calls]
  - prefix: /api/shared
    pools: [shared]
  - prefix: /api/both
    pools: [monthly, calls, shared]
  - prefix: /api/hourly
    pools: [hourly]
  - prefix: /api/gday
    pools: [gday]
"""

# The same pools and routes as an operator had them before plans and periods existed.
NO_PLANS = """\
pools:
  - id: calls
    maxCharges: 5
    rechargeIntervalHours: 24
    per: subject
  - id: shared
    maxCharges: 100
    rechargeIntervalHours: 24
routes:
  - prefix: /api/calls
    pools: [calls]
  - prefix: /api/shared
    pools: [shared]
"""

HTTP_EXTRA = """\
    # What a client paid for, from its API key (README "Plans and periods").
    map $http_x_api_key $cg_plan_by_key {
        default  "";
        key-pro  pro;
        key-free free;
        key-typo prro;
    }
"""

EXTRA = """\
        set $charge_gate_subject $http_x_user;
        set $charge_gate_plan $cg_plan_by_key;
"""

STATE_KEYS = ["id", "label", "group", "current", "max", "rechargeIntervalHours", "nextRechargeAt", "fullAt",
              "availableBalance", "usedBalance", "balanceLimit"]
PERIOD_KEYS = ["period", "periodStart", "resetsAt"]
NEXT_CHARGE = re.compile(r'^\{"current":(-?\d+),"lastUpdatedAt":(\d+)\}$')
WITH_MAX = re.compile(r'^\{"current":(-?\d+),"lastUpdatedAt":(\d+),"max":(-?\d+)\}$')
UNAUTHORIZED = b'{"error":"unauthorized"}'


# --------------------------------------------------------------------------------------------
# helpers


def settings(edge: int = 1, workers: int = 2, extra: str = "") -> str:
    return f'adminToken: "{TOKEN}"\nworkers: {workers}\nedgeDenySeconds: {edge}\neventsMaxLen: 10000\n' + extra


def plans_stack(make, edge: int = 1, body: str = PLANS, **kw):
    """The plans stack from `make`: make_stack (Redis) or any_store (each store)."""
    return make(body, settings=settings(edge, **kw), extra=EXTRA, http_extra=HTTP_EXTRA)


def as_(subject: str | None, key: str | None = None, **headers) -> dict:
    """Headers of a request by `subject` (X-User) with API key `key` (nginx's plan map)."""
    out = dict(headers)
    if subject is not None:
        out["X-User"] = subject
    if key is not None:
        out["X-Api-Key"] = key
    return out


def now_ms(s) -> int:
    """The store's clock: Redis TIME, or the system clock for the memory store."""
    return s.redis.client.now_ms() if s.redis else int(time.time() * 1000)


def h(text: str) -> str:
    """SafeToken's key form of a subject outside [A-Za-z0-9._:@-]{1,64}."""
    return "h:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_path(subject: str | None) -> str:
    return "/api/usage/plan" + ("" if subject is None else "?subject=" + quote(subject, safe=""))


def put_plan(s, subject, body, headers=ADMIN):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return s.request("PUT", plan_path(subject), headers={**headers, "Content-Type": "application/json"}, body=data)


def get_plan(s, subject, headers=ADMIN):
    return s.get(plan_path(subject), headers=headers)


def delete_plan(s, subject, headers=ADMIN):
    return s.request("DELETE", plan_path(subject), headers=headers)


def plan_answer(subject, plan, source, anchor=None) -> dict:
    return {"subject": subject, "plan": plan, "source": source, "periodAnchor": anchor}


def ordered(r):
    return json.loads(r.body, object_pairs_hook=lambda pairs: pairs)


def assert_plan_answer(r, subject, plan, source, anchor=None):
    assert r.status == 200, r
    assert_json(r)
    doc = ordered(r)
    assert [k for k, _ in doc] == ["subject", "plan", "source", "periodAnchor"], r
    assert dict(doc) == plan_answer(subject, plan, source, anchor), r


def usage_doc(s, subject, key=None, admin=False) -> dict:
    """GET /api/usage as `subject` (or, admin, ?subject=): the whole document, key order checked."""
    if admin:
        r = s.get("/api/usage?subject=" + quote(subject, safe=""), headers=ADMIN)
    else:
        r = s.get("/api/usage", headers=as_(subject, key))
    assert r.status == 200, r
    assert_json(r)
    doc = ordered(r)
    keys = [k for k, _ in doc]
    assert keys in (["pools"], ["plan", "pools"]), r
    out = {}
    if keys[0] == "plan":
        plan = doc[0][1]
        assert [k for k, _ in plan] == ["id", "label", "source"], r
        out["plan"] = dict(plan)
    pools = {}
    for pairs in dict(doc)["pools"]:
        d = dict(pairs)
        expected = (STATE_KEYS + (["owed"] if "owed" in d else []) + (PERIOD_KEYS if "period" in d else [])
                    + (["subject"] if "subject" in d else []))
        assert [k for k, _ in pairs] == expected, pairs
        pools[d["id"]] = d
    out["pools"] = pools
    return out


def pool_state(s, subject, pool, key=None) -> dict:
    return usage_doc(s, subject, key)["pools"][pool]


def ratelimit(r) -> tuple[str | None, str | None]:
    return r.header("RateLimit-Policy"), r.header("RateLimit")


def t_of(field: str) -> int:
    m = re.search(r";t=(\d+)$", field)
    assert m, field
    return int(m.group(1))


def utc_ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


def _days(y: int, m: int, d: int) -> int:
    return (date(y, m, d) - date(1970, 1, 1)).days


def anchored(kind: str, anchor: int, now: int) -> tuple[int, int]:
    """The anchored window containing `now` (epoch ms): day and week periods start at
    anchor + k lengths; month periods on the anchor's day of month (clamped to the month's last
    day) at its time of day."""
    if kind in ("day", "week"):
        length = DAY_MS if kind == "day" else 7 * DAY_MS
        start = anchor + (now - anchor) // length * length
        return start, start + length
    adays, tod = divmod(anchor, DAY_MS)
    aday = (date(1970, 1, 1) + timedelta(days=adays)).day
    today = date(1970, 1, 1) + timedelta(days=now // DAY_MS)

    def boundary(y: int, m: int) -> int:
        if m == 0:
            y, m = y - 1, 12
        if m == 13:
            y, m = y + 1, 1
        return _days(y, m, min(aday, monthrange(y, m)[1])) * DAY_MS + tod

    b = boundary(today.year, today.month)
    if now >= b:
        return b, boundary(today.year, today.month + 1)
    return boundary(today.year, today.month - 1), b


def calendar(now: int) -> dict[str, tuple[int, int]]:
    """The calendar UTC windows containing `now` (epoch ms): day, Monday week, month."""
    dt = datetime.fromtimestamp(now / 1000, tz=timezone.utc)
    day0 = datetime(dt.year, dt.month, dt.day, tzinfo=timezone.utc)
    week0 = day0 - timedelta(days=dt.weekday())
    month0 = datetime(dt.year, dt.month, 1, tzinfo=timezone.utc)
    month1 = datetime(dt.year + (dt.month == 12), dt.month % 12 + 1, 1, tzinfo=timezone.utc)
    return {
        "day": (utc_ms(day0), utc_ms(day0 + timedelta(days=1))),
        "week": (utc_ms(week0), utc_ms(week0 + timedelta(days=7))),
        "month": (utc_ms(month0), utc_ms(month1)),
    }


def edge_entries(s, uri_prefix: str) -> list[dict]:
    time.sleep(0.1)  # the access log line is written after the answer
    return [e for e in s.edge_log() if e["request_uri"].startswith(uri_prefix)]


def log_lines(s, text: str) -> list[str]:
    return [line for line in s.responder.log_text().splitlines() if text in line]


def raw_events(s) -> list[dict]:
    """Every event of GET /api/usage/events (admin), in order, following `next`."""
    out, after = [], None
    for _ in range(1000):
        r = s.get("/api/usage/events?limit=1000" + (f"&after={after}" if after else ""), headers=ADMIN)
        assert r.status == 200, r
        assert_json(r)
        doc = r.json()
        out += doc["events"]
        after = doc["next"]
        if after is None:
            return out
    raise AssertionError("the events never ended")


def redis_value(s, key: str):
    """The raw bucket `key` (`POOL` or `POOL:SUBJECT`) in the stack's key layout."""
    return s.key(key)


def pttl(s, key: str) -> int:
    return s.redis.client.command("PTTL", s.keys.named(key))


# --------------------------------------------------------------------------------------------
# 1. an anchored daily period


def test_an_anchored_daily_period_ends_exactly_at_its_boundary(any_store):
    """The subject's period started 1 day - 4 s ago (periodAnchor): 3 spends, then a 429 whose
    retryAfterMs is exactly the time left to the boundary, then a full pool after it."""
    s = plans_stack(any_store)
    anchor = now_ms(s) - DAY_MS + 4000
    boundary = anchor + DAY_MS
    assert_plan_answer(put_plan(s, "ann", {"plan": "free", "periodAnchor": anchor}), "ann", "free", "stored", anchor)
    assert_plan_answer(get_plan(s, "ann"), "ann", "free", "stored", anchor)

    for i in range(3):
        before = now_ms(s)
        r = s.get("/api/daily/x", headers=as_("ann"))
        after = now_ms(s)
        assert_allowed(r, "GET", "/api/daily/x")
        policy, state = ratelimit(r)
        assert policy == '"daily";q=3;w=86400', r          # the period's length, not a refill time
        assert state.startswith(f'"daily";r={2 - i};t='), r
        assert -(-(boundary - after) // 1000) <= t_of(state) <= -(-(boundary - before) // 1000), (state, boundary - before)

    before = now_ms(s)
    r = s.get("/api/daily/x", headers=as_("ann"))
    after = now_ms(s)
    wait = assert_out_of_charge(r, "daily")                 # also Retry-After == ceil(wait / 1000)
    assert boundary - after - 50 <= wait <= boundary - before + 50, (wait, boundary - before, boundary - after)
    assert 0 < wait < 4000, wait
    policy, state = ratelimit(r)
    assert policy == '"daily";q=3;w=86400', r
    assert state == f'"daily";r=0;t={-(-wait // 1000)}', r

    doc = usage_doc(s, "ann")
    assert doc["plan"] == {"id": "free", "label": "Free", "source": "stored"}
    assert doc["pools"]["daily"] == {
        "id": "daily", "label": "daily", "group": "", "current": 0, "max": 3, "rechargeIntervalHours": None,
        "nextRechargeAt": boundary, "fullAt": boundary, "availableBalance": 0, "usedBalance": 3, "balanceLimit": 3,
        "period": "day", "periodStart": anchor, "resetsAt": boundary, "subject": "ann"}
    # another subject without an anchor is on the calendar day, full
    cal = calendar(now_ms(s))["day"]
    other = pool_state(s, "bea", "daily")
    assert (other["current"], other["periodStart"], other["resetsAt"]) == (3, cal[0], cal[1]), other
    assert other["nextRechargeAt"] is None and other["fullAt"] is None, other
    if s.redis:
        # the key lives to the period's end
        ttl = pttl(s, "daily:ann")
        left = boundary - now_ms(s)
        assert abs(ttl - left) <= 50, (ttl, left)

    # still denied just before the boundary (no charge comes back during a period) ...
    time.sleep(max(0.0, (boundary - now_ms(s) - 400) / 1000))
    assert_out_of_charge(s.get("/api/daily/x", headers=as_("ann")), "daily")
    # ... and the whole allowance is back right after it
    time.sleep(max(0.0, (boundary - now_ms(s) + 120) / 1000))
    for i in range(3):
        assert_allowed(s.get("/api/daily/x", headers=as_("ann")), "GET", "/api/daily/x")
    st = pool_state(s, "ann", "daily")
    assert (st["current"], st["periodStart"], st["resetsAt"]) == (0, boundary, boundary + DAY_MS), st
    assert_out_of_charge(s.get("/api/daily/x", headers=as_("ann")), "daily")
    assert len(s.app_hits_settled(6)) == 6


# --------------------------------------------------------------------------------------------
# 2. calendar periods


def test_calendar_periods_are_utc_day_monday_week_and_month(any_store):
    s = plans_stack(any_store)
    for _ in range(5):
        before = now_ms(s)
        doc = usage_doc(s, "cal")
        after = now_ms(s)
        if calendar(before) == calendar(after):
            break
    else:
        raise AssertionError("a period boundary at every try")
    cal = calendar(before)
    for pool, period, cap in [("daily", "day", 3), ("weekly", "week", 2), ("monthly", "month", 3)]:
        st = doc["pools"][pool]
        assert (st["period"], st["periodStart"], st["resetsAt"]) == (period, *cal[period]), st
        assert (st["current"], st["max"], st["rechargeIntervalHours"]) == (cap, cap, None), st
        assert st["nextRechargeAt"] is None and st["fullAt"] is None, st   # full
    assert doc["plan"] == {"id": "free", "label": "Free", "source": "default"}
    # pools without a period carry no period fields
    assert "period" not in doc["pools"]["calls"] and "period" not in doc["pools"]["shared"]
    assert doc["pools"]["calls"]["rechargeIntervalHours"] == 24

    # after a spend: the same window, resetsAt as next charge and full time
    assert_allowed(s.get("/api/weekly/a", headers=as_("cal")), "GET", "/api/weekly/a")
    now = now_ms(s)
    st = pool_state(s, "cal", "weekly")
    cal = calendar(now)
    assert (st["current"], st["periodStart"], st["resetsAt"]) == (1, *cal["week"]), st
    assert st["nextRechargeAt"] == st["fullAt"] == cal["week"][1], st
    # the week starts on a Monday at 00:00 UTC
    start = datetime.fromtimestamp(cal["week"][0] / 1000, tz=timezone.utc)
    assert start.weekday() == 0 and (start.hour, start.minute, start.second) == (0, 0, 0)
    assert_allowed(s.get("/api/weekly/a", headers=as_("cal")), "GET", "/api/weekly/a")
    before = now_ms(s)
    r = s.get("/api/weekly/a", headers=as_("cal"))
    after = now_ms(s)
    wait = assert_out_of_charge(r, "weekly")
    assert cal["week"][1] - after - 50 <= wait <= cal["week"][1] - before + 50, wait
    assert r.header("RateLimit-Policy") == '"weekly";q=2;w=604800', r
    # the month's length in seconds is this month's
    r = s.get("/api/monthly/a", headers=as_("cal"))
    assert_allowed(r, "GET", "/api/monthly/a")
    month = calendar(now_ms(s))["month"]
    assert r.header("RateLimit-Policy") == f'"monthly";q=3;w={(month[1] - month[0]) // 1000}', r
    if s.redis:
        ttl = pttl(s, "weekly:cal")
        assert abs(ttl - (cal["week"][1] - now_ms(s))) <= 50, ttl

    # a global period pool: one calendar day for everybody (a stored anchor does not move it)
    put_plan(s, "cal2", {"plan": "pro", "periodAnchor": now_ms(s) - 3600_000})
    assert_allowed(s.get("/api/gday/a", headers=as_("cal")), "GET", "/api/gday/a")
    assert_allowed(s.get("/api/gday/a", headers=as_("cal2")), "GET", "/api/gday/a")
    before = now_ms(s)
    wait = assert_out_of_charge(s.get("/api/gday/a", headers=as_("cal3")), "gday")
    day_end = calendar(before)["day"][1]
    assert day_end - now_ms(s) - 50 <= wait <= day_end - before + 50, wait
    st = pool_state(s, "cal2", "gday")
    assert (st["current"], st["periodStart"], st["resetsAt"]) == (0, *calendar(before)["day"]), st
    assert "subject" not in st
    if s.redis:
        m = NEXT_CHARGE.match(redis_value(s, "gday"))     # no plan sets it: next-charge's format
        assert m and int(m.group(1)) == 0, redis_value(s, "gday")


def iso_ms(text: str) -> int:
    return utc_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def test_anchored_periods_follow_the_anchors_day_and_time(any_store):
    """For many anchors: the usage window (periodStart/resetsAt) and the wait of a denial (the
    store's own period math: the Lua script on Redis) both equal the window computed here (docs/config.md),
    month anchors clamped to the month's last day (31st -> 30th/28th/29th)."""
    s = plans_stack(any_store, edge=0)
    now = now_ms(s)
    today = datetime.fromtimestamp(now / 1000, tz=timezone.utc)
    tod_now = now % DAY_MS
    this_day = _days(today.year, today.month, today.day) * DAY_MS
    month_anchors = [
        iso_ms("2025-01-31T13:45:10.123Z"),     # the 31st: clamped in short months
        iso_ms("2024-02-29T00:00:00Z"),         # a leap day
        iso_ms("2023-05-30T23:59:59.999Z"),
        iso_ms("2020-08-01T00:00:00.001Z"),
        iso_ms("2025-03-29T06:00:00Z"),
        iso_ms("2100-03-31T06:30:00Z"),         # in the future
        this_day + 3 * DAY_MS + 1234,           # in three days
        0,
    ]
    # today's day of month in an earlier year, an hour before and after now's time of day
    # (periods that started an hour ago, or end in an hour)
    for delta in (-3600_000, 3600_000):
        if 0 <= tod_now + delta < DAY_MS:
            year = next(y for y in range(2019, 2010, -1) if today.day <= monthrange(y, today.month)[1])
            month_anchors.append(iso_ms(f"{year}-{today.month:02d}-{today.day:02d}T00:00:00Z") + tod_now + delta)
    cases = [("monthly", "month", a, 3) for a in month_anchors]
    cases += [("daily", "day", a, 3) for a in (now - 5 * DAY_MS - 7777, now + 3 * DAY_MS + 60_000, 12345)]
    cases += [("weekly", "week", a, 2) for a in (iso_ms("2026-01-01T09:15:00Z"), now - 3 * 7 * DAY_MS + 1000, now + 10 * DAY_MS)]

    for n, (pool, kind, anchor, cap) in enumerate(cases):
        subject = f"anc{n}"
        assert_plan_answer(put_plan(s, subject, {"plan": "free", "periodAnchor": anchor}), subject, "free", "stored", anchor)
        before = now_ms(s)
        st = pool_state(s, subject, pool)
        after = now_ms(s)
        expected = anchored(kind, anchor, before)
        assert anchored(kind, anchor, after) == expected, "a boundary passed during the test"
        assert (st["period"], st["periodStart"], st["resetsAt"]) == (kind, *expected), (pool, anchor, st, expected)
        for _ in range(cap):
            assert_allowed(s.get(f"/api/{pool}/a", headers=as_(subject)), "GET", f"/api/{pool}/a")
        before = now_ms(s)
        r = s.get(f"/api/{pool}/a", headers=as_(subject))
        after = now_ms(s)
        wait = assert_out_of_charge(r, pool)
        assert expected[1] - after - 50 <= wait <= expected[1] - before + 50, (pool, anchor, wait, expected[1] - before)
        assert r.header("RateLimit-Policy") == f'"{pool}";q={cap};w={(expected[1] - expected[0]) // 1000}', (anchor, r)
        if s.redis:
            ttl = pttl(s, f"{pool}:{subject}")
            assert abs(ttl - (expected[1] - now_ms(s))) <= 100, (pool, anchor, ttl)

    # a plan stored again without an anchor: back to the calendar
    put_plan(s, "anc0", {"plan": "free"})
    cal = calendar(now_ms(s))["month"]
    st = pool_state(s, "anc0", "monthly")
    assert (st["periodStart"], st["resetsAt"]) == cal, st


# --------------------------------------------------------------------------------------------
# 3. changing plan mid-period


def test_upgrade_and_downgrade_mid_period_keep_what_was_used(any_store):
    s = plans_stack(any_store, edge=0)
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/u", headers=as_("up")), "GET", "/api/monthly/u")
    # several denials: every worker's memory deny cache holds one
    for _ in range(6):
        assert_out_of_charge(s.get("/api/monthly/u", headers=as_("up")), "monthly")
    r = s.get("/api/usage/check?pools=monthly", headers=as_("up"))
    assert r.status == 200 and r.json() == {"ok": False, "pools": [{"id": "monthly", "available": False}]}, r

    assert_plan_answer(put_plan(s, "up", {"plan": "pro"}), "up", "pro", "stored")
    r = s.get("/api/usage/check?pools=monthly", headers=as_("up"))
    assert r.status == 200 and r.json() == {"ok": True, "pools": [{"id": "monthly", "available": True}]}, r
    # the upgrade applies from the very next request: 10 - 3 used - 1
    r = s.get("/api/monthly/u", headers=as_("up"))
    assert_allowed(r, "GET", "/api/monthly/u")
    assert r.header("RateLimit-Policy").startswith('"monthly";q=10;w='), r
    assert r.header("RateLimit").startswith('"monthly";r=6;t='), r
    doc = usage_doc(s, "up")
    assert doc["plan"] == {"id": "pro", "label": "Pro tier", "source": "stored"}
    st = doc["pools"]["monthly"]
    assert (st["current"], st["max"], st["usedBalance"], st["balanceLimit"]) == (6, 10, 4, 10), st
    if s.redis:
        m = WITH_MAX.match(redis_value(s, "monthly:up"))
        assert m and (int(m.group(1)), int(m.group(3))) == (6, 10), redis_value(s, "monthly:up")

    # downgrade below what was used: 0 available and 1 owed, denied until the period ends
    assert_plan_answer(put_plan(s, "up", {"plan": "free"}), "up", "free", "stored")
    wait = assert_out_of_charge(s.get("/api/monthly/u", headers=as_("up")), "monthly")
    resets = calendar(now_ms(s))["month"][1]
    assert abs(wait - (resets - now_ms(s))) <= 1000, wait
    doc = usage_doc(s, "up")
    st = doc["pools"]["monthly"]
    assert (st["current"], st["max"], st["availableBalance"], st["usedBalance"], st["owed"]) == (0, 3, 0, 3, 1), st
    assert doc["plan"]["source"] == "stored" and doc["plan"]["id"] == "free"

    # back to pro: what was used (4) still counts
    put_plan(s, "up", {"plan": "pro"})
    assert pool_state(s, "up", "monthly")["current"] == 6

    # DELETE: the default plan again (free: 0 left)
    assert_plan_answer(delete_plan(s, "up"), "up", "free", "default")
    assert_plan_answer(get_plan(s, "up"), "up", "free", "default")
    assert usage_doc(s, "up")["plan"] == {"id": "free", "label": "Free", "source": "default"}
    assert pool_state(s, "up", "monthly")["current"] == 0
    assert_out_of_charge(s.get("/api/monthly/u", headers=as_("up")), "monthly")
    if s.redis:
        assert s.redis.client.command("EXISTS", s.keys.plan("up")) == 0
    assert len(s.app_hits_settled(4)) == 4


def test_an_unlimited_plan_meters_and_a_downgrade_counts_its_use(any_store):
    s = plans_stack(any_store, edge=0)
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/m", headers=as_("um")), "GET", "/api/monthly/m")
    assert_out_of_charge(s.get("/api/monthly/m", headers=as_("um")), "monthly")
    assert_plan_answer(put_plan(s, "um", {"plan": "max"}), "um", "max", "stored")
    for _ in range(5):
        r = s.get("/api/monthly/m", headers=as_("um"))
        assert_allowed(r, "GET", "/api/monthly/m")
        assert r.header("RateLimit-Policy") is None, r        # unlimited pools are not listed
    doc = usage_doc(s, "um")
    assert doc["plan"] == {"id": "max", "label": "max", "source": "stored"}
    st = doc["pools"]["monthly"]
    assert (st["current"], st["max"], st["availableBalance"], st["usedBalance"], st["balanceLimit"]) == \
        (None, None, None, 8, None), st
    assert st["period"] == "month" and (st["periodStart"], st["resetsAt"]) == calendar(now_ms(s))["month"], st
    if s.redis:
        m = WITH_MAX.match(redis_value(s, "monthly:um"))
        assert m and (int(m.group(1)), int(m.group(3))) == (8, -1), redis_value(s, "monthly:um")
    # pro: 10 - 8 used
    put_plan(s, "um", {"plan": "pro"})
    assert pool_state(s, "um", "monthly")["current"] == 2
    for _ in range(2):
        assert_allowed(s.get("/api/monthly/m", headers=as_("um")), "GET", "/api/monthly/m")
    assert_out_of_charge(s.get("/api/monthly/m", headers=as_("um")), "monthly")
    # free: used 10 > 3: 0
    put_plan(s, "um", {"plan": "free"})
    assert pool_state(s, "um", "monthly")["current"] == 0
    assert_out_of_charge(s.get("/api/monthly/m", headers=as_("um")), "monthly")
    # back to max: the count goes on from what was used (10)
    put_plan(s, "um", {"plan": "max"})
    assert pool_state(s, "um", "monthly")["usedBalance"] == 10
    assert len(s.app_hits_settled(10)) == 10


def test_a_plan_sets_a_recharging_pools_cap_and_interval(any_store):
    """hourly: 2 a day by the pool's own settings (free does not list it); pro: 4, one back
    every 3.6 s. The upgrade brings pro's cap and interval at once."""
    s = plans_stack(any_store, edge=0)
    for _ in range(2):
        r = s.get("/api/hourly/h", headers=as_("hr"))
        assert_allowed(r, "GET", "/api/hourly/h")
        assert r.header("RateLimit-Policy") == '"hourly";q=2;w=172800', r
    wait = assert_out_of_charge(s.get("/api/hourly/h", headers=as_("hr")), "hourly")
    assert wait > 23 * 3600_000, wait
    st = pool_state(s, "hr", "hourly")
    assert (st["current"], st["max"], st["rechargeIntervalHours"]) == (0, 2, 24), st
    put_plan(s, "hr", {"plan": "pro"})
    st = pool_state(s, "hr", "hourly")
    assert (st["max"], st["rechargeIntervalHours"]) == (4, 0.001), st
    assert st["current"] in (2, 3), st        # 4 - 2 used (+1 when 3.6 s have passed)
    r = s.get("/api/hourly/h", headers=as_("hr"))
    assert_allowed(r, "GET", "/api/hourly/h")
    assert r.header("RateLimit-Policy") == '"hourly";q=4;w=15', r
    for _ in range(4):
        r = s.get("/api/hourly/h", headers=as_("hr"))
        if r.status == 429:
            break
        assert_allowed(r, "GET", "/api/hourly/h")
    wait = assert_out_of_charge(r, "hourly")
    assert wait <= 3600, wait                  # pro's interval, not the pool's day
    time.sleep(wait / 1000 + 0.05)
    assert_allowed(s.get("/api/hourly/h", headers=as_("hr")), "GET", "/api/hourly/h")
    if s.redis:
        m = WITH_MAX.match(redis_value(s, "hourly:hr"))
        assert m and int(m.group(3)) == 4, redis_value(s, "hourly:hr")


def test_a_top_off_fills_to_the_subjects_plan(any_store):
    s = plans_stack(any_store, edge=0)
    put_plan(s, "tp", {"plan": "pro"})
    for _ in range(4):
        assert_allowed(s.get("/api/monthly/t", headers=as_("tp")), "GET", "/api/monthly/t")

    def topoff(body):
        r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"}, body=json.dumps(body).encode())
        assert r.status == 200, r
        return r.json()

    st = topoff({"poolId": "monthly", "subject": "tp", "amount": 1})
    assert (st["current"], st["max"], st["period"]) == (7, 10, "month"), st
    assert pool_state(s, "tp", "monthly")["current"] == 7
    if s.redis:
        m = WITH_MAX.match(redis_value(s, "monthly:tp"))
        assert m and (int(m.group(1)), int(m.group(3))) == (7, 10), redis_value(s, "monthly:tp")
    st = topoff({"poolId": "monthly", "subject": "tp"})
    assert (st["current"], st["max"]) == (10, 10), st
    for _ in range(10):
        assert_allowed(s.get("/api/monthly/t", headers=as_("tp")), "GET", "/api/monthly/t")
    assert_out_of_charge(s.get("/api/monthly/t", headers=as_("tp")), "monthly")
    # a subject on the default plan: filled to free's 3
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/t", headers=as_("tq")), "GET", "/api/monthly/t")
    st = topoff({"poolId": "monthly", "subject": "tq"})
    assert (st["current"], st["max"]) == (3, 3), st
    # an unlimited plan: nothing to top off
    put_plan(s, "tq", {"plan": "max"})
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"},
               body=b'{"poolId":"monthly","subject":"tq"}')
    assert r.status == 400 and r.json()["error"] == "bad_request", r


def test_a_top_off_never_grants_more_than_its_amount_under_nginxs_plan(make_stack):
    """A subject whose plan comes from nginx (nothing stored) has 1 of pro's 10 left; a top-off
    of 1 must leave it 2 under that plan ("an amount adds, capped at max"), never more.
    The top-off endpoint cannot know nginx's plan for the subject, so it rebases the bucket to
    the default plan (used 9 > 3: 0, +1 = 1 of 3, written with "max":3); the next request
    under pro then reads used = 3 - 1 = 2, available 8: the top-off of 1 granted 7."""
    s = plans_stack(make_stack, edge=0)
    for _ in range(9):
        assert_allowed(s.get("/api/monthly/g", headers=as_("gn", "key-pro")), "GET", "/api/monthly/g")
    assert pool_state(s, "gn", "monthly", "key-pro")["current"] == 1
    r = s.post("/api/usage/topoff", headers={**ADMIN, "Content-Type": "application/json"},
               body=b'{"poolId":"monthly","subject":"gn","amount":1}')
    assert r.status == 200, r
    after = pool_state(s, "gn", "monthly", "key-pro")["current"]
    assert after == 2, f"a top-off of 1 took the subject under nginx's pro plan from 1 to {after}"


# The review's flap: free 2, pro 10, a charge back every 3.6 s under both.
FLAP = """\
defaultPlan: free
plans:
  - id: free
  - id: pro
    pools:
      api: { maxCharges: 10 }
pools:
  - id: api
    maxCharges: 2
    rechargeIntervalHours: 0.001
    per: subject
routes:
  - prefix: /api/flap
    pools: [api]
"""
FLAP_INTERVAL_MS = 3600


def test_a_plan_flap_gives_nothing_back(any_store):
    """Pro used up, free for one refill, pro again: only the refills earned since the pool was
    used up, as if the subject had stayed on pro (before the fix: the refill passed under free,
    which wrote the clamped balance with free's cap, and pro then had 8 more)."""
    s = plans_stack(any_store, edge=0, body=FLAP)
    assert_plan_answer(put_plan(s, "fl", {"plan": "pro"}), "fl", "pro", "stored")
    before = now_ms(s)
    for _ in range(10):
        assert_allowed(s.get("/api/flap/x", headers=as_("fl")), "GET", "/api/flap/x")
    after = now_ms(s)
    assert after - before < FLAP_INTERVAL_MS, "the 10 requests took longer than a refill"
    assert_out_of_charge(s.get("/api/flap/x", headers=as_("fl")), "api")

    # free, one refill later: what pro used beyond free's 2 is still owed (8 - 1)
    assert_plan_answer(put_plan(s, "fl", {"plan": "free"}), "fl", "free", "stored")
    time.sleep(max(0, after + FLAP_INTERVAL_MS - now_ms(s)) / 1000 + 0.2)
    r = s.get("/api/flap/x", headers=as_("fl"))
    assert now_ms(s) < before + 2 * FLAP_INTERVAL_MS, "too slow: a second refill came"
    wait = assert_out_of_charge(r, "api")
    assert 7 * FLAP_INTERVAL_MS < wait <= 8 * FLAP_INTERVAL_MS, wait
    st = pool_state(s, "fl", "api")
    assert (st["current"], st["max"], st["usedBalance"]) == (0, 2, 2), st
    if s.redis:
        m = WITH_MAX.match(redis_value(s, "api:fl"))          # nothing written while owed
        assert m and (int(m.group(1)), int(m.group(3))) == (0, 10), redis_value(s, "api:fl")

    # pro again: the refills since it was used up, and nothing more
    assert_plan_answer(put_plan(s, "fl", {"plan": "pro"}), "fl", "pro", "stored")
    start = now_ms(s)
    allowed = 0
    for _ in range(12):
        r = s.get("/api/flap/x", headers=as_("fl"))
        if r.status == 429:
            break
        assert_allowed(r, "GET", "/api/flap/x")
        allowed += 1
    end = now_ms(s)
    assert_out_of_charge(r, "api")
    assert (start - after) // FLAP_INTERVAL_MS <= allowed <= (end - before) // FLAP_INTERVAL_MS, (allowed, start, end)
    assert allowed < 8, f"the flap gave back {allowed} charges"
    assert len(s.app_hits_settled(10 + allowed)) == 10 + allowed


# --------------------------------------------------------------------------------------------
# 4. the plan nginx names


def test_the_plan_nginx_names_sets_the_allowance(any_store):
    s = plans_stack(any_store, edge=0)
    # key-pro: pro's 10
    for i in range(10):
        assert_allowed(s.get("/api/monthly/n", headers=as_("kp", "key-pro")), "GET", "/api/monthly/n")
    assert_out_of_charge(s.get("/api/monthly/n", headers=as_("kp", "key-pro")), "monthly")
    doc = usage_doc(s, "kp", "key-pro")
    assert doc["plan"] == {"id": "pro", "label": "Pro tier", "source": "nginx"}
    assert (doc["pools"]["monthly"]["current"], doc["pools"]["monthly"]["max"]) == (0, 10)
    # the same subject asking without the key sees the default plan's view of its use
    doc = usage_doc(s, "kp")
    assert doc["plan"] == {"id": "free", "label": "Free", "source": "default"}
    assert (doc["pools"]["monthly"]["current"], doc["pools"]["monthly"]["max"]) == (0, 3)

    # key-typo maps to "prro", not a plan: the default plan (3), and an error line in the log
    assert log_lines(s, "unknown plan") == []
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/n", headers=as_("kt", "key-typo")), "GET", "/api/monthly/n")
    assert_out_of_charge(s.get("/api/monthly/n", headers=as_("kt", "key-typo")), "monthly")
    lines = log_lines(s, "unknown plan")
    assert len(lines) >= 1, s.responder.log_tail()
    assert all("unknownNginxPlan" in line and "prro" in line for line in lines), lines
    assert all("default plan applies" in line for line in lines), lines
    doc = usage_doc(s, "kt", "key-typo")
    assert doc["plan"] == {"id": "free", "label": "Free", "source": "default"}
    assert doc["pools"]["monthly"]["max"] == 3

    # key-free names free explicitly
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/n", headers=as_("kf", "key-free")), "GET", "/api/monthly/n")
    assert_out_of_charge(s.get("/api/monthly/n", headers=as_("kf", "key-free")), "monthly")
    assert usage_doc(s, "kf", "key-free")["plan"] == {"id": "free", "label": "Free", "source": "nginx"}

    # a stored plan wins over nginx's
    assert_plan_answer(put_plan(s, "ks", {"plan": "free"}), "ks", "free", "stored")
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/n", headers=as_("ks", "key-pro")), "GET", "/api/monthly/n")
    assert_out_of_charge(s.get("/api/monthly/n", headers=as_("ks", "key-pro")), "monthly")
    assert usage_doc(s, "ks", "key-pro")["plan"] == {"id": "free", "label": "Free", "source": "stored"}

    # GET /api/usage/plan through nginx: the source as the request comes
    assert_plan_answer(get_plan(s, "kp", {**ADMIN, "X-Api-Key": "key-pro"}), "kp", "pro", "nginx")
    assert_plan_answer(get_plan(s, "kp"), "kp", "free", "default")
    assert_plan_answer(get_plan(s, "kp", {**ADMIN, "X-Api-Key": "key-typo"}), "kp", "free", "default")
    assert_plan_answer(get_plan(s, "ks", {**ADMIN, "X-Api-Key": "key-pro"}), "ks", "free", "stored")
    # DELETE falls back to nginx's plan when the request names one
    assert_plan_answer(delete_plan(s, "ks", {**ADMIN, "X-Api-Key": "key-pro"}), "ks", "pro", "nginx")
    # ks used 3: under pro, 7 left
    assert_allowed(s.get("/api/monthly/n", headers=as_("ks", "key-pro")), "GET", "/api/monthly/n")
    assert pool_state(s, "ks", "monthly", "key-pro")["current"] == 6
    assert len(s.app_hits_settled(10 + 3 + 3 + 3 + 1)) == 20


# --------------------------------------------------------------------------------------------
# 5. the deny caches and a plan change


@edge_profile_only()
def test_a_plan_change_beats_the_deny_caches(make_stack):
    s = plans_stack(make_stack, edge=1)
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/d", headers=as_("dc")), "GET", "/api/monthly/d")
    used = 3

    # A burst of free denials (nginx stores the second, answers the next from its cache), then
    # the same subject under nginx's pro plan (its own cache key: allowed at once, 10 - used),
    # then a free denial again, answered from the cache: the free denial was cached meanwhile.
    for attempt in range(5):
        n0 = len(edge_entries(s, "/api/monthly/d"))
        for _ in range(4):
            assert_out_of_charge(s.get("/api/monthly/d", headers=as_("dc")), "monthly")
        r = s.get("/api/monthly/d", headers=as_("dc", "key-pro"))
        assert_allowed(r, "GET", "/api/monthly/d")
        used += 1
        assert r.header("RateLimit").startswith(f'"monthly";r={10 - used};'), r
        assert_out_of_charge(s.get("/api/monthly/d", headers=as_("dc")), "monthly")
        entries = edge_entries(s, "/api/monthly/d")[n0:]
        assert [e["status"] for e in entries] == [429] * 4 + [200, 429], entries
        assert entries[4]["cache"] != "HIT", entries
        if entries[5]["cache"] == "HIT" and "HIT" in [e["cache"] for e in entries[:4]]:
            break
    else:
        raise AssertionError("nginx never held the free denial around the pro request: %r" % entries)

    # an upgrade through the admin API while nginx holds the free denial: allowed within
    # edgeDenySeconds, never later
    for _ in range(3):
        assert_out_of_charge(s.get("/api/monthly/d", headers=as_("dc")), "monthly")
    assert_plan_answer(put_plan(s, "dc", {"plan": "pro"}), "dc", "pro", "stored")
    r = allowed_within(lambda: s.get("/api/monthly/d", headers=as_("dc")), "monthly", 1.25,
                       "a cached denial outlived edgeDenySeconds after a plan change")
    assert_allowed(r, "GET", "/api/monthly/d")
    used += 1
    assert pool_state(s, "dc", "monthly")["current"] == 10 - used
    # a downgrade is seen at once (the store decides; nothing allowed is ever cached)
    put_plan(s, "dc", {"plan": "free"})
    assert_out_of_charge(s.get("/api/monthly/d", headers=as_("dc")), "monthly")


def test_a_plan_stored_by_another_node_shows_within_the_memory_caches_age(make_stack):
    """A plan record written to the store elsewhere (the CLI, another node's admin API) does
    not clear this responder's memory deny cache: it shows within its max age (1 s). nginx's
    cache is off here, so only the memory cache is in the way."""
    s = plans_stack(make_stack, edge=0, workers=1)
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/c", headers=as_("far")), "GET", "/api/monthly/c")
    for _ in range(5):
        assert_out_of_charge(s.get("/api/monthly/c", headers=as_("far")), "monthly")
    s.redis.client.command("SET", s.keys.plan("far"), '{"plan":"pro"}')
    allowed_within(lambda: s.get("/api/monthly/c", headers=as_("far")), "monthly", 1.2,
                   "a memory-cached denial outlived its 1 s max age")
    assert pool_state(s, "far", "monthly")["current"] == 6
    assert usage_doc(s, "far")["plan"] == {"id": "pro", "label": "Pro tier", "source": "stored"}


# --------------------------------------------------------------------------------------------
# 6. the admin API's refusals


def test_plan_admin_api_refuses_bad_requests_and_writes_nothing(any_store):
    s = plans_stack(any_store)
    # auth
    for headers in [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer " + TOKEN + "x"},
                    {"Authorization": TOKEN}, {"Authorization": "Basic " + TOKEN}]:
        for r in [put_plan(s, "z", {"plan": "pro"}, headers=headers), get_plan(s, "z", headers=headers),
                  delete_plan(s, "z", headers=headers)]:
            assert r.status == 401, (headers, r)
            assert_json(r)
            assert r.body == UNAUTHORIZED, r

    def refused(r, error):
        assert r.status == 400, r
        assert_json(r)
        doc = r.json()
        assert list(doc) == ["error", "message"] and doc["error"] == error and doc["message"], r

    refused(put_plan(s, "z", {"plan": "platinum"}), "unknown_plan")
    refused(put_plan(s, "z", {"plan": ""}), "unknown_plan")
    refused(put_plan(s, "z", {"plan": "Pro"}), "unknown_plan")
    bad_paths = ["/api/usage/plan", "/api/usage/plan?subject=", "/api/usage/plan?subject=a&subject=b",
                 "/api/usage/plan?subjects=z", "/api/usage/plan?subject=" + "x" * 1025]
    for path in bad_paths:
        for method in ["PUT", "GET", "DELETE"]:
            r = s.request(method, path, headers={**ADMIN, "Content-Type": "application/json"},
                          body=b'{"plan":"pro"}' if method == "PUT" else None)
            refused(r, "bad_request")
    bodies = [b"", b"{", b"not json", b"null", b"[]", b'"pro"', b"{}", b'{"plan":5}', b'{"plan":null}',
              b'{"plan":["pro"]}', b'{"plan":"pro","extra":1}', b'{"plan":"pro","periodanchor":1}',
              b'{"plan":"pro","periodAnchor":-1}', b'{"plan":"pro","periodAnchor":1.5}',
              b'{"plan":"pro","periodAnchor":"1764547200000"}', b'{"plan":"pro","periodAnchor":9007199254740992}',
              b'{"plan":"pro","periodAnchor":1e30}', b'{"plan":"pro","periodAnchor":true}']
    for body in bodies:
        refused(put_plan(s, "z", body), "bad_request")
    r = s.post(plan_path("z"), headers={**ADMIN, "Content-Type": "application/json"}, body=b'{"plan":"pro"}')
    assert r.status == 405, r
    allow = r.header("Allow") or ""
    assert "PUT" in allow and "POST" not in allow, r
    # nothing was stored
    assert_plan_answer(get_plan(s, "z"), "z", "free", "default")
    assert_plan_answer(get_plan(s, "a"), "a", "free", "default")
    if s.redis:
        assert [k for k in s.redis_keys() if "#plan" in k] == []
    # the edges that are allowed: anchor 0 and 2^53 - 1, a 1024-byte subject (hashed)
    assert_plan_answer(put_plan(s, "z", {"plan": "pro", "periodAnchor": 0}), "z", "pro", "stored", 0)
    assert_plan_answer(put_plan(s, "z", {"plan": "pro", "periodAnchor": 2**53 - 1}), "z", "pro", "stored", 2**53 - 1)
    assert_plan_answer(put_plan(s, "y" * 1024, {"plan": "pro"}), h("y" * 1024), "pro", "stored")
    # a bad request leaves what was stored as it was
    refused(put_plan(s, "z", {"plan": "pro", "periodAnchor": -5}), "bad_request")
    refused(put_plan(s, "z", {"plan": "gold"}), "unknown_plan")
    assert_plan_answer(get_plan(s, "z"), "z", "pro", "stored", 2**53 - 1)
    # a subject with an anchor far in the future still answers (never a 500)
    r = s.get("/api/monthly/x", headers=as_("z"))
    assert r.status in (200, 429), r
    assert s.get("/api/usage", headers=as_("z")).status == 200
    assert "500" not in {str(e["status"]) for e in s.edge_log()}


def test_plan_admin_api_is_off_without_admin_token(make_stack):
    s = make_stack(PLANS, settings="workers: 2\n", extra=EXTRA, http_extra=HTTP_EXTRA)
    for r in [put_plan(s, "z", {"plan": "pro"}), get_plan(s, "z"), delete_plan(s, "z")]:
        assert r.status == 403, r
        assert_json(r)
        assert r.json()["error"] == "forbidden", r
    assert [k for k in s.redis_keys() if "#plan" in k] == []


# --------------------------------------------------------------------------------------------
# 7. events carry the plan


def test_usage_events_carry_the_plan(make_stack):
    s = plans_stack(make_stack)
    put_plan(s, "ev", {"plan": "pro"})
    for _ in range(2):
        assert_allowed(s.get("/api/monthly/e", headers=as_("ev")), "GET", "/api/monthly/e")
    assert_allowed(s.get("/api/both/e", headers=as_("ev")), "GET", "/api/both/e")
    assert_allowed(s.get("/api/monthly/e", headers=as_("ew", "key-pro")), "GET", "/api/monthly/e")
    assert_allowed(s.get("/api/monthly/e", headers=as_("ex")), "GET", "/api/monthly/e")
    assert_allowed(s.get("/api/shared/e", headers=as_("ex")), "GET", "/api/shared/e")
    evs = raw_events(s)
    got = [(e["pool"], e["subject"], e["route"], e["plan"]) for e in evs]
    expected = [
        ("monthly", "ev", "/api/monthly", "pro"),
        ("monthly", "ev", "/api/monthly", "pro"),
        ("monthly", "ev", "/api/both", "pro"),
        ("calls", "ev", "/api/both", "pro"),
        ("shared", "ev", "/api/both", "pro"),
        ("monthly", "ew", "/api/monthly", "pro"),
        ("monthly", "ex", "/api/monthly", "free"),
        ("shared", "ex", "/api/shared", ""),         # no per-subject pool: no plan
    ]
    # On a cluster /api/both's shared lives in its own slot (spent first); each slot's events
    # keep their order.
    def slot(row):
        return "" if row[0] == "shared" else row[1]

    assert in_stream_order(s, got, slot) == in_stream_order(s, expected, slot), got
    # "plan" is the last field of 0.3, then "kind" (no hold: the route does not settle)
    r = s.get("/api/usage/events?limit=1", headers=ADMIN)
    first = json.loads(r.body, object_pairs_hook=lambda pairs: pairs)[0][1][0]
    assert [k for k, _ in first][-2:] == ["plan", "kind"], first
    assert dict(first)["plan"] == "pro"


# --------------------------------------------------------------------------------------------
# 8. and 9. the formats with and without plans


def test_a_config_without_plans_keeps_the_old_formats(make_stack):
    s = make_stack(NO_PLANS, settings=settings(), extra=EXTRA, http_extra=HTTP_EXTRA)
    for _ in range(2):
        assert_allowed(s.get("/api/calls/o", headers=as_("old", "key-pro")), "GET", "/api/calls/o")
    assert_allowed(s.get("/api/shared/o", headers=as_("old")), "GET", "/api/shared/o")
    r = s.get("/api/usage", headers=as_("old", "key-pro"))
    assert r.status == 200, r
    doc = ordered(r)
    assert [k for k, _ in doc] == ["pools"], r
    for pairs in dict(doc)["pools"]:
        keys = [k for k, _ in pairs]
        assert keys == STATE_KEYS + (["subject"] if dict(pairs)["id"] == "calls" else []), keys
    assert dict(dict(doc)["pools"][0])["current"] == 3
    m = NEXT_CHARGE.match(redis_value(s, "calls:old"))
    assert m and int(m.group(1)) == 3, redis_value(s, "calls:old")
    m = NEXT_CHARGE.match(redis_value(s, "shared"))
    assert m and int(m.group(1)) == 99, redis_value(s, "shared")
    # the plan endpoint: nothing to set, the default shape to read
    r = put_plan(s, "old", {"plan": "pro"})
    assert r.status == 400 and r.json()["error"] == "unknown_plan", r
    assert_plan_answer(get_plan(s, "old"), "old", None, "default")
    assert_plan_answer(get_plan(s, "old", {**ADMIN, "X-Api-Key": "key-pro"}), "old", None, "default")
    assert_plan_answer(delete_plan(s, "old"), "old", None, "default")
    buckets = sorted([s.keys.bucket("calls", "old"), s.keys.bucket("shared")])
    streams = sorted({s.keys.events_in(key_slot(b)) for b in buckets}) if s.cluster else [s.keys.events]
    assert s.redis_keys() == sorted(buckets + streams)
    # the events have an empty plan
    assert {e["plan"] for e in raw_events(s)} == {""}


def test_with_plans_buckets_record_their_cap_and_the_plan_record_is_stored(make_stack):
    s = plans_stack(make_stack)
    assert_allowed(s.get("/api/both/f", headers=as_("fmt")), "GET", "/api/both/f")
    now = now_ms(s)
    # monthly: some plan sets it, so its bucket records the cap it was written under
    m = WITH_MAX.match(redis_value(s, "monthly:fmt"))
    assert m and (int(m.group(1)), int(m.group(3))) == (2, 3), redis_value(s, "monthly:fmt")
    resets = calendar(now)["month"][1]
    assert abs(pttl(s, "monthly:fmt") - (resets - now)) <= 100
    # calls (per subject, no plan sets it) and shared (global) keep next-charge's format
    m = NEXT_CHARGE.match(redis_value(s, "calls:fmt"))
    assert m and int(m.group(1)) == 4, redis_value(s, "calls:fmt")
    m = NEXT_CHARGE.match(redis_value(s, "shared"))
    assert m and int(m.group(1)) == 99, redis_value(s, "shared")
    assert s.redis.client.command("EXISTS", s.keys.plan("fmt")) == 0

    # the plan record: JSON, no expiry, in the internal namespace
    anchor = now - 3600_000
    assert_plan_answer(put_plan(s, "fmt", {"plan": "pro", "periodAnchor": anchor}), "fmt", "pro", "stored", anchor)
    assert json.loads(s.redis.client.get(s.keys.plan("fmt"))) == {"plan": "pro", "periodAnchor": anchor}
    assert s.redis.client.command("PTTL", s.keys.plan("fmt")) == -1
    assert_plan_answer(put_plan(s, "fmt", {"plan": "free"}), "fmt", "free", "stored")
    assert json.loads(s.redis.client.get(s.keys.plan("fmt"))) in ({"plan": "free"}, {"plan": "free", "periodAnchor": None})
    assert_plan_answer(put_plan(s, "fmt", {"plan": "pro"}), "fmt", "pro", "stored")
    assert_allowed(s.get("/api/monthly/f", headers=as_("fmt")), "GET", "/api/monthly/f")
    m = WITH_MAX.match(redis_value(s, "monthly:fmt"))
    assert m and (int(m.group(1)), int(m.group(3))) == (8, 10), redis_value(s, "monthly:fmt")

    # a hostile subject: the record under its key form, and the requests find it
    hostile = "a b<c>"
    assert_plan_answer(put_plan(s, hostile, {"plan": "pro"}), h(hostile), "pro", "stored")
    assert json.loads(s.redis.client.get(s.keys.plan(h(hostile)))) == {"plan": "pro"}
    assert_allowed(s.get("/api/monthly/f", headers=as_(hostile)), "GET", "/api/monthly/f")
    m = WITH_MAX.match(redis_value(s, "monthly:" + h(hostile)))
    assert m and (int(m.group(1)), int(m.group(3))) == (9, 10), redis_value(s, "monthly:" + h(hostile))
    # the admin may name it by its key form too, as a key form (subjectKey); named as a
    # subject, the same text is another subject (one nginx may pass as it is)
    assert_plan_answer(s.get("/api/usage/plan?subjectKey=" + h(hostile), headers=ADMIN), h(hostile), "pro", "stored")
    assert_plan_answer(get_plan(s, h(hostile)), h(h(hostile)), "free", "default")
    assert_plan_answer(put_plan(s, h(hostile), {"plan": "free"}), h(h(hostile)), "free", "stored")
    assert json.loads(s.redis.client.get(s.keys.plan(h(hostile)))) == {"plan": "pro"}
    # a subject that looks like a plan record's key cannot reach it
    assert_allowed(s.get("/api/monthly/f", headers=as_("#plan:fmt")), "GET", "/api/monthly/f")
    assert json.loads(s.redis.client.get(s.keys.plan("fmt"))) == {"plan": "pro"}

    # DELETE removes the record
    assert_plan_answer(delete_plan(s, "fmt"), "fmt", "free", "default")
    assert s.redis.client.command("EXISTS", s.keys.plan("fmt")) == 0

    # a stale record (a plan no longer in the config): the default plan and an error line
    s.redis.client.command("SET", s.keys.plan("stale"), '{"plan":"enterprise"}')
    for _ in range(3):
        assert_allowed(s.get("/api/monthly/f", headers=as_("stale", "key-pro")), "GET", "/api/monthly/f")
    assert_out_of_charge(s.get("/api/monthly/f", headers=as_("stale", "key-pro")), "monthly")
    lines = log_lines(s, "unknownStoredPlan")
    assert lines and all("enterprise" in line for line in lines), s.responder.log_tail()
