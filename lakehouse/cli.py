"""The ``lakehouse`` command: every module in ``lakehouse/commands`` adds its subcommands."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
from typing import NoReturn

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


def _exit_code(stop: SystemExit) -> int:
    if stop.code is None or isinstance(stop.code, int):
        return stop.code or 0
    print(stop.code, file=sys.stderr)  # as the interpreter does with sys.exit("message")
    return 1


def run() -> NoReturn:
    """The console script: ``main()``, then leave without tearing the interpreter down.

    delta-rs runs a tokio runtime whose worker threads are never stopped; one that wakes while
    ``Py_Finalize`` dismantles the interpreter panics, and the process aborts (SIGABRT) after a
    command that succeeded (delta-io/delta-rs#2184; seen in CI on ``lakehouse dashboard`` stopped
    by SIGTERM). So the exit handlers run and the streams are flushed while everything is intact,
    and the process ends there: nothing is left for finalization to do but free memory.
    """
    try:
        code = main()
    except SystemExit as stop:  # argparse's usage errors, sys.exit() in a command
        code = _exit_code(stop)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (``lakehouse sql ... | head``)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
