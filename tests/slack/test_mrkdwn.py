"""Slack mrkdwn <-> rich text: Slack's syntax, safe escaping, mention callbacks, round trips."""

from __future__ import annotations

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
from app.slack import mrkdwn

FAST = settings(max_examples=60, deadline=None)

# Text made of everything mrkdwn treats specially, plus whole fake entities and markup.
TRICKY = st.one_of(
    st.text("ab 1.<>&*_~`:|@#!•>\n", max_size=12),
    st.sampled_from(
        [
            "<@U1>",
            "<!here>",
            "<https://evil.example|click>",
            "*bold*",
            "_it_",
            "~s~",
            "`code`",
            "```pre```",
            ":smile:",
            "&amp;",
            "&lt;@U1&gt;",
            "> quote",
            "• item",
            "1. item",
            "\n1. item",
        ]
    ),
)
tricky_text = st.lists(TRICKY, max_size=4).map("".join)


def test_parses_slack_formatting() -> None:
    text = "*bold* _it_ ~gone~ `a<b` and :tada: :skin::skin-tone-3:"
    assert mrkdwn.parse(text) == rt.doc(
        Bold((Text("bold"),)),
        Text(" "),
        Italic((Text("it"),)),
        Text(" "),
        Strike((Text("gone"),)),
        Text(" "),
        Code("a<b"),
        Text(" and "),
        Emoji("tada"),
        Text(" "),
        Emoji("skin::skin-tone-3"),
    )


def test_formatting_only_at_word_boundaries() -> None:
    assert mrkdwn.parse("snake_case_name 2*3*4") == rt.text("snake_case_name 2*3*4")


def test_parses_entities_and_unescapes() -> None:
    text = (
        "hi <@U1> <@U2|ada> in <#C1|general> <!here> <!channel> <!everyone> "
        "<!subteam^S1|@devs> <https://x.io/?a=1&amp;b=2|the &lt;docs&gt;> <https://y.io> a &amp; b"
    )
    assert mrkdwn.parse(text) == rt.doc(
        Text("hi "),
        UserMention("U1"),
        Text(" "),
        UserMention("U2", "ada"),
        Text(" in "),
        ChannelMention("C1", "general"),
        Text(" "),
        Broadcast("here"),
        Text(" "),
        Broadcast("channel"),
        Text(" "),
        Broadcast("everyone"),
        Text(" @devs "),
        Link("https://x.io/?a=1&b=2", (Text("the <docs>"),)),
        Text(" "),
        Link("https://y.io"),
        Text(" a & b"),
    )


def test_parses_quotes_lists_and_code_blocks() -> None:
    text = "intro\n&gt; quoted *b*\n&gt; more\n• one\n• two\n1. first\n2. second\n```x = 1\ny```"
    assert mrkdwn.parse(text) == rt.doc(
        Text("intro"),
        Quote((Text("quoted "), Bold((Text("b"),)), LineBreak(), Text("more"))),
        ListBlock(((Text("one"),), (Text("two"),))),
        ListBlock(((Text("first"),), (Text("second"),)), ordered=True),
        Pre("x = 1\ny"),
    )


def test_numbers_that_do_not_count_from_one_are_text() -> None:
    assert mrkdwn.parse("2. two\n3. three") == rt.text("2. two\n3. three")


def test_renders_every_node() -> None:
    tree = rt.doc(
        Bold((Text("b"),)),
        Text(" "),
        Italic((Text("i"),)),
        Text(" "),
        Strike((Text("s"),)),
        Text(" "),
        Code("c"),
        Text(" "),
        Link("https://x.io/?a=1&b=2", (Text("docs"),)),
        Text(" "),
        UserMention("U1", "Ada"),
        ChannelMention("C1", "general"),
        Broadcast("here"),
        Emoji("tada", "🎉"),
        Quote((Text("q"), LineBreak(), Text("r"))),
        ListBlock(((Text("a"),), (Text("b"),)), ordered=True),
        Pre("x < 1"),
    )
    assert mrkdwn.render(tree) == (
        "*b* _i_ ~s~ `c` <https://x.io/?a=1&amp;b=2|docs> <@U1|Ada><#C1|general><!here>:tada:\n"
        "> q\n> r\n"
        "1. a\n2. b\n"
        "```\nx &lt; 1\n```"
    )


def test_mentions_go_through_the_callbacks() -> None:
    tree = rt.doc(
        Text("cc "), UserMention("U1", "Ada"), Text(" "), ChannelMention("C1"), Broadcast("here")
    )
    renderers = mrkdwn.Renderers(
        user=lambda m: mrkdwn.escape(f"@{m.name} (Acme)"),
        channel=lambda m: "<#C9>",
        broadcast=lambda b: f"@{b.kind}",
    )
    assert mrkdwn.render(tree, renderers) == "cc @Ada (Acme) <#C9>@here"


def test_user_text_cannot_inject_entities_or_formatting() -> None:
    hostile = "<@U1> <!channel> *b* `c` :smile: &amp;"
    out = mrkdwn.render(rt.text(hostile))
    assert "<" not in out
    assert mrkdwn.parse(out) == rt.text(hostile)


def test_link_urls_cannot_break_out_of_their_entity() -> None:
    out = mrkdwn.render(rt.doc(Link("https://x.io/a|b><@U1>", (Text("x|y"),))))
    assert out.count("<") == 1
    assert out.count(">") == 1
    assert "<@U1" not in out


@FAST
@given(tricky_text)
def test_any_text_survives_as_text(value: str) -> None:
    rendered = mrkdwn.render(rt.text(value))
    assert "<" not in rendered
    assert mrkdwn.parse(rendered) == rt.text(value)


@FAST
@given(st.text(max_size=60) | tricky_text)
def test_parse_and_render_never_raise(value: str) -> None:
    mrkdwn.render(mrkdwn.parse(value))


# -- round trip ------------------------------------------------------------------------------
# What mrkdwn can express (see the module docstring): formatting starts and ends at word
# boundaries (here: inner text starts and ends with a letter, and inline atoms are separated by
# spaces), formatting, code and list items do not span lines, quotes hold inline content only,
# lists do not nest, two lists or quotes in a row are one, code blocks have no language and no
# ``` inside, inline code has no backtick, link labels no "|".

letters = st.text("abcXYZ", min_size=1, max_size=3)
inner = st.builds(
    lambda a, mid, b: a + mid + b, letters, st.text("ab *_~:<>&", max_size=5), letters
)
names = st.text("Ada Lovelace&<>", max_size=8)
atoms = st.one_of(
    st.builds(Code, st.text("ab *_<>&:", min_size=1, max_size=6)),
    st.builds(UserMention, st.sampled_from(["U1", "W2"]), names),
    st.builds(ChannelMention, st.sampled_from(["C1", "G2"]), names),
    st.builds(Broadcast, st.sampled_from(rt.BROADCASTS)),
    st.builds(Emoji, st.sampled_from(["smile", "+1", "skin-tone-2"])),
    st.builds(Link, st.sampled_from(["https://x.io/?a=1&b=2", "mailto:a@b.c"]), st.just(())),
    st.builds(lambda url, label: Link(url, (Text(label),)), st.just("https://y.io"), inner),
    st.builds(lambda v: Bold((Text(v),)), inner),
    st.builds(lambda v: Italic((Text(v),)), inner),
    st.builds(lambda v: Strike((Text(v),)), inner),
    st.builds(lambda v: Bold((Italic((Text(v),)),)), inner),
)
plain = st.text("ab <>&*_~`:|•1.", min_size=1, max_size=8)


@st.composite
def lines(draw: st.DrawFn, *, breaks: bool) -> tuple[rt.Node, ...]:
    parts: list[rt.Node] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "atom", "break"] if breaks else ["text", "atom"]))
        if kind == "break":
            parts.append(LineBreak())
        elif kind == "text":
            parts.append(Text(draw(plain)))
        else:
            parts.extend((Text(" "), draw(atoms), Text(" ")))
    return tuple(parts)


blocks = st.one_of(
    lines(breaks=True),
    lines(breaks=True).map(lambda c: (Quote(c),)),
    st.builds(
        lambda items, ordered: (ListBlock(tuple(items), ordered),),
        st.lists(lines(breaks=False), min_size=1, max_size=3),
        st.booleans(),
    ),
    st.builds(
        lambda t: (Pre(t),), st.text("ab <>&*\n`:", max_size=8).filter(lambda t: "```" not in t)
    ),
)


def _separate(parts: list[tuple[rt.Node, ...]]) -> Doc:
    flat = rt.normalize(Doc(tuple(n for part in parts for n in part)))
    assert isinstance(flat, Doc)
    nodes: list[rt.Node] = []
    for node in flat.children:
        if nodes and isinstance(node, Quote | ListBlock) and type(nodes[-1]) is type(node):
            nodes.append(Text("between"))  # adjacent quotes or lists read back as one
        nodes.append(node)
    return Doc(tuple(nodes))


mrkdwn_docs = st.lists(blocks, min_size=1, max_size=4).map(_separate)


@FAST
@given(mrkdwn_docs)
def test_round_trip(tree: Doc) -> None:
    canonical = rt.normalize(tree)
    assert mrkdwn.parse(mrkdwn.render(canonical)) == canonical
