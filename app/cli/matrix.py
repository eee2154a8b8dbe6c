"""``syncbot registration``: the Matrix appservice registration for the homeserver.

With ``--generate`` it also makes the two appservice tokens, prints them as environment lines
(ready for an ``.env`` file or a secret store) and can write the registration file the
homeserver loads, so a new bridge needs no hand-made secrets.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from app.cli.common import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, fail, settings_or_exit
from app.errors import ConfigError
from app.matrix.registration import registration_yaml

GENERATE_HINT = (
    "set them, or let `syncbot registration --generate --url URL --server-name NAME` make the "
    "tokens and print the environment lines"
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "registration",
        help="print the Matrix appservice registration YAML (or --generate its tokens)",
        description="Print the appservice registration file for the homeserver, derived from "
        "the MATRIX_* settings (tokens, bot localpart, ghost template). Write it where the "
        "homeserver's app_service_config_files points and restart the homeserver. With "
        "--generate, make new tokens, print MATRIX_* environment lines on stdout and write the "
        "matching registration to --out.",
    )
    parser.add_argument(
        "--url",
        help="where the homeserver reaches this app (default: SYNCBOT_PUBLIC_URL)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="make new MATRIX_AS_TOKEN and MATRIX_HS_TOKEN and print them as environment lines",
    )
    parser.add_argument(
        "--server-name",
        help="with --generate: the homeserver's server name (default: MATRIX_SERVER_NAME)",
    )
    parser.add_argument(
        "--homeserver-url",
        help="with --generate: the homeserver's client-server API URL for "
        "MATRIX_HOMESERVER_URL (default: the setting, if any)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="with --generate: write the registration YAML to FILE (mode 0600) as well",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    if args.generate:
        return _generate(args, settings)
    try:
        print(registration_yaml(settings, url=args.url), end="")
    except ConfigError as exc:
        fail("cannot write the registration", [*exc.problems, GENERATE_HINT])
        return EXIT_CONFIG
    return EXIT_OK


def _generate(args: argparse.Namespace, settings: Any) -> int:
    server_name = args.server_name or settings.matrix_server_name
    if not server_name:
        fail("--generate needs the homeserver's server name", ["pass --server-name example.org"])
        return EXIT_CONFIG
    generated = dataclasses.replace(
        settings,
        matrix_server_name=server_name,
        matrix_as_token=secrets.token_urlsafe(48),
        matrix_hs_token=secrets.token_urlsafe(48),
    )
    try:
        text = registration_yaml(generated, url=args.url)
    except ConfigError as exc:
        fail("cannot write the registration", exc.problems)
        return EXIT_CONFIG
    if args.out:
        try:
            _write_private(Path(args.out), text)
        except OSError as exc:
            fail(f"cannot write {args.out}", [f"{exc.strerror or exc}: choose a writable path"])
            return EXIT_FAILED
    homeserver = args.homeserver_url or settings.matrix_homeserver_url
    lines = [
        f"MATRIX_SERVER_NAME={server_name}",
        f"MATRIX_AS_TOKEN={generated.matrix_as_token}",
        f"MATRIX_HS_TOKEN={generated.matrix_hs_token}",
    ]
    if homeserver:
        lines.insert(0, f"MATRIX_HOMESERVER_URL={homeserver}")
    print("\n".join(lines))
    where = f"written to {args.out}" if args.out else "not written (no --out)"
    print(
        f"syncbot: new appservice tokens; registration {where}. Set these lines in syncbot's "
        "environment and point the homeserver's app_service_config_files at the registration.",
        file=sys.stderr,
    )
    return EXIT_OK


def _write_private(path: Path, text: str) -> None:
    # The registration holds both tokens: readable by its owner only, from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
