import threading

import numpy as np
import pytest


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
