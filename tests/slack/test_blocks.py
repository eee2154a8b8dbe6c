"""Other apps' messages (Block Kit blocks, legacy attachments) keep their content (#17 item 1)."""

from __future__ import annotations

from app.core.richtext import Bold, Link, Quote, plain_text, walk
from app.matrix import html as matrix_html
from app.slack.inbound import body_of

GITHUB_LIKE = {
    "type": "message",
    "subtype": "bot_message",
    "text": "",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy finished"}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*api* deployed by <https://ci.example/1|run 1>"},
            "fields": [
                {"type": "mrkdwn", "text": "*Env:* prod"},
                {"type": "plain_text", "text": "Took 3m"},
            ],
            "accessory": {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open"},
                "url": "https://ci.example/1/open",
            },
        },
        {"type": "divider"},
        {
            "type": "context",
            "elements": [
                {"type": "image", "image_url": "https://x/i.png", "alt_text": "ci"},
                {"type": "mrkdwn", "text": "triggered by ada"},
            ],
        },
        {
            "type": "image",
            "image_url": "https://x/graph.png",
            "alt_text": "latency graph",
            "title": {"type": "plain_text", "text": "Latency"},
        },
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "text": {"type": "plain_text", "text": "Reject"}},
            ],
        },
    ],
}

JIRA_LIKE = {
    "type": "message",
    "subtype": "bot_message",
    "text": "",
    "attachments": [
        {
            "fallback": "PROJ-1 Broken login",
            "pretext": "New issue",
            "author_name": "Jira",
            "title": "PROJ-1 Broken login",
            "title_link": "https://jira.example/PROJ-1",
            "text": "Users _cannot_ log in",
            "fields": [{"title": "Priority", "value": "High", "short": True}],
            "footer": "Jira Cloud",
        },
        # An unfurled link preview is not content of its own.
        {"from_url": "https://example.com", "title": "Example Domain", "text": "preview"},
    ],
}


def test_every_block_kind_is_rendered() -> None:
    body = body_of(GITHUB_LIKE)
    text = plain_text(body)
    for words in (
        "Deploy finished",
        "api",
        "run 1",
        "Env:",
        "prod",
        "Took 3m",
        "Open",
        "triggered by ada",
        "ci",
        "Latency",
        "[Approve]",
        "[Reject]",
        "———",
    ):
        assert words in text, words
    links = {n.url for n in walk(body) if isinstance(n, Link)}
    assert {"https://ci.example/1", "https://ci.example/1/open", "https://x/graph.png"} <= links
    assert any(isinstance(n, Bold) and "Deploy finished" in plain_text(n) for n in walk(body))
    rendered = matrix_html.render(body)
    assert "<strong>Deploy finished</strong>" in rendered.formatted_body
    assert 'href="https://ci.example/1"' in rendered.formatted_body


def test_legacy_attachments_are_rendered_and_unfurls_skipped() -> None:
    body = body_of(JIRA_LIKE)
    text = plain_text(body)
    for words in ("New issue", "Jira", "PROJ-1 Broken login", "cannot", "Priority", "High"):
        assert words in text, words
    assert "preview" not in text and "Example Domain" not in text
    assert any(isinstance(n, Quote) for n in walk(body))
    assert "https://jira.example/PROJ-1" in {n.url for n in walk(body) if isinstance(n, Link)}
    assert "<blockquote>" in matrix_html.render(body).formatted_body


def test_fallback_text_when_blocks_say_nothing() -> None:
    message = {"text": "plain fallback", "blocks": [{"type": "divider_x_unknown"}]}
    assert plain_text(body_of(message)) == "plain fallback"
    only_fallback = {"text": "", "attachments": [{"fallback": "just this"}]}
    assert "just this" in plain_text(body_of(only_fallback))
