"""The sync machinery shared by everything in one process: store, relay, outbox, adapters.

Built by the composition root (:mod:`app.assembly`); the App Home sections, the CLI and the
Lambda entry read it. Every field is typed: there is no bag of extras looked up by name.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.authors import AuthorDirectory
from app.core.dispatch import Dispatcher
from app.core.files import FileSources
from app.core.links import RoomLinks
from app.core.outbox import Outbox
from app.core.relay import Relay
from app.federation.service import Federation
from app.periodic import cancel
from app.settings import Settings
from app.slack.http_pool import HttpPool
from app.slack.setup import SlackAdapter
from app.store.cipher import TokenCipher
from app.store.relay_store import SqlStore
from app.store.syncs import SyncAdmin


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    cipher: TokenCipher
    store: SqlStore
    relay: Relay
    outbox: Outbox
    dispatcher: Dispatcher
    authors: AuthorDirectory
    syncs: SyncAdmin
    # How each network's files are read, for copying them into another.
    files: FileSources
    slack: SlackAdapter
    # None when SYNCBOT_FEDERATION_ENABLED is off.
    federation: Federation | None = None
    # Linking Matrix rooms from the App Home; None when the Matrix bridge is not running.
    matrix_links: RoomLinks | None = None


class OutboxWorker:
    """The outbox's background worker as a runtime worker (``syncbot serve``)."""

    def __init__(self, outbox: Outbox, *, idle: float = 5.0, http: HttpPool | None = None) -> None:
        self._outbox = outbox
        self._idle = idle
        self._http = http
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Deliveries complete in worker threads; the default pool (cores + 4) would make a
        # 25-way fan-out wait on 6 threads.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
        if self._http is not None:
            # This loop lives as long as the process: keep connections to Slack open.
            await self._http.open()
        self._task = asyncio.create_task(
            self._outbox.run_forever(idle=self._idle), name="syncbot-outbox"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel(task)
        await self._outbox.wait_idle(10.0)
        if self._http is not None:
            await self._http.close()
