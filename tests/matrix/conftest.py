"""One Synapse per test session; per test a fresh database, fake Slack, app and Matrix user."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.core.endpoints import Endpoint
from app.matrix.registration import registration_yaml
from app.settings import Settings
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import SERVER, MatrixUser, Synapse
from tests.slack.harness import subscribe_as_manifest, wait_for

_names = itertools.count(1)
# Room version 12 ids have no server part ("!opaque"), which Endpoint does not parse yet.
ROOM_VERSION = "11"


def direct_chat(user: MatrixUser, bot: str) -> str:
    """A direct chat ``user`` opens with ``bot`` (as Element does), once the bot has joined."""
    dm = user.call(
        "POST",
        "/createRoom",
        json={
            "preset": "trusted_private_chat",
            "is_direct": True,
            "room_version": ROOM_VERSION,
            "invite": [bot],
        },
    )["room_id"]
    wait_for(lambda: bot in user.call("GET", f"/rooms/{dm}/joined_members")["joined"])
    return dm


def bridge_settings(synapse: Synapse, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        matrix_homeserver_url=synapse.url,
        matrix_server_name=SERVER,
        matrix_as_token=synapse.as_token,
        matrix_hs_token=synapse.hs_token,
        matrix_permissions={"*": "relay", SERVER: "admin"},
        public_url=f"http://127.0.0.1:{synapse.as_port}",
    )
    values.update(overrides)
    return local_settings(**values)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    hs = Synapse(tmp_path_factory.mktemp("synapse"))
    settings = bridge_settings(hs)
    hs.write_config(registration_yaml(settings, url=f"http://127.0.0.1:{hs.as_port}"))
    hs.start()
    yield hs
    hs.stop()


@dataclass
class World:
    synapse: Synapse
    slack: FakeSlack
    app: BridgeApp
    alice: MatrixUser
    room: str
    syncs: SyncAdmin

    def bot_joined(self) -> bool:
        members = self.alice.call("GET", f"/rooms/{self.room}/joined_members")["joined"]
        return self.app.matrix is not None and self.app.matrix.ids.bot in members


def two_workspaces(slack: FakeSlack) -> None:
    subscribe_as_manifest(slack)
    for team, name, channel, user, person in (
        ("T1", "Acme", "C1", "U1", "Ada"),
        ("T2", "Beta", "C2", "U2", "Bob"),
    ):
        slack.add_workspace(team, name)
        email = f"{person.lower()}@example.com"
        slack.add_user(
            team, user, person.lower(), real_name=person, display_name=person, email=email
        )
        slack.add_channel(team, channel, "general", members=[user])


@pytest.fixture
def world(synapse: Synapse, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    if synapse.proc is None:
        synapse.start()  # a previous test stopped it and failed before restarting
    slack = FakeSlack().start()
    two_workspaces(slack)
    marker = request.node.get_closest_marker("bridge_settings")
    settings = bridge_settings(
        synapse,
        slack_signing_secret=slack.signing_secret,
        slack_api_url=slack.base_url,
        **(marker.kwargs if marker else {}),
    )
    engine = make_engine(settings, url=make_url(f"sqlite:///{tmp_path}/syncbot.db"))
    upgrade(engine)
    sessions = session_factory(engine)
    workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
    for team in ("T1", "T2"):
        asyncio.run(workspaces.add(slack.bot_token(team)))
    syncs = SyncAdmin(sessions)
    syncs.create("general")
    syncs.add("general", Endpoint.slack("T1", "C1"))
    syncs.add("general", Endpoint.slack("T2", "C2"))
    app = BridgeApp(settings, engine, port=synapse.as_port).start()
    slack.app_url = f"{app.url}/slack/events"
    alice = synapse.register_user(f"alice{next(_names)}x{tmp_path.name[-6:].lower()}")
    spec = {"preset": "private_chat", "name": "bridge", "room_version": ROOM_VERSION}
    room = alice.call("POST", "/createRoom", json=spec)["room_id"]
    alice.call("POST", f"/rooms/{room}/invite", json={"user_id": app.matrix.ids.bot})
    w = World(synapse, slack, app, alice, room, syncs)
    try:
        wait_for(w.bot_joined, timeout=10)
        syncs.add("general", Endpoint.matrix(room))
        yield w
    finally:
        alice.close()
        app.stop()
        slack.stop()
        engine.dispose()
