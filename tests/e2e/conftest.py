"""pytest fixtures for the end-to-end tests; the machinery is in harness.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness import _BASE, CLUSTER, TEST_TIMEOUT, Stack, alarm, cleanup_all, tear_down
from metering_support import CONFIG, EXTRA, REVIEW_CONFIG, REVIEW_EXTRA, REVIEW_SETTINGS, SETTINGS


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
    tear_down(request, made)


@pytest.fixture(params=["redis", "memory"])
def any_store(request, make_stack):
    """Factory like make_stack, once on the Redis store and once on the memory store (the test
    runs twice, ids [redis] and [memory]): any_store(config_body, settings=..., extra=...,
    http_extra=...) -> started Stack. The one place where a test asks for both stores. With
    CHARGE_GATE_E2E_STORE=cluster, [redis] is the session's Redis Cluster and [memory] is skipped
    (it runs in the other steps)."""
    if CLUSTER and request.param == "memory":
        pytest.skip("the memory store: this run is about the Redis Cluster (CHARGE_GATE_E2E_STORE=cluster); "
                    "the memory variant runs in the single-node runs")

    def factory(*args, **kw) -> Stack:
        return make_stack(*args, redis=request.param == "redis", **kw)

    return factory


@pytest.fixture
def stack(make_stack) -> Stack:
    """The default stack: Redis store, the default pools and routes."""
    return make_stack()


# The metering stacks of metering_support.py, used by several test modules.


@pytest.fixture(name="mstack")
def metering_stack(any_store) -> Stack:
    """The metering stack (metering_support.CONFIG), on the Redis store and on the memory store."""
    return any_store(CONFIG, settings=SETTINGS, extra=EXTRA)


@pytest.fixture(name="rstack")
def metering_redis_stack(make_stack) -> Stack:
    """The metering stack on Redis only (for checks of Redis state)."""
    return make_stack(CONFIG, settings=SETTINGS, extra=EXTRA)


@pytest.fixture(name="st")
def review_stack(any_store) -> Stack:
    """The hostile-input reviews' stack (metering_support.REVIEW_CONFIG), on each store."""
    return any_store(REVIEW_CONFIG, settings=REVIEW_SETTINGS, extra=REVIEW_EXTRA)


@pytest.fixture(name="rst")
def review_redis_stack(make_stack) -> Stack:
    """The hostile-input reviews' stack on Redis only."""
    return make_stack(REVIEW_CONFIG, settings=REVIEW_SETTINGS, extra=REVIEW_EXTRA)


@pytest.fixture
def tmp_dir():
    d = Path(tempfile.mkdtemp(prefix="t", dir=_BASE))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with alarm(TEST_TIMEOUT):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_sessionfinish(session, exitstatus):
    cleanup_all()
