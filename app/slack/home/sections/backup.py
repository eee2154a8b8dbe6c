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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

import aiohttp

from app.errors import SyncbotError
from app.slack.files import slack_file_host
from app.slack.home.access import Need
from app.slack.home.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    file_element,
    header,
    input_block,
    modal,
    notice_view,
    section,
)
from app.slack.home.kit import Click, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
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
RESET_WARNING = (
    "Delete every row of the database? Every workspace will have to install syncbot again. "
    "This cannot be undone (download a backup first)."
)


def restore_view() -> Block:
    """The modal that asks for the backup file to restore."""
    return modal(
        RESTORE_VIEW,
        "Restore a backup",
        [
            section(RESTORE_WARNING),
            input_block(
                FILE_BLOCK,
                "Backup file",
                file_element(action_id=FILE_ACTION, max_files=1),
                hint="A file made by Download backup or `syncbot backup`.",
            ),
        ],
        submit="Restore",
    )


def _describe(summary: BackupSummary) -> str:
    return (
        f"{summary.total_rows} rows in {len(summary.tables)} tables, "
        f"schema `{summary.schema_revision}`, made {summary.created_at:%Y-%m-%d %H:%M} UTC"
    )


class BackupSection(Section):
    """The backup part of the home tab; every route needs an operator (see :class:`Need`)."""

    key = "backup"

    def __init__(self, services: Services, *, max_restore_bytes: int = MAX_RESTORE_BYTES) -> None:
        super().__init__(services)
        self._max_restore_bytes = max_restore_bytes
        # One backup operation at a time per process; the database keeps other processes honest.
        self._busy = asyncio.Lock()

    def _reset_allowed(self, team_id: str) -> bool:
        return self.services.settings.enable_db_reset and self.access.is_primary(team_id)

    def visible(self, viewer: Viewer) -> bool:
        return self.access.is_operator(viewer)

    async def blocks(self, viewer: Viewer) -> list[Block]:
        if not self.visible(viewer):
            return []
        buttons = [button("Download backup", DOWNLOAD), button("Restore", OPEN_RESTORE)]
        if self._reset_allowed(viewer.team_id):
            confirm = confirm_dialog(
                "Reset the database?", RESET_WARNING, yes="Delete everything", no="Cancel"
            )
            buttons.append(button("Reset database", RESET, style="danger", confirm=confirm))
        return [
            header("Backup and restore"),
            section(INTRO),
            actions("backup.actions", *buttons),
        ]

    def routes(self) -> Iterable[Route]:
        return [
            OnClick(DOWNLOAD, self._on_download, need=Need.OPERATOR),
            OnClick(OPEN_RESTORE, self._on_open_restore, need=Need.OPERATOR),
            OnClick(RESET, self._on_reset, need=Need.OPERATOR),
            OnSubmit(RESTORE_VIEW, self._on_restore_submit, need=Need.OPERATOR),
        ]

    async def _dm(self, api: SlackApi, viewer: Viewer) -> str:
        opened = await api.call("conversations.open", users=viewer.user_id)
        return str(opened["channel"]["id"])

    async def _tell(self, api: SlackApi, viewer: Viewer, text: str) -> None:
        try:
            await api.call("chat.postMessage", channel=await self._dm(api, viewer), text=text)
        except SyncbotError as exc:
            log.warning("could not message the admin", extra={"error": str(exc)})

    # --- download ----------------------------------------------------------------------------

    async def _on_download(self, click: Click) -> None:
        self.background.start(self._download(click.viewer), "syncbot-backup")

    async def _download(self, viewer: Viewer) -> None:
        api = self.api(viewer)
        if self._busy.locked():
            await self._tell(
                api, viewer, "Another backup, restore or reset is running; try later."
            )
            return
        async with self._busy:
            services = self.services
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

    async def _on_open_restore(self, click: Click) -> None:
        await click.open(restore_view())

    async def _on_restore_submit(self, form: Form) -> None:
        files = form.state(FILE_BLOCK).get("files") or []
        file_id = str((files[0] or {}).get("id") or "") if files else ""
        if not file_id:
            await form.error(FILE_BLOCK, "Choose a backup file.")
            return
        if self._busy.locked():
            await form.error(FILE_BLOCK, "Another backup, restore or reset is running; try later.")
            return
        await form.update(notice_view("Restoring…", "Checking the backup, then restoring it…"))
        self.background.start(
            self._restore(form.viewer, file_id, str(form.view.get("id") or "")), "syncbot-restore"
        )

    async def _restore(self, viewer: Viewer, file_id: str, view_id: str) -> None:
        api = self.api(viewer)
        services = self.services
        async with self._busy:
            teams_before = await asyncio.to_thread(recorded_team_ids, self.services.sessions)
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
                await asyncio.to_thread(self.home.touch, *sorted(teams))
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
        if not slack_file_host(str(url), self.services.slack.workspaces.api_url):
            # The bot token goes to Slack's own file hosts only (SECURITY.md).
            raise BackupError("Slack gave a download address outside Slack")
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

    async def _on_reset(self, click: Click) -> None:
        if not self._reset_allowed(click.viewer.team_id):
            await click.refuse()
            return
        self.background.start(self._reset(click.viewer), "syncbot-reset")

    async def _reset(self, viewer: Viewer) -> None:
        # Take the client and the DM first: the workspace's own token goes with the reset.
        api = self.api(viewer)
        channel = await self._dm(api, viewer)
        if self._busy.locked():
            await api.call(
                "chat.postMessage",
                channel=channel,
                text="Another backup, restore or reset is running; try later.",
            )
            return
        async with self._busy:
            teams = await asyncio.to_thread(recorded_team_ids, self.services.sessions)
            await asyncio.to_thread(reset_database, self.services.engine)
            for team in teams:
                self.services.slack.workspaces.forget(team)
        log.warning("database reset from the App Home", extra={"team": viewer.team_id})
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        await api.call(
            "chat.postMessage",
            channel=channel,
            text=f"The database was reset at {stamp}: every table is empty. Every workspace "
            "must install syncbot again (this one too).",
        )
        await asyncio.to_thread(self.home.touch, *sorted(teams))
