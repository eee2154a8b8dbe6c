"""The fake Slack's user tokens (``xoxp-``) against slack_sdk: who they act as, the scopes
Slack enforces for them, and the user events their DMs produce."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from fakeslack import FakeSlack

MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.event_settings.bot_events = MESSAGE_EVENTS
        fake.add_workspace("T1", "Acme")
        for user, name in (("U1", "ada"), ("U2", "bob"), ("U3", "cy")):
            fake.add_user("T1", user, name)
        fake.add_channel("T1", "C1", "general", members=["U1", "U2"])
        yield fake


def client(slack: FakeSlack, token: str) -> WebClient:
    return WebClient(token=token, base_url=slack.base_url)


def error_of(call: object) -> dict[str, object]:
    with pytest.raises(SlackApiError) as err:
        call()  # type: ignore[operator]
    return dict(err.value.response.data)  # type: ignore[arg-type]


def test_a_user_token_is_its_member(slack: FakeSlack) -> None:
    token = slack.add_user_token("T1", "U1")
    assert token.startswith("xoxp-")
    auth = client(slack, token).auth_test()
    assert (auth["user_id"], auth["team_id"], auth["user"]) == ("U1", "T1", "ada")
    assert "bot_id" not in auth.data  # type: ignore[operator]


def test_posting_with_a_user_token_posts_as_that_user(slack: FakeSlack) -> None:
    web = client(slack, slack.add_user_token("T1", "U1"))
    sent = web.chat_postMessage(
        channel="C1",
        text="mine",
        username="ignored",
        metadata={"event_type": "syncbot_delivery", "event_payload": {"delivery": "d1"}},
    )
    msg = slack.message("T1", "C1", sent["ts"])
    assert (msg.user, msg.bot_id, msg.username) == ("U1", None, None)
    event = slack.emitted[-1]["event"]
    assert event["user"] == "U1" and "bot_id" not in event
    assert event["metadata"]["event_type"] == "syncbot_delivery"
    # The member's own message: they may edit and delete it, the bot may not.
    web.chat_update(channel="C1", ts=sent["ts"], text="mine, edited")
    bot = client(slack, slack.bot_token("T1"))
    assert error_of(lambda: bot.chat_delete(channel="C1", ts=sent["ts"]))["error"] == (
        "cant_delete_message"
    )
    web.chat_delete(channel="C1", ts=sent["ts"])
    # And a channel the member is not in is not theirs to post in.
    slack.add_channel("T1", "C2", "other", members=["U2"])
    assert error_of(lambda: web.chat_postMessage(channel="C2", text="x"))["error"] == (
        "not_in_channel"
    )


def test_user_token_scopes_are_enforced(slack: FakeSlack) -> None:
    web = client(slack, slack.add_user_token("T1", "U1", scopes=["im:read"]))
    answer = error_of(lambda: web.chat_postMessage(channel="C1", text="x"))
    assert answer["error"] == "missing_scope"
    assert (answer["needed"], answer["provided"]) == ("chat:write", "im:read")
    assert error_of(lambda: web.conversations_list(types="im,mpim"))["needed"] == "mpim:read"
    assert error_of(lambda: web.users_info(user="U2"))["needed"] == "users:read"


def test_a_user_lists_only_their_own_dms(slack: FakeSlack) -> None:
    mine = slack.open_private_dm("T1", ["U1", "U2"])
    group = slack.open_private_dm("T1", ["U1", "U2", "U3"])
    others = slack.open_private_dm("T1", ["U2", "U3"])
    web = client(slack, slack.add_user_token("T1", "U1"))
    listed = {c["id"]: c for c in web.conversations_list(types="im,mpim")["channels"]}
    assert set(listed) == {mine, group}
    assert listed[mine]["user"] == "U2" and listed[group]["is_mpim"]
    # The bot sees none of them; nobody posts into a DM they are not in.
    bot = client(slack, slack.bot_token("T1"))
    assert bot.conversations_list(types="im,mpim")["channels"] == []
    assert error_of(lambda: bot.conversations_info(channel=mine))["error"] == "channel_not_found"
    assert web.conversations_info(channel=mine)["channel"]["user"] == "U2"
    assert error_of(lambda: web.chat_postMessage(channel=others, text="x"))["error"] == (
        "channel_not_found"
    )


def test_dm_events_reach_the_app_only_as_subscribed_user_events(slack: FakeSlack) -> None:
    dm = slack.open_private_dm("T1", ["U1", "U2"])
    # Nobody authorized the app for this DM: no event at all.
    before = len(slack.emitted)
    slack.post_message("T1", dm, "U2", "unheard")
    assert len(slack.emitted) == before
    slack.add_user_token("T1", "U1")
    # Authorized, but the manifest has no user events.
    slack.post_message("T1", dm, "U2", "still unheard")
    assert len(slack.emitted) == before
    slack.event_settings.user_events = ("message.im",)
    slack.post_message("T1", dm, "U2", "heard")
    envelope = slack.emitted[-1]
    assert envelope["event"]["text"] == "heard" and envelope["event"]["channel_type"] == "im"
    assert envelope["authorizations"][0]["user_id"] == "U1"
    assert envelope["authorizations"][0]["is_bot"] is False
    # A group DM needs its own subscription; a DM with the bot stays a bot event.
    group = slack.open_private_dm("T1", ["U1", "U2", "U3"])
    count = len(slack.emitted)
    slack.post_message("T1", group, "U2", "group")
    assert len(slack.emitted) == count
    with_bot = slack.open_dm("T1", "U1")
    slack.post_message("T1", with_bot, "U1", "to the bot")
    assert slack.emitted[-1]["authorizations"][0]["is_bot"] is True


def test_a_revoked_user_token_is_refused(slack: FakeSlack) -> None:
    token = slack.add_user_token("T1", "U1")
    slack.revoke_user_token(token)
    assert error_of(lambda: client(slack, token).auth_test())["error"] == "token_revoked"
    assert error_of(lambda: client(slack, "xoxp-T1-U9-nope").auth_test())["error"] == (
        "invalid_auth"
    )


def test_a_user_token_revoked_by_the_app_stops_its_events(slack: FakeSlack) -> None:
    slack.event_settings.user_events = ("message.im",)
    token = slack.add_user_token("T1", "U1")
    dm = slack.open_private_dm("T1", ["U1", "U2"])
    web = client(slack, token)
    assert web.auth_revoke(test=True)["revoked"] is False
    assert web.auth_revoke()["revoked"] is True
    before = len(slack.emitted)
    slack.post_message("T1", dm, "U2", "nobody hears this")
    assert len(slack.emitted) == before
    assert error_of(lambda: web.auth_test())["error"] == "token_revoked"
