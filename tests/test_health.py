"""Health indicators: gathered from the database and the process, summarised for probes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from app.assembly import build_runtime
from app.health import format_report, gather, health_summary, percentile
from app.logs import ErrorCounter, install_error_counter
from app.runtime import Runtime
from app.slack.socket_state import ConnectionBoard, ConnectionState
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.models import Delivery, MatrixGhost
from app.store.models_matrix import MatrixPortal
from tests.builders import outbox_row
from tests.conftest import local_settings
from tests.databases import throwaway_database

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    with throwaway_database("sqlite", tmp_path) as url:
        engine = make_engine(local_settings(), url=url)
        upgrade(engine)
        yield engine
        engine.dispose()


def delivery(status: str, *, delay: float | None = None, at: datetime = NOW) -> Delivery:
    return outbox_row(status, delay=delay, at=at)


def seed(engine: Engine) -> None:
    with session_factory(engine)() as session, session.begin():
        # 100 deliveries taking 1..100 s, delivered one second apart (the newest is 100 s).
        for n in range(1, 101):
            session.add(delivery("delivered", delay=float(n), at=NOW + timedelta(seconds=n)))
        session.add_all([delivery("pending") for _ in range(3)])
        session.add_all([delivery("dead") for _ in range(2)])
        session.add(MatrixPortal(endpoint="slack:T1/C1", room_id="!a:hs", state="active"))
        session.add(MatrixPortal(endpoint="slack:T1/C9", room_id="!b:hs", state="archived"))
        for n in range(4):
            session.add(MatrixGhost(mxid=f"@slack_{n}:hs", remote_ref=f"slack:T1/U{n}"))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_indicators_from_the_database(engine: Engine) -> None:
    # Runs on every backend: the queries must be portable.
    seed(engine)
    report = gather(session_factory(engine))
    assert report.database_ok and report.status == "ok"
    assert report.outbox_depth == 3 and report.dead_deliveries == 2
    assert report.portal_count == 1 and report.ghost_user_count == 4
    assert report.last_successful_message == NOW + timedelta(seconds=100)
    assert report.latency.samples == 100
    assert report.latency.p50 == pytest.approx(50.0)
    assert report.latency.p95 == pytest.approx(95.0)


def test_latency_covers_only_the_most_recent_deliveries(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    report = gather(session_factory(sqlite_engine), window=10)
    # The 10 newest took 91..100 s.
    assert report.latency.samples == 10
    assert report.latency.p50 == pytest.approx(95.0)
    assert report.latency.p95 == pytest.approx(100.0)


def test_connection_states_stored_and_live(sqlite_engine: Engine) -> None:
    sessions = session_factory(sqlite_engine)
    stored = ConnectionBoard(sessions)
    stored.set_state("T1", ConnectionState.CONNECTED)
    stored.set_state("T2", ConnectionState.FAILED, detail="invalid_auth", error=True)
    # Another process (syncbot status) sees what the serving process recorded.
    report = gather(sessions)
    assert {t: c.state for t, c in report.connections.items()} == {
        "T1": ConnectionState.CONNECTED,
        "T2": ConnectionState.FAILED,
    }
    assert report.status == "degraded" and report.failed_connections == ["T2"]
    body = report.to_dict()
    assert body["connections"]["T2"]["detail"] == "invalid_auth"
    assert body["connections"]["T2"]["errors"] == 1
    # This process's live board wins over a stored state that may lag.
    live = ConnectionBoard()
    live.set_state("T2", ConnectionState.REQUESTING_URL)
    assert gather(sessions, board=live).status == "ok"


def test_error_counter_counts_errors_of_syncbot_loggers_only() -> None:
    logger = logging.getLogger("syncbot.test_health")
    counter = ErrorCounter()
    logging.getLogger("syncbot").addHandler(counter)
    try:
        logger.warning("not an error")
        logger.error("one")
        logger.critical("two")
        logging.getLogger("elsewhere").error("not ours")
        assert counter.count == 2
    finally:
        logging.getLogger("syncbot").removeHandler(counter)
    assert install_error_counter() is install_error_counter()


def runtime_for(engine: Engine) -> Runtime:
    return build_runtime(local_settings(), engine=engine)


def test_summary_reports_a_failed_workspace_and_degrades(sqlite_engine: Engine) -> None:
    runtime = runtime_for(sqlite_engine)
    ConnectionBoard(runtime.sessions).set_state(
        "T9", ConnectionState.FAILED, detail="token_revoked", error=True
    )
    ok, details = health_summary(runtime)
    # Degraded, not down: a restart cannot fix a revoked token and other workspaces sync.
    assert ok
    assert details["status"] == "degraded"
    assert details["failed_connections"] == ["T9"]
    assert details["connections"]["T9"]["connection_status"] == "failed"


def test_summary_is_unhealthy_when_the_database_is_down() -> None:
    settings = local_settings(database_backend="postgresql")
    dead = make_url("postgresql+psycopg://syncbot:x@127.0.0.1:1/syncbot")
    runtime = build_runtime(settings, engine=make_engine(settings, url=dead))
    try:
        ok, details = health_summary(runtime)
    finally:
        runtime.close()
    assert not ok
    assert details["status"] == "error" and details["database"] == "unreachable"


def test_human_table_lists_every_indicator(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    sessions = session_factory(sqlite_engine)
    ConnectionBoard(sessions).set_state("T1", ConnectionState.CONNECTED)
    text = format_report(gather(sessions))
    for label in (
        "status",
        "last successful message",
        "message latency",
        "outbox depth",
        "dead deliveries",
        "portals",
        "ghost users",
        "WORKSPACE",
    ):
        assert label in text
    assert "p50 50.00s" in text and "p95 95.00s" in text
    assert any(line.split()[:2] == ["T1", "connected"] for line in text.splitlines())
