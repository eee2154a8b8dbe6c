"""Builders for test data, so tests say what matters and nothing else."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.core import richtext
from app.core.endpoints import Endpoint, Network
from app.core.events import Author, DeletePost, EditPost, Kind, NewPost, ReactionChange
from app.core.ports import Delivered, DeliveryTask, PendingDelivery
from app.errors import RemoteError
from app.slack import mrkdwn
from app.store.cipher import TokenCipher
from app.store.models import Delivery, Workspace
from app.store.syncs import SyncAdmin

_seq = itertools.count(1)


def body(text: str) -> richtext.Node:
    return mrkdwn.parse(text)


def key() -> str:
    return f"test:{next(_seq)}"


def post(source: Endpoint, native_id: str, text: str = "hello", **kw: Any) -> NewPost:
    return NewPost(
        source=source,
        native_id=native_id,
        dedupe_key=kw.pop("dedupe_key", key()),
        author=kw.pop("author", Author("Ada", "T1/U1", None, "Acme")),
        body=body(text),
        **kw,
    )


def edit(source: Endpoint, native_id: str, text: str) -> EditPost:
    return EditPost(source=source, native_id=native_id, dedupe_key=key(), body=body(text))


def delete(source: Endpoint, native_id: str) -> DeletePost:
    return DeletePost(source=source, native_id=native_id, dedupe_key=key())


def react(source: Endpoint, native_id: str, emoji: str, user: str, added: bool = True):
    return ReactionChange(
        source=source,
        native_id=native_id,
        dedupe_key=key(),
        emoji=emoji,
        actor=f"{source}|{user}",
        added=added,
    )


def workspace(
    sessions: sessionmaker[Session], cipher: TokenCipher, team_id: str, token: str = ""
) -> None:
    with sessions() as s, s.begin():
        s.add(
            Workspace(
                team_id=team_id,
                name=f"Team {team_id}",
                bot_token_enc=cipher.encrypt(
                    token or f"xoxb-{team_id}", context="workspace.bot_token"
                ),
                bot_user_id=f"UBOT{team_id}",
                bot_id=f"BBOT{team_id}",
                status="active",
            )
        )


def sync(sessions: sessionmaker[Session], name: str, *endpoints: Endpoint) -> None:
    admin = SyncAdmin(sessions)
    admin.create(name)
    for endpoint in endpoints:
        admin.add(name, endpoint)


# A post payload as the outbox stores it (the rows below are counted and claimed, never sent).
STORED_POST: dict[str, Any] = {
    "source": "slack:T1/C1",
    "source_native_id": "1.0",
    "author": {"name": "Ada"},
    "body": None,
}


def outbox_row(status: str, *, delay: float | None = None, at: datetime | None = None) -> Delivery:
    """An outbox row to slack:T2/C2; ``delay`` makes it a delivery that took that long."""
    at = at or datetime.now(UTC)
    row = Delivery(
        uid=uuid.uuid4().hex,
        target_endpoint="slack:T2/C2",
        kind="post",
        payload=STORED_POST,
        status=status,
        next_attempt_at=at,
        created_at=at,
    )
    if delay is not None:
        row.source_time = at - timedelta(seconds=delay)
        row.delivered_at = at
    return row


class Scripted:
    """A deliverer that records calls and fails as told."""

    network = Network.SLACK

    def __init__(self) -> None:
        self.calls: list[DeliveryTask] = []
        self.failures: dict[tuple[str, int], RemoteError] = {}
        self.counter = 0

    async def deliver(self, task: DeliveryTask) -> Delivered:
        self.calls.append(task)
        attempt = sum(1 for c in self.calls if c.uid == task.uid)
        failure = self.failures.get((str(task.target), attempt)) or self.failures.get(
            (task.uid, attempt)
        )
        if failure:
            raise failure
        self.counter += 1
        if task.kind is Kind.POST:
            thread = task.parent_copy.native_id if task.parent_copy else None
            return Delivered(
                native_id=f"{task.target.slack_channel}-{self.counter}", thread_native_id=thread
            )
        return Delivered()


class RecordingNotifier:
    """A dispatch notifier that records notices, or fails like a queue that is away."""

    name = "recorder"
    remote = True

    def __init__(self, *, broken: bool = False) -> None:
        self.notices: list[PendingDelivery] = []
        self.broken = broken

    async def notify(self, pending: Sequence[PendingDelivery]) -> None:
        if self.broken:
            raise ConnectionError("queue away")
        self.notices.extend(pending)
