"""Endpoints: where a sync's messages live, in one string form used everywhere.

``slack:T123/C456`` · ``matrix:!room:server`` · ``peer:<instance>/<remote endpoint>``
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Network(StrEnum):
    SLACK = "slack"
    MATRIX = "matrix"
    PEER = "peer"


MAX_LENGTH = 255  # the endpoint column
_SLACK = re.compile(r"^(T[A-Z0-9]+)/([CGD][A-Z0-9]+)$")
# Room versions up to 11 have "!opaque:server" ids; version 12 drops the server part.
_MATRIX = re.compile(r"^![^:\s/]+(?::[^\s/]+)?$")
_PEER = re.compile(r"^([A-Za-z0-9-]{1,64})/((?:slack|matrix):.+)$")


class EndpointError(ValueError):
    """An endpoint string that does not name a channel, room or peer channel."""


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """A channel of one network: ``network`` plus its network-specific ``address``."""

    network: Network
    address: str

    def __str__(self) -> str:
        return f"{self.network}:{self.address}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """Parse ``slack:T/C``, ``matrix:!room:server`` or ``peer:instance/endpoint``.

        Raises:
            EndpointError: with the expected forms, when ``text`` is none of them.
        """
        network, sep, address = text.strip().partition(":")
        checks = {Network.SLACK: _SLACK, Network.MATRIX: _MATRIX, Network.PEER: _PEER}
        try:
            net = Network(network)
        except ValueError:
            net = None
        # Endpoints are printed by `sync list` and stored in a 255-character column: no control
        # characters (terminal escapes, line breaks) and nothing longer than the column.
        printable = address.isprintable() and len(text.strip()) <= MAX_LENGTH
        if not sep or net is None or not printable or not checks[net].match(address):
            raise EndpointError(
                f"not an endpoint: {text!r} (expected slack:TEAM_ID/CHANNEL_ID, "
                "matrix:!room:server or peer:INSTANCE/ENDPOINT)"
            )
        return cls(net, address)

    @classmethod
    def slack(cls, team_id: str, channel_id: str) -> Endpoint:
        return cls.parse(f"slack:{team_id}/{channel_id}")

    @classmethod
    def matrix(cls, room_id: str) -> Endpoint:
        return cls.parse(f"matrix:{room_id}")

    def same_conversation(self, other: Endpoint) -> bool:
        """The same place: equal, or two workspaces' views of one Slack Connect channel (a
        shared channel keeps its one id in every workspace it is shared with)."""
        if self == other:
            return True
        return (
            self.network is Network.SLACK
            and other.network is Network.SLACK
            and self.slack_channel == other.slack_channel
        )

    @property
    def slack_team(self) -> str:
        self._require(Network.SLACK)
        return self.address.split("/", 1)[0]

    @property
    def slack_channel(self) -> str:
        self._require(Network.SLACK)
        return self.address.split("/", 1)[1]

    @property
    def matrix_room(self) -> str:
        self._require(Network.MATRIX)
        return self.address

    @property
    def peer_instance(self) -> str:
        self._require(Network.PEER)
        return self.address.split("/", 1)[0]

    @property
    def peer_remote(self) -> Endpoint:
        self._require(Network.PEER)
        return Endpoint.parse(self.address.split("/", 1)[1])

    def _require(self, network: Network) -> None:
        if self.network is not network:
            raise EndpointError(f"{self} is not a {network} endpoint")
