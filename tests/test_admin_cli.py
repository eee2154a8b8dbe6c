"""The operator CLI end to end: workspaces, syncs, and `syncbot serve` relaying (issue 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from fakeslack import FakeSlack
from tests.cli_run import run_cli
from tests.conftest import TEST_KEY, syncbot_env
from tests.slack.harness import free_port, three_workspaces, wait_for

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.integration


def syncbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In this process (tests/cli_run.py); `serve` below runs as its own process.
    return run_cli(main, env, *args)


def test_workspace_and_sync_commands_then_serve_relays(tmp_path) -> None:
    slack = FakeSlack().start()
    three_workspaces(slack)
    env = syncbot_env(
        {
            "LOCAL_DEVELOPMENT": "true",
            "DATABASE_BACKEND": "sqlite",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
            "SLACK_API_URL": slack.base_url,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "TOKEN_ENCRYPTION_KEY": TEST_KEY,
            "LOG_LEVEL": "WARNING",
        }
    )
    try:
        assert syncbot(env, "migrate").returncode == 0
        for team in ("T1", "T2"):
            out = syncbot(env, "workspace", "add", "--bot-token", slack.bot_token(team))
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == team
        bad = syncbot(env, "workspace", "add", "--bot-token", "xoxb-wrong")
        assert bad.returncode != 0 and "invalid_auth" in bad.stderr
        listed = json.loads(syncbot(env, "workspace", "list", "--json").stdout)
        assert [w["team_id"] for w in listed] == ["T1", "T2"]
        assert "xoxb" not in json.dumps(listed)

        assert syncbot(env, "sync", "create", "team").returncode == 0
        slack.leave("T2", "C2", "UT2BOT")  # the bot is not in C2 yet
        for endpoint in ("slack:T1/C1", "slack:T2/C2"):
            out = syncbot(env, "sync", "add", "team", endpoint)
            assert out.returncode == 0, out.stderr
        assert "UT2BOT" in slack.channel("T2", "C2").members  # joined on add
        dup = syncbot(env, "sync", "add", "team", "slack:T1/C1")
        assert dup.returncode != 0 and "already in sync" in dup.stderr
        badep = syncbot(env, "sync", "add", "team", "slack:nope")
        assert badep.returncode != 0 and "expected slack:TEAM_ID/CHANNEL_ID" in badep.stderr
        synced = json.loads(syncbot(env, "sync", "list", "--json").stdout)
        assert [e["endpoint"] for e in synced[0]["endpoints"]] == ["slack:T1/C1", "slack:T2/C2"]

        port = free_port()
        slack.app_url = f"http://127.0.0.1:{port}/slack/events"
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            import httpx

            wait_for(lambda: _up(httpx, port), timeout=30)
            slack.post_message("T1", "C1", "U1", "from the cli world")
            copy = wait_for(
                lambda: [m for m in slack.messages("T2", "C2") if m.text == "from the cli world"]
            )
            assert copy[0].username == "Ada (Acme)"
        finally:
            server.terminate()
            server.wait(15)
        out = syncbot(env, "sync", "remove", "team", "slack:T2/C2")
        assert out.returncode == 0, out.stderr
    finally:
        slack.stop()


def _up(httpx, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
