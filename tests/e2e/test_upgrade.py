"""Where to upgrade (docs/http.md, "Where to upgrade"): `upgradeUrl`, top level and per plan,
through real nginx on both stores. A Free subject whose period pool is used up gets the 429
with Free's URL (Pro's pricing); a credits 402 under Pro (no URL of its own) carries the
top-level one; a refilling bucket's 429 carries none and a global pool's the top-level one; nginx's edge cache and
the workers' memory replay the same body (the keepalive profile has no edge cache: the workers'
memory alone, its wait counted anew), and never one plan's URL under another plan nginx names; usage JSON names the URL; a SIGHUP that changes it applies. In headless Chromium: the
usage page's "Upgrade" link on the used-up pools, and charge-fetch.js handing the URL to its
callbacks.

The subject is X-User and nginx's plan a map of X-Api-Key (as in test_plans.py), except in the
browser tests, where the subject is the client's address (127.0.0.1) and the plan the default.
"""

from __future__ import annotations

import html
import json
import re
import signal
import time

from browser_support import ARTIFACTS, browser, card, needs_chromium, text_of
from harness import assert_json, assert_out_of_charge, scrape, wait_until

TOKEN = "upgrade-Adm1n"
ADMIN = {"Authorization": "Bearer " + TOKEN}
TO_PRO = "/pricing#pro"
PRICING = "/pricing"

POOLS = """\
pools:
  - id: generations
    maxCharges: 2
    period: month
    per: subject
    label: Generations
  - id: credits
    maxCharges: 2
    recharge: none
    per: subject
    label: Credits
  - id: calls
    maxCharges: 2
    rechargeIntervalHours: 24
    per: subject
    label: Calls
  - id: site
    maxCharges: 1
    period: month
    label: Site-wide
routes:
  - prefix: /api/generate
    pools: [generations]
  - prefix: /api/paid
    pools: [credits]
  - prefix: /api/calls
    pools: [calls]
  - prefix: /api/site
    pools: [site]
"""

# Free: 2 generations a month, its own URL pointing at Pro; Pro: 4, no URL of its own (the
# top-level one).
PLANS = f"""\
upgradeUrl: {PRICING}
defaultPlan: free
plans:
  - id: free
    label: Free
    upgradeUrl: {TO_PRO}
  - id: pro
    label: Pro
    pools:
      generations: {{ maxCharges: 4 }}
""" + POOLS

HTTP_EXTRA = """\
    map $http_x_api_key $cg_plan_by_key {
        default  "";
        key-pro  pro;
    }
"""

EXTRA = """\
        set $charge_gate_subject $http_x_user;
        set $charge_gate_plan $cg_plan_by_key;
"""


def settings(edge: int = 1) -> str:
    return f'adminToken: "{TOKEN}"\nworkers: 2\nedgeDenySeconds: {edge}\n'


def upgrade_stack(make, edge: int = 1, body: str = PLANS):
    return make(body, settings=settings(edge), extra=EXTRA, http_extra=HTTP_EXTRA)


def as_(subject: str, key: str | None = None) -> dict:
    return {"X-User": subject, **({"X-Api-Key": key} if key else {})}


def spend(s, uri: str, n: int, headers: dict):
    for i in range(n):
        r = s.post(uri, headers=headers)
        assert r.status == 200, (i, r)


def ordered(r) -> list[tuple[str, object]]:
    return json.loads(r.body, object_pairs_hook=lambda pairs: pairs)


def assert_period_429(r, pool: str, upgrade_url: str | None) -> int:
    """The exact 429 of a used-up period pool: the keys in order, upgradeUrl last (or none)."""
    assert r.status == 429, r
    assert_json(r)
    doc = ordered(r)
    keys = ["error", "retryAfterMs", "poolId"] + (["upgradeUrl"] if upgrade_url else [])
    assert [k for k, _ in doc] == keys, r
    body = dict(doc)
    assert body["error"] == "out_of_charge" and body["poolId"] == pool, r
    assert body.get("upgradeUrl") == upgrade_url, r
    wait = body["retryAfterMs"]
    assert r.header("Retry-After") == str(-(-wait // 1000)), r
    return wait


def cache_statuses(s, uri: str) -> list[str]:
    time.sleep(0.1)  # the access log line is written after the answer
    return [e["cache"] for e in s.edge_log() if e["request_uri"] == uri]


def from_memory(s, pool: str) -> float:
    """429s of `pool` the responder's workers answered from memory (its /metrics)."""
    return scrape(s).get(f'charge_gate_denied_from_memory_total{{pool="{pool}"}}', 0.0)


def without_wait(r) -> bytes:
    """The body with its retryAfterMs blanked: a worker's memory counts the wait anew."""
    return re.sub(rb'"retryAfterMs":[0-9]+', b'"retryAfterMs":_', r.body)


# --------------------------------------------------------------------------------------------
# the denials


def test_a_used_up_free_period_pool_answers_429_with_pros_url(any_store):
    s = upgrade_stack(any_store)
    spend(s, "/api/generate", 2, as_("u1"))
    first = s.post("/api/generate", headers=as_("u1"))
    wait = assert_period_429(first, "generations", TO_PRO)
    assert wait > 0, first
    assert first.text.endswith(',"upgradeUrl":"/pricing#pro"}'), first

    # Under Pro (nginx names it for this API key), which has no URL of its own: the top-level one.
    spend(s, "/api/generate", 4, as_("u2", "key-pro"))
    assert_period_429(s.post("/api/generate", headers=as_("u2", "key-pro")), "generations", PRICING)


def test_a_credits_402_carries_the_top_level_url(any_store):
    s = upgrade_stack(any_store)
    spend(s, "/api/paid", 2, as_("p1", "key-pro"))
    r = s.post("/api/paid", headers=as_("p1", "key-pro"))
    assert r.status == 402, r
    assert_json(r)
    assert r.body == (b'{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":1,'
                      b'"upgradeUrl":"/pricing"}'), r
    assert r.header("Retry-After") is None, r
    # A Free subject's 402: Free's own URL.
    spend(s, "/api/paid", 2, as_("p2"))
    r = s.post("/api/paid", headers=as_("p2"))
    assert r.status == 402 and r.json()["upgradeUrl"] == TO_PRO, r


def test_a_refilling_buckets_429_carries_none_and_a_global_pools_the_top_level_one(any_store):
    s = upgrade_stack(any_store)
    spend(s, "/api/calls", 2, as_("b1"))
    assert_out_of_charge(s.post("/api/calls", headers=as_("b1")), "calls")  # the exact body: no upgradeUrl
    spend(s, "/api/site", 1, as_("b1"))
    # b1 is on Free, whose own URL is Pro's pricing: a global pool is nobody's plan's.
    assert_period_429(s.post("/api/site", headers=as_("b1")), "site", PRICING)


def test_without_upgrade_url_the_bodies_are_as_before(any_store):
    s = upgrade_stack(any_store, body=POOLS)
    spend(s, "/api/generate", 2, as_("n1"))
    assert_period_429(s.post("/api/generate", headers=as_("n1")), "generations", None)
    spend(s, "/api/paid", 2, as_("n1"))
    r = s.post("/api/paid", headers=as_("n1"))
    assert r.body == b'{"error":"insufficient_credits","poolId":"credits","availableBalance":0,"required":1}', r
    r = s.get("/api/usage", headers={**as_("n1"), "Accept": "application/json"})
    assert r.status == 200 and b"upgradeUrl" not in r.body, r


# --------------------------------------------------------------------------------------------
# the deny caches: the same body from nginx's cache, and never another plan's URL


def test_nginx_and_the_workers_replay_the_same_body_and_never_another_plans_url(any_store):
    s = upgrade_stack(any_store, edge=30)
    edge = s.profile == "edge"
    spend(s, "/api/generate", 2, as_("c1"))
    free = [s.post("/api/generate", headers=as_("c1")) for _ in range(4)]
    for r in free:
        assert_period_429(r, "generations", TO_PRO)
        if edge:
            assert r.body == free[0].body, (r, free[0])
        else:
            assert without_wait(r) == without_wait(free[0]), (r, free[0])
    if edge:
        # Stored once its key has come twice (fastcgi_cache_min_uses 2): the last ones are nginx's.
        assert cache_statuses(s, "/api/generate")[-1] == "HIT", s.edge_log()
    # keepalive: 4 denials, 2 workers: at least 2 were a worker's memory.
    memory = from_memory(s, "generations")
    assert edge or memory >= 2, memory

    # The same subject under Pro, as nginx names it: another key, so a cached Free denial
    # (nginx's, a worker's) never answers it; Pro's 4 let 2 more through, then Pro's denial with
    # Pro's URL.
    spend(s, "/api/generate", 2, as_("c1", "key-pro"))
    pro = [s.post("/api/generate", headers=as_("c1", "key-pro")) for _ in range(3)]
    for r in pro:
        assert_period_429(r, "generations", PRICING)
    if edge:
        assert cache_statuses(s, "/api/generate")[-1] == "HIT", s.edge_log()
    else:
        assert from_memory(s, "generations") >= memory + 1, memory
    # And the Free key still answers Free's.
    assert_period_429(s.post("/api/generate", headers=as_("c1")), "generations", TO_PRO)


def test_a_stored_plan_decides_the_url_from_the_store_and_from_the_caches(any_store):
    # Stored Pro, nginx naming nothing (the default, Free, whose URL differs): every denial,
    # the store's, a worker's remembered one and nginx's cached one, carries Pro's URL.
    s = upgrade_stack(any_store, edge=30)
    r = s.request("PUT", "/api/usage/plan?subject=d1", headers={**ADMIN, "Content-Type": "application/json"},
                  body=b'{"plan":"pro"}')
    assert r.status == 200, r
    spend(s, "/api/generate", 4, as_("d1"))
    for _ in range(5):
        assert_period_429(s.post("/api/generate", headers=as_("d1")), "generations", PRICING)
    if s.profile == "edge":
        assert "HIT" in cache_statuses(s, "/api/generate"), s.edge_log()
    else:  # keepalive: no cache in nginx; 5 denials, 2 workers: at least 3 from memory
        assert from_memory(s, "generations") >= 3, s.edge_log()


def test_a_reload_that_changes_the_url_applies(make_stack):
    s = upgrade_stack(make_stack, edge=0)
    spend(s, "/api/generate", 2, as_("r1"))
    assert_period_429(s.post("/api/generate", headers=as_("r1")), "generations", TO_PRO)
    s.write_config(body=PLANS.replace(f"upgradeUrl: {TO_PRO}", "upgradeUrl: https://shop.example.com/pro"))
    s.responder.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in s.responder.log_text(), 3, interval=0.05, what="the reload")
    assert_period_429(s.post("/api/generate", headers=as_("r1")), "generations", "https://shop.example.com/pro")


# --------------------------------------------------------------------------------------------
# usage JSON


def test_usage_names_the_url_and_the_used_up_pools(any_store):
    s = upgrade_stack(any_store)
    r = s.get("/api/usage", headers={**as_("j1"), "Accept": "application/json"})
    assert r.status == 200, r
    usage = r.json()
    assert usage["upgradeUrl"] == TO_PRO, usage
    assert [k for k, _ in ordered(r)] == ["plan", "upgradeUrl", "pools"], r
    assert all("upgradeUrl" not in p for p in usage["pools"]), usage

    spend(s, "/api/generate", 2, as_("j1"))
    spend(s, "/api/paid", 2, as_("j1"))
    spend(s, "/api/calls", 2, as_("j1"))
    spend(s, "/api/site", 1, as_("j1"))
    usage = s.get("/api/usage", headers={**as_("j1"), "Accept": "application/json"}).json()
    pools = {p["id"]: p for p in usage["pools"]}
    assert all(p["current"] == 0 for p in pools.values()), pools
    # The period and credits pools (a global one: the top-level URL); a bucket refills.
    assert {i: p.get("upgradeUrl") for i, p in pools.items()} == {
        "generations": TO_PRO, "credits": TO_PRO, "calls": None, "site": PRICING}, pools
    assert list(pools["generations"])[-1] == "upgradeUrl", pools

    # Under Pro (nginx's plan): 2 of 4 generations left (no link there), credits still empty.
    usage = s.get("/api/usage", headers={**as_("j1", "key-pro"), "Accept": "application/json"}).json()
    pools = {p["id"]: p for p in usage["pools"]}
    assert usage["upgradeUrl"] == PRICING, usage
    assert pools["generations"]["current"] == 2 and "upgradeUrl" not in pools["generations"], pools
    assert pools["credits"]["upgradeUrl"] == PRICING, pools


# --------------------------------------------------------------------------------------------
# in a real browser: the usage page's Upgrade link, and charge-fetch.js


# The subject is the client's address here (no X-User from a browser), its plan the default,
# Free, whose URL here has a query: '&' is "\u0026" in the JSON and "&amp;" in the page's href.
FREE_URL = "/pricing?plan=pro&from=usage#pro"
BROWSER_PLANS = PLANS.replace(f"upgradeUrl: {TO_PRO}\n", f"upgradeUrl: {FREE_URL}\n", 1)

# A page that imports /charge-fetch.js and writes what the callbacks got into the DOM (served by
# nginx's `return`: no single quote, no dollar sign, no at-sign in it).
DEMO_PAGE = """\
<!doctype html>
<meta charset="utf-8">
<title>upgrade demo</title>
<pre id="out">pending</pre>
<script type="module">
import { chargeFetch, chargeUsage } from "/charge-fetch.js";
const out = document.getElementById("out");
const seen = [];
const handlers = {
  onOutOfCharge: function (body, retry, upgradeUrl) {
    seen.push({ callback: "onOutOfCharge", pool: body.poolId, upgradeUrl: upgradeUrl });
  },
  onInsufficientCredits: function (body, upgradeUrl) {
    seen.push({ callback: "onInsufficientCredits", pool: body.poolId, upgradeUrl: upgradeUrl });
  }
};
try {
  await chargeFetch("/api/generate", { method: "POST" }, handlers);
  await chargeFetch("/api/paid", { method: "POST" }, handlers);
  await chargeFetch("/api/calls", { method: "POST" }, handlers);
  const usage = await chargeUsage();
  out.textContent = JSON.stringify({
    seen: seen,
    upgradeUrl: usage.upgradeUrl,
    pools: usage.pools.map(function (p) { return [p.id, p.upgradeUrl]; })
  });
} catch (e) {
  out.textContent = "error: " + e;
}
</script>
"""

BROWSER_EXTRA = """\
        location = /demo.html {
            types { }
            default_type "text/html; charset=utf-8";
            return 200 '%s';
        }
""" % DEMO_PAGE


@needs_chromium
def test_the_usage_page_shows_the_upgrade_link_on_used_up_pools(any_store):
    s = any_store(BROWSER_PLANS, settings=settings(edge=0))
    spend(s, "/api/generate", 2, {})
    spend(s, "/api/paid", 2, {})
    spend(s, "/api/calls", 2, {})
    assert s.post("/api/generate").status == 429

    dom = browser("--dump-dom", f"http://127.0.0.1:{s.port}/api/usage")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"upgrade-page-{'redis' if s.redis else 'memory'}.dom.html").write_text(dom)
    found = re.findall(r'<p class="upgrade"><a href="([^"]*)">([^<]*)</a></p>', dom)
    links = [(html.unescape(href), text) for href, text in found]
    # Free's own URL on the used-up allowance and credits; none on the empty bucket (it refills).
    assert links == [(FREE_URL, "Upgrade"), (FREE_URL, "Upgrade")], links
    generations = card(dom, "generations")
    assert "used up until reset" in generations, generations
    assert 'href="/pricing?plan=pro&amp;from=usage#pro"' in generations, generations
    assert 'class="upgrade"' in card(dom, "credits"), card(dom, "credits")
    assert "Upgrade" not in text_of(card(dom, "calls")), card(dom, "calls")
    assert "Upgrade" not in text_of(card(dom, "site")), card(dom, "site")
    # A picture of it, kept under artifacts/ to be looked at.
    shot = ARTIFACTS / f"upgrade-page-{'redis' if s.redis else 'memory'}.png"
    shot.unlink(missing_ok=True)
    browser("--window-size=800,900", f"--screenshot={shot}", f"http://127.0.0.1:{s.port}/api/usage")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000, shot


@needs_chromium
def test_charge_fetch_hands_the_url_to_its_callbacks(any_store):
    assert "'" not in DEMO_PAGE and "$" not in DEMO_PAGE and "@" not in DEMO_PAGE
    s = any_store(BROWSER_PLANS, settings=settings(edge=0), extra=BROWSER_EXTRA)
    spend(s, "/api/generate", 2, {})
    spend(s, "/api/paid", 2, {})
    spend(s, "/api/calls", 2, {})

    dom = browser("--virtual-time-budget=5000", "--dump-dom", f"http://127.0.0.1:{s.port}/demo.html")
    m = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert m, dom
    text = html.unescape(m.group(1))
    assert text.startswith("{"), text
    got = json.loads(text)
    assert got["seen"] == [
        {"callback": "onOutOfCharge", "pool": "generations", "upgradeUrl": FREE_URL},
        {"callback": "onInsufficientCredits", "pool": "credits", "upgradeUrl": FREE_URL},
        {"callback": "onOutOfCharge", "pool": "calls", "upgradeUrl": None},
    ], got
    assert got["upgradeUrl"] == FREE_URL, got
    assert got["pools"] == [["generations", FREE_URL], ["credits", FREE_URL], ["calls", None], ["site", None]], got
