"""``python -m mtlearn train MODEL``: train a model on a built-in dataset, with a progress bar."""

from __future__ import annotations

import sys

from .common import ProgressBar, positive_int


def add_parser(sub) -> None:
    s = sub.add_parser("train", help="train a model on a built-in dataset")
    s.add_argument("model", choices=["cnn"], help="which model")
    s.add_argument("--dataset", choices=["shapes", "digits"], default="shapes")
    s.add_argument("--epochs", type=positive_int, default=5)
    s.add_argument("--batch-size", type=positive_int, default=32)
    s.add_argument("--lr", type=float, default=0.05)
    s.add_argument("--n", type=positive_int, default=2000, help="images to generate (shapes)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--blas-threads", type=positive_int, default=1)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run)


def run(args) -> int:
    from threadpoolctl import threadpool_limits

    from .. import data, info, nn
    from ..training import fit

    if args.model != "cnn":
        print(f"mtlearn train: model {args.model!r} is not available yet", file=sys.stderr)
        return 2
    if args.dataset == "shapes":
        X, y = data.shapes(args.n, seed=args.seed)
        num_classes = len(data.SHAPE_CLASSES)
    else:
        X, y = data.digits()
        num_classes = 10
    Xtr, ytr, Xva, yva = data.split(X, y, 0.2, seed=args.seed)
    model = nn.course_cnn(image_size=X.shape[-1], num_classes=num_classes, seed=args.seed)
    steps = args.epochs * data.num_batches(len(Xtr), args.batch_size)
    print(f"{args.dataset}: {len(Xtr)} train / {len(Xva)} validation images {X.shape[1:]}, "
          f"{num_classes} classes; {model.num_params:,} parameters; "
          f"BLAS threads {args.blas_threads}; {info.cpu_count()} cores")
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        result = fit(model, nn.SoftmaxCrossEntropy(), (Xtr, ytr), (Xva, yva),
                     epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     seed=args.seed, on_step=None if args.quiet else ProgressBar(steps))
    for e, (acc, t) in enumerate(zip(result.val_accuracy, result.epoch_times, strict=True), 1):
        print(f"epoch {e:2d}  validation accuracy {acc:6.2%}  {t:.2f} s")
    print(f"final validation accuracy {result.final_accuracy:.2%} in {result.wall_time:.2f} s "
          f"({1e3 * result.wall_time / len(result.losses):.1f} ms/step)")
    return 0
