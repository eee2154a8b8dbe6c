"""The sync machinery of one process: store, relay, outbox and the network adapters.

Built from settings by :func:`build_services`; the web app, the CLI, the Lambda entry and the
tests all assemble the same object, so there is exactly one way the pieces fit together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.authors import AuthorDirectory
from app.core.outbox import Outbox, RetryPolicy
from app.core.relay import Relay
from app.settings import Settings
from app.slack.setup import SlackAdapter, build_slack
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
    authors: AuthorDirectory
    syncs: SyncAdmin
    slack: SlackAdapter
    # Other adapters (Matrix, federation, Socket Mode) attach themselves here by name.
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def routes(self) -> list[Any]:
        routes = list(self.slack.routes)
        for extra in self.extras.values():
            routes.extend(getattr(extra, "routes", []))
        return routes


def build_services(
    settings: Settings,
    *,
    engine: Engine,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    retry: RetryPolicy | None = None,
    slack_rate_scale: float = 1.0,
    slack_timeout: float = 10.0,
    worker_id: str | None = None,
    lease_seconds: float = 120.0,
) -> Services:
    store = SqlStore(sessions)
    relay = Relay(store)
    outbox = Outbox(store, {}, policy=retry, worker_id=worker_id, lease_seconds=lease_seconds)
    authors = AuthorDirectory()
    slack = build_slack(
        settings=settings,
        sessions=sessions,
        cipher=cipher,
        relay=relay,
        outbox=outbox,
        authors=authors,
        rate_scale=slack_rate_scale,
        api_timeout=slack_timeout,
    )
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        store=store,
        relay=relay,
        outbox=outbox,
        authors=authors,
        syncs=SyncAdmin(sessions),
        slack=slack,
    )
