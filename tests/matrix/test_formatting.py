"""Slack mrkdwn -> core tree -> Matrix content -> core tree, as the bridge converts messages.

The round trip is checked on the generated mrkdwn documents of ``tests/slack/test_mrkdwn.py``
(what mrkdwn can express). Across networks, entities change meaning on purpose: a Slack user
mention becomes a pill to that user's ghost, emoji become Unicode (or ``:name:`` text), and
channel mentions and disallowed broadcasts become plain text; everything else comes back equal.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import richtext as rt
from app.core.endpoints import Endpoint
from app.core.richtext import Broadcast, ChannelMention, Doc, Emoji, Text, UserMention
from app.emoji import to_matrix_key
from app.matrix.ids import BridgeIds
from app.matrix.inbound import body_of
from app.matrix.render import MatrixRenderer
from app.slack import mrkdwn
from tests.slack.test_mrkdwn import mrkdwn_docs

IDS = BridgeIds(server_name="hs.example")
SOURCE = Endpoint.slack("T1", "C1")
RENDERER = MatrixRenderer(IDS)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_matrix_sees_it(tree: rt.Node) -> rt.Node:
    def change(node: rt.Node) -> rt.Node:
        match node:
            case UserMention(user_id=uid, name=name):
                return UserMention(IDS.slack_ghost("T1", uid), name or uid)
            case ChannelMention(channel_id=cid, name=name):
                return Text(f"#{name or cid}")
            case Broadcast(kind=kind):
                return Text(f"@{kind}")
            case Emoji(name=name, unicode=uni):
                return Text(uni or to_matrix_key(name))
        return node

    return rt.normalize(rt.transform(tree, change))


@FAST
@given(mrkdwn_docs)
def test_mrkdwn_to_matrix_and_back(tree: Doc) -> None:
    parsed = mrkdwn.parse(mrkdwn.render(rt.normalize(tree)))
    content = RENDERER.message(parsed, source=SOURCE)
    assert body_of(content) == as_matrix_sees_it(parsed)


@FAST
@given(st.text(max_size=40))
def test_any_slack_text_is_safe_html(value: str) -> None:
    content = RENDERER.message(mrkdwn.parse(value), source=SOURCE)
    html = content.get("formatted_body", "")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    body_of(content)  # never raises


def test_mentions_pills_and_broadcasts() -> None:
    tree = rt.doc(
        UserMention("U1", "Ada"),
        Text(" "),
        UserMention("@bob:hs.example", "Bob"),
        Text(" "),
        Broadcast("here"),
    )
    quiet = RENDERER.message(tree, source=SOURCE)
    assert quiet["m.mentions"] == {"user_ids": ["@slack_t1_u1:hs.example", "@bob:hs.example"]}
    assert "@here" in quiet["body"] and "@room" not in quiet["body"]
    loud = RENDERER.message(tree, source=SOURCE, allow_broadcast=True)
    assert loud["m.mentions"]["room"] is True and "@room" in loud["body"]


def test_plain_text_has_no_formatted_body() -> None:
    content = RENDERER.message(rt.text("just <text> & more"), source=SOURCE)
    assert content == {
        "msgtype": "m.text",
        "body": "just <text> & more",
        "m.mentions": {"user_ids": []},
    }


def test_slack_emoji_become_unicode() -> None:
    content = RENDERER.message(rt.doc(Emoji("tada"), Emoji("partyparrot")), source=SOURCE)
    assert content["body"] == "🎉:partyparrot:"
