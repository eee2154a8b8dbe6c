"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from app.settings import Settings
from app.store.engine import make_engine
from tests.databases import BACKENDS, MigratedTemplates, throwaway_database

TEST_KEY = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[URL]:
    with throwaway_database(backend, tmp_path) as url:
        yield url


def local_settings(**overrides: object) -> Settings:
    base: dict[str, object] = dict(
        local_development=True,
        database_backend="sqlite",
        token_encryption_key=TEST_KEY,
        slack_signing_secret="test-signing-secret-0123456789",
    )
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> Settings:
    return local_settings()


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    store = MigratedTemplates(tmp_path_factory.mktemp("templates"))
    yield store
    store.close()


@pytest.fixture
def engine(
    backend: str, tmp_path: Path, settings: Settings, templates: MigratedTemplates
) -> Iterator[Engine]:
    """A database at head on ``backend``, cloned from a template migrated once per session."""
    with templates.clone(backend, tmp_path) as url:
        eng = make_engine(settings, url=url)
        yield eng
        eng.dispose()
