"""Nothing a user sends is lost or left behind (#17), end to end against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import throwaway_database
from tests.fakes.slack_server import FakeSlack, Message
from tests.slack.harness import AppServer, synced_database, three_workspaces, wait_for
from tests.slack.test_blocks import GITHUB_LIKE, JIRA_LIKE

CHANNELS = [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]

pytestmark = pytest.mark.integration


@pytest.fixture
def world(tmp_path) -> Iterator[tuple[FakeSlack, AppServer]]:
    slack = FakeSlack().start()
    three_workspaces(slack)
    with throwaway_database("sqlite", tmp_path) as url:
        settings, engine = synced_database(slack, url, "general", CHANNELS)
        server = AppServer(settings, engine).start()
        slack.app_url = f"{server.url}/slack/events"
        try:
            yield slack, server
        finally:
            server.stop()
            slack.stop()
            engine.dispose()


def _other_app_posts(slack: FakeSlack, ts: str, message: dict) -> None:
    with slack._lock:
        slack.teams["T1"].channels["C1"].messages.append(
            Message(ts=ts, text="", bot_id="BOTHER", app_id="AOTHER", subtype="bot_message")
        )
    slack.emit(
        "T1",
        message | {"channel": "C1", "ts": ts, "bot_id": "BOTHER", "app_id": "AOTHER"},
    )


def test_other_apps_blocks_and_attachments_reach_every_workspace(world) -> None:
    slack, _server = world
    _other_app_posts(slack, "1800000000.000001", JIRA_LIKE | {"username": "Jira"})
    _other_app_posts(slack, "1800000000.000002", GITHUB_LIKE | {"username": "GitHub"})
    for team, channel in (("T2", "C2"), ("T3", "C3")):
        jira = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "PROJ-1 Broken login" in m.text), None
            )
        )
        assert "Priority" in jira.text and "High" in jira.text
        assert "https://jira.example/PROJ-1" in jira.text
        github = wait_for(
            lambda t=team, c=channel: next(
                (m for m in slack.messages(t, c) if "Deploy finished" in m.text), None
            )
        )
        assert "triggered by ada" in github.text and "[Approve]" in github.text
