"""Slack OAuth v2 install: ``GET /slack/install`` and ``GET /slack/oauth_redirect``.

The install route issues a single-use ``state`` and sends the admin to Slack's authorize page
(on ``SLACK_API_URL``'s host, so tests can point it at a fake). The redirect consumes the state,
exchanges the code with ``oauth.v2.access`` and stores the installation encrypted. When the app
enables token rotation, Slack returns a refresh token and an expiry; :class:`TokenRefresher`
renews such tokens before they expire.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.settings import Settings
from app.slack.lifecycle import WorkspaceLifecycle
from app.slack.oauth_stores import STATE_TTL, SqlInstallationStore, SqlStateStore
from app.slack.workspaces import BOT_TOKEN_CONTEXT, REFRESH_TOKEN_CONTEXT, Workspaces
from app.store.cipher import TokenCipher
from app.store.models import Workspace

log = logging.getLogger("syncbot.slack.oauth")

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# Binds a state to the browser that started the install, so a link with someone else's state
# (login CSRF: installing into the attacker's workspace) is refused.
STATE_COOKIE = "syncbot_oauth_state"
# Renew a rotating token this long before it expires (Slack issues 12-hour tokens; the
# maintenance tick runs every few minutes).
REFRESH_MARGIN = timedelta(hours=1)


def slack_web_origin(api_url: str) -> str:
    """Slack's web origin for ``api_url``: ``https://slack.com/api/`` -> ``https://slack.com``."""
    parts = urlsplit(api_url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def authorize_url_base(api_url: str) -> str:
    return f"{slack_web_origin(api_url)}/oauth/v2/authorize"


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class InstallRateLimit:
    """A token bucket over ``GET /slack/install`` for the whole process.

    Installs are rare (an admin per workspace, once); a burst of a few dozen covers a busy
    day, and an anonymous flood is refused instead of writing one state row per request.
    """

    def __init__(
        self,
        *,
        burst: int = 30,
        per_second: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_second
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> float:
        """Take one token: 0 when allowed, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


class SlackOAuth:
    """The two OAuth routes, over our state and installation stores.

    Args:
        settings: Client id/secret, scopes, ``SLACK_API_URL`` and ``SYNCBOT_PUBLIC_URL``.
        state_store: Issues and consumes ``state`` values.
        installations: Stores the installation (encrypted).
        on_installed: Called with the team id after a successful install (drop caches,
            start a Socket Mode client...).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        state_store: SqlStateStore,
        installations: SqlInstallationStore,
        on_installed: Callable[[str], None] = lambda _team: None,
    ) -> None:
        if not settings.slack_client_id or not settings.slack_client_secret:
            raise ValueError("OAuth needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET")
        self._client_id = settings.slack_client_id
        self._client_secret = settings.slack_client_secret
        self._api_url = settings.slack_api_url
        self._public_url = (settings.public_url or "").rstrip("/") or None
        self._local = settings.local_development
        self._limit = InstallRateLimit()
        if not self._public_url and not self._local:
            log.warning(
                "OAuth install disabled: SYNCBOT_PUBLIC_URL is not set (the redirect URL is "
                "never taken from a request's Host header)"
            )
        self._bot_scopes = list(settings.slack_bot_scopes)
        self._user_scopes = list(settings.slack_user_scopes)
        self._states = state_store
        self._installations = installations
        self._on_installed = on_installed

    @property
    def routes(self) -> list[Route]:
        return [
            Route(INSTALL_PATH, self.install, methods=["GET"]),
            Route(REDIRECT_PATH, self.redirect, methods=["GET"]),
        ]

    def redirect_uri(self, request: Request) -> str | None:
        """The redirect URL registered in the manifest: the public URL.

        Never the Host header of a request, which the caller chooses: only a local run without
        a public URL, reached on a loopback name, uses the address it was reached on. None when
        there is no URL to use.
        """
        if self._public_url:
            return f"{self._public_url}{REDIRECT_PATH}"
        if self._local and (request.url.hostname or "") in LOOPBACK_HOSTS:
            return str(request.url.replace(path=REDIRECT_PATH, query=""))
        return None

    async def install(self, request: Request) -> Response:
        redirect_uri = self.redirect_uri(request)
        if redirect_uri is None:
            return _failure(
                "Installation is not configured.",
                "Set SYNCBOT_PUBLIC_URL to the https address registered with Slack.",
                status=404,
            )
        retry_in = self._limit.take()
        if retry_in:
            # Each install writes a state row: anonymous callers cannot make that unbounded.
            return JSONResponse(
                {"error": "too many installs started; try again shortly"},
                status_code=429,
                headers={"Retry-After": str(max(1, round(retry_in)))},
            )
        state = await asyncio.to_thread(self._states.issue)
        generator = AuthorizeUrlGenerator(
            client_id=self._client_id,
            redirect_uri=redirect_uri,
            scopes=self._bot_scopes,
            # Asking for no user scopes keeps user tokens out of the database altogether.
            user_scopes=self._user_scopes or None,
            authorization_url=authorize_url_base(self._api_url),
        )
        response = RedirectResponse(generator.generate(state), status_code=302)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=int(STATE_TTL.total_seconds()),
            path=REDIRECT_PATH,
            # Secure whenever the redirect is https (always outside local development).
            secure=redirect_uri.startswith("https://"),
            httponly=True,
            samesite="lax",
        )
        return response

    async def redirect(self, request: Request) -> Response:
        params = request.query_params
        if params.get("error"):
            # The admin pressed Cancel on Slack's page (error=access_denied) or Slack refused.
            return _failure(
                "The installation was cancelled.", "You can start again from the install link."
            )
        code, state = params.get("code"), params.get("state", "")
        if not code:
            return _failure("Slack did not send an authorization code.", None, status=400)
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie.encode(), state.encode()):
            return _failure(
                "This installation was started in another browser.",
                "Open the install link again in this browser.",
                status=400,
            )
        if not await asyncio.to_thread(self._states.consume, state):
            return _failure(
                "This installation link has expired or was already used.",
                "Start again from the install link; each link works once, for 10 minutes.",
                status=400,
            )
        redirect_uri = self.redirect_uri(request)
        if redirect_uri is None:
            return _failure("Installation is not configured.", None, status=404)
        try:
            installation = await self._exchange(code, redirect_uri)
            await asyncio.to_thread(self._installations.save, installation)
        except SlackApiError as exc:
            log.warning("oauth.v2.access failed", extra={"error": exc.response.get("error")})
            return _failure(
                "Slack refused the installation.",
                f"Slack said: {exc.response.get('error') or 'unknown error'}.",
                status=400,
            )
        except Exception:
            log.exception("installation failed")
            return _failure(
                "The installation could not be completed.",
                "Please try again in a minute.",
                status=500,
            )
        assert installation.team_id is not None
        self._on_installed(installation.team_id)
        # The cookie stays until it expires: a reload then says "already used", which is true.
        return _success(installation.team_name or installation.team_id)

    async def _exchange(self, code: str, redirect_uri: str) -> Installation:
        client = AsyncWebClient(base_url=self._api_url)
        resp = await client.oauth_v2_access(
            client_id=self._client_id,
            client_secret=self._client_secret,
            code=code,
            redirect_uri=redirect_uri,
        )
        team = resp.get("team") or {}
        enterprise = resp.get("enterprise") or {}
        authed = resp.get("authed_user") or {}
        bot_token = resp.get("access_token")
        bot_id = None
        if bot_token:
            bot_id = (await client.auth_test(token=bot_token)).get("bot_id")
        return Installation(
            app_id=resp.get("app_id"),
            enterprise_id=enterprise.get("id"),
            enterprise_name=enterprise.get("name"),
            team_id=team.get("id"),
            team_name=team.get("name"),
            bot_token=bot_token,
            bot_id=bot_id,
            bot_user_id=resp.get("bot_user_id"),
            bot_scopes=resp.get("scope") or "",
            bot_refresh_token=resp.get("refresh_token"),
            bot_token_expires_in=resp.get("expires_in"),
            user_id=authed.get("id") or "",
            is_enterprise_install=bool(resp.get("is_enterprise_install")),
            token_type=resp.get("token_type"),
        )


class TokenRefresher:
    """Renews rotating bot tokens before they expire (``grant_type=refresh_token``).

    Args:
        sessions: Session factory of the store.
        cipher: Decrypts the refresh token and encrypts the new pair.
        settings: Client credentials and ``SLACK_API_URL``.
        forget: Called with each refreshed team id (``Workspaces.forget``: drop cached clients).
        margin: How long before expiry a token is renewed.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: TokenCipher,
        settings: Settings,
        *,
        forget: Callable[[str], None] = lambda _team: None,
        margin: timedelta = REFRESH_MARGIN,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._client_id = settings.slack_client_id or ""
        self._client_secret = settings.slack_client_secret or ""
        self._api_url = settings.slack_api_url
        self._forget = forget
        self._margin = margin

    def due(self, *, now: datetime | None = None) -> list[str]:
        """Team ids whose rotating token expires within the margin."""
        horizon = (now or datetime.now(UTC)) + self._margin
        with self._sessions() as s:
            return list(
                s.execute(
                    select(Workspace.team_id).where(
                        Workspace.status == "active",
                        Workspace.bot_refresh_token_enc.is_not(None),
                        Workspace.bot_token_expires_at < horizon,
                    )
                ).scalars()
            )

    async def refresh(self, team_id: str) -> bool:
        """Renew ``team_id``'s token now; False if it has no refresh token or Slack refused."""
        with self._sessions() as s:
            enc = s.execute(
                select(Workspace.bot_refresh_token_enc).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
        if not enc:
            return False
        refresh_token = self._cipher.decrypt(enc, context=REFRESH_TOKEN_CONTEXT)
        client = AsyncWebClient(base_url=self._api_url)
        try:
            resp = await client.oauth_v2_access(
                client_id=self._client_id,
                client_secret=self._client_secret,
                grant_type="refresh_token",
                refresh_token=refresh_token,
            )
        except SlackApiError as exc:
            log.warning(
                "token refresh refused",
                extra={"team_id": team_id, "error": exc.response.get("error")},
            )
            return False
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id).with_for_update()
            ).scalar_one()
            row.bot_token_enc = self._cipher.encrypt(
                str(resp["access_token"]), context=BOT_TOKEN_CONTEXT
            )
            row.bot_refresh_token_enc = self._cipher.encrypt(
                str(resp["refresh_token"]), context=REFRESH_TOKEN_CONTEXT
            )
            row.bot_token_expires_at = now + timedelta(seconds=int(resp["expires_in"]))
            row.updated_at = now
        self._forget(team_id)
        return True

    async def refresh_due(self) -> int:
        """Renew every token due; returns how many were renewed."""
        teams = await asyncio.to_thread(self.due)
        renewed = 0
        for team in teams:
            renewed += await self.refresh(team)
        return renewed


def _page(title: str, heading: str, detail: str | None, status: int) -> HTMLResponse:
    detail_html = f"<p>{html.escape(detail)}</p>" if detail else ""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;"
        "line-height:1.5}</style></head>"
        f"<body><h1>{html.escape(heading)}</h1>{detail_html}</body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _success(team_name: str) -> HTMLResponse:
    return _page(
        "syncbot installed",
        f"syncbot is installed in {team_name}",
        "Open syncbot's Home tab in Slack to set up your channels. You can close this page.",
        200,
    )


def _failure(heading: str, detail: str | None, *, status: int = 200) -> HTMLResponse:
    return _page("syncbot installation failed", heading, detail, status)


class SlackInstalls:
    """The OAuth routes, token refresher and lifecycle of one process, wired together."""

    def __init__(
        self, *, oauth: SlackOAuth | None, refresher: TokenRefresher, lifecycle: WorkspaceLifecycle
    ) -> None:
        self.oauth = oauth
        self.refresher = refresher
        self.lifecycle = lifecycle

    @property
    def routes(self) -> list[Route]:
        return [] if self.oauth is None else self.oauth.routes


def build_installs(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    workspaces: Workspaces,
) -> SlackInstalls:
    """Assemble OAuth (when ``SLACK_CLIENT_ID``/``SECRET`` are set), refresher and lifecycle."""
    lifecycle = WorkspaceLifecycle(
        sessions, retention_days=settings.soft_delete_retention_days, forget=workspaces.forget
    )
    oauth = None
    if settings.oauth_enabled:
        oauth = SlackOAuth(
            settings,
            state_store=SqlStateStore(sessions),
            installations=SqlInstallationStore(sessions, cipher, lifecycle),
            on_installed=workspaces.forget,
        )
    refresher = TokenRefresher(sessions, cipher, settings, forget=workspaces.forget)
    return SlackInstalls(oauth=oauth, refresher=refresher, lifecycle=lifecycle)
