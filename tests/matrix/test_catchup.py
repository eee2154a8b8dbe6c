"""Events a homeserver restart never pushes are read back from the timeline (#17).

Synapse queues an appservice's events in memory while a transaction is in flight; stopped in
between, it forgets them (element-hq/synapse#11637). These tests reproduce that on the real
homeserver, then check that the catch-up sweep relays exactly what was lost, once, and nothing
it must not (events from before a room's link, commands, our own ghosts' events).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app.assembly import maintenance_tasks
from app.core.endpoints import Endpoint
from tests.matrix.conftest import World
from tests.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.bridge_settings(matrix_catchup_interval=0)]


def slack_texts(w: World, team: str, channel: str) -> list[str]:
    return [m.text for m in w.slack.messages(team, channel)]


def sweep(w: World) -> int:
    return int(w.app.run(w.app.matrix.catchup.sweep_now()))


class HeldTransactions:
    """Keeps the bridge from answering the transaction that carries ``body`` until released."""

    def __init__(self, w: World, body: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        bridge = w.app.matrix.bridge
        original = bridge.handle

        async def handle(event: dict[str, Any]) -> None:
            if (event.get("content") or {}).get("body") == body:
                self.entered.set()
                import asyncio

                await asyncio.to_thread(self.release.wait, 30)
            await original(event)

        self._bridge, self._original = bridge, original
        bridge.handle = handle  # type: ignore[method-assign]

    def restore(self) -> None:
        self.release.set()
        self._bridge.handle = self._original  # type: ignore[method-assign]


def pushed_past(w: World, event_id: str) -> bool:
    """Whether Synapse's appservice stream position has moved past ``event_id`` (handed to its
    in-memory queue)."""
    db = sqlite3.connect(f"file:{w.synapse.work / 'homeserver.db'}?mode=ro", uri=True)
    try:
        ordering = db.execute(
            "SELECT stream_ordering FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        position = db.execute("SELECT stream_ordering FROM appservice_stream_position").fetchone()
    finally:
        db.close()
    return bool(ordering and position and position[0] is not None and position[0] >= ordering[0])


@pytest.fixture
def held(world: World) -> Iterator[HeldTransactions]:
    hold = HeldTransactions(world, "first")
    yield hold
    hold.restore()


def test_events_lost_in_a_homeserver_restart_are_relayed_once(
    world: World, held: HeldTransactions
) -> None:
    w = world
    assert sweep(w) == 0  # the first sweep only takes its starting position
    w.alice.text(w.room, "first")
    assert held.entered.wait(10), "the first message's transaction never reached the bridge"
    # Sent while that transaction is unanswered: Synapse keeps these in memory only.
    second = w.alice.text(w.room, "second")
    third = w.alice.text(w.room, "third")
    wait_for(lambda: pushed_past(w, third), timeout=10)
    w.synapse.stop()
    held.release.set()
    w.synapse.start()
    w.alice.text(w.room, "after the restart")
    expected_before_sweep = ["first", "after the restart"]
    # Each workspace's copy is its own delivery: wait for both, not one then assert the other.
    # The homeserver itself never sends the two again: this is the loss being repaired.
    wait_for(
        lambda: all(
            slack_texts(w, team, channel) == expected_before_sweep
            for team, channel in (("T1", "C1"), ("T2", "C2"))
        ),
        timeout=30,
        context=lambda: (
            f"{(second, third)} T1={slack_texts(w, 'T1', 'C1')} T2={slack_texts(w, 'T2', 'C2')}"
        ),
    )

    assert sweep(w) == 2
    for team, channel in (("T1", "C1"), ("T2", "C2")):
        wait_for(lambda t=team, c=channel: len(slack_texts(w, t, c)) == 4, timeout=20)
        assert sorted(slack_texts(w, team, channel)) == sorted(
            ["first", "second", "third", "after the restart"]
        )
    # A later sweep finds nothing new: each was relayed once.
    assert sweep(w) == 0
    assert len(slack_texts(w, "T1", "C1")) == 4


def test_sweep_relays_nothing_pushed_already_nor_what_must_not_be_relayed(world: World) -> None:
    w = world
    assert sweep(w) == 0
    other = w.alice.call(
        "POST", "/createRoom", json={"preset": "private_chat", "name": "not bridged yet"}
    )["room_id"]
    w.alice.call("POST", f"/rooms/{other}/invite", json={"user_id": w.app.matrix.ids.bot})
    wait_for(
        lambda: (
            w.app.matrix.ids.bot in w.alice.call("GET", f"/rooms/{other}/joined_members")["joined"]
        )
    )
    w.alice.text(other, "said before the room was linked")
    w.alice.text(w.room, "!slack help")
    w.alice.text(w.room, "pushed normally")
    w.slack.post_message("T1", "C1", "U1", "from slack")
    wait_for(lambda: "pushed normally" in slack_texts(w, "T2", "C2"))
    wait_for(
        lambda: any(
            e["content"].get("body") == "from slack"
            for e in w.alice.events(w.room)
            if e["type"] == "m.room.message"
        )
    )
    w.syncs.add("general", Endpoint.matrix(other))
    # Commands are answered once, history from before the link stays, pushed events are
    # claimed already, and the ghost's copy of the Slack message is ours.
    assert sweep(w) == 0
    assert "said before the room was linked" not in slack_texts(w, "T1", "C1")
    assert slack_texts(w, "T1", "C1").count("pushed normally") == 1
    assert not any("help" in t for t in slack_texts(w, "T1", "C1"))
    notices = [
        e
        for e in w.alice.events(w.room)
        if e["type"] == "m.room.message" and e["content"].get("msgtype") == "m.notice"
    ]
    assert len(notices) == 1, "the command was answered again"


def test_the_tick_sweeps_in_a_loop_of_its_own_where_no_loop_runs(world: World) -> None:
    # The Lambda shape: no background loop between requests, the scheduler's tick runs each
    # maintenance round in a fresh event loop (here: the test's thread, not the app's loop).
    w = world
    assert w.app.parts is not None
    task = next(t for t in maintenance_tasks(w.app.parts) if t.__name__ == "matrix_catch_up")

    def tick() -> int | None:
        return task(None)  # type: ignore[arg-type]  # the task reads nothing of the runtime

    assert not w.app.matrix.catchup.running
    assert tick() == 0  # the starting position
    seen = threading.Event()
    bridge = w.app.matrix.bridge
    original = bridge.handle

    async def drop(event: dict[str, Any]) -> None:
        # The push arrives and is answered, but its event never gets further: a lost push.
        if (event.get("content") or {}).get("body") == "lost on the way":
            seen.set()
            return
        await original(event)

    bridge.handle = drop  # type: ignore[method-assign]
    try:
        w.alice.text(w.room, "lost on the way")
        assert seen.wait(10)
    finally:
        bridge.handle = original  # type: ignore[method-assign]
    assert tick() == 1
    for team, channel in (("T1", "C1"), ("T2", "C2")):
        wait_for(lambda t=team, c=channel: "lost on the way" in slack_texts(w, t, c))
    assert tick() == 0


def test_a_room_the_bot_cannot_read_does_not_stop_the_sweep(world: World) -> None:
    w = world
    w.syncs.add("general", Endpoint.matrix("!nowhere:test.local"))  # the bot is not in it
    assert sweep(w) == 0
    seen = threading.Event()
    bridge = w.app.matrix.bridge
    original = bridge.handle

    async def drop(event: dict[str, Any]) -> None:
        if (event.get("content") or {}).get("body") == "lost beside a dead room":
            seen.set()
            return
        await original(event)

    bridge.handle = drop  # type: ignore[method-assign]
    try:
        w.alice.text(w.room, "lost beside a dead room")
        assert seen.wait(10)
    finally:
        bridge.handle = original  # type: ignore[method-assign]
    assert sweep(w) == 1
    wait_for(lambda: "lost beside a dead room" in slack_texts(w, "T1", "C1"))
