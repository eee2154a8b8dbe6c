"""Bot commands: in a DM with the bridge bot, or prefixed (``!slack``) in any room.

``login app`` asks for the bot token, then the app token, redacting each message that carried
a token; the tokens are verified and stored encrypted by :class:`Workspaces`, and every
callback in ``on_login`` (Socket Mode start-up) is then called with the new workspace.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mautrix.types import EventID, EventType, RoomID
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.errors import RemoteError, SyncbotError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.permissions import Level, Permissions
from app.slack.workspaces import WorkspaceInfo, Workspaces
from app.store.models import Workspace
from app.store.syncs import SyncAdmin

log = logging.getLogger("syncbot.matrix.commands")

LoginHook = Callable[[WorkspaceInfo], Awaitable[None]]
_BOT_TOKEN = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
_APP_TOKEN = re.compile(r"^xapp-[A-Za-z0-9-]+$")

HELP = """\
Commands (prefix {prefix} in rooms, none in a DM with me):
  help               this text
  login app          log a Slack workspace in with a bot token (xoxb-) and an app token (xapp-)
  logout TEAM_ID     stop bridging a workspace
  status             logged-in workspaces and this room's sync
  link SYNC          add this room to the sync named SYNC
  unlink             remove this room from its sync"""

_NEEDS = {
    "help": Level.RELAY,
    "status": Level.USER,
    "login": Level.ADMIN,
    "logout": Level.ADMIN,
    "link": Level.ADMIN,
    "unlink": Level.ADMIN,
}


@dataclass
class _Login:
    bot_token: str | None = None


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
        workspaces: Workspaces | None,
        on_login: list[LoginHook],
    ) -> None:
        self._hs = homeserver
        self._prefix = prefix
        self._permissions = permissions
        self._syncs = syncs
        self._sessions = sessions
        self._workspaces = workspaces
        self._on_login = on_login
        # Pending `login app` dialogues by (room, user). Kept in memory on purpose: a half
        # finished login holding a token is not worth persisting; it is simply asked again.
        self._logins: dict[tuple[str, str], _Login] = {}

    async def is_dm(self, room_id: str) -> bool:
        async with matrix_errors("room members"):
            members = await self._hs.bot.get_joined_members(RoomID(room_id))
        return len(members) <= 2

    async def handle(self, event: dict[str, Any], *, dm: bool) -> bool:
        """Run the command in ``event`` if it is one; True when the event was consumed."""
        content = event.get("content") or {}
        if content.get("msgtype") not in ("m.text", "m.notice"):
            return False
        body = str(content.get("body") or "").strip()
        room, sender = str(event["room_id"]), str(event["sender"])
        pending = self._logins.get((room, sender))
        if pending is not None and dm and not body.startswith(self._prefix):
            await self._login_step(event, pending, body)
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
        if needed is None:
            await self._reply(room, f"Unknown command {name!r}. Try `{self._prefix} help`.")
            return True
        if self._permissions.level(sender) < needed:
            await self._reply(room, f"You are not allowed to use {name!r}.")
            return True
        try:
            await getattr(self, f"_cmd_{name}")(event, args)
        except SyncbotError as exc:
            await self._reply(room, f"{name} failed: {exc}")
        return True

    async def _reply(self, room: str, text: str) -> None:
        content = {"msgtype": "m.notice", "body": text, "m.mentions": {}}
        async with matrix_errors("reply"):
            await self._hs.bot.send_message_event(RoomID(room), EventType.ROOM_MESSAGE, content)

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
        if not args or args[0].lower() != "app":
            await self._reply(room, "Usage: login app")
            return
        if self._workspaces is None:
            await self._reply(room, "Slack is not configured on this bridge.")
            return
        if not await self.is_dm(room):
            await self._reply(room, "Tokens are secrets: send `login app` in a DM with me.")
            return
        self._logins[(room, sender)] = _Login()
        await self._reply(room, "Send the bot token (xoxb-...). I will redact it right away.")

    async def _login_step(self, event: dict[str, Any], login: _Login, body: str) -> None:
        room, sender = str(event["room_id"]), str(event["sender"])
        await self._redact(event)
        if login.bot_token is None:
            if not _BOT_TOKEN.match(body):
                await self._reply(room, "That is not a bot token (xoxb-...). Login cancelled.")
                del self._logins[(room, sender)]
                return
            login.bot_token = body
            await self._reply(room, "Now the app-level token (xapp-...) for Socket Mode.")
            return
        del self._logins[(room, sender)]
        if not _APP_TOKEN.match(body):
            await self._reply(room, "That is not an app token (xapp-...). Login cancelled.")
            return
        assert self._workspaces is not None
        try:
            info = await self._workspaces.add(login.bot_token, body)
        except (RemoteError, SyncbotError) as exc:
            await self._reply(room, f"Slack refused the token: {exc}")
            return
        for hook in self._on_login:
            await hook(info)
        await self._reply(room, f"Logged in to {info.name} ({info.team_id}).")

    async def _cmd_logout(self, event: dict[str, Any], args: list[str]) -> None:
        room = event["room_id"]
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
                return int(result.rowcount or 0)  # type: ignore[attr-defined]

        changed = await asyncio.to_thread(deactivate)
        self._workspaces.forget(team)
        await self._reply(room, f"Logged out of {team}." if changed else f"No workspace {team}.")

    def _sync_of(self, room: str) -> str | None:
        endpoint = str(Endpoint.matrix(room))
        for view in self._syncs.list():
            if any(e == endpoint for e, _ in view.endpoints):
                return view.name
        return None

    async def _cmd_status(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        lines = []
        if self._workspaces is not None:
            infos = await asyncio.to_thread(self._workspaces.all)
            lines += [f"Workspace {i.name} ({i.team_id})" for i in infos] or ["No workspaces."]
        sync = await asyncio.to_thread(self._sync_of, room)
        lines.append(f"This room is in sync {sync!r}." if sync else "This room is not linked.")
        # The bridge health indicators of the seed, as `syncbot status` prints them.
        from app.health import format_report, gather

        lines.append(format_report(await asyncio.to_thread(gather, self._sessions)))
        await self._reply(room, "\n".join(lines))

    async def _cmd_link(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        if len(args) != 1:
            await self._reply(room, "Usage: link SYNC")
            return
        if await room_is_encrypted(self._hs, room):
            await self._reply(room, ENCRYPTED_REFUSAL)
            return
        await asyncio.to_thread(self._syncs.add, args[0], Endpoint.matrix(room))
        await self._reply(room, f"Linked this room to sync {args[0]!r}.")

    async def _cmd_unlink(self, event: dict[str, Any], args: list[str]) -> None:
        room = str(event["room_id"])
        sync = await asyncio.to_thread(self._sync_of, room)
        if sync is None:
            await self._reply(room, "This room is not linked.")
            return
        await asyncio.to_thread(self._syncs.remove, sync, Endpoint.matrix(room))
        await self._reply(room, f"Unlinked this room from sync {sync!r}.")


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


__all__ = ["ENCRYPTED_REFUSAL", "BotCommands", "LoginHook", "room_is_encrypted"]
