"""Headless Chromium for the browser tests (test_browser.py, test_plans_browser.py): run it
on a page of a real stack, find a pool's card in the DOM it dumps, the reference library's
retry string. CHARGE_GATE_CHROMIUM names another binary than `chromium`; screenshots go to
tests/e2e/artifacts/ (not committed)."""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import _BASE

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
MINUTE_MS = 60_000

# What Chromium itself sends for a page load.
BROWSER_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                  "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")


def _chromium() -> str | None:
    for name in (os.environ.get("CHARGE_GATE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM = _chromium()
# pytestmark = needs_chromium in a module of browser tests: skipped only when no Chromium is installed.
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian package: chromium)")


def browser(*args: str, timeout: float = 15) -> str:
    """One headless Chromium run with a throwaway profile; returns stdout (the DOM for --dump-dom).
    Chromium runs in its own process group, killed as a whole afterwards (its helpers too)."""
    profile = tempfile.mkdtemp(prefix="chr", dir=_BASE)
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--no-proxy-server",
         "--hide-scrollbars", "--mute-audio", f"--user-data-dir={profile}", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"chromium did not finish within {timeout}s: {args}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, err[-2000:]
    return out


def retry_string(ms: int) -> str:
    """The reference library's format (the third implementation, to check the other two)."""
    minutes = math.ceil(max(0, ms) / MINUTE_MS)
    if minutes < 60:
        return f"{minutes}m"
    hours, rest = divmod(minutes, 60)
    return f"{hours}h" if rest == 0 else f"{hours}h {rest}m"


def card(dom: str, pool_id: str) -> str:
    """The <li> of one pool in the dumped DOM."""
    m = re.search(r'<li class="[^"]*" id="pool-%s">.*?</li>' % re.escape(pool_id), dom, re.S)
    assert m, f"no card for {pool_id} in:\n{dom}"
    return m.group(0)


def text_of(markup: str) -> str:
    """The text of some markup, tags dropped (entities left as they are)."""
    return re.sub(r"<[^>]*>", "", markup)
