"""Slack Events API payloads to core events. Echoes of our own actions are recognised first.

Author names and avatars are *not* looked up here: the ack must go out within 3 seconds, so the
event carries the author's native id and :mod:`app.slack.profiles` resolves it when delivering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.core import richtext
from app.core.endpoints import Endpoint
from app.core.events import (
    Author,
    ChannelChange,
    ChannelEvent,
    DeletePost,
    EditPost,
    FileRef,
    InboundEvent,
    NewPost,
    ReactionChange,
)
from app.errors import SyncbotError
from app.slack import blocks
from app.slack.as_person import file_echo, reaction_echo
from app.slack.deliver import METADATA_EVENT, TEXT_MARK, text_mark
from app.slack.shared_channels import SharedHome, shared_event_key
from app.store.echoes import ExpectedEchoes

log = logging.getLogger("syncbot.slack.inbound")

# Message subtypes that are new content worth syncing.
POST_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "bot_message", "me_message"})
CHANNEL_EVENTS = {
    "channel_rename": ChannelChange.RENAME,
    "group_rename": ChannelChange.RENAME,
    "channel_archive": ChannelChange.ARCHIVE,
    "group_archive": ChannelChange.ARCHIVE,
    "channel_unarchive": ChannelChange.UNARCHIVE,
    "group_unarchive": ChannelChange.UNARCHIVE,
}


# Event types the translator turns into core events (the relay handles them).
RELAYED = frozenset(
    {"message", "reaction_added", "reaction_removed", *CHANNEL_EVENTS},
)


def body_of(message: dict[str, Any]) -> richtext.Node:
    """The message body: every block (``rich_text`` is what a person typed; other apps post
    sections, headers, context) and legacy attachment, else the mrkdwn ``text``."""
    return blocks.message_body(message)


def _time(ts: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts or 0), UTC)
    except ValueError:
        return datetime.now(UTC)


def _files(message: dict[str, Any]) -> tuple[FileRef, ...]:
    out = []
    for f in message.get("files") or []:
        url = f.get("url_private_download") or f.get("url_private")
        if not url or f.get("mode") == "tombstone":
            continue
        out.append(
            FileRef(
                native_id=str(f.get("id")),
                name=str(f.get("name") or f.get("title") or "file"),
                mimetype=str(f.get("mimetype") or "application/octet-stream"),
                size=int(f.get("size") or 0),
                url=str(url),
                title=f.get("title"),
            )
        )
    return tuple(out)


def archive_link(domain: str | None, channel: str, ts: str, thread_ts: str | None = None) -> str:
    """A permalink to a message, built without an API call."""
    host = f"https://{domain}.slack.com" if domain else "https://slack.com"
    link = f"{host}/archives/{channel}/p{ts.replace('.', '')}"
    return f"{link}?thread_ts={thread_ts}&cid={channel}" if thread_ts else link


def _ours_as_a_person(event: dict[str, Any]) -> bool:
    """A post (or our edit of one) we made with a person's own token: no bot id tells it, but
    every post of ours carries our metadata, whose ``event_type`` message events keep
    (https://docs.slack.dev/messaging/message-metadata). Caught here it is dropped whether it
    arrives before or after ``chat.postMessage`` answered. A deletion is let through: the
    relay ignores a post already deleted, and a person deleting their copy in Slack counts.

    An edit (``message_changed``, whose ``message`` is the message as it now stands) keeps the
    metadata whoever made it, so it is ours only when the text is what we last wrote there
    (its mark); otherwise the person edited their copy in Slack, and that edit is relayed.
    """
    if event.get("type") != "message" or event.get("subtype") == "message_deleted":
        return False
    changed = event.get("subtype") == "message_changed"
    message = event.get("message") if changed else event
    if not isinstance(message, dict):
        return False
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return False
    if not changed:
        return True
    payload = metadata.get("event_payload")
    mark = payload.get(TEXT_MARK) if isinstance(payload, dict) else None
    # A copy posted before marks were kept: every edit of it is taken for ours, as before.
    return not isinstance(mark, str) or mark == text_mark(str(message.get("text") or ""))


class EventTranslator:
    """Turns one ``event_callback`` envelope into a core event, or None when it is not ours
    to relay (an echo, an unsupported subtype, a bot user of ours reacting)."""

    def __init__(
        self,
        workspace_lookup: Callable[[str], Any],
        shared_home: SharedHome | None = None,
        echoes: ExpectedEchoes | None = None,
    ) -> None:
        # workspace_lookup(team_id) -> WorkspaceInfo (name, domain, bot ids)
        self._lookup = workspace_lookup
        # Which workspace's view of a Slack Connect channel is its source (shared_channels).
        self._shared_home = shared_home
        # Reactions and file shares we made as a person (their own DMs), echoed as theirs.
        self._echoes = echoes

    def translate(self, envelope: dict[str, Any]) -> InboundEvent | None:
        event = envelope.get("event") or {}
        team = str(envelope.get("team_id") or event.get("team") or "")
        event_id = str(envelope.get("event_id") or "")
        if not team or not event_id:
            return None
        key = f"slack:{event_id}"
        shared = envelope.get("is_ext_shared_channel") is True
        if shared:
            # Each installation in the shared channel reports the event with its own id.
            key = shared_event_key(event)
        etype = event.get("type")
        # Other events are the hooks' (profiles, membership, lifecycle): nothing to relay, and
        # their fields (``user`` is an object in user_profile_changed) are not a message's.
        if etype not in RELAYED or self._is_echo(envelope, event):
            return None
        channel = event.get("channel") or (event.get("item") or {}).get("channel")
        if shared and self._shared_home is not None:
            ch = event.get("channel")
            shared_id = ch.get("id") if isinstance(ch, dict) else channel
            if isinstance(shared_id, str) and shared_id:
                team = self._shared_home(team, shared_id)
        if etype in CHANNEL_EVENTS:
            ch = event.get("channel")
            channel_id = ch.get("id") if isinstance(ch, dict) else ch
            name = ch.get("name") if isinstance(ch, dict) else None
            if not channel_id:
                return None
            return ChannelEvent(
                source=Endpoint.slack(team, channel_id),
                dedupe_key=key,
                change=CHANNEL_EVENTS[etype],
                name=name,
            )
        if not isinstance(channel, str) or not channel:
            return None
        source = Endpoint.slack(team, channel)
        if etype == "message":
            return self._message(team, source, key, event)
        if etype in ("reaction_added", "reaction_removed"):
            item = event.get("item") or {}
            if item.get("type") != "message" or not item.get("ts"):
                return None
            return ReactionChange(
                source=source,
                native_id=str(item["ts"]),
                dedupe_key=key,
                emoji=str(event.get("reaction") or ""),
                actor=f"{source}|{event.get('user')}",
                added=etype == "reaction_added",
                actor_name=str(event.get("user") or ""),
                occurred_at=_time(event.get("event_ts")),
            )
        return None

    def history_post(self, source: Endpoint, message: dict[str, Any]) -> NewPost | None:
        """A message read from ``conversations.history``/``replies`` as the post its live
        event made (same author, body and files); None when it is not a post."""
        event = {"type": "message", "channel": source.slack_channel, **message}
        key = f"slack-history:{source}:{message.get('ts')}"
        post = self._message(source.slack_team, source, key, event)
        return post if isinstance(post, NewPost) else None

    def _is_echo(self, envelope: dict[str, Any], event: dict[str, Any]) -> bool:
        # Our own posts carry our app id; our reactions and edits come from our bot user.
        app_id = envelope.get("api_app_id")
        inner = event.get("message") or event.get("previous_message") or {}
        if _ours_as_a_person(event):
            return True
        if self._echoes is not None and self._made_as_a_person(envelope, event):
            return True
        if app_id and (event.get("app_id") == app_id or inner.get("app_id") == app_id):
            return True
        bot_users = {
            a.get("user_id") for a in envelope.get("authorizations") or [] if a.get("is_bot")
        }
        try:
            info = self._lookup(str(envelope.get("team_id")))
            bot_users.add(info.bot_user_id)
            bot_ids = {info.bot_id}
        except Exception:
            bot_ids = set()
        bot_users.discard(None)
        bot_ids.discard(None)
        if event.get("user") in bot_users and event.get("type") != "message":
            return True
        for candidate in (event, inner):
            if candidate.get("bot_id") and candidate.get("bot_id") in bot_ids:
                return True
            if candidate.get("user") in bot_users and candidate.get("subtype") != "channel_join":
                return True
        return False

    def _made_as_a_person(self, envelope: dict[str, Any], event: dict[str, Any]) -> bool:
        """A reaction or file share we made with a person's token in their own DM: Slack sends
        it only as their user event, with nothing of ours in it, so it is matched against what
        the deliverer recorded before making it (one record, one echo)."""
        assert self._echoes is not None
        authorizations = envelope.get("authorizations") or []
        if not authorizations or any(a.get("is_bot") for a in authorizations):
            return False  # only conversations without our bot: a user event
        team = str(envelope.get("team_id") or "")
        etype = event.get("type")
        if etype in ("reaction_added", "reaction_removed"):
            item = event.get("item") or {}
            key = reaction_echo(
                team,
                str(item.get("channel") or ""),
                str(item.get("ts") or ""),
                str(event.get("user") or ""),
                str(event.get("reaction") or ""),
                etype == "reaction_added",
            )
            return self._echoes.consume(key)
        if etype == "message" and event.get("subtype") in (None, "file_share"):
            ids = [f.get("id") for f in event.get("files") or [] if isinstance(f, dict)]
            consumed = [self._echoes.consume(file_echo(team, str(i))) for i in ids if i]
            return any(consumed)
        return False

    def _message(
        self, team: str, source: Endpoint, key: str, event: dict[str, Any]
    ) -> InboundEvent | None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            message = event.get("message") or {}
            previous = event.get("previous_message") or {}
            # Slack also sends message_changed when a link unfurls; only text changes count.
            if body_of(message) == body_of(previous):
                return None
            if not message.get("ts"):
                return None
            return EditPost(
                source=source,
                native_id=str(message["ts"]),
                dedupe_key=key,
                body=body_of(message),
                occurred_at=_time(event.get("event_ts") or event.get("ts")),
            )
        if subtype == "message_deleted":
            ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
            if not ts:
                return None
            return DeletePost(source=source, native_id=str(ts), dedupe_key=key)
        if subtype not in POST_SUBTYPES or not event.get("ts"):
            return None
        ts = str(event["ts"])
        thread_ts = event.get("thread_ts")
        thread = str(thread_ts) if thread_ts and thread_ts != ts else None
        info = None
        try:
            info = self._lookup(team)
        except Exception:
            info = None
        origin = info.name if info else team
        if subtype == "bot_message" or (event.get("bot_id") and not event.get("user")):
            icons = event.get("icons") or {}
            profile = event.get("bot_profile") or {}
            author = Author(
                name=str(event.get("username") or profile.get("name") or "bot"),
                native_id=f"{team}/{event.get('bot_id') or 'bot'}",
                avatar_url=icons.get("image_72")
                or icons.get("image_48")
                or (profile.get("icons") or {}).get("image_72"),
                origin=origin,
            )
        else:
            author_team, author_origin = team, origin
            # Slack Connect: a person of another installed workspace is theirs, not the
            # channel's (their name, avatar and ghost come from their own workspace).
            their_team = event.get("user_team")
            if isinstance(their_team, str) and their_team and their_team != team:
                try:
                    author_team, author_origin = their_team, self._lookup(their_team).name
                except SyncbotError:
                    # An organisation that did not install the app: the channel's view.
                    log.debug("author of another organisation", extra={"team_id": their_team})
            author = Author(
                name="", native_id=f"{author_team}/{event.get('user')}", origin=author_origin
            )
        return NewPost(
            source=source,
            native_id=ts,
            dedupe_key=key,
            author=author,
            body=body_of(event),
            thread_native_id=thread,
            broadcast=subtype == "thread_broadcast",
            files=_files(event),
            parent_link=archive_link(info.domain if info else None, source.slack_channel, thread)
            if thread
            else None,
            occurred_at=_time(ts),
        )
