"""Who may do what with the bridge: relay < user < admin, by user id, domain or ``*``.

As in mautrix bridges' ``bridge.permissions``: the most specific entry wins (a full user id,
then the user's homeserver domain, then ``*``). Without ``MATRIX_PERMISSIONS`` everyone is
relayed and users of our own homeserver may use the informational commands; nobody is admin
until an operator says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class Level(IntEnum):
    NONE = 0
    RELAY = 1
    USER = 2
    ADMIN = 3


def default_permissions(server_name: str) -> dict[str, str]:
    return {"*": "relay", server_name: "user"}


class Permissions:
    def __init__(self, table: Mapping[str, str], *, server_name: str) -> None:
        self._table = dict(table) or default_permissions(server_name)

    def level(self, user_id: str) -> Level:
        domain = user_id.partition(":")[2]
        for key in (user_id, domain, "*"):
            role = self._table.get(key)
            if role:
                return Level[role.upper()]
        return Level.NONE
