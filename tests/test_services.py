"""How the runtime is assembled: every event path carries the same hooks."""

from __future__ import annotations

from pathlib import Path

from app.assembly import build_runtime
from tests.conftest import local_settings


def test_socket_mode_only_installs_still_hear_about_uninstalls(tmp_path: Path) -> None:
    runtime = build_runtime(
        local_settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", slack_signing_secret=None)
    )
    services = runtime.services
    assert not services.slack.routes  # no signing secret: no HTTP events route
    assert runtime.socket_mode is not None
    hooks = runtime.socket_mode.events.hooks_for("app_uninstalled")
    assert runtime.installs.lifecycle.on_event in hooks
    runtime.close()


def test_http_and_socket_mode_share_one_event_path(tmp_path: Path) -> None:
    runtime = build_runtime(local_settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    services = runtime.services
    assert runtime.socket_mode is not None
    assert runtime.socket_mode.events is services.slack.events
    hooks = services.slack.events.hooks_for("app_uninstalled")
    assert hooks.count(runtime.installs.lifecycle.on_event) == 1
    runtime.close()
