"""Bot-token Web API methods: conversations, chat, reactions, users, team, emoji, views, files.

Each handler takes the state, the caller's workspace and installation and the request params and
returns the JSON body of a successful answer, or raises :class:`SlackError` for ``ok:false``.
Every write produces the echo event Slack sends to the app (the message, ``message_changed``,
``message_deleted`` and reaction events of https://docs.slack.dev/reference/events/message and
https://docs.slack.dev/reference/events/reaction_added). Arguments and error strings follow each
method's page, https://docs.slack.dev/reference/methods/<method> (e.g. ``chat.postMessage``:
``not_in_channel``, ``is_archived``, ``no_text``, ``msg_too_long``; ``chat.update``:
``cant_update_message``; ``reactions.add``: ``already_reacted``, ``invalid_name``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from . import emoji
from .model import APP_ID, Channel, FileObj, Installation, Message, Workspace
from .state import SlackError, SlackState

Handler = Callable[[SlackState, Workspace, Installation, dict[str, Any]], dict[str, Any]]
HANDLERS: dict[str, Handler] = {}

_CHANNEL_NAME = re.compile(r"^[a-z0-9_\-\u00c0-\uffff]{1,80}$")


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for the Web API method ``name``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return register


def as_bool(value: Any) -> bool:
    """Slack's lenient booleans: ``true``/``1`` in form bodies, real booleans in JSON."""
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def as_json(value: Any) -> Any:
    """Decode a JSON-valued argument that form bodies carry as a string."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise SlackError("invalid_arguments") from exc
    return value


def paginate(
    items: list[Any], params: dict[str, Any], default: int = 100
) -> tuple[list[Any], dict[str, str]]:
    """Cut ``items`` at Slack's opaque ``cursor`` / ``limit`` and build ``response_metadata``."""
    limit = int(params.get("limit") or default) or default
    cursor = params.get("cursor") or ""
    try:
        start = int(base64.b64decode(cursor).decode().split(":", 1)[1]) if cursor else 0
    except (ValueError, IndexError) as exc:
        raise SlackError("invalid_cursor") from exc
    page = items[start : start + limit]
    end = start + limit
    nxt = base64.b64encode(f"next:{end}".encode()).decode() if end < len(items) else ""
    return page, {"next_cursor": nxt}


def delete_message(st: SlackState, ws: Workspace, ch: Channel, msg: Message) -> str:
    """Mark ``msg`` deleted and emit Slack's ``message_deleted`` event; returns its ts.

    https://docs.slack.dev/reference/events/message/message_deleted
    """
    before = msg.wire(ws.files)
    msg.deleted = True
    event_ts = st.clock.next()
    st.emit(
        ws.id,
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": ch.id,
            "channel_type": channel_type(ch),
            "ts": event_ts,
            "event_ts": event_ts,
            "deleted_ts": msg.ts,
            "previous_message": before,
        },
    )
    return event_ts


def channel_type(ch: Channel) -> str:
    """``channel_type`` of message events."""
    if ch.is_mpim:
        return "mpim"
    return "im" if ch.is_im else "group" if ch.is_private else "channel"


def message_event(ws: Workspace, ch: Channel, msg: Message) -> dict[str, Any]:
    """The ``message`` event Slack sends for a newly posted message."""
    event = msg.wire(ws.files)
    event.update(channel=ch.id, event_ts=msg.ts, channel_type=channel_type(ch))
    return event


def _conversation(st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]) -> Channel:
    """The conversation named by ``p["channel"]``, as the caller may see it: someone else's
    DM or group DM does not exist for them (``channel_not_found``,
    https://docs.slack.dev/reference/methods/conversations.info)."""
    ch = st.channel(ws, p.get("channel"))
    if (ch.is_im or ch.is_mpim) and inst.bot_user_id not in ch.members:
        raise SlackError("channel_not_found")
    return ch


def _require_member(ch: Channel, inst: Installation) -> None:
    if inst.bot_user_id not in ch.members:
        raise SlackError("not_in_channel")


# --- auth, team, users, bots ---------------------------------------------------------------


@method("auth.test")
def auth_test(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    bot = ws.users[inst.bot_user_id]
    out = {
        "url": f"https://{ws.domain}.slack.test/",
        "team": ws.name,
        "user": bot.name,
        "team_id": ws.id,
        "user_id": bot.id,
        "is_enterprise_install": False,
    }
    # A user token names its member and no bot: https://docs.slack.dev/reference/methods/auth.test
    return out if inst.as_user else {**out, "bot_id": inst.bot_id}


@method("auth.revoke")
def auth_revoke(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    """https://docs.slack.dev/reference/methods/auth.revoke: the calling token stops working
    (``test=true`` only checks). Modelled for user tokens, which a person hands back."""
    if not inst.as_user:
        raise SlackError("not_allowed_token_type")
    if as_bool(p.get("test", False)):
        return {"revoked": False}
    grant = st.user_tokens.pop(inst.bot_token)
    grant.revoked = True
    st.revoked_tokens[inst.bot_token] = grant.team_id
    return {"revoked": True}


@method("team.info")
def team_info(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    team = st.workspaces.get(p.get("team") or ws.id)
    if team is None:
        raise SlackError("team_not_found")
    return {"team": team.wire()}


@method("bots.info")
def bots_info(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    for user in ws.users.values():
        if user.bot_id and user.bot_id == p.get("bot"):
            return {
                "bot": {
                    "id": user.bot_id,
                    "deleted": user.deleted,
                    "name": user.name,
                    "updated": 1700000000,
                    "app_id": APP_ID,
                    "user_id": user.id,
                    "icons": {k: user.images()[k] for k in ("image_48", "image_72")},
                }
            }
    raise SlackError("bot_not_found")


@method("users.info")
def users_info(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    return {"user": st.visible_user(ws, p.get("user")).wire()}


@method("users.list")
def users_list(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    page, meta = paginate([u.wire() for u in ws.users.values()], p, default=200)
    return {"members": page, "cache_ts": 1700000000, "response_metadata": meta}


@method("users.lookupByEmail")
def users_lookup(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    email = (p.get("email") or "").lower()
    for user in ws.users.values():
        if user.email and user.email.lower() == email and not user.deleted:
            return {"user": user.wire()}
    raise SlackError("users_not_found")


@method("users.profile.get")
def users_profile(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    return {"profile": st.user(ws, p.get("user") or inst.bot_user_id).profile()}


@method("emoji.list")
def emoji_list(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    return {"emoji": dict(ws.emoji), "cache_ts": "1700000000.000000"}


# --- conversations ---------------------------------------------------------------------------


@method("conversations.info")
def conv_info(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    return {"channel": _conversation(st, ws, inst, p).wire(inst.bot_user_id)}


@method("conversations.list")
def conv_list(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    types = set((p.get("types") or "public_channel").split(","))
    skip_archived = as_bool(p.get("exclude_archived", False))
    me = inst.bot_user_id
    # IMs, group DMs and private channels are listed only to their members; group DMs only
    # under ``mpim`` (https://docs.slack.dev/reference/methods/conversations.list).
    chans = [
        c.wire(me)
        for c in ws.channels.values()
        if (
            (c.is_im and "im" in types and me in c.members)
            or (c.is_mpim and "mpim" in types and me in c.members)
            or (
                c.is_private
                and not c.is_im
                and not c.is_mpim
                and "private_channel" in types
                and me in c.members
            )
            or (not c.is_private and not c.is_im and "public_channel" in types)
        )
        and not (skip_archived and c.is_archived)
    ]
    page, meta = paginate(chans, p)
    return {"channels": page, "response_metadata": meta}


@method("conversations.members")
def conv_members(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = _conversation(st, ws, inst, p)
    page, meta = paginate(list(ch.members), p)
    return {"members": page, "response_metadata": meta}


@method("conversations.join")
def conv_join(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    if ch.is_private or ch.is_im:
        raise SlackError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise SlackError("is_archived")
    out: dict[str, Any] = {}
    if inst.bot_user_id in ch.members:
        out = {
            "warning": "already_in_channel",
            "response_metadata": {"warnings": ["already_in_channel"]},
        }
    else:
        ch.members.append(inst.bot_user_id)
        st.emit(
            ws.id,
            {
                "type": "member_joined_channel",
                "user": inst.bot_user_id,
                "channel": ch.id,
                "channel_type": "C",
                "team": ws.id,
            },
        )
    return {"channel": ch.wire(inst.bot_user_id), **out}


@method("conversations.leave")
def conv_leave(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    if inst.bot_user_id not in ch.members:
        return {"not_in_channel": True}
    if ch.name == "general":
        raise SlackError("cant_leave_general")
    ch.members.remove(inst.bot_user_id)
    st.emit(ws.id, {"type": "channel_left", "channel": ch.id, "actor_id": inst.bot_user_id})
    return {}


def _history_page(
    st: SlackState, ws: Workspace, msgs: list[Message], p: dict[str, Any]
) -> dict[str, Any]:
    oldest, latest = float(p.get("oldest") or 0), float(p.get("latest") or "inf")
    inclusive = as_bool(p.get("inclusive", False))
    picked = [
        m
        for m in msgs
        if (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
    ]
    with_meta = as_bool(p.get("include_all_metadata", False))
    page, meta = paginate(picked, p, default=100)
    has_more = bool(meta["next_cursor"])
    return {
        "messages": [m.wire(ws.files, include_metadata=with_meta) for m in page],
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": meta,
    }


@method("conversations.history")
def conv_history(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = _conversation(st, ws, inst, p)
    _require_member(ch, inst)
    return _history_page(st, ws, st.history(ch), p)


@method("conversations.replies")
def conv_replies(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = _conversation(st, ws, inst, p)
    _require_member(ch, inst)
    ts = p.get("ts") or ""
    if ts not in ch.messages or ch.messages[ts].deleted:
        raise SlackError("thread_not_found")
    root = ch.messages[ts].thread_ts or ts
    return _history_page(st, ws, st.thread(ch, root), p)


@method("conversations.open")
def conv_open(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    users = [u for u in (p.get("users") or "").split(",") if u]
    if not users:
        raise SlackError("users_list_not_supplied")
    for uid in users:
        st.user(ws, uid)
    members = sorted({inst.bot_user_id, *users})
    for ch in ws.channels.values():
        if ch.is_im and sorted(ch.members) == members:
            return {"no_op": True, "already_open": True, "channel": {"id": ch.id}}
    ch = Channel(st.new_id("D"), name=users[0], is_im=True, members=members)
    ws.channels[ch.id] = ch
    return {"channel": {"id": ch.id}}


def _check_name(ws: Workspace, name: str) -> None:
    if not name:
        raise SlackError("invalid_name_required")
    if len(name) > 80:
        raise SlackError("invalid_name_maxlength")
    if not _CHANNEL_NAME.match(name):
        raise SlackError("invalid_name_specials")
    if any(c.name == name for c in ws.channels.values()):
        raise SlackError("name_taken")


@method("conversations.create")
def conv_create(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    name = p.get("name") or ""
    _check_name(ws, name)
    ch = Channel(
        st.new_id("C"),
        name=name,
        is_private=as_bool(p.get("is_private", False)),
        members=[inst.bot_user_id],
        creator=inst.bot_user_id,
    )
    ws.channels[ch.id] = ch
    st.emit(
        ws.id,
        {
            "type": "channel_created",
            "channel": {
                "id": ch.id,
                "name": name,
                "created": 1700000000,
                "creator": inst.bot_user_id,
            },
        },
    )
    return {"channel": ch.wire(inst.bot_user_id)}


@method("conversations.archive")
def conv_archive(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    if ch.is_archived:
        raise SlackError("already_archived")
    if ch.name == "general":
        raise SlackError("cant_archive_general")
    _require_member(ch, inst)
    ch.is_archived = True
    st.emit(ws.id, {"type": "channel_archive", "channel": ch.id, "user": inst.bot_user_id})
    return {}


@method("conversations.unarchive")
def conv_unarchive(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    if not ch.is_archived:
        raise SlackError("not_archived")
    ch.is_archived = False
    st.emit(ws.id, {"type": "channel_unarchive", "channel": ch.id, "user": inst.bot_user_id})
    return {}


@method("conversations.rename")
def conv_rename(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    _require_member(ch, inst)
    name = p.get("name") or ""
    _check_name(ws, name)
    ch.name = name
    st.emit(
        ws.id,
        {
            "type": "channel_rename",
            "channel": {"id": ch.id, "name": name, "name_normalized": name, "created": 1700000000},
        },
    )
    return {"channel": ch.wire(inst.bot_user_id)}


@method("conversations.setTopic")
def conv_topic(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    _require_member(ch, inst)
    topic = p.get("topic") or ""
    if len(topic) > 250:
        raise SlackError("too_long")
    ch.topic = topic
    return {"channel": ch.wire(inst.bot_user_id)}


# --- chat ----------------------------------------------------------------------------------


def bot_message(
    st: SlackState, ws: Workspace, inst: Installation, ch: Channel, p: dict[str, Any], ts: str
) -> Message:
    """Build the message a bot post creates (shared by chat.postMessage and file shares)."""
    icons: dict[str, str] | None = None
    if p.get("icon_url"):
        icons = {"image_48": p["icon_url"]}
    elif p.get("icon_emoji"):
        icons = {"emoji": p["icon_emoji"]}
    metadata = as_json(p["metadata"]) if p.get("metadata") else None
    blocks = as_json(p["blocks"]) if p.get("blocks") else None
    attachments = as_json(p["attachments"]) if p.get("attachments") else None
    thread_ts = p.get("thread_ts") or None
    return Message(
        ts=ts,
        channel=ch.id,
        text=p.get("text") or "",
        user=inst.bot_user_id,
        bot_id=inst.bot_id,
        app_id=APP_ID,
        username=p.get("username") or None,
        icons=icons,
        bot_profile=st.bot_profile(ws, inst),
        thread_ts=thread_ts,
        reply_broadcast=bool(thread_ts) and as_bool(p.get("reply_broadcast", False)),
        subtype="thread_broadcast"
        if thread_ts and as_bool(p.get("reply_broadcast", False))
        else None,
        blocks=blocks,
        attachments=attachments,
        metadata=metadata,
        team=ws.id,
    )


def user_message(
    ws: Workspace, inst: Installation, ch: Channel, p: dict[str, Any], ts: str
) -> Message:
    """The message a user token posts: the member's own, as if typed in Slack.

    With a user token ``chat.postMessage`` posts as that user and ignores ``username`` and
    ``icon_*`` (https://docs.slack.dev/reference/methods/chat.postMessage#authorship); the
    message has the member as ``user`` and no ``bot_id``, so the app cannot tell its echo by
    its bot. ``metadata`` is kept (message events carry it:
    https://docs.slack.dev/messaging/message-metadata).
    """
    thread_ts = p.get("thread_ts") or None
    broadcast = bool(thread_ts) and as_bool(p.get("reply_broadcast", False))
    return Message(
        ts=ts,
        channel=ch.id,
        text=p.get("text") or "",
        user=inst.bot_user_id,
        thread_ts=thread_ts,
        reply_broadcast=broadcast,
        subtype="thread_broadcast" if broadcast else None,
        blocks=as_json(p["blocks"]) if p.get("blocks") else None,
        attachments=as_json(p["attachments"]) if p.get("attachments") else None,
        metadata=as_json(p["metadata"]) if p.get("metadata") else None,
        team=ws.id,
    )


def _writable(st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]) -> Channel:
    ch = st.channel(ws, p.get("channel"))
    if (ch.is_im or ch.is_mpim) and inst.bot_user_id not in ch.members:
        # Someone else's direct messages are invisible to the caller.
        raise SlackError("channel_not_found")
    if ch.is_archived:
        raise SlackError("is_archived")
    public_ok = not ch.is_private and not inst.as_user and "chat:write.public" in inst.scopes
    if inst.bot_user_id not in ch.members and not public_ok and not ch.is_im:
        raise SlackError("not_in_channel")
    return ch


@method("chat.postMessage")
def chat_post(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = _writable(st, ws, inst, p)
    if not (p.get("text") or p.get("blocks") or p.get("attachments")):
        raise SlackError("no_text")
    if p.get("text") and len(p["text"]) > 40000:
        raise SlackError("msg_too_long")
    if inst.as_user:
        msg = user_message(ws, inst, ch, p, st.clock.next())
    else:
        msg = bot_message(st, ws, inst, ch, p, st.clock.next())
    if msg.thread_ts and msg.thread_ts not in ch.messages:
        raise SlackError("thread_not_found")
    st.add_message(ch, msg)
    st.emit(ws.id, message_event(ws, ch, msg))
    return {"channel": ch.id, "ts": msg.ts, "message": msg.wire(ws.files)}


@method("chat.postEphemeral")
def chat_ephemeral(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = _writable(st, ws, inst, p)
    user = st.user(ws, p.get("user"))
    if user.id not in ch.members:
        raise SlackError("user_not_in_channel")
    return {"message_ts": st.clock.next()}


def _own(msg: Message, inst: Installation, error: str) -> None:
    # A bot changes what its bot posted; a user token what its member wrote.
    if inst.as_user:
        mine = msg.user == inst.bot_user_id and not msg.bot_id
    else:
        mine = msg.bot_id == inst.bot_id
    if not mine:
        raise SlackError(error)


@method("chat.update")
def chat_update(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    msg = st.message(ch, p.get("ts"))
    _own(msg, inst, "cant_update_message")
    if ch.is_archived:
        raise SlackError("is_archived")
    before = msg.wire(ws.files)
    if "text" in p:
        msg.text = p.get("text") or ""
    # Blocks not given are kept; an empty array removes them
    # (https://docs.slack.dev/reference/methods/chat.update: ``blocks``).
    if p.get("blocks") is not None:
        msg.blocks = as_json(p["blocks"]) or None
    if p.get("metadata"):
        msg.metadata = as_json(p["metadata"])
    event_ts = st.clock.next()
    msg.edited = {"user": inst.bot_user_id, "ts": event_ts}
    after = msg.wire(ws.files)
    st.emit(
        ws.id,
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": ch.id,
            "channel_type": channel_type(ch),
            "ts": event_ts,
            "event_ts": event_ts,
            "message": after,
            "previous_message": before,
        },
    )
    return {"channel": ch.id, "ts": msg.ts, "text": msg.text, "message": after}


@method("chat.delete")
def chat_delete(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    msg = st.message(ch, p.get("ts"))
    _own(msg, inst, "cant_delete_message")
    delete_message(st, ws, ch, msg)
    return {"channel": ch.id, "ts": msg.ts}


@method("chat.getPermalink")
def chat_permalink(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    msg = st.message(ch, p.get("message_ts"))
    link = f"https://{ws.domain}.slack.test/archives/{ch.id}/p{msg.ts.replace('.', '')}"
    if msg.thread_ts and msg.thread_ts != msg.ts:
        link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
    return {"channel": ch.id, "permalink": link}


# --- reactions -----------------------------------------------------------------------------


def reaction_event(kind: str, user: str, name: str, ch: Channel, msg: Message) -> dict[str, Any]:
    """A ``reaction_added`` / ``reaction_removed`` event on a message."""
    return {
        "type": kind,
        "user": user,
        "reaction": name,
        "item_user": msg.user or msg.bot_id or "",
        "item": {"type": "message", "channel": ch.id, "ts": msg.ts},
    }


def _reaction_target(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> tuple[Channel, Message, str]:
    # A DM or group DM the caller is not in does not exist for them: reactions.add and
    # reactions.remove answer ``channel_not_found`` ("Value passed for channel is invalid",
    # https://docs.slack.dev/reference/methods/reactions.add,
    # https://docs.slack.dev/reference/methods/reactions.remove), so a bot cannot react in a
    # person's own DM; that person's user token can.
    ch = _conversation(st, ws, inst, p)
    msg = st.message(ch, p.get("timestamp"))
    name = (p.get("name") or "").strip(":")
    if not name or not emoji.exists(name, ws.emoji):
        raise SlackError("invalid_name")
    return ch, msg, name


@method("reactions.add")
def reactions_add(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch, msg, name = _reaction_target(st, ws, inst, p)
    users = msg.reactions.setdefault(name, [])
    if inst.bot_user_id in users:
        raise SlackError("already_reacted")
    if len(msg.reactions) > 23 and not users:
        raise SlackError("too_many_emoji")
    users.append(inst.bot_user_id)
    st.emit(ws.id, reaction_event("reaction_added", inst.bot_user_id, name, ch, msg))
    return {}


@method("reactions.remove")
def reactions_remove(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch, msg, name = _reaction_target(st, ws, inst, p)
    users = msg.reactions.get(name, [])
    if inst.bot_user_id not in users:
        raise SlackError("no_reaction")
    users.remove(inst.bot_user_id)
    if not users:
        del msg.reactions[name]
    st.emit(ws.id, reaction_event("reaction_removed", inst.bot_user_id, name, ch, msg))
    return {}


@method("reactions.get")
def reactions_get(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    ch = st.channel(ws, p.get("channel"))
    msg = st.message(ch, p.get("timestamp"))
    return {"type": "message", "channel": ch.id, "message": msg.wire(ws.files)}


# --- views ---------------------------------------------------------------------------------


def _store_view(
    st: SlackState, ws: Workspace, view: Any, view_id: str | None = None
) -> dict[str, Any]:
    spec = as_json(view)
    if not isinstance(spec, dict) or "type" not in spec:
        raise SlackError("invalid_arguments")
    vid = view_id or st.new_id("V")
    stored = {
        "id": vid,
        "team_id": ws.id,
        "app_id": APP_ID,
        "hash": st.clock.next(),
        "blocks": [],
        **spec,
    }
    ws.views[vid] = stored
    return stored


@method("views.publish")
def views_publish(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    st.user(ws, p.get("user_id"))
    return {"view": _store_view(st, ws, p.get("view"))}


@method("views.open")
def views_open(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    if not p.get("trigger_id"):
        raise SlackError("invalid_trigger_id")
    return {"view": _store_view(st, ws, p.get("view"))}


@method("views.push")
def views_push(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    return views_open(st, ws, inst, p)


@method("views.update")
def views_update(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    vid = p.get("view_id")
    if not vid and p.get("external_id"):
        vid = next(
            (k for k, v in ws.views.items() if v.get("external_id") == p["external_id"]), None
        )
    if not vid or vid not in ws.views:
        raise SlackError("not_found")
    return {"view": _store_view(st, ws, p.get("view"), vid)}


# --- files ---------------------------------------------------------------------------------


@method("files.info")
def files_info(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    f = ws.files.get(p.get("file") or "")
    if f is None or not f.uploaded:
        raise SlackError("file_not_found")
    return {"file": f.wire(), "comments": [], "response_metadata": {"next_cursor": ""}}


@method("files.getUploadURLExternal")
def files_get_url(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    name, length = p.get("filename"), p.get("length")
    if not name or not length:
        raise SlackError("invalid_arguments")
    f = FileObj(
        st.new_id("F"),
        ws.id,
        inst.bot_user_id,
        name,
        name,
        "application/octet-stream",
        base_url=st.base_url,
    )
    ws.files[f.id] = f
    return {"upload_url": f"{st.base_url}upload/v1/{ws.id}/{f.id}", "file_id": f.id}


@method("files.completeUploadExternal")
def files_complete(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    specs = as_json(p.get("files") or "[]")
    if not specs:
        raise SlackError("invalid_arguments")
    files: list[FileObj] = []
    for spec in specs:
        f = ws.files.get(spec.get("id", ""))
        if f is None or (not f.content and not f.uploaded):
            raise SlackError("file_not_found")
        f.title = spec.get("title") or f.title
        f.uploaded = True
        files.append(f)
    channel_id = p.get("channel_id") or p.get("channels")
    if channel_id:
        # Sharing into a conversation the token's bot or user is not in is refused:
        # ``channel_not_found`` for someone else's DM or group DM (it does not exist for the
        # caller), ``not_in_channel`` for a channel it has not joined
        # (https://docs.slack.dev/reference/methods/files.completeUploadExternal, "Errors").
        ch = _writable(st, ws, inst, {"channel": channel_id})
        share = {"text": p.get("initial_comment") or "", "thread_ts": p.get("thread_ts")}
        ts = st.clock.next()
        # A user token shares the file as that member (no bot id), as in the Slack client.
        msg = (
            user_message(ws, inst, ch, share, ts)
            if inst.as_user
            else bot_message(st, ws, inst, ch, share, ts)
        )
        msg.files = [f.id for f in files]
        msg.subtype = "file_share"
        for f in files:
            f.channels.append(ch.id)
        st.add_message(ch, msg)
        event = message_event(ws, ch, msg)
        event["upload"] = True
        st.emit(ws.id, event)
        for f in files:
            st.emit(
                ws.id,
                {
                    "type": "file_shared",
                    "file_id": f.id,
                    "user_id": f.user,
                    "file": {"id": f.id},
                    "channel_id": ch.id,
                },
            )
    return {"files": [{"id": f.id, "title": f.title} for f in files]}


@method("files.delete")
def files_delete(
    st: SlackState, ws: Workspace, inst: Installation, p: dict[str, Any]
) -> dict[str, Any]:
    """https://docs.slack.dev/reference/methods/files.delete: an app deletes files it uploaded;
    an unknown id is ``file_not_found``, an already deleted one ``file_deleted``, another's
    file ``cant_delete_file``. The file leaves every channel; a share message left with no
    file and no text is removed (``message_deleted``), as a person's client shows it."""
    file_id = p.get("file") or ""
    if file_id in ws.deleted_files:
        raise SlackError("file_deleted")
    f = ws.files.get(file_id)
    if f is None or not f.uploaded:
        raise SlackError("file_not_found")
    if f.user != inst.bot_user_id:
        raise SlackError("cant_delete_file")
    del ws.files[file_id]
    ws.deleted_files.add(file_id)
    st.emit(ws.id, {"type": "file_deleted", "file_id": file_id, "channel_ids": list(f.channels)})
    for ch_id in f.channels:
        ch = ws.channels.get(ch_id)
        if ch is None:
            continue
        for msg in list(ch.messages.values()):
            if file_id not in msg.files or msg.deleted:
                continue
            msg.files.remove(file_id)
            if not msg.files and not msg.text:
                delete_message(st, ws, ch, msg)
    return {}
