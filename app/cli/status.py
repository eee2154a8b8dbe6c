"""``syncbot status [--json]``: the health indicators, as a table or as JSON.

Reads the database only, so it works from any shell that has the service's settings; the
Socket Mode states come from what the serving process last recorded.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK
from app.health import format_report, gather


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="show connection states, latency, outbox depth and dead deliveries",
        description="Print the health indicators: Socket Mode connection state per workspace "
        "(as last recorded by the service), last successful message, message latency "
        "p50/p95, outbox depth, dead deliveries, portal and ghost counts. Exits 1 when a "
        "workspace's connection failed.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        report = gather(runtime.sessions)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(format_report(report))
    return EXIT_OK if report.status == "ok" else EXIT_FAILED
