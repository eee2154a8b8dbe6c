"""Expected echoes: one record drops one echo, an expired or dropped one none."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.store.echoes import ExpectedEchoes
from app.store.engine import session_factory
from app.store.models import ProcessedEvent


def test_one_record_is_consumed_once(engine) -> None:
    echoes = ExpectedEchoes(session_factory(engine))
    echoes.expect("reaction:+:T1:D1:1.0:U1:+1")
    echoes.expect("reaction:+:T1:D1:1.0:U1:+1")  # renewed, still one
    assert echoes.consume("reaction:+:T1:D1:1.0:U1:+1") is True
    assert echoes.consume("reaction:+:T1:D1:1.0:U1:+1") is False
    assert echoes.consume("reaction:-:T1:D1:1.0:U1:+1") is False


def test_dropped_or_expired_records_catch_nothing(engine) -> None:
    sessions = session_factory(engine)
    echoes = ExpectedEchoes(sessions)
    echoes.expect("file:T1:F1")
    echoes.drop("file:T1:F1")
    assert echoes.consume("file:T1:F1") is False
    stale = ExpectedEchoes(sessions, ttl=timedelta(seconds=-1))
    stale.expect("file:T1:F2")
    assert echoes.consume("file:T1:F2") is False
    # Kept among the dedupe claims, so the runtime's purge of expired claims removes it.
    with sessions() as s:
        assert s.scalars(select(ProcessedEvent.key)).all() == ["echo:file:T1:F2"]
