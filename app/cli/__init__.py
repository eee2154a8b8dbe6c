"""The ``syncbot`` command line: one subcommand module per command group.

Each module named in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
subcommands and sets ``func`` (taking the parsed namespace, returning an exit code) on each.
A new command group is a new module plus one line here.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

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
]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="syncbot",
        description="Keep chat channels in sync across Slack, Matrix and peer instances.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncbot`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
