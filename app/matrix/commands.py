"""Bot commands: in a DM with the bridge bot, or prefixed (``!slack``) in any room.

``login app`` asks for the bot token, then the app token, redacting each message that carried
a token; the tokens are verified and stored encrypted by the workspace directory (the Slack
adapter's :class:`~app.slack.workspaces.Workspaces`, behind the core port), and every
callback in ``on_login`` (Socket Mode start-up, the workspace bridge's sync) is then called with
the new workspace and who logged it in where (that DM becomes their management room).
``login token`` asks for the user's own Slack user token (``xoxp-``), redacts it and hands it to
the puppet port (:class:`~app.core.puppets.PuppetLogins`): their DMs are bridged and their
messages reach Slack as themselves; ``logout`` (no workspace) forgets it.
``delete-portal`` removes a portal (seed §3.3: kick, unlink, forget; recreatable later).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mautrix.types import EventID, EventType, RoomAlias, RoomID
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.core.puppets import PuppetLogin, PuppetLogins
from app.core.workspaces import WorkspaceDirectory, WorkspaceInfo
from app.errors import RemoteError, SyncbotError
from app.matrix.event_content import as_content
from app.matrix.homeserver import Homeserver, is_missing, matrix_errors
from app.matrix.permissions import Level, Permissions
from app.matrix.portals import Portals
from app.store.login_dialogues import Dialogue, LoginDialogues
from app.store.models import Workspace
from app.store.rows import affected
from app.store.syncs import SyncAdmin

log = logging.getLogger("syncbot.matrix.commands")


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """Who ran ``login app``, and in which DM with the bot."""

    user_id: str
    room_id: str


# Called after a successful ``login app``; may return a line for the reply.
LoginHook = Callable[[WorkspaceInfo, LoginRequest], Awaitable[str | None]]
# Called after a successful ``login token``; may return a line for the reply.
PuppetLoginHook = Callable[[PuppetLogin, LoginRequest], Awaitable[str | None]]
LogoutHook = Callable[[str], Awaitable[None]]
_BOT_TOKEN = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
_APP_TOKEN = re.compile(r"^xapp-[A-Za-z0-9-]+$")
# Anything shaped like a Slack token (bot, user, app, refresh, config): never echoed or relayed.
_TOKEN_SHAPED = re.compile(r"\bx(?:ox[abprse]|app)-[A-Za-z0-9-]{6,}", re.IGNORECASE)
TOKEN_REMOVED = (
    "That looked like a Slack token, so I removed it. To log a workspace in, send "
    "`login app` in a DM with me first (`login token` to log in as yourself)."
)


# What each `login` asks for first.
LOGIN_PROMPTS = {
    "app": "Send the bot token (xoxb-...). I will redact it right away.",
    "token": "Send your Slack user token (xoxp-...). I will redact it right away.",
}


def _body(event: dict[str, Any]) -> str:
    """The text of a text or notice message (commands are never anything else), else ""."""
    content = event.get("content") or {}
    if content.get("msgtype") not in ("m.text", "m.notice"):
        return ""
    return str(content.get("body") or "").strip()


def looks_like_token(text: str) -> bool:
    """True when ``text`` contains something shaped like a Slack token."""
    return _TOKEN_SHAPED.search(text) is not None


HELP = """\
Commands (prefix {prefix} in rooms, none in a DM with me):
  help               this text
  login app          log a Slack workspace in with a bot token (xoxb-) and an app token (xapp-)
  login token        log in as yourself with your Slack user token (xoxp-): your DMs are
                     bridged and your messages reach Slack as you
  logout             forget your user token(s)
  logout TEAM_ID     stop bridging a workspace
  status             logged-in workspaces, your own logins and this room's sync
  link SYNC          add this room to the sync named SYNC
  unlink             remove this room from its sync
  delete-portal [ROOM]  delete this (or that) portal room; a new message recreates it"""

_NEEDS = {
    "help": Level.RELAY,
    "status": Level.USER,
    "login": Level.ADMIN,
    "logout": Level.ADMIN,
    "link": Level.ADMIN,
    "unlink": Level.ADMIN,
    "delete-portal": Level.ADMIN,
}


class BotCommands:
    """Parses and runs bot commands; replies as notices from the bot."""

    def __init__(
        self,
        homeserver: Homeserver,
        *,
        prefix: str,
        permissions: Permissions,
        syncs: SyncAdmin,
        sessions: sessionmaker[Session],
        workspaces: WorkspaceDirectory | None,
        on_login: list[LoginHook],
        on_logout: list[LogoutHook] | None = None,
        portals: Portals | None = None,
        dialogues: LoginDialogues,
        puppets: PuppetLogins | None = None,
        on_puppet_login: list[PuppetLoginHook] | None = None,
    ) -> None:
        self._hs = homeserver
        self._prefix = prefix
        self._permissions = permissions
        self._syncs = syncs
        self._sessions = sessions
        self._workspaces = workspaces
        self._on_login = on_login
        self._on_logout = on_logout if on_logout is not None else []
        self._portals = portals
        # Pending `login app` dialogues by (room, user), in the database (the token encrypted):
        # the next answer is understood after a restart and by any instance.
        self._dialogues = dialogues
        self._puppets = puppets
        self._on_puppet_login = on_puppet_login if on_puppet_login is not None else []

    async def is_dm(self, room_id: str) -> bool:
        async with matrix_errors("room members"):
            members = await self._hs.bot.get_joined_members(RoomID(room_id))
        return len(members) <= 2

    def is_command(self, event: dict[str, Any]) -> bool:
        """True for a message outside a DM that :meth:`handle` would consume."""
        return self.carries_token(event) or _body(event).startswith(self._prefix)

    def carries_token(self, event: dict[str, Any]) -> bool:
        return looks_like_token(_body(event))

    async def handle(self, event: dict[str, Any], *, dm: bool) -> bool:
        """Run the command in ``event`` if it is one; True when the event was consumed."""
        content = event.get("content") or {}
        if content.get("msgtype") not in ("m.text", "m.notice"):
            return False
        body = str(content.get("body") or "").strip()
        room, sender = str(event["room_id"]), str(event["sender"])
        pending = await asyncio.to_thread(self._dialogues.get, room, sender) if dm else None
        if pending is not None and not body.startswith(self._prefix):
            await self._login_step(event, pending, body)
            return True
        if looks_like_token(body):
            # Outside a login a token must go nowhere: not echoed, not relayed to Slack.
            await self._redact(event)
            await self._reply(room, TOKEN_REMOVED)
            log.warning("a message shaped like a token was removed", extra={"room": room})
            return True
        if body.startswith(self._prefix):
            body = body[len(self._prefix) :].strip()
        elif not dm:
            return False
        words = body.split()
        if not words:
            words = ["help"]
        name, args = words[0].lower(), words[1:]
        needed = _NEEDS.get(name)
        if name in ("login", "logout") and _own_login(args):
            # Logging oneself in or out is no admin's business.
            needed = Level.USER
        if needed is None:
            await self._reply(room, f"Unknown command {name[:40]!r}. Try `{self._prefix} help`.")
            return True
        if self._permissions.level(sender) < needed:
            await self._reply(room, f"You are not allowed to use {name!r}.")
            return True
        try:
            await getattr(self, f"_cmd_{name.replace('-', '_')}")(event, args)
        except SyncbotError as exc:
            await self._reply(room, f"{name} failed: {exc}")
        return True

    async def _reply(self, room: str, text: str) -> None:
        content = {"msgtype": "m.notice", "body": text, "m.mentions": {}}
        async with matrix_errors("reply"):
            await self._hs.bot.send_message_event(
                RoomID(room), EventType.ROOM_MESSAGE, as_content(content)
            )

    async def _redact(self, event: dict[str, Any]) -> None:
        try:
            async with matrix_errors("redact token"):
                await self._hs.bot.redact(
                    RoomID(event["room_id"]), EventID(event["event_id"]), reason="token"
                )
        except RemoteError:
            log.warning("could not redact a message carrying a token")

    async def _cmd_help(self, event: dict[str, Any], args: list[str]) -> None:
        await self._reply(event["room_id"], HELP.format(prefix=self._prefix))

    async def _cmd_login(self, event: dict[str, Any], args: list[str]) -> None:
        room, sender = str(event["room_id"]), str(event["sender"])
        kind = args[0].lower() if args else ""
        if kind not in ("app", "token"):
            await self._reply(room, "Usage: login app | login token")
            return
        configured = self._puppets if kind == "token" else self._workspaces
        if configured is None:
            await self._reply(room, "Slack is not configured on this bridge.")
            return
        if not await self.is_dm(room):
            await self._reply(room, f"Tokens are secrets: send `login {kind}` in a DM with me.")
            return
        await asyncio.to_thread(self._dialogues.start, room, sender, kind)
        await self._reply(room, LOGIN_PROMPTS[kind])

    async def _token_step(self, room: str, sender: str, body: str) -> None:
        await asyncio.to_thread(self._dialogues.end, room, sender)
        assert self._puppets is not None
        try:
            who = await self._puppets.login(sender, body, management_room=room)
        except RemoteError as exc:
            # Slack's error code only: the message never quotes the token.
            await self._reply(room, f"Slack refused the token: {exc.code or 'unreachable'}.")
            return
        except SyncbotError as exc:
            await self._reply(room, f"Login cancelled: {exc}.")
            return
        lines = [
            f"Logged in to {who.team_name} ({who.team_id}) as {who.user_name}. Your direct "
            "messages are bridged, and what you write in bridged rooms reaches Slack as you."
        ]
        request = LoginRequest(user_id=sender, room_id=room)
        for hook in self._on_puppet_login:
            try:
                extra = await hook(who, request)
            except Exception:
                log.warning("login token hook failed", exc_info=True)
                extra = None
            if extra:
                lines.append(extra)
        await self._reply(room, "\n".join(lines))

    async def _login_step(self, event: dict[str, Any], login: Dialogue, body: str) -> None:
        room, sender = str(event["room_id"]), str(event["sender"])
        await self._redact(event)
        if login.kind == "token":
            await self._token_step(room, sender, body)
            return
        if login.bot_token is None:
            if not _BOT_TOKEN.match(body):
                await self._reply(room, "That is not a bot token (xoxb-...). Login cancelled.")
                await asyncio.to_thread(self._dialogues.end, room, sender)
                return
            await asyncio.to_thread(self._dialogues.give_bot_token, room, sender, body)
            await self._reply(room, "Now the app-level token (xapp-...) for Socket Mode.")
            return
        await asyncio.to_thread(self._dialogues.end, room, sender)
        if not _APP_TOKEN.match(body):
            await self._reply(room, "That is not an app token (xapp-...). Login cancelled.")
            return
        assert self._workspaces is not None
        try:
            info = await self._workspaces.add(login.bot_token, body)
        except (RemoteError, SyncbotError) as exc:
            await self._reply(room, f"Slack refused the token: {exc}")
            return
        lines = [f"Logged in to {info.name} ({info.team_id})."]
        request = LoginRequest(user_id=sender, room_id=room)
        for hook in self._on_login:
            try:
                extra = await hook(info, request)
            except Exception:
                # The workspace is stored; what failed (a connection, a sync) retries at start.
                log.warning("login hook failed", exc_info=True)
                extra = "Part of the set-up failed; it is retried when the bridge restarts."
            if extra:
                lines.append(extra)
        await self._reply(room, "\n".join(lines))

    async def _cmd_logout(self, event: dict[str, Any], args: list[str]) -> None:
        room = event["room_id"]
        if _own_login(args):
            await self._forget_token(room, str(event["sender"]), args)
            return
        if len(args) != 1 or self._workspaces is None:
            await self._reply(room, "Usage: logout TEAM_ID")
            return
        team = args[0].upper()

        def deactivate() -> int:
            with self._sessions() as s, s.begin():
                result = s.execute(
                    update(Workspace)
                    .where(Workspace.team_id == team)
                    .values(status="uninstalled", bot_token_enc=None, app_token_enc=None)
                )
                return affected(result)

        changed = await asyncio.to_thread(deactivate)
        self._workspaces.forget(team)
        for hook in self._on_logout:
            await hook(team)
        await self._reply(room, f"Logged out of {team}." if changed else f"No workspace {team}.")

    async def _forget_token(self, room: str, sender: str, args: list[str]) -> None:
        team = args[1].upper() if len(args) > 1 else None
        forgotten = await self._puppets.logout(sender, team) if self._puppets else []
        if forgotten:
            await self._reply(room, f"Forgot your user token for {', '.join(forgotten)}.")
        else:
            await self._reply(room, "You are not logged in with a user token.")

    def _sync_of(self, room: str) -> str | None:
        return sync_of_room(self._syncs, room)

    async def _cmd_status(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        lines = []
        if self._workspaces is not None:
            infos = await asyncio.to_thread(self._workspaces.all)
            lines += [f"Workspace {i.name} ({i.team_id})" for i in infos] or ["No workspaces."]
        if self._puppets is not None:
            mine = await self._puppets.logins(str(event["sender"]))
            lines += [f"You are {p.user_id} in {p.team_name} ({p.team_id})." for p in mine]
        sync = await asyncio.to_thread(self._sync_of, room)
        lines.append(f"This room is in sync {sync!r}." if sync else "This room is not linked.")
        if self._portals is not None:
            counts = await asyncio.to_thread(self._portals.counts)
            shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
            lines.append(f"Portals: {shown or 'none'}.")
        # The bridge health indicators of the seed, as `syncbot status` prints them.
        from app.health import format_report, gather

        lines.append(format_report(await asyncio.to_thread(gather, self._sessions)))
        await self._reply(room, "\n".join(lines))

    async def _cmd_link(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        if len(args) != 1:
            await self._reply(room, "Usage: link SYNC")
            return
        try:
            await link_room(self._hs, self._syncs, room, args[0])
        except LinkRefused as exc:
            await self._reply(room, str(exc))
            return
        await self._reply(room, f"Linked this room to sync {args[0]!r}.")

    async def _cmd_unlink(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        sync = await unlink_room(self._syncs, room)
        if sync is None:
            await self._reply(room, "This room is not linked.")
            return
        await self._reply(room, f"Unlinked this room from sync {sync!r}.")

    async def _cmd_delete_portal(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        if self._portals is None or len(args) > 1:
            await self._reply(room, "Usage: delete-portal [ROOM_ID or #alias]")
            return
        try:
            target = await resolve_room(self._hs, args[0]) if args else room
        except LinkRefused:
            target = None
        portal = await asyncio.to_thread(self._portals.by_room, target) if target else None
        if portal is None or target is None:
            await self._reply(room, "That room is not a portal.")
            return
        if target == room:
            # The room is about to be emptied: say so while we can still speak in it.
            await self._reply(room, "Deleting this portal: everyone is removed from the room.")
        await self._portals.delete(Endpoint.parse(portal.endpoint))
        if target != room:
            await self._reply(room, f"Deleted the portal of {portal.endpoint} ({target}).")


def _own_login(args: list[str]) -> bool:
    """``login token``, ``logout`` and ``logout token [TEAM]``: a user's own token."""
    return (not args) or args[0].lower() == "token"


ENCRYPTED_REFUSAL = (
    "This room is end-to-end encrypted, and the bridge cannot read or send encrypted "
    "messages. Use an unencrypted room."
)


async def room_is_encrypted(homeserver: Homeserver, room: str) -> bool:
    try:
        async with matrix_errors("room encryption state"):
            await homeserver.bot.get_state_event(RoomID(room), EventType.ROOM_ENCRYPTION)
    except RemoteError as exc:
        if exc.status == 404:
            return False
        raise
    return True


# Room ids of versions up to 11 carry their server; aliases always do.
_ROOM_ID = re.compile(r"^![^:\s/]+:[^\s/]+$")
_ALIAS = re.compile(r"^#[^:\s]+:[^\s/]+$")


class LinkRefused(SyncbotError):
    """A room that cannot be linked: malformed, unknown, not joinable or encrypted."""


async def resolve_room(homeserver: Homeserver, ref: str) -> str:
    """The room id of ``ref`` (a room id or an alias).

    Raises:
        LinkRefused: ``ref`` is neither, or the alias does not exist.
    """
    ref = ref.strip()
    if _ROOM_ID.match(ref):
        return ref
    if not _ALIAS.match(ref):
        raise LinkRefused(f"{ref!r} is not a room id (!room:server) or alias (#name:server)")
    try:
        async with matrix_errors("resolve alias"):
            found = await homeserver.bot.resolve_room_alias(RoomAlias(ref))
    except RemoteError as exc:
        if is_missing(exc):
            raise LinkRefused(f"no room has the alias {ref}") from None
        raise
    return str(found.room_id)


async def link_room(
    homeserver: Homeserver, syncs: SyncAdmin, ref: str, sync_name: str, *, join: bool = False
) -> str:
    """Make the room ``ref`` (id or alias) an endpoint of the sync ``sync_name``.

    The ``link`` command runs inside the room, where the bot already is; a link made from
    elsewhere (the Slack App Home) has the bot join first, so it can read the room's state and
    relay its messages. Returns the room id.

    Raises:
        LinkRefused: the room cannot be bridged (bad reference, bot not allowed in, encrypted).
        SyncAdminError: no such sync, or the room is in a sync already.
        RemoteError: the homeserver failed.
    """
    room = await resolve_room(homeserver, ref)
    if join:
        try:
            async with matrix_errors("join"):
                await homeserver.bot.join_room(RoomID(room))
        except RemoteError as exc:
            if exc.retryable:
                raise
            raise LinkRefused(
                f"the bridge bot {homeserver.ids.bot} cannot join {ref}: invite it first"
            ) from None
    if await room_is_encrypted(homeserver, room):
        if join:
            async with matrix_errors("leave encrypted room"):
                await homeserver.bot.leave_room(RoomID(room))
        raise LinkRefused(ENCRYPTED_REFUSAL)
    await asyncio.to_thread(syncs.add, sync_name, Endpoint.matrix(room))
    return room


def sync_of_room(syncs: SyncAdmin, room: str) -> str | None:
    """The name of the sync the room is an endpoint of, if any."""
    return syncs.sync_of(Endpoint.matrix(room))


async def unlink_room(syncs: SyncAdmin, room: str) -> str | None:
    """Take the room out of its sync; returns the sync's name, or None when it was in none."""

    def remove() -> str | None:
        sync = sync_of_room(syncs, room)
        if sync is not None:
            syncs.remove(sync, Endpoint.matrix(room))
        return sync

    return await asyncio.to_thread(remove)


class MatrixRoomLinks:
    """The core's :class:`~app.core.links.RoomLinks` port for Matrix rooms (the App Home's
    links): the bot joins the room first, as it is not in it yet."""

    def __init__(self, homeserver: Homeserver, syncs: SyncAdmin) -> None:
        self._hs = homeserver
        self._syncs = syncs

    @property
    def bot(self) -> str:
        return str(self._hs.ids.bot)

    async def link(self, ref: str, sync_name: str) -> str:
        return await link_room(self._hs, self._syncs, ref, sync_name, join=True)


__all__ = [
    "ENCRYPTED_REFUSAL",
    "BotCommands",
    "LinkRefused",
    "LoginHook",
    "MatrixRoomLinks",
    "PuppetLoginHook",
    "link_room",
    "resolve_room",
    "room_is_encrypted",
    "sync_of_room",
    "unlink_room",
]
