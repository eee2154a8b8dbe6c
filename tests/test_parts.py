"""The start-up summary: each part of the service, on or off, and why (issue 20)."""

from __future__ import annotations

from app.parts import parts, summary
from app.settings import load_settings

MATRIX = {
    "MATRIX_HOMESERVER_URL": "https://matrix.example.org",
    "MATRIX_SERVER_NAME": "example.org",
    "MATRIX_AS_TOKEN": "as-token-0123456789abcdef0123456789",
    "MATRIX_HS_TOKEN": "hs-token-0123456789abcdef0123456789",
}


def by_name(env: dict[str, str], **kwargs: int | None) -> dict[str, tuple[bool, str]]:
    return {p.name: (p.on, p.why) for p in parts(load_settings(env), **kwargs)}


def test_a_bare_production_process_says_why_each_part_is_off() -> None:
    found = by_name({}, socket_workspaces=0)
    assert list(found) == [
        "slack-events",
        "slack-oauth",
        "socket-mode",
        "matrix",
        "federation",
        "dispatch",
        "metrics",
    ]
    assert found["slack-events"] == (False, "SLACK_SIGNING_SECRET not set: Socket Mode only")
    assert found["slack-oauth"][0] is False
    assert "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET not set" in found["slack-oauth"][1]
    assert found["socket-mode"][0] is False and "app token" in found["socket-mode"][1]
    assert found["matrix"] == (
        False,
        "MATRIX_HOMESERVER_URL, MATRIX_SERVER_NAME, MATRIX_AS_TOKEN, MATRIX_HS_TOKEN not set",
    )
    assert found["federation"] == (False, "SYNCBOT_FEDERATION_ENABLED is not true")
    assert found["dispatch"] == (True, "inprocess: this process's outbox worker")
    assert found["metrics"] == (False, "SYNCBOT_METRICS_TOKEN not set")


def test_a_full_process_says_what_is_on() -> None:
    env = {
        **MATRIX,
        "SLACK_SIGNING_SECRET": "signing-secret-0123456789",
        "SLACK_CLIENT_ID": "111.222",
        "SLACK_CLIENT_SECRET": "client-secret-0123456789",
        "SYNCBOT_FEDERATION_ENABLED": "true",
        "SYNCBOT_PUBLIC_URL": "https://sync.example.org",
        "SYNCBOT_METRICS_TOKEN": "metrics-token-0123456789",
    }
    found = by_name(env, socket_workspaces=2)
    assert all(on for on, _why in found.values()), found
    assert found["socket-mode"] == (True, "2 workspace(s) with an app token")
    assert found["matrix"] == (True, "appservice for example.org")
    line = summary(parts(load_settings(env), socket_workspaces=2))
    assert line.startswith("parts: slack-events on (") and "; metrics on (" in line


def test_half_a_matrix_setup_names_what_is_missing_and_local_metrics_are_open() -> None:
    found = by_name({"LOCAL_DEVELOPMENT": "true", "SLACK_CLIENT_ID": "111.222"})
    assert found["slack-oauth"][1].startswith("SLACK_CLIENT_SECRET not set")
    assert found["socket-mode"] == (False, "no long-running worker in this process")
    assert found["metrics"] == (True, "GET /metrics open: LOCAL_DEVELOPMENT")
