"""``syncbot manifest --url https://…``: print the Slack app manifest for this deployment.

Scopes and bot events come from :mod:`app.scopes`, the same tuples the settings use as defaults,
so the app created from this manifest asks for exactly what the code uses.
"""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import urlsplit

from app.cli.common import EXIT_CONFIG, EXIT_OK, fail
from app.scopes import BOT_EVENTS, DEFAULT_BOT_SCOPES, DEFAULT_USER_SCOPES, USER_EVENTS
from app.slack.oauth import REDIRECT_PATH

EVENTS_PATH = "/slack/events"
APP_NAME = "syncbot"
DESCRIPTION = "Keeps channels in sync across Slack workspaces, Matrix rooms and peer instances."


def build_manifest(
    url: str,
    *,
    name: str = APP_NAME,
    socket_mode: bool = False,
    token_rotation: bool = False,
) -> dict[str, Any]:
    """The Slack app manifest for a deployment served at ``url``.

    Args:
        url: The public base URL (``SYNCBOT_PUBLIC_URL``), e.g. ``https://sync.example.org``.
        name: The app's and bot user's display name.
        socket_mode: Receive events over Socket Mode; Slack then needs no request URLs.
        token_rotation: Have Slack issue expiring bot tokens with refresh tokens.

    Returns:
        The manifest as a JSON-ready dict.
    """
    base = url.rstrip("/")
    scopes: dict[str, list[str]] = {"bot": list(DEFAULT_BOT_SCOPES)}
    if DEFAULT_USER_SCOPES:
        scopes["user"] = list(DEFAULT_USER_SCOPES)
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    if USER_EVENTS:
        events["user_events"] = list(USER_EVENTS)
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        events["request_url"] = f"{base}{EVENTS_PATH}"
        interactivity["request_url"] = f"{base}{EVENTS_PATH}"
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {"name": name, "description": DESCRIPTION},
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": False,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
        },
        "oauth_config": {
            "redirect_urls": [f"{base}{REDIRECT_PATH}"],
            "scopes": scopes,
        },
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": token_rotation,
        },
    }


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "manifest",
        help="print the Slack app manifest",
        description="Print the Slack app manifest (JSON) for a deployment: scopes, events, "
        "interactivity, redirect URL. Paste it into https://api.slack.com/apps -> Create New "
        "App -> From a manifest.",
    )
    parser.add_argument(
        "--url", required=True, help="the public HTTPS base URL (SYNCBOT_PUBLIC_URL)"
    )
    parser.add_argument("--name", default=APP_NAME, help="app display name (default: syncbot)")
    parser.add_argument(
        "--socket-mode",
        action="store_true",
        help="receive events over Socket Mode instead of HTTP request URLs",
    )
    parser.add_argument(
        "--token-rotation",
        action="store_true",
        help="have Slack issue expiring bot tokens (renewed automatically)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        fail(
            f"--url must be an https:// base URL, got {args.url!r}",
            ["Slack only calls HTTPS request and redirect URLs; pass SYNCBOT_PUBLIC_URL"],
        )
        return EXIT_CONFIG
    manifest = build_manifest(
        args.url,
        name=args.name,
        socket_mode=args.socket_mode,
        token_rotation=args.token_rotation,
    )
    print(json.dumps(manifest, indent=2))
    return EXIT_OK
