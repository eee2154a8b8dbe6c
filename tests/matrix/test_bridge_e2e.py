"""Slack <-> Matrix through a real Synapse: every message kind, both ways, in one sync of two
Slack workspaces and one Matrix room."""

from __future__ import annotations

from typing import Any

import pytest

from tests.matrix.conftest import World
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def room_event(w: World, match: Any, *, timeout: float = 15) -> dict[str, Any]:
    return wait_for(lambda: next((e for e in w.alice.events(w.room) if match(e)), None), timeout)


def from_ghost(event: dict[str, Any]) -> bool:
    return event["sender"].startswith("@slack_") and event["type"] == "m.room.message"


def slack_copy(w: World, team: str, channel: str, text: str):
    return wait_for(
        lambda: next((m for m in w.slack.messages(team, channel) if text in m.text), None)
    )


def test_slack_post_reaches_matrix_as_ghost(world: World) -> None:
    w = world
    w.slack.user_posts("T1", "C1", "U1", "hello *bold* <@U1>")
    event = room_event(w, lambda e: from_ghost(e) and "hello" in e["content"]["body"])
    assert event["sender"] == "@slack_t1_u1:test.local"
    content = event["content"]
    assert "<strong>bold</strong>" in content["formatted_body"]
    assert "https://matrix.to/#/@slack_t1_u1:test.local" in content["formatted_body"]
    assert content["m.mentions"]["user_ids"] == ["@slack_t1_u1:test.local"]
    slack_copy(w, "T2", "C2", "hello")
