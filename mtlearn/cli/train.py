"""``python -m mtlearn train MODEL``: train a model on a built-in dataset, with a progress bar.

``cnn`` learns images (``--dataset shapes`` or ``digits``); ``rnn``, ``lstm`` and ``gru``
learn the arithmetic corpus character by character (``--dataset chars``, truncated BPTT,
then a sample of generated text) or the adding problem (``--dataset adding``).
"""

from __future__ import annotations

import sys

from .common import ProgressBar, positive_int

RECURRENT = ("rnn", "lstm", "gru")
DATASETS = {"cnn": ("shapes", "digits"), **{m: ("chars", "adding") for m in RECURRENT}}


def add_parser(sub) -> None:
    s = sub.add_parser("train", help="train a model on a built-in dataset")
    s.add_argument("model", choices=["cnn", *RECURRENT], help="which model")
    s.add_argument("--dataset", choices=["shapes", "digits", "chars", "adding"], default=None,
                   help="cnn: shapes (default) or digits; rnn/lstm/gru: chars (default) "
                        "or adding")
    s.add_argument("--epochs", type=positive_int, default=5)
    s.add_argument("--batch-size", type=positive_int, default=32)
    s.add_argument("--lr", type=float, default=None,
                   help="learning rate (default 0.05 with SGD for cnn, 0.01 with Adam otherwise)")
    s.add_argument("--n", type=positive_int, default=None,
                   help="samples to generate: images (shapes, default 2000) or sequences "
                        "(adding, default 10000)")
    s.add_argument("--hidden", type=positive_int, default=None,
                   help="hidden size of rnn/lstm/gru (default 128 for chars, 32 for adding)")
    s.add_argument("--seq-len", type=positive_int, default=None,
                   help="steps per sequence: the chunk length of truncated BPTT (chars, "
                        "default 32) or the sequence length (adding, default 50)")
    s.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature for the generated text (chars)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--blas-threads", type=positive_int, default=1)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run)


def run(args) -> int:
    from threadpoolctl import threadpool_limits

    dataset = args.dataset or DATASETS[args.model][0]
    if dataset not in DATASETS[args.model]:
        print(f"mtlearn train: {args.model} trains on --dataset "
              f"{' or '.join(DATASETS[args.model])}, not {dataset!r}", file=sys.stderr)
        return 2
    if args.temperature < 0:
        print("mtlearn train: --temperature must be >= 0", file=sys.stderr)
        return 2
    train = {"shapes": _train_cnn, "digits": _train_cnn, "chars": _train_chars,
             "adding": _train_adding}[dataset]
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return train(args, dataset)


def _machine(args) -> str:
    from ..runtime import info

    return f"BLAS threads {args.blas_threads}; {info.cpu_count()} cores"


def _train_cnn(args, dataset) -> int:
    from .. import data, nn
    from ..training import fit

    if dataset == "shapes":
        X, y = data.shapes(args.n or 2000, seed=args.seed)
        num_classes = len(data.SHAPE_CLASSES)
    else:
        X, y = data.digits()
        num_classes = 10
    Xtr, ytr, Xva, yva = data.split(X, y, 0.2, seed=args.seed)
    model = nn.course_cnn(image_size=X.shape[-1], num_classes=num_classes, seed=args.seed)
    steps = args.epochs * data.num_batches(len(Xtr), args.batch_size)
    print(f"{dataset}: {len(Xtr)} train / {len(Xva)} validation images {X.shape[1:]}, "
          f"{num_classes} classes; {model.num_params:,} parameters; {_machine(args)}")
    result = fit(model, nn.SoftmaxCrossEntropy(), (Xtr, ytr), (Xva, yva),
                 epochs=args.epochs, batch_size=args.batch_size, lr=args.lr or 0.05,
                 seed=args.seed, on_step=None if args.quiet else ProgressBar(steps))
    for e, (acc, t) in enumerate(zip(result.val_accuracy, result.epoch_times, strict=True), 1):
        print(f"epoch {e:2d}  validation accuracy {acc:6.2%}  {t:.2f} s")
    print(f"final validation accuracy {result.final_accuracy:.2%} in {result.wall_time:.2f} s "
          f"({1e3 * result.wall_time / len(result.losses):.1f} ms/step)")
    return 0


def _train_chars(args, dataset) -> int:
    import time

    import numpy as np

    from .. import data, nn

    text = data.char_corpus()
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    seq_len = args.seq_len or 32
    chunks = data.tbptt_batches(ids, args.batch_size, seq_len)
    model = nn.char_model(len(vocab), args.model, hidden_size=args.hidden or 128,
                          seed=args.seed)
    baseline = data.unigram_loss(ids)
    print(f"chars: {len(text):,} characters of arithmetic, vocabulary {len(vocab)}; "
          f"{args.batch_size} streams x {seq_len} steps per chunk, {len(chunks)} chunks per "
          f"epoch; {args.model.upper()} with {model.num_params:,} parameters; {_machine(args)}")
    print(f"loss to beat (unigram entropy): {baseline:.3f} nats/char")
    opt = nn.Adam(model.params, lr=args.lr or 0.01)
    bar = None if args.quiet else ProgressBar(args.epochs * len(chunks))
    start, epochs = time.perf_counter(), []
    for e in range(args.epochs):
        t0, done = time.perf_counter(), e * len(chunks)
        on_step = None if bar is None else (lambda k, v, done=done: bar(done + k, v))
        losses, _ = nn.fit_tbptt(model, chunks, opt, clip_norm=5.0, on_step=on_step)
        epochs.append((float(np.mean(losses)), time.perf_counter() - t0))
    wall = time.perf_counter() - start
    for e, (mean, t) in enumerate(epochs, 1):      # after the progress bar, not through it
        print(f"epoch {e:2d}  mean loss {mean:.3f} nats/char  {t:.2f} s")
    final = float(np.mean(losses[-10:]))
    print(f"final loss {final:.3f} nats/char ({final / baseline:.0%} of the unigram baseline) "
          f"in {wall:.2f} s ({1e3 * wall / (args.epochs * len(chunks)):.1f} ms/step)")
    sample = nn.sample(model, "\n", 200, temperature=args.temperature, rng=args.seed,
                       vocab=vocab)
    score = data.score_arithmetic(sample)
    print(f"sample at temperature {args.temperature}: {score['well_formed']:.0%} of lines "
          f"well formed, {score['correct']:.0%} correct")
    print(sample.strip("\n"))
    return 0


def _train_adding(args, dataset) -> int:
    import numpy as np

    from .. import data, nn
    from ..training import fit

    seq_len = args.seq_len or 50
    if seq_len < 2:
        print("mtlearn train: the adding problem needs --seq-len >= 2", file=sys.stderr)
        return 2
    X, y = data.adding_problem(args.n or 10000, seq_len, seed=args.seed)
    Xte, yte = data.adding_problem(1000, seq_len, seed=args.seed + 1)
    H = args.hidden or 32
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[args.model](2, H)
    model = nn.Sequential(layer, nn.LastStep(), nn.Dense(H, 1), seed=args.seed)
    steps = args.epochs * data.num_batches(len(X), args.batch_size)
    print(f"adding problem: {len(X)} sequences of {seq_len} steps; {model.num_params:,} "
          f"parameters; {_machine(args)}")
    print(f"mean squared error to beat (always answering 1.0): {np.mean((yte - 1) ** 2):.3f}")
    result = fit(model, nn.MSELoss(), (X, y), epochs=args.epochs, batch_size=args.batch_size,
                 optimizer=nn.Adam(model.params, lr=args.lr or 0.01), seed=args.seed,
                 on_step=None if args.quiet else ProgressBar(steps))
    mse = float(np.mean((model.predict(Xte) - yte) ** 2))
    print(f"test mean squared error {mse:.4f} in {result.wall_time:.2f} s "
          f"({1e3 * result.wall_time / len(result.losses):.1f} ms/step)")
    return 0
