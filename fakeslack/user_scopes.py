"""The scopes a user token (``xoxp-``) needs per Web API method, enforced as Slack does.

A method called with a token that lacks its scope answers ``missing_scope`` with ``needed`` and
``provided`` (https://docs.slack.dev/reference/methods — each method's "Required scopes", and
the ``missing_scope`` error). The ``conversations.*`` methods need the scope of the kind of
conversation they touch: ``channels:``, ``groups:``, ``im:`` or ``mpim:`` ``history``/``read``
(https://docs.slack.dev/reference/methods/conversations.history,
https://docs.slack.dev/reference/methods/conversations.list: one ``:read`` scope per requested
``types``). Bot tokens are not checked here: the app's bot scopes are fixed by its manifest.
"""

from __future__ import annotations

from typing import Any

from .model import Channel, Workspace
from .state import SlackError

# Methods whose scope does not depend on a conversation.
_FIXED = {
    "auth.test": None,
    "auth.revoke": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.getPermalink": None,
    "users.info": "users:read",
    "users.list": "users:read",
    "users.lookupByEmail": "users:read.email",
    "users.profile.get": "users.profile:read",
    "bots.info": "users:read",
    "team.info": "team:read",
    "emoji.list": "emoji:read",
    "reactions.add": "reactions:write",
    "reactions.remove": "reactions:write",
    "reactions.get": "reactions:read",
    "files.info": "files:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.delete": "files:write",
}
# conversations.* methods and the scope suffix they need for the conversation's kind.
_PER_CONVERSATION = {
    "conversations.info": "read",
    "conversations.members": "read",
    "conversations.history": "history",
    "conversations.replies": "history",
    "conversations.join": "write",
    "conversations.leave": "write",
    "conversations.archive": "write",
    "conversations.unarchive": "write",
    "conversations.rename": "write",
    "conversations.setTopic": "write",
}
_LIST_TYPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}


def family(ch: Channel) -> str:
    """The scope family of a conversation: ``channels``, ``groups``, ``im`` or ``mpim``."""
    if ch.is_mpim:
        return "mpim"
    if ch.is_im:
        return "im"
    return "groups" if ch.is_private else "channels"


def needed(method: str, ws: Workspace, params: dict[str, Any]) -> list[str]:
    """Every scope a user token needs to call ``method`` with ``params``."""
    if method in _FIXED:
        scope = _FIXED[method]
        return [scope] if scope else []
    if method in _PER_CONVERSATION:
        ch = ws.channels.get(str(params.get("channel") or ""))
        if ch is None:
            return []  # the method answers channel_not_found itself
        return [f"{family(ch)}:{_PER_CONVERSATION[method]}"]
    if method == "conversations.list":
        types = str(params.get("types") or "public_channel").split(",")
        return [_LIST_TYPES[t] for t in types if t in _LIST_TYPES]
    if method in ("conversations.open", "conversations.create"):
        return ["im:write"] if method == "conversations.open" else ["channels:manage"]
    # Anything else (views, App Home) takes no user token at all.
    raise SlackError("not_allowed_token_type")


def check(method: str, ws: Workspace, params: dict[str, Any], granted: list[str]) -> None:
    """Raise Slack's ``missing_scope`` unless ``granted`` covers ``method``."""
    missing = [s for s in needed(method, ws, params) if s not in granted]
    if missing:
        raise SlackError("missing_scope", needed=",".join(missing), provided=",".join(granted))
