"""The layer contract (need_dx, num_params, nesting) and the argument checks of mtlearn.nn."""

import copy
import math
import pickle

import numpy as np
import pytest

from mtlearn import nn

TOL = 1e-6            # float64 gradient checks


def f64(cls, *args):
    return cls(*args, dtype=np.float64, rng=0)


# ---------------------------------------------------------------- need_dx
LAYERS = {           # every nn layer, with an input it accepts
    "Dense": (lambda: f64(nn.Dense, 4, 3), (2, 4)),
    "Conv2D": (lambda: f64(nn.Conv2D, 2, 3, 3), (2, 2, 5, 5)),
    "Conv2D naive": (lambda: nn.Conv2D(2, 3, 3, impl="naive", dtype=np.float64), (2, 2, 5, 5)),
    "MaxPool2D": (lambda: nn.MaxPool2D((2, 3)), (2, 2, 7, 9)),
    "ReLU": (nn.ReLU, (2, 3)),
    "Tanh": (nn.Tanh, (2, 3)),
    "Flatten": (nn.Flatten, (2, 3, 2)),
    "RNN": (lambda: f64(nn.RNN, 3, 4), (2, 5, 3)),
    "LSTM": (lambda: f64(nn.LSTM, 3, 4), (2, 5, 3)),
    "GRU": (lambda: f64(nn.GRU, 3, 4), (2, 5, 3)),
    "LastStep": (nn.LastStep, (2, 5, 3)),
    "Sequential": (lambda: nn.Sequential(nn.Dense(4, 3), nn.Tanh(), dtype=np.float64), (2, 4)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_takes_need_dx_and_then_returns_no_dx(name, rng):
    make, shape = LAYERS[name]
    layer = make()
    out, cache = layer.forward(rng.standard_normal(shape))
    dout = rng.standard_normal(out.shape)
    dx, grads = layer.backward(dout, cache)
    skipped, same_grads = layer.backward(dout, cache, need_dx=False)
    assert dx is not None and dx.shape == shape
    assert skipped is None
    for key, a, b in zip(layer.named_params(), layer.named_grads(grads).values(),
                         layer.named_grads(same_grads).values(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_sequential_passes_need_dx_to_any_layer_subclass_without_inspecting_it(rng):
    seen = []

    class Spy(nn.Dense):                 # a signature that names no need_dx
        def backward(self, dout, cache, **options):
            seen.append(options.get("need_dx", True))
            return super().backward(dout, cache, **options)

    m = nn.Sequential(Spy(3, 4), nn.ReLU(), Spy(4, 2), dtype=np.float64)
    x = rng.standard_normal((5, 3))
    m.loss_and_grads(nn.MSELoss(), x, rng.standard_normal((5, 2)))
    assert seen == [True, False]         # backward runs last layer first; the first skips dx
    seen.clear()
    dx, _ = m.backward(np.ones((5, 2)), m.forward(x)[1])
    assert seen == [True, True] and dx.shape == x.shape


def test_duck_typed_layer_is_never_given_need_dx(rng):
    class Mine:                          # backward(d, cache) only, as contract_check writes it
        params = {}

        def forward(self, x):
            return x * 2, None

        def backward(self, d, cache):
            return d * 2, {}

    m = nn.Sequential(Mine(), nn.Dense(3, 2), dtype=np.float64)
    x = rng.standard_normal((4, 3))
    out, cache = m.forward(x)
    dx, g1 = m.backward(np.ones_like(out), cache)
    np.testing.assert_allclose(dx, 2 * np.ones((4, 2)) @ m.layers[1].params["weight"])
    none, g2 = m.backward(np.ones_like(out), cache, need_dx=False)
    assert none is None
    np.testing.assert_array_equal(g1, g2)
    # the helper that model-parallel code calls, on both kinds of layer
    assert nn.backward_of(Mine(), np.ones(3), None, need_dx=False) == (None, {})
    dx, g = nn.backward_of(nn.Dense(3, 2), np.ones((1, 2)), np.ones((1, 3)), need_dx=False)
    assert dx is None and set(g) == {"weight", "bias"}
    np.testing.assert_array_equal(nn.backward_of(Mine(), np.ones(3), None)[0], 2 * np.ones(3))


# ---------------------------------------------------------------- num_params
def test_num_params_is_a_property_on_layers_and_models():
    dense, model = nn.Dense(5, 3), nn.course_cnn()
    assert isinstance(type(dense).__dict__.get("num_params") or nn.Layer.num_params, property)
    assert isinstance(nn.Sequential.num_params, property)
    assert dense.num_params == 5 * 3 + 3 and isinstance(dense.num_params, int)
    assert nn.LSTM(2, 3).num_params == 4 * 3 * (2 + 3 + 2)
    assert nn.ReLU().num_params == 0
    assert model.num_params == model.params.size == sum(x.num_params for x in model.layers)


# ---------------------------------------------------------------- nesting
def nested_and_flat(seed=3):
    nested = nn.Sequential(nn.Flatten(), nn.Sequential(nn.Dense(6, 5), nn.Tanh()),
                           nn.Dense(5, 3), seed=seed, dtype=np.float64)
    flat = nn.Sequential(nn.Flatten(), nn.Dense(6, 5), nn.Tanh(), nn.Dense(5, 3), seed=seed,
                         dtype=np.float64)
    return nested, flat


def test_a_nested_model_is_the_same_model_as_the_flat_one(rng):
    nested, flat = nested_and_flat()
    inner = nested.layers[1]
    # the same Generator draws in the same order: identical parameters
    np.testing.assert_array_equal(nested.params, flat.params)
    assert np.shares_memory(inner.params, nested.params)
    assert np.shares_memory(inner.layers[0].params["weight"], nested.params)
    assert nested.num_params == flat.num_params == 6 * 5 + 5 + 5 * 3 + 3
    x, y = rng.standard_normal((4, 2, 3)), rng.integers(0, 3, 4)
    loss = nn.SoftmaxCrossEntropy()
    a, ga, _ = nested.loss_and_grads(loss, x, y)
    b, gb, _ = flat.loss_and_grads(loss, x, y)
    assert a == b
    np.testing.assert_array_equal(ga, gb)
    nested.params[:] = 0                             # writes reach the inner layers
    assert np.all(inner.layers[0].params["bias"] == 0)


def test_a_nested_model_gradchecks_with_named_errors(rng):
    nested, _ = nested_and_flat()
    result = nn.gradcheck(nested, rng.standard_normal((3, 2, 3)))
    assert result.passed and result.max_rel_error < TOL, result
    assert set(result.errors) == {"input", "1.0.weight", "1.0.bias", "2.weight", "2.bias"}
    conv_first = nn.Sequential(nn.Sequential(nn.Conv2D(1, 2, 3), nn.ReLU()), nn.Flatten(),
                               nn.Dense(8, 2), dtype=np.float64)
    assert nn.gradcheck(conv_first, rng.standard_normal((2, 1, 4, 4))).max_rel_error < TOL


def test_a_nested_model_trains(rng):
    nested, _ = nested_and_flat()
    x = rng.standard_normal((32, 2, 3))
    y = (x.reshape(32, -1).sum(axis=1) > 0).astype(int)
    opt = nn.SGD(nested.params, lr=0.5, momentum=0.5)
    losses = []
    for _ in range(60):
        value, grads, _ = nested.loss_and_grads(nn.SoftmaxCrossEntropy(), x, y)
        opt.step(grads)
        losses.append(value)
    assert losses[-1] < 0.5 * losses[0]


def test_a_nested_model_skips_the_first_input_gradient(rng):
    m = nn.Sequential(nn.Sequential(nn.Conv2D(1, 2, 3), nn.ReLU()), nn.Flatten(),
                      nn.Dense(8, 2), dtype=np.float64)
    out, cache = m.forward(rng.standard_normal((2, 1, 4, 4)))
    dx, g1 = m.backward(np.ones_like(out), cache)
    none, g2 = m.backward(np.ones_like(out), cache, need_dx=False)
    assert dx.shape == (2, 1, 4, 4) and none is None
    np.testing.assert_array_equal(g1, g2)


def test_nested_views_survive_use_buffer_pickle_and_deepcopy():
    nested, _ = nested_and_flat()
    buf = np.zeros(nested.num_params)
    nested.use_buffer(buf)
    inner = nested.layers[1]
    assert nested.params is buf and np.shares_memory(inner.layers[0].params["weight"], buf)
    for clone in (pickle.loads(pickle.dumps(nested)), copy.deepcopy(nested)):
        np.testing.assert_array_equal(clone.params, nested.params)
        clone.params[:] = 7
        assert np.all(clone.layers[1].layers[0].params["weight"] == 7)
        assert np.shares_memory(clone.layers[1].params, clone.params)
        assert not np.shares_memory(clone.params, nested.params)


def test_nested_repr_is_indented():
    nested, _ = nested_and_flat()
    text = repr(nested)
    assert "\n  (1): Sequential(\n    (0): Dense(6, 5)\n    (1): Tanh()\n  )" in text
    assert text.endswith("# 53 parameters, float64")


def test_the_same_layer_twice_is_refused():
    dense = nn.Dense(3, 3)
    with pytest.raises(ValueError, match=r"layers 0 and 2 are the same object"):
        nn.Sequential(dense, nn.ReLU(), dense)


# ---------------------------------------------------------------- a model without parameters
def test_a_model_without_parameters_runs_but_cannot_be_trained(rng):
    model = nn.Sequential(nn.Flatten(), nn.ReLU(), dtype=np.float64)
    assert model.num_params == 0
    x = rng.standard_normal((2, 3, 2))
    np.testing.assert_array_equal(model(x), np.maximum(x.reshape(2, 6), 0))
    assert nn.gradcheck(model, x).passed            # its input gradient is still checkable
    for opt in (nn.SGD, nn.Adam):
        with pytest.raises(ValueError, match="no parameters to train"):
            opt(model.params, lr=0.1)
        with pytest.raises(ValueError, match="no parameters to train"):
            opt(model.params[0:0], lr=0.1)


def test_an_empty_share_of_a_model_can_have_an_optimizer():
    # more workers than parameters: a worker's slice of the flat vector is empty
    params = nn.Sequential(nn.Dense(1, 1)).params
    for opt in (nn.SGD(params[2:], lr=0.1, momentum=0.9), nn.Adam(params[1:1], lr=0.1)):
        opt.step(np.zeros(0, dtype=params.dtype))
        assert opt.params.size == 0


# ---------------------------------------------------------------- MaxPool2D
def torch_pool_size(n, k, s):
    """torch.nn.MaxPool2d's output size (padding 0, dilation 1, ceil_mode False)."""
    return math.floor((n - (k - 1) - 1) / s + 1)


def naive_max_pool(x, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = torch_pool_size(x.shape[2], kh, sh), torch_pool_size(x.shape[3], kw, sw)
    out = np.empty(x.shape[:2] + (ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("kernel, stride, hw", [
    ((2, 3), None, (7, 9)),          # stride defaults to the kernel on both axes: 3 x 3
    ((2, 3), (1, 2), (7, 9)),
    (3, (2, 1), (8, 6)),
    (2, 1, (5, 5)),
])
def test_max_pool_pairs_follow_torch(kernel, stride, hw, rng):
    pool = nn.MaxPool2D(kernel, stride)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (kh, kw) if stride is None else (stride, stride) if isinstance(stride, int) else stride
    x = rng.standard_normal((2, 3, *hw))
    out = pool(x)
    assert out.shape == (2, 3, torch_pool_size(hw[0], kh, sh), torch_pool_size(hw[1], kw, sw))
    np.testing.assert_array_equal(out, naive_max_pool(x, (kh, kw), (sh, sw)))
    result = nn.gradcheck(pool, x)
    assert result.max_rel_error < TOL, result


def test_max_pool_2_by_3_gives_3_by_3_on_7_by_9():
    pool = nn.MaxPool2D((2, 3))
    assert pool.stride == (2, 3) and pool(np.zeros((1, 1, 7, 9))).shape == (1, 1, 3, 3)
    assert repr(pool) == "MaxPool2D((2, 3))"
    assert repr(nn.MaxPool2D(3, stride=(2, 1))) == "MaxPool2D(3, stride=(2, 1))"
    with pytest.raises(ValueError, match=r"MaxPool2D\(\(2, 3\)\).*H >= 2, W >= 3"):
        pool(np.zeros((1, 1, 7, 2)))


# ---------------------------------------------------------------- constructor arguments
@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Dense(2.5, 4), TypeError, r"Dense: in_features must be an int >= 1, got 2\.5"),
    (lambda: nn.Dense(4, True), TypeError, "out_features"),
    (lambda: nn.Dense("3", 4), TypeError, "in_features"),
    (lambda: nn.Dense(0, 4), ValueError, "in_features"),
    (lambda: nn.Conv2D(True, 3, 3), TypeError, "Conv2D: in_channels"),
    (lambda: nn.Conv2D(1, 3.0, 3), TypeError, "out_channels"),
    (lambda: nn.Conv2D(1, 3, 2.5), TypeError, "kernel_size"),
    (lambda: nn.Conv2D(1, 3, (3, 0)), ValueError, r"kernel_size\[1\]"),
    (lambda: nn.Conv2D(1, 3, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2D(1, 3, 3, stride=1.5), TypeError, "stride"),
    (lambda: nn.Conv2D(1, 3, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2D(1, 3, 3, impl="fft"), ValueError, "impl"),
    (lambda: nn.MaxPool2D(2.0), TypeError, "kernel_size"),
    (lambda: nn.MaxPool2D(2, stride=0), ValueError, "stride"),
    (lambda: nn.MaxPool2D(256), ValueError, "at most 255"),
    (lambda: nn.LSTM(3, "4"), TypeError, "LSTM: hidden_size"),
    (lambda: nn.RNN(None, 4), TypeError, "input_size"),
    (lambda: nn.Embedding(10, 2.0), TypeError, "embedding_dim"),
    (lambda: nn.Dense(3, 2, rng="abc"), TypeError, "rng must be None, an int seed"),
    (lambda: nn.Dense(3, 2, rng=1.5), TypeError, "rng"),
    (lambda: nn.Dense(3, 2, rng=-1), ValueError, "rng"),
    (lambda: nn.Dense(3, 2, dtype="float33"), TypeError, "dtype must be a floating numpy dtype"),
    (lambda: nn.Dense(3, 2, dtype=None), TypeError, "dtype"),
    (lambda: nn.LSTM(3, 2, dtype=np.complex128), ValueError, "dtype"),
    (lambda: nn.Sequential(nn.Dense(3, 2), seed=-1), ValueError, "seed"),
    (lambda: nn.Sequential(nn.Dense(3, 2), seed="a"), TypeError, "seed"),
    (lambda: nn.Sequential(nn.Dense(3, 2), dtype="half precision"), TypeError, "dtype"),
    (lambda: nn.course_cnn(image_size=30), ValueError, "divisible by 4"),
    (lambda: nn.course_cnn(channels=(8,)), TypeError, "channels"),
    (lambda: nn.balanced_mlp(width=2.5), TypeError, "width"),
])
def test_constructor_arguments_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------- optimizer arguments
P = np.zeros(3)


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Adam(P, eps=0), ValueError, r"eps must be a finite number > 0"),
    (lambda: nn.Adam(P, eps=-1), ValueError, "eps"),
    (lambda: nn.Adam(P, eps="1e-8"), TypeError, "eps"),
    (lambda: nn.SGD(P, weight_decay=float("nan")), ValueError, "weight_decay"),
    (lambda: nn.Adam(P, weight_decay=-0.1), ValueError, "weight_decay"),
    (lambda: nn.SGD(P, lr="0.1"), TypeError, r"lr must be a finite number > 0, got '0\.1'"),
    (lambda: nn.SGD(P, lr=None), TypeError, "lr"),
    (lambda: nn.Adam(P, lr=None), TypeError, "lr"),
    (lambda: nn.SGD(P, lr=0), ValueError, "lr"),
    (lambda: nn.SGD(P, lr=float("inf")), ValueError, "lr"),
    (lambda: nn.SGD(P, lr=0.1, momentum=1), ValueError, r"momentum must be .*>= 0 and < 1"),
    (lambda: nn.SGD(P, lr=0.1, momentum=-0.1), ValueError, "momentum"),
    (lambda: nn.SGD(P, lr=0.1, momentum="0.9"), TypeError, "momentum"),
    (lambda: nn.SGD(P, lr=0.1, nesterov="yes"), TypeError, "nesterov"),
    (lambda: nn.SGD(P, lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: nn.Adam(P, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be .*< 1"),
    (lambda: nn.Adam(P, betas=(-0.1, 0.99)), ValueError, r"betas\[0\]"),
    (lambda: nn.Adam(P, betas=(0.9, float("nan"))), ValueError, r"betas\[1\]"),
    (lambda: nn.Adam(P, betas=0.9), TypeError, "betas must be a pair"),
    (lambda: nn.Adam(P, betas=(0.9,)), ValueError, "betas must be a pair"),
    (lambda: nn.SGD(np.zeros((2, 2)), lr=0.1), ValueError, "1-D"),
    (lambda: nn.SGD(np.zeros(3, dtype=int), lr=0.1), TypeError, "floating"),
    (lambda: nn.SGD(np.zeros(0), lr=0.1), ValueError, "no parameters"),
])
def test_optimizer_arguments_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_adam_stays_finite_where_gradients_are_zero():
    p = np.array([1.0, 2.0])
    opt = nn.Adam(p, lr=0.1)
    for _ in range(3):
        opt.step(np.zeros(2))
    np.testing.assert_array_equal(p, [1.0, 2.0])


# ---------------------------------------------------------------- forward inputs
@pytest.mark.parametrize("name", [n for n in LAYERS if n != "Conv2D naive"])
def test_complex_input_is_refused_not_truncated(name):
    make, shape = LAYERS[name]
    with pytest.raises(TypeError, match=r"complex values are not supported"):
        make().forward(np.ones(shape, dtype=np.complex128))


@pytest.mark.parametrize("name", ["Dense", "ReLU", "LSTM", "Sequential"])
def test_a_list_input_is_refused_with_the_layer_named(name):
    make, shape = LAYERS[name]
    layer = make()
    with pytest.raises(TypeError, match=r"must be a numpy array, got list"):
        layer.forward(np.ones(shape).tolist())


def test_complex_state_and_loss_inputs_are_refused():
    lstm = nn.LSTM(3, 2)
    h = np.zeros((1, 2), dtype=complex)
    with pytest.raises(TypeError, match=r"LSTM\(3, 2\): the state .*complex"):
        lstm.forward(np.zeros((1, 4, 3)), (h, h.real))
    with pytest.raises(TypeError, match="logits .*complex"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3), dtype=complex), np.array([0, 1]))
    with pytest.raises(TypeError, match="target .*complex"):
        nn.MSELoss().forward(np.zeros(2), np.zeros(2, dtype=complex))
    with pytest.raises(ValueError, match="integer ids"):
        nn.Embedding(5, 2).forward(np.zeros((1, 3), dtype=complex))


# ---------------------------------------------------------------- other functions
def test_gradcheck_sample_predict_and_tbptt_arguments(rng):
    with pytest.raises(ValueError, match="eps"):
        nn.gradcheck(nn.Tanh(), rng.standard_normal(3), eps=0)
    with pytest.raises(TypeError, match="check_input"):
        nn.gradcheck(nn.Tanh(), rng.standard_normal(3), check_input="yes")
    with pytest.raises(ValueError, match="check_input=False"):
        nn.gradcheck(f64(nn.Embedding, 5, 2), np.array([[1.0, 2.0]]))
    model = nn.char_model(5, "rnn", hidden_size=4)
    with pytest.raises(TypeError, match="length"):
        nn.sample(model, [0], 2.5)
    with pytest.raises(TypeError, match="temperature"):
        nn.sample(model, [0], 2, temperature="hot")
    with pytest.raises(ValueError, match="at least one sample"):
        model.predict(np.zeros((0, 3), dtype=int))
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(np.zeros((2, 3), dtype=int), batch_size=0)
    chunks = [(np.zeros((2, 3), dtype=int), np.zeros((2, 3), dtype=int))]
    with pytest.raises(ValueError, match="clip_norm"):
        nn.fit_tbptt(model, chunks, nn.SGD(model.params, lr=0.1), clip_norm=0)
    with pytest.raises(TypeError, match="optimizer"):
        nn.fit_tbptt(model, chunks, None)
