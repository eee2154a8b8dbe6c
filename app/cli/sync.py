"""``syncbot sync create|add|remove|list``: curate syncs from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK, fail
from app.cli.errors import remote_problem
from app.core.endpoints import Endpoint, EndpointError, Network
from app.core.workspaces import UnknownWorkspace
from app.errors import RemoteError
from app.federation.admin import DISABLED, ENABLE_HINT
from app.settings import Settings
from app.store.syncs import SyncAdminError

MATRIX_HINT = (
    "set MATRIX_HOMESERVER_URL, MATRIX_SERVER_NAME, MATRIX_AS_TOKEN and MATRIX_HS_TOKEN "
    "(`syncbot registration --generate` makes the tokens), then add the room again"
)


def register(sub: Any) -> None:
    parser = sub.add_parser("sync", help="create syncs and add or remove their endpoints")
    inner = parser.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    create = inner.add_parser("create", help="create an empty sync")
    create.add_argument("name", help="the new sync's name, e.g. general")
    create.add_argument(
        "--allow-broadcast",
        action="store_true",
        help="let @here/@channel/@everyone ping the other endpoints",
    )
    create.set_defaults(func=run_create)
    for action, helptext in (
        ("add", "add an endpoint (joins the bot to a Slack channel)"),
        ("remove", "remove an endpoint"),
    ):
        p = inner.add_parser(
            action,
            help=helptext,
            description="ENDPOINT is slack:TEAM_ID/CHANNEL_ID, "
            "matrix:!room:server or peer:INSTANCE/ENDPOINT.",
        )
        p.add_argument("name", help="the sync's name (see `syncbot sync list`)")
        p.add_argument(
            "endpoint",
            help="slack:TEAM_ID/CHANNEL_ID, matrix:!room:server or peer:INSTANCE/ENDPOINT",
        )
        p.set_defaults(func=run_add if action == "add" else run_remove)
    listing = inner.add_parser("list", help="list syncs, their endpoints and queue state")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)


def _endpoint(text: str) -> Endpoint | None:
    try:
        return Endpoint.parse(text)
    except EndpointError as exc:
        fail("bad endpoint", [str(exc)])
        return None


def run_create(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        try:
            runtime.services.syncs.create(args.name, allow_broadcast=args.allow_broadcast)
        except SyncAdminError as exc:
            fail("cannot create sync", [str(exc)])
            return EXIT_FAILED
    print(f"created sync {args.name}")
    return EXIT_OK


def network_problem(settings: Settings, endpoint: Endpoint) -> list[str]:
    """Why this process cannot serve ``endpoint``'s network (title and fix), or nothing."""
    if endpoint.network is Network.MATRIX and not settings.matrix_enabled:
        return ["the Matrix bridge is not configured here", MATRIX_HINT]
    if endpoint.network is Network.PEER and not settings.federation_enabled:
        return [DISABLED, ENABLE_HINT]
    return []


def run_add(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    if endpoint is None:
        return EXIT_FAILED
    with admin_runtime() as runtime:
        # The sync first: "no sync named x" is the mistake, not the workspace or the room.
        if not runtime.services.syncs.exists(args.name):
            fail(
                f"cannot add {endpoint}: there is no sync named {args.name!r}",
                [f"create it with `syncbot sync create {args.name}` (see `syncbot sync list`)"],
            )
            return EXIT_FAILED
        problem = network_problem(runtime.settings, endpoint)
        if problem:
            fail(f"cannot add {endpoint}: {problem[0]}", problem[1:])
            return EXIT_FAILED
        try:
            if endpoint.network is Network.SLACK:
                # Join first: a channel the bot cannot join would never receive copies.
                api = runtime.services.slack.workspaces.api(endpoint.slack_team)
                asyncio.run(api.call("conversations.join", channel=endpoint.slack_channel))
            runtime.services.syncs.add(args.name, endpoint)
        except RemoteError as exc:
            title, fix = remote_problem(exc)
            fail(f"cannot add {endpoint}: {title}", [fix])
            return EXIT_FAILED
        except (SyncAdminError, UnknownWorkspace) as exc:
            fail(f"cannot add {endpoint}", [_with_install_hint(exc)])
            return EXIT_FAILED
    print(f"added {endpoint} to {args.name}")
    return EXIT_OK


def _with_install_hint(exc: Exception) -> str:
    if isinstance(exc, UnknownWorkspace):
        return f"{exc}: install it with `syncbot workspace add --bot-token xoxb-...` (or OAuth)"
    return str(exc)


def run_remove(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args.endpoint)
    if endpoint is None:
        return EXIT_FAILED
    with admin_runtime() as runtime:
        try:
            runtime.services.syncs.remove(args.name, endpoint)
        except SyncAdminError as exc:
            fail(f"cannot remove {endpoint}", [str(exc)])
            return EXIT_FAILED
    print(f"removed {endpoint} from {args.name}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        views = runtime.services.syncs.list()
    data: list[dict[str, Any]] = [
        {
            "name": v.name,
            "status": v.status,
            "endpoints": [{"endpoint": e, "status": s} for e, s in v.endpoints],
            "pending": v.pending,
            "dead": v.dead,
        }
        for v in views
    ]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for v in data:
            print(f"{v['name']} ({v['status']}, {v['pending']} pending, {v['dead']} dead)")
            for e in v["endpoints"]:
                print(f"  {e['endpoint']}  [{e['status']}]")
    return EXIT_OK
