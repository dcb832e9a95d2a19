"""``tensor`` on a Transformer: heads and hidden units split over the workers
(Megatron-style), every parameter updated once, equal to serial within 1e-10 in float64."""

import numpy as np
import pytest
from cases import assert_close

from mtlearn import nn, parallel, tasks
from mtlearn.parallel.tensor import BlockSplit, ColumnShard, owned_slices, split_plan


def transformer_case(n=96):
    """``(model factory, loss, X, y)``: a 2-block causal Transformer (E = 8, 4 heads, MLP 12)
    on windows of 8 characters of the arithmetic corpus, float64."""
    t = tasks.get("transformer", n=n, seed=3, seq_len=8, embed_dim=8, num_heads=4, hidden=12,
                  num_blocks=2, dtype=np.float64, val_fraction=0)
    return t.model, t.loss, *t.data


def train(strategy="tensor", threads=2, **kw):
    make, loss, X, y = transformer_case()
    model = make()
    kw = {"epochs": 1, "batch_size": 24, "lr": 0.1, "seed": 5, **kw}
    h = parallel.train(model, loss, (X, y), strategy=strategy, threads=threads, **kw)
    return h, model.params.copy()


@pytest.fixture(scope="module")
def serial():
    return train("serial", 1)


@pytest.mark.parametrize("threads", [1, 2, 3, 4, 5, 7])
def test_every_parameter_is_updated_by_exactly_one_worker(threads):
    model = transformer_case()[0]()
    plan = split_plan(model, threads)
    blocks = [p for p in plan if isinstance(p, BlockSplit)]
    assert len(blocks) == 2
    for p in blocks:                          # every head and every hidden unit, once
        assert [h for lo, hi in p.heads for h in range(lo, hi)] == list(range(4))
        assert [u for lo, hi in p.units for u in range(lo, hi)] == list(range(12))
    hits = np.zeros(model.params.size, dtype=int)
    for mine in owned_slices(model, threads):
        for _, _, sl in mine:
            hits[sl] += 1
    assert np.all(hits == 1)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_equals_serial_and_is_deterministic(threads, serial, no_thread_leak):
    ref_h, ref_p = serial
    h1, p1 = train(threads=threads)
    h2, p2 = train(threads=threads)
    assert_close(h1.losses, ref_h.losses, "losses")
    assert_close(p1, ref_p, "parameters")
    np.testing.assert_array_equal(p1, p2)


def test_adam_and_two_epochs_equal_serial():
    def opt(p):
        return nn.Adam(p, lr=0.01)
    ref_h, ref_p = train("serial", 1, optimizer=opt, epochs=2)
    h, p = train(threads=3, optimizer=opt, epochs=2)
    assert_close(h.losses, ref_h.losses, "losses")
    assert_close(p, ref_p, "parameters")


def test_barriers_and_info():
    h, _ = train(threads=3)
    # start + end; forward: 1 per unsplit or Dense layer, 6 per block, 1 for the loss;
    # backward: Dense 2, LayerNorm 1, each block 5 + 1, PositionalEmbedding 1, Embedding 0
    assert h.info["barriers_per_step"] == 2 + (1 + 1 + 6 + 6 + 1 + 1 + 1) + (2 + 1 + 6 + 6 + 1)
    blocks = [d for d in h.info["split_layers"] if "heads" in d]
    assert [d["layer"] for d in blocks] == [2, 3]
    assert blocks[0]["heads"] == [[0, 1], [1, 2], [2, 4]]
    assert blocks[0]["units"] == [[0, 4], [4, 8], [8, 12]]
    assert h.info["worker0_layers"] == [0, 1, 4]
    kinds = {s.kind for s in h.trace if s.thread.startswith("tensor-")}
    assert {"forward", "backward", "reduce", "update", "wait"} <= kinds


def test_column_shard_computes_its_part_of_a_dense(rng):
    dense = nn.Dense(6, 4, dtype=np.float64, rng=0)
    x = rng.standard_normal((5, 6))
    full = dense(x) - dense.params["bias"]
    bounds = ((0, 2), (2, 6))
    parts = [ColumnShard(dense, lo, hi) for lo, hi in bounds]
    outs = [p.forward(x[:, lo:hi])[0] for p, (lo, hi) in zip(parts, bounds, strict=True)]
    np.testing.assert_allclose(outs[0] + outs[1], full, rtol=1e-13)
    assert np.shares_memory(parts[1].weight, dense.params["weight"])


def raise_on_call(obj, n):
    """Make ``obj.forward`` raise on its ``n``-th call."""
    calls, real = [0], obj.forward

    def forward(x):
        calls[0] += 1
        if calls[0] == n:
            raise RuntimeError("boom in a block")
        return real(x)
    obj.forward = forward
    return obj


@pytest.mark.parametrize("where", ["norm2 (worker 0)", "a head shard (every worker)"])
def test_an_error_inside_a_block_reaches_the_caller_naming_the_layer(where, no_thread_leak):
    make, loss, X, y = transformer_case()
    model = make()
    block = model.layers[3]
    if where.startswith("norm2"):
        raise_on_call(block.norm2, 4)          # the dry runs call it first, then step 1, 2
    else:
        make_shard = block.self_attn.head_shard
        block.self_attn.head_shard = lambda lo, hi: raise_on_call(make_shard(lo, hi), 2)
    with pytest.raises(RuntimeError, match="boom in a block") as err:
        parallel.train(model, loss, (X, y), strategy="tensor", threads=2, batch_size=24)
    assert any("layer 3 (TransformerBlock)" in note for note in err.value.__notes__)
