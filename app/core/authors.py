"""Author names and avatars, resolved when a delivery needs them.

Inbound adapters only know an author's native id when they must acknowledge fast (Slack's
3-second rule); the network that owns the author fills in name and avatar later, with its own
cache, through the resolver it registers here.
"""

from __future__ import annotations

import logging
from typing import Protocol

from app.core.endpoints import Endpoint, Network
from app.core.events import Author
from app.errors import RemoteError

log = logging.getLogger("syncbot.core.authors")


class AuthorResolver(Protocol):
    async def resolve(self, source: Endpoint, author: Author) -> Author:
        """Return ``author`` with name and avatar filled in from its network."""
        ...


class AuthorDirectory:
    """Dispatches author resolution to the network the author comes from."""

    def __init__(self) -> None:
        self._resolvers: dict[Network, AuthorResolver] = {}

    def register(self, network: Network, resolver: AuthorResolver) -> None:
        self._resolvers[network] = resolver

    async def resolve(self, source: Endpoint, author: Author) -> Author:
        if author.name and author.avatar_url:
            return author
        resolver = self._resolvers.get(source.network)
        if resolver is None:
            return author
        try:
            resolved = await resolver.resolve(source, author)
        except RemoteError as exc:
            if exc.retryable:
                raise  # transient: let the outbox retry the delivery with the real name
            log.warning("author lookup refused", extra={"source": str(source)})
            resolved = author
        except Exception:
            # A profile lookup failing must not block the message: show what we have.
            log.warning("author lookup failed", extra={"source": str(source)}, exc_info=True)
            resolved = author
        if not resolved.name:
            fallback = (author.native_id or "someone").rsplit("/", 1)[-1]
            resolved = Author(fallback, resolved.native_id, resolved.avatar_url, resolved.origin)
        return resolved


def reactor(source: Endpoint, actor: str, actor_name: str = "", origin: str = "") -> Author:
    """The person behind a reaction, as an author to resolve (and, on Matrix, to ghost).

    ``actor`` is the relay's reactor key: ``<endpoint>|<user>`` from Slack (the user is native to
    the workspace), the user id itself from other networks.
    """
    user = actor.rsplit("|", 1)[-1] if "|" in actor else actor
    user = user or actor_name
    if source.network is Network.SLACK:
        return Author(name="", native_id=f"{source.slack_team}/{user}", origin=origin)
    return Author(name="", native_id=user, origin=origin)
