"""PositionalEmbedding, TransformerBlock and the character Transformer: gradient checks,
PyTorch's TransformerEncoderLayer with the same weights, the flat vector, causality,
sampling, training below the unigram baseline, and bad input named."""

import copy
import functools
import pickle

import numpy as np
import pytest

from mtlearn import data, nn, parallel, tasks

EXACT = 1e-10


def close(a, b, tol=EXACT):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


def randomise(layer, seed=0, scale=0.5):
    """Random values in every parameter (the norms' 1 and 0, the zero biases, included)."""
    rng = np.random.default_rng(seed)
    for name, p in layer.params.items():
        p[...] = (1 if name.endswith("norm1.weight") or name.endswith("norm2.weight") else 0) \
            + scale * rng.standard_normal(p.shape)
    return layer


# ---------------------------------------------------------------- PositionalEmbedding
def test_positional_embedding_adds_row_t_and_checks_gradients(rng):
    pos = nn.PositionalEmbedding(8, 6, dtype=np.float64, rng=0)
    x = rng.standard_normal((3, 5, 6))
    out = pos(x)
    close(out - x, np.broadcast_to(pos.params["weight"][:5], (3, 5, 6)), tol=1e-15)
    result = nn.gradcheck(pos, x)
    assert result.passed and result.max_rel_error < 1e-7, result
    _, g = pos.backward(np.ones((3, 5, 6)), pos.forward(x)[1])
    assert np.all(g["weight"][:5] == 3) and np.all(g["weight"][5:] == 0)


@pytest.mark.parametrize("shape", [(2, 9, 6), (2, 4), (2, 4, 5)])
def test_positional_embedding_names_what_it_expected(shape):
    pos = nn.PositionalEmbedding(8, 6)
    with pytest.raises(ValueError, match=r"PositionalEmbedding\(8, 6\): expected input of shape "
                                         r"\(N, T, 6\) with T <= 8 .*got"):
        pos.forward(np.zeros(shape, np.float32))


def test_a_sequence_longer_than_the_table_is_refused_by_the_model():
    model = nn.char_transformer(5, 8, 2, 16, 1, max_len=4)
    with pytest.raises(ValueError, match=r"T <= 4") as err:
        model.forward(np.zeros((1, 5), np.int64))
    assert "layer 1 (PositionalEmbedding)" in "".join(err.value.__notes__)


# ---------------------------------------------------------------- TransformerBlock
def test_block_parameters_are_its_sub_layers_under_torch_names():
    block = nn.TransformerBlock(8, 2, 16, rng=0)
    assert list(block.params) == [
        "norm1.weight", "norm1.bias", "self_attn.in_proj_weight", "self_attn.in_proj_bias",
        "self_attn.out_proj_weight", "self_attn.out_proj_bias", "norm2.weight", "norm2.bias",
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
    assert block.params["linear1.weight"] is block.linear1.params["weight"]
    assert block.num_params == 2 * 2 * 8 + (4 * 64 + 4 * 8) + (16 * 8 + 16) + (8 * 16 + 8)
    with pytest.raises(KeyError):
        block.params["linear3.weight"] = np.zeros(1)
    with pytest.raises(TypeError):
        del block.params["linear1.weight"]
    assert repr(block) == "TransformerBlock(8, 2, 16)"


@pytest.mark.parametrize("causal", [False, True])
def test_block_gradcheck(rng, causal):
    block = randomise(nn.TransformerBlock(8, 2, 12, causal, dtype=np.float64, rng=0))
    result = nn.gradcheck(block, rng.standard_normal((2, 5, 8)))
    assert result.passed and result.max_rel_error < 1e-7, result


def test_block_in_a_sequential_reads_the_flat_vector(rng):
    model = nn.Sequential(nn.TransformerBlock(8, 2, 12, causal=True), nn.Dense(8, 3),
                          dtype=np.float64)
    block = model.layers[0]
    for name, p in block.params.items():
        assert np.shares_memory(p, model.params), name
    assert block.self_attn.params["in_proj_weight"].base is not None
    x = rng.standard_normal((2, 4, 8))
    before = model(x)
    model.params[:64] += 0.1                                 # norm1 and part of in_proj
    assert np.abs(model(x) - before).max() > 1e-6
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(twin(x), model(x))
        assert np.shares_memory(twin.layers[0].linear2.params["weight"], twin.params)
    result = nn.gradcheck(model, x)
    assert result.passed, result


def torch_block(torch, block):
    """``torch.nn.TransformerEncoderLayer`` with ``block``'s weights (float64, pre-norm,
    tanh GELU, no dropout)."""
    E, H, hidden = block.embed_dim, block.num_heads, block.hidden
    gelu = functools.partial(torch.nn.functional.gelu, approximate="tanh")
    ref = torch.nn.TransformerEncoderLayer(E, H, hidden, dropout=0.0, activation=gelu,
                                           batch_first=True, norm_first=True).double()
    state = {name.replace("out_proj_", "out_proj."): torch.from_numpy(p.copy())
             for name, p in block.params.items()}
    ref.load_state_dict(state)
    return ref


@pytest.mark.parametrize("causal", [False, True])
def test_block_matches_torch_transformer_encoder_layer(rng, causal):
    torch = pytest.importorskip("torch")
    block = randomise(nn.TransformerBlock(12, 3, 20, causal, dtype=np.float64, rng=0))
    ref = torch_block(torch, block)
    x = rng.standard_normal((3, 6, 12))
    out, cache = block.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, grads = block.backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    out_t = ref(xt, src_mask=mask if causal else None, is_causal=causal)
    out_t.backward(torch.from_numpy(dout))
    close(out, out_t.detach().numpy())
    close(dx, xt.grad.numpy())
    for name, p in ref.named_parameters():
        close(grads[name.replace("out_proj.", "out_proj_")], p.grad.numpy())


# ---------------------------------------------------------------- the character Transformer
def test_char_transformer_shapes_and_size():
    model = nn.char_transformer(13)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Embedding", "PositionalEmbedding", "TransformerBlock", "TransformerBlock",
        "LayerNorm", "Dense"]
    assert all(layer.causal for layer in model.layers[2:4])
    E, hidden, V, L = 64, 256, 13, 64
    block = 2 * 2 * E + 4 * E * E + 4 * E + 2 * E * hidden + hidden + E
    assert model.num_params == V * E + L * E + 2 * block + 2 * E + E * V + V
    out = model(np.zeros((2, 10), np.int64))
    assert out.shape == (2, 10, 13) and out.dtype == np.float32


def test_char_transformer_gradcheck_with_the_loss(rng):
    model = nn.char_transformer(7, 8, 2, 12, 2, max_len=6, dtype=np.float64)
    for name, p in model.named_params().items():
        if "bias" in name:
            p[...] = 0.1 * rng.standard_normal(p.shape)
    ids = rng.integers(0, 7, (2, 6)).astype(np.float64)
    result = nn.gradcheck(model, ids, target=rng.integers(0, 7, (2, 6)),
                          loss=nn.SequenceCrossEntropy(), check_input=False)
    assert result.passed and result.max_rel_error < 1e-6, result


def test_char_transformer_is_causal(rng):
    model = nn.char_transformer(7, 8, 2, 12, 2, max_len=10, dtype=np.float64)
    ids = rng.integers(0, 7, (3, 10))
    changed = ids.copy()
    changed[:, 6:] = (changed[:, 6:] + 1) % 7
    a, b = model(ids), model(changed)
    np.testing.assert_array_equal(a[:, :6], b[:, :6])
    assert np.abs(a[:, 6:] - b[:, 6:]).max() > 1e-6


def test_char_transformer_matches_torch(rng):
    """The whole model — embeddings, two blocks, final norm, head — against the same model
    built from torch.nn modules with the same weights: logits and every gradient."""
    torch = pytest.importorskip("torch")
    model = nn.char_transformer(7, 12, 3, 20, 2, max_len=8, dtype=np.float64)
    ids = rng.integers(0, 7, (3, 8))
    y = rng.integers(0, 7, (3, 8))
    loss = nn.SequenceCrossEntropy()
    value, grads, logits = model.loss_and_grads(loss, ids, y)
    named = model.named_params()
    emb = torch.nn.Embedding(7, 12).double()
    pos = torch.nn.Embedding(8, 12).double()
    blocks = [torch_block(torch, layer) for layer in model.layers[2:4]]
    norm = torch.nn.LayerNorm(12).double()
    head = torch.nn.Linear(12, 7).double()
    with torch.no_grad():
        for module, prefix in ((emb, "0."), (pos, "1."), (norm, "4."), (head, "5.")):
            for name, p in module.named_parameters():
                p.copy_(torch.from_numpy(named[prefix + name]))
    x = emb(torch.from_numpy(ids)) + pos.weight[:8]
    mask = torch.nn.Transformer.generate_square_subsequent_mask(8, dtype=torch.float64)
    for b in blocks:
        x = b(x, src_mask=mask, is_causal=True)
    logits_t = head(norm(x))
    loss_t = torch.nn.functional.cross_entropy(logits_t.reshape(-1, 7),
                                               torch.from_numpy(y).reshape(-1))
    loss_t.backward()
    close(logits, logits_t.detach().numpy())
    assert value == pytest.approx(loss_t.item(), rel=1e-12)
    g = model.named_grads(grads)
    for module, prefix in ((emb, "0."), (pos, "1."), (norm, "4."), (head, "5.")):
        for name, p in module.named_parameters():
            close(g[prefix + name], p.grad.numpy())
    for k, b in enumerate(blocks):
        for name, p in b.named_parameters():
            close(g[f"{2 + k}.{name.replace('out_proj.', 'out_proj_')}"], p.grad.numpy())


# ---------------------------------------------------------------- sampling
def test_sample_transformer():
    vocab = data.Vocabulary("\n+0123456789=")
    model = nn.char_transformer(len(vocab), 8, 2, 16, 1, max_len=5, seed=1)
    a = nn.sample_transformer(model, "12+", 12, rng=0, vocab=vocab)
    assert isinstance(a, str) and len(a) == 12 and set(a) <= set(vocab.chars)
    assert a == nn.sample_transformer(model, "12+", 12, rng=0, vocab=vocab)
    ids = nn.sample_transformer(model, [1, 2], 7, temperature=0)
    assert ids.dtype == np.int64 and ids.shape == (7,)
    # greedy: each token is the argmax of the model on the last max_len tokens before it
    text = np.array([1, 2, *ids])
    for k in range(7):
        window = text[max(0, k + 2 - 5):k + 2]
        assert ids[k] == np.argmax(model(window[None])[0, -1])
    assert nn.sample_transformer(model, [3], 0).size == 0


def test_sample_transformer_refuses_bad_arguments():
    model = nn.char_transformer(5, 8, 2, 16, 1, max_len=4)
    with pytest.raises(ValueError, match="prompt"):
        nn.sample_transformer(model, [], 3)
    with pytest.raises(ValueError, match="temperature"):
        nn.sample_transformer(model, [1], 3, temperature=-1)
    with pytest.raises(ValueError, match="no PositionalEmbedding"):
        nn.sample_transformer(nn.char_model(5), [1], 3)


# ---------------------------------------------------------------- the tasks
def test_transformer_and_char_lstm_tasks_have_equal_parameters():
    tf, lstm = tasks.get("transformer", n=64), tasks.get("char-lstm", n=64)
    a, b = tf.model().num_params, lstm.model().num_params
    assert abs(a - b) / a < 0.01
    X, y = tf.data
    assert X.shape == (51, 32) and y.dtype == np.int64
    np.testing.assert_array_equal(X[:, 1:], y[:, :-1])            # y is X one step later
    assert tf.info["unigram"] == pytest.approx(2.52, abs=0.01)
    assert len(tf.info["vocab"]) == 13


def test_char_lstm_refuses_the_transformers_options():
    with pytest.raises(TypeError, match=r"'char-lstm' takes no option\(s\) \['num_heads'\]"):
        tasks.get("char-lstm", n=64, num_heads=2)
    assert tasks.get("char-lstm", n=64, hidden=32).model().layers[1].hidden_size == 32
    assert len(tasks.get("transformer", n=64, num_blocks=0).model().layers) == 4


def test_training_goes_well_below_the_unigram_baseline():
    t = tasks.get("transformer", n=2048, seq_len=16, embed_dim=32, num_heads=2, hidden=64,
                  num_blocks=1)
    model = t.model()
    h = parallel.train(model, t.loss, t.data, epochs=2, batch_size=32, seed=0,
                       optimizer=lambda p: nn.Adam(p, lr=0.01))
    val_loss, _ = t.evaluate(model)
    assert h.losses[0] > 0.9 * t.info["unigram"]
    assert val_loss < 0.75 * t.info["unigram"]
