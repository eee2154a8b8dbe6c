"""The core against the real store on every backend: a world of three synced channels."""

from __future__ import annotations

import pytest

from app.core.endpoints import Endpoint, Network
from app.core.outbox import Outbox, RetryPolicy
from app.core.relay import Relay
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.relay_store import SqlStore
from tests import builders
from tests.builders import Scripted
from tests.conftest import TEST_KEY

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")


@pytest.fixture
def world(engine):
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)
    store = SqlStore(sessions)
    deliverer = Scripted()
    outbox = Outbox(
        store,
        {Network.SLACK: deliverer},
        policy=RetryPolicy(max_attempts=3, base_delay=0.0, jitter=0.0),
    )
    return sessions, Relay(store), outbox, deliverer
