"""Curating syncs: create, add and remove endpoints, list. Used by the CLI and admin surfaces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, Network
from app.errors import SyncbotError
from app.store.models import Delivery, Sync, SyncEndpoint, Workspace
from app.store.rows import affected


class SyncAdminError(SyncbotError):
    """A sync operation that cannot be done as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class SyncView:
    name: str
    status: str
    endpoints: tuple[tuple[str, str], ...]  # (endpoint, status)
    pending: int
    dead: int


MAX_SYNC_NAME = 80


def check_sync_name(name: str) -> str:
    """The stripped name, if it can be a sync's name.

    Names are printed in `sync list`, the App Home and bot replies: printable characters only
    (no line breaks or terminal escapes that could forge other lines), at most 80 of them.

    Raises:
        SyncAdminError: saying what a name may be.
    """
    name = name.strip()
    if not name or len(name) > MAX_SYNC_NAME or not name.isprintable():
        raise SyncAdminError(
            f"a sync name is 1-{MAX_SYNC_NAME} printable characters (no line breaks or escapes)"
        )
    return name


class SyncAdmin:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, name: str, *, allow_broadcast: bool = False) -> None:
        name = check_sync_name(name)
        try:
            with self._sessions() as s, s.begin():
                s.add(
                    Sync(name=name, allow_broadcast=allow_broadcast, created_at=datetime.now(UTC))
                )
        except IntegrityError:
            raise SyncAdminError(f"a sync named {name!r} already exists") from None

    def _sync(self, s: Session, name: str) -> Sync:
        sync = s.execute(select(Sync).where(Sync.name == name)).scalar_one_or_none()
        if sync is None:
            raise SyncAdminError(f"no sync named {name!r} (see `syncbot sync list`)")
        return sync

    def exists(self, name: str) -> bool:
        """Whether a sync named ``name`` exists."""
        with self._sessions() as s:
            return s.execute(select(Sync.id).where(Sync.name == name)).first() is not None

    @staticmethod
    def _sync_of(s: Session, endpoint: Endpoint) -> str | None:
        return s.execute(
            select(Sync.name)
            .join(SyncEndpoint, SyncEndpoint.sync_id == Sync.id)
            .where(SyncEndpoint.endpoint == str(endpoint))
        ).scalar_one_or_none()

    def sync_of(self, endpoint: Endpoint) -> str | None:
        """The name of the sync ``endpoint`` belongs to (an endpoint is in one at most)."""
        with self._sessions() as s:
            return self._sync_of(s, endpoint)

    def add(self, name: str, endpoint: Endpoint) -> None:
        with self._sessions() as s, s.begin():
            sync = self._sync(s, name)
            existing = self._sync_of(s, endpoint)
            if existing is not None:
                raise SyncAdminError(
                    f"{endpoint} is already in sync {existing!r}; a channel belongs to one sync"
                )
            workspace_id = None
            if endpoint.network is Network.SLACK:
                workspace_id = s.execute(
                    select(Workspace.id).where(
                        Workspace.team_id == endpoint.slack_team, Workspace.status == "active"
                    )
                ).scalar_one_or_none()
                if workspace_id is None:
                    raise SyncAdminError(
                        f"workspace {endpoint.slack_team} is not installed "
                        "(`syncbot workspace add --bot-token ...` or the OAuth install)"
                    )
            s.add(
                SyncEndpoint(
                    sync_id=sync.id,
                    endpoint=str(endpoint),
                    network=str(endpoint.network),
                    workspace_id=workspace_id,
                    status="active",
                    created_at=datetime.now(UTC),
                )
            )

    def remove(self, name: str, endpoint: Endpoint) -> None:
        with self._sessions() as s, s.begin():
            sync = self._sync(s, name)
            result = s.execute(
                delete(SyncEndpoint).where(
                    SyncEndpoint.sync_id == sync.id, SyncEndpoint.endpoint == str(endpoint)
                )
            )
            if affected(result) == 0:
                raise SyncAdminError(f"{endpoint} is not in sync {name!r}")

    def set_status(self, name: str, status: str) -> None:
        with self._sessions() as s, s.begin():
            self._sync(s, name).status = status

    def list(self) -> list[SyncView]:
        with self._sessions() as s:
            syncs = s.execute(select(Sync).order_by(Sync.name)).scalars().all()
            endpoints = s.execute(
                select(SyncEndpoint.sync_id, SyncEndpoint.endpoint, SyncEndpoint.status).order_by(
                    SyncEndpoint.id
                )
            ).all()
            counts = s.execute(
                select(Delivery.sync_id, Delivery.status, func.count())
                .where(Delivery.status.in_(("pending", "dead")))
                .group_by(Delivery.sync_id, Delivery.status)
            ).all()
        by_sync: dict[int, list[tuple[str, str]]] = {}
        for sync_id, endpoint, status in endpoints:
            by_sync.setdefault(sync_id, []).append((endpoint, status))
        tally = {(sid, st): n for sid, st, n in counts}
        return [
            SyncView(
                name=sync.name,
                status=sync.status,
                endpoints=tuple(by_sync.get(sync.id, [])),
                pending=tally.get((sync.id, "pending"), 0),
                dead=tally.get((sync.id, "dead"), 0),
            )
            for sync in syncs
        ]
