"""``syncbot workspace add|list``: workspaces installed with a bot token (no OAuth needed)."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK, fail
from app.cli.errors import remote_problem
from app.errors import RemoteError


def register(sub: Any) -> None:
    parser = sub.add_parser("workspace", help="add or list Slack workspaces")
    inner = parser.add_subparsers(dest="workspace_command", metavar="ACTION", required=True)
    add = inner.add_parser(
        "add",
        help="install a workspace from its bot token",
        description="Verify the bot token with auth.test (on SLACK_API_URL), store the "
        "workspace with its tokens encrypted, and print its team id.",
    )
    add.add_argument(
        "--bot-token", required=True, help="the xoxb- bot token (OAuth & Permissions page)"
    )
    add.add_argument("--app-token", help="an xapp- app-level token, for Socket Mode")
    add.set_defaults(func=run_add)
    listing = inner.add_parser("list", help="list workspaces (no tokens are shown)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)


def run_add(args: argparse.Namespace) -> int:
    if not args.bot_token.startswith("xoxb-"):
        fail("not a bot token", ["--bot-token must start with xoxb-"])
        return EXIT_FAILED
    if args.app_token and not args.app_token.startswith("xapp-"):
        fail("not an app-level token", ["--app-token must start with xapp-"])
        return EXIT_FAILED
    with admin_runtime() as runtime:
        try:
            info = asyncio.run(
                runtime.services.slack.workspaces.add(args.bot_token, args.app_token)
            )
        except RemoteError as exc:
            # "Slack refused the token" only when Slack answered; a DNS failure is not that.
            title, fix = remote_problem(exc)
            fail(title, [fix])
            return EXIT_FAILED
    print(info.team_id)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        rows = runtime.services.slack.workspaces.all()
    data = [
        {
            "team_id": w.team_id,
            "name": w.name,
            "domain": w.domain,
            "status": w.status,
            "socket_mode": w.has_app_token,
        }
        for w in rows
    ]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for w in data:
            mode = "socket mode" if w["socket_mode"] else "events api"
            print(f"{w['team_id']:<12} {w['status']:<8} {mode:<12} {w['name']}")
    return EXIT_OK
