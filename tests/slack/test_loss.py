"""Nothing a user sends is lost or left behind (#17), end to end against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakeslack import FakeSlack, Upload
from tests.slack.harness import AppServer, synced_app, wait_for
from tests.slack.test_blocks import GITHUB_LIKE, JIRA_LIKE

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    with synced_app("sqlite", tmp_path) as world:
        yield world


def _other_app_posts(slack: FakeSlack, message: dict) -> None:
    slack.bot_message(
        "T1",
        "C1",
        "BOTHER",
        message.get("text", ""),
        app_id="AOTHER",
        username=message.get("username"),
        blocks=message.get("blocks"),
        attachments=message.get("attachments"),
    )


def test_other_apps_blocks_and_attachments_reach_every_workspace(world) -> None:
    slack, _server = world
    _other_app_posts(slack, JIRA_LIKE | {"username": "Jira"})
    _other_app_posts(slack, GITHUB_LIKE | {"username": "GitHub"})
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        jira = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "PROJ-1 Broken login" in m.text), None
            )
        )
        assert "Priority" in jira.text and "High" in jira.text
        assert "https://jira.example/PROJ-1" in jira.text
        github = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "Deploy finished" in m.text), None
            )
        )
        assert "triggered by ada" in github.text and "[Approve]" in github.text


def _texts(slack: FakeSlack, team: str, channel: str) -> list[str]:
    """Top-level messages, without Slack's join/leave notices."""
    return [
        m.text
        for m in slack.messages(team, channel)
        if not m.thread_ts and m.subtype not in ("channel_join", "channel_leave")
    ]


def test_bot_removed_from_channels_rejoins_or_holds_then_delivers_the_backlog(world) -> None:
    slack, server = world
    slack.add_user("T3", "U3A", "cyd", real_name="Cyd Admin", is_admin=True)
    slack.convert_to_private("T3", "C3")
    slack.remove_bot("T2", "C2", by="U2")  # public: the bot may rejoin by itself
    slack.remove_bot("T3", "C3", by="U3")  # private: someone has to invite it back
    for n in range(3):
        slack.post_message("T1", "C1", "U1", f"while away {n}")
    wait_for(lambda: _texts(slack, "T2", "C2") == [f"while away {n}" for n in range(3)])
    assert "UT2BOT" in slack.channel("T2", "C2").members

    # The private channel's deliveries are held, not dead, and its admin is told once.
    admin_dm = wait_for(lambda: slack.dm("T3", "U3A"))
    dm = wait_for(lambda: slack.messages("T3", admin_dm))
    assert len(dm) == 1 and "<#C3>" in dm[0].text and "/invite" in dm[0].text
    from sqlalchemy import select

    from app.store.models import Delivery

    with server.services.sessions() as s:  # type: ignore[union-attr]
        rows = s.execute(
            select(Delivery.status).where(Delivery.target_endpoint == "slack:T3/C3")
        ).all()
    assert rows and {r.status for r in rows} == {"pending"}
    assert _texts(slack, "T3", "C3") == []
    # The workspace's App Home says so too (to its admins).
    from app.slack.home.section import Viewer

    assert server.parts is not None
    held = next(s for s in server.parts.home.sections if s.key == "held")
    admin = Viewer("T3", "U3A", is_admin=True)
    shown = str(server.run(held.blocks(admin)))
    assert "<#C3>" in shown and "/invite" in shown and "3 messages waiting" in shown
    assert server.run(held.blocks(Viewer("T3", "U3", is_admin=False))) == []

    # Invited back: the backlog arrives in order, each message once.
    slack.invite_bot("T3", "C3", by="U3A")
    wait_for(lambda: len(_texts(slack, "T3", "C3")) == 3)
    assert _texts(slack, "T3", "C3") == [f"while away {n}" for n in range(3)]
    slack.post_message("T1", "C1", "U1", "after return")
    wait_for(lambda: "after return" in _texts(slack, "T3", "C3"))
    assert len(slack.messages("T3", admin_dm)) == 1
    assert server.run(held.blocks(admin)) == []


def _file_shares(slack: FakeSlack, team: str, channel: str, thread_ts: str) -> list:
    return [m for m in slack.messages(team, channel) if m.files and m.thread_ts == thread_ts]


def test_a_passing_upload_failure_is_retried_not_replaced_by_a_note(world) -> None:
    slack, _server = world
    # #17 item 4: a 429 and a 5xx on the upload steps are retried; the file arrives once.
    slack.fail("files.getUploadURLExternal", "429")
    slack.fail("files.completeUploadExternal", "500")
    report = Upload("report.pdf", b"report bytes" * 50, "application/pdf")
    slack.post_message("T1", "C1", "U1", "the report", files=[report])
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        post = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if m.text == "the report"), None
            )
        )
        wait_for(lambda t=team, c=channel, p=post: _file_shares(slack, t, c, p.ts))
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        texts = [m.text for m in slack.messages(team, channel)]
        assert texts.count("the report") == 1
        assert not [t for t in texts if "could not be copied" in t]
    shares = [m for t, c in (("T2", "C2"), ("T3", "C3")) for m in slack.messages(t, c) if m.files]
    assert len(shares) == 2
    # A permanent refusal still becomes a note.
    big = Upload("big.bin", b"x" * 10, "application/octet-stream", size=10**12)
    slack.post_message("T1", "C1", "U1", "too big", files=[big])
    wait_for(lambda: [m for m in slack.messages("T2", "C2") if "could not be copied" in m.text])


def test_a_delete_removes_the_file_copies_in_every_workspace(world) -> None:
    slack, _server = world
    # #17 item 8: the file copies are thread replies of their own; a delete removes them too.
    private = Upload("private.png", b"\x89PNG private" * 20, "image/png")
    ts = slack.post_message("T1", "C1", "U1", "oops, wrong channel", files=[private])
    copies = {}
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        post = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "wrong channel" in m.text), None
            )
        )
        wait_for(lambda t=team, c=channel, p=post: _file_shares(slack, t, c, p.ts))
        copies[team] = post
    slack.delete("T1", "C1", ts)
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        wait_for(lambda t=team, c=channel: not slack.messages(t, c))
        assert not [m for m in slack.messages(team, channel) if m.files]


def test_the_missing_emoji_note_names_the_person(world) -> None:
    slack, _server = world
    ts = slack.post_message("T1", "C1", "U1", "note me")
    copy = wait_for(
        lambda: next((m for m in slack.messages("T2", "C2") if m.text == "note me"), None)
    )
    slack.add_emoji("T1", "custom_missing_party", "https://emoji.slack-edge.test/party.gif")
    slack.react("T1", "C1", ts, "U1", "custom_missing_party")
    note = wait_for(
        lambda: next((m for m in slack.messages("T2", "C2") if "reacted with" in m.text), None)
    )
    assert note.thread_ts == copy.ts
    assert note.username == "Ada (Acme)"  # the person, not U1
