"""Building the federation adapter: peers' files read inline, deliveries to peers."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

from sqlalchemy.orm import Session, sessionmaker

from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint, Network
from app.core.events import FileRef
from app.core.files import FileSources
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.egress import EgressPolicy
from app.errors import RemoteError
from app.federation.identity import Identity
from app.federation.service import Federation
from app.settings import Settings
from app.store.cipher import TokenCipher


async def inline_file(_source: Endpoint, ref: FileRef) -> AsyncIterator[bytes]:
    """Files from peers arrive inline as ``data:`` URLs (size-capped by the sender)."""
    header, _, data = ref.url.partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise RemoteError("peer file is not an inline data URL", network="peer")
    yield base64.b64decode(data)


def build_federation(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    outbox: Outbox,
    ingest: Ingest,
    authors: AuthorDirectory,
    files: FileSources,
) -> Federation:
    """The federation service; registers its deliverer and the file source for peers' files."""
    federation = Federation(
        sessions=sessions,
        identity=Identity(sessions, cipher, settings.instance_id),
        ingest=ingest,
        authors=authors,
        public_url=settings.public_url,
        allow_private=settings.federation_allow_private,
        enabled=settings.federation_enabled,
        egress=EgressPolicy.from_settings(settings),
        files=files,
    )
    files.register(Network.PEER, inline_file)
    outbox.register(federation)
    return federation
