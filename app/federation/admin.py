"""Peer administration shared by ``syncbot peer`` and the Slack App Home.

Both surfaces drive the same :class:`~app.federation.service.Federation` methods (``invite``,
``join``, ``peers``, ``remove``); this module is what they would otherwise each repeat: finding
the federation service and refusing clearly when it is off, and reading a pasted pairing code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from app.errors import FederationError

if TYPE_CHECKING:  # the CLI imports this at start; the service (aiohttp, starlette) only on use
    from app.federation.service import Federation

DISABLED = "federation is disabled"
ENABLE_HINT = "set SYNCBOT_FEDERATION_ENABLED=true"


class FederationDisabled(FederationError):
    """The federation service is not running in this process."""


class HasFederation(Protocol):
    """What holds the process's federation service (:class:`app.services.Services`)."""

    @property
    def federation(self) -> Federation | None: ...


def federation_of(services: HasFederation) -> Federation:
    """The running federation service of ``services``.

    Raises:
        FederationDisabled: SYNCBOT_FEDERATION_ENABLED is off.
    """
    federation = services.federation
    if federation is None:
        raise FederationDisabled(f"{DISABLED} ({ENABLE_HINT})")
    return federation


async def connect(federation: Federation, code: str, sync_name: str) -> str:
    """Redeem a peer's pairing code into our sync ``sync_name``; returns the peer's id.

    Raises:
        FederationError: the code is empty or malformed, or the peer refused it.
        RemoteError: the peer could not be reached.
    """
    # Codes travel through chat and e-mail: stray whitespace and line breaks are not part of it.
    cleaned = "".join(code.split())
    if not cleaned:
        raise FederationError("paste the pairing code the other instance printed")
    return await federation.join(cleaned, sync_name)
