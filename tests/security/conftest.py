from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import app.oidc
from tests.oidc_keys import jwks
from tests.security.hostile import Hostile, hostile_app


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hostile]:
    monkeypatch.setattr(app.oidc, "fetch_google_keys", jwks)
    # Without the workers: each finding's test stands on its own (the homeserver being down
    # at start is a finding of its own, tested with the lifespan on).
    with hostile_app(tmp_path, lifespan=False) as h:
        yield h
