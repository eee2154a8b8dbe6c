"""The backup part of the App Home through Bolt and the fake Slack (issue 4).

Acme (T1) is the PRIMARY_WORKSPACE; Beta (T2) is another workspace. Only Acme's admins see the
part and can use it; a backup goes to the admin's DM as a file, and the same file restored through
the modal puts the database back; a modified file is refused; the reset needs ENABLE_DB_RESET.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from app.services import Services
from app.slack.home.access import REFUSED_OPERATOR
from app.slack.home.section import Viewer
from app.slack.home.sections.backup import (
    DOWNLOAD,
    FILE_ACTION,
    FILE_BLOCK,
    OPEN_RESTORE,
    RESET,
    RESTORE_VIEW,
    BackupSection,
    restore_view,
)
from app.store.backup import backup_mac_key, restore_backup
from app.store.models import Sync, Workspace
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.slack.home_bolt import (
    RecordingHome,
    ack_body,
    block_action,
    bolt_app,
    dispatch,
    home_services,
    opened_views,
    texts,
    view_submission,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

ADMIN = Viewer("T1", "UADMIN", is_admin=True)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.add_workspace("T1", "Acme")
    fake.add_workspace("T2", "Beta")
    fake.add_channel("T1", "C1", "general", members=["UADMIN", "UMEMBER"])
    fake.add_user("T1", "UADMIN", "root", real_name="Root", is_admin=True)
    fake.add_user("T1", "UMEMBER", "member", real_name="Member")
    fake.add_user("T2", "UADMIN2", "boss", real_name="Boss", is_owner=True)
    yield fake
    fake.stop()


@pytest.fixture
def services(slack: FakeSlack, engine: Engine) -> Services:
    return home_services(slack, engine, primary_workspace="T1", enable_db_reset=True)


class Harness:
    """The section registered on a Bolt app; each click waits for the work it started."""

    def __init__(self, slack: FakeSlack, services: Services) -> None:
        self.slack = slack
        self.services = services
        self.section = BackupSection(services)
        self.home = RecordingHome()
        self.bolt = bolt_app(slack)
        self.section.register(self.bolt, self.home)

    def send(self, body: dict[str, Any]) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            response = await dispatch(self.bolt, body)
            assert response.status == 200, response.body
            await self.section.wait_idle()
            return ack_body(response)

        return asyncio.run(run())

    def click(self, user: str, action: str, team: str = "T1") -> dict[str, Any]:
        return self.send(block_action(team, user, action))

    def dm(self, user: str = "UADMIN") -> str:
        opened = asyncio.run(
            self.services.slack.workspaces.api("T1").call("conversations.open", users=user)
        )
        return str(opened["channel"]["id"])


@pytest.fixture
def harness(slack: FakeSlack, services: Services) -> Harness:
    return Harness(slack, services)


def count(services: Services, model: Any) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def sync_names(services: Services) -> list[str]:
    with services.sessions() as s:
        return sorted(s.scalars(select(Sync.name)))


def test_visible_only_to_admins_of_the_primary_workspace(services: Services) -> None:
    section = BackupSection(services)
    assert section.visible(ADMIN)
    assert not section.visible(Viewer("T1", "UMEMBER", is_admin=False))
    assert not section.visible(Viewer("T2", "UADMIN2", is_admin=True))
    assert asyncio.run(section.blocks(Viewer("T2", "UADMIN2", is_admin=True))) == []

    services.settings = dataclasses.replace(services.settings, primary_workspace=None)
    assert not BackupSection(services).visible(ADMIN)


def test_reset_button_only_with_enable_db_reset(services: Services) -> None:
    def buttons(section: BackupSection) -> dict[str, dict[str, Any]]:
        blocks = asyncio.run(section.blocks(ADMIN))
        actions = next(b for b in blocks if b["type"] == "actions")
        return {e["action_id"]: e for e in actions["elements"]}

    shown = buttons(BackupSection(services))
    assert set(shown) == {DOWNLOAD, OPEN_RESTORE, RESET}
    assert shown[RESET]["confirm"]["style"] == "danger"
    assert "install syncbot again" in shown[RESET]["confirm"]["text"]["text"]

    services.settings = dataclasses.replace(services.settings, enable_db_reset=False)
    assert set(buttons(BackupSection(services))) == {DOWNLOAD, OPEN_RESTORE}


def test_download_sends_an_authenticated_backup_to_the_admins_dm(
    harness: Harness, slack: FakeSlack, services: Services
) -> None:
    harness.click("UADMIN", DOWNLOAD)
    files = slack.files("T1")
    assert len(files) == 1
    dm = harness.dm()
    assert files[0].channels == [dm]
    assert files[0].name.endswith(".backup")
    assert slack.called("files.getUploadURLExternal", "T1")
    (note,) = [m for m in slack.messages("T1", dm) if m.files]
    assert "2 rows" in note.text and "keep it private" in note.text
    # The file is a backup this instance accepts.
    summary = restore_backup(
        services.engine,
        io.BytesIO(files[0].content),
        mac_key=backup_mac_key(services.settings),
        cipher=services.cipher,
    )
    assert summary.tables["workspaces"] == 2


def test_others_are_refused_every_action(
    harness: Harness, slack: FakeSlack, services: Services
) -> None:
    for user, team in (("UMEMBER", "T1"), ("UADMIN2", "T2")):
        for action in (DOWNLOAD, OPEN_RESTORE, RESET):
            harness.click(user, action, team)
        refusals = [texts(v["blocks"]) for v in opened_views(slack, team)]
        assert len(refusals) == 3 and all(
            "Only admins and owners of the primary" in t for t in refusals
        )
    assert slack.files("T1") == [] and slack.files("T2") == []
    assert count(services, Workspace) == 2
    # A crafted submission of the restore modal is refused too, in the same words as a click.
    answer = harness.send(
        view_submission("T1", "UMEMBER", restore_view(), {FILE_BLOCK: {FILE_ACTION: {}}})
    )
    assert answer == {"response_action": "errors", "errors": {FILE_BLOCK: REFUSED_OPERATOR}}


def restore_values(file_id: str) -> dict[str, Any]:
    return {FILE_BLOCK: {FILE_ACTION: {"type": "file_input", "files": [{"id": file_id}]}}}


def opened_restore_view(slack: FakeSlack) -> dict[str, Any]:
    views = slack.call(lambda: list(slack.state.workspaces["T1"].views.values()))
    return next(v for v in views if v.get("callback_id") == RESTORE_VIEW)


def test_restore_through_the_modal_puts_the_backup_back(
    harness: Harness, slack: FakeSlack, services: Services
) -> None:
    SyncAdmin(services.sessions).create("before")
    harness.click("UADMIN", DOWNLOAD)
    (backup,) = slack.files("T1")
    SyncAdmin(services.sessions).create("after")
    assert sync_names(services) == ["after", "before"]

    harness.click("UADMIN", OPEN_RESTORE)
    modal = opened_restore_view(slack)
    element = modal["blocks"][1]["element"]
    assert element["type"] == "file_input" and element["max_files"] == 1

    answer = harness.send(view_submission("T1", "UADMIN", modal, restore_values(backup.id)))
    assert answer["response_action"] == "update"
    assert sync_names(services) == ["before"]
    (outcome,) = opened_views(slack, "T1", "views.update")
    assert outcome["title"]["text"] == "Restored" and "3 rows" in texts(outcome["blocks"])
    assert sorted(harness.home.touched) == ["T1", "T2"]


def test_a_modified_backup_is_refused_and_nothing_changes(
    harness: Harness, slack: FakeSlack, services: Services
) -> None:
    harness.click("UADMIN", DOWNLOAD)
    (backup,) = slack.files("T1")
    damaged = bytearray(backup.content)
    damaged[len(damaged) // 2] ^= 0x01
    file_id = slack.upload_file("T1", "C1", "UADMIN", "edited.backup", bytes(damaged))
    SyncAdmin(services.sessions).create("kept")

    harness.click("UADMIN", OPEN_RESTORE)
    modal = opened_restore_view(slack)
    harness.send(view_submission("T1", "UADMIN", modal, restore_values(file_id)))
    (outcome,) = opened_views(slack, "T1", "views.update")
    assert outcome["title"]["text"] == "Not restored"
    assert "modified" in texts(outcome["blocks"])
    assert sync_names(services) == ["kept"]
    assert harness.home.touched == []


def test_restore_needs_a_file(harness: Harness) -> None:
    answer = harness.send(view_submission("T1", "UADMIN", restore_view(), {}))
    assert answer == {
        "response_action": "errors",
        "errors": {FILE_BLOCK: "Choose a backup file."},
    }


def test_reset_deletes_every_row_and_tells_the_admin(
    harness: Harness, slack: FakeSlack, services: Services
) -> None:
    SyncAdmin(services.sessions).create("gone")
    dm = harness.dm()
    harness.click("UADMIN", RESET)
    assert count(services, Workspace) == 0 and sync_names(services) == []
    assert any("database was reset" in m.text for m in slack.messages("T1", dm))
    assert sorted(harness.home.touched) == ["T1", "T2"]


def test_reset_is_refused_without_enable_db_reset(slack: FakeSlack, services: Services) -> None:
    services.settings = dataclasses.replace(services.settings, enable_db_reset=False)
    harness = Harness(slack, services)
    harness.click("UADMIN", RESET)
    assert count(services, Workspace) == 2
    (refusal,) = opened_views(slack, "T1")
    assert "Only admins and owners of the primary" in texts(refusal["blocks"])


def test_members_are_refused_even_when_admin_is_not_required(
    slack: FakeSlack, services: Services
) -> None:
    # REQUIRE_ADMIN=false lets anyone configure syncs, never replace or wipe the database.
    services.settings = dataclasses.replace(services.settings, require_admin=False)
    harness = Harness(slack, services)
    for action in (DOWNLOAD, RESET):
        harness.click("UMEMBER", action)
    assert slack.files("T1") == []
    assert count(services, Workspace) == 2
    harness.click("UADMIN", DOWNLOAD)
    assert len(slack.files("T1")) == 1
