"""OAuth v2: the authorize page (redirects at once) and ``oauth.v2.access`` (code and refresh).

Token rotation follows Slack: a refresh grant returns a new ``xoxe.xoxb-`` access token, a new
``xoxe-`` refresh token and ``expires_in``; the previous access token stops working
(https://docs.slack.dev/authentication/installing-with-oauth,
https://docs.slack.dev/authentication/using-token-rotation,
https://docs.slack.dev/reference/methods/oauth.v2.access).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .model import APP_ID, Installation, User
from .state import SlackError, SlackState


@dataclass
class OAuthApp:
    """The app's OAuth credentials and the authorizations in flight."""

    client_id: str = "1700000000.1700000001"
    client_secret: str = "fake-client-secret"
    token_rotation: bool = False
    expires_in: int = 43200
    authorize_team: str | None = None
    codes: dict[str, tuple[str, list[str], str]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)


def authorize(st: SlackState, oauth: OAuthApp, request: web.Request) -> web.Response:
    """``GET /oauth/v2/authorize``: record the request and redirect with ``code`` and ``state``.

    The workspace is ``team`` from the query, else ``oauth.authorize_team``, else the first one.
    """
    q = dict(request.query)
    oauth.authorize_requests.append(q)
    if q.get("client_id") != oauth.client_id:
        return web.Response(status=400, text="invalid_client_id")
    team = q.get("team") or oauth.authorize_team or next(iter(st.workspaces), None)
    redirect = q.get("redirect_uri")
    if team is None or not redirect:
        return web.Response(status=400, text="bad_redirect_uri")
    code = secrets.token_hex(8)
    scopes = [s for s in q.get("scope", "").split(",") if s]
    oauth.codes[code] = (team, scopes, redirect)
    params = {"code": code, "state": q.get("state", "")}
    sep = "&" if "?" in redirect else "?"
    raise web.HTTPFound(f"{redirect}{sep}{urlencode(params)}")


def _client_ok(oauth: OAuthApp, p: dict[str, Any], basic: tuple[str, str] | None) -> None:
    cid, secret = basic or (p.get("client_id"), p.get("client_secret"))
    if cid != oauth.client_id:
        raise SlackError("invalid_client_id")
    if secret != oauth.client_secret:
        raise SlackError("bad_client_secret")


def access(
    st: SlackState, oauth: OAuthApp, p: dict[str, Any], basic: tuple[str, str] | None
) -> dict[str, Any]:
    """``oauth.v2.access`` for ``authorization_code`` and ``refresh_token`` grants."""
    _client_ok(oauth, p, basic)
    if p.get("grant_type") == "refresh_token":
        team_id = st.refresh_tokens.pop(p.get("refresh_token") or "", None)
        if team_id is None:
            raise SlackError("invalid_refresh_token")
        inst = st.workspaces[team_id].installation
        assert inst is not None
        return _issue(st, oauth, team_id, inst.scopes, rotated=True)
    code = oauth.codes.pop(p.get("code") or "", None)
    if code is None:
        raise SlackError("invalid_code")
    team_id, scopes, redirect = code
    if p.get("redirect_uri") and p["redirect_uri"] != redirect:
        raise SlackError("bad_redirect_uri")
    return _issue(st, oauth, team_id, scopes, rotated=oauth.token_rotation)


def _issue(
    st: SlackState, oauth: OAuthApp, team_id: str, scopes: list[str], rotated: bool
) -> dict[str, Any]:
    ws = st.workspaces[team_id]
    inst = ws.installation
    if inst is None:
        # First install into this workspace: Slack creates the app's bot user now.
        bot = User(
            f"U{team_id}BOT",
            team_id,
            "syncbot",
            real_name="syncbot",
            is_bot=True,
            bot_id=f"B{team_id}BOT",
        )
        ws.users[bot.id] = bot
        inst = Installation(team_id, bot.id, f"B{team_id}BOT", "", scopes=scopes)
        ws.installation = inst
    old = inst.bot_token
    prefix = "xoxe.xoxb-" if rotated else "xoxb-"
    inst.bot_token = f"{prefix}{team_id}-{secrets.token_hex(12)}"
    inst.revoked = False
    inst.scopes = scopes or inst.scopes
    st.tokens.pop(old, None)
    st.tokens[inst.bot_token] = team_id
    out: dict[str, Any] = {
        "ok": True,
        "app_id": APP_ID,
        "authed_user": {"id": next(iter(ws.users), "")},
        "scope": ",".join(inst.scopes),
        "token_type": "bot",
        "access_token": inst.bot_token,
        "bot_user_id": inst.bot_user_id,
        "team": {"id": ws.id, "name": ws.name},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if rotated:
        refresh = f"xoxe-1-{secrets.token_hex(12)}"
        st.refresh_tokens[refresh] = team_id
        inst.refresh_token = refresh
        out.update(refresh_token=refresh, expires_in=oauth.expires_in)
    return out
