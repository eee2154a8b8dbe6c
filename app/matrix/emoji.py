"""Reaction keys: Slack shortcodes to Unicode for Matrix, and back.

Matrix reactions are keyed by the emoji itself; Slack names them. Only a common set is mapped
(no emoji database is a dependency); other shortcodes travel as ``:name:`` text keys, which
Matrix clients show as text and which map back to the same Slack name.
"""

from __future__ import annotations

_BY_NAME: dict[str, str] = {
    "+1": "👍",
    "thumbsup": "👍",
    "-1": "👎",
    "thumbsdown": "👎",
    "heart": "❤️",
    "smile": "😄",
    "smiley": "😃",
    "grinning": "😀",
    "joy": "😂",
    "laughing": "😆",
    "wink": "😉",
    "blush": "😊",
    "slightly_smiling_face": "🙂",
    "thinking_face": "🤔",
    "cry": "😢",
    "sob": "😭",
    "open_mouth": "😮",
    "scream": "😱",
    "rage": "😡",
    "tada": "🎉",
    "fire": "🔥",
    "rocket": "🚀",
    "eyes": "👀",
    "wave": "👋",
    "clap": "👏",
    "pray": "🙏",
    "ok_hand": "👌",
    "muscle": "💪",
    "100": "💯",
    "star": "⭐",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "question": "❓",
    "exclamation": "❗",
    "bulb": "💡",
    "coffee": "☕",
    "beers": "🍻",
    "see_no_evil": "🙈",
    "raised_hands": "🙌",
    "sparkles": "✨",
    "zap": "⚡",
}
# Prefer the canonical Slack name when several share a glyph.
_CANONICAL = {"👍": "+1", "👎": "-1"}
_BY_UNICODE: dict[str, str] = {}
for _name, _glyph in _BY_NAME.items():
    _BY_UNICODE.setdefault(_glyph, _name)
_BY_UNICODE.update(_CANONICAL)


def _bare(glyph: str) -> str:
    # Variation selectors differ between clients (❤ vs ❤️).
    return glyph.replace("\ufe0f", "")


_BY_BARE = {_bare(g): n for g, n in _BY_UNICODE.items()}


def to_matrix_key(name: str) -> str:
    """The Matrix reaction key for the Slack shortcode ``name`` (skin tones dropped)."""
    base = name.split("::", 1)[0]
    return _BY_NAME.get(base, f":{base}:")


def to_slack_name(key: str) -> str | None:
    """The Slack shortcode for a Matrix reaction key, or None when it has none."""
    key = key.strip()
    if len(key) > 2 and key.startswith(":") and key.endswith(":"):
        return key[1:-1]
    return _BY_UNICODE.get(key) or _BY_BARE.get(_bare(key))
