"""History backfill into a new portal, through a real Synapse and the fake Slack (#21 item 2):
the last messages in order, threads, edits and reactions as they stand, sent as the ghosts at
their Slack times, never echoed to Slack, paced in pages, resumed after a stop."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeslack import FakeSlack
from tests.matrix.conftest import bridge_settings
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import Synapse
from tests.matrix.test_login_flow import Flow, login, running
from tests.slack.harness import wait_for

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
