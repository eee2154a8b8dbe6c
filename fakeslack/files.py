"""Files v2 byte transfer: the ``upload_url`` endpoint and ``url_private`` downloads.

The upload URL takes the raw bytes (or a multipart form) and answers ``OK - <size>``; a
``url_private`` answers only with the workspace's bearer token, otherwise Slack's sign-in page
(https://docs.slack.dev/messaging/working-with-files).
"""

from __future__ import annotations

from aiohttp import web

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
    if st.tokens.get(token) != team_id or f is None:
        return web.Response(text=LOGIN_PAGE, content_type="text/html")
    return web.Response(
        body=f.content,
        content_type=f.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{f.name}"'},
    )
