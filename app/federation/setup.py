"""Plugging federation into the sync machinery."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from app.core.endpoints import Endpoint, Network
from app.core.events import FileRef
from app.egress import EgressPolicy
from app.errors import RemoteError
from app.federation.identity import Identity
from app.federation.service import Federation


async def inline_file(_source: Endpoint, ref: FileRef) -> AsyncIterator[bytes]:
    """Files from peers arrive inline as ``data:`` URLs (size-capped by the sender)."""
    header, _, data = ref.url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise RemoteError("peer file is not an inline data URL", network="peer")
    yield base64.b64decode(data)


def build_federation(services: object) -> Federation:
    settings = services.settings  # type: ignore[attr-defined]
    federation = Federation(
        sessions=services.sessions,  # type: ignore[attr-defined]
        identity=Identity(
            services.sessions,
            services.cipher,
            settings.instance_id,  # type: ignore[attr-defined]
        ),
        relay=services.relay,  # type: ignore[attr-defined]
        authors=services.authors,  # type: ignore[attr-defined]
        public_url=settings.public_url,
        allow_private=settings.federation_allow_private,
        enabled=settings.federation_enabled,
        egress=EgressPolicy.from_settings(settings),
    )
    slack = services.slack  # type: ignore[attr-defined]
    federation.fetchers[Network.SLACK] = slack.files._fetchers[Network.SLACK]
    slack.files.register(Network.PEER, inline_file)
    services.outbox.register(federation)  # type: ignore[attr-defined]
    federation.on_ingested.append(services.dispatcher.after_commit)  # type: ignore[attr-defined]
    return federation
