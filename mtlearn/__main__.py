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
    """Run one subcommand; returns its exit status (argparse exits with 2 on bad arguments).

    Ctrl-C ends the command with status 130 and one line, not a traceback: every training
    strategy has already stopped and joined its threads by the time it gets here."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
