"""pytest fixtures for the end-to-end tests; the machinery is in harness.py."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from harness import _BASE, TEST_TIMEOUT, Stack, cleanup_all


# --------------------------------------------------------------------------------------------
# fixtures and hooks


@pytest.fixture
def make_stack(request):
    """Factory: make_stack(config_body=..., redis=True, settings=..., extra=...) -> started Stack."""
    made: list[Stack] = []

    def factory(*args, start=True, **kw) -> Stack:
        s = Stack(*args, **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield factory
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for s in made:
        if failed:
            print(s.diagnostics())
        s.stop()
        if not (failed and os.environ.get("CHARGE_GATE_E2E_KEEP")):
            shutil.rmtree(s.dir, ignore_errors=True)


@pytest.fixture
def stack(make_stack) -> Stack:
    """The default stack: Redis store, the default pools and routes."""
    return make_stack()


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="t", dir=_BASE))
    yield d
    shutil.rmtree(d, ignore_errors=True)


class _TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    def on_alarm(signum, frame):
        raise _TestTimeout(f"test exceeded {TEST_TIMEOUT}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    cleanup_all()
