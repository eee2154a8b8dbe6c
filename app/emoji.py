"""Emoji names: Slack shortcodes to Unicode (Matrix's reaction keys), and back, for every emoji.

Network-neutral on purpose: the Matrix side keys reactions by these, and the Slack side matches
the echo of a reaction it made (Slack reports one emoji under several names) by the same table.

Matrix reactions are keyed by the emoji itself; Slack names them (``sweat_smile``, with
``::skin-tone-2``…``-6`` for the Fitzpatrick modifiers). The full Unicode emoji set comes from the
maintained ``emoji`` package, whose aliases are the GitHub/Slack shortcodes; a few Slack names it
spells differently are mapped here. A name that is no Unicode emoji — a workspace's custom emoji
— travels as a ``:name:`` text key, which Matrix clients show as text and which maps back to the
same Slack name: a reaction is never dropped for want of a glyph.
"""

from __future__ import annotations

import functools
import re

import emoji as emoji_data

__all__ = ["to_matrix_key", "to_slack_name"]

# Slack's skin-tone suffix number -> the Fitzpatrick modifier (Slack's tones start at 2).
_TONES = {str(n): chr(0x1F3FB + n - 2) for n in range(2, 7)}
_TONE_OF = {glyph: n for n, glyph in _TONES.items()}
# Slack names the `emoji` package does not know as aliases.
_SLACK_ONLY = {
    "simple_smile": "🙂",
    "slightly_smiling_face": "🙂",
    "thinking_face": "🤔",
    "white_frowning_face": "☹️",
    "heart": "❤️",
}
# The shortest, most common Slack name for glyphs with several.
_PREFERRED = {"👍": "+1", "👎": "-1", "❤": "heart", "🙂": "slightly_smiling_face"}
_VS16 = "\ufe0f"
# Slack's emoji names are at most this long.
MAX_NAME = 100


@functools.cache
def _glyph(name: str) -> str | None:
    if name in _SLACK_ONLY:
        return _SLACK_ONLY[name]
    for language in ("alias", "en"):
        glyph = emoji_data.emojize(f":{name}:", language=language)
        if glyph != f":{name}:" and emoji_data.is_emoji(glyph):
            return glyph
    return None


@functools.cache
def _name(glyph: str) -> str | None:
    bare = glyph.replace(_VS16, "")
    if bare in _PREFERRED:
        return _PREFERRED[bare]
    for candidate in (glyph, bare, bare + _VS16):
        if candidate in emoji_data.EMOJI_DATA:
            data = emoji_data.EMOJI_DATA[candidate]
            aliases = data.get("alias") or []
            return str((aliases[0] if aliases else data["en"]).strip(":"))
    return None


def to_matrix_key(name: str) -> str:
    """The Matrix reaction key for the Slack shortcode ``name`` (``+1::skin-tone-4`` -> 👍🏽)."""
    base, _, tone = name.partition("::")
    glyph = _glyph(base)
    if glyph is None:
        return f":{base}:"
    modifier = _TONES.get(tone.removeprefix("skin-tone-")) if tone else None
    if modifier:
        bare = glyph.replace(_VS16, "")
        # The modifier follows the person it tones: the first code point of a ZWJ sequence.
        for toned in (bare + modifier, bare[0] + modifier + bare[1:]):
            if emoji_data.is_emoji(toned):
                return toned
    return glyph


def to_slack_name(key: str) -> str | None:
    """The Slack shortcode for a Matrix reaction key (``👍🏽`` -> ``+1::skin-tone-4``).

    A ``:name:`` key (a custom emoji) is that name. Free text (clients let people react with
    any word) becomes a name of its own: Slack refuses it as a reaction and the deliverer says
    it in the thread instead. Returns None only for an empty key.
    """
    key = key.strip()
    if len(key) > 2 and key.startswith(":") and key.endswith(":"):
        return key[1:-1]
    tones = [ch for ch in key if ch in _TONE_OF]
    if len(tones) == 1:
        base = _name(key.replace(tones[0], ""))
        if base is not None:
            return f"{base}::skin-tone-{_TONE_OF[tones[0]]}"
    name = _name(key)
    if name is not None:
        return name
    text = re.sub(r"[^a-z0-9_+\-]+", "_", key.lower()).strip("_")[:MAX_NAME]
    return text or None
