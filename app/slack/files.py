"""Copying files into Slack with the files v2 flow (the retired ``files.upload`` is never used).

getUploadURLExternal -> POST the bytes to the returned URL -> completeUploadExternal into the
channel (and thread). Bytes are streamed from the source through a spooled temporary file, so a
large file costs disk, not memory, and anything over the size cap is refused early.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from typing import IO
from urllib.parse import urlsplit

import aiohttp

from app.core.endpoints import Endpoint
from app.core.events import FileRef
from app.core.files import MAX_FILE_BYTES, FileSource, FileSources, FileTooLarge
from app.egress import EgressPolicy
from app.errors import RemoteError
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.slack.files")

_CHUNK = 256 * 1024
_SPOOL = 8 * 1024 * 1024

__all__ = ["MAX_FILE_BYTES", "FileCopier", "FileTooLarge", "slack_file_source"]


def slack_file_host(url: str, api_url: str) -> bool:
    """Whether ``url`` is on one of Slack's own hosts, the only ones given a bot token.

    Slack serves shared files from ``files.slack.com`` (``url_private``); the configured API
    host counts too (a fake Slack in tests, a proxy an operator put in front of Slack).
    """
    host = (urlsplit(url).hostname or "").lower()
    if urlsplit(url).scheme not in ("http", "https") or not host:
        return False
    if host == (urlsplit(api_url).hostname or "").lower():
        return True
    return urlsplit(url).scheme == "https" and (host == "slack.com" or host.endswith(".slack.com"))


def slack_file_source(
    workspaces: Workspaces, *, policy: EgressPolicy | None = None, time_limit: float = 60.0
) -> FileSource:
    """Download a file shared in a Slack channel with that workspace's bot token.

    The token goes only to Slack's own hosts; the configured API host is trusted like the API
    itself, anything else on Slack's side goes through the egress policy.
    """
    egress = policy or EgressPolicy()

    async def fetch(source: Endpoint, ref: FileRef) -> AsyncIterator[bytes]:
        if not slack_file_host(ref.url, workspaces.api_url):
            raise RemoteError(
                "file is not on a Slack host; the bot token is not sent elsewhere",
                network="slack",
                retryable=False,
            )
        token = workspaces.api(source.slack_team).token
        headers = {"Authorization": f"Bearer {token}"}
        configured = urlsplit(ref.url).hostname == urlsplit(workspaces.api_url).hostname
        if not configured:
            async for chunk in egress.stream(
                ref.url,
                headers=headers,
                max_bytes=MAX_FILE_BYTES,
                time_limit=time_limit,
                network="slack",
            ):
                yield chunk
            return
        client_timeout = aiohttp.ClientTimeout(total=time_limit)
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as http,
            http.get(ref.url, headers=headers, allow_redirects=False) as resp,
        ):
            if resp.status != 200:
                raise RemoteError(
                    f"file download failed with HTTP {resp.status}",
                    network="slack",
                    status=resp.status,
                    retryable=resp.status >= 500 or resp.status == 429,
                )
            async for chunk in resp.content.iter_chunked(_CHUNK):
                yield chunk

    return fetch


class FileCopier:
    """Copies files from any network (read through the shared :class:`FileSources`) into
    Slack."""

    def __init__(self, sources: FileSources, *, max_bytes: int = MAX_FILE_BYTES):
        self._sources = sources
        self.max_bytes = max_bytes

    async def _spool(self, source: Endpoint, ref: FileRef) -> tuple[IO[bytes], int]:
        if ref.size and ref.size > self.max_bytes:
            raise FileTooLarge(f"{ref.name} is larger than the cap", network="slack")
        chunks = self._sources.open(source, ref, network="slack")
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_bytes:
                spool.close()
                raise FileTooLarge(f"{ref.name} is larger than the cap", network="slack")
            spool.write(chunk)
        spool.seek(0)
        return spool, size

    async def copy_all(
        self,
        files: list[FileRef],
        *,
        source: Endpoint,
        target: SlackApi,
        channel: str,
        thread_ts: str | None,
        done: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Upload every file into ``channel``/``thread_ts``, except those named in ``done``
        (copied by an earlier attempt), and return the ids of the copies.

        A file refused for good (too large, a type or size the target forbids, gone at the
        source) is replaced by a short notice instead of failing the whole message (which has
        been posted already). A passing failure (429, 5xx, a timeout) is raised: the delivery
        is retried like any other, and its next attempt copies only what is still missing.
        """
        copied: list[str] = []
        for ref in files:
            if ref.name in done:
                continue
            try:
                copied.append(
                    await self._copy_one(
                        ref, source=source, target=target, channel=channel, thread_ts=thread_ts
                    )
                )
            except RemoteError as exc:
                if exc.retryable:
                    raise
                log.warning("file not copied", extra={"file": ref.native_id, "error": str(exc)})
                await target.call(
                    "chat.postMessage",
                    channel=channel,
                    thread_ts=thread_ts,
                    text=f"(file {ref.name} could not be copied: {exc})",
                )
        return copied

    async def _copy_one(
        self,
        ref: FileRef,
        *,
        source: Endpoint,
        target: SlackApi,
        channel: str,
        thread_ts: str | None,
    ) -> str:
        spool, size = await self._spool(source, ref)
        with spool:
            ticket = await target.call(
                "files.getUploadURLExternal", filename=ref.name, length=size
            )
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http,
                http.post(ticket["upload_url"], data=spool) as resp,
            ):
                if resp.status != 200:
                    raise RemoteError(
                        f"upload failed with HTTP {resp.status}",
                        network="slack",
                        status=resp.status,
                        retryable=resp.status >= 500 or resp.status == 429,
                    )
            await target.call(
                "files.completeUploadExternal",
                files=[{"id": ticket["file_id"], "title": ref.title or ref.name}],
                channel_id=channel,
                thread_ts=thread_ts,
            )
        return str(ticket["file_id"])
