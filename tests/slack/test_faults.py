"""Fault tests: flaky Slack, a killed app process, retried events — exactly once, in order."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.store.models import Delivery
from fakeslack import FakeSlack
from tests.databases import throwaway_database
from tests.slack.harness import free_port, synced_database, three_workspaces, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
N = 200


def start_app(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.slack.app_process"],
        cwd=ROOT,
        env=os.environ | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_flaky_slack_and_a_killed_process_lose_and_duplicate_nothing(backend, tmp_path) -> None:
    slack = FakeSlack().start()
    three_workspaces(slack)
    # Slack retries an event it could not deliver; here fast enough to span our restart. Each
    # second up to 7.5 s, so the restarted app gets it as soon as it is up (every retry time
    # of a plain doubling, 0.5/1.5/3.5/7.5/15.5 s, is still among these).
    slack.event_settings.retry_delays = (0.5, *[1.0] * 7, 2.0, 2.0, 4.0, 8.0)
    with throwaway_database(backend, tmp_path) as url:
        _settings, engine = synced_database(
            slack, url, "faults", [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]
        )
        port = free_port()
        env = {
            "SB_DB_URL": url.render_as_string(hide_password=False),
            "SB_SLACK_URL": slack.base_url,
            "SB_SIGNING_SECRET": slack.signing_secret,
            "SB_PORT": str(port),
            "SB_LEASE": "2",
        }
        slack.app_url = f"http://127.0.0.1:{port}/slack/events"
        app = start_app(env)

        def delivered(team: str, channel: str) -> list[str]:
            return [
                m.text
                for m in slack.messages(team, channel)
                if re.fullmatch(r"message \d{3}", m.text)
            ]

        def pending_rows() -> int:
            with engine.connect() as conn:
                query = select(func.count()).select_from(Delivery)
                return int(conn.execute(query.where(Delivery.status == "pending")).scalar_one())

        try:
            # "timeout": no answer at all, so the app's 1 s Slack timeout fires.
            slack.fail_randomly(
                "*", 0.2, "429:0", "500", "timeout", "drop", "500_after", "timeout_after"
            )
            for i in range(N):
                slack.post_message("T1", "C1", "U1", f"message {i:03d}")
                if i == N // 2:
                    # Kill -9 while deliveries are in flight (some done, more due), then start
                    # again.
                    wait_for(lambda: delivered("T2", "C2") and pending_rows())
                    app.send_signal(signal.SIGKILL)
                    app.wait(10)
                    app = start_app(env)
            wanted = [f"message {i:03d}" for i in range(N)]

            wait_for(
                lambda: len(delivered("T2", "C2")) >= N and len(delivered("T3", "C3")) >= N,
                timeout=150,
                interval=0.2,
            )
            slack.clear_faults()
            # Nothing left in flight: any duplicate would show up by now.
            wait_for(lambda: not pending_rows() and not slack.pending_events(), timeout=60)
            for team, channel in (("T2", "C2"), ("T3", "C3")):
                assert delivered(team, channel) == wanted, team
            assert delivered("T1", "C1") == wanted  # nothing echoed back into the source
        finally:
            app.send_signal(signal.SIGTERM)
            try:
                app.wait(10)
            except subprocess.TimeoutExpired:
                app.kill()
            slack.stop()
            engine.dispose()
