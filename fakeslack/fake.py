"""``FakeSlack``: builders, user actions and inspection on top of the server."""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from . import control
from .events import Delivery, sign
from .faults import Fault
from .model import (
    APP_ID,
    Channel,
    FileObj,
    Installation,
    Message,
    Upload,
    User,
    UserGrant,
    Workspace,
)
from .rich_text import rich_text_blocks
from .server import SlackServer
from .socket_mode import SocketHub
from .state import Call
from .webapi import channel_type, delete_message, message_event, reaction_event

DEFAULT_SCOPES = [
    "channels:history",
    "channels:join",
    "channels:read",
    "chat:write",
    "chat:write.customize",
    "emoji:read",
    "files:read",
    "files:write",
    "groups:history",
    "groups:read",
    "reactions:read",
    "reactions:write",
    "team:read",
    "users:read",
    "users:read.email",
]

# What a member grants when authorizing the app for their own DMs and posts.
DEFAULT_USER_SCOPES = [
    "chat:write",
    "files:write",
    "im:history",
    "im:read",
    "mpim:history",
    "mpim:read",
    "reactions:read",
    "reactions:write",
]


class FakeSlack(SlackServer):
    """A fake Slack on loopback; see the package docstring for the full API."""

    def __init__(
        self,
        *,
        signing_secret: str = "fake-signing-secret-0123456789abcdef",
        seed: int = 0,
        app_url: str | None = None,
    ) -> None:
        super().__init__(signing_secret, seed)
        self.signing_secret = signing_secret
        self.event_settings.app_url = app_url
        self.app_token = f"xapp-1-{APP_ID}-{secrets.token_hex(8)}"
        self.state.app_tokens.add(self.app_token)
        self._client_msg = itertools.count(1)

    def start(
        self,
        port: int = 0,
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> FakeSlack:
        """Start serving on ``127.0.0.1`` (``port`` 0: ephemeral); returns ``self``."""
        super().start(port, loop_factory=loop_factory)
        return self

    def _add_routes(self, app: web.Application) -> None:
        control.add_routes(app, self)

    @property
    def url(self) -> str:
        """The server's root URL (OAuth, files and the control API hang off it)."""
        return f"http://127.0.0.1:{self.port}/"

    def envelope(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """The ``event_callback`` envelope Slack would wrap ``event`` in for ``team_id``
        (not delivered: for tests that POST it themselves)."""
        inst = self.installation(team_id)
        return self.call(lambda: self.events.envelope(inst, dict(event)))

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Headers of a signed Events API request carrying exactly ``body``."""
        return {"Content-Type": "application/json", **sign(self.signing_secret, body, timestamp)}

    def describe(self) -> dict[str, Any]:
        """URLs, secrets and workspaces, as JSON: what another process needs to use the fake."""

        def read() -> dict[str, Any]:
            return {
                "url": self.url,
                "api_url": self.base_url,
                "control_url": f"{self.url}_fake/",
                "signing_secret": self.signing_secret,
                "app_token": self.app_token,
                "client_id": self.oauth.client_id,
                "client_secret": self.oauth.client_secret,
                "workspaces": [control.workspace_info(w) for w in self.state.workspaces.values()],
            }

        return self.call(read)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration -----------------------------------------------------------------------

    @property
    def app_url(self) -> str | None:
        """Request URL events are POSTed to (``None``: HTTP delivery off)."""
        return self.event_settings.app_url

    @app_url.setter
    def app_url(self, url: str | None) -> None:
        self.event_settings.app_url = url

    def route_events(self, team_id: str, url: str | None) -> None:
        """Deliver ``team_id``'s events to ``url`` instead of ``app_url`` (one app process per
        workspace); ``None`` goes back to ``app_url``."""

        def apply() -> None:
            if url is None:
                self.event_settings.team_urls.pop(team_id, None)
            else:
                self.event_settings.team_urls[team_id] = url

        self.call(apply)

    def echo(self, enabled: bool, team_id: str | None = None) -> None:
        """Switch event delivery on/off, globally or for one workspace."""
        if team_id is None:
            self.event_settings.enabled = enabled
        elif enabled:
            self.event_settings.disabled_teams.discard(team_id)
        else:
            self.event_settings.disabled_teams.add(team_id)

    def fail(self, method: str, *faults: Fault | str) -> None:
        """Queue ``faults`` for the next calls of ``method`` (``"*"``: any method); strings are
        spelled as for :meth:`Fault.parse` (``"429:2"``, ``"500"``, ``"timeout"``, ...)."""
        parsed = [Fault.parse(f) if isinstance(f, str) else f for f in faults]
        self.call(lambda: self.faults.queue(method, *parsed))

    def fail_randomly(self, method: str, probability: float, *faults: Fault | str) -> None:
        """Fail ``method`` calls (``"*"``: any) with ``probability``, with one of ``faults``
        picked at random; the RNG is seeded, so a run is repeatable."""
        parsed = [Fault.parse(f) if isinstance(f, str) else f for f in faults]
        self.call(lambda: self.faults.randomly(method, probability, *parsed))

    def clear_faults(self) -> None:
        """Forget queued and random faults and injected latency."""
        self.call(self.faults.clear)

    def latency(self, seconds: float, method: str = "*") -> None:
        """Delay every answer of ``method`` (or of all methods) by ``seconds``."""
        self.call(lambda: self.faults.add_latency(seconds, method))

    def rate_limit(self, method: str, per_window: int, window: float = 60.0) -> None:
        """Enforce ``per_window`` calls of ``method`` per workspace per ``window`` seconds."""

        def apply() -> None:
            self.rate_limits[method] = per_window
            self.rate_window = window

        self.call(apply)

    # --- builders ----------------------------------------------------------------------------

    def populate(
        self, workspaces: int, *, channels: int = 1, users: int = 1, socket_mode: bool = False
    ) -> list[Workspace]:
        """Add ``workspaces`` numbered workspaces after the existing ones: team ``T000`` has
        channels ``C000`` (then ``C00001``, ``C00002``, ...) and people ``U000`` (then
        ``U00001``, ...), each person in each channel with the app's bot user."""
        made = []
        start = len(self.call(lambda: self.state.workspaces))
        for i in range(start, start + workspaces):
            team = f"T{i:03d}"
            made.append(self.add_workspace(team, f"Team {i}", socket_mode=socket_mode))
            people = [f"U{i:03d}" + (f"{j:02d}" if j else "") for j in range(users)]
            for j, user in enumerate(people):
                self.add_user(team, user, f"user{i}-{j}", real_name=f"User {i}.{j}")
            for j in range(channels):
                name = "general" if j == 0 else f"channel-{j}"
                self.add_channel(
                    team, f"C{i:03d}" + (f"{j:02d}" if j else ""), name, members=people
                )
        return made

    def add_workspace(
        self,
        team_id: str,
        name: str | None = None,
        *,
        domain: str | None = None,
        icon: str = "",
        socket_mode: bool = False,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        installed: bool = True,
    ) -> Workspace:
        """Create a workspace with the app installed (bot user ``U<team>BOT``, ``xoxb-`` token)."""

        def build() -> Workspace:
            ws = Workspace(team_id, name or team_id, domain or team_id.lower(), icon)
            self.state.workspaces[team_id] = ws
            if installed:
                bot = User(
                    f"U{team_id}BOT",
                    team_id,
                    "syncbot",
                    real_name="syncbot",
                    is_bot=True,
                    bot_id=f"B{team_id}BOT",
                )
                ws.users[bot.id] = bot
                inst = Installation(
                    team_id,
                    bot.id,
                    f"B{team_id}BOT",
                    f"xoxb-{team_id}-{secrets.token_hex(12)}",
                    scopes=list(scopes),
                    socket_mode=socket_mode,
                )
                ws.installation = inst
                self.state.tokens[inst.bot_token] = team_id
            return ws

        return self.call(build)

    def add_user(
        self,
        team_id: str,
        user_id: str,
        name: str,
        *,
        real_name: str = "",
        display_name: str = "",
        email: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        bot_id: str | None = None,
    ) -> User:
        """Add a member to ``team_id``."""
        user = User(
            user_id,
            team_id,
            name,
            real_name,
            display_name,
            email,
            is_admin,
            is_owner,
            is_bot,
            deleted,
            bot_id,
        )

        def build() -> User:
            self.state.workspaces[team_id].users[user_id] = user
            return user

        return self.call(build)

    def share_channel(self, team_id: str, channel_id: str, other_team: str) -> None:
        """Slack Connect: share ``team_id``'s channel with ``other_team`` (accepted at once).
        The channel keeps its id and its history in both, and events in it reach every
        installation of the app among them (see :meth:`SlackServer._emit`)."""

        def share() -> None:
            ch = self.state.workspaces[team_id].channels[channel_id]
            self.state.workspaces[other_team].channels[channel_id] = ch
            for team in (team_id, other_team):
                if team not in ch.shared_teams:
                    ch.shared_teams.append(team)

        self.call(share)

    def change_profile(
        self, team_id: str, user_id: str, *, display_name: str | None = None, avatar: str = ""
    ) -> str | None:
        """Change a member's display name (and avatar, as a new image URL suffix) and send
        ``user_profile_changed`` with the whole user, as Slack does:
        https://api.slack.com/events/user_profile_changed. Returns the event id."""

        def change() -> str | None:
            user = self.state.workspaces[team_id].users[user_id]
            if display_name is not None:
                user.display_name = display_name
            if avatar:
                user.avatar_version = avatar
            return self.state.emit(team_id, {"type": "user_profile_changed", "user": user.wire()})

        return self.call(change)

    def deactivate_user(self, team_id: str, user_id: str) -> str | None:
        """Deactivate a member: Slack sends ``user_change`` with ``deleted: true`` (there is no
        separate "left" event for a deactivated account):
        https://api.slack.com/events/user_change. Returns the event id."""

        def deactivate() -> str | None:
            user = self.state.workspaces[team_id].users[user_id]
            user.deleted = True
            return self.state.emit(team_id, {"type": "user_change", "user": user.wire()})

        return self.call(deactivate)

    def add_channel(
        self,
        team_id: str,
        channel_id: str,
        name: str,
        *,
        private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = True,
        topic: str = "",
        purpose: str = "",
        archived: bool = False,
    ) -> Channel:
        """Add a channel; the app's bot user is a member unless ``bot_member=False``."""

        def build() -> Channel:
            ws = self.state.workspaces[team_id]
            people = list(members)
            if bot_member and ws.installation:
                people.append(ws.installation.bot_user_id)
            ch = Channel(
                channel_id,
                name,
                is_private=private,
                topic=topic,
                purpose=purpose,
                members=people,
                is_archived=archived,
            )
            ws.channels[channel_id] = ch
            return ch

        return self.call(build)

    def add_emoji(self, team_id: str, name: str, url: str) -> None:
        """Add a custom emoji (``url`` may be ``alias:other``)."""
        self.call(lambda: self.state.workspaces[team_id].emoji.__setitem__(name, url))

    def installation(self, team_id: str) -> Installation:
        """The app's installation (tokens, bot ids) in ``team_id``."""
        inst = self.call(lambda: self.state.workspaces[team_id].installation)
        assert inst is not None, f"app not installed in {team_id}"
        return inst

    def bot_token(self, team_id: str) -> str:
        """The current bot token of ``team_id``."""
        return self.installation(team_id).bot_token

    def revoke(self, team_id: str) -> None:
        """Revoke the bot token: later calls answer ``token_revoked``."""

        def apply() -> None:
            inst = self.state.workspaces[team_id].installation
            assert inst is not None
            inst.revoked = True
            self.state.tokens.pop(inst.bot_token, None)
            self.state.revoked_tokens[inst.bot_token] = team_id

        self.call(apply)

    def add_user_token(
        self, team_id: str, user_id: str, scopes: Iterable[str] = DEFAULT_USER_SCOPES
    ) -> str:
        """``user_id`` authorizes the app with ``scopes`` (OAuth ``user_scope``): returns the
        user token (``xoxp-``) the app gets for them."""
        token = f"xoxp-{team_id}-{user_id}-{secrets.token_hex(12)}"

        def add() -> None:
            self.state.user_tokens[token] = UserGrant(team_id, user_id, token, list(scopes))

        self.call(add)
        return token

    def revoke_user_token(self, token: str) -> None:
        """The member revokes the app's access: the token answers ``token_revoked``."""

        def apply() -> None:
            grant = self.state.user_tokens.pop(token)
            grant.revoked = True
            self.state.revoked_tokens[token] = grant.team_id

        self.call(apply)

    def open_private_dm(self, team_id: str, users: Iterable[str], channel_id: str = "") -> str:
        """People open a DM (two of them) or group DM (more) without the app's bot; only a
        member's user token lets the app see it. Returns its id."""

        def open_() -> str:
            ws = self.state.workspaces[team_id]
            people = sorted(set(users))
            if len(people) == 2:
                ch = Channel(channel_id or self.state.new_id("D"), people[0], is_im=True)
            else:
                names = "--".join(ws.users[u].name for u in people if u in ws.users)
                ch = Channel(
                    channel_id or self.state.new_id("G"),
                    f"mpdm-{names}-1",
                    is_private=True,
                    is_mpim=True,
                )
            ch.members = people
            ws.channels[ch.id] = ch
            return ch.id

        return self.call(open_)

    # --- user actions ------------------------------------------------------------------------

    def post_message(
        self,
        team_id: str,
        channel_id: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        files: list[tuple[str, bytes] | Upload] | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        """A person posts (optionally in a thread, broadcast, with files); returns the ts."""
        uploads = [f if isinstance(f, Upload) else Upload(*f) for f in files or []]

        def act() -> str:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            msg = Message(
                self.state.clock.next(),
                ch.id,
                text,
                user=user,
                team=team_id,
                thread_ts=thread_ts,
                blocks=blocks or rich_text_blocks(text),
            )
            if thread_ts and broadcast:
                msg.subtype, msg.reply_broadcast = "thread_broadcast", True
            for upload in uploads:
                f = self._new_file(ws, user, upload.name, upload.content)
                f.mimetype = upload.mimetype or f.mimetype
                f.reported_size = upload.size
                f.channels.append(ch.id)
                msg.files.append(f.id)
            if files:
                msg.subtype = "file_share"
            self.state.add_message(ch, msg)
            event = message_event(ws, ch, msg)
            event["client_msg_id"] = f"00000000-0000-4000-8000-{next(self._client_msg):012d}"
            if files:
                event["upload"] = False
            if msg.reply_broadcast and thread_ts:
                event["root"] = ch.messages[thread_ts].wire(ws.files)
            self.state.emit(team_id, event)
            return msg.ts

        return self.call(act)

    def _new_file(self, ws: Workspace, user: str, name: str, content: bytes) -> FileObj:
        f = FileObj(
            self.state.new_id("F"),
            ws.id,
            user,
            name,
            name,
            _mimetype(name),
            content,
            uploaded=True,
            base_url=self.state.base_url,
        )
        ws.files[f.id] = f
        return f

    def upload_file(
        self,
        team_id: str,
        channel_id: str,
        user: str,
        name: str,
        content: bytes,
        *,
        text: str = "",
        thread_ts: str | None = None,
    ) -> str:
        """A person uploads a file into a channel; returns the file id."""
        ts = self.post_message(
            team_id, channel_id, user, text, thread_ts=thread_ts, files=[(name, content)]
        )
        return self.call(
            lambda: self.state.workspaces[team_id].channels[channel_id].messages[ts].files[0]
        )

    def edit(self, team_id: str, channel_id: str, ts: str, text: str) -> str:
        """The author edits a message; returns the ``message_changed`` event ts."""

        def act() -> str:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            msg = self.state.message(ch, ts)
            before = msg.wire(ws.files)
            msg.text, msg.blocks = text, rich_text_blocks(text)
            event_ts = self.state.clock.next()
            msg.edited = {"user": msg.user or "", "ts": event_ts}
            self.state.emit(
                team_id,
                {
                    "type": "message",
                    "subtype": "message_changed",
                    "hidden": True,
                    "channel": ch.id,
                    "channel_type": channel_type(ch),
                    "ts": event_ts,
                    "event_ts": event_ts,
                    "message": msg.wire(ws.files),
                    "previous_message": before,
                },
            )
            return event_ts

        return self.call(act)

    def delete(self, team_id: str, channel_id: str, ts: str) -> str:
        """The author deletes a message; returns the ``message_deleted`` event ts."""

        def act() -> str:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            return delete_message(self.state, ws, ch, self.state.message(ch, ts))

        return self.call(act)

    def react(self, team_id: str, channel_id: str, ts: str, user: str, name: str) -> str | None:
        """A person adds reaction ``name``; returns the event id (``None`` if not delivered)."""
        return self._reaction(team_id, channel_id, ts, user, name, add=True)

    def unreact(self, team_id: str, channel_id: str, ts: str, user: str, name: str) -> str | None:
        """A person removes reaction ``name``; returns the event id."""
        return self._reaction(team_id, channel_id, ts, user, name, add=False)

    def _reaction(
        self, team_id: str, channel_id: str, ts: str, user: str, name: str, add: bool
    ) -> str | None:
        def act() -> str | None:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            msg = self.state.message(ch, ts)
            users = msg.reactions.setdefault(name, [])
            if add and user not in users:
                users.append(user)
            elif not add and user in users:
                users.remove(user)
            if not users:
                del msg.reactions[name]
            kind = "reaction_added" if add else "reaction_removed"
            return self.state.emit(team_id, reaction_event(kind, user, name, ch, msg))

        return self.call(act)

    def rename_channel(self, team_id: str, channel_id: str, name: str) -> str | None:
        """Someone renames a channel (``channel_rename``)."""

        def act() -> str | None:
            ch = self.state.channel(self.state.workspaces[team_id], channel_id)
            ch.name = name
            return self.state.emit(
                team_id,
                {
                    "type": "channel_rename",
                    "channel": {
                        "id": ch.id,
                        "name": name,
                        "name_normalized": name,
                        "created": 1700000000,
                    },
                },
            )

        return self.call(act)

    def archive(self, team_id: str, channel_id: str, user: str) -> str | None:
        """``user`` archives a channel (``channel_archive``)."""
        return self._set_archived(team_id, channel_id, user, True)

    def unarchive(self, team_id: str, channel_id: str, user: str) -> str | None:
        """``user`` unarchives a channel (``channel_unarchive``)."""
        return self._set_archived(team_id, channel_id, user, False)

    def _set_archived(
        self, team_id: str, channel_id: str, user: str, archived: bool
    ) -> str | None:
        def act() -> str | None:
            ch = self.state.channel(self.state.workspaces[team_id], channel_id)
            ch.is_archived = archived
            kind = "channel_archive" if archived else "channel_unarchive"
            return self.state.emit(team_id, {"type": kind, "channel": ch.id, "user": user})

        return self.call(act)

    def join(self, team_id: str, channel_id: str, user: str) -> str | None:
        """``user`` joins: a ``channel_join`` message and ``member_joined_channel``."""
        return self._membership(team_id, channel_id, user, joined=True)

    def leave(self, team_id: str, channel_id: str, user: str) -> str | None:
        """``user`` leaves: a ``channel_leave`` message and ``member_left_channel``."""
        return self._membership(team_id, channel_id, user, joined=False)

    def _membership(
        self, team_id: str, channel_id: str, user: str, joined: bool, inviter: str | None = None
    ) -> str | None:
        def act() -> str | None:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            if joined and user not in ch.members:
                ch.members.append(user)
            elif not joined and user in ch.members:
                ch.members.remove(user)
            verb = "joined" if joined else "left"
            msg = Message(
                self.state.clock.next(),
                ch.id,
                f"<@{user}> has {verb} the channel",
                user=user,
                team=team_id,
                subtype="channel_join" if joined else "channel_leave",
            )
            self.state.add_message(ch, msg)
            self.state.emit(team_id, message_event(ws, ch, msg))
            event = {
                "type": f"member_{verb}_channel",
                "user": user,
                "channel": ch.id,
                "channel_type": "G" if ch.is_private else "C",
                "team": team_id,
            }
            if inviter:
                event["inviter"] = inviter
            return self.state.emit(team_id, event)

        return self.call(act)

    def bot_message(
        self,
        team_id: str,
        channel_id: str,
        bot_id: str,
        text: str,
        *,
        username: str | None = None,
        icons: dict[str, str] | None = None,
        app_id: str = "A0OTHERAPP1",
        user: str | None = None,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> str:
        """Another app posts (text, Block Kit ``blocks``, legacy ``attachments``); without
        ``user`` it is a legacy ``bot_message``. Returns the ts."""

        def act() -> str:
            ws = self.state.workspaces[team_id]
            ch = self.state.channel(ws, channel_id)
            msg = Message(
                self.state.clock.next(),
                ch.id,
                text,
                user=user,
                bot_id=bot_id,
                app_id=app_id,
                username=username,
                icons=icons,
                team=team_id,
                thread_ts=thread_ts,
                blocks=blocks,
                attachments=attachments,
                subtype=None if user else "bot_message",
                bot_profile={
                    "id": bot_id,
                    "app_id": app_id,
                    "name": username or bot_id,
                    "deleted": False,
                    "updated": 1700000000,
                    "team_id": team_id,
                },
            )
            self.state.add_message(ch, msg)
            self.state.emit(team_id, message_event(ws, ch, msg))
            return msg.ts

        return self.call(act)

    def remove_bot(self, team_id: str, channel_id: str, *, by: str) -> str | None:
        """Member ``by`` removes the app's bot from a channel (``/kick``): the bot's
        ``member_left_channel``; later writes there answer ``not_in_channel``."""
        bot = self.installation(team_id).bot_user_id
        return self._membership(team_id, channel_id, bot, joined=False)

    def invite_bot(self, team_id: str, channel_id: str, *, by: str) -> str | None:
        """Member ``by`` invites the bot back: ``member_joined_channel`` with ``inviter``."""
        bot = self.installation(team_id).bot_user_id
        return self._membership(team_id, channel_id, bot, joined=True, inviter=by)

    def convert_to_private(self, team_id: str, channel_id: str) -> None:
        """An admin makes a public channel private (it keeps its id; the app can no longer
        ``conversations.join`` it)."""

        def apply() -> None:
            self.state.workspaces[team_id].channels[channel_id].is_private = True

        self.call(apply)

    def open_dm(self, team_id: str, user: str) -> str:
        """``user`` opens a direct message with the app's bot (its Messages tab); returns the
        IM's id (the same one ``conversations.open`` would give the app)."""

        def open_() -> str:
            ws = self.state.workspaces[team_id]
            inst = ws.installation
            assert inst is not None
            members = sorted({inst.bot_user_id, user})
            for ch in ws.channels.values():
                if ch.is_im and sorted(ch.members) == members:
                    return ch.id
            ch = Channel(self.state.new_id("D"), name=user, is_im=True, members=members)
            ws.channels[ch.id] = ch
            return ch.id

        return self.call(open_)

    def open_group_dm(self, team_id: str, channel_id: str, users: Iterable[str]) -> str:
        """People open a group DM that includes the app's bot (channel_type ``mpim``, a private
        conversation named ``mpdm-a--b--c-1``): https://api.slack.com/types/mpim."""

        def open_() -> str:
            ws = self.state.workspaces[team_id]
            assert ws.installation is not None
            people = sorted({*users, ws.installation.bot_user_id})
            names = "--".join(ws.users[u].name for u in people if u in ws.users)
            ch = Channel(
                channel_id,
                f"mpdm-{names}-1",
                is_private=True,
                is_mpim=True,
                members=people,
            )
            ws.channels[channel_id] = ch
            return ch.id

        return self.call(open_)

    def dm(self, team_id: str, user: str) -> str | None:
        """The id of the app's direct-message channel with ``user``, once the app opened it."""

        def find() -> str | None:
            inst = self.state.workspaces[team_id].installation
            want = sorted({user, inst.bot_user_id if inst else ""})
            for ch in self.state.workspaces[team_id].channels.values():
                if ch.is_im and sorted(ch.members) == want:
                    return ch.id
            return None

        return self.call(find)

    def uninstall(self, team_id: str) -> None:
        """The workspace removes the app: ``tokens_revoked``, ``app_uninstalled``, tokens dead."""

        def act() -> None:
            inst = self.state.workspaces[team_id].installation
            assert inst is not None
            self.state.emit(
                team_id,
                {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [inst.bot_user_id]}},
            )
            self.state.emit(team_id, {"type": "app_uninstalled"})
            inst.revoked = True
            self.state.tokens.pop(inst.bot_token, None)
            self.state.revoked_tokens[inst.bot_token] = team_id

        self.call(act)

    def send_event(self, team_id: str, event: dict[str, Any]) -> str | None:
        """Deliver an arbitrary Events API ``event`` to the app; returns its event id."""
        return self.call(lambda: self.state.emit(team_id, dict(event)))

    def add_app_token(self, team_id: str) -> str:
        """A new app-level (``xapp-``) token of ``team_id``'s own app, with its own Socket Mode
        hub (SyncBot installs may run one app per workspace); a second token for the same
        workspace belongs to the same app, so it shares the hub."""
        token = f"xapp-1-{team_id}-{secrets.token_hex(8)}"

        def add() -> None:
            hub = self.team_hubs.get(team_id)
            if hub is None:
                hub = self.team_hubs[team_id] = SocketHub(self.socket_settings, team_id)
            self.hubs[token] = hub
            self.state.app_tokens.add(token)

        self.call(add)
        return token

    def socket_hub(self, team_id: str | None = None) -> SocketHub:
        """The Socket Mode hub of ``team_id``'s own app (``None``: the default app's)."""
        return self.hub if team_id is None else self.team_hubs[team_id]

    def send_socket(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        accepts_response_payload: bool = False,
        *,
        team_id: str | None = None,
    ) -> str:
        """Send an ``interactive``/``slash_commands``/... envelope over Socket Mode (to
        ``team_id``'s own app, or the default app)."""
        hub = self.socket_hub(team_id)
        return str(self.run_coro(hub.send(envelope_type, payload, accepts_response_payload)))

    def socket_disconnect(
        self, reason: str, connection: int | None = None, *, team_id: str | None = None
    ) -> None:
        """Send a ``disconnect`` frame (then close as Slack would after the grace)."""
        self.run_coro(self.socket_hub(team_id).disconnect(reason, connection))

    def socket_drop(self, connection: int | None = None, *, team_id: str | None = None) -> None:
        """Abort Socket Mode connections without a close frame."""
        self.run_coro(self.socket_hub(team_id).drop(connection))

    def socket_current(self, team_id: str | None = None) -> int | None:
        """Id of the app's newest open Socket Mode connection (``None``: none open)."""
        hub = self.socket_hub(team_id)
        return self.call(hub.current)

    def socket_closed(self, connection: int, team_id: str | None = None) -> bool:
        """Whether connection ``connection`` (greeted or not) has closed."""
        hub = self.socket_hub(team_id)
        return self.call(lambda: hub.history[connection - 1].closed.is_set())

    def socket_hellos(self, team_id: str | None = None) -> int:
        """How many of the app's sockets were greeted with ``hello``."""
        hub = self.socket_hub(team_id)
        return self.call(lambda: hub.hellos)

    def socket_overlaps(self, team_id: str | None = None) -> list[int]:
        """For each greeted socket, how many of the app's sockets were open at its ``hello``."""
        hub = self.socket_hub(team_id)
        return self.call(lambda: list(hub.overlaps))

    def socket_pending(self, team_id: str | None = None) -> set[str]:
        """Envelope ids sent but neither acknowledged nor given up on."""
        hub = self.socket_hub(team_id)
        return self.call(lambda: set(hub.pending))

    def socket_acks(self, team_id: str | None = None) -> list[dict[str, Any]]:
        """Acks the app's Socket Mode connections sent."""
        hub = self.socket_hub(team_id)
        return self.call(lambda: list(hub.acks))

    def silence_sockets(self, count: int, team_id: str | None = None) -> None:
        """Test knob: accept the app's next ``count`` sockets but never greet them."""
        hub = self.socket_hub(team_id)

        def apply() -> None:
            hub.silent = count

        self.call(apply)

    def connection_opens(self, app_token: str) -> int:
        """How many ``apps.connections.open`` calls ``app_token`` made (failed ones too)."""
        return sum(
            1 for c in self.calls if c.method == "apps.connections.open" and c.token == app_token
        )

    # --- inspection --------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every Web API call so far (a snapshot)."""
        return self.call(lambda: list(self.state.calls))

    def called(self, method: str, team_id: str | None = None) -> list[dict[str, Any]]:
        """Params of each call of ``method`` (optionally by one workspace's token)."""
        return [
            c.params
            for c in self.calls
            if c.method == method and (team_id is None or c.team_id == team_id)
        ]

    def messages(
        self, team_id: str, channel_id: str, *, include_deleted: bool = False
    ) -> list[Message]:
        """Copies of all messages of a channel incl. thread replies, oldest first."""

        def read() -> list[Message]:
            ch = self.state.workspaces[team_id].channels[channel_id]
            msgs = [m for m in ch.messages.values() if include_deleted or not m.deleted]
            # Copies: the originals keep changing on the fake's loop while the test reads.
            return copy.deepcopy(sorted(msgs, key=lambda m: float(m.ts)))

        return self.call(read)

    def message(self, team_id: str, channel_id: str, ts: str) -> Message:
        """A snapshot of one message as the channel holds it now (deleted ones too)."""
        return self.call(
            lambda: copy.deepcopy(self.state.workspaces[team_id].channels[channel_id].messages[ts])
        )

    def file_content(self, team_id: str, file_id: str) -> bytes:
        """The bytes uploaded for ``file_id``."""
        return self.call(lambda: self.state.workspaces[team_id].files[file_id].content)

    def find_message(
        self,
        team_id: str,
        channel_id: str,
        *,
        text: str | None = None,
        event_type: str | None = None,
        where: Callable[[Message], bool] | None = None,
    ) -> Message | None:
        """The first message whose text contains ``text`` / metadata has ``event_type``."""
        for msg in self.messages(team_id, channel_id):
            if text is not None and text not in msg.text:
                continue
            if event_type is not None and (msg.metadata or {}).get("event_type") != event_type:
                continue
            if where is not None and not where(msg):
                continue
            return msg
        return None

    def reactions(self, team_id: str, channel_id: str, ts: str) -> dict[str, list[str]]:
        """Reaction name -> users on one message."""
        return self.call(
            lambda: {
                k: list(v)
                for k, v in self.state.workspaces[team_id]
                .channels[channel_id]
                .messages[ts]
                .reactions.items()
            }
        )

    def files(self, team_id: str) -> list[FileObj]:
        """Completed uploads of ``team_id``."""
        return self.call(
            lambda: [f for f in self.state.workspaces[team_id].files.values() if f.uploaded]
        )

    def channel(self, team_id: str, channel_id: str) -> Channel:
        """A snapshot of the channel (mutate it only through actions)."""
        return self.call(
            lambda: copy.deepcopy(self.state.workspaces[team_id].channels[channel_id])
        )

    @property
    def emitted(self) -> list[dict[str, Any]]:
        """Every envelope the fake decided to deliver, in order."""
        return self.call(lambda: list(self.events.emitted))

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery attempt (HTTP), including retries."""
        return self.call(lambda: list(self.events.deliveries))

    @property
    def acks(self) -> list[dict[str, Any]]:
        """Socket Mode acks received."""
        return self.call(lambda: list(self.hub.acks))

    @property
    def socket_frames(self) -> list[dict[str, Any]]:
        """Socket Mode envelopes sent, including re-sends."""
        return self.call(lambda: list(self.hub.sent))

    @property
    def peers(self) -> set[tuple[str, int]]:
        """Client ``(host, port)`` of every Web API call: how many connections callers opened."""
        return self.call(lambda: {c.peer for c in self.state.calls if c.peer is not None})

    def pending_events(self) -> int:
        """Envelopes still being delivered or retried."""
        return self.call(lambda: self.events.pending)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no event delivery (incl. retries) is outstanding."""
        deadline = time.monotonic() + timeout
        while self.call(lambda: self.events.pending):
            if time.monotonic() > deadline:
                raise TimeoutError("fake Slack still delivering events")
            time.sleep(0.01)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` (a test-side check) until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            time.sleep(0.01)


def _mimetype(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "txt": "text/plain",
        "pdf": "application/pdf",
        "json": "application/json",
    }.get(ext, "application/octet-stream")
