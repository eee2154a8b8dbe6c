"""Slack rich_text blocks <-> rich text: the shapes Slack sends, nested lists, round trips."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import richtext as rt
from app.core.richtext import (
    Bold,
    Broadcast,
    ChannelMention,
    Code,
    Doc,
    Emoji,
    Italic,
    LineBreak,
    Link,
    ListBlock,
    Pre,
    Quote,
    Strike,
    Text,
    UserMention,
)
from app.slack.rich_text import from_blocks, to_blocks

FAST = settings(max_examples=60, deadline=None)


def _text(value: str, **style: bool) -> dict[str, Any]:
    return {"type": "text", "text": value, **({"style": style} if style else {})}


def _section(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich_text_section", "elements": list(elements)}


def _list(style: str, indent: int, *items: str) -> dict[str, Any]:
    return {
        "type": "rich_text_list",
        "style": style,
        "indent": indent,
        "elements": [_section(_text(i)) for i in items],
    }


def test_reads_a_message_as_slack_sends_it() -> None:
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "ignored"}},
        {
            "type": "rich_text",
            "block_id": "b1",
            "elements": [
                _section(
                    _text("Hi "),
                    {"type": "user", "user_id": "U1"},
                    _text(" see "),
                    {
                        "type": "link",
                        "url": "https://x.io",
                        "text": "docs",
                        "style": {"bold": True},
                    },
                    _text(" in "),
                    {"type": "channel", "channel_id": "C1"},
                    _text("\nnow ", italic=True),
                    _text("x", bold=True, italic=True, strike=True),
                    _text("y", code=True),
                    {"type": "emoji", "name": "thumbsup", "unicode": "1f44d"},
                    {"type": "emoji", "name": "wave", "unicode": "1f44b-1f3fd"},
                    {"type": "emoji", "name": "partyparrot"},
                    {"type": "broadcast", "range": "here"},
                    {"type": "usergroup", "usergroup_id": "S1"},
                    {"type": "date", "timestamp": 1, "format": "{date}", "fallback": "Jan 1"},
                    {"type": "future_element", "text": "kept"},
                ),
                {"type": "rich_text_quote", "elements": [_text("quoted\nmore")]},
                {"type": "rich_text_preformatted", "elements": [_text("x = 1\n")]},
            ],
        },
    ]
    assert from_blocks(blocks) == rt.doc(
        Text("Hi "),
        UserMention("U1"),
        Text(" see "),
        Bold((Link("https://x.io", (Text("docs"),)),)),
        Text(" in "),
        ChannelMention("C1"),
        LineBreak(),
        Italic((Text("now "),)),
        Bold((Italic((Strike((Text("x"),)),)),)),
        Code("y"),
        Emoji("thumbsup", "👍"),
        Emoji("wave", "👋🏽"),
        Emoji("partyparrot"),
        Broadcast("here"),
        Text("@S1Jan 1kept"),
        Quote((Text("quoted"), LineBreak(), Text("more"))),
        Pre("x = 1\n"),
    )


def test_indented_lists_fold_into_nested_lists() -> None:
    blocks = [
        {
            "type": "rich_text",
            "elements": [
                _list("bullet", 0, "a", "b"),
                _list("ordered", 1, "b1", "b2"),
                _list("bullet", 2, "deep"),
                _list("bullet", 0, "c"),
            ],
        }
    ]
    assert from_blocks(blocks) == rt.doc(
        ListBlock(
            (
                (Text("a"),),
                (
                    Text("b"),
                    ListBlock(
                        ((Text("b1"),), (Text("b2"), ListBlock(((Text("deep"),),)))),
                        ordered=True,
                    ),
                ),
                (Text("c"),),
            )
        )
    )


def test_malformed_blocks_do_not_crash() -> None:
    blocks: list[Any] = [
        {"type": "rich_text", "elements": [None, 3, {"type": "rich_text_section"}]},
        {"type": "rich_text", "elements": [{"type": "rich_text_list", "indent": "x"}]},
        {"type": "rich_text", "elements": [_section({"type": "emoji", "unicode": "zz"})]},
        {"type": "rich_text", "elements": [_section({"type": "text", "style": "bold"})]},
        "junk",
    ]
    assert from_blocks(blocks) == Doc((Emoji(""),))


def test_writes_blocks_for_posting() -> None:
    tree = rt.doc(
        Text("hi "),
        Bold((Text("b "), Italic((Text("bi"),)))),
        Code("c"),
        Link("https://x.io", (Text("docs"),)),
        UserMention("U9"),
        Emoji("wave", "👋🏽"),
        ListBlock(((Text("a"), ListBlock(((Text("a1"),),))), (Text("b"),)), ordered=True),
        Pre("x"),
    )
    assert to_blocks(tree) == [
        {
            "type": "rich_text",
            "elements": [
                _section(
                    _text("hi "),
                    _text("b ", bold=True),
                    _text("bi", bold=True, italic=True),
                    _text("c", code=True),
                    {"type": "link", "url": "https://x.io", "text": "docs"},
                    {"type": "user", "user_id": "U9"},
                    {"type": "emoji", "name": "wave", "unicode": "1f44b-1f3fd"},
                ),
                _list("ordered", 0, "a"),
                _list("bullet", 1, "a1"),
                {**_list("ordered", 0, "b"), "offset": 1},
                {"type": "rich_text_preformatted", "elements": [_text("x")]},
            ],
        }
    ]
    assert to_blocks(Doc()) == []


# Round trip. What blocks cannot carry back: styles nest in one order (bold > italic >
# strike), link labels are plain text, quotes and list items hold inline content (plus nested
# lists in items), code blocks have no language, mentions carry no names (Slack sends ids only),
# two lists in a row are one.

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
atoms = st.one_of(
    st.builds(Text, words),
    st.builds(Code, words),
    st.just(LineBreak()),
    st.builds(UserMention, st.sampled_from(["U1", "W2"])),
    st.builds(ChannelMention, st.sampled_from(["C1", "G2"])),
    st.builds(Broadcast, st.sampled_from(rt.BROADCASTS)),
    st.builds(Emoji, st.sampled_from(["wave", "x"]), st.none() | st.sampled_from(["👋🏽", "👍"])),
    st.builds(Link, st.just("https://x.io/?a=1"), st.just(()) | words.map(lambda w: (Text(w),))),
)


def _styled(node: rt.Node, styles: tuple[bool, bool, bool]) -> rt.Node:
    if not isinstance(node, Text | Code | Link):
        return node  # Slack styles text and links only
    bold, italic, strike = styles
    if strike:
        node = Strike((node,))
    if italic:
        node = Italic((node,))
    if bold:
        node = Bold((node,))
    return node


inline = st.builds(_styled, atoms, st.tuples(st.booleans(), st.booleans(), st.booleans()))
runs = st.lists(inline, min_size=1, max_size=4).map(tuple)
items = st.recursive(
    runs,
    lambda inner: st.builds(
        lambda run, nested, ordered: (*run, ListBlock(tuple(nested), ordered)),
        runs,
        st.lists(inner, min_size=1, max_size=2),
        st.booleans(),
    ),
    max_leaves=4,
)
blocks = st.one_of(
    runs,
    runs.map(lambda r: (Quote(r),)),
    st.builds(
        lambda its, ordered: (ListBlock(tuple(its), ordered),),
        st.lists(items, min_size=1, max_size=3),
        st.booleans(),
    ),
    words.map(lambda w: (Pre(w),)),
)


@FAST
@given(st.lists(blocks, min_size=1, max_size=4))
def test_round_trip(parts: list[tuple[rt.Node, ...]]) -> None:
    flat = rt.normalize(Doc(tuple(n for part in parts for n in part)))
    assert isinstance(flat, Doc)
    nodes: list[rt.Node] = []
    for node in flat.children:
        if nodes and isinstance(node, ListBlock) and isinstance(nodes[-1], ListBlock):
            nodes.append(Text("between"))  # two lists in a row read back as one
        nodes.append(node)
    canonical = rt.normalize(Doc(tuple(nodes)))
    assert from_blocks(to_blocks(canonical)) == canonical
