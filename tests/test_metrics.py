"""``GET /metrics``: the health indicators in Prometheus text, as Prometheus parses them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from app.metrics import METRICS_PATH, attach_metrics, metrics_route
from app.runtime import Runtime, build_runtime
from app.slack.socket_state import ConnectionBoard, ConnectionState
from app.store.engine import make_engine
from app.store.migrate import upgrade
from tests.builders import outbox_row
from tests.conftest import local_settings
from tests.databases import throwaway_database


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with throwaway_database("sqlite", tmp_path) as url:
        engine: Engine = make_engine(local_settings(), url=url)
        upgrade(engine)
        runtime = build_runtime(local_settings(), engine=engine)
        yield runtime
        runtime.close()


async def scrape(runtime: Runtime) -> tuple[httpx.Response, dict[str, list]]:
    app = Starlette(routes=[metrics_route(runtime)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as client:
        response = await client.get(METRICS_PATH)
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return response, samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    matches = [
        s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


async def test_metrics_parse_and_carry_every_indicator(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    with runtime.sessions() as session, session.begin():
        for n in range(1, 21):
            session.add(outbox_row("delivered", delay=n, at=now))
        session.add(outbox_row("pending"))
        session.add(outbox_row("dead"))
    board = ConnectionBoard(runtime.sessions)
    board.set_state("T1", ConnectionState.CONNECTED)
    board.set_state("T2", ConnectionState.FAILED, detail="invalid_auth", error=True)
    await board.flush()  # stored in the background inside a running loop

    response, samples = await scrape(runtime)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert value(samples, "syncbot_database_up") == 1
    assert value(samples, "syncbot_slack_connection_state", team_id="T1", state="connected") == 1
    assert value(samples, "syncbot_slack_connection_state", team_id="T1", state="failed") == 0
    assert value(samples, "syncbot_slack_connection_state", team_id="T2", state="failed") == 1
    assert value(samples, "syncbot_slack_connection_errors_total", team_id="T2") == 1
    assert value(samples, "syncbot_outbox_depth") == 1
    assert value(samples, "syncbot_outbox_dead") == 1
    assert value(samples, "syncbot_message_latency_seconds_count") == 20
    assert value(samples, "syncbot_message_latency_seconds", quantile="0.5") == pytest.approx(10)
    assert value(samples, "syncbot_message_latency_seconds", quantile="0.95") == pytest.approx(19)
    assert value(samples, "syncbot_last_successful_message_timestamp_seconds") == pytest.approx(
        now.timestamp(), abs=1e-3
    )
    assert value(samples, "syncbot_portals") == 0
    assert value(samples, "syncbot_ghost_users") == 0
    assert "syncbot_errors_total" in samples


async def test_metrics_still_answer_when_the_database_is_down() -> None:
    settings = local_settings(database_backend="postgresql")
    dead = make_url("postgresql+psycopg://syncbot:x@127.0.0.1:1/syncbot")
    runtime = build_runtime(settings, engine=make_engine(settings, url=dead))
    try:
        response, samples = await scrape(runtime)
    finally:
        runtime.close()
    # The scrape itself succeeds: an alert on syncbot_database_up is how the outage shows.
    assert response.status_code == 200
    assert value(samples, "syncbot_database_up") == 0


def test_attach_metrics_adds_the_route(runtime: Runtime) -> None:
    route = attach_metrics(runtime)
    assert route in runtime.routes and route.path == METRICS_PATH
