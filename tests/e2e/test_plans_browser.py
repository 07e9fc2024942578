"""In a real browser: the usage page with plans and billing periods.

A real stack (nginx + charge-gate + Redis, tests/e2e/harness.py) with plans and period pools:
the subject (127.0.0.1, the test client) uses up its Free allowance, is given the Pro plan
through the admin API, spends a little more; headless Chromium loads GET /api/usage each time
and the DOM must show the plan label and the reset phrase, and the screenshots must be real
pictures of the expected size. Driven as tests/e2e/test_browser.py drives Chromium (the
`browser` helper of browser_support.py); skipped only when no Chromium is installed. Screenshots are kept under
tests/e2e/artifacts/ (not committed), to be looked at.
"""

from __future__ import annotations

import calendar
import html
import re
import struct
import zlib
from datetime import datetime, timezone

from browser_support import ARTIFACTS, BROWSER_ACCEPT, browser, card, needs_chromium, retry_string, text_of
from harness import assert_out_of_charge

pytestmark = needs_chromium

DAY_MS = 86_400_000
TOKEN = "plans-browser-t0ken"
ADMIN = {"Authorization": "Bearer " + TOKEN}
SUBJECT = "127.0.0.1"  # nginx's $charge_gate_subject for the test client ($remote_addr)

# A label with markup in it: the page must show it as text.
PRO_LABEL = """Pro <i>plus</i> & "co\""""

PLANS = """\
defaultPlan: free
plans:
  - id: free
    label: Free
    pools:
      generations: { maxCharges: 5 }
  - id: pro
    label: 'Pro <i>plus</i> & "co"'
    pools:
      generations: { maxCharges: 100 }
      api-calls: { maxCharges: unlimited }
pools:
  - id: generations
    maxCharges: 5
    period: month
    per: subject
    label: Generations
  - id: api-calls
    maxCharges: 20
    period: day
    per: subject
    label: API calls
  - id: images
    maxCharges: 5
    rechargeIntervalHours: 2
    label: Images
routes:
  - prefix: /api/generate
    pools: [generations]
  - prefix: /api/call
    pools: [api-calls]
  - prefix: /api/image
    pools: [images]
"""

# The admin token, and no edge deny cache: the 429 of the used-up Free allowance must not be
# answered again by nginx once the plan is Pro.
SETTINGS = f'adminToken: "{TOKEN}"\nedgeDenySeconds: 0\n'

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def reset_string(resets_at: int, now: int) -> str:
    """The reset phrase (a third implementation, to check the page's): the UTC date beyond 24 h
    ("resets Dec 1", with the year when it is not now's), else the wait ("resets in 3h")."""
    wait = resets_at - now
    if wait <= 0:
        return "resets now"
    if wait <= DAY_MS:
        return "resets in " + retry_string(wait)
    date = datetime.fromtimestamp(resets_at / 1000, timezone.utc)
    text = f"resets {MONTHS[date.month - 1]} {date.day}"
    this_year = datetime.fromtimestamp(now / 1000, timezone.utc).year
    return text if date.year == this_year else f"{text}, {date.year}"


def month_window(now_ms: int) -> tuple[int, int]:
    """The calendar month (UTC) around now: [the 1st 00:00, the next 1st 00:00) in epoch ms."""
    now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    start = datetime(now.year, now.month, 1, tzinfo=timezone.utc)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=timezone.utc)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def next_month(ms: int) -> int:
    """The month boundary after an anchored one at `ms`: the same day of month (clamped to the
    month's last day) and time of day, a month later."""
    at = datetime.fromtimestamp(ms / 1000, timezone.utc)
    year, month = at.year + (at.month == 12), at.month % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(datetime(year, month, day, tzinfo=timezone.utc).timestamp() * 1000) + ms % DAY_MS


def load_page(stack, name: str) -> tuple[str, int, int]:
    """The usage page's DOM as Chromium built it (kept under artifacts/), with the store's clock
    just before and just after the load (the page's reset phrases lie between)."""
    before = stack.redis.client.now_ms()
    dom = browser("--dump-dom", f"http://127.0.0.1:{stack.port}/api/usage")
    after = stack.redis.client.now_ms()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(dom)
    assert "<script" not in dom.lower(), dom
    assert "<i>" not in dom, dom
    return dom, before, after


def plan_line(dom: str) -> str:
    m = re.search(r'<p class="plan">(.*?)</p>', dom, re.S)
    assert m, dom
    return m.group(1)


def reset_phrases(resets_at: int, before: int, after: int) -> set[str]:
    return {reset_string(resets_at, before), reset_string(resets_at, after)}


def when_phrases(card_markup: str) -> list[str]:
    m = re.search(r'<p class="when">(.*?)</p>', card_markup, re.S)
    assert m, card_markup
    return [text_of(span) for span in re.findall(r"<span>(.*?)</span>", m.group(1))]


# --------------------------------------------------------------------------------------------
# screenshots: a PNG of the expected size, with something drawn in it


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, data[:32]
    return struct.unpack(">II", data[16:24])


def varied_rows(data: bytes) -> float:
    """The share of the image's rows that are not one flat colour (a blank page has none):
    the IDAT stream inflated, each scanline's filtered bytes (after its filter byte) checked."""
    width, height = png_size(data)
    bit_depth, colour_type = data[24], data[25]
    assert bit_depth == 8 and colour_type in (2, 6), (bit_depth, colour_type)
    channels = 3 if colour_type == 2 else 4
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    assert len(raw) == stride * height, (len(raw), stride, height)
    varied = 0
    for y in range(height):
        line = raw[y * stride + 1:(y + 1) * stride]
        filter_type = raw[y * stride]
        # Filters None/Up: a flat row is one repeated pixel, or all zeros; Sub/Avg/Paeth: after
        # the first pixel, zeros (or a constant difference). Either way few distinct bytes.
        if len(set(line[channels:])) > 2 or (filter_type == 0 and len(set(line)) > channels):
            varied += 1
    return varied / height


def screenshot(stack, name: str, size: tuple[int, int], scale: int = 1, *extra: str) -> bytes:
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    args = [f"--window-size={size[0]},{size[1]}"]
    if scale != 1:
        args.append(f"--force-device-scale-factor={scale}")
    browser(*args, *extra, f"--screenshot={path}", f"http://127.0.0.1:{stack.port}/api/usage")
    assert path.exists(), name
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    assert len(data) > 10_000, (name, len(data))
    assert png_size(data) == (size[0] * scale, size[1] * scale), (name, png_size(data))
    share = varied_rows(data)
    assert share > 0.05, (name, share)  # text, bars and card edges: not a blank page
    return data


# --------------------------------------------------------------------------------------------


def test_plans_and_periods_on_the_usage_page(make_stack):
    stack = make_stack(config_body=PLANS, settings=SETTINGS)

    # The Free plan (the default): 5 generations a month. All 5, then a denial that lasts until
    # the month's end: the ordinary 429, retryAfterMs exact to the period's end.
    for _ in range(5):
        assert stack.post("/api/generate").status == 200
    denied_at = stack.redis.client.now_ms()
    wait = assert_out_of_charge(stack.post("/api/generate"), "generations")
    month_start, month_end = month_window(denied_at)
    assert month_end - stack.redis.client.now_ms() <= wait <= month_end - denied_at, (wait, month_end, denied_at)

    r = stack.get("/api/usage", headers={"Accept": "application/json"})
    assert r.status == 200, r
    usage = r.json()
    assert usage["plan"] == {"id": "free", "label": "Free", "source": "default"}, usage
    generations = {p["id"]: p for p in usage["pools"]}["generations"]
    assert generations["period"] == "month", generations
    assert (generations["periodStart"], generations["resetsAt"]) == (month_start, month_end), generations
    assert (generations["current"], generations["max"]) == (0, 5), generations
    assert generations["nextRechargeAt"] == month_end and generations["fullAt"] == month_end, generations

    # The page on the default plan: the label with its note; the allowance used up until the
    # reset, with the date (or the wait, on the month's last day).
    dom, before, after = load_page(stack, "plans-page-free.dom.html")
    assert text_of(plan_line(dom)) == "Plan: Free (default plan)", plan_line(dom)
    gen = card(dom, "generations")
    assert 'class="pool danger"' in gen, gen
    assert '<b>0</b> of 5 left <span class="state">used up until reset</span>' in gen, gen
    phrases = when_phrases(gen)
    assert len(phrases) == 2 and phrases[1] == "5 per month", phrases
    assert phrases[0] in reset_phrases(month_end, before, after), (phrases, month_end, before, after)
    assert phrases[0].startswith("resets "), phrases

    # Pro, through the admin API (loopback, bearer token), with a billing anchor 2 days 5 hours
    # ago: the month resets on the anchor's day next month (more than 24 h ahead: a date), the
    # day 19 h from now (a wait), whatever the calendar says today. The limits apply at once,
    # what was used stays used (100 - 5 = 95), and the page says so.
    anchor = stack.redis.client.now_ms() - 2 * DAY_MS - 5 * 3_600_000
    r = stack.request("PUT", f"/api/usage/plan?subject={SUBJECT}", headers={**ADMIN, "Content-Type": "application/json"},
                      body=b'{"plan":"pro","periodAnchor":%d}' % anchor)
    assert r.status == 200, r
    assert r.json() == {"subject": SUBJECT, "plan": "pro", "source": "stored", "periodAnchor": anchor}, r
    r = stack.get(f"/api/usage/plan?subject={SUBJECT}", headers=ADMIN)
    assert r.status == 200 and r.json()["source"] == "stored", r
    for _ in range(2):
        assert stack.post("/api/generate").status == 200
    for _ in range(3):
        assert stack.post("/api/call").status == 200
    assert stack.post("/api/image").status == 200

    r = stack.get("/api/usage", headers={"Accept": "application/json"})
    assert r.status == 200, r
    usage = r.json()
    assert usage["plan"] == {"id": "pro", "label": 'Pro <i>plus</i> & "co"', "source": "stored"}, usage
    pools = {p["id"]: p for p in usage["pools"]}
    generations, calls, images = pools["generations"], pools["api-calls"], pools["images"]
    month_end = next_month(anchor)
    assert (generations["current"], generations["max"]) == (93, 100), generations
    assert (generations["periodStart"], generations["resetsAt"]) == (anchor, month_end), (generations, anchor)
    assert calls["period"] == "day" and calls["max"] is None and calls["usedBalance"] == 3, calls
    day_end = anchor + 3 * DAY_MS
    assert (calls["periodStart"], calls["resetsAt"]) == (day_end - DAY_MS, day_end), (calls, anchor)
    assert "period" not in images and "resetsAt" not in images, images

    dom, before, after = load_page(stack, "plans-page-pro.dom.html")
    line = plan_line(dom)
    # The label as text, escaped (Chromium's serializer re-escapes < > &), without the note.
    assert line == "Plan: <b>Pro &lt;i&gt;plus&lt;/i&gt; &amp; \"co\"</b>", line
    assert html.unescape(text_of(line)) == "Plan: " + PRO_LABEL, line
    assert "default plan" not in dom, dom

    gen = card(dom, "generations")
    assert 'class="pool ok"' in gen, gen
    assert "<b>93</b> of 100 left</p>" in gen, gen
    assert 'aria-valuemax="100"' in gen and 'aria-valuenow="93"' in gen, gen
    phrases = when_phrases(gen)
    assert len(phrases) == 2 and phrases[1] == "100 per month", phrases
    assert phrases[0] in reset_phrases(month_end, before, after), (phrases, month_end, before, after)
    assert re.fullmatch(r"resets [A-Z][a-z]{2} \d{1,2}(, \d{4})?", phrases[0]), phrases
    assert "next charge" not in gen and "+1 every" not in gen, gen

    meter = card(dom, "api-calls")
    assert 'class="pool unlimited"' in meter, meter
    assert "<b>3</b> used today" in meter, meter
    phrases = when_phrases(meter)
    assert phrases[0] == "unlimited" and phrases[1] in reset_phrases(day_end, before, after), (phrases, day_end)
    assert phrases[1] in ("resets in 19h", "resets in 18h 59m"), phrases

    # A pool without a period is the same card as ever.
    img = card(dom, "images")
    assert "<b>4</b> of 5 left" in img and "next charge in 2h · full in 2h · +1 every 2h" in text_of(img), img
    assert "resets" not in img, img

    # What people see: a phone, a desktop, a phone in dark mode.
    shots = {
        "plans-page-phone.png": ((390, 1000), 2, ()),
        "plans-page-desktop.png": ((1280, 720), 1, ()),
        "plans-page-phone-dark.png": ((390, 1000), 2, ("--blink-settings=preferredColorScheme=0", "--force-dark-mode")),
    }
    taken = {name: screenshot(stack, name, size, scale, *extra) for name, (size, scale, extra) in shots.items()}
    assert taken["plans-page-phone.png"] != taken["plans-page-phone-dark.png"]

    # The page as a browser asks for it: HTML; JSON stays the default.
    r = stack.get("/api/usage", headers={"Accept": BROWSER_ACCEPT})
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8", r
    assert '<p class="plan">Plan: <b>Pro &lt;i&gt;plus&lt;/i&gt; &amp; &quot;co&quot;</b></p>' in r.text, r.text[:2000]
