"""``tensor``: slices cover every channel once, equal to serial with any thread count, barriers."""

import numpy as np
import pytest
from cases import CASES, assert_close, train_case

from mtlearn import nn
from mtlearn.parallel.tensor import is_split, make_shard, owned_slices, split_plan


def train(case, strategy="tensor", threads=2, **kw):
    return train_case(case, strategy, threads, **kw)


@pytest.fixture(scope="module")
def serial():
    return {case: train(case, "serial", 1) for case in CASES}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2, 3, 5, 8])
def test_slices_cover_every_channel_and_parameter_exactly_once(case, threads):
    model = CASES[case]()[0]()
    for layer, bounds in zip(model.layers, split_plan(model, threads), strict=True):
        assert (bounds is None) == (not is_split(layer))
        if bounds is not None:
            n = layer.out_channels if isinstance(layer, nn.Conv2D) else layer.out_features
            assert len(bounds) == threads
            assert [c for lo, hi in bounds for c in range(lo, hi)] == list(range(n))
    owned = owned_slices(model, threads)
    assert len(owned) == threads
    hits = np.zeros(model.params.size, dtype=int)
    for mine in owned:
        for _, _, sl in mine:
            hits[sl] += 1
    assert np.all(hits == 1)


def test_a_shard_computes_its_slice_with_views_of_the_weights(rng):
    conv = nn.Conv2D(3, 5, 3, padding=1, dtype=np.float64, rng=0)
    dense = nn.Dense(7, 6, dtype=np.float64, rng=1)
    for layer, x, index in ((conv, rng.normal(size=(2, 3, 5, 5)), np.s_[:, 1:4]),
                            (dense, rng.normal(size=(4, 3, 7)), np.s_[..., 1:4])):
        shard = make_shard(layer, 1, 4)
        assert all(np.shares_memory(shard.params[n], layer.params[n]) for n in layer.params)
        full, _ = layer.forward(x)
        part, cache = shard.forward(x)
        np.testing.assert_allclose(part, full[index], rtol=1e-13)
        dx, g = shard.backward(np.ones_like(part), cache)
        assert dx.shape == x.shape and g["weight"].shape[0] == 3


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [5, 7])
def test_more_threads_than_channels_still_equals_serial(case, threads, serial, no_thread_leak):
    ref_h, ref_p = serial[case]
    h1, p1 = train(case, threads=threads)
    h2, p2 = train(case, threads=threads)
    assert_close(h1.losses, ref_h.losses)
    assert_close(p1, ref_p)
    np.testing.assert_array_equal(p1, p2)


def test_batch_smaller_than_threads_is_fine(no_thread_leak):
    ref_h, ref_p = train("cnn", "serial", 1, batch_size=2)
    h, p = train("cnn", threads=4, batch_size=2)
    assert_close(h.losses, ref_h.losses)
    assert_close(p, ref_p)


def expected_barriers(model) -> int:
    """start + end, one per layer forward and one for the loss, then per layer backward
    (none for the first: the data needs no gradient) one, plus one for a split layer's sum."""
    L = len(model.layers)
    return 2 + L + 1 + sum(2 if is_split(layer) else 1 for layer in model.layers[1:])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 3])
def test_barrier_count_per_step(case, threads):
    h, _ = train(case, threads=threads)
    model = CASES[case]()[0]()
    assert h.info["barriers_per_step"] == expected_barriers(model)
    assert expected_barriers(model) == {"cnn": 20, "lstm": 9}[case]
    waits = [s for s in h.trace if s.thread == "tensor-0" and s.kind == "wait"]
    assert len(waits) == h.steps * expected_barriers(model) + 1      # + the final release
    assert 0 <= h.info["wait_fraction"] <= 1


def test_info_names_split_and_worker0_layers():
    h, _ = train("cnn", threads=3)
    assert [d["layer"] for d in h.info["split_layers"]] == [0, 3, 7]
    assert h.info["split_layers"][1]["slices"] == [[0, 2], [2, 4], [4, 6]]
    assert h.info["worker0_layers"] == [1, 2, 4, 5, 6]
    kinds = {s.kind for s in h.trace if s.thread.startswith("tensor-")}
    assert {"forward", "backward", "reduce", "update", "wait"} <= kinds


def test_adam_on_owned_slices_equals_serial():
    def opt(p):
        return nn.Adam(p, lr=0.01)
    ref_h, ref_p = train("cnn", "serial", 1, optimizer=opt, epochs=2)
    h, p = train("cnn", threads=3, optimizer=opt, epochs=2)
    assert_close(h.losses, ref_h.losses)
    assert_close(p, ref_p)
