"""``syncbot peer invite|join|list|remove|rotate-key``: federation with other instances."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any

from app.cli.admin_common import admin_runtime
from app.cli.common import EXIT_FAILED, EXIT_OK, fail
from app.errors import FederationError, RemoteError
from app.federation.admin import DISABLED, ENABLE_HINT, FederationDisabled, connect, federation_of


def register(sub: Any) -> None:
    parser = sub.add_parser("peer", help="pair with other syncbot instances")
    inner = parser.add_subparsers(dest="peer_command", metavar="ACTION", required=True)
    invite = inner.add_parser("invite", help="print a single-use pairing code for a sync")
    invite.add_argument("sync", help="the sync the peer is invited into")
    invite.add_argument(
        "--ttl-hours", type=float, default=24.0, help="hours until the code expires (default: 24)"
    )
    invite.set_defaults(func=run_invite)
    join = inner.add_parser("join", help="redeem a peer's pairing code into one of our syncs")
    join.add_argument("code", help="the pairing code `syncbot peer invite` printed on the peer")
    join.add_argument("--sync", required=True, help="our sync the peer joins")
    join.set_defaults(func=run_join)
    listing = inner.add_parser("list", help="list paired peers")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)
    remove = inner.add_parser("remove", help="unpair a peer and drop its endpoints")
    remove.add_argument("instance", help="the peer's instance id (see `syncbot peer list`)")
    remove.set_defaults(func=run_remove)
    rotate = inner.add_parser("rotate-key", help="new signing key, announced to every peer")
    rotate.set_defaults(func=run_rotate)


def _federation(runtime: Any) -> Any:
    try:
        return federation_of(runtime.services)
    except FederationDisabled:
        fail(DISABLED, [ENABLE_HINT])
        raise SystemExit(EXIT_FAILED) from None


def run_invite(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        try:
            code = _federation(runtime).invite(args.sync, ttl=timedelta(hours=args.ttl_hours))
        except FederationError as exc:
            fail("cannot create a pairing code", [str(exc)])
            return EXIT_FAILED
    print(code)
    return EXIT_OK


def run_join(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        try:
            peer = asyncio.run(connect(_federation(runtime), args.code, args.sync))
        except (FederationError, RemoteError) as exc:
            fail("pairing failed", [str(exc)])
            return EXIT_FAILED
    print(peer)
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        peers = _federation(runtime).peers()
    data = [
        {
            "instance": p.instance_id,
            "url": p.url,
            "status": p.status,
            "endpoints": list(p.endpoints),
        }
        for p in peers
    ]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for p in data:
            print(f"{p['instance']}  {p['status']}  {p['url']}  {', '.join(p['endpoints'])}")
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        try:
            _federation(runtime).remove(args.instance)
        except FederationError as exc:
            fail("cannot remove peer", [str(exc)])
            return EXIT_FAILED
    print(f"removed {args.instance}")
    return EXIT_OK


def run_rotate(_args: argparse.Namespace) -> int:
    with admin_runtime() as runtime:
        announced = asyncio.run(_federation(runtime).rotate_key())
    print(f"new key announced to {announced} peer(s)")
    return EXIT_OK
