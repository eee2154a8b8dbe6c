"""Files v2 byte transfer: the ``upload_url`` endpoint and ``url_private`` downloads.

The upload URL takes the raw bytes (or a multipart form) and answers ``OK - <size>``; a
``url_private`` answers only to a bearer token of the file's workspace whose holder can see the
file (https://docs.slack.dev/messaging/working-with-files: files need the token of an
authenticated member with access), otherwise with Slack's sign-in page: an HTML page with
status 200, not an error (what clients meet when a bot token is used for a file in a
conversation the bot is not in: https://github.com/slack-go/slack/issues/1284,
https://github.com/grundleborg/slack-advanced-exporter/pull/13).
"""

from __future__ import annotations

from aiohttp import web

from .model import FileObj, Workspace
from .state import SlackState

LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


async def upload(st: SlackState, request: web.Request) -> web.Response:
    """``POST /upload/v1/{team}/{file}``: store raw or multipart bytes, answer ``OK - <size>``."""
    ws = st.workspaces.get(request.match_info["team"])
    f = ws.files.get(request.match_info["file"]) if ws else None
    if f is None:
        return web.Response(status=404, text="file not found")
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        data = b""
        async for part in reader:
            data = await part.read()  # type: ignore[union-attr]
            if part.filename:  # type: ignore[union-attr]
                break
    else:
        data = await request.read()
    f.content = data
    if request.content_type and not request.content_type.startswith(
        ("multipart/", "application/x-www")
    ):
        f.mimetype = request.content_type
    return web.Response(text=f"OK - {len(data)}")


async def download(st: SlackState, request: web.Request) -> web.Response:
    """``GET /files-pri/{team}-{file}/{name}``; without a valid token Slack serves a login page."""
    team_id, _, file_id = request.match_info["key"].partition("-")
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip()
    ws = st.workspaces.get(team_id)
    f = ws.files.get(file_id) if ws else None
    holder = _holder(st, token, team_id)
    if ws is None or f is None or holder is None or not _sees(ws, f, holder):
        return web.Response(text=LOGIN_PAGE, content_type="text/html")
    return web.Response(
        body=f.content,
        content_type=f.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{f.name}"'},
    )


def _holder(st: SlackState, token: str, team_id: str) -> str | None:
    """The member a live token of ``team_id`` acts as (the bot user for a bot token)."""
    grant = st.user_tokens.get(token)
    if grant is not None:
        return grant.user_id if grant.team_id == team_id and not grant.revoked else None
    ws = st.workspaces.get(team_id)
    if st.tokens.get(token) != team_id or ws is None or ws.installation is None:
        return None
    return None if ws.installation.revoked else ws.installation.bot_user_id


def _sees(ws: Workspace, f: FileObj, member: str) -> bool:
    """A file is visible to its uploader, and through any conversation it is shared in that
    is public or has ``member`` in it: a DM's file is not the bot's unless it is in the DM."""
    if f.user == member:
        return True
    for ch_id in f.channels:
        ch = ws.channels.get(ch_id)
        if ch is None:
            continue
        public = not (ch.is_private or ch.is_im or ch.is_mpim)
        if public or member in ch.members:
            return True
    return False
