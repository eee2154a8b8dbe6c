"""Copying files into Slack with the files v2 flow (the retired ``files.upload`` is never used).

getUploadURLExternal -> POST the bytes to the returned URL -> completeUploadExternal into the
channel (and thread). Bytes are streamed from the source through a spooled temporary file, so a
large file costs disk, not memory, and anything over the size cap is refused early.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import IO
from urllib.parse import urlsplit

import aiohttp

from app.core.endpoints import Endpoint
from app.core.events import FileRef
from app.core.files import MAX_FILE_BYTES, FileSource, FileSources, FileTooLarge
from app.egress import EgressPolicy
from app.errors import RemoteError
from app.slack.puppets import SlackPuppets
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.slack.files")

_CHUNK = 256 * 1024
_SPOOL = 8 * 1024 * 1024

__all__ = ["MAX_FILE_BYTES", "FileCopier", "FileTooLarge", "slack_file_source"]

# Told of each upload's file id before it is shared into the channel (its share may be echoed
# before the answer comes).
BeforeShare = Callable[[str], Awaitable[None]]
# Told of a file refused for good, in place of the short note the copier posts itself.
OnRefused = Callable[[FileRef, RemoteError], Awaitable[None]]


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


class SignInPage(RemoteError):
    """Slack answered a file download with its sign-in page: the token cannot see the file."""


# Slack answers a url_private download with a token that cannot see the file (a bot's, for a
# DM it is not in) with its sign-in page and status 200, so the page would pass for the file.
_HTML_STARTS = (b"<!doctype html", b"<html")


def _sign_in_page(first: bytes, ref: FileRef) -> bool:
    if ref.mimetype.lower().startswith(("text/html", "application/xhtml")):
        return False
    return first.lstrip()[:16].lower().startswith(_HTML_STARTS)


def slack_file_source(
    workspaces: Workspaces,
    *,
    policy: EgressPolicy | None = None,
    time_limit: float = 60.0,
    puppets: SlackPuppets | None = None,
) -> FileSource:
    """Download a file shared in a Slack channel with that workspace's bot token, or, when
    the bot cannot see it (a person's own DM or group DM), with the user token of a logged-in
    person of the workspace who can.

    The tokens go only to Slack's own hosts; the configured API host is trusted like the API
    itself, anything else on Slack's side goes through the egress policy. A sign-in page in
    place of the file is a failure, never the file's bytes.
    """
    egress = policy or EgressPolicy()

    async def download(url: str, token: str) -> AsyncGenerator[bytes, None]:
        headers = {"Authorization": f"Bearer {token}"}
        if urlsplit(url).hostname == urlsplit(workspaces.api_url).hostname:
            chunks = _direct(url, headers, time_limit)
        else:
            chunks = egress.stream(
                url,
                headers=headers,
                max_bytes=MAX_FILE_BYTES,
                time_limit=time_limit,
                network="slack",
            )
        async for chunk in chunks:
            yield chunk

    async def tokens(team: str) -> AsyncIterator[str]:
        yield workspaces.api(team).token
        if puppets is None:
            return
        for puppet in await asyncio.to_thread(puppets.of_team, team):
            token = await asyncio.to_thread(puppets.store.token, puppet.mxid, team)
            if token is not None:
                yield token

    async def fetch(source: Endpoint, ref: FileRef) -> AsyncIterator[bytes]:
        if not slack_file_host(ref.url, workspaces.api_url):
            raise RemoteError(
                "file is not on a Slack host; the bot token is not sent elsewhere",
                network="slack",
                retryable=False,
            )
        async for token in tokens(source.slack_team):
            chunks = download(ref.url, token)
            try:
                first = await anext(chunks, b"")
            except RemoteError as exc:
                # A redirect (to the sign-in page) is the other way Slack refuses a token.
                if exc.status is not None and 300 <= exc.status < 400:
                    continue
                raise
            if _sign_in_page(first, ref):
                await chunks.aclose()
                continue
            yield first
            async for chunk in chunks:
                yield chunk
            return
        raise SignInPage(
            "Slack answered with its sign-in page: no token of ours can see the file",
            network="slack",
            retryable=False,
        )

    return fetch


async def _direct(url: str, headers: dict[str, str], time_limit: float) -> AsyncIterator[bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=time_limit)) as http,
        http.get(url, headers=headers, allow_redirects=False) as resp,
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
        before_share: BeforeShare | None = None,
        on_refused: OnRefused | None = None,
    ) -> list[str]:
        """Upload every file into ``channel``/``thread_ts``, except those named in ``done``
        (copied by an earlier attempt), and return the ids of the copies.

        A file refused for good (too large, a type or size the target forbids, gone at the
        source) is replaced by a short notice instead of failing the whole message (which has
        been posted already), or handed to ``on_refused`` (which may raise). A passing failure
        (429, 5xx, a timeout) is raised: the delivery is retried like any other, and its next
        attempt copies only what is still missing.
        """
        copied: list[str] = []
        for ref in files:
            if ref.name in done:
                continue
            try:
                copied.append(
                    await self._copy_one(
                        ref,
                        source=source,
                        target=target,
                        channel=channel,
                        thread_ts=thread_ts,
                        before_share=before_share,
                    )
                )
            except RemoteError as exc:
                if exc.retryable:
                    raise
                log.warning("file not copied", extra={"file": ref.native_id, "error": str(exc)})
                if on_refused is not None:
                    await on_refused(ref, exc)
                    continue
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
        before_share: BeforeShare | None = None,
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
            if before_share is not None:
                await before_share(str(ticket["file_id"]))
            await target.call(
                "files.completeUploadExternal",
                files=[{"id": ticket["file_id"], "title": ref.title or ref.name}],
                channel_id=channel,
                thread_ts=thread_ts,
            )
        return str(ticket["file_id"])
