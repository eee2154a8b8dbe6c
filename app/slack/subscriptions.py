"""The one table of Slack events syncbot subscribes to, and who handles each.

The manifest's ``bot_events`` and ``user_events`` and the event dispatch all come from
:data:`SUBSCRIPTIONS`: a handler can only be registered for an event type listed here
(:meth:`SlackEvents.on` refuses others), and a test assembles the app and checks that every
listed type has a handler — so nothing is subscribed that nobody reads (``team_join`` was), and
nothing is handled that Slack never sends (``member_left_channel`` was).

Subscription names and the event types they deliver:
https://api.slack.com/events (``message.channels`` delivers ``message`` events of public
channels, ``message.groups`` of private ones).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BOT_EVENTS",
    "DELIVERED",
    "SUBSCRIPTIONS",
    "USER_EVENTS",
    "Subscription",
    "subscription_of",
]


@dataclass(frozen=True, slots=True)
class Subscription:
    """One ``bot_events`` entry of the manifest."""

    name: str
    # The ``type`` of the events it delivers.
    event: str
    # Which part of syncbot handles them (documentation; the test checks a handler exists).
    handled_by: str
    # ``channel_type`` of the message events it delivers (``message.*`` only).
    channel_type: str | None = None
    # Also a ``user_events`` entry: delivered for the conversations of members who gave the
    # app a user token (``login token``), with that member in ``authorizations``.
    user: bool = False


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("app_home_opened", "app_home_opened", "App Home"),
    Subscription("app_uninstalled", "app_uninstalled", "install lifecycle"),
    Subscription("tokens_revoked", "tokens_revoked", "install lifecycle"),
    Subscription("channel_archive", "channel_archive", "relay (pause), portals"),
    Subscription("channel_rename", "channel_rename", "relay, portals"),
    Subscription("channel_unarchive", "channel_unarchive", "relay (resume), portals"),
    Subscription("group_archive", "group_archive", "relay (pause), portals"),
    Subscription("group_rename", "group_rename", "relay, portals"),
    Subscription("group_unarchive", "group_unarchive", "relay (resume), portals"),
    Subscription(
        "member_joined_channel", "member_joined_channel", "held channels, strays, portals"
    ),
    Subscription("member_left_channel", "member_left_channel", "strays, portal members"),
    Subscription("message.channels", "message", "relay, portals", channel_type="channel"),
    Subscription("message.groups", "message", "relay, portals", channel_type="group"),
    # Direct messages to the bot: portals for the workspace's logged-in Matrix users; as user
    # events, the DMs of a person logged in with their own token: portals for them alone.
    Subscription("message.im", "message", "relay, DM portals", channel_type="im", user=True),
    Subscription(
        "message.mpim", "message", "relay, group DM portals", channel_type="mpim", user=True
    ),
    # As user events too: reactions in the own DMs of a person logged in with their token.
    Subscription("reaction_added", "reaction_added", "relay", user=True),
    Subscription("reaction_removed", "reaction_removed", "relay", user=True),
    Subscription(
        "user_profile_changed", "user_profile_changed", "profiles (author cache), ghost profiles"
    ),
    # A deactivated account arrives only as a user_change with ``deleted`` set.
    Subscription("user_change", "user_change", "profiles (author cache), ghost profiles"),
)

BOT_EVENTS: tuple[str, ...] = tuple(sorted(s.name for s in SUBSCRIPTIONS))
USER_EVENTS: tuple[str, ...] = tuple(sorted(s.name for s in SUBSCRIPTIONS if s.user))
# Every event type a subscription delivers.
DELIVERED: frozenset[str] = frozenset(s.event for s in SUBSCRIPTIONS)


def subscription_of(event_type: str, channel_type: str | None = None) -> Subscription | None:
    """The subscription that delivers an event of ``event_type`` (in a ``channel_type``)."""
    for sub in SUBSCRIPTIONS:
        if sub.event == event_type and (sub.channel_type in (None, channel_type)):
            return sub
    return None
