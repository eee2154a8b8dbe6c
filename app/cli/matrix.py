"""``syncbot registration``: print the appservice registration YAML for the homeserver."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import EXIT_CONFIG, EXIT_OK, fail, settings_or_exit
from app.errors import ConfigError
from app.matrix.registration import registration_yaml


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "registration",
        help="print the Matrix appservice registration YAML",
        description="Print the appservice registration file for the homeserver, derived from "
        "the MATRIX_* settings (tokens, bot localpart, ghost template). Write it where the "
        "homeserver's app_service_config_files points and restart the homeserver.",
    )
    parser.add_argument(
        "--url",
        help="where the homeserver reaches this app (default: SYNCBOT_PUBLIC_URL)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    try:
        print(registration_yaml(settings, url=args.url), end="")
    except ConfigError as exc:
        fail("cannot write the registration", exc.problems)
        return EXIT_CONFIG
    return EXIT_OK
