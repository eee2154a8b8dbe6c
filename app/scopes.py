"""The Slack scopes and events syncbot needs: one source for settings defaults and the manifest.

Every scope here is used by code (SyncBot asked for 14 user scopes it never used); a test keeps the
manifest, these defaults and the settings in agreement. User scopes serve ``login token`` only:
a workspace installed without them still works, with no one logged in as themselves.
"""

from __future__ import annotations

from app.slack.subscriptions import BOT_EVENTS as _SUBSCRIBED
from app.slack.subscriptions import USER_EVENTS as _USER_SUBSCRIBED

DEFAULT_BOT_SCOPES: tuple[str, ...] = (
    "channels:history",  # message events in public channels
    "channels:join",  # join a channel when it is added to a sync
    "channels:manage",  # leave channels (conversations.leave) politely
    "channels:read",  # conversations.info / list for pickers and renames
    "chat:write",  # post, update, delete copies
    "chat:write.customize",  # post under the author's name and avatar
    "emoji:read",  # know whether a custom emoji exists before reacting with it
    "files:read",  # download files shared in synced channels
    "files:write",  # upload them to the other channels (files v2)
    "groups:history",  # private channels
    "groups:read",
    "groups:write",
    "im:history",  # direct messages to the bot (message.im), bridged as portals
    "im:read",  # conversations.info of those DMs (whom the portal is with)
    "im:write",  # DM admins (invite codes, notices)
    "mpim:history",  # group DMs that include the bot (message.mpim), bridged as portals
    "mpim:read",  # conversations.info of those group DMs
    "reactions:read",
    "reactions:write",
    "team:read",  # workspace name and icon for attribution
    "users:read",  # author names and avatars
    "users:read.email",  # map mentions across workspaces by e-mail
)

# What a person's own token (``login token``) is used for: their DMs and posting as them.
DEFAULT_USER_SCOPES: tuple[str, ...] = (
    "chat:write",  # post, edit and delete as themselves (double puppeting)
    "files:write",  # their files in their own DMs, which the bot cannot upload into
    "im:history",  # their DMs' messages (message.im user events), finding a post again
    "im:read",  # conversations.info of those DMs (whom the portal is with)
    "mpim:history",  # their group DMs' messages (message.mpim user events)
    "mpim:read",  # conversations.info of those group DMs
    "reactions:read",  # reactions in their DMs (reaction_added/removed user events)
    "reactions:write",  # their Matrix reactions in their own DMs, where the bot cannot react
)

# The manifest's event subscriptions come from the one table that also types the handlers.
BOT_EVENTS: tuple[str, ...] = _SUBSCRIBED
USER_EVENTS: tuple[str, ...] = _USER_SUBSCRIBED
