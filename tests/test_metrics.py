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

from app.assembly import build_runtime
from app.metrics import METRICS_PATH, metrics_route
from app.runtime import Runtime
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
    # The window of recent deliveries is a gauge (quantiles); rates come from the histogram.
    recent = "syncbot_message_latency_recent_seconds"
    assert value(samples, recent, quantile="0.5") == pytest.approx(10)
    assert value(samples, recent, quantile="0.95") == pytest.approx(19)
    assert "syncbot_message_latency_recent_seconds_count" not in samples
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


def test_the_runtime_serves_the_metrics_route(runtime: Runtime) -> None:
    paths = [getattr(route, "path", None) for route in runtime.routes]
    assert paths.count(METRICS_PATH) == 1


def test_build_info_and_zeroed_delivery_series(runtime: Runtime) -> None:
    import asyncio

    _response, samples = asyncio.run(scrape(runtime))
    [info] = samples["syncbot_build_info"]
    assert info.value == 1 and info.labels["version"] and info.labels["python_version"]
    # Every (network, outcome) exists from the start, so increase() sees the first delivery.
    for network in ("slack", "matrix", "peer"):
        for outcome in ("delivered", "retried", "dead"):
            assert (
                value(samples, "syncbot_deliveries_total", network=network, outcome=outcome) == 0
            )
        assert value(samples, "syncbot_message_latency_seconds_count", network=network) == 0


@pytest.mark.parametrize(
    ("env", "authorization", "status"),
    [
        # Production without a token: not served at all.
        ({}, None, 404),
        ({}, "Bearer anything", 404),
        # With a token: only that bearer token reads it, in production and local development.
        ({"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789"}, None, 401),
        ({"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789"}, "Bearer wrong", 401),
        ({"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789"}, "Basic c2NyYXBl", 401),
        (
            {"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789"},
            "Bearer scrape-token-0123456789",
            200,
        ),
        (
            {"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789"},
            "bearer scrape-token-0123456789",
            200,
        ),
        (
            {"SYNCBOT_METRICS_TOKEN": "scrape-token-0123456789", "LOCAL_DEVELOPMENT": "true"},
            None,
            401,
        ),
        # Local development without a token: open.
        ({"LOCAL_DEVELOPMENT": "true"}, None, 200),
    ],
)
def test_metrics_token(
    tmp_path: Path, env: dict[str, str], authorization: str | None, status: int
) -> None:
    from app.settings import load_settings
    from app.web import create_app

    settings = load_settings(
        {
            "DATABASE_BACKEND": "sqlite",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
            "TOKEN_ENCRYPTION_KEY": "Zq8vR1tYx3Lw9Kp2Nb6Hc4Jd7Fg0Sm5Ae",
            **env,
        }
    )
    runtime = build_runtime(settings)
    try:
        upgrade(runtime.engine)
        app = create_app(runtime, lifespan=False)
        headers = {"Authorization": authorization} if authorization else {}

        async def get() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app"
            ) as client:
                return await client.get(METRICS_PATH, headers=headers)

        import asyncio

        response = asyncio.run(get())
    finally:
        runtime.close()
    assert response.status_code == status
    if status == 200:
        assert "syncbot_build_info" in response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        assert "syncbot_" not in response.text
