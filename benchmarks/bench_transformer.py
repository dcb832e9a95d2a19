"""The character Transformer: one training step against PyTorch CPU, and time against length.

    python benchmarks/bench_transformer.py            # print both tables
    python benchmarks/bench_transformer.py --record   # also append them to benchmarks/RESULTS.md
    python benchmarks/bench_transformer.py --quick    # a smoke test (seconds)

Two measurements, both in this one process, both at one BLAS thread:

1. **One training step against PyTorch** (written the way ``bench_nn.py`` measures, so it
   can join its ``CASES``): ``nn.char_transformer`` — 2 pre-norm blocks, E = 64, 4 heads,
   MLP 256, tanh GELU, causal — on ids ``(32, 32)`` of a 13-character vocabulary, float32,
   plain SGD, against the same model built from ``torch.nn`` modules
   (``TransformerEncoderLayer(norm_first=True)``, ``LayerNorm``, ``Embedding``,
   ``Linear``) with the *same weights* (their logits agree; the difference is printed).
   Both sides run on one thread (``torch.set_num_threads(1)``), interleaved round by round,
   so a noisy neighbour slows both alike; the ratio is the median mtlearn step time over
   the median PyTorch step time. Target <= 1.0x (stretch <= 0.8x).
2. **Time against sequence length** (notebook 03b): a character RNN and the Transformer with
   as many parameters, ``serial`` on one thread and ``sync`` on two, through
   ``mtlearn.widgets.attention_lab.time_vs_length``; the crossover length and the 2-thread
   speedups at the longest length.

The header records the machine (cores, Python build, BLAS) and its load average before and
after: other programs on the cores make every number worse, and unevenly.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mtlearn import info, nn
from mtlearn.widgets.attention_lab import time_vs_length

try:
    import torch
except ImportError:  # optional
    torch = None

RESULTS = Path(__file__).with_name("RESULTS.md")

#: the model and batch of measurement 1
TF = dict(vocab=13, embed_dim=64, num_heads=4, hidden=256, blocks=2, seq_len=32, batch=32)


# ---------------------------------------------------------------- 1. the models, both sides
def transformer_mtlearn(vocab, embed_dim, num_heads, hidden, blocks, seq_len, batch):
    """One SGD step of ``nn.char_transformer`` on fixed random ids; also returns the model
    and the ids (to build PyTorch's twin and compare logits)."""
    model = nn.char_transformer(vocab, embed_dim, num_heads, hidden, blocks, max_len=seq_len,
                                seed=0)
    loss = nn.SequenceCrossEntropy()
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (batch, seq_len))
    y = rng.integers(0, vocab, (batch, seq_len))
    opt = nn.SGD(model.params, lr=0.01)
    grads = np.empty_like(model.params)

    def step():
        model.loss_and_grads(loss, x, y, grads=grads)
        opt.step(grads)
    return step, model, x


def torch_twin(model, vocab, embed_dim, num_heads, hidden, blocks, seq_len):
    """The same model in ``torch.nn`` modules, with ``model``'s weights."""
    tnn = torch.nn
    gelu = functools.partial(tnn.functional.gelu, approximate="tanh")

    class CharTransformer(tnn.Module):
        def __init__(self):
            super().__init__()
            self.tok = tnn.Embedding(vocab, embed_dim)
            self.pos = tnn.Embedding(seq_len, embed_dim)
            self.blocks = tnn.ModuleList(
                tnn.TransformerEncoderLayer(embed_dim, num_heads, hidden, dropout=0.0,
                                            activation=gelu, batch_first=True,
                                            norm_first=True) for _ in range(blocks))
            self.norm = tnn.LayerNorm(embed_dim)
            self.head = tnn.Linear(embed_dim, vocab)
            self.register_buffer("mask", tnn.Transformer.generate_square_subsequent_mask(
                seq_len))

        def forward(self, ids):
            T = ids.shape[1]
            x = self.tok(ids) + self.pos.weight[:T]
            for block in self.blocks:
                x = block(x, src_mask=self.mask[:T, :T], is_causal=True)
            return self.head(self.norm(x))

    twin = CharTransformer()
    ours = model.named_params()
    modules = [twin.tok, twin.pos, *twin.blocks, twin.norm, twin.head]
    with torch.no_grad():
        for i, module in enumerate(modules):
            for name, p in module.named_parameters():
                p.copy_(torch.from_numpy(ours[f"{i}.{name.replace('out_proj.', 'out_proj_')}"]))
    return twin


def transformer_torch(model, x, vocab, embed_dim, num_heads, hidden, blocks, seq_len, batch):
    """One SGD step of the twin on the same ids."""
    twin = torch_twin(model, vocab, embed_dim, num_heads, hidden, blocks, seq_len)
    ids = torch.from_numpy(x)
    y = torch.randint(0, vocab, ids.shape)
    opt = torch.optim.SGD(twin.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(twin(ids).reshape(-1, vocab), y.reshape(-1)).backward()
        opt.step()
    return step, twin


def logits_difference(model, twin, x) -> float:
    """max |mtlearn logits - PyTorch logits| for the same weights and ids (float32)."""
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    return float(np.max(np.abs(model(x) - theirs)))


# ---------------------------------------------------------------- timing
def measure_step(rounds, steps):
    """Median seconds per training step of each side, measured alternately round by round
    (``bench_nn.measure``); and the logits difference before training.
    ``(ours, theirs or None, difference)``."""
    ours, model, x = transformer_mtlearn(**TF)
    theirs, difference = None, None
    if torch is not None:
        theirs, twin = transformer_torch(model, x, **TF)
        difference = logits_difference(model, twin, x)
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_nn  # here, not at the top: bench_nn's case table imports this file

    t_ours, t_theirs = bench_nn.measure(lambda: ours, lambda: theirs, rounds, steps)
    return t_ours, t_theirs, difference


# ---------------------------------------------------------------- 2. time against length
def length_sweep(lengths, batch_size, rounds):
    """``time_vs_length`` with the RNN on 1 and 2 threads."""
    return time_vs_length(lengths, cell="rnn", threads=(1, 2), batch_size=batch_size,
                          rounds=rounds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--lengths", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256])
    ap.add_argument("--batch", type=int, default=4, help="sequences per step in the sweep")
    ap.add_argument("--quick", action="store_true", help="a few rounds: a smoke test")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.lengths = 2, 2, [4, 16]
    if args.batch < 2:
        ap.error("--batch must be at least 2 (the sweep runs sync on 2 threads)")
    load_before = os.getloadavg()
    if torch is not None:
        torch.set_num_threads(1)
    sweep_rounds = max(1, args.rounds // 5)
    with threadpool_limits(limits=1, user_api="blas"):
        t_ours, t_torch, difference = measure_step(args.rounds, args.steps)
        sweep = length_sweep(args.lengths, args.batch, sweep_rounds)
    load_after = os.getloadavg()
    mach = info.machine_info()
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']})" for b in mach["blas"]
                     if b["api"] == "blas")
    tv = torch.__version__ if torch is not None else "not installed"
    label = (f"char Transformer, 2 blocks, E = {TF['embed_dim']}, {TF['num_heads']} heads, "
             f"MLP {TF['hidden']}, T = {TF['seq_len']}, batch {TF['batch']}, float32")
    ratio = f"**{t_ours / t_torch:.2f}x**" if t_torch else "—"
    torch_ms = f"{t_torch * 1e3:.2f}" if t_torch else "—"
    lines = [
        f"### bench_transformer — {time.strftime('%Y-%m-%d')}{' (quick)' if args.quick else ''}",
        "",
        f"{mach['cores']} cores, CPython {mach['python']} "
        f"({'free-threaded' if mach['free_threaded_build'] else 'GIL'}), numpy {mach['numpy']}, "
        f"BLAS {blas} pinned to 1 thread; PyTorch {tv} at 1 thread. Load average (1, 5, 15 "
        f"min) before: {_load(load_before)}; after: {_load(load_after)}. "
        f"Median of {args.rounds} interleaved rounds x {args.steps} steps.  "
        f"`python benchmarks/bench_transformer.py`",
        "",
        "| one training step | mtlearn ms | PyTorch ms | ratio | target |",
        "|---|---:|---:|---:|---:|",
        f"| {label} | {t_ours * 1e3:.2f} | {torch_ms} | {ratio} | <= 1.0x (stretch 0.8x) |",
        "",
    ]
    if difference is not None:
        lines += [f"Same weights, same ids: max |logits difference| {difference:.1e} "
                  "(float32).", ""]
    lines += [
        f"Time per training step against sequence length, batch {sweep.batch_size}, "
        f"equal parameters ({', '.join(f'{m}: {n:,}' for m, n in sweep.params.items())}); "
        f"`serial` on 1 thread, `sync` on 2; median of {sweep_rounds} interleaved rounds:",
        "",
        "| T | " + " | ".join(f"{m}, {k} thr ms" for k in sweep.threads for m in sweep.models)
        + " |",
        "|---:|" + "---:|" * (len(sweep.threads) * len(sweep.models)),
    ]
    for T in sweep.lengths:
        lines.append(f"| {T} | " + " | ".join(f"{1e3 * sweep.median(m, k, T):.2f}"
                                               for k in sweep.threads for m in sweep.models)
                     + " |")
    T = sweep.lengths[-1]
    lines += ["", "- the Transformer's step was the faster one " + "; ".join(
        f"on {k} thread(s) {sweep.where_faster(k)}" for k in sweep.threads),
        f"- at T = {T}, 2 threads vs 1: " + ", ".join(
            f"{m} {sweep.speedup(m, T):.2f}x" for m in sweep.models)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")
    return 0


def _load(avg) -> str:
    return ", ".join(f"{v:.2f}" for v in avg)


if __name__ == "__main__":
    sys.exit(main())
