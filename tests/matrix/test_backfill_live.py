"""History backfill into a new portal, through a real Synapse and the fake Slack (#21 item 2):
the last messages in order, threads, edits and reactions as they stand, sent as the ghosts at
their Slack times, never echoed to Slack, paced in pages, resumed after a stop."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.core.endpoints import Endpoint
from app.store.engine import session_factory
from app.store.instance_settings import read_setting
from app.store.models import MessageCopy
from fakeslack import FakeSlack
from tests.matrix.conftest import bridge_settings
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import Synapse
from tests.matrix.test_login_flow import Flow, login, running
from tests.matrix.test_puppets_live import PNG, login_token
from tests.slack.harness import settled, wait_for

pytestmark = pytest.mark.integration

_names = itertools.count(1)


class BackfillFlow(Flow):
    def start_app(self) -> BridgeApp:
        settings = bridge_settings(
            self.synapse,
            slack_signing_secret=self.slack.signing_secret,
            slack_api_url=self.slack.base_url,
            matrix_conversation_count=3,
            matrix_backfill_messages=4,
            slack_history_limit=2,  # two pages of history per channel
            slack_history_interval=0.0,
        )
        app = BridgeApp(settings, self.engine, port=self.synapse.as_port, socket_mode=True)
        return app.start()


def history(slack: FakeSlack, team: str) -> dict[str, str]:
    """C1's past, written before the bridge existed (no events): five posts, one edited, one
    with a thread of two replies and reactions, plus a join notice that is not a post."""
    slack.echo(False)
    ts = {}
    ts["too old"] = slack.post_message(team, "C1", "U2", "too old")
    ts["root"] = slack.post_message(team, "C1", "U1", "thread root")
    ts["r1"] = slack.post_message(team, "C1", "U2", "first reply", thread_ts=ts["root"])
    ts["r2"] = slack.post_message(team, "C1", "U3", "second reply", thread_ts=ts["root"])
    ts["edited"] = slack.post_message(team, "C1", "U2", "before the edit")
    slack.edit(team, "C1", ts["edited"], "after the edit")
    ts["plain"] = slack.post_message(team, "C1", "U3", "plain words")
    ts["last"] = slack.post_message(team, "C1", "U1", "the last one")
    slack.react(team, "C1", ts["root"], "U2", "thumbsup")
    slack.react(team, "C1", ts["root"], "U3", "thumbsup")
    slack.echo(True)
    return ts


@pytest.fixture
def bflow(synapse: Synapse, tmp_path: Path) -> Iterator[BackfillFlow]:
    team = f"TB{next(_names)}"
    person = f"bob{next(_names)}b{tmp_path.name[-6:].lower()}"
    with running(BackfillFlow, synapse, tmp_path, team, person) as f:
        yield f


def timeline(f: Flow, room: str) -> list[dict[str, Any]]:
    chunk = f.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "f", "limit": 200})
    return [e for e in chunk["chunk"] if e["type"] in ("m.room.message", "m.reaction")]


def backfilled(f: Flow, room: str) -> list[dict[str, Any]]:
    return [e for e in timeline(f, room) if e["content"].get("syncbot.backfill")]


def check_c1(f: Flow, ts: dict[str, str]) -> None:
    room = f.room_of("C1")
    messages = [e for e in backfilled(f, room) if e["type"] == "m.room.message"]
    bodies = [e["content"]["body"] for e in messages]
    # The last four posts, oldest first, each followed by its thread; edits as they stand.
    assert bodies == [
        "thread root",
        "first reply",
        "second reply",
        "after the edit",
        "plain words",
        "the last one",
    ]
    by_body = {e["content"]["body"]: e for e in messages}
    expected_ts = {"thread root": "root", "first reply": "r1", "the last one": "last"}
    for body, key in expected_ts.items():
        assert by_body[body]["origin_server_ts"] == int(float(ts[key]) * 1000)
    assert by_body["thread root"]["sender"] == f.ghost("U1")
    assert by_body["second reply"]["sender"] == f.ghost("U3")
    relation = by_body["first reply"]["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread"
    assert relation["event_id"] == by_body["thread root"]["event_id"]
    reactions = [e for e in backfilled(f, room) if e["type"] == "m.reaction"]
    assert sorted(e["sender"] for e in reactions) == sorted([f.ghost("U2"), f.ghost("U3")])
    assert {e["content"]["m.relates_to"]["key"] for e in reactions} == {"👍"}
    assert "too old" not in bodies


def test_a_new_portal_starts_with_its_history(bflow: BackfillFlow) -> None:
    f = bflow
    ts = history(f.slack, f.team)
    login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    check_c1(f, ts)
    # Paged at the configured limit; never more per request.
    pages = [c for c in f.slack.called("conversations.history", f.team) if c.get("cursor")]
    assert pages and all(int(c["limit"]) <= 2 for c in pages)
    # Nothing went back to Slack.
    assert not f.slack.called("chat.postMessage", f.team)
    assert not f.slack.called("reactions.add", f.team)


def test_a_stopped_backfill_resumes_after_a_restart(bflow: BackfillFlow) -> None:
    f = bflow
    ts = history(f.slack, f.team)
    # The thread's replies cannot be read this time: the backfill stops where it was.
    f.slack.fail("conversations.replies", "error:fatal_error")
    login(f)
    room = f.room_of("C1")
    wait_for(lambda: f.app.bridge.backfill.completed >= 2)  # C2 and C3
    assert backfilled(f, room) == []
    f.app.stop()
    f.app = f.start_app()
    wait_for(lambda: f.app.bridge.backfill.completed >= 1)
    check_c1(f, ts)
    # Resumed, not restarted: each message went to the room once.
    bodies = [e["content"].get("body") for e in timeline(f, room)]
    assert bodies.count("thread root") == 1 and bodies.count("the last one") == 1


def all_events(f: Flow, room: str) -> list[dict[str, Any]]:
    chunk = f.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "f", "limit": 500})
    return list(chunk["chunk"])


def redacted(f: Flow, room: str) -> set[str]:
    return {
        str(e.get("redacts") or e["content"].get("redacts"))
        for e in all_events(f, room)
        if e["type"] == "m.room.redaction"
    }


def relations(f: Flow, room: str, rel_type: str, event_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in all_events(f, room)
        if e["content"].get("m.relates_to", {}).get("rel_type") == rel_type
        and e["content"]["m.relates_to"].get("event_id") == event_id
        and not e["content"].get("syncbot.backfill")
    ]


def test_backfilled_posts_follow_later_changes_both_ways(bflow: BackfillFlow) -> None:
    """A backfilled post is in the message map like a relayed one: a later edit, delete or
    reaction on Slack follows on its Matrix event, and a Matrix reaction or thread reply on
    that event reaches the Slack original."""
    f = bflow
    ts = history(f.slack, f.team)
    f.slack.echo(False)
    picture = f.slack.post_message(
        f.team, "C2", "U1", "a picture", files=[("pic.png", b"\x89PNG\r\n\x1a\nbackfilled")]
    )
    f.slack.echo(True)
    login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    room = f.room_of("C1")
    event = {
        e["content"]["body"]: e["event_id"]
        for e in backfilled(f, room)
        if e["type"] == "m.room.message"
    }
    past_reactions = [e["event_id"] for e in backfilled(f, room) if e["type"] == "m.reaction"]
    assert len(past_reactions) == 2

    # Slack -> Matrix: an edit replaces the backfilled event.
    f.slack.edit(f.team, "C1", ts["plain"], "plain words, edited")
    edit = wait_for(lambda: relations(f, room, "m.replace", event["plain words"]))
    assert edit[0]["content"]["m.new_content"]["body"] == "plain words, edited"
    assert edit[0]["sender"] == f.ghost("U3")

    # A new reaction lands on the backfilled event.
    f.slack.react(f.team, "C1", ts["last"], "U2", "heart")
    reaction = wait_for(lambda: relations(f, room, "m.annotation", event["the last one"]))
    assert reaction[0]["sender"] == f.ghost("U2")
    assert reaction[0]["content"]["m.relates_to"]["key"] == "❤️"

    # The reactions it had go when the last of their reactors removes theirs.
    f.slack.unreact(f.team, "C1", ts["root"], "U2", "thumbsup")
    f.slack.unreact(f.team, "C1", ts["root"], "U3", "thumbsup")
    wait_for(lambda: set(past_reactions) <= redacted(f, room))

    # A delete redacts every event of the copy: its text and its file.
    c2 = f.room_of("C2")
    copy = [e for e in backfilled(f, c2) if e["type"] == "m.room.message"]
    file_events = [e["event_id"] for e in copy if e["content"].get("msgtype") == "m.image"]
    text_events = [e["event_id"] for e in copy if e["content"].get("body") == "a picture"]
    assert len(file_events) == 1 and len(text_events) == 1
    f.slack.delete(f.team, "C2", picture)
    wait_for(lambda: {*file_events, *text_events} <= redacted(f, c2))

    # Matrix -> Slack: a reaction and a thread reply on the backfilled root reach the original.
    a = f.alice
    a.call("POST", f"/join/{room}", json={})
    root = event["thread root"]
    a.send(
        room,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "🎉"}},
        "m.reaction",
    )
    wait_for(lambda: "tada" in f.slack.reactions(f.team, "C1", ts["root"]))
    a.send(
        room,
        {
            "msgtype": "m.text",
            "body": "answered from Matrix",
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": root},
            },
        },
    )
    reply = wait_for(lambda: f.slack.find_message(f.team, "C1", text="answered from Matrix"))
    assert reply.thread_ts == ts["root"]


def test_a_resumed_backfill_maps_and_sends_nothing_twice(bflow: BackfillFlow) -> None:
    """Progress lost after the sends (a stop before "sent" was saved): the backfill resumes
    from its read messages, finds them in the map, and neither sends nor maps any twice."""
    f = bflow
    history(f.slack, f.team)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    endpoint = Endpoint.slack(f.team, "C1")
    # The progress as saved when reading ended and nothing was sent yet.
    read: list[dict[str, Any]] = []
    save = backfill._save

    def keep(where: Endpoint, state: dict[str, Any]) -> None:
        if where == endpoint and state.get("phase") == "sending" and not state.get("sent"):
            read.append(json.loads(json.dumps(state)))
        save(where, state)

    backfill._save = keep  # type: ignore[method-assign]
    login(f)
    wait_for(lambda: backfill.completed >= 3)
    room = f.room_of("C1")
    before = backfilled(f, room)
    mapped = map_rows(f, endpoint)
    assert len(mapped) == 6  # four posts, two replies
    assert read
    save(endpoint, read[0])
    f.app.run(backfill.run(endpoint))
    state = backfill._load(endpoint)
    assert state is not None and state["phase"] == "done"
    assert [e["event_id"] for e in backfilled(f, room)] == [e["event_id"] for e in before]
    assert map_rows(f, endpoint) == mapped


def map_rows(f: Flow, endpoint: Endpoint) -> list[tuple[str, str]]:
    with f.engine.connect() as conn:
        return sorted(
            (str(row.native_id), str(row.post_id))
            for row in conn.execute(
                select(MessageCopy.native_id, MessageCopy.post_id).where(
                    MessageCopy.endpoint == str(endpoint)
                )
            )
        )


EMOTICON = re.compile(r'<img data-mx-emoticon src="(mxc://[^"]+)" alt=":(\w+):"')


def test_backfilled_custom_emoji_are_images(bflow: BackfillFlow) -> None:
    """History renders like live messages: a workspace's custom emoji in a backfilled message
    is its image, and a backfilled reaction with one is keyed by that image."""
    f = bflow
    f.slack.add_emoji(f.team, "partyparrot", "https://emoji.slack-edge.test/partyparrot.gif")
    f.slack.echo(False)
    ts = f.slack.post_message(f.team, "C1", "U1", "party :partyparrot:")
    f.slack.react(f.team, "C1", ts, "U2", "partyparrot")
    f.slack.echo(True)
    login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    room = f.room_of("C1")
    posts = [e for e in backfilled(f, room) if e["content"].get("body") == "party :partyparrot:"]
    assert len(posts) == 1
    images = EMOTICON.findall(posts[0]["content"].get("formatted_body", ""))
    assert [name for _, name in images] == ["partyparrot"]
    reactions = [e for e in backfilled(f, room) if e["type"] == "m.reaction"]
    assert len(reactions) == 1 and reactions[0]["sender"] == f.ghost("U2")
    assert reactions[0]["content"]["m.relates_to"]["key"] == images[0][0]
    assert reactions[0]["content"]["com.beeper.reaction.shortcode"] == ":partyparrot:"


def test_an_own_dm_portal_starts_with_its_history_read_with_their_token(
    bflow: BackfillFlow,
) -> None:
    # The bot is not in Ada's DM with Bob: only her token can read its history, paced as
    # the bot's reads are, and no read is tried (and failed) as the bot.
    f = bflow
    dm = login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.echo(False)
    f.slack.post_message(f.team, with_bob, "U2", "are you free?")
    f.slack.post_message(f.team, with_bob, "U1", "after lunch")
    f.slack.post_message(f.team, with_bob, "U2", "see you then")
    f.slack.echo(True)
    token = f.slack.add_user_token(f.team, "U1")
    login_token(f, dm, token)
    room = f.room_of(with_bob)
    wait_for(lambda: backfill.completed >= 4)
    events = backfilled(f, room)
    assert [e["content"]["body"] for e in events] == [
        "are you free?",
        "after lunch",
        "see you then",
    ]
    assert [e["sender"] for e in events] == [f.ghost("U2"), f.ghost("U1"), f.ghost("U2")]
    reads = [
        c
        for c in f.slack.calls
        if c.method == "conversations.history" and c.params.get("channel") == with_bob
    ]
    assert len(reads) == 2 and all(c.token == token for c in reads)  # two pages of two
    key = f"backfill:{Endpoint.slack(f.team, with_bob)}"
    state = json.loads(read_setting(session_factory(f.engine), key) or "{}")
    assert (state["phase"], state["reader"]) == ("done", f.alice.user_id)


def test_a_file_in_an_own_dms_history_is_backfilled_as_its_bytes(bflow: BackfillFlow) -> None:
    # The bot's token gets Slack's sign-in page for a file in a DM it is not in; the backfill
    # copies the file's bytes read with her token, never that page.
    f = bflow
    dm = login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.echo(False)
    f.slack.upload_file(f.team, with_bob, "U2", "old.png", PNG, text="from before")
    f.slack.echo(True)
    login_token(f, dm, f.slack.add_user_token(f.team, "U1"))
    room = f.room_of(with_bob)
    wait_for(lambda: backfill.completed >= 4)
    files = [e for e in backfilled(f, room) if e["content"].get("url")]
    assert len(files) == 1
    server, media_id = files[0]["content"]["url"].removeprefix("mxc://").split("/", 1)
    resp = f.alice.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert resp.status_code == 200 and resp.content == PNG


def test_an_own_dm_backfill_whose_token_died_ends_instead_of_failing_each_start(
    bflow: BackfillFlow,
) -> None:
    f = bflow
    dm = login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None
    wait_for(lambda: backfill.completed >= 3)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.echo(False)
    f.slack.post_message(f.team, with_bob, "U2", "are you free?")
    f.slack.echo(True)
    # Her token dies between the portal's making and its history's first read.
    f.slack.fail("conversations.history", "error:token_revoked")
    login_token(f, dm, f.slack.add_user_token(f.team, "U1"))
    key = f"backfill:{Endpoint.slack(f.team, with_bob)}"
    sessions = session_factory(f.engine)
    wait_for(lambda: json.loads(read_setting(sessions, key) or "{}").get("phase") == "done")
    # Forgotten, as a refused post would have it; being done, no start reads it again.
    assert f.app.services.slack.puppets.store.of_user(f.alice.user_id) == []  # type: ignore[union-attr]


def test_the_message_that_makes_a_portal_is_not_backfilled_too(bflow: BackfillFlow) -> None:
    """The backfill starts as the portal is made, before the relay has recorded the message
    that asked for it. Reading the channel then found that message too, and while its live
    copy was on its way, the backfill sent it again: the room had it twice. The steps are held
    here in that order: history read, then the relay's record, then the backfill's send, then
    the live delivery."""
    f = bflow
    login(f)
    backfill = f.app.bridge.backfill
    assert backfill is not None and f.app.services is not None and f.app.matrix is not None
    wait_for(lambda: backfill.completed >= 3)
    quiet = f"slack:{f.team}/C4"
    relay, deliverer = f.app.services.relay, f.app.matrix.deliverer
    ingest, post_history, deliver = relay.ingest, deliverer.post_history, deliverer.deliver
    ingested, backfilled = threading.Event(), threading.Event()

    def held_ingest(event: Any, **kwargs: Any) -> Any:
        if str(getattr(event, "source", "")) != quiet:
            return ingest(event, **kwargs)
        wait_for(lambda: history_reads() > reads_before)
        try:
            return ingest(event, **kwargs)
        finally:
            ingested.set()

    async def held_post_history(*args: Any, **kwargs: Any) -> Any:
        await asyncio.to_thread(ingested.wait, 30)
        return await post_history(*args, **kwargs)

    async def held_deliver(task: Any) -> Any:
        if str(task.payload.source) == quiet:
            await asyncio.to_thread(backfilled.wait, 30)
        return await deliver(task)

    def history_reads() -> int:
        return sum(c["channel"] == "C4" for c in f.slack.called("conversations.history", f.team))

    reads_before = history_reads()  # the login's sync read each channel's latest message
    relay.ingest = held_ingest  # type: ignore[method-assign]
    deliverer.post_history = held_post_history  # type: ignore[method-assign]
    deliverer.deliver = held_deliver  # type: ignore[method-assign]
    try:
        f.slack.post_message(f.team, "C4", "U1", "first words in quiet")
        wait_for(lambda: backfill.completed >= 4)
        backfilled.set()
        room = f.room_of("C4")
        wait_for(lambda: "first words in quiet" in f.bodies_as_bot(room))
        wait_for(lambda: settled(f.slack, f.app))
    finally:
        ingested.set()
        backfilled.set()
        relay.ingest = ingest  # type: ignore[method-assign]
        deliverer.post_history = post_history  # type: ignore[method-assign]
        deliverer.deliver = deliver  # type: ignore[method-assign]
    assert f.bodies_as_bot(room).count("first words in quiet") == 1
