"""pytest fixtures for the reliability tests; the machinery is in reliability.py (on top of
tests/e2e/harness.py)."""

from __future__ import annotations

import json
import os

import pytest

import reliability
from reliability import FIGURES, MODE, Cluster, harness

# Per-test limit: generous, a hung test must still end (tests/reliability/run bounds the whole).
TEST_TIMEOUT = int(os.environ.get("CHARGE_GATE_RELIABILITY_TEST_TIMEOUT", "1500" if reliability.LONG else "180"))


@pytest.fixture
def make_cluster(request):
    """Factory: make_cluster(config, responders=, nginxes=, persistent=, profile=) -> started Cluster."""
    made: list[Cluster] = []

    def factory(*args, start=True, **kw) -> Cluster:
        c = Cluster(*args, **kw)
        made.append(c)
        if start:
            c.start()
        return c

    yield factory
    harness.tear_down(request, made)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with harness.alarm(TEST_TIMEOUT):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section(f"reliability figures ({MODE})")
    for test, figs in FIGURES.items():
        tr.write_line(f"{test}:")
        for k, v in figs.items():
            tr.write_line(f"    {k}: {json.dumps(v, sort_keys=False)}")
    path = os.environ.get("CHARGE_GATE_RELIABILITY_FIGURES")
    if path:
        with open(path, "w") as f:
            json.dump({"mode": MODE, "figures": FIGURES}, f, indent=1)
        tr.write_line(f"figures written to {path}")


def pytest_sessionfinish(session, exitstatus):
    harness.cleanup_all()
