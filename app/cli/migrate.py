"""``syncbot migrate``: upgrade (or downgrade) the schema under the database migration lock."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import EXIT_OK, connect_or_exit, settings_or_exit
from app.store.engine import make_engine
from app.store.migrate import current_revision, downgrade, upgrade


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "migrate",
        help="upgrade the database schema",
        description="Upgrade the database schema to head (or --revision) under a database "
        "lock, so concurrent runs are safe. With --down, downgrade to --revision instead.",
    )
    parser.add_argument("--revision", help="target revision (default: head, or -1 with --down)")
    parser.add_argument("--down", action="store_true", help="downgrade instead of upgrading")
    parser.add_argument(
        "--wait-db",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to wait for a cold database (default: 20)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    engine = make_engine(settings, pool_size=1)
    try:
        connect_or_exit(settings, engine, wait=args.wait_db)
        if args.down:
            downgrade(engine, args.revision or "-1")
        else:
            upgrade(engine, args.revision or "heads")
        print(f"schema at {current_revision(engine) or 'base'}")
        return EXIT_OK
    finally:
        engine.dispose()
