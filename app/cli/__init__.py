"""The ``syncbot`` command line: one subcommand module per command group.

Each module named in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subcommands and sets ``func`` (taking the parsed namespace, returning an exit code) on each.
A new command group is a new module plus one line here.

A user's mistake never ends in a traceback: every :class:`~app.errors.SyncbotError` a command
lets through is printed by :func:`main` with what to do about it (:mod:`app.cli.errors`).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from importlib import metadata

from app.cli.errors import report_error
from app.errors import SyncbotError

COMMAND_MODULES: list[str] = [
    "app.cli.serve",
    "app.cli.migrate",
    "app.cli.check",
    "app.cli.keys",
    "app.cli.workspace",
    "app.cli.sync",
    "app.cli.status",
    "app.cli.deliveries",
    "app.cli.peer",
    "app.cli.matrix",
    "app.cli.manifest",
    "app.cli.backup",
    "app.cli.demo",
]

EXIT_INTERRUPTED = 130


def version() -> str:
    """The installed distribution's version (the checkout's, when run from source)."""
    try:
        return metadata.version("syncbot")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="syncbot",
        description="Keep chat channels in sync across Slack, Matrix and peer instances.",
        epilog="Run `syncbot COMMAND --help` for a command's arguments; `syncbot demo` shows a "
        "sync at work against a simulated Slack.",
    )
    parser.add_argument(
        "--version", action="version", version=f"syncbot {version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncbot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SyncbotError as exc:
        return report_error(exc)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
