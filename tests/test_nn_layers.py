"""Every layer against finite differences (float64) and against its reference."""

import numpy as np
import pytest

from mtlearn import nn

TOL = 1e-6   # relative error; correct float64 layers score ~1e-9


def f64(layer_cls, *args, **kw):
    return layer_cls(*args, dtype=np.float64, rng=0, **kw)


@pytest.mark.parametrize("layer, shape", [
    (lambda: f64(nn.Conv2D, 2, 3, 3), (2, 2, 6, 5)),
    (lambda: f64(nn.Conv2D, 2, 3, 3, stride=2, padding=1), (2, 2, 7, 6)),
    (lambda: f64(nn.Conv2D, 3, 2, (2, 3), stride=1, padding=2), (1, 3, 4, 5)),
    (lambda: f64(nn.Conv2D, 1, 4, 5, stride=3), (2, 1, 9, 11)),
    (lambda: nn.MaxPool2D(2), (2, 3, 6, 6)),
    (lambda: nn.MaxPool2D(3, stride=2), (2, 2, 7, 8)),
    (lambda: nn.MaxPool2D((2, 3), stride=1), (1, 2, 5, 7)),
    (lambda: nn.MaxPool2D(2), (2, 1, 7, 7)),            # odd size: last row/col dropped
    (lambda: nn.MaxPool2D(2, stride=3), (2, 2, 8, 9)),  # gaps between windows
    (lambda: nn.ReLU(), (3, 4, 5)),
    (lambda: nn.Tanh(), (3, 4)),
    (lambda: nn.Flatten(), (3, 2, 2, 2)),
    (lambda: f64(nn.Dense, 5, 3), (4, 5)),
    (lambda: f64(nn.Dense, 5, 3), (2, 4, 5)),          # leading dims (N, T, in)
], ids=lambda v: v if isinstance(v, tuple) else None)
def test_layer_gradients_match_finite_differences(layer, shape, rng):
    layer = layer()
    x = rng.standard_normal(shape)
    result = nn.gradcheck(layer, x)
    assert result.passed, result
    assert result.max_rel_error < TOL
    assert set(result.errors) == {"input", *layer.params}


def test_losses_gradients(rng):
    logits = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 5)
    for loss, target in ((nn.SoftmaxCrossEntropy(), y),
                         (nn.MSELoss(), rng.standard_normal((5, 4)))):
        value, cache = loss.forward(logits, target)
        assert np.ndim(value) == 0

        def scalar(loss=loss, target=target):
            return loss.forward(logits, target)[0]
        numeric = nn.numerical_gradient(scalar, logits)
        assert nn.relative_error(loss.backward(cache), numeric) < TOL


def test_cross_entropy_values():
    loss = nn.SoftmaxCrossEntropy()
    k = 10
    value, _ = loss.forward(np.zeros((3, k)), np.array([0, 3, 9]))
    assert value == pytest.approx(np.log(k))
    # huge logits stay finite (log-sum-exp is shifted)
    value, cache = loss.forward(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert value == pytest.approx(500.0)
    assert np.all(np.isfinite(loss.backward(cache)))


def test_model_gradients_with_loss(rng):
    model = nn.course_cnn(image_size=8, num_classes=3, channels=(2, 3), dtype=np.float64)
    x = rng.standard_normal((3, 1, 8, 8))
    result = nn.gradcheck(model, x, rng.integers(0, 3, 3), nn.SoftmaxCrossEntropy())
    assert result.passed, result


def test_gradcheck_catches_a_wrong_backward(rng):
    class WrongTanh(nn.Tanh):
        def backward(self, dout, cache, need_dx=True):
            return dout * (1 - cache), {}          # forgot the square
    result = nn.gradcheck(WrongTanh(), rng.standard_normal((3, 4)))
    assert not result.passed and result.max_rel_error > 1e-2


def test_gradcheck_demands_float64(rng):
    with pytest.raises(ValueError, match="float64"):
        nn.gradcheck(nn.Dense(3, 2), rng.standard_normal((2, 3)))


@pytest.mark.parametrize("trial", range(12))
def test_fast_conv_matches_naive(trial):
    r = np.random.default_rng(trial)
    c_in, c_out = r.integers(1, 4, 2)
    kh, kw = r.integers(1, 5, 2)
    stride, padding = int(r.integers(1, 4)), int(r.integers(0, 3))
    h = int(r.integers(max(1, kh - 2 * padding), 10))
    w = int(r.integers(max(1, kw - 2 * padding), 10))
    x = r.standard_normal((int(r.integers(1, 4)), c_in, h, w))
    fast = nn.Conv2D(c_in, c_out, (kh, kw), stride, padding, dtype=np.float64, rng=trial)
    naive = nn.Conv2D(c_in, c_out, (kh, kw), stride, padding, impl="naive",
                      dtype=np.float64, rng=trial)
    out, cache = fast.forward(x)
    ref, rcache = naive.forward(x)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = r.standard_normal(out.shape)
    dx, g = fast.backward(dout, cache)
    rdx, rg = naive.backward(dout, rcache)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(g[k], rg[k], rtol=1e-12, atol=1e-12)


def test_conv_matches_float32_naive_closely(rng):
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    conv = nn.Conv2D(3, 5, 3, padding=1, rng=0)
    ref = nn.conv2d_forward_naive(x.astype(np.float64), conv.params["weight"].astype(np.float64),
                                  conv.params["bias"].astype(np.float64), 1, 1)
    out = conv(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_maxpool_ties_send_gradient_to_the_first_maximum():
    pool = nn.MaxPool2D(2)
    out, cache = pool.forward(np.zeros((1, 1, 2, 4)))
    dx, _ = pool.backward(np.array([[[[1.0, 2.0]]]]), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0, 2, 0], [0, 0, 0, 0]])


def test_maxpool_matches_brute_force(rng):
    x = rng.standard_normal((2, 3, 9, 8))
    out = nn.MaxPool2D(3, stride=2)(x)
    ref = np.array([[[[x[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max() for j in range(3)]
                      for i in range(4)] for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(out, ref)


def test_layers_keep_no_per_call_state(rng):
    """A second forward pass in between must not change the first one's backward."""
    conv = nn.Conv2D(2, 3, 3, padding=1, dtype=np.float64, rng=0)
    a, b = rng.standard_normal((2, 2, 2, 5, 5))
    out_a, cache_a = conv.forward(a)
    expected = conv.backward(np.ones_like(out_a), cache_a)
    conv.forward(b)                                   # another "thread" runs in between
    again = conv.backward(np.ones_like(out_a), cache_a)
    np.testing.assert_array_equal(expected[0], again[0])
    np.testing.assert_array_equal(expected[1]["weight"], again[1]["weight"])


def test_dense_accepts_leading_dims(rng):
    d = nn.Dense(4, 3, rng=0)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(d(x), d(x.reshape(10, 4)).reshape(2, 5, 3), rtol=1e-6)


@pytest.mark.parametrize("layer, bad, expected", [
    (nn.Conv2D(3, 4, 3), (2, 1, 8, 8), r"Conv2D\(3, 4, 3\).*\(N, 3, H, W\).*\(2, 1, 8, 8\)"),
    (nn.Conv2D(1, 4, 5), (2, 1, 3, 3), r"Conv2D\(1, 4, 5\).*H, W >= 5"),
    (nn.Conv2D(1, 4, 3), (1, 8, 8), r"\(N, 1, H, W\)"),
    (nn.Dense(784, 10), (2, 100), r"Dense\(784, 10\).*\(\.\.\., 784\).*\(2, 100\)"),
    (nn.MaxPool2D(2), (2, 3, 1, 4), r"MaxPool2D\(2\).*H >= 2"),
    (nn.Flatten(), (5,), r"Flatten\(\)"),
])
def test_wrong_input_shape_names_layer_and_expected_shape(layer, bad, expected):
    with pytest.raises(ValueError, match=expected):
        layer.forward(np.zeros(bad, dtype=np.float32))


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2D(0, 3, 3), "in_channels"),
    (lambda: nn.Conv2D(1, 3, 3, stride=0), "stride"),
    (lambda: nn.Conv2D(1, 3, 3, padding=-1), "padding"),
    (lambda: nn.Conv2D(1, 3, 3, impl="fft"), "impl"),
    (lambda: nn.MaxPool2D(0), "kernel_size"),
    (lambda: nn.Dense(0, 3), "in_features"),
    (lambda: nn.Dense(3, 2, dtype=np.int32), "dtype"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_loss_input_errors():
    with pytest.raises(ValueError, match="labels"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="same shape"):
        nn.MSELoss().forward(np.zeros((2, 3)), np.zeros((3, 2)))


def test_dtype_and_rng_keywords():
    a = nn.Conv2D(2, 3, 3, dtype=np.float64, rng=7)
    b = nn.Conv2D(2, 3, 3, dtype=np.float64, rng=np.random.default_rng(7))
    assert a.params["weight"].dtype == np.float64
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"])
    bound = 1 / np.sqrt(2 * 9)
    assert np.abs(a.params["weight"]).max() <= bound
