"""End to end over HTTP: signed events from the fake Slack in, Web API calls out, three
workspaces in one sync, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from app.store.models import Delivery, ProcessedEvent
from fakeslack import FakeSlack, Message
from tests.slack.harness import AppServer, settled, synced_app, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    with synced_app(request.param, tmp_path) as world:
        yield world


def copies(slack: FakeSlack, text: str) -> dict[str, list]:
    return {
        team: [m for m in slack.messages(team, ch) if text in m.text]
        for team, ch in (("T1", "C1"), ("T2", "C2"), ("T3", "C3"))
    }


def copy_in(slack: FakeSlack, team: str, channel: str, text: str) -> Message:
    return wait_for(
        lambda: next((m for m in slack.messages(team, channel) if text in m.text), None)
    )


def now(slack: FakeSlack, team: str, channel: str, msg: Message) -> Message:
    """``msg`` as the channel holds it now (the fake hands out snapshots)."""
    found = [m for m in slack.messages(team, channel, include_deleted=True) if m.ts == msg.ts]
    return found[0]


def test_every_message_kind_across_three_workspaces(world) -> None:
    slack, _server = world
    # A new post appears in the other two, under the author's name, workspace and avatar.
    ts = slack.post_message("T1", "C1", "U1", "hello <@U1> and <!here> :wave:")
    b = copy_in(slack, "T2", "C2", "hello")
    c = copy_in(slack, "T3", "C3", "hello")
    assert b.username == "Ada (Acme)" and c.username == "Ada (Acme)"
    assert b.icons == {"image_48": "https://avatars.slack-edge.test/T1/U1_192.png"}
    assert "<@U2A>" in b.text  # Ada is U2A in Beta, matched by e-mail
    assert "@Ada (Acme)" in c.text and "<@" not in c.text  # unknown in Gamma: no ping
    assert "<!here>" not in b.text and "@here" in b.text  # broadcasts stay home
    assert len(slack.messages("T1", "C1")) == 1  # our echoes were not relayed back

    # Edits and deletes follow.
    slack.edit("T1", "C1", ts, "hello again")
    wait_for(
        lambda: (
            "hello again" in now(slack, "T2", "C2", b).text
            and "hello again" in now(slack, "T3", "C3", c).text
        )
    )
    # Thread replies land on the mapped parent; a broadcast reply too.
    slack.post_message("T2", "C2", "U2", "a reply", thread_ts=b.ts)
    reply_a = copy_in(slack, "T1", "C1", "a reply")
    reply_c = copy_in(slack, "T3", "C3", "a reply")
    assert reply_a.thread_ts == ts and reply_c.thread_ts == c.ts
    assert reply_a.username == "Bob (Beta)"
    slack.post_message("T3", "C3", "U3", "loud reply", thread_ts=c.ts, broadcast=True)
    loud = copy_in(slack, "T1", "C1", "loud reply")
    assert loud.thread_ts == ts

    # Reactions: one native reaction per emoji, added with the first and removed with the last.
    def tada(team: str, channel: str, msg: Message) -> list[str] | None:
        return slack.reactions(team, channel, msg.ts).get("tada")

    slack.react("T1", "C1", ts, "U1", "tada")
    wait_for(lambda: tada("T2", "C2", b) == ["UT2BOT"] and tada("T3", "C3", c) == ["UT3BOT"])
    slack.react("T2", "C2", b.ts, "U2", "tada")
    wait_for(lambda: slack.reactions("T1", "C1", ts).get("tada") == ["U1", "UT1BOT"])
    slack.unreact("T1", "C1", ts, "U1", "tada")
    wait_for(lambda: tada("T3", "C3", c) == ["UT3BOT"])  # Bob's reaction still stands
    slack.unreact("T2", "C2", b.ts, "U2", "tada")
    wait_for(lambda: not tada("T3", "C3", c) and not tada("T2", "C2", b))
    # An emoji the target lacks (custom in Acme only) becomes a short thread note.
    slack.add_emoji("T1", "custom_missing_party", "https://emoji.slack-edge.test/party.gif")
    slack.react("T1", "C1", ts, "U1", "custom_missing_party")
    note = copy_in(slack, "T2", "C2", "reacted with :custom_missing_party:")
    assert note.thread_ts == b.ts

    slack.delete("T1", "C1", ts)
    wait_for(lambda: now(slack, "T2", "C2", b).deleted and now(slack, "T3", "C3", c).deleted)


def test_files_bots_and_orphan_replies(world) -> None:
    slack, _server = world
    image = b"\x89PNG fake image bytes" * 100
    slack.post_message("T1", "C1", "U1", "look", files=[("cat.png", image)])
    b = copy_in(slack, "T2", "C2", "look")
    shared = wait_for(
        lambda: [m for m in slack.messages("T2", "C2") if m.files and m.thread_ts == b.ts]
    )
    assert slack.file_content("T2", shared[0].files[0]) == image
    assert not slack.called("files.upload")  # the retired method is never used

    # Another app's bot message is synced under its own name.
    slack.bot_message(
        "T1",
        "C1",
        "BOTHER",
        "deploy done",
        app_id="AOTHER",
        username="CI Bot",
        icons={"image_48": "https://bots/ci.png"},
    )
    bot = copy_in(slack, "T3", "C3", "deploy done")
    assert bot.username == "CI Bot (Acme)"

    # A reply whose parent was never synced is posted, linked to the original thread.
    slack.echo(False, "T1")  # a parent from before the sync existed: the app never saw it
    parent = slack.post_message("T1", "C1", "U1", "old news")
    slack.echo(True, "T1")
    slack.post_message("T1", "C1", "U1", "orphan reply", thread_ts=parent)
    orphan = copy_in(slack, "T2", "C2", "orphan reply")
    assert orphan.thread_ts is None
    assert f"archives/C1/p{parent.replace('.', '')}" in orphan.text


def test_retries_are_deduplicated_and_forgeries_refused(world) -> None:
    slack, server = world
    envelope = slack.envelope(
        "T1",
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "once only",
            "ts": "1700000500.000100",
        },
    )
    body = json.dumps(envelope).encode()
    url = f"{server.url}/slack/events"
    for retry in range(4):
        headers = slack.sign(body)
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        assert httpx.post(url, content=body, headers=headers).status_code == 200
    copy_in(slack, "T2", "C2", "once only")
    wait_for(lambda: settled(slack, server))  # any duplicate would have been posted by now
    assert len([m for m in slack.messages("T2", "C2") if m.text == "once only"]) == 1

    forged = json.dumps(
        slack.envelope(
            "T1", {"type": "message", "channel": "C1", "user": "U1", "text": "forged", "ts": "1.2"}
        )
    ).encode()
    bad = slack.sign(forged) | {"X-Slack-Signature": "v0=" + "0" * 64}
    stale = slack.sign(forged, timestamp=int(time.time()) - 600)
    unsigned = {"Content-Type": "application/json"}
    for headers in (bad, stale, unsigned):
        assert httpx.post(url, content=forged, headers=headers).status_code == 401
    assert (
        httpx.post(url, content=b"{not json", headers=slack.sign(b"{not json")).status_code == 400
    )
    challenge = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()
    assert httpx.post(url, content=challenge, headers=slack.sign(challenge)).text == "abc"
    with server.services.sessions() as s:  # type: ignore[union-attr]
        claims = s.execute(select(func.count()).select_from(ProcessedEvent)).scalar()
        forged_rows = s.execute(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.payload.is_not(None), Delivery.post_id.is_(None))
        ).scalar()
    assert claims == 1 and forged_rows == 0
    assert not [m for m in slack.messages("T2", "C2") if "forged" in m.text]


def test_archive_pauses_and_unarchive_resumes(world) -> None:
    slack, server = world
    slack.archive("T3", "C3", "U3")
    wait_for(lambda: settled(slack, server))  # the app answers an event once it recorded it
    slack.post_message("T1", "C1", "U1", "while archived")
    copy_in(slack, "T2", "C2", "while archived")
    wait_for(lambda: settled(slack, server))
    assert not [m for m in slack.messages("T3", "C3") if "while archived" in m.text]
    slack.unarchive("T3", "C3", "U3")
    wait_for(lambda: settled(slack, server))
    slack.post_message("T1", "C1", "U1", "after unarchive")
    copy_in(slack, "T3", "C3", "after unarchive")
