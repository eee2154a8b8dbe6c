"""Nothing a user sends is lost or left behind (#17), end to end against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import throwaway_database
from tests.fakes.slack_server import FakeSlack, Message
from tests.slack.harness import AppServer, synced_database, three_workspaces, wait_for
from tests.slack.test_blocks import GITHUB_LIKE, JIRA_LIKE

CHANNELS = [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    slack = FakeSlack().start()
    three_workspaces(slack)
    with throwaway_database("sqlite", tmp_path) as url:
        settings, engine = synced_database(slack, url, "general", CHANNELS)
        server = AppServer(settings, engine).start()
        slack.app_url = f"{server.url}/slack/events"
        try:
            yield slack, server
        finally:
            server.stop()
            slack.stop()
            engine.dispose()


def _other_app_posts(slack: FakeSlack, ts: str, message: dict) -> None:
    with slack._lock:
        slack.teams["T1"].channels["C1"].messages.append(
            Message(ts=ts, text="", bot_id="BOTHER", app_id="AOTHER", subtype="bot_message")
        )
    slack.emit(
        "T1",
        message | {"channel": "C1", "ts": ts, "bot_id": "BOTHER", "app_id": "AOTHER"},
    )


def test_other_apps_blocks_and_attachments_reach_every_workspace(world) -> None:
    slack, _server = world
    _other_app_posts(slack, "1800000000.000001", JIRA_LIKE | {"username": "Jira"})
    _other_app_posts(slack, "1800000000.000002", GITHUB_LIKE | {"username": "GitHub"})
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
    return [m.text for m in slack.messages(team, channel) if not m.thread_ts]


def test_bot_removed_from_channels_rejoins_or_holds_then_delivers_the_backlog(world) -> None:
    slack, server = world
    slack.add_user("T3", "U3A", "Cyd Admin", is_admin=True)
    slack.teams["T3"].channels["C3"].private = True
    slack.remove_bot("T2", "C2")  # public: the bot may rejoin by itself
    slack.remove_bot("T3", "C3")  # private: someone has to invite it back
    for n in range(3):
        slack.user_posts("T1", "C1", "U1", f"while away {n}")
    wait_for(lambda: _texts(slack, "T2", "C2") == [f"while away {n}" for n in range(3)])
    assert slack.teams["T2"].bot_user in slack.teams["T2"].channels["C2"].members

    # The private channel's deliveries are held, not dead, and its admin is told once.
    dm = wait_for(lambda: slack.messages("T3", "DU3A"))
    assert len(dm) == 1 and "<#C3>" in dm[0].text and "/invite" in dm[0].text
    from sqlalchemy import select

    from app.store.models import Delivery

    with server.services.sessions() as s:  # type: ignore[union-attr]
        rows = s.execute(
            select(Delivery.status).where(Delivery.target_endpoint == "slack:T3/C3")
        ).all()
    assert rows and {r.status for r in rows} == {"pending"}
    assert _texts(slack, "T3", "C3") == []

    # Invited back: the backlog arrives in order, each message once.
    slack.invite_bot("T3", "C3", by="U3A")
    wait_for(lambda: len(_texts(slack, "T3", "C3")) == 3)
    assert _texts(slack, "T3", "C3") == [f"while away {n}" for n in range(3)]
    slack.user_posts("T1", "C1", "U1", "after return")
    wait_for(lambda: "after return" in _texts(slack, "T3", "C3"))
    assert len(slack.messages("T3", "DU3A")) == 1


def _file_shares(slack: FakeSlack, team: str, channel: str, thread_ts: str) -> list:
    return [m for m in slack.messages(team, channel) if m.files and m.thread_ts == thread_ts]


def test_a_passing_upload_failure_is_retried_not_replaced_by_a_note(world) -> None:
    slack, _server = world
    # #17 item 4: a 429 and a 5xx on the upload steps are retried; the file arrives once.
    slack.fail("files.getUploadURLExternal", "429")
    slack.fail("files.completeUploadExternal", "500")
    f = slack.add_file(b"report bytes" * 50, "report.pdf", "application/pdf")
    slack.user_posts("T1", "C1", "U1", "the report", files=[f])
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
    big = slack.add_file(b"x" * 10, "big.bin", "application/octet-stream")
    big["size"] = 10**12
    slack.user_posts("T1", "C1", "U1", "too big", files=[big])
    wait_for(lambda: [m for m in slack.messages("T2", "C2") if "could not be copied" in m.text])


def test_a_delete_removes_the_file_copies_in_every_workspace(world) -> None:
    slack, _server = world
    # #17 item 8: the file copies are thread replies of their own; a delete removes them too.
    f = slack.add_file(b"\x89PNG private" * 20, "private.png", "image/png")
    ts = slack.user_posts("T1", "C1", "U1", "oops, wrong channel", files=[f])
    copies = {}
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        post = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "wrong channel" in m.text), None
            )
        )
        wait_for(lambda t=team, c=channel, p=post: _file_shares(slack, t, c, p.ts))
        copies[team] = post
    slack.user_deletes("T1", "C1", ts)
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        wait_for(lambda t=team, c=channel: not slack.messages(t, c))
        assert not [m for m in slack.messages(team, channel) if m.files]


def test_the_missing_emoji_note_names_the_person(world) -> None:
    slack, _server = world
    ts = slack.user_posts("T1", "C1", "U1", "note me")
    copy = wait_for(
        lambda: next((m for m in slack.messages("T2", "C2") if m.text == "note me"), None)
    )
    slack.user_reacts("T1", "C1", ts, "U1", "custom_missing_party")
    note = wait_for(
        lambda: next((m for m in slack.messages("T2", "C2") if "reacted with" in m.text), None)
    )
    assert note.thread_ts == copy.ts
    assert note.username == "Ada (Acme)"  # the person, not U1
