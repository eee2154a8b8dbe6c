"""The key of an ``m.reaction``, as the emoji names of :mod:`app.emoji` read it."""

from __future__ import annotations

from typing import Any

__all__ = ["reaction_key"]


def reaction_key(content: dict[str, Any]) -> str:
    """The key of an ``m.reaction``'s content, with an image-pack emoji as ``:shortcode:``.

    A custom emoji reaction is keyed by its ``mxc://`` image, which means nothing to Slack; its
    shortcode rides along (``com.beeper.reaction.shortcode``, MSC4027's ``shortcode``) and is
    what reaches Slack as ``:name:``.
    """
    relation = content.get("m.relates_to")
    key = str((relation.get("key") if isinstance(relation, dict) else None) or "")
    if key.startswith("mxc://"):
        short = content.get("com.beeper.reaction.shortcode") or content.get("shortcode")
        if isinstance(short, str) and short.strip(":").strip():
            return f":{short.strip(':').strip()}:"
    return key
