"""The products that sum over a whole batch run with the GIL released (``nn.sum_product``).

numpy's ``a @ b`` releases the GIL only when its output has more than 500 elements, however
long the product: a weight gradient (a small matrix summed over every sample and position)
then holds it for the whole BLAS call and stalls every other thread. ``nn.sum_product`` goes
through ``np.dot``, which releases it. Checked by behaviour: a Python thread that counts while
the product runs gets to count only if the GIL was released.
"""

import sys
import threading

import numpy as np
import pytest

from mtlearn import nn


def count_during(fn) -> int:
    """How far a busy Python thread counts while ``fn()`` runs on this one."""
    counter = [0]
    go, stop = threading.Event(), threading.Event()

    def spin():
        go.set()
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    go.wait()
    try:
        best = 0
        for _ in range(5):                   # a busy machine may not run the spinner at once
            before = counter[0]
            fn()
            best = max(best, counter[0] - before)
            if best > 1000:
                break
        return best
    finally:
        stop.set()
        t.join()


@pytest.mark.skipif(not getattr(sys, "_is_gil_enabled", lambda: True)(),
                    reason="no GIL in this interpreter")
def test_a_weight_gradient_product_lets_other_threads_run():
    rng = np.random.default_rng(0)
    cols = rng.standard_normal((9, 400_000))     # like a first conv layer: 9 x 8 output
    d = rng.standard_normal((8, 400_000))
    assert np.allclose(nn.sum_product(cols, d.T), cols @ d.T)
    assert count_during(lambda: nn.sum_product(cols, d.T)) > 1000
