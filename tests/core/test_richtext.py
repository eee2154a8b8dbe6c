"""The neutral rich-text tree: canonical form, traversal, plain text and the JSON form."""

from __future__ import annotations

import dataclasses
import json

import pytest
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
    RichTextError,
    Strike,
    Text,
    UserMention,
)

words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
ids = st.text("ABCDEFU0123456789@:!#.", min_size=1, max_size=8)
leaves = st.one_of(
    st.builds(Text, words),
    st.builds(Code, words),
    st.builds(Pre, words, st.none() | st.sampled_from(["py", "rust"])),
    st.builds(UserMention, ids, words),
    st.builds(ChannelMention, ids, words),
    st.builds(Broadcast, st.sampled_from(rt.BROADCASTS)),
    st.builds(Emoji, st.sampled_from(["smile", "+1"]), st.none() | st.just("😄")),
    st.just(LineBreak()),
)


def _kids(inner: st.SearchStrategy[rt.Node]) -> st.SearchStrategy[tuple[rt.Node, ...]]:
    return st.lists(inner, max_size=3).map(tuple)


trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Bold, _kids(inner)),
        st.builds(Italic, _kids(inner)),
        st.builds(Strike, _kids(inner)),
        st.builds(Link, st.just("https://example.com/a?b=1&c=2"), _kids(inner)),
        st.builds(Quote, _kids(inner)),
        st.builds(ListBlock, st.lists(_kids(inner), max_size=3).map(tuple), st.booleans()),
        st.builds(Doc, _kids(inner)),
    ),
    max_leaves=12,
)
docs = st.lists(trees, max_size=4).map(lambda nodes: Doc(tuple(nodes)))
FAST = settings(max_examples=40, deadline=None)


def test_nodes_are_immutable_and_hashable() -> None:
    node = Bold((Text("a"), UserMention("U1", "Ada")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.children = ()  # type: ignore[misc]
    assert {node, Bold((Text("a"), UserMention("U1", "Ada")))} == {node}


def test_broadcast_kinds_are_closed() -> None:
    with pytest.raises(RichTextError):
        Broadcast("room")


def test_normalize_merges_text_and_drops_empty_nodes() -> None:
    tree = Doc((Text("a"), Text(""), Text("b"), Bold(()), Italic((Text(""),)), Text("c")))
    assert rt.normalize(tree) == Doc((Text("abc"),))


def test_normalize_merges_adjacent_runs_of_one_format() -> None:
    tree = Doc((Bold((Text("a"),)), Bold((Text("b"),)), Italic((Text("c"),))))
    assert rt.normalize(tree) == Doc((Bold((Text("ab"),)), Italic((Text("c"),))))


def test_normalize_turns_newlines_into_breaks_and_flattens_docs() -> None:
    tree = Doc((Text("a\nb"), Doc((Text("c"),))))
    assert rt.normalize(tree) == Doc((Text("a"), LineBreak(), Text("bc")))


def test_line_breaks_next_to_blocks_and_at_edges_are_dropped() -> None:
    tree = Doc(
        (
            LineBreak(),
            Text("a"),
            LineBreak(),
            Quote((LineBreak(), Text("q"), LineBreak())),
            LineBreak(),
            Text("b"),
            LineBreak(),
        )
    )
    assert rt.normalize(tree) == Doc((Text("a"), Quote((Text("q"),)), Text("b")))


def test_line_breaks_move_out_of_formatting() -> None:
    tree = Doc((Text("a"), Bold((LineBreak(), Text("b"), LineBreak())), Strike((Text("\n"),))))
    assert rt.normalize(tree) == Doc((Text("a"), LineBreak(), Bold((Text("b"),))))


def test_link_labelled_with_its_url_loses_the_label() -> None:
    url = "https://example.com"
    assert rt.normalize(Link(url, (Text(url),))) == Link(url)
    assert rt.normalize(Link(url, (Text("site"),))) == Link(url, (Text("site"),))


@FAST
@given(docs)
def test_normalize_is_idempotent(tree: Doc) -> None:
    once = rt.normalize(tree)
    assert rt.normalize(once) == once


@FAST
@given(docs)
def test_normalize_keeps_every_leaf(tree: Doc) -> None:
    def content(node: rt.Node) -> str:
        parts = []
        for n in rt.walk(node):
            if isinstance(n, Text):
                parts.append(n.text.replace("\n", ""))
            elif not isinstance(
                n, LineBreak | Bold | Italic | Strike | Link | Quote | ListBlock | Doc
            ):
                parts.append(repr(n))
        return "".join(parts)

    # Normalization may only drop structure without content, never content.
    assert content(rt.normalize(tree)) == content(tree)


def test_walk_is_depth_first_parents_first() -> None:
    tree = rt.doc(Bold((Text("a"), Italic((Text("b"),)))), ListBlock(((Text("c"),),)))
    kinds = [type(n).__name__ for n in rt.walk(tree)]
    assert kinds == ["Doc", "Bold", "Text", "Italic", "Text", "ListBlock", "Text"]


def test_transform_rewrites_every_user_mention() -> None:
    tree = rt.doc(
        Text("hi "),
        UserMention("U1", "Ada"),
        Quote((Bold((UserMention("U2"),)),)),
        ListBlock(((UserMention("U1", "Ada"),),)),
    )
    local = {"U1": "W9"}

    def remap(node: rt.Node) -> rt.Node:
        if isinstance(node, UserMention):
            return (
                UserMention(local[node.user_id], node.name)
                if node.user_id in local
                else (Text(f"@{node.name or node.user_id}"))
            )
        return node

    out = rt.normalize(rt.transform(tree, remap))
    assert [m.user_id for m in rt.mentions(out)] == ["W9", "W9"]
    assert "@U2" in rt.plain_text(out)
    assert [m.user_id for m in rt.mentions(tree)] == ["U1", "U2", "U1"]


def test_plain_text_is_readable() -> None:
    tree = rt.doc(
        Text("Hi "),
        UserMention("U1", "Ada"),
        Text(" see "),
        Link("https://x.io", (Text("docs"),)),
        Text(" in "),
        ChannelMention("C1"),
        Emoji("tada", "🎉"),
        Emoji("party_parrot"),
        Quote((Text("one"), LineBreak(), Text("two"))),
        ListBlock(((Text("a"),), (Code("b"),)), ordered=True),
        Pre("x = 1"),
    )
    assert rt.plain_text(tree) == (
        "Hi @Ada see docs (https://x.io) in #C1🎉:party_parrot:\n> one\n> two\n1. a\n2. b\nx = 1"
    )


def test_json_form_is_stable() -> None:
    tree = rt.doc(
        Text("a "),
        Bold((Text("b"),)),
        UserMention("U1", "Ada"),
        Emoji("tada", "🎉"),
        Pre("x", "py"),
        ListBlock(((Text("i"),),), ordered=True),
    )
    assert rt.to_json(tree) == {
        "v": 1,
        "doc": [
            "a ",
            {"t": "b", "c": ["b"]},
            {"t": "user", "id": "U1", "name": "Ada"},
            {"t": "emoji", "v": "tada", "u": "🎉"},
            {"t": "pre", "v": "x", "lang": "py"},
            {"t": "list", "o": True, "items": [["i"]]},
        ],
    }


@FAST
@given(docs)
def test_json_round_trips_through_text(tree: Doc) -> None:
    wire = json.dumps(rt.to_json(tree), ensure_ascii=False)
    assert rt.from_json(json.loads(wire)) == tree


def test_from_json_of_nothing_is_an_empty_doc() -> None:
    assert rt.from_json(None) == Doc()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"v": 2, "doc": []}, "version"),
        ([], "version"),
        ({"v": 1}, "'doc' must be a list"),
        ({"v": 1, "doc": [], "extra": 1}, "unknown fields"),
        ({"v": 1, "doc": [{"t": "blink"}]}, "unknown node type"),
        ({"v": 1, "doc": [{"t": "b", "c": ["x"], "style": "x"}]}, "unknown fields"),
        ({"v": 1, "doc": [{"t": "code", "v": 3}]}, "must be a string"),
        ({"v": 1, "doc": [{"t": "b", "c": "x"}]}, "must be a list"),
        ({"v": 1, "doc": [{"t": "bcast", "v": "room"}]}, "unknown broadcast"),
        ({"v": 1, "doc": [{"t": "list", "o": "yes", "items": []}]}, "boolean"),
        ({"v": 1, "doc": [{"t": "list", "items": [["a"], "b"]}]}, "must be a list"),
        ({"v": 1, "doc": [{"t": "user", "name": "x"}]}, "'id' must be a string"),
        ({"v": 1, "doc": [7]}, "not a rich-text node"),
    ],
)
def test_from_json_rejects_malformed_input(data: object, message: str) -> None:
    with pytest.raises(RichTextError, match=message):
        rt.from_json(data)


def test_from_json_refuses_absurd_nesting() -> None:
    node: object = "x"
    for _ in range(rt.MAX_DEPTH + 5):
        node = {"t": "b", "c": [node]}
    with pytest.raises(RichTextError, match="deeper"):
        rt.from_json({"v": 1, "doc": [node]})
