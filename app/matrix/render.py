"""Rich-text bodies to Matrix message content (``body`` + ``org.matrix.custom.html``).

Mentions become pills to the ghost (or the real Matrix user), broadcasts become ``@room`` only
where the sync allows them, Slack emoji shortcodes become Unicode; :mod:`app.matrix.html` does
the rendering and owns escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from html import escape
from typing import Any

from app.core import richtext
from app.core.endpoints import Endpoint, Network
from app.core.richtext import ChannelMention, Emoji, Node, UserMention
from app.emoji import to_matrix_key
from app.matrix import html
from app.matrix.ids import BridgeIds


class MatrixRenderer:
    """Builds ``m.room.message`` content for one target room."""

    def __init__(self, ids: BridgeIds) -> None:
        self._ids = ids

    def _pills(self, source: Endpoint, allow_broadcast: bool) -> html.Pills:
        def user(mention: UserMention) -> html.Pill | None:
            label = mention.name or mention.user_id
            if mention.user_id.startswith("@") and ":" in mention.user_id:
                return html.Pill(mention.user_id, label)
            if source.network is Network.SLACK:
                return html.Pill(self._ids.slack_ghost(source.slack_team, mention.user_id), label)
            return None

        def channel(mention: ChannelMention) -> html.Pill | None:
            # Channel ids of another network mean nothing here: the name is shown as text.
            if mention.channel_id[:1] in ("!", "#") and ":" in mention.channel_id:
                return html.Pill(mention.channel_id, mention.name or mention.channel_id)
            return None

        return html.Pills(user=user, channel=channel, room=lambda _b: allow_broadcast)

    def message(
        self,
        body: richtext.Node,
        *,
        source: Endpoint,
        allow_broadcast: bool = False,
        emoticons: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Content for ``body`` written at ``source``.

        Args:
            emoticons: custom emoji name -> ``mxc://`` image, shown inline as images.

        Returns:
            ``msgtype``/``body``/``format``/``formatted_body`` plus ``m.mentions``.
        """

        def emoji(node: Node) -> Node:
            if isinstance(node, Emoji) and not node.unicode:
                key = to_matrix_key(node.name)
                return Emoji(node.name, None if key.startswith(":") else key)
            return node

        tree = richtext.transform(body, emoji)
        pills = self._pills(source, allow_broadcast)
        if emoticons:
            images = dict(emoticons)
            pills = replace(pills, emoticon=lambda e: images.get(e.name))
        out = html.render(tree, pills)
        content: dict[str, Any] = {"msgtype": "m.text", "body": out.body}
        if out.formatted_body and out.formatted_body != escape(out.body):
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = out.formatted_body
        mentions: dict[str, Any] = {"user_ids": list(out.user_ids)}
        if out.room:
            mentions["room"] = True
        content["m.mentions"] = mentions
        return content


def edit_content(new: dict[str, Any], original_event_id: str) -> dict[str, Any]:
    """An ``m.replace`` edit of ``original_event_id`` carrying ``new`` as the new content."""
    out: dict[str, Any] = {
        "msgtype": new.get("msgtype", "m.text"),
        "body": "* " + new["body"],
        "m.new_content": {k: v for k, v in new.items() if k != "m.mentions"},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original_event_id},
    }
    if "formatted_body" in new:
        out["format"] = "org.matrix.custom.html"
        out["formatted_body"] = "* " + new["formatted_body"]
    # Mentions of an edit apply only to people newly mentioned; keep it quiet.
    out["m.mentions"] = {}
    return out


def thread_relation(root_event_id: str) -> dict[str, Any]:
    """``m.thread`` with the reply fallback for clients without thread support."""
    return {
        "rel_type": "m.thread",
        "event_id": root_event_id,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": root_event_id},
    }


def media_msgtype(mimetype: str) -> str:
    major = mimetype.split("/", 1)[0]
    return {"image": "m.image", "video": "m.video", "audio": "m.audio"}.get(major, "m.file")
