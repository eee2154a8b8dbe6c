"""Workspace lifecycle on every backend with foreign keys enforced: uninstall soft-deletes and
suspends, a reinstall within retention restores, the maintenance purge removes what expired."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.assembly import build_runtime
from app.core.endpoints import Endpoint
from app.slack.lifecycle import SUSPENDED, UNINSTALLED, WorkspaceLifecycle
from app.slack.oauth_stores import SqlInstallationStore
from app.slack.workspaces import BOT_TOKEN_CONTEXT
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.models import DirectoryUser, Sync, SyncEndpoint, Workspace
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.slack.harness import AppServer, wait_for

RETENTION_DAYS = 30


class World:
    """Two installed workspaces in one sync, plus an endpoint an admin paused on purpose."""

    def __init__(self, engine: Engine) -> None:
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.cipher = TokenCipher(TEST_KEY)
        self.forgotten: list[str] = []
        self.lifecycle = WorkspaceLifecycle(
            self.sessions, retention_days=RETENTION_DAYS, forget=self.forgotten.append
        )
        self.store = SqlInstallationStore(self.sessions, self.cipher, self.lifecycle)
        self.syncs = SyncAdmin(self.sessions)
        for team in ("T1", "T2"):
            self.install(team)
        self.syncs.create("general")
        for endpoint in ("slack:T1/C1", "slack:T2/C2", "slack:T1/C9"):
            self.syncs.add("general", Endpoint.parse(endpoint))
        with self.sessions() as s, s.begin():
            s.execute(
                SyncEndpoint.__table__.update()
                .where(SyncEndpoint.endpoint == "slack:T1/C9")
                .values(status="paused")
            )
            s.add(DirectoryUser(workspace_id=self.row("T1", s).id, user_id="U1"))

    def install(self, team: str, token: str | None = None) -> None:
        self.store.save(
            Installation(
                app_id="A1",
                team_id=team,
                team_name=f"Team {team}",
                bot_token=token or f"xoxb-{team}-1",
                bot_id=f"B{team}",
                bot_user_id=f"U{team}BOT",
                bot_scopes="chat:write",
                user_id="UADMIN",
            )
        )

    def row(self, team: str, s: Session) -> Workspace:
        return s.execute(select(Workspace).where(Workspace.team_id == team)).scalar_one()

    def endpoint_states(self) -> dict[str, str]:
        with self.sessions() as s:
            return dict(s.execute(select(SyncEndpoint.endpoint, SyncEndpoint.status)).all())

    def count(self, model: type) -> int:
        with self.sessions() as s:
            return s.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def uninstall_event(team: str, kind: str = "app_uninstalled") -> dict[str, object]:
    event: dict[str, object] = {"type": kind}
    if kind == "tokens_revoked":
        event["tokens"] = {"oauth": [], "bot": [f"U{team}BOT"]}
    return {"type": "event_callback", "team_id": team, "event_id": "Ev1", "event": event}


@pytest.mark.parametrize("kind", ["app_uninstalled", "tokens_revoked"])
def test_uninstall_soft_deletes_wipes_tokens_and_suspends(world: World, kind: str) -> None:
    asyncio.run(world.lifecycle.on_event(uninstall_event("T1", kind)))
    with world.sessions() as s:
        row = world.row("T1", s)
        assert row.status == UNINSTALLED and row.deleted_at is not None
        assert row.bot_token_enc is None and row.bot_refresh_token_enc is None
        assert world.row("T2", s).status == "active"
    assert world.endpoint_states() == {
        "slack:T1/C1": SUSPENDED,
        "slack:T2/C2": "active",
        "slack:T1/C9": "paused",
    }
    assert world.forgotten == ["T1"]


def test_revoking_only_user_tokens_keeps_the_workspace(world: World) -> None:
    payload = uninstall_event("T1", "tokens_revoked")
    payload["event"] = {"type": "tokens_revoked", "tokens": {"oauth": ["U5"], "bot": []}}
    asyncio.run(world.lifecycle.on_event(payload))
    with world.sessions() as s:
        assert world.row("T1", s).status == "active"


def test_reinstall_within_retention_restores_everything(world: World) -> None:
    assert world.lifecycle.soft_delete("T1") is True
    assert world.lifecycle.soft_delete("T1") is False  # both events arrive; the second is a no-op
    world.install("T1", token="xoxb-T1-2")
    with world.sessions() as s:
        row = world.row("T1", s)
        assert row.status == "active" and row.deleted_at is None
        assert world.cipher.decrypt(row.bot_token_enc or "", context=BOT_TOKEN_CONTEXT) == (
            "xoxb-T1-2"
        )
    # Suspended endpoints resume; the one an admin paused stays paused.
    assert world.endpoint_states() == {
        "slack:T1/C1": "active",
        "slack:T2/C2": "active",
        "slack:T1/C9": "paused",
    }
    assert world.count(DirectoryUser) == 1


def test_purge_after_retention_cascades_and_leaves_the_sync(world: World) -> None:
    now = datetime.now(UTC)
    world.lifecycle.soft_delete("T1", now=now)
    assert world.lifecycle.purge(now=now + timedelta(days=RETENTION_DAYS - 1)) == 0
    assert world.lifecycle.purge(now=now + timedelta(days=RETENTION_DAYS, seconds=1)) == 1
    with world.sessions() as s:
        teams = s.execute(select(Workspace.team_id)).scalars().all()
    assert teams == ["T2"]
    assert world.endpoint_states() == {"slack:T2/C2": "active"}
    assert world.count(DirectoryUser) == 0
    assert world.count(Sync) == 1


def test_reinstall_after_retention_starts_fresh(world: World) -> None:
    with world.sessions() as s, s.begin():
        # Uninstalled long ago, and the purge has not run yet.
        world.lifecycle.soft_delete("T1")
        world.row("T1", s).deleted_at = datetime.now(UTC) - timedelta(days=RETENTION_DAYS + 1)
    world.install("T1")
    with world.sessions() as s:
        assert world.row("T1", s).status == "active"
    assert world.endpoint_states() == {"slack:T2/C2": "active"}
    assert world.count(DirectoryUser) == 0


# --- through the real event route and the runtime's maintenance --------------------------------


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[FakeSlack, AppServer]]:
    with FakeSlack() as slack:
        slack.add_workspace("T1", "Acme")
        slack.add_channel("T1", "C1", "general")
        settings = local_settings(
            slack_signing_secret=slack.signing_secret,
            slack_api_url=slack.base_url,
            soft_delete_retention_days=RETENTION_DAYS,
        )
        server = AppServer(settings, engine).start()
        slack.app_url = f"{server.url}/slack/events"
        try:
            yield slack, server
        finally:
            server.stop()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_uninstall_event_from_slack_soft_deletes_and_the_tick_purges(
    served: tuple[FakeSlack, AppServer], engine: Engine
) -> None:
    slack, app = served
    assert app.services is not None
    workspaces = app.services.slack.workspaces
    asyncio.run(workspaces.add(slack.bot_token("T1")))
    app.services.syncs.create("s")
    app.services.syncs.add("s", Endpoint.parse("slack:T1/C1"))

    slack.uninstall("T1")
    sessions = session_factory(engine)

    def status() -> str:
        with sessions() as s:
            query = select(Workspace.status).where(Workspace.team_id == "T1")
            return s.execute(query).scalar_one()

    wait_for(lambda: status() == UNINSTALLED)
    with sessions() as s:
        assert s.execute(select(SyncEndpoint.status)).scalar_one() == SUSPENDED

    # The runtime's maintenance tick purges once the retention has passed.
    runtime = build_runtime(app.settings, engine=engine)
    assert runtime.run_maintenance()["purge_uninstalled_workspaces"] == 0
    with sessions() as s, s.begin():
        s.execute(
            Workspace.__table__.update().values(
                deleted_at=datetime.now(UTC) - timedelta(days=RETENTION_DAYS + 1)
            )
        )
    assert runtime.run_maintenance()["purge_uninstalled_workspaces"] == 1
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Workspace)).scalar_one() == 0
