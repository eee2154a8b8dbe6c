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
from tests.databases import throwaway_database
from tests.fakes.slack_server import FakeSlack
from tests.slack.harness import AppServer, synced_database, three_workspaces, wait_for

CHANNELS = [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    slack = FakeSlack().start()
    three_workspaces(slack)
    with throwaway_database(request.param, tmp_path) as url:
        settings, engine = synced_database(slack, url, "general", CHANNELS)
        server = AppServer(settings, engine).start()
        slack.app_url = f"{server.url}/slack/events"
        try:
            yield slack, server
        finally:
            server.stop()
            slack.stop()
            engine.dispose()


def copies(slack: FakeSlack, text: str) -> dict[str, list]:
    return {
        team: [m for m in slack.messages(team, ch) if text in m.text]
        for team, ch in (("T1", "C1"), ("T2", "C2"), ("T3", "C3"))
    }


def copy_in(slack: FakeSlack, team: str, channel: str, text: str):
    return wait_for(
        lambda: next((m for m in slack.messages(team, channel) if text in m.text), None)
    )


def test_every_message_kind_across_three_workspaces(world) -> None:
    slack, _server = world
    # A new post appears in the other two, under the author's name, workspace and avatar.
    ts = slack.user_posts("T1", "C1", "U1", "hello <@U1> and <!here> :wave:")
    b = copy_in(slack, "T2", "C2", "hello")
    c = copy_in(slack, "T3", "C3", "hello")
    assert b.username == "Ada (Acme)" and c.username == "Ada (Acme)"
    assert b.icons == {"image_48": "https://avatars.example/T1/U1_192.png"}
    assert "<@U2A>" in b.text  # Ada is U2A in Beta, matched by e-mail
    assert "@Ada (Acme)" in c.text and "<@" not in c.text  # unknown in Gamma: no ping
    assert "<!here>" not in b.text and "@here" in b.text  # broadcasts stay home
    assert len(slack.messages("T1", "C1")) == 1  # our echoes were not relayed back

    # Edits and deletes follow.
    slack.user_edits("T1", "C1", ts, "hello again")
    wait_for(lambda: all("hello again" in m.text for m in (b, c)))
    # Thread replies land on the mapped parent; a broadcast reply too.
    slack.user_posts("T2", "C2", "U2", "a reply", thread_ts=b.ts)
    reply_a = copy_in(slack, "T1", "C1", "a reply")
    reply_c = copy_in(slack, "T3", "C3", "a reply")
    assert reply_a.thread_ts == ts and reply_c.thread_ts == c.ts
    assert reply_a.username == "Bob (Beta)"
    slack.user_posts("T3", "C3", "U3", "loud reply", thread_ts=c.ts, broadcast=True)
    loud = copy_in(slack, "T1", "C1", "loud reply")
    assert loud.thread_ts == ts

    # Reactions: one native reaction per emoji, added with the first and removed with the last.
    slack.user_reacts("T1", "C1", ts, "U1", "tada")
    wait_for(lambda: b.reactions.get("tada") == ["UBT2"] and c.reactions.get("tada") == ["UBT3"])
    slack.user_reacts("T2", "C2", b.ts, "U2", "tada")
    wait_for(lambda: slack.messages("T1", "C1")[0].reactions.get("tada") == ["U1", "UBT1"])
    slack.user_reacts("T1", "C1", ts, "U1", "tada", added=False)
    wait_for(lambda: c.reactions.get("tada") == ["UBT3"])  # Bob's reaction still stands
    slack.user_reacts("T2", "C2", b.ts, "U2", "tada", added=False)
    wait_for(lambda: not c.reactions.get("tada") and not b.reactions.get("tada"))
    # An emoji the target lacks becomes a short thread note.
    slack.user_reacts("T1", "C1", ts, "U1", "custom_missing_party")
    note = copy_in(slack, "T2", "C2", "reacted with :custom_missing_party:")
    assert note.thread_ts == b.ts

    slack.user_deletes("T1", "C1", ts)
    wait_for(lambda: b.deleted and c.deleted)


def test_files_bots_and_orphan_replies(world) -> None:
    slack, _server = world
    f = slack.add_file(b"\x89PNG fake image bytes" * 100, "cat.png", "image/png")
    slack.user_posts("T1", "C1", "U1", "look", files=[f])
    b = copy_in(slack, "T2", "C2", "look")
    shared = wait_for(
        lambda: [m for m in slack.messages("T2", "C2") if m.files and m.thread_ts == b.ts]
    )
    assert slack.files[shared[0].files[0]["id"]] == b"\x89PNG fake image bytes" * 100
    assert not slack.called("files.upload")  # the retired method is never used

    # Another app's bot message is synced under its own name.
    with slack._lock:
        slack.teams["T1"].channels["C1"].messages.append(
            __import__("tests.fakes.slack_server", fromlist=["Message"]).Message(
                ts="1800000000.000001",
                text="deploy done",
                bot_id="BOTHER",
                app_id="AOTHER",
                username="CI Bot",
                subtype="bot_message",
            )
        )
    slack.emit(
        "T1",
        {
            "type": "message",
            "subtype": "bot_message",
            "channel": "C1",
            "text": "deploy done",
            "bot_id": "BOTHER",
            "app_id": "AOTHER",
            "username": "CI Bot",
            "ts": "1800000000.000001",
            "icons": {"image_48": "https://bots/ci.png"},
        },
    )
    bot = copy_in(slack, "T3", "C3", "deploy done")
    assert bot.username == "CI Bot (Acme)"

    # A reply whose parent was never synced is posted, linked to the original thread.
    slack.user_posts("T1", "C1", "U1", "orphan reply", thread_ts="1600000000.000100")
    orphan = copy_in(slack, "T2", "C2", "orphan reply")
    assert orphan.thread_ts is None and "archives/C1/p1600000000000100" in orphan.text


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
    time.sleep(0.5)
    assert len([m for m in slack.messages("T2", "C2") if m.text == "once only"]) == 1

    forged = json.dumps(
        slack.envelope(
            "T1", {"type": "message", "channel": "C1", "user": "U1", "text": "forged", "ts": "1.2"}
        )
    ).encode()
    bad = slack.sign(forged) | {"X-Slack-Signature": "v0=" + "0" * 64}
    stale = slack.sign(forged, ts=int(time.time()) - 600)
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
    slack, _server = world
    slack.channel_event("T3", "channel_archive", "C3")
    time.sleep(0.3)
    slack.user_posts("T1", "C1", "U1", "while archived")
    copy_in(slack, "T2", "C2", "while archived")
    time.sleep(0.3)
    assert not [m for m in slack.messages("T3", "C3") if "while archived" in m.text]
    slack.channel_event("T3", "channel_unarchive", "C3")
    time.sleep(0.3)
    slack.user_posts("T1", "C1", "U1", "after unarchive")
    copy_in(slack, "T3", "C3", "after unarchive")
