"""The ``lakehouse`` command: every module in ``lakehouse/commands`` adds its subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import lakehouse.commands
from lakehouse.secrets import excepthook


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lakehouse", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in sorted(pkgutil.iter_modules(lakehouse.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"lakehouse.commands.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    sys.excepthook = excepthook  # an uncaught error's traceback is printed redacted too
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
