"""The flat parameter vector, determinism, duck typing and the optimizers."""

import numpy as np
import pytest

from mtlearn import nn


def small_model(seed=0, dtype=np.float64):
    return nn.Sequential(nn.Conv2D(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                         nn.Flatten(), nn.Dense(2 * 3 * 3, 4), seed=seed, dtype=dtype)


def test_params_are_views_into_one_flat_vector():
    m = small_model()
    assert m.params.ndim == 1 and m.params.flags.c_contiguous
    assert m.params.size == sum(layer.num_params for layer in m.layers)
    for layer in m.layers:
        for arr in layer.params.values():
            assert np.shares_memory(arr, m.params)


def test_writing_params_changes_the_layers(rng):
    m = small_model()
    x = rng.standard_normal((2, 1, 6, 6))
    before = m(x)
    m.params[:] = 0
    assert np.all(m.layers[0].params["weight"] == 0)
    np.testing.assert_array_equal(m(x), np.zeros_like(before))
    m.params += 1.0                       # in-place updates are seen too
    assert np.all(m.layers[-1].params["bias"] == 1)


def test_same_seed_same_model_other_seed_other_model():
    a, b, c = small_model(0), small_model(0), small_model(1)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)


def test_flat_gradient_matches_layer_gradients(rng):
    m = small_model()
    x = rng.standard_normal((3, 1, 6, 6))
    out, cache = m.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, g = m.backward(dout, cache)
    assert g.shape == m.params.shape and dx.shape == x.shape
    for i, name, sl in m.param_slices():
        assert np.shares_memory(m.layers[i].params[name], m.params[sl])
    # gradient of the last Dense computed by hand
    dense_in = m.layers[3](m.layers[2](m.layers[1](m.layers[0](x))))
    i, name, sl = m.param_slices()[-2]
    np.testing.assert_allclose(g[sl].reshape(4, 18), dout.T @ dense_in)


def test_caller_supplied_gradient_buffer(rng):
    m = small_model()
    x = rng.standard_normal((2, 1, 6, 6))
    out, cache = m.forward(x)
    buf = np.full_like(m.params, np.nan)
    _, g = m.backward(np.ones_like(out), cache, grads=buf)
    assert g is buf and np.all(np.isfinite(buf))
    _, fresh = m.backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(buf, fresh)
    with pytest.raises(ValueError, match="grads must have shape"):
        m.backward(np.ones_like(out), cache, grads=np.empty(3))


def test_need_dx_false_gives_same_gradients(rng):
    m = small_model()
    x = rng.standard_normal((2, 1, 6, 6))
    out, cache = m.forward(x)
    dx, g1 = m.backward(np.ones_like(out), cache)
    none, g2 = m.backward(np.ones_like(out), cache, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(g1, g2)


def test_duck_typed_layer(rng):
    class Double:
        params = {}

        def forward(self, x):
            return 2 * x, None

        def backward(self, dout, cache):
            return 2 * dout, {}

    class Scale:                                  # a learner's layer with a parameter
        def __init__(self):
            self.params = {"s": np.array([3.0])}

        def forward(self, x):
            return self.params["s"] * x, x

        def backward(self, dout, cache):
            return self.params["s"] * dout, {"s": np.array([np.sum(dout * cache)])}

    m = nn.Sequential(Double(), nn.Flatten(), Scale(), nn.Dense(4, 2), dtype=np.float64)
    assert np.shares_memory(m.layers[2].params["s"], m.params)
    x = rng.standard_normal((3, 2, 2))
    assert nn.gradcheck(m, x).passed
    with pytest.raises(TypeError, match="layer 0"):
        nn.Sequential(object())


def test_sgd_and_momentum_match_the_formulas():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.5])
    nn.SGD(p, lr=0.1).step(g)
    np.testing.assert_allclose(p, [0.95, -2.05])
    p = np.array([1.0])
    opt = nn.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step(np.array([1.0]))               # v = 1 + 0.01
    opt.step(np.array([1.0]))               # v = 0.9 * 1.01 + (1 + 0.01 * p1)
    p1 = 1.0 - 0.1 * 1.01
    v2 = 0.9 * 1.01 + 1 + 0.01 * p1
    np.testing.assert_allclose(p, [p1 - 0.1 * v2])


def test_adam_first_step_is_lr_times_sign():
    p = np.array([1.0, 1.0, 1.0])
    nn.Adam(p, lr=0.01).step(np.array([3.0, -0.2, 1e-3]))
    np.testing.assert_allclose(p, [0.99, 1.01, 0.99], rtol=1e-5)


def test_optimizers_update_in_place_and_validate():
    m = small_model()
    view = m.layers[0].params["weight"]
    before = view.copy()
    nn.Adam(m.params, lr=0.1).step(np.ones_like(m.params))
    assert not np.array_equal(view, before)
    with pytest.raises(ValueError, match="lr"):
        nn.SGD(m.params, lr=0)
    with pytest.raises(ValueError, match="grads must have shape"):
        nn.SGD(m.params, lr=0.1).step(np.ones(3))
    with pytest.raises(TypeError, match="params"):       # a list is the wrong kind of value
        nn.SGD([1.0, 2.0], lr=0.1)


def test_minimises_a_quadratic():
    target = np.array([3.0, -1.0])
    for opt_cls, kw in ((nn.SGD, {"lr": 0.1, "momentum": 0.5}), (nn.Adam, {"lr": 0.1})):
        p = np.zeros(2)
        opt = opt_cls(p, **kw)
        for _ in range(300):
            opt.step(2 * (p - target))
        np.testing.assert_allclose(p, target, atol=1e-3)


def test_pickle_and_deepcopy_keep_params_as_views():
    import copy
    import pickle

    m = small_model()
    for clone in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
        np.testing.assert_array_equal(clone.params, m.params)
        assert not np.shares_memory(clone.params, m.params)
        for layer in clone.layers:
            for arr in layer.params.values():
                assert np.shares_memory(arr, clone.params)
