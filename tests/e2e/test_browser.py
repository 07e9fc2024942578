"""In a real browser: the usage page (GET /api/usage as text/html) and /charge-fetch.js.

Headless Chromium (`--headless=new`, `--dump-dom`, `--screenshot`) loads pages from a real
stack (nginx + charge-gate + Redis). Skipped only when no Chromium is installed (Debian package
`chromium`; CHARGE_GATE_CHROMIUM names another binary). The screenshots are kept under
tests/e2e/artifacts/ (not committed), to be looked at.
"""

from __future__ import annotations

import html
import json
import re

from browser_support import ARTIFACTS, BROWSER_ACCEPT, MINUTE_MS, browser, card, needs_chromium, retry_string, text_of
from harness import ROOT, assert_out_of_charge

HOUR_MS = 3_600_000

pytestmark = needs_chromium


# --------------------------------------------------------------------------------------------
# the usage page

HOSTILE_LABEL = """<script>alert(1)</script> & "friends" 'too'"""
HOSTILE_GROUP = """<b id="pwned">Évil</b> "'&"""

PAGE_POOLS = """\
pools:
  - id: generate-image
    maxCharges: 5
    rechargeIntervalHours: 2
    label: Image generation
    group: AI
  - id: tts
    maxCharges: 10
    rechargeIntervalHours: 2.05
    label: Text to speech
    group: AI
  - id: hostile
    maxCharges: 100
    rechargeIntervalHours: 1
    label: '<script>alert(1)</script> & "friends" ''too'''
    group: '<b id="pwned">Évil</b> "''&'
  - id: burst
    maxCharges: 10
    rechargeIntervalHours: 1
    label: Burst
  - id: credits
    maxCharges: 100
    recharge: none
    per: subject
    label: Prepaid credits
  - id: meter
    maxCharges: unlimited
    label: Calls counted
routes:
  - prefix: /api/generate
    pools: [generate-image]
  - prefix: /api/burst
    pools: [burst]
  - prefix: /api/paid
    pools: [{id: credits, cost: 5}, meter]
"""


def test_usage_page_in_a_browser(make_stack):
    stack = make_stack(config_body=PAGE_POOLS)
    # Spend for real: 4 of 5 images (80 % used: amber), the whole burst pool (red, empty),
    # 2 paid calls (credits 90 of 100, the meter at 2).
    for _ in range(4):
        assert stack.post("/api/generate").status == 200
    for _ in range(10):
        assert stack.post("/api/burst").status == 200
    assert_out_of_charge(stack.post("/api/burst"), "burst")
    for _ in range(2):
        assert stack.post("/api/paid").status == 200
    # And write two buckets as they would be after some time: tts 8 of 10, one charge every
    # 2.05 h (123 min), last step 111 min ago: next in 12m, full (2 more) in 2h 15m; the hostile
    # pool at 10 of 100 (90 % used: red).
    now = stack.redis.client.now_ms()
    stack.redis.client.command("SET", "charge:tts", json.dumps({"current": 8, "lastUpdatedAt": now - 111 * MINUTE_MS}))
    stack.redis.client.command("SET", "charge:hostile", json.dumps({"current": 10, "lastUpdatedAt": now}))

    # What a browser gets, headers included; JSON stays the default for everyone else.
    r = stack.get("/api/usage", headers={"Accept": BROWSER_ACCEPT})
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/html; charset=utf-8", r
    assert r.header("Cache-Control") == "no-store", r
    assert r.header("Vary") == "Accept", r
    assert stack.get("/api/usage").header("Content-Type") == "application/json"

    url = f"http://127.0.0.1:{stack.port}/api/usage"
    dom = browser("--dump-dom", url)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "usage-page.dom.html").write_text(dom)

    # The page itself: refreshes, fits a phone, runs no script at all.
    assert '<meta http-equiv="refresh" content="30">' in dom, dom
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in dom
    assert "<script" not in dom.lower(), dom
    assert "<b id=" not in dom, dom
    assert "<title>Usage</title>" in dom

    # Groups in order of first appearance, pools without a group last, under "Other".
    headings = re.findall(r"<h2 id=\"g\d\">(.*?)</h2>", dom)
    assert headings == ["AI", html.escape(HOSTILE_GROUP, quote=False), "Other"], headings
    order = [m for m in re.findall(r'id="pool-([a-z-]+)"', dom)]
    assert order == ["generate-image", "tts", "hostile", "burst", "credits", "meter"], order

    images = card(dom, "generate-image")
    assert 'class="pool warn"' in images, images
    assert "<h3>Image generation</h3>" in images and '<small class="id">generate-image</small>' in images
    assert "<b>1</b> of 5 left" in images and "running low" in images, images
    assert "next charge in 2h · full in 8h · +1 every 2h" in text_of(images), images
    assert 'role="meter"' in images and 'aria-valuenow="1"' in images and 'aria-valuemax="5"' in images
    assert 'style="width:20%"' in images, images

    tts = card(dom, "tts")
    assert 'class="pool ok"' in tts, tts
    assert "<b>8</b> of 10 left" in tts, tts
    assert "next charge in 12m · full in 2h 15m · +1 every 2h 3m" in text_of(tts), tts

    hostile = card(dom, "hostile")
    assert 'class="pool danger"' in hostile, hostile
    # Escaped: the text shows the markup instead of running it (the serializer re-escapes <>&).
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"friends\" 'too'" in hostile, hostile
    assert "<b>10</b> of 100 left" in hostile and "almost empty" in hostile, hostile

    burst = card(dom, "burst")
    assert 'class="pool danger"' in burst, burst
    assert "<b>0</b> of 10 left" in burst and '<span class="state">empty</span>' in burst, burst
    assert 'style="width:0%"' in burst

    credits = card(dom, "credits")
    assert 'class="pool ok credits"' in credits, credits
    assert '<p class="who">your balance · <span class="subject">127.0.0.1</span></p>' in credits, credits
    assert "<b>90</b> of 100 left" in credits and "top-off only" in credits, credits
    assert "next charge" not in credits

    meter = card(dom, "meter")
    assert 'class="pool unlimited"' in meter, meter
    assert "<b>2</b> used" in meter, meter
    assert 'role="meter"' not in meter and 'class="bar"' not in meter, meter

    # Screenshots to look at: a phone, a desktop, a phone in dark mode.
    shots = {
        "usage-page-phone.png": ["--window-size=390,1300", "--force-device-scale-factor=2"],
        "usage-page-desktop.png": ["--window-size=1280,860"],
        "usage-page-phone-dark.png": ["--window-size=390,1300", "--force-device-scale-factor=2",
                                      "--blink-settings=preferredColorScheme=0", "--force-dark-mode"],
    }
    for name, args in shots.items():
        path = ARTIFACTS / name
        path.unlink(missing_ok=True)
        browser(*args, f"--screenshot={path}", url)
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 10_000, name


# --------------------------------------------------------------------------------------------
# /charge-fetch.js in a page

FETCH_POOLS = """\
pools:
  - id: demo
    maxCharges: 1
    rechargeIntervalHours: 2
  - id: prepaid
    maxCharges: 1
    recharge: none
routes:
  - prefix: /api/demo
    pools: [demo]
  - prefix: /api/paid
    pools: [prepaid]
"""

# A page that imports /charge-fetch.js and writes what the callbacks got into the DOM. Served by
# nginx's `return` (so: no single quote, no dollar sign, no at-sign in it).
DEMO_PAGE = """\
<!doctype html>
<meta charset="utf-8">
<title>chargeFetch demo</title>
<pre id="out">pending</pre>
<script type="module">
import { chargeFetch, retryString } from "/charge-fetch.js";
const out = document.getElementById("out");
const seen = [];
const handlers = {
  onOutOfCharge: function (body, retry) { seen.push({ callback: "onOutOfCharge", body: body, retry: retry }); },
  onInsufficientCredits: function (body) { seen.push({ callback: "onInsufficientCredits", body: body }); }
};
try {
  const denied = await chargeFetch("/api/demo", { method: "POST" }, handlers);
  const broke = await chargeFetch("/api/paid", { method: "POST" }, handlers);
  const fine = await chargeFetch("/api/usage", { headers: { Accept: "application/json" } }, handlers);
  out.textContent = JSON.stringify({
    seen: seen,
    statuses: [denied.status, broke.status, fine.status],
    bodies: [await denied.json(), await broke.json()],
    usagePools: (await fine.json()).pools.length,
    retryAfter: denied.headers.get("Retry-After"),
    oneHour: retryString(3600000)
  });
} catch (e) {
  out.textContent = "error: " + e;
}
</script>
"""

FETCH_EXTRA = """\
        location = /demo.html {
            types { }
            default_type "text/html; charset=utf-8";
            return 200 '%s';
        }
""" % DEMO_PAGE


def test_charge_fetch_in_a_browser(make_stack):
    assert "'" not in DEMO_PAGE and "$" not in DEMO_PAGE and "@" not in DEMO_PAGE
    stack = make_stack(config_body=FETCH_POOLS, extra=FETCH_EXTRA)

    # nginx serves the module as it is, as JavaScript.
    r = stack.get("/charge-fetch.js")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/javascript; charset=utf-8", r
    assert r.header("Cache-Control") == "public, max-age=300", r
    assert r.header("X-Content-Type-Options") == "nosniff", r
    assert r.body == (ROOT / "nginx" / "charge-fetch.js").read_bytes()

    # Drain both pools; the page's own requests are then denied.
    assert stack.post("/api/demo").status == 200
    assert stack.post("/api/paid").status == 200

    dom = browser("--virtual-time-budget=5000", "--dump-dom", f"http://127.0.0.1:{stack.port}/demo.html")
    m = re.search(r'<pre id="out">(.*?)</pre>', dom, re.S)
    assert m, dom
    text = html.unescape(m.group(1))
    assert text.startswith("{"), text
    got = json.loads(text)

    assert got["statuses"] == [429, 402, 200], got
    out_of_charge, insufficient = got["bodies"]
    assert set(out_of_charge) == {"error", "retryAfterMs", "poolId"}, got
    assert out_of_charge["error"] == "out_of_charge" and out_of_charge["poolId"] == "demo", got
    wait = out_of_charge["retryAfterMs"]
    assert 2 * HOUR_MS - 60_000 < wait <= 2 * HOUR_MS, got
    assert got["retryAfter"] == str(-(-wait // 1000)), got
    assert insufficient == {"error": "insufficient_credits", "poolId": "prepaid", "availableBalance": 0,
                            "required": 1}, got
    # Each callback once, with the parsed body (and the human retry string); none for the 200.
    assert got["seen"] == [
        {"callback": "onOutOfCharge", "body": out_of_charge, "retry": retry_string(wait)},
        {"callback": "onInsufficientCredits", "body": insufficient},
    ], got
    assert got["seen"][0]["retry"] == "2h", got
    assert got["usagePools"] == 2 and got["oneHour"] == "1h", got
