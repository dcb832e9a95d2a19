"""Command line: ``python -m mtlearn {info,train,...}``; see ``--help``."""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli import SUBCOMMANDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtlearn",
                                description="mtlearn: threads and neural-network training")
    sub = p.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"mtlearn.cli.{name}").add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
