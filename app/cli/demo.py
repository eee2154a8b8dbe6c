"""``syncbot demo``: watch a sync at work, against a simulated Slack, in under a minute."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from app.cli.common import EXIT_FAILED, fail
from app.logs import configure_logging


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the service against a simulated Slack and show a sync at work",
        description="Start a simulated Slack with three workspaces (Acme, Beta, Gamma) and the "
        "real service on loopback, install the workspaces and sync their #general, then post, "
        "edit, reply in a thread, react, upload a file and delete, showing each copy as it "
        "arrives on every other side, and a summary. Needs no settings and touches no real "
        "Slack; everything is removed afterwards.",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long each step waits for its copies (default: 30)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="keep the demo's SQLite database and key in DIR (default: a temporary directory)",
    )
    parser.add_argument(
        "--matrix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also bridge a Matrix room on a throwaway Synapse (default: when matrix-synapse is "
        "installed, as in the venv of `make test`)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("fakeslack") is None:
        fail(
            "the demo needs the simulated Slack (the fakeslack package of a source checkout)",
            ["run `make demo` in a clone of the repository"],
        )
        return EXIT_FAILED
    from app.demo.matrix import homeserver_at_hand
    from app.demo.run import run_demo

    matrix = homeserver_at_hand() if args.matrix is None else args.matrix
    if matrix and not homeserver_at_hand():
        fail(
            "--matrix needs a homeserver: the matrix-synapse package is not installed here",
            ["`make test` builds a venv with it (then `.venv/bin/syncbot demo --matrix`)"],
        )
        return EXIT_FAILED
    # The service's own log lines would interleave with the demo's: warnings and worse only.
    configure_logging("WARNING", fmt="text", stream=sys.stderr)
    # The simulated users' avatars live on a host that does not resolve (avatars.slack-edge.test):
    # ghosts keep no avatar, which is all the warning would say, once per ghost.
    logging.getLogger("syncbot.matrix.ghosts").setLevel(logging.ERROR)
    return run_demo(timeout=args.timeout, data_dir=args.data_dir, matrix=matrix)
