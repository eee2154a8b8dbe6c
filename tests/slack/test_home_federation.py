"""The federation section of the App Home, on every backend, against a real peer on loopback.

The peer is another instance's federation service (its own SQLite database and key) serving its
routes with uvicorn; connecting from the home redeems that peer's pairing code over signed HTTP,
exactly as ``syncbot peer join`` does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from app.core.endpoints import Endpoint
from app.federation import admin as federation_admin
from app.federation.identity import Identity
from app.federation.service import Federation
from app.services import Services
from app.slack.home.section import Viewer
from app.slack.home.sections.federation import (
    CONNECT_VIEW,
    INVITE_VIEW,
    OPEN_CONNECT,
    OPEN_INVITE,
    REMOVE,
    FederationSection,
    connect_view,
    invite_view,
)
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.slack.harness import free_port, wait_for
from tests.slack.home_bolt import (
    ack_body,
    block_action,
    block_kit_problems,
    dispatch,
    home_services,
    on_shell,
    opened_views,
    sync,
    texts,
    three_teams,
    view_submission,
)

PEER_ROOM = "matrix:!peer:hs.test"


class Served:
    """Starlette routes served by uvicorn on 127.0.0.1:port, in a thread."""

    def __init__(self, routes: list[Any], port: int) -> None:
        config = uvicorn.Config(
            Starlette(routes=routes),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Peer:
    """Another instance's federation service, serving its routes on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        url = f"http://127.0.0.1:{self.port}"
        self.engine = make_engine(local_settings(), url=make_url(f"sqlite:///{tmp / 'peer.db'}"))
        upgrade(self.engine)
        sessions = session_factory(self.engine)
        admin = SyncAdmin(sessions)
        admin.create("shared")
        admin.add("shared", Endpoint.parse(PEER_ROOM))
        self.federation = Federation(
            sessions=sessions,
            identity=Identity(sessions, TokenCipher(TEST_KEY), "peer-instance"),
            ingest=None,  # type: ignore[arg-type]  # pairing relays nothing
            authors=None,  # type: ignore[arg-type]
            public_url=url,
            allow_private=True,
            enabled=True,
        )
        self.served = Served(self.federation.routes, self.port)

    def stop(self) -> None:
        self.served.stop()
        self.engine.dispose()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    running = Peer(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = three_teams()
    yield fake
    fake.stop()


def federated(slack: FakeSlack, engine: Engine, **settings: Any) -> Services:
    built = home_services(
        slack,
        engine,
        federation_enabled=True,
        federation_allow_private=True,
        public_url=f"http://127.0.0.1:{free_port()}",
        **settings,
    )
    sync(built, "general", Endpoint.slack("T1", "C1"), Endpoint.slack("T2", "C2"))
    sync(built, "apart", Endpoint.slack("T3", "C3"))
    return built


@pytest.fixture
def services(slack: FakeSlack, engine: Engine) -> Services:
    return federated(slack, engine)


def peer_endpoints(services: Services) -> set[str]:
    return {e for v in services.syncs.list() for e, _ in v.endpoints if e.startswith("peer:")}


def chosen(name: str) -> dict[str, Any]:
    return {"sync": {"sync": {"selected_option": {"value": name}}}}


async def test_connect_lists_and_remove_a_peer_through_the_service(
    services: Services, slack: FakeSlack, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    connect = federation_admin.connect

    async def recording_connect(federation: Federation, code: str, sync_name: str) -> str:
        calls.append(sync_name)
        return await connect(federation, code, sync_name)

    monkeypatch.setattr("app.slack.home.sections.federation.connect", recording_connect)
    section = FederationSection(services)
    app, home = on_shell(services, section)
    admin = Viewer("T2", "UADMINT2", is_admin=True)
    federation = federation_admin.federation_of(services)

    shown = texts(await section.blocks(admin))
    assert federation.identity.instance_id in shown
    assert str(services.settings.public_url) in shown
    assert "No peer takes part in your syncs" in shown

    await dispatch(app, block_action("T2", "UADMINT2", OPEN_CONNECT))
    modal = opened_views(slack, "T2")[-1]
    assert modal["callback_id"] == CONNECT_VIEW and block_kit_problems(modal) == []
    # Only the syncs of this workspace are offered.
    options = modal["blocks"][1]["element"]["options"]
    assert [o["value"] for o in options] == ["general"]

    code = peer.federation.invite("shared")
    values = {"code": {"code": {"value": f"  {code[:20]}\n{code[20:]}  "}}, **chosen("general")}
    submit = view_submission("T2", "UADMINT2", {"id": "VCONNECT", **modal}, values)
    answer = ack_body(await dispatch(app, submit))
    assert answer["response_action"] == "update"
    assert answer["view"]["title"]["text"] == "Connected"
    assert calls == ["general"]
    assert peer_endpoints(services) == {f"peer:peer-instance/{PEER_ROOM}"}
    assert [v.user_id for v in home.refreshed] == ["UADMINT2"] and home.touched == ["T1"]
    # The other side knows us too.
    assert [p.instance_id for p in peer.federation.peers()] == [federation.identity.instance_id]

    listed = await section.blocks(admin)
    assert block_kit_problems(listed) == []
    shown = texts(listed)
    assert "*peer-instance* · active" in shown and "syncs: general" in shown
    # Gamma's admin shares no sync with the peer: it is not theirs to see.
    assert "peer-instance" not in texts(
        await section.blocks(Viewer("T3", "UADMINT3", is_admin=True))
    )

    remove = block_action("T3", "UADMINT3", REMOVE, value="peer-instance")
    await dispatch(app, remove)
    assert "serves syncs of other workspaces" in texts(opened_views(slack, "T3")[-1]["blocks"])
    await dispatch(app, block_action("T2", "UB", REMOVE, value="peer-instance"))
    assert federation.peers() != []

    await dispatch(app, block_action("T1", "UADMINT1", REMOVE, value="peer-instance"))
    assert federation.peers() == [] and peer_endpoints(services) == set()
    assert home.refreshed[-1].team_id == "T1" and home.touched[-1] == "T2"


async def test_invite_shows_a_code_the_peer_can_redeem(
    services: Services, slack: FakeSlack, peer: Peer
) -> None:
    app, _ = on_shell(services, FederationSection(services))
    ours = federation_admin.federation_of(services)
    port = int(str(ours.public_url).rsplit(":", 1)[1])
    served = await asyncio.to_thread(Served, ours.routes, port)  # the peer pairs back to us
    await dispatch(app, block_action("T2", "UADMINT2", OPEN_INVITE))
    modal = opened_views(slack, "T2")[-1]
    assert modal["callback_id"] == INVITE_VIEW and block_kit_problems(modal) == []
    answer = ack_body(
        await dispatch(app, view_submission("T2", "UADMINT2", modal, chosen("general")))
    )
    assert answer["response_action"] == "update"
    code = texts(answer["view"]["blocks"]).split("```")[1]
    try:
        joined = await peer.federation.join(code, "shared")
    finally:
        await asyncio.to_thread(served.stop)
    assert joined == ours.identity.instance_id
    assert peer_endpoints(services) == {f"peer:peer-instance/{PEER_ROOM}"}


async def test_refusals_and_bad_input(services: Services, slack: FakeSlack, peer: Peer) -> None:
    app, home = on_shell(services, FederationSection(services))
    view = {"id": "VCONNECT", **connect_view(["general"])}
    good_code = peer.federation.invite("shared")
    cases = [
        ("UB", good_code, "general", "Only admins"),
        ("UADMINT2", good_code, "apart", "Pick a sync this workspace"),
        ("UADMINT2", "   ", "general", "Paste the pairing code"),
    ]
    for user, code, sync_name, message in cases:
        values = {"code": {"code": {"value": code}}, **chosen(sync_name)}
        answer = ack_body(await dispatch(app, view_submission("T2", user, view, values)))
        assert answer["response_action"] == "errors"
        assert message in " ".join(answer["errors"].values())
    # A malformed code is answered after the ack, in the modal.
    values = {"code": {"code": {"value": "not-a-code"}}, **chosen("general")}
    outcome = ack_body(await dispatch(app, view_submission("T2", "UADMINT2", view, values)))
    assert outcome["view"]["title"]["text"] == "Not connected"
    assert "pairing code" in texts(outcome["view"])
    invite = {"id": "VINVITE", **invite_view(["general"])}
    answer = ack_body(await dispatch(app, view_submission("T2", "UB", invite, chosen("general"))))
    assert answer["response_action"] == "errors"
    assert peer_endpoints(services) == set() and home.refreshed == []


@pytest.fixture
def operated(slack: FakeSlack, engine: Engine) -> Services:
    return federated(slack, engine, primary_workspace="T3")


async def test_primary_workspace_admins_manage_every_peer(operated: Services, peer: Peer) -> None:
    services = operated
    federation = federation_admin.federation_of(services)
    await federation_admin.connect(federation, peer.federation.invite("shared"), "general")
    section = FederationSection(services)
    app, home = on_shell(services, section)
    # Gamma takes no part in the peer's sync, but its admins run the instance.
    operator = texts(await section.blocks(Viewer("T3", "UADMINT3", is_admin=True)))
    assert "*peer-instance* · active" in operator and "Remove" in operator
    await dispatch(app, block_action("T3", "UADMINT3", REMOVE, value="peer-instance"))
    assert federation.peers() == []
    assert sorted(home.touched) == ["T1", "T2"]


def test_hidden_unless_federation_is_enabled(slack: FakeSlack, engine: Engine) -> None:
    admin = Viewer("T2", "UADMINT2", is_admin=True)
    assert not FederationSection(home_services(slack, engine)).visible(admin)
    section = FederationSection(federated(slack, engine))
    assert section.visible(admin)
    assert not section.visible(Viewer("T2", "UB", is_admin=False))
