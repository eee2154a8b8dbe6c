"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
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


# The prefixes of syncbot's own settings (app/settings.py): a child process gets none of the
# developer's, only the test's.
OUR_SETTINGS = ("DATABASE_", "SLACK_", "SYNCBOT_")


def syncbot_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment for a syncbot child process: this one's without syncbot's settings,
    plus ``settings``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(OUR_SETTINGS)}
    return inherited | dict(settings)


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
