"""OAuth install end to end against the fake Slack: install -> authorize -> redirect ->
``oauth.v2.access`` -> encrypted installation -> events authorized with it; token rotation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine, select, update

from app.core.endpoints import Endpoint
from app.slack.oauth import REDIRECT_PATH, TokenRefresher, authorize_url_base
from app.slack.workspaces import BOT_TOKEN_CONTEXT, REFRESH_TOKEN_CONTEXT
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.models import OAuthState, Workspace
from fakeslack import FakeSlack
from tests.conftest import local_settings
from tests.slack.harness import AppServer, wait_for

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for team, name, channel in (("T1", "Acme", "C1"), ("T2", "Beta", "C2")):
            fake.add_workspace(team, name, installed=False)
            # The bot user appears with the first install; it is a member already (invited).
            fake.add_channel(team, channel, "general", members=[f"U{team}BOT"])
        fake.add_user("T1", "U1", "ada", real_name="Ada")
        fake.add_user("T2", "U2", "bob", real_name="Bob")
        yield fake


@pytest.fixture
def app(slack: FakeSlack, engine: Engine) -> Iterator[AppServer]:
    settings = local_settings(
        slack_signing_secret=slack.signing_secret,
        slack_client_id=slack.oauth.client_id,
        slack_client_secret=slack.oauth.client_secret,
        slack_api_url=slack.base_url,
        slack_user_scopes=(),
    )
    server = AppServer(settings, engine).start()
    slack.app_url = f"{server.url}/slack/events"
    yield server
    server.stop()


def install(app: AppServer, slack: FakeSlack, team: str) -> httpx.Response:
    """Walk the browser through install -> Slack's authorize page -> our redirect."""
    slack.oauth.authorize_team = team
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        start = browser.get(f"{app.url}/slack/install")
        assert start.status_code == 302
        authorize = browser.get(start.headers["location"])
        assert authorize.status_code == 302, authorize.text
        return browser.get(authorize.headers["location"])


def workspace_row(engine: Engine, team: str) -> Workspace | None:
    with session_factory(engine)() as s:
        return s.execute(select(Workspace).where(Workspace.team_id == team)).scalar_one_or_none()


def test_authorize_url_goes_to_the_api_hosts_slack_with_our_scopes(
    app: AppServer, slack: FakeSlack
) -> None:
    with httpx.Client(follow_redirects=False) as browser:
        response = browser.get(f"{app.url}/slack/install")
    location = response.headers["location"]
    assert location.startswith(authorize_url_base(slack.base_url))
    assert urlsplit(location).netloc == urlsplit(slack.base_url).netloc
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [slack.oauth.client_id]
    assert query["scope"][0].split(",") == list(app.settings.slack_bot_scopes)
    assert "user_scope" not in query or query["user_scope"] == [""]
    assert query["redirect_uri"] == [f"{app.url}{REDIRECT_PATH}"]
    with session_factory(app.engine)() as s:
        assert s.get(OAuthState, query["state"][0]) is not None


def test_install_stores_encrypted_tokens_and_events_are_authorized_with_them(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    for team in ("T1", "T2"):
        page = install(app, slack, team)
        assert page.status_code == 200
        assert "installed" in page.text
        assert "xox" not in page.text

    cipher = TokenCipher(app.settings.token_encryption_key or "")
    row = workspace_row(engine, "T1")
    assert row is not None and row.status == "active" and row.bot_token_enc
    token = slack.bot_token("T1")
    assert token not in row.bot_token_enc
    assert cipher.decrypt(row.bot_token_enc, context=BOT_TOKEN_CONTEXT) == token
    assert row.bot_user_id == "UT1BOT" and row.bot_id == "BT1BOT" and row.name == "Acme"
    assert row.bot_refresh_token_enc is None and row.bot_token_expires_at is None

    # The stored installation is what the event path uses: a message in T1 reaches T2.
    assert app.services is not None
    app.services.syncs.create("s")
    app.services.syncs.add("s", Endpoint.parse("slack:T1/C1"))
    app.services.syncs.add("s", Endpoint.parse("slack:T2/C2"))
    slack.post_message("T1", "C1", "U1", "hello over oauth")
    copy = wait_for(
        lambda: [m for m in slack.messages("T2", "C2") if "hello over oauth" in m.text]
    )
    assert copy[0].bot_id == "BT2BOT"


def test_state_is_single_use(app: AppServer, slack: FakeSlack, engine: Engine) -> None:
    slack.oauth.authorize_team = "T1"
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        start = browser.get(f"{app.url}/slack/install")
        redirect = browser.get(start.headers["location"]).headers["location"]
        assert browser.get(redirect).status_code == 200
        replay = browser.get(redirect)
    assert replay.status_code == 400
    assert "expired or was already used" in replay.text


def test_a_state_from_another_browser_is_refused(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    slack.oauth.authorize_team = "T1"
    with httpx.Client(follow_redirects=False, timeout=10) as attacker:
        start = attacker.get(f"{app.url}/slack/install")
        redirect = attacker.get(start.headers["location"]).headers["location"]
    with httpx.Client(follow_redirects=False, timeout=10) as victim:
        lured = victim.get(redirect)
    assert lured.status_code == 400
    assert "another browser" in lured.text
    assert workspace_row(engine, "T1") is None


def test_expired_and_unknown_states_are_refused(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    slack.oauth.authorize_team = "T1"
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        start = browser.get(f"{app.url}/slack/install")
        with session_factory(engine)() as s, s.begin():
            s.execute(
                update(OAuthState).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        redirect = browser.get(start.headers["location"]).headers["location"]
        assert browser.get(redirect).status_code == 400
        forged = browser.get(f"{app.url}{REDIRECT_PATH}?code=x&state=forged")
        assert forged.status_code == 400
    assert workspace_row(engine, "T1") is None


def test_cancelled_and_refused_installs_show_a_clear_page(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        cancelled = browser.get(f"{app.url}{REDIRECT_PATH}?error=access_denied&state=x")
        assert "cancelled" in cancelled.text
        # A valid state but a code Slack does not know: Slack's error, no stack trace.
        start = browser.get(f"{app.url}/slack/install")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        refused = browser.get(f"{app.url}{REDIRECT_PATH}?code=bogus&state={state}")
    assert refused.status_code == 400
    assert "invalid_code" in refused.text
    assert "Traceback" not in refused.text
    assert workspace_row(engine, "T1") is None


def test_rotating_tokens_are_stored_and_refreshed_before_expiry(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    slack.oauth.token_rotation = True
    assert install(app, slack, "T1").status_code == 200
    cipher = TokenCipher(app.settings.token_encryption_key or "")
    row = workspace_row(engine, "T1")
    assert row is not None and row.bot_refresh_token_enc and row.bot_token_expires_at
    first = cipher.decrypt(row.bot_token_enc or "", context=BOT_TOKEN_CONTEXT)
    assert first.startswith("xoxe.xoxb-")
    refresh = cipher.decrypt(row.bot_refresh_token_enc, context=REFRESH_TOKEN_CONTEXT)
    assert refresh == slack.installation("T1").refresh_token
    expected = datetime.now(UTC) + timedelta(seconds=slack.oauth.expires_in)
    assert abs(row.bot_token_expires_at - expected) < timedelta(minutes=1)

    assert app.services is not None
    workspaces = app.services.slack.workspaces
    refresher = TokenRefresher(
        session_factory(engine), cipher, app.settings, forget=workspaces.forget
    )
    # Twelve hours ahead is not within the one-hour margin; an hour before expiry is.
    assert refresher.due() == []
    assert refresher.due(now=row.bot_token_expires_at - timedelta(minutes=30)) == ["T1"]

    assert asyncio.run(refresher.refresh("T1")) is True
    second = slack.bot_token("T1")
    assert second != first
    row = workspace_row(engine, "T1")
    assert row is not None
    assert cipher.decrypt(row.bot_token_enc or "", context=BOT_TOKEN_CONTEXT) == second
    # The refresh token rotated too; the old one is spent.
    renewed = cipher.decrypt(row.bot_refresh_token_enc or "", context=REFRESH_TOKEN_CONTEXT)
    assert renewed != refresh
    assert asyncio.run(workspaces.api("T1").call("auth.test"))["team_id"] == "T1"
