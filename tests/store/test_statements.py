"""How many statements one Slack message costs, from the event to every copy recorded.

Counted on the engine: every statement the driver executes, plus every transaction begun on a
connection that is not in autocommit mode (PostgreSQL and MySQL begin implicitly, and SQLite's
``BEGIN IMMEDIATE`` goes to the driver directly, so SQLAlchemy's ``begin`` event stands for the
``BEGIN``).
The budget is N + 4 for one message to N targets, through the Slack events route as it runs in
``syncbot serve``: relay, then inline delivery of the rows it leased.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from app.core.dispatch import Dispatcher
from app.core.endpoints import Endpoint, Network
from app.core.events import Kind
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.core.ports import Delivered, DeliveryTask
from app.core.relay import Relay
from app.slack.events_route import SlackEvents
from app.slack.inbound import EventTranslator
from app.slack.workspaces import WorkspaceInfo
from app.store.cipher import TokenCipher
from app.store.engine import SQLITE_AUTOCOMMIT, session_factory
from app.store.models import Delivery, MessageCopy
from app.store.relay_store import SqlStore
from tests import builders
from tests.builders import RecordingNotifier
from tests.conftest import TEST_KEY


class Together:
    """A Slack deliverer whose calls all answer at once, when the last of ``n`` has started
    (as N calls of equal latency do), so the inline drain's completions meet in one batch."""

    network = Network.SLACK

    def __init__(self, n: int) -> None:
        self.n = n
        self.started: list[DeliveryTask] = []
        self._all = asyncio.Event()

    async def deliver(self, task: DeliveryTask) -> Delivered:
        self.started.append(task)
        if len(self.started) >= self.n:
            self._all.set()
        await self._all.wait()
        assert task.kind is Kind.POST
        return Delivered(native_id=f"{task.target.slack_channel}.{len(self.started)}")


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    def on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") != "AUTOCOMMIT" and not options.get(SQLITE_AUTOCOMMIT):
            seen.append("BEGIN")

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "begin", on_begin)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "begin", on_begin)


def info(team: str) -> WorkspaceInfo:
    return WorkspaceInfo(
        id=1,
        team_id=team,
        name=f"Team {team}",
        domain=None,
        bot_user_id=f"UBOT{team}",
        bot_id=f"BBOT{team}",
        app_id="A0SYNCBOT",
        status="active",
    )


@pytest.mark.parametrize("n", [3, 10])
async def test_one_message_to_n_targets_costs_at_most_n_plus_4_statements(
    engine: Engine, backend: str, n: int
) -> None:
    if backend == "mysql":
        pytest.skip("the budget is set for SQLite and PostgreSQL")
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    endpoints = [Endpoint.slack(f"T{i}", f"C{i}") for i in range(n + 1)]
    for endpoint in endpoints:
        builders.workspace(sessions, cipher, endpoint.slack_team)
    builders.sync(sessions, "general", *endpoints)
    store = SqlStore(sessions)
    deliverer = Together(n)
    outbox = Outbox(store, {Network.SLACK: deliverer})
    route = SlackEvents(
        signing_secret="unused",
        translator=EventTranslator(info),
        ingest=Ingest(Relay(store), Dispatcher(outbox, store, RecordingNotifier())),
    )
    envelope = {
        "type": "event_callback",
        "team_id": "T0",
        "event_id": "Ev1",
        "event": {
            "type": "message",
            "channel": "C0",
            "user": "U1",
            "text": "hello",
            "ts": "1700000000.000100",
        },
    }
    with counting(engine) as seen:
        response = await route.process(envelope, started=time.monotonic())
        await outbox.wait_idle(10.0)
    assert response.status_code == 200
    assert len(deliverer.started) == n
    with sessions() as s:
        statuses = s.execute(select(Delivery.status)).scalars().all()
        copies = s.execute(select(MessageCopy.endpoint)).scalars().all()
    assert statuses == ["delivered"] * n
    assert sorted(copies) == sorted(str(e) for e in endpoints)
    assert len(seen) <= n + 4, seen
