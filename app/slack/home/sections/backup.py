"""The backup part of the App Home: download a backup, restore one, reset the database.

Shown only to admins of the PRIMARY_WORKSPACE; every click is checked again (admin, primary
workspace, and ENABLE_DB_RESET for the reset), whatever the button's presence suggested.

* **Download backup** writes a backup (:mod:`app.store.backup`) and uploads it to the admin's DM
  with the bot through the files v2 flow.
* **Restore** opens a modal with a file input; on submit the bot downloads the chosen file with its
  own token (``files.info`` -> ``url_private_download``), and the restore refuses it unless it is
  authenticated, of this schema and its secrets decrypt; the modal then shows the outcome.
* **Reset database** (only with ENABLE_DB_RESET=true) asks for confirmation in Slack's dialog,
  then deletes every row.

The work runs in a task of its own after the click is acknowledged: Slack wants an answer in 3
seconds and a large database takes longer. Behind an HTTP server or Socket Mode the process lives
on; on a function platform that freezes after the response, use ``syncbot backup``/``restore``.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import aiohttp

from app.errors import SyncbotError
from app.slack.home.section import Block, HomeRefresher, Viewer, notice_view
from app.slack.home.sections.access import Background, actor, is_workspace_admin, refuse
from app.slack.mrkdwn import escape
from app.slack.webapi import SlackApi
from app.store.backup import (
    BackupError,
    BackupSummary,
    backup_mac_key,
    reset_database,
    restore_backup,
    write_backup,
)
from app.store.sync_scope import recorded_team_ids

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from app.services import Services

log = logging.getLogger("syncbot.slack.home.backup")

DOWNLOAD = "home.backup.download"
OPEN_RESTORE = "home.backup.restore"
RESET = "home.backup.reset"
RESTORE_VIEW = "home.backup.restore_view"
FILE_BLOCK = "backup_file"
FILE_ACTION = "file"
# A backup uploaded for restore is refused above this size (it is spooled to disk first).
MAX_RESTORE_BYTES = 1024 * 1024 * 1024
_CHUNK = 256 * 1024
_SPOOL = 8 * 1024 * 1024

INTRO = (
    "A backup holds every table of syncbot's database. Tokens stay encrypted, and the file "
    "restores only where the same `TOKEN_ENCRYPTION_KEY` is configured. It also holds people's "
    "e-mail addresses: keep it private."
)
RESTORE_WARNING = (
    ":warning: Restoring replaces *every* row of the database (all workspaces, syncs and "
    "settings) with the backup's. Rows written since the backup was made are lost."
)
REFUSED = "Only admins and owners of the primary workspace can back up, restore or reset syncbot."
RESET_WARNING = (
    "Delete every row of the database? Every workspace will have to install syncbot again. "
    "This cannot be undone (download a backup first)."
)


def _text(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def restore_view() -> Block:
    """The modal that asks for the backup file to restore."""
    return {
        "type": "modal",
        "callback_id": RESTORE_VIEW,
        "title": _text("Restore a backup"),
        "submit": _text("Restore"),
        "close": _text("Cancel"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": RESTORE_WARNING}},
            {
                "type": "input",
                "block_id": FILE_BLOCK,
                "label": _text("Backup file"),
                "hint": _text("A file made by Download backup or `syncbot backup`."),
                "element": {"type": "file_input", "action_id": FILE_ACTION, "max_files": 1},
            },
        ],
    }


def _describe(summary: BackupSummary) -> str:
    return (
        f"{summary.total_rows} rows in {len(summary.tables)} tables, "
        f"schema `{summary.schema_revision}`, made {summary.created_at:%Y-%m-%d %H:%M} UTC"
    )


class BackupSection:
    """Implements :class:`~app.slack.home.section.HomeSection` for backups and the reset."""

    key = "backup"

    def __init__(self, services: Services, *, max_restore_bytes: int = MAX_RESTORE_BYTES) -> None:
        self._services = services
        self._max_restore_bytes = max_restore_bytes
        self._home: HomeRefresher | None = None
        # One backup operation at a time per process; the database keeps other processes honest.
        self._busy = asyncio.Lock()
        # Clicks answered at once; the work they started runs on here.
        self._background = Background()

    # --- HomeSection -------------------------------------------------------------------------

    def _primary(self, team_id: str) -> bool:
        primary = self._services.settings.primary_workspace
        return bool(primary) and team_id == primary

    def _reset_allowed(self, team_id: str) -> bool:
        return self._services.settings.enable_db_reset and self._primary(team_id)

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self._primary(viewer.team_id)

    async def blocks(self, viewer: Viewer) -> list[Block]:
        if not self.visible(viewer):
            return []
        buttons: list[Block] = [
            {"type": "button", "action_id": DOWNLOAD, "text": _text("Download backup")},
            {"type": "button", "action_id": OPEN_RESTORE, "text": _text("Restore")},
        ]
        if self._reset_allowed(viewer.team_id):
            buttons.append(
                {
                    "type": "button",
                    "action_id": RESET,
                    "style": "danger",
                    "text": _text("Reset database"),
                    "confirm": {
                        "title": _text("Reset the database?"),
                        "text": {"type": "mrkdwn", "text": RESET_WARNING},
                        "confirm": _text("Delete everything"),
                        "deny": _text("Cancel"),
                        "style": "danger",
                    },
                }
            )
        return [
            {"type": "header", "text": _text("Backup and restore")},
            {"type": "section", "text": {"type": "mrkdwn", "text": INTRO}},
            {"type": "actions", "block_id": "backup.actions", "elements": buttons},
        ]

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        self._home = home
        bolt.action(DOWNLOAD)(self._on_download)
        bolt.action(OPEN_RESTORE)(self._on_open_restore)
        bolt.action(RESET)(self._on_reset)
        bolt.view(RESTORE_VIEW)(self._on_restore_submit)

    async def wait_idle(self) -> None:
        """Wait until the backup work started by clicks so far has finished."""
        await self._background.settle()

    # --- checks ------------------------------------------------------------------------------

    async def _allowed(self, body: dict[str, Any]) -> Viewer | None:
        """The acting user when they may use this part now, asked of Slack on every click.

        The shell has gated the request already; this part guards the whole database, so it
        checks again (a shown button proves nothing, and admins can be demoted).
        """
        team, user = actor(body)
        if not user or not self._primary(team):
            log.info("refused a backup action outside the primary workspace")
            return None
        # Even with REQUIRE_ADMIN=false: replacing or wiping every workspace's data is a
        # workspace admin's decision, whoever else may configure syncs.
        try:
            data = await self._services.slack.workspaces.api(team).call("users.info", user=user)
        except SyncbotError as exc:
            log.warning("admin check failed", extra={"team": team, "error": str(exc)})
            return None
        if not is_workspace_admin(data.get("user") or {}):
            log.info("refused a non-admin's backup action", extra={"team": team})
            return None
        return Viewer(team, user, is_admin=True)

    async def _refuse(self, body: dict[str, Any]) -> None:
        await refuse(self._services, body, REFUSED)

    def _api(self, viewer: Viewer) -> SlackApi:
        return self._services.slack.workspaces.api(viewer.team_id)

    async def _dm(self, api: SlackApi, viewer: Viewer) -> str:
        opened = await api.call("conversations.open", users=viewer.user_id)
        return str(opened["channel"]["id"])

    async def _tell(self, api: SlackApi, viewer: Viewer, text: str) -> None:
        try:
            await api.call("chat.postMessage", channel=await self._dm(api, viewer), text=text)
        except SyncbotError as exc:
            log.warning("could not message the admin", extra={"error": str(exc)})

    # --- download ----------------------------------------------------------------------------

    async def _on_download(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        viewer = await self._allowed(body)
        if viewer is None:
            await self._refuse(body)
            return
        self._background.start(self._download(viewer), "syncbot-backup")

    async def _download(self, viewer: Viewer) -> None:
        api = self._api(viewer)
        if self._busy.locked():
            await self._tell(
                api, viewer, "Another backup, restore or reset is running; try later."
            )
            return
        async with self._busy:
            services = self._services
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
            with spool:
                try:
                    mac_key = backup_mac_key(services.settings)
                    summary = await asyncio.to_thread(
                        write_backup, services.engine, spool, mac_key=mac_key
                    )
                    size = spool.tell()
                    spool.seek(0)
                    await self._upload(api, viewer, spool, size, summary)
                except (SyncbotError, aiohttp.ClientError) as exc:
                    reason = str(exc) if isinstance(exc, SyncbotError) else type(exc).__name__
                    log.warning("backup download failed", extra={"error": reason})
                    await self._tell(api, viewer, f"The backup failed: {escape(reason)}")
                    return
        log.info(
            "backup sent to an admin", extra={"team": viewer.team_id, "rows": summary.total_rows}
        )

    async def _upload(
        self, api: SlackApi, viewer: Viewer, spool: IO[bytes], size: int, summary: BackupSummary
    ) -> None:
        channel = await self._dm(api, viewer)
        name = f"syncbot-{summary.created_at:%Y%m%dT%H%M%SZ}.backup"
        ticket = await api.call("files.getUploadURLExternal", filename=name, length=size)
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http,
            http.post(ticket["upload_url"], data=spool) as resp,
        ):
            if resp.status != 200:
                raise BackupError(f"the upload to Slack failed with HTTP {resp.status}")
        await api.call(
            "files.completeUploadExternal",
            files=[{"id": ticket["file_id"], "title": name}],
            channel_id=channel,
            initial_comment=f"syncbot backup: {_describe(summary)}. {INTRO}",
        )

    # --- restore -----------------------------------------------------------------------------

    async def _on_open_restore(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        viewer = await self._allowed(body)
        if viewer is None:
            await self._refuse(body)
            return
        await self._api(viewer).call(
            "views.open", trigger_id=body["trigger_id"], view=restore_view()
        )

    async def _on_restore_submit(self, ack: Any, body: dict[str, Any]) -> None:
        viewer = await self._allowed(body)
        if viewer is None:
            await ack(response_action="errors", errors={FILE_BLOCK: "Not allowed."})
            return
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        files = ((values.get(FILE_BLOCK) or {}).get(FILE_ACTION) or {}).get("files") or []
        file_id = str((files[0] or {}).get("id") or "") if files else ""
        if not file_id:
            await ack(response_action="errors", errors={FILE_BLOCK: "Choose a backup file."})
            return
        if self._busy.locked():
            await ack(
                response_action="errors",
                errors={FILE_BLOCK: "Another backup, restore or reset is running; try later."},
            )
            return
        await ack(
            response_action="update",
            view=notice_view("Restoring…", "Checking the backup, then restoring it…"),
        )
        self._background.start(
            self._restore(viewer, file_id, str(view.get("id") or "")), "syncbot-restore"
        )

    async def _restore(self, viewer: Viewer, file_id: str, view_id: str) -> None:
        api = self._api(viewer)
        services = self._services
        async with self._busy:
            teams_before = await asyncio.to_thread(recorded_team_ids, self._services.sessions)
            try:
                with await self._download_file(api, file_id) as spool:
                    summary = await asyncio.to_thread(
                        restore_backup,
                        services.engine,
                        spool,
                        mac_key=backup_mac_key(services.settings),
                        cipher=services.cipher,
                    )
            except SyncbotError as exc:
                log.info("restore refused", extra={"team": viewer.team_id, "error": str(exc)})
                outcome = notice_view("Not restored", f"Nothing was restored: {escape(str(exc))}")
            else:
                log.warning(
                    "database restored from a backup",
                    extra={"team": viewer.team_id, "rows": summary.total_rows},
                )
                outcome = notice_view("Restored", f"Restored {_describe(summary)}.")
                teams = teams_before | await asyncio.to_thread(
                    recorded_team_ids, services.sessions
                )
                # Cached clients and workspace facts are of the old rows.
                for team in teams:
                    services.slack.workspaces.forget(team)
                if self._home is not None:
                    await asyncio.to_thread(self._home.touch, *sorted(teams))
        await self._show(api, viewer, view_id, outcome)

    async def _show(self, api: SlackApi, viewer: Viewer, view_id: str, outcome: Block) -> None:
        if view_id:
            try:
                await api.call("views.update", view_id=view_id, view=outcome)
                return
            except SyncbotError:
                log.info("restore modal closed before its outcome was shown")
        text = outcome["blocks"][0]["text"]["text"]
        await self._tell(api, viewer, text)

    async def _download_file(self, api: SlackApi, file_id: str) -> IO[bytes]:
        """The file the admin chose, downloaded with the bot token into a temporary file."""
        info = (await api.call("files.info", file=file_id)).get("file") or {}
        url = info.get("url_private_download") or info.get("url_private")
        if not url:
            raise BackupError("Slack gave no download address for that file")
        if int(info.get("size") or 0) > self._max_restore_bytes:
            raise BackupError("that file is larger than any backup syncbot accepts")
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http,
                http.get(url, headers={"Authorization": f"Bearer {api.token}"}) as resp,
            ):
                # Without access Slack answers 200 with its login page rather than an error.
                if resp.status != 200 or resp.content_type == "text/html":
                    raise BackupError(f"the bot could not download that file (HTTP {resp.status})")
                size = 0
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > self._max_restore_bytes:
                        raise BackupError("that file is larger than any backup syncbot accepts")
                    spool.write(chunk)
        except aiohttp.ClientError as exc:
            spool.close()
            raise BackupError(f"downloading the file failed ({type(exc).__name__})") from None
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    # --- reset -------------------------------------------------------------------------------

    async def _on_reset(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        viewer = await self._allowed(body)
        if viewer is None or not self._reset_allowed(viewer.team_id):
            await self._refuse(body)
            return
        self._background.start(self._reset(viewer), "syncbot-reset")

    async def _reset(self, viewer: Viewer) -> None:
        # Take the client and the DM first: the workspace's own token goes with the reset.
        api = self._api(viewer)
        channel = await self._dm(api, viewer)
        if self._busy.locked():
            await api.call(
                "chat.postMessage",
                channel=channel,
                text="Another backup, restore or reset is running; try later.",
            )
            return
        async with self._busy:
            teams = await asyncio.to_thread(recorded_team_ids, self._services.sessions)
            await asyncio.to_thread(reset_database, self._services.engine)
            for team in teams:
                self._services.slack.workspaces.forget(team)
        log.warning("database reset from the App Home", extra={"team": viewer.team_id})
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        await api.call(
            "chat.postMessage",
            channel=channel,
            text=f"The database was reset at {stamp}: every table is empty. Every workspace "
            "must install syncbot again (this one too).",
        )
        if self._home is not None:
            await asyncio.to_thread(self._home.touch, *sorted(teams))
