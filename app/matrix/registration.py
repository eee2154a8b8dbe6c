"""The appservice registration file the homeserver loads, derived from our settings."""

from __future__ import annotations

import json

from app.errors import ConfigError
from app.matrix.ids import BridgeIds
from app.settings import Settings

# The seed's appservice id (mautrix-slack's default): one id per homeserver, also the path of
# the homeserver's appservice ping.
APPSERVICE_ID = "slack"


def _yaml_str(value: str) -> str:
    # JSON string syntax is valid YAML and escapes everything that needs it.
    return json.dumps(value)


def registration_yaml(settings: Settings, *, url: str | None = None) -> str:
    """The registration YAML for ``settings``.

    Args:
        settings: must carry the server name and both tokens.
        url: where the homeserver reaches us; default ``SYNCBOT_PUBLIC_URL``.

    Raises:
        ConfigError: a required setting is missing.
    """
    problems = [
        name
        for name, value in (
            ("MATRIX_SERVER_NAME", settings.matrix_server_name),
            ("MATRIX_AS_TOKEN", settings.matrix_as_token),
            ("MATRIX_HS_TOKEN", settings.matrix_hs_token),
        )
        if not value
    ]
    target = url or settings.public_url
    if not target:
        problems.append("--url or SYNCBOT_PUBLIC_URL")
    if problems:
        raise ConfigError([f"registration needs {p}" for p in problems])
    ids = BridgeIds.from_settings(settings)
    lines = [
        f"id: {APPSERVICE_ID}",
        f"url: {_yaml_str(str(target).rstrip('/'))}",
        f"as_token: {_yaml_str(str(settings.matrix_as_token))}",
        f"hs_token: {_yaml_str(str(settings.matrix_hs_token))}",
        f"sender_localpart: {_yaml_str(ids.bot_localpart)}",
        "rate_limited: false",
        "namespaces:",
        "  users:",
        "    - exclusive: true",
        f"      regex: {_yaml_str('^' + ids.user_regex() + '$')}",
        "  aliases:",
        "    - exclusive: true",
        f"      regex: {_yaml_str('^' + ids.alias_regex() + '$')}",
        "  rooms: []",
    ]
    return "\n".join(lines) + "\n"
