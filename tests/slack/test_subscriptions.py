"""One table: what the manifest subscribes, what the fake delivers, what the app handles (#17
item 10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.cli.manifest import build_manifest
from app.slack.subscriptions import BOT_EVENTS, DELIVERED, USER_EVENTS
from fakeslack import FakeSlack
from tests.slack.harness import AppServer, synced_app, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    with synced_app("sqlite", tmp_path) as world:
        yield world


def test_the_manifest_subscribes_exactly_what_is_handled(world) -> None:
    _slack, server = world
    manifest = build_manifest("https://syncbot.example")
    subscribed = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert subscribed == list(BOT_EVENTS)
    assert "member_left_channel" in subscribed and "user_profile_changed" in subscribed
    assert "team_join" not in subscribed  # nothing reads it
    # User events (a person's own DMs, `login token`) come from the same table: each is also a
    # bot event, so the handler check below covers them.
    user_events = manifest["settings"]["event_subscriptions"]["user_events"]
    assert user_events == list(USER_EVENTS)
    assert user_events == ["message.im", "message.mpim", "reaction_added", "reaction_removed"]
    assert set(user_events) <= set(subscribed)
    events = server.services.slack.events  # type: ignore[union-attr]
    # Every subscribed event type has a handler (the relay or a hook), and no hook waits for
    # an event Slack is never asked to send.
    assert events.handled_types() == DELIVERED
    with pytest.raises(ValueError, match="team_join"):
        events.on({"team_join"}, lambda payload: None)  # type: ignore[arg-type,return-value]


def test_the_fake_delivers_only_subscribed_events(world) -> None:
    slack, _server = world
    before = len(slack.emitted)
    slack.send_event("T1", {"type": "team_join", "user": {"id": "U9"}})
    slack.send_event("T1", {"type": "channel_created", "channel": {"id": "C9", "name": "new"}})
    assert len(slack.emitted) == before
    slack.send_event("T1", {"type": "user_profile_changed", "user": {"id": "U1"}})
    assert len(slack.emitted) == before + 1


def test_a_profile_change_is_used_at_once(world) -> None:
    slack, _server = world
    slack.post_message("T1", "C1", "U1", "before the change")
    first = wait_for(lambda: slack.find_message("T2", "C2", text="before the change"))
    assert first.username.startswith("Ada")
    # Only the event tells: the cached profile is fresh, so nothing else would look again.
    event_id = slack.send_event(
        "T1",
        {
            "type": "user_profile_changed",
            "user": {
                "id": "U1",
                "name": "ada",
                "profile": {"display_name": "Countess", "real_name": "Ada Lovelace"},
            },
        },
    )
    wait_for(lambda: any(d.event_id == event_id and d.status == 200 for d in slack.deliveries))
    slack.post_message("T1", "C1", "U1", "after the change")
    second = wait_for(lambda: slack.find_message("T2", "C2", text="after the change"))
    assert second.username == "Countess (Acme)"
