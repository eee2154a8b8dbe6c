"""The ASGI app: health with the database up, down and behind; request ids; JSON errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from app.assembly import build_runtime
from app.runtime import Runtime
from app.settings import Settings
from app.store.engine import make_engine
from app.store.migrate import downgrade
from app.web import REQUEST_ID_HEADER, create_app
from tests.conftest import local_settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def runtime(engine: Engine, settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, engine=engine)
    yield rt


def test_health_ok_on_every_backend(runtime: Runtime) -> None:
    with TestClient(create_app(runtime)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body | {"status": "ok", "database": "ok", "schema": "head"} == body
    # The seed's indicators ride along for a probe to act on.
    assert body["outbox_depth"] == 0 and body["dead_deliveries"] == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_health_503_when_schema_not_at_head(runtime: Runtime) -> None:
    downgrade(runtime.engine, "base")
    with TestClient(create_app(runtime)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["schema"] == "missing"
    assert body["expected"]


@pytest.mark.parametrize("driver", ["postgresql+psycopg", "mysql+pymysql"])
def test_health_503_when_database_unreachable(driver: str) -> None:
    settings = local_settings(database_backend=driver.split("+")[0])
    url = f"{driver}://u:p@127.0.0.1:{closed_port()}/syncbot"
    engine = make_engine(settings, url=make_url(url))
    rt = build_runtime(settings, engine=engine)
    with TestClient(create_app(rt)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    # The password must not leak into the probe answer.
    assert "p@127" not in response.text


def test_health_503_when_sqlite_file_cannot_open(settings: Settings, tmp_path: Path) -> None:
    # A directory where the database file should be: SQLite cannot open it.
    target = tmp_path / "gone.db"
    target.mkdir()
    url = make_url(f"sqlite:///{target}")
    rt = build_runtime(settings, engine=make_engine(settings, url=url))
    with TestClient(create_app(rt)) as client:
        assert client.get("/health").status_code == 503


@pytest.mark.parametrize("backend", ["sqlite"])
def test_request_id_generated_and_echoed(runtime: Runtime) -> None:
    with TestClient(create_app(runtime)) as client:
        fresh = client.get("/health")
        echoed = client.get("/health", headers={REQUEST_ID_HEADER: "abc-123-def"})
        hostile = client.get("/health", headers={REQUEST_ID_HEADER: "x\nInjected: 1 and long"})
    assert len(fresh.headers[REQUEST_ID_HEADER]) == 32
    assert echoed.headers[REQUEST_ID_HEADER] == "abc-123-def"
    assert hostile.headers[REQUEST_ID_HEADER] != "x\nInjected: 1 and long"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_json_404_405_and_500_without_traceback(runtime: Runtime) -> None:
    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("secret internals xoxb-1-2-3")

    app = create_app(runtime, routes=[Route("/boom", boom)])
    with TestClient(app, raise_server_exceptions=False) as client:
        missing = client.get("/nope")
        wrong = client.post("/health")
        crash = client.get("/boom")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method Not Allowed"
    assert crash.status_code == 500
    assert crash.json()["error"] == "internal server error"
    assert crash.json()["request_id"] == crash.headers[REQUEST_ID_HEADER]
    assert "Traceback" not in crash.text and "xoxb" not in crash.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_runtime_routes_and_workers_are_composed(runtime: Runtime) -> None:
    events: list[str] = []

    class Worker:
        def __init__(self, name: str) -> None:
            self.name = name

        async def start(self) -> None:
            events.append(f"start {self.name}")

        async def stop(self) -> None:
            events.append(f"stop {self.name}")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    runtime.add_routes(Route("/adapter", hello))
    runtime.add_worker(Worker("a"))
    runtime.add_worker(Worker("b"))
    with TestClient(create_app(runtime)) as client:
        assert client.get("/adapter").text == "hi"
        assert events == ["start a", "start b"]
    assert events == ["start a", "start b", "stop b", "stop a"]

    events.clear()
    with TestClient(create_app(runtime, lifespan=False)) as client:
        assert client.get("/adapter").status_code == 200
    assert events == []
