"""The core against its ports: a world of three synced channels on the in-memory store.

The core needs only the ports of ``app/core/ports.py``; ``app/store/memory.py`` implements them
in memory, and ``tests/store/test_store_contract.py`` holds it to the SQL store's contract on
every backend, so core tests need no database. ``sql_world`` is the same world on the SQL store,
on every backend, for the few tests that also exercise SQL-only store modules.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from sqlalchemy import Engine

from app.core.endpoints import Endpoint, Network
from app.core.outbox import Outbox, RetryPolicy
from app.core.relay import Relay
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.memory import MemoryStore
from app.store.relay_store import SqlStore
from tests import builders
from tests.builders import Scripted
from tests.conftest import TEST_KEY

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")
POLICY = RetryPolicy(max_attempts=3, base_delay=0.0, jitter=0.0)


class World(NamedTuple):
    store: MemoryStore
    relay: Relay
    outbox: Outbox
    deliverer: Scripted


@pytest.fixture
def world() -> World:
    store = MemoryStore()
    store.add_sync("general", A, B, C)
    deliverer = Scripted()
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY)
    return World(store, Relay(store), outbox, deliverer)


@pytest.fixture
def sql_world(engine: Engine):  # type: ignore[no-untyped-def]
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)
    store = SqlStore(sessions)
    deliverer = Scripted()
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY)
    return sessions, Relay(store), outbox, deliverer
