import faulthandler
import os
import signal
import sys
import threading

import numpy as np
import pytest

#: seconds one test (or one notebook cell) may take before the run is stopped with a stack
#: dump of every thread: a hang fails fast instead of eating CI's time
TEST_TIMEOUT = float(os.environ.get("MTLEARN_TEST_TIMEOUT", "300"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Every test, notebook cells included, runs under a watchdog: past TEST_TIMEOUT the
    process prints every thread's stack (faulthandler) and exits, failing the run."""
    faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt():
    """Tests of Ctrl-C need Python's default SIGINT handler. Under ``nohup`` and many job
    systems SIGINT is inherited as ignored, and ``_thread.interrupt_main`` then does
    nothing: install the default handler for the test, put back what was there after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    if before is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if before is signal.SIG_IGN:
            signal.signal(signal.SIGINT, before)


@pytest.fixture
def rng():
    """A fresh seeded Generator for each test."""
    return np.random.default_rng(1234)


@pytest.fixture
def no_thread_leak():
    """Fails the test if it leaves a thread running."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
