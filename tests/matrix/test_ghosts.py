"""Ghost profiles follow their authors; avatars are uploaded once per image."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy.engine import make_url

from app.core.endpoints import Endpoint
from app.core.events import Author
from app.matrix.ghosts import Ghosts
from app.matrix.ids import BridgeIds
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.models import MatrixGhost
from tests.conftest import local_settings


class RecordingIntent:
    def __init__(self, calls: Counter[str]) -> None:
        self.calls = calls

    async def ensure_registered(self) -> None:
        self.calls["register"] += 1

    async def set_displayname(self, name: str, check_current: bool = True) -> None:
        self.calls[f"name:{name}"] += 1

    async def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        self.calls["upload"] += 1
        return f"mxc://hs.example/{len(data)}-{self.calls['upload']}"

    async def set_avatar_url(self, mxc: str, check_current: bool = True) -> None:
        self.calls[f"avatar:{mxc}"] += 1


class FakeHomeserver:
    def __init__(self) -> None:
        self.ids = BridgeIds(server_name="hs.example")
        self.calls: Counter[str] = Counter()

    def intent(self, user_id: str) -> RecordingIntent:
        return RecordingIntent(self.calls)


async def fetch(url: str) -> tuple[bytes, str]:
    return url.encode(), "image/png"


async def test_profile_follows_and_avatar_uploads_once(tmp_path: Path) -> None:
    settings = local_settings()
    engine = make_engine(settings, url=make_url(f"sqlite:///{tmp_path}/db.sqlite"))
    upgrade(engine)
    sessions = session_factory(engine)
    hs = FakeHomeserver()
    ghosts = Ghosts(hs, sessions, fetch_avatar=fetch)  # type: ignore[arg-type]
    source = Endpoint.slack("T1", "C1")
    ada = Author("Ada", "T1/U1", "https://img/a1.png", "Acme")

    mxid = await ghosts.ensure(source, ada)
    await ghosts.ensure(source, ada)
    assert mxid == "@slack_t1_u1:hs.example"
    assert hs.calls["register"] == 1 and hs.calls["upload"] == 1
    assert hs.calls["name:Ada (Acme)"] == 1

    await ghosts.ensure(source, Author("Ada L.", "T1/U1", "https://img/a1.png", "Acme"))
    assert hs.calls["name:Ada L. (Acme)"] == 1 and hs.calls["upload"] == 1
    await ghosts.ensure(source, Author("Ada L.", "T1/U1", "https://img/a2.png", "Acme"))
    assert hs.calls["upload"] == 2 and hs.calls["register"] == 1
    with sessions() as s:
        row = s.get(MatrixGhost, mxid)
        assert row is not None and row.avatar_url == "https://img/a2.png"
        assert row.remote_ref == "slack:T1/U1" and row.registered
    engine.dispose()
