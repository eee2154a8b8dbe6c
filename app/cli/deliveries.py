"""``syncbot deliveries retry [--sync S] [--dead]``: requeue dead deliveries, in order.

A delivery is dead when its target refused it for good or when its target stayed unreachable
past the retention (``SYNCBOT_DELIVERY_MAX_AGE_HOURS``); ``syncbot status`` lists them per
target. Fix the cause, then requeue them: they go out in their original order, posts before
the edits, reactions and replies that depend on them. The running service picks them up (its
worker, or the scheduler's maintenance tick on a queue-driven deployment).
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK, fail
from app.store import outbox_admin
from app.store.models import Sync


def register(sub: Any) -> None:
    parser = sub.add_parser("deliveries", help="requeue dead deliveries")
    inner = parser.add_subparsers(dest="deliveries_command", metavar="ACTION", required=True)
    retry = inner.add_parser(
        "retry",
        help="requeue dead deliveries in their original order",
        description="Make dead deliveries pending again (fresh attempts and retention), "
        "oldest first. `syncbot status` shows how many each target has.",
    )
    retry.add_argument("--sync", metavar="NAME", help="only the deliveries of this sync")
    retry.add_argument(
        "--dead",
        action="store_true",
        default=True,
        help="requeue dead deliveries (the default, and the only kind that needs it: held "
        "ones are retried by themselves)",
    )
    retry.set_defaults(func=run_retry)


def run_retry(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        sync_id = None
        if args.sync:
            with runtime.sessions() as s:
                sync_id = s.execute(select(Sync.id).where(Sync.name == args.sync)).scalar()
            if sync_id is None:
                fail("cannot retry", [f"no sync named {args.sync!r} (see `syncbot sync list`)"])
                return EXIT_FAILED
        uids = outbox_admin.requeue_dead(runtime.sessions, sync_id=sync_id)
    scope = f" of sync {args.sync!r}" if args.sync else ""
    print(f"requeued {len(uids)} dead deliver{'y' if len(uids) == 1 else 'ies'}{scope}")
    return EXIT_OK
