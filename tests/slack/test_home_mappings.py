"""The people-mapping section of the App Home, on every backend, through Bolt and the fake Slack.

Beta (T2) shares a sync with Acme (T1). Ada of Acme is found in Beta by e-mail (Ada Lovelace);
Beta's admin overrides her to Bob, and the next message mentioning her mentions Bob.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from sqlalchemy import Engine, select

from app.core.endpoints import Endpoint
from app.core.events import Author
from app.services import Services
from app.slack.home.section import Viewer
from app.slack.home.sections.mappings import (
    OPEN_BROWSER,
    OVERRIDE_VIEW,
    PAGE,
    ROW_MENU,
    MappingsSection,
)
from app.store.models import DirectoryUser, UserMapping, Workspace
from fakeslack import FakeSlack
from tests import builders
from tests.slack.home_bolt import (
    RecordingHome,
    ack_body,
    block_action,
    block_kit_problems,
    bolt_app,
    dispatch,
    home_services,
    on_shell,
    opened_views,
    sync,
    texts,
    view_submission,
)

ADMIN = Viewer("T2", "UADMIN", is_admin=True)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_workspace("T1", "Acme")
    fake.add_workspace("T2", "Beta")
    fake.add_workspace("T3", "Gamma")
    fake.add_channel("T1", "C1", "general")
    fake.add_channel("T2", "C2", "general")
    fake.add_channel("T3", "C3", "elsewhere")
    fake.add_user("T1", "U1", "ada", real_name="Ada", email="ada@example.com")
    fake.add_user("T2", "UADMIN", "root", real_name="Root", is_admin=True)
    fake.add_user("T2", "UB", "bob", real_name="Bob")
    fake.add_user("T2", "UA", "ada.l", real_name="Ada Lovelace", email="ada@example.com")
    yield fake
    fake.stop()


@pytest.fixture
def services(slack: FakeSlack, engine: Engine) -> Services:
    built = home_services(slack, engine)
    sync(built, "general", Endpoint.slack("T1", "C1"), Endpoint.slack("T2", "C2"))
    sync(built, "apart", Endpoint.slack("T3", "C3"))
    return built


async def deliver(services: Services, text: str) -> None:
    """A message of Ada's in Acme's channel, delivered to Beta."""
    post = builders.post(
        Endpoint.slack("T1", "C1"),
        f"{datetime.now(UTC).timestamp():.6f}",
        text,
        author=Author("Ada", "T1/U1", None, "Acme"),
    )
    services.relay.ingest(post)
    await services.outbox.drain(budget=20.0)


def last_text(slack: FakeSlack) -> str:
    return slack.messages("T2", "C2")[-1].text


def mapping(services: Services) -> UserMapping | None:
    with services.sessions() as s:
        ids = dict(s.execute(select(Workspace.team_id, Workspace.id)).all())
        return s.execute(
            select(UserMapping).where(
                UserMapping.source_workspace_id == ids["T1"],
                UserMapping.source_user_id == "U1",
                UserMapping.target_workspace_id == ids["T2"],
            )
        ).scalar_one_or_none()


async def forged_override(app: AsyncApp, remote_team: str, remote_user: str) -> dict[str, Any]:
    """Beta's admin submits an override modal never shown to them, mapping ``remote_user`` of
    ``remote_team`` to Bob; the acknowledgement."""
    forged = {
        "type": "modal",
        "callback_id": OVERRIDE_VIEW,
        "private_metadata": json.dumps({"t": remote_team, "u": remote_user, "b": None}),
    }
    values = {"local": {"user": {"selected_user": "UB"}}}
    return ack_body(await dispatch(app, view_submission("T2", "UADMIN", forged, values)))


async def test_override_changes_the_mention_of_the_next_delivery(
    services: Services, slack: FakeSlack
) -> None:
    section = MappingsSection(services)
    app, home = on_shell(services, section)

    await deliver(services, "hello <@U1>")
    assert "<@UA>" in last_text(slack)  # matched by e-mail
    row = mapping(services)
    assert row is not None and row.method == "email" and row.expires_at is not None

    home_blocks = await section.blocks(ADMIN)
    assert block_kit_problems(home_blocks) == []
    shown = texts(home_blocks)
    assert "*Ada* (Acme) → <@UA>" in shown and "e-mail" in shown

    menu = block_action("T2", "UADMIN", ROW_MENU, value="override|T1|U1")
    assert (await dispatch(app, menu)).status == 200
    modal = opened_views(slack, "T2")[-1]
    assert modal["callback_id"] == OVERRIDE_VIEW and block_kit_problems(modal) == []

    submit = view_submission(
        "T2", "UADMIN", modal, {"local": {"user": {"type": "users_select", "selected_user": "UB"}}}
    )
    response = await dispatch(app, submit)
    assert response.status == 200 and ack_body(response) == {}
    row = mapping(services)
    assert row is not None and (row.method, row.target_user_id, row.expires_at) == (
        "manual",
        "UB",
        None,
    )
    assert [v.user_id for v in home.refreshed] == ["UADMIN"]

    await deliver(services, "again <@U1>")
    assert "<@UB>" in last_text(slack) and "<@UA>" not in last_text(slack)
    overridden = await section.blocks(ADMIN)
    assert "override" in texts(overridden) and block_kit_problems(overridden) == []

    # Clearing the override goes back to matching: the next mention is looked up afresh.
    clear = block_action("T2", "UADMIN", ROW_MENU, option="clear|T1|U1")
    assert (await dispatch(app, clear)).status == 200
    assert mapping(services) is None
    await deliver(services, "third <@U1>")
    assert "<@UA>" in last_text(slack)
    assert len(home.refreshed) == 2


async def test_an_override_to_nobody_stops_mapping_and_never_expires(
    services: Services, slack: FakeSlack
) -> None:
    app, _ = on_shell(services, MappingsSection(services))
    await deliver(services, "hello <@U1>")
    await dispatch(app, block_action("T2", "UADMIN", ROW_MENU, value="override|T1|U1"))
    modal = opened_views(slack, "T2")[-1]
    await dispatch(app, view_submission("T2", "UADMIN", modal, {"local": {"user": {}}}))
    row = mapping(services)
    assert row is not None and (row.method, row.target_user_id) == ("manual", None)
    # Matching would find her by e-mail again, but an override is never replaced.
    await services.slack.mentions.map_user("T1", "U1", "T2")
    await deliver(services, "hello again <@U1>")
    assert "<@" not in last_text(slack) and "@Ada" in last_text(slack)


async def test_non_admins_are_refused_whatever_the_payload(
    services: Services, slack: FakeSlack
) -> None:
    app, home = on_shell(services, MappingsSection(services))
    await deliver(services, "hello <@U1>")

    # Bob is no admin: the override modal is not opened, a refusal is shown instead.
    await dispatch(app, block_action("T2", "UB", ROW_MENU, value="override|T1|U1"))
    refusal = opened_views(slack, "T2")[-1]
    assert "Only admins" in texts(refusal["blocks"])
    # A submission forged from the admin's modal is refused too, and nothing changes.
    await dispatch(app, block_action("T2", "UADMIN", ROW_MENU, value="override|T1|U1"))
    modal = opened_views(slack, "T2")[-1]
    values = {"local": {"user": {"selected_user": "UB"}}}
    response = await dispatch(app, view_submission("T2", "UB", modal, values))
    assert ack_body(response)["response_action"] == "errors"
    row = mapping(services)
    assert row is not None and row.method == "email"
    await dispatch(app, block_action("T2", "UB", ROW_MENU, option="clear|T1|U1"))
    assert home.refreshed == []
    assert not MappingsSection(services).visible(Viewer("T2", "UB", is_admin=False))


async def test_admins_map_only_people_of_workspaces_sharing_a_sync(
    services: Services, slack: FakeSlack
) -> None:
    app, home = on_shell(services, MappingsSection(services))
    _directory(services, "T3", 1)
    before = len(opened_views(slack, "T2"))
    await dispatch(app, block_action("T2", "UADMIN", ROW_MENU, value="override|T3|U0000"))
    assert len(opened_views(slack, "T2")) == before
    # Forged metadata naming an unrelated workspace is refused at submission.
    assert (await forged_override(app, "T3", "U0000"))["response_action"] == "errors"
    with services.sessions() as s:
        assert s.execute(select(UserMapping)).first() is None
    assert home.refreshed == []


def _directory(services: Services, team: str, n: int) -> None:
    with services.sessions() as s, s.begin():
        ws = s.execute(select(Workspace.id).where(Workspace.team_id == team)).scalar_one()
        for i in range(n):
            s.add(
                DirectoryUser(
                    workspace_id=ws,
                    user_id=f"U{i:04d}",
                    real_name=f"Person {i:04d}",
                    normalized_name=f"person{i:04d}",
                    updated_at=datetime.now(UTC) - timedelta(minutes=1),
                )
            )


async def test_thousands_of_people_are_paged_and_searchable(
    services: Services, slack: FakeSlack
) -> None:
    _directory(services, "T1", 1200)
    section = MappingsSection(services)
    home_blocks = await section.blocks(ADMIN)
    assert len(home_blocks) < 20  # a few rows, a summary and the way to the rest
    assert "1200 not matched yet" in texts(home_blocks)
    assert "Search or see all (1200)" in texts(home_blocks)

    app, _ = on_shell(services, section)
    await dispatch(app, block_action("T2", "UADMIN", OPEN_BROWSER))
    browser = opened_views(slack, "T2")[-1]
    assert block_kit_problems(browser) == []
    assert "1-20 of 1200" in texts(browser["blocks"])
    assert "Person 0000" in texts(browser["blocks"])

    browser["id"] = "VBROWSER"
    await dispatch(app, block_action("T2", "UADMIN", f"{PAGE}.next", value="20", view=browser))
    update = slack.called("views.update", "T2")[-1]
    assert update["view_id"] == "VBROWSER"
    page2 = opened_views(slack, "T2", "views.update")[-1]
    assert "21-40 of 1200" in texts(page2["blocks"])
    assert "Person 0020" in texts(page2["blocks"]) and "Person 0000" not in texts(page2["blocks"])

    # An override from the browser is pushed on top of it, and the browser page is kept.
    page2["id"] = "VBROWSER"
    await dispatch(
        app, block_action("T2", "UADMIN", ROW_MENU, value="override|T1|U0021", view=page2)
    )
    pushed = opened_views(slack, "T2", "views.push")[-1]
    assert pushed["callback_id"] == OVERRIDE_VIEW and "Person 0021" in texts(pushed["blocks"])
    chosen = {"local": {"user": {"selected_user": "UB"}}}
    await dispatch(app, view_submission("T2", "UADMIN", pushed, chosen))
    assert slack.called("views.update", "T2")[-1]["view_id"] == "VBROWSER"
    refreshed = opened_views(slack, "T2", "views.update")[-1]
    assert "21-40 of 1200" in texts(refreshed["blocks"]) and block_kit_problems(refreshed) == []
    assert "*Person 0021* (Acme) → <@UB>" in texts(refreshed["blocks"])

    search = view_submission(
        "T2", "UADMIN", page2, {"search": {"query": {"value": "person 0777"}}}
    )
    found = ack_body(await dispatch(app, search))
    assert found["response_action"] == "update"
    assert "1-1 of 1" in texts(found["view"]["blocks"])
    assert "Person 0777" in texts(found["view"]["blocks"])
    assert len(json.dumps(found["view"]["blocks"])) < 50_000


async def test_handlers_change_nothing_without_the_shells_checked_viewer(
    services: Services, slack: FakeSlack
) -> None:
    # Dispatched past the shell's gate, even the admin's own clicks are refused.
    home = RecordingHome()
    app = bolt_app(slack)
    MappingsSection(services).register(app, home)
    await deliver(services, "hello <@U1>")
    await dispatch(app, block_action("T2", "UADMIN", ROW_MENU, value="override|T1|U1"))
    assert "Only admins" in texts(opened_views(slack, "T2")[-1]["blocks"])
    assert (await forged_override(app, "T1", "U1"))["response_action"] == "errors"
    row = mapping(services)
    assert row is not None and row.method == "email"
    assert home.refreshed == []
