"""Which reaction names the fake accepts: Slack's standard emoji (a common subset) plus the
workspace's custom emoji.

``reactions.add`` answers ``invalid_name`` when the emoji does not exist in the workspace
(https://docs.slack.dev/reference/methods/reactions.add — "invalid_name: Value passed for
name was invalid"); custom emoji exist only where they were added, which is why a reaction
relayed from another workspace can fail. Slack's standard set is Unicode's emoji under their
GitHub-style shortcodes (the maintained ``emoji`` package's aliases and English names), plus a
few Slack-only spellings listed here; skin tones are ``::skin-tone-2`` … ``-6``.
"""

from __future__ import annotations

import functools
import re

import emoji as emoji_data

# Common names, and Slack spellings the emoji package does not know.
STANDARD: frozenset[str] = frozenset(
    """
    +1 -1 100 thumbsup thumbsdown heart heart_eyes broken_heart orange_heart yellow_heart
    green_heart blue_heart purple_heart black_heart white_heart sparkling_heart two_hearts
    smile smiley grinning grin joy rofl laughing sweat_smile wink blush innocent
    slightly_smiling_face upside_down_face relaxed yum relieved kissing_heart sunglasses
    smirk neutral_face expressionless unamused roll_eyes thinking_face grimacing
    face_with_rolling_eyes hugging_face zipper_mouth_face nerd_face partying_face
    star-struck cry sob open_mouth hushed astonished flushed scream fearful cold_sweat
    disappointed worried angry rage triumph sleeping sleepy mask dizzy_face exploding_head
    skull poop clown_face ghost alien robot_face smiley_cat see_no_evil hear_no_evil
    speak_no_evil wave raised_hand hand ok_hand v crossed_fingers point_up point_down
    point_left point_right fist facepunch punch clap raised_hands open_hands pray handshake
    muscle writing_hand eyes eye brain tada confetti_ball balloon gift trophy medal
    first_place_medal fire rocket star star2 sparkles zap boom collision dizzy sunny
    cloud umbrella snowflake rainbow ocean coffee tea beer beers wine_glass cocktail pizza
    hamburger cake birthday cookie apple white_check_mark heavy_check_mark
    ballot_box_with_check x negative_squared_cross_mark warning question grey_question
    exclamation grey_exclamation bangbang interrobang bulb memo pencil pencil2 book books
    bookmark link paperclip pushpin round_pushpin lock unlock key hammer wrench gear
    shield mag bell no_bell loudspeaker mega speech_balloon thought_balloon hourglass
    stopwatch alarm_clock calendar date chart_with_upwards_trend chart_with_downwards_trend
    bar_chart clipboard package email envelope inbox_tray outbox_tray computer
    keyboard phone iphone camera tv bug ladybug bee snake turtle dog cat panda_face
    penguin unicorn_face rose sunflower tulip seedling evergreen_tree cactus
    earth_americas globe_with_meridians arrow_up arrow_down arrow_left arrow_right
    arrows_counterclockwise repeat recycle heavy_plus_sign heavy_minus_sign
    heavy_multiplication_x red_circle large_blue_circle white_circle black_circle
    large_green_circle large_yellow_circle large_orange_circle no_entry no_entry_sign
    stop_sign construction rotating_light checkered_flag triangular_flag_on_post
    """.split()
)

_NAME = re.compile(r"^([a-z0-9_+'\-]+?)(::skin-tone-[2-6])?$")


def exists(name: str, custom: dict[str, str]) -> bool:
    """True if ``name`` (optionally with a ``::skin-tone-N`` suffix) is an emoji here."""
    match = _NAME.match(name)
    if match is None:
        return False
    base = match.group(1)
    return base in custom or base in STANDARD or _unicode(base)


@functools.cache
def _unicode(name: str) -> bool:
    for language in ("alias", "en"):
        glyph = emoji_data.emojize(f":{name}:", language=language)
        if glyph != f":{name}:" and emoji_data.is_emoji(glyph):
            return True
    return False
