"""Command line: ``python -m mtlearn info`` and ``python -m mtlearn train cnn``."""

from __future__ import annotations

import argparse
import sys
import time


class ProgressBar:
    """A one-line text progress bar on stderr (no dependency): ``bar(done, loss)``."""

    def __init__(self, total: int, width: int = 30, stream=sys.stderr):
        self.total, self.width, self.stream = total, width, stream
        self.start = time.perf_counter()

    def __call__(self, done: int, loss: float) -> None:
        filled = self.width * done // self.total
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done}/{self.total} steps  loss {loss:.4f}  {rate:.0f} steps/s")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_info(args) -> int:
    from . import info

    print(info.describe())
    return 0


def cmd_train(args) -> int:
    from threadpoolctl import threadpool_limits

    from . import data, info, nn
    from .training import fit

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtlearn",
                                description="mtlearn: threads and neural-network training")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("info", help="cores, Python build (GIL or free-threaded), numpy, BLAS")
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("train", help="train a model on a built-in dataset")
    s.add_argument("model", choices=["cnn"], help="which model")
    s.add_argument("--dataset", choices=["shapes", "digits"], default="shapes")
    s.add_argument("--epochs", type=_positive, default=5)
    s.add_argument("--batch-size", type=_positive, default=32)
    s.add_argument("--lr", type=float, default=0.05)
    s.add_argument("--n", type=_positive, default=2000, help="images to generate (shapes)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--blas-threads", type=_positive, default=1)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)
    return p


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
