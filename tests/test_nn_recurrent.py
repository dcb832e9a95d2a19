"""Recurrent layers: finite differences, the per-step references, PyTorch's formulas by hand,
state carrying, shape errors, and two small learning tasks."""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mtlearn import data, nn
from mtlearn.training import fit

TOL = 1e-6   # relative error; correct float64 layers score ~1e-9
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
NAIVE = {"rnn": (nn.rnn_forward_naive, nn.rnn_backward_naive),
         "lstm": (nn.lstm_forward_naive, nn.lstm_backward_naive),
         "gru": (nn.gru_forward_naive, nn.gru_backward_naive)}


def f64(cls, *args, **kw):
    return cls(*args, dtype=np.float64, rng=0, **kw)


def random_state(layer, n, rng):
    parts = [rng.standard_normal((n, layer.hidden_size)) for _ in range(layer.state_parts)]
    return tuple(parts) if layer.state_parts > 1 else parts[0]


def as_parts(state):
    return list(state) if isinstance(state, tuple) else [state]


class WithState:
    """A recurrent layer whose initial state is a parameter and whose final state is part of
    the output, so that ``gradcheck`` checks the gradients through both ends of the sequence
    (``backward_with_state``)."""

    def __init__(self, layer, state):
        self.layer = layer
        self.names = ["h0", "c0"][:layer.state_parts]
        self.params = {**layer.params, **dict(zip(self.names, as_parts(state), strict=True))}

    def forward(self, x):
        parts = [self.params[n] for n in self.names]
        state = tuple(parts) if len(parts) > 1 else parts[0]
        out, cache = self.layer.forward(x, state)
        final = as_parts(cache.final_state)
        return np.concatenate([out.reshape(len(x), -1), *final], axis=1), cache

    def backward(self, dout, cache):
        n, t, h = len(dout), cache.u.shape[0] - 1, self.layer.hidden_size
        dseq = dout[:, :t * h].reshape(n, t, h)
        dfinal = np.split(dout[:, t * h:], self.layer.state_parts, axis=1)
        dstate = tuple(dfinal) if len(dfinal) > 1 else dfinal[0]
        dx, grads, d0 = self.layer.backward_with_state(dseq, cache, dstate)
        return dx, {**grads, **dict(zip(self.names, as_parts(d0), strict=True))}


# ---------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", [(3, 5, 4), (1, 1, 2), (2, 7, 1)])
def test_recurrent_gradients_match_finite_differences(cell, shape, rng):
    layer = f64(CELLS[cell], shape[2], 5)
    result = nn.gradcheck(layer, rng.standard_normal(shape))
    assert result.passed, result
    assert result.max_rel_error < TOL
    assert set(result.errors) == {"input", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_through_initial_and_final_state(cell, rng):
    layer = f64(CELLS[cell], 3, 4)
    wrapped = WithState(layer, random_state(layer, 2, rng))
    result = nn.gradcheck(wrapped, rng.standard_normal((2, 6, 3)))
    assert result.passed, result
    assert {"h0", *(["c0"] if cell == "lstm" else [])} <= set(result.errors)


def test_embedding_and_laststep_gradients(rng):
    emb = f64(nn.Embedding, 7, 3)
    ids = rng.integers(0, 7, (4, 5)).astype(np.float64)   # gradcheck wants float64 input
    result = nn.gradcheck(emb, ids, check_input=False)
    assert result.passed and result.max_rel_error < TOL, result
    result = nn.gradcheck(nn.LastStep(), rng.standard_normal((3, 4, 5)))
    assert result.passed and result.max_rel_error < TOL, result


@pytest.mark.parametrize("cell", CELLS)
def test_model_gradients_with_loss(cell, rng):
    model = nn.Sequential(CELLS[cell](3, 4), nn.LastStep(), nn.Dense(4, 2), dtype=np.float64)
    x = rng.standard_normal((3, 5, 3))
    result = nn.gradcheck(model, x, rng.standard_normal((3, 2)), nn.MSELoss())
    assert result.passed, result


def test_char_model_gradients_with_sequence_loss(rng):
    model = nn.char_model(5, "lstm", hidden_size=4, embedding_dim=3, dtype=np.float64)
    ids = rng.integers(0, 5, (2, 6))
    result = nn.gradcheck(model, ids.astype(np.float64), rng.integers(0, 5, (2, 6)),
                          nn.SequenceCrossEntropy(), check_input=False)
    assert result.passed, result


def test_sequence_cross_entropy_is_the_mean_over_all_steps(rng):
    logits = rng.standard_normal((3, 4, 5))
    y = rng.integers(0, 5, (3, 4))
    loss = nn.SequenceCrossEntropy()
    value, cache = loss.forward(logits, y)
    flat, _ = nn.SoftmaxCrossEntropy().forward(logits.reshape(12, 5), y.reshape(12))
    assert value == pytest.approx(flat)

    def scalar():
        return loss.forward(logits, y)[0]
    assert nn.relative_error(loss.backward(cache), nn.numerical_gradient(scalar, logits)) < TOL
    with pytest.raises(ValueError, match=r"\(N, T, V\).*\(N, T\)"):
        loss.forward(logits, y[:, :2])


# ---------------------------------------------------------------- the references
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("trial", range(4))
def test_vectorised_layer_matches_per_step_reference(cell, trial):
    r = np.random.default_rng(trial)
    n, t, i, h = (int(v) for v in r.integers(1, 6, 4))
    layer = CELLS[cell](i, h, dtype=np.float64, rng=trial)
    x = r.standard_normal((n, t, i))
    state = random_state(layer, n, r) if trial % 2 else None
    forward_naive, backward_naive = NAIVE[cell]
    out, cache = layer.forward(x, state)
    ref, ref_final, tape = forward_naive(x, layer.params, state)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(as_parts(cache.final_state), as_parts(ref_final), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    dout = r.standard_normal(out.shape)
    dstate = random_state(layer, n, r)
    dx, grads, d0 = layer.backward_with_state(dout, cache, dstate)
    rdx, rgrads, rd0 = backward_naive(dout, tape, layer.params, dstate)
    np.testing.assert_allclose(dx, rdx, rtol=1e-10, atol=1e-12)
    for k in layer.params:
        np.testing.assert_allclose(grads[k], rgrads[k], rtol=1e-10, atol=1e-12)
    for a, b in zip(as_parts(d0), as_parts(rd0), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_layer_is_close_to_float64_reference(cell, rng):
    layer = CELLS[cell](8, 16, rng=0)
    x = rng.standard_normal((4, 12, 8)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    p64 = {k: v.astype(np.float64) for k, v in layer.params.items()}
    ref = NAIVE[cell][0](x.astype(np.float64), p64)[0]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def scalar_params(k):
    """Distinct weights for every gate of a 1-input, 1-unit cell, so a swapped gate shows."""
    return {"weight_ih": np.array([[0.3], [-0.7], [0.9], [0.2]][:k]),
            "weight_hh": np.array([[-0.4], [0.6], [0.5], [-0.8]][:k]),
            "bias_ih": np.array([0.1, 0.5, -0.3, 0.05][:k]),
            "bias_hh": np.array([-0.2, 0.25, 0.15, -0.1][:k])}


def test_lstm_is_pytorchs_formula_by_hand():
    """torch.nn.LSTM's documented equations, gate order i, f, g, o, one scalar at a time."""
    p = scalar_params(4)
    layer = f64(nn.LSTM, 1, 1)
    for k, v in p.items():
        layer.params[k][...] = v
    xs, h, c = [0.5, -1.0, 2.0], 0.1, -0.2
    out, cache = layer.forward(np.array(xs).reshape(1, 3, 1), (np.array([[h]]), np.array([[c]])))
    wi, wh = p["weight_ih"][:, 0], p["weight_hh"][:, 0]
    b = p["bias_ih"] + p["bias_hh"]
    for t, x in enumerate(xs):
        i = sigmoid(wi[0] * x + wh[0] * h + b[0])
        f = sigmoid(wi[1] * x + wh[1] * h + b[1])
        g = math.tanh(wi[2] * x + wh[2] * h + b[2])
        o = sigmoid(wi[3] * x + wh[3] * h + b[3])
        c = f * c + i * g
        h = o * math.tanh(c)
        assert out[0, t, 0] == pytest.approx(h, rel=1e-12)
    assert cache.final_state[1][0, 0] == pytest.approx(c, rel=1e-12)


def test_gru_is_pytorchs_formula_by_hand():
    """torch.nn.GRU's documented equations, gate order r, z, n, r applied to W_hn h + b_hn."""
    p = scalar_params(3)
    layer = f64(nn.GRU, 1, 1)
    for k, v in p.items():
        layer.params[k][...] = v
    xs, h = [0.5, -1.0, 2.0], 0.3
    out, _ = layer.forward(np.array(xs).reshape(1, 3, 1), np.array([[h]]))
    wi, wh, bi, bh = (p[k].reshape(-1) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    for t, x in enumerate(xs):
        r = sigmoid(wi[0] * x + bi[0] + wh[0] * h + bh[0])
        z = sigmoid(wi[1] * x + bi[1] + wh[1] * h + bh[1])
        n = math.tanh(wi[2] * x + bi[2] + r * (wh[2] * h + bh[2]))
        h = (1 - z) * n + z * h
        assert out[0, t, 0] == pytest.approx(h, rel=1e-12)


def test_rnn_is_pytorchs_formula_by_hand():
    p = scalar_params(1)
    layer = f64(nn.RNN, 1, 1)
    for k, v in p.items():
        layer.params[k][...] = v
    xs, h = [0.5, -1.0, 2.0], 0.3
    out, _ = layer.forward(np.array(xs).reshape(1, 3, 1), np.array([[h]]))
    for t, x in enumerate(xs):
        h = math.tanh(0.3 * x + 0.1 - 0.4 * h - 0.2)
        assert out[0, t, 0] == pytest.approx(h, rel=1e-12)


# ---------------------------------------------------------------- state and protocol
@pytest.mark.parametrize("cell", CELLS)
def test_chunks_with_carried_state_equal_the_whole_sequence(cell, rng):
    layer = f64(CELLS[cell], 3, 4)
    x = rng.standard_normal((2, 9, 3))
    whole, wcache = layer.forward(x)
    first, c1 = layer.forward(x[:, :4])
    second, c2 = layer.forward(x[:, 4:], c1.final_state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-12)
    # full BPTT across the boundary: pass the second chunk's dstate0 into the first
    dout = rng.standard_normal(whole.shape)
    dx, grads = layer.backward(dout, wcache)
    dx2, g2, d0 = layer.backward_with_state(dout[:, 4:], c2)
    dx1, g1, _ = layer.backward_with_state(dout[:, :4], c1, d0)
    np.testing.assert_allclose(np.concatenate([dx1, dx2], axis=1), dx, rtol=1e-10, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(g1[k] + g2[k], grads[k], rtol=1e-10, atol=1e-12)


def test_forward_with_state_carries_state_through_a_sequential(rng):
    model = nn.char_model(6, "gru", hidden_size=5, embedding_dim=3, dtype=np.float64)
    ids = rng.integers(0, 6, (2, 10))
    whole, _ = model.forward(ids)
    a, _, states = nn.forward_with_state(model, ids[:, :3])
    assert states[0] is None and states[2] is None and states[1].shape == (2, 5)
    b, cache, _ = nn.forward_with_state(model, ids[:, 3:], states)
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), whole, rtol=1e-12)
    _, grads = model.backward(np.ones_like(b), cache)        # caches fit model.backward
    assert grads.shape == model.params.shape
    with pytest.raises(ValueError, match="one entry per layer"):
        nn.forward_with_state(model, ids, states[:2])


@pytest.mark.parametrize("cell", CELLS)
def test_layers_keep_no_per_call_state(cell, rng):
    layer = f64(CELLS[cell], 3, 4)
    a, b = rng.standard_normal((2, 2, 5, 3))
    out_a, cache_a = layer.forward(a)
    expected = layer.backward(np.ones_like(out_a), cache_a)
    layer.forward(b)                                   # another "thread" runs in between
    again = layer.backward(np.ones_like(out_a), cache_a)
    np.testing.assert_array_equal(expected[0], again[0])
    for k in expected[1]:
        np.testing.assert_array_equal(expected[1][k], again[1][k])


def test_two_threads_share_one_model(rng, no_thread_leak):
    """No per-call state: two threads running one model at once get the serial gradients."""
    model = nn.Sequential(nn.LSTM(3, 16), nn.LastStep(), nn.Dense(16, 2), seed=0)
    loss = nn.SoftmaxCrossEntropy()
    halves = [(rng.standard_normal((32, 10, 3)).astype(np.float32), rng.integers(0, 2, 32))
              for _ in range(2)]
    serial = [model.loss_and_grads(loss, x, y)[1] for x, y in halves]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(20):
            together = [f.result()[1] for f in
                        [pool.submit(model.loss_and_grads, loss, x, y) for x, y in halves]]
            for a, b in zip(serial, together, strict=True):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell, k", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_parameters_follow_pytorch(cell, k):
    layer = CELLS[cell](5, 8, rng=3)
    assert {n: v.shape for n, v in layer.params.items()} == {
        "weight_ih": (k * 8, 5), "weight_hh": (k * 8, 8), "bias_ih": (k * 8,), "bias_hh": (k * 8,)}
    assert all(v.dtype == np.float32 for v in layer.params.values())
    bound = 1 / math.sqrt(8)
    assert all(np.abs(v).max() <= bound for v in layer.params.values())
    again = CELLS[cell](5, 8, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(layer.params["weight_hh"], again.params["weight_hh"])
    assert repr(layer) == f"{cell.upper()}(5, 8)"


def test_need_dx_false_skips_the_input_gradient(rng):
    layer = f64(nn.LSTM, 3, 4)
    out, cache = layer.forward(rng.standard_normal((2, 5, 3)))
    dx, grads = layer.backward(np.ones_like(out), cache, need_dx=False)
    assert dx is None and set(grads) == set(layer.params)


def test_embedding_and_laststep_forward(rng):
    emb = nn.Embedding(10, 4, rng=0)
    ids = rng.integers(0, 10, (3, 5))
    out = emb(ids)
    assert out.shape == (3, 5, 4)
    np.testing.assert_array_equal(out[1, 2], emb.params["weight"][ids[1, 2]])
    dx, grads = emb.backward(np.ones((3, 5, 4), np.float32), ids)
    assert dx is None
    np.testing.assert_array_equal(grads["weight"][:, 0], np.bincount(ids.ravel(), minlength=10))
    x = rng.standard_normal((3, 5, 4))
    np.testing.assert_array_equal(nn.LastStep()(x), x[:, -1])


@pytest.mark.parametrize("make, bad, expected", [
    (lambda: nn.LSTM(16, 64), (2, 5, 3), r"LSTM\(16, 64\).*\(N, T, 16\).*\(2, 5, 3\)"),
    (lambda: nn.RNN(4, 8), (5, 4), r"RNN\(4, 8\).*\(N, T, 4\)"),
    (lambda: nn.GRU(4, 8), (2, 0, 4), r"GRU\(4, 8\).*T >= 1"),
    (lambda: nn.LastStep(), (3, 4), r"LastStep\(\).*\(N, T, H\)"),
])
def test_wrong_input_shape_names_layer_and_expected_shape(make, bad, expected):
    with pytest.raises(ValueError, match=expected):
        make().forward(np.zeros(bad, dtype=np.float32))


def test_wrong_state_and_gradient_shapes():
    x = np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match=r"LSTM\(3, 4\).*\(h, c\), each \(2, 4\)"):
        nn.LSTM(3, 4).forward(x, np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"GRU\(3, 4\).*initial state h of shape \(2, 4\)"):
        nn.GRU(3, 4).forward(x, np.zeros((4, 2)))
    rnn = nn.RNN(3, 4)
    out, cache = rnn.forward(x)
    with pytest.raises(ValueError, match=r"RNN\(3, 4\)\.backward.*\(2, 5, 4\)"):
        rnn.backward(np.zeros((2, 4, 4)), cache)


@pytest.mark.parametrize("ids, message", [
    (np.array([[0, 10]]), r"Embedding\(10, 4\).*\[0, 10\)"),
    (np.array([[-1, 2]]), r"\[0, 10\)"),
    (np.array([0.5, 2.0]), "whole numbers"),
    (np.array(["a"]), "integer ids"),
])
def test_embedding_rejects_bad_ids(ids, message):
    with pytest.raises(ValueError, match=message):
        nn.Embedding(10, 4).forward(ids)


@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.LSTM(0, 3), ValueError, "input_size"),
    (lambda: nn.GRU(3, 2.5), TypeError, r"GRU: hidden_size must be an int >= 1, got 2\.5"),
    (lambda: nn.RNN(3, 2, dtype=np.int64), ValueError, "dtype"),
    (lambda: nn.Embedding(0, 3), ValueError, "num_embeddings"),
    (lambda: nn.char_model(5, "transformer"), ValueError, "cell"),
])
def test_bad_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make()


# ---------------------------------------------------------------- sampling
def test_sampling_is_seeded_and_respects_temperature(rng):
    model = nn.char_model(5, "lstm", hidden_size=8, seed=1)
    a = nn.sample(model, [1, 2], 20, temperature=1.0, rng=7)
    b = nn.sample(model, [1, 2], 20, temperature=1.0, rng=7)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (20,) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 5
    greedy = nn.sample(model, [1, 2], 5, temperature=0)
    logits, _, _ = nn.forward_with_state(model, np.array([[1, 2]]))
    assert greedy[0] == np.argmax(logits[0, -1])
    p = nn.sampling.softmax_with_temperature(np.array([1.0, 2.0, 3.0]), 0.1)
    assert p[2] > 0.99 and p.sum() == pytest.approx(1)
    vocab = data.Vocabulary("ab\n+=")
    text = nn.sample(model, "ab", 7, rng=0, vocab=vocab)
    assert isinstance(text, str) and len(text) == 7 and set(text) <= set(vocab.chars)
    assert nn.sample(model, [0], 0).shape == (0,)
    with pytest.raises(ValueError, match="temperature"):
        nn.sample(model, [0], 3, temperature=-1)
    with pytest.raises(ValueError, match="prompt"):
        nn.sample(model, [], 3)


def test_clip_grad_norm():
    g = np.array([3.0, 4.0])
    assert nn.language_model.clip_grad_norm(g, 10.0) == 5.0 and g.tolist() == [3.0, 4.0]
    nn.language_model.clip_grad_norm(g, 1.0)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-5)


# ---------------------------------------------------------------- learning
@pytest.mark.slow
def test_lstm_solves_the_adding_problem():
    """T = 50: always answering 1.0 scores about 0.167; the LSTM must get below 0.01.
    (Every seed from 0 to 7 gets there within 1,000 steps; 1,250 leaves a margin.)"""
    X, y = data.adding_problem(20_000, 50, seed=1)
    Xte, yte = data.adding_problem(1000, 50, seed=2)
    model = nn.Sequential(nn.LSTM(2, 32), nn.LastStep(), nn.Dense(32, 1), seed=1)
    fit(model, nn.MSELoss(), (X, y), epochs=4, batch_size=64,
        optimizer=nn.Adam(model.params, lr=0.01), seed=1)
    assert np.mean((yte - 1.0) ** 2) > 0.15
    mse = float(np.mean((model.predict(Xte) - yte) ** 2))
    assert mse < 0.01, mse


@pytest.mark.slow
def test_char_model_beats_the_unigram_baseline():
    text = data.char_corpus()
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    baseline = data.unigram_loss(ids)
    model = nn.char_model(len(vocab), "lstm", hidden_size=64, seed=0)
    opt = nn.Adam(model.params, lr=0.01)
    chunks = data.tbptt_batches(ids, 32, 32)
    losses = []
    for _ in range(2):
        epoch, _ = nn.fit_tbptt(model, chunks, opt, clip_norm=5.0)
        losses += epoch
    assert losses[0] == pytest.approx(np.log(len(vocab)), rel=0.1)   # knows nothing yet
    assert np.mean(losses[-10:]) < 0.65 * baseline, (np.mean(losses[-10:]), baseline)
    text = nn.sample(model, "\n", 300, temperature=0.5, rng=0, vocab=vocab)
    assert data.score_arithmetic(text)["well_formed"] > 0.8


def test_fit_tbptt_is_deterministic_and_reports_steps():
    ids = data.Vocabulary.from_text("0123456789+=\n").encode(data.generate_arithmetic(200))
    chunks = data.tbptt_batches(ids, 4, 16)
    runs = []
    for _ in range(2):
        model = nn.char_model(13, "rnn", hidden_size=8, seed=2)
        seen = []
        losses, states = nn.fit_tbptt(model, chunks, nn.SGD(model.params, lr=0.1),
                                      on_step=lambda k, v, seen=seen: seen.append(k))
        runs.append(model.params.copy())
    np.testing.assert_array_equal(*runs)
    assert seen == list(range(1, len(chunks) + 1)) and len(losses) == len(chunks)
    assert states[1].shape == (4, 8)
