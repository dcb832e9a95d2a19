"""MultiheadAttention, LayerNorm and GELU: the naive reference, gradient checks, PyTorch
cross-checks (float64, weights copied), head shards, and bad input named."""

import copy

import numpy as np
import pytest

from mtlearn import nn

#: fast layer vs naive reference, and mtlearn vs PyTorch, in float64
EXACT = 1e-10


def attention(E=12, H=3, causal=False, seed=0, dtype=np.float64):
    """A MultiheadAttention with random (not zero) biases, so every parameter matters."""
    layer = nn.MultiheadAttention(E, H, causal, dtype=dtype, rng=seed)
    rng = np.random.default_rng(seed + 100)
    for p in layer.params.values():
        p[...] = 0.5 * rng.standard_normal(p.shape)
    return layer


def close(a, b, tol=EXACT):
    """``max |a - b| <= tol * max(1, max |b|)``."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.max(np.abs(a - b)) <= tol * max(1.0, np.max(np.abs(b)))


# ---------------------------------------------------------------- the layer itself
def test_shapes_and_parameters_follow_pytorch():
    layer = nn.MultiheadAttention(64, 4, rng=0)
    shapes = {name: p.shape for name, p in layer.params.items()}
    assert shapes == {"in_proj_weight": (192, 64), "in_proj_bias": (192,),
                      "out_proj_weight": (64, 64), "out_proj_bias": (64,)}
    assert layer.head_dim == 16 and layer.num_params == 4 * 64 * 64 + 4 * 64
    assert not layer.params["in_proj_bias"].any() and not layer.params["out_proj_bias"].any()
    out, _ = layer.forward(np.zeros((2, 5, 64), np.float32))
    assert out.shape == (2, 5, 64) and out.dtype == np.float32
    assert repr(nn.MultiheadAttention(8, 2, causal=True)) == "MultiheadAttention(8, 2, causal=True)"


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("E, H, N, T", [(12, 3, 2, 5), (8, 1, 3, 4), (6, 6, 2, 3), (8, 2, 1, 1)])
def test_equals_the_naive_reference_forward_and_backward(rng, causal, E, H, N, T):
    layer = attention(E, H, causal)
    x = rng.standard_normal((N, T, E))
    out, cache = layer.forward(x)
    ref, tape = nn.attention_forward_naive(x, layer.params, H, causal)
    close(out, ref)
    dout = rng.standard_normal(out.shape)
    dx, grads = layer.backward(dout, cache)
    dx_ref, grads_ref = nn.attention_backward_naive(dout, tape, layer.params)
    close(dx, dx_ref)
    assert grads.keys() == layer.params.keys()
    for name in grads:
        close(grads[name], grads_ref[name])


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck(rng, causal):
    result = nn.gradcheck(attention(8, 2, causal), rng.standard_normal((2, 4, 8)))
    assert result.passed and result.max_rel_error < 1e-7, result


def test_need_dx_false_skips_the_input_gradient_only(rng):
    layer = attention()
    x = rng.standard_normal((2, 4, 12))
    out, cache = layer.forward(x)
    dx, full = layer.backward(out, cache)
    none, grads = layer.backward(out, cache, need_dx=False)
    assert none is None and dx is not None
    for name in full:
        np.testing.assert_array_equal(grads[name], full[name])


def test_causal_output_ignores_the_future(rng):
    layer = attention(causal=True)
    x = rng.standard_normal((2, 6, 12))
    later = x.copy()
    later[:, 4:] += 10 * rng.standard_normal((2, 2, 12))
    a, b = layer(x), layer(later)
    np.testing.assert_array_equal(a[:, :4], b[:, :4])      # exactly: weights are exact zeros
    assert np.abs(a[:, 4:] - b[:, 4:]).max() > 1e-3


def test_without_a_mask_positions_are_a_set(rng):
    """Shuffling the positions shuffles the outputs the same way (why positions need an
    embedding)."""
    layer = attention()
    x = rng.standard_normal((2, 6, 12))
    perm = rng.permutation(6)
    close(layer(x[:, perm]), layer(x)[:, perm])


def test_no_per_call_state(rng):
    """Two forwards in a row, then the first one's backward: the cache carries everything."""
    layer = attention(causal=True)
    x1, x2 = rng.standard_normal((2, 2, 4, 12))
    out1, cache1 = layer.forward(x1)
    layer.forward(x2)
    dx, grads = layer.backward(out1, cache1)
    dx_ref, grads_ref = layer.backward(out1, layer.forward(x1)[1])
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(grads["in_proj_weight"], grads_ref["in_proj_weight"])


def test_float32_agrees_with_float64(rng):
    layer64 = attention(causal=True)
    layer32 = copy.deepcopy(layer64)
    layer32.params = {k: v.astype(np.float32) for k, v in layer64.params.items()}
    x = rng.standard_normal((4, 8, 12))
    out32 = layer32(x.astype(np.float32))
    assert out32.dtype == np.float32
    close(out32, layer64(x), tol=1e-5)


def test_large_scores_do_not_overflow():
    layer = nn.MultiheadAttention(4, 1, dtype=np.float32, rng=0)
    layer.params["in_proj_weight"][...] = 30.0          # scores around 1e5
    out = layer(np.ones((1, 3, 4), np.float32))
    assert np.isfinite(out).all()


# ---------------------------------------------------------------- head shards
@pytest.mark.parametrize("bounds", [[(0, 4)], [(0, 1), (1, 3), (3, 4)], [(0, 2), (2, 4)]])
def test_head_shards_add_up_to_the_layer(rng, bounds):
    layer = attention(16, 4, causal=True)
    x = rng.standard_normal((3, 5, 16))
    out, cache = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, grads = layer.backward(dout, cache)
    total, dx_total = layer.params["out_proj_bias"].copy(), 0
    for lo, hi in bounds:
        shard = layer.head_shard(lo, hi)
        assert "out_proj_bias" not in shard.params
        assert all(np.shares_memory(shard.params[n], layer.params[n]) for n in shard.params)
        part, c = shard.forward(x)
        total = total + part
        d, g = shard.backward(dout, c)
        dx_total = dx_total + d
        # the shard's gradients are its heads' slices of the layer's
        close(g["in_proj_weight"], grads["in_proj_weight"].reshape(3, 4, 4, 16)[:, lo:hi])
        close(g["in_proj_bias"], grads["in_proj_bias"].reshape(3, 4, 4)[:, lo:hi])
        close(g["out_proj_weight"], grads["out_proj_weight"].reshape(16, 4, 4)[:, lo:hi])
    close(total, out)
    close(dx_total, dx)


def test_head_shard_bounds_are_checked():
    layer = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="head_shard: hi"):
        layer.head_shard(1, 1)
    with pytest.raises(ValueError, match="head_shard: hi"):
        layer.head_shard(0, 3)


# ---------------------------------------------------------------- bad input
def test_embed_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match=r"MultiheadAttention: embed_dim must be divisible by "
                                         r"num_heads.*embed_dim 10 and num_heads 3"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(TypeError, match="num_heads"):
        nn.MultiheadAttention(8, 2.0)
    with pytest.raises(TypeError, match="causal"):
        nn.MultiheadAttention(8, 2, causal=1)


@pytest.mark.parametrize("shape", [(2, 8), (2, 3, 4, 8), (2, 3, 6), (2, 0, 8)])
def test_wrong_input_shape_names_the_layer_and_the_expected_shape(shape):
    layer = nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"MultiheadAttention\(8, 2\): expected input of "
                                         r"shape \(N, T, 8\) with T >= 1, got"):
        layer.forward(np.zeros(shape, np.float32))


# ---------------------------------------------------------------- LayerNorm and GELU
def test_layernorm_normalises_and_checks_gradients(rng):
    x = 3 + 5 * rng.standard_normal((4, 6, 10))
    ln = nn.LayerNorm(10, dtype=np.float64)
    out = ln(x)
    close(out.mean(axis=-1), np.zeros((4, 6)), tol=1e-12)
    close(out.var(axis=-1), np.ones((4, 6)), tol=1e-5)          # var / (var + eps)
    ln.params["weight"][...] = rng.standard_normal(10)
    ln.params["bias"][...] = rng.standard_normal(10)
    result = nn.gradcheck(ln, x)
    assert result.passed and result.max_rel_error < 1e-7, result
    result = nn.gradcheck(nn.LayerNorm((3, 4), dtype=np.float64), rng.standard_normal((2, 3, 4)))
    assert result.passed, result


def test_layernorm_bad_shape_and_arguments():
    with pytest.raises(ValueError, match=r"LayerNorm\(8\): expected input of shape \(\.\.\., 8\)"):
        nn.LayerNorm(8).forward(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="eps"):
        nn.LayerNorm(8, eps=0)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(())


def test_gelu_values_and_gradcheck(rng):
    gelu = nn.GELU()
    x = np.array([-30.0, -1.0, 0.0, 1.0, 30.0])
    y = gelu(x)
    assert y[2] == 0 and y[0] == pytest.approx(0, abs=1e-12) and y[4] == pytest.approx(30)
    # the tanh formula, written out
    ref = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    close(y, ref, tol=1e-15)
    result = nn.gradcheck(gelu, 3 * rng.standard_normal((3, 7)))
    assert result.passed and result.max_rel_error < 1e-7, result


# ---------------------------------------------------------------- PyTorch, weights copied
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch(rng, causal):
    torch = pytest.importorskip("torch")
    layer = attention(12, 3, causal)
    ref = torch.nn.MultiheadAttention(12, 3, batch_first=True).double()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.from_numpy(layer.params["in_proj_weight"]))
        ref.in_proj_bias.copy_(torch.from_numpy(layer.params["in_proj_bias"]))
        ref.out_proj.weight.copy_(torch.from_numpy(layer.params["out_proj_weight"]))
        ref.out_proj.bias.copy_(torch.from_numpy(layer.params["out_proj_bias"]))
    x = rng.standard_normal((3, 7, 12))
    out, cache = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx, grads = layer.backward(dout, cache)
    xt = torch.tensor(x, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(7, dtype=torch.float64)
    out_t, _ = ref(xt, xt, xt, attn_mask=mask if causal else None, need_weights=False)
    out_t.backward(torch.from_numpy(dout))
    close(out, out_t.detach().numpy())
    close(dx, xt.grad.numpy())
    close(grads["in_proj_weight"], ref.in_proj_weight.grad.numpy())
    close(grads["in_proj_bias"], ref.in_proj_bias.grad.numpy())
    close(grads["out_proj_weight"], ref.out_proj.weight.grad.numpy())
    close(grads["out_proj_bias"], ref.out_proj.bias.grad.numpy())


def test_layernorm_and_gelu_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = 2 * rng.standard_normal((3, 5, 6))
    dout = rng.standard_normal(x.shape)
    ln = nn.LayerNorm(6, dtype=np.float64)
    ln.params["weight"][...] = rng.standard_normal(6)
    ln.params["bias"][...] = rng.standard_normal(6)
    ref = torch.nn.LayerNorm(6).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(ln.params["weight"]))
        ref.bias.copy_(torch.from_numpy(ln.params["bias"]))
    for ours, theirs, grads in ((ln, ref, ("weight", "bias")),
                                (nn.GELU(), torch.nn.GELU(approximate="tanh"), ())):
        out, cache = ours.forward(x)
        dx, g = ours.backward(dout, cache)
        xt = torch.tensor(x, requires_grad=True)
        out_t = theirs(xt)
        out_t.backward(torch.from_numpy(dout))
        close(out, out_t.detach().numpy())
        close(dx, xt.grad.numpy())
        for name in grads:
            close(g[name], getattr(theirs, name).grad.numpy())
