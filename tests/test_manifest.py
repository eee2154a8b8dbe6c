"""``syncbot manifest``: agrees with app/scopes.py and the settings defaults, in every mode."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.cli.manifest import build_manifest
from app.scopes import BOT_EVENTS, DEFAULT_BOT_SCOPES, DEFAULT_USER_SCOPES
from app.settings import Settings
from app.slack.oauth import REDIRECT_PATH

URL = "https://sync.example.org"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["manifest", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_manifest_scopes_and_events_agree_with_settings_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "--url", URL)
    assert code == 0
    manifest = json.loads(out)
    defaults = Settings()
    scopes = manifest["oauth_config"]["scopes"]
    assert tuple(scopes["bot"]) == defaults.slack_bot_scopes == DEFAULT_BOT_SCOPES
    assert tuple(scopes.get("user", ())) == defaults.slack_user_scopes == DEFAULT_USER_SCOPES
    assert tuple(manifest["settings"]["event_subscriptions"]["bot_events"]) == BOT_EVENTS
    # The lifecycle depends on these two arriving.
    assert {"app_uninstalled", "tokens_revoked"} <= set(BOT_EVENTS)


def test_http_mode_points_slack_at_our_routes(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "--url", URL + "/")
    manifest = json.loads(out)
    settings = manifest["settings"]
    assert manifest["oauth_config"]["redirect_urls"] == [URL + REDIRECT_PATH]
    assert settings["event_subscriptions"]["request_url"] == URL + "/slack/events"
    assert settings["interactivity"] == {"is_enabled": True, "request_url": URL + "/slack/events"}
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_socket_mode_and_token_rotation_flags(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run_cli(capsys, "--url", URL, "--socket-mode", "--token-rotation")
    settings = json.loads(out)["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["token_rotation_enabled"] is True
    # Over Socket Mode Slack needs no request URLs (and refuses unreachable ones).
    assert "request_url" not in settings["event_subscriptions"]
    assert "request_url" not in settings["interactivity"]


@pytest.mark.parametrize("url", ["http://sync.example.org", "sync.example.org", URL + "?x=1"])
def test_non_https_urls_are_refused(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run_cli(capsys, "--url", url)
    assert code != 0
    assert out == ""
    assert "https://" in err


def test_user_scopes_appear_only_when_there_are_some() -> None:
    assert ("user" in build_manifest(URL)["oauth_config"]["scopes"]) == bool(DEFAULT_USER_SCOPES)


def test_user_events_are_the_dms_a_user_token_reads() -> None:
    # `login token` (#21 item 4): a person's own DMs arrive as user events, read with exactly
    # the user scopes the manifest asks for.
    manifest = build_manifest(URL)
    user_events = manifest["settings"]["event_subscriptions"]["user_events"]
    assert user_events == ["message.im", "message.mpim", "reaction_added", "reaction_removed"]
    user_scopes = set(manifest["oauth_config"]["scopes"]["user"])
    # What those events need.
    assert {"im:history", "mpim:history", "reactions:read"} <= user_scopes
    assert user_scopes == {
        "chat:write",
        "files:write",
        "im:history",
        "im:read",
        "mpim:history",
        "mpim:read",
        "reactions:read",
        "reactions:write",
    }
