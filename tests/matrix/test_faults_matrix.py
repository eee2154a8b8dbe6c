"""The fault test with Matrix in the sync (#17): flaky Slack (20 % of calls fail), the app
killed with SIGKILL, the homeserver down for many times the retry budget, and the bot removed
from a private channel and invited back — and every message still lands on every side exactly
once, in order."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.core.endpoints import Endpoint
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.models import Delivery
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.matrix.conftest import ROOM_VERSION
from tests.matrix.synapse import Synapse
from tests.slack.harness import three_workspaces, wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]
N = 60
SLACK = (("T1", "C1"), ("T2", "C2"), ("T3", "C3"))


def start_app(env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """The app as its own process (so it can be killed), its log appended to ``log``."""
    with log.open("a") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.matrix.app_process"],
            cwd=ROOT,
            env=os.environ | env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_outage_kill_and_removed_bot_lose_and_duplicate_nothing(
    synapse: Synapse, tmp_path: Path
) -> None:
    if synapse.proc is None:
        synapse.start()
    slack = FakeSlack().start()
    three_workspaces(slack)
    slack.add_user("T3", "U3A", "cyd", real_name="Cyd Admin", is_admin=True)
    slack.event_settings.retry_delays = (0.5, 1.0, 2.0, 4.0, 8.0)
    url = make_url(f"sqlite:///{tmp_path}/syncbot.db")
    engine = make_engine(local_settings(), url=url)
    upgrade(engine)
    sessions = session_factory(engine)
    workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
    for team, _ in SLACK:
        asyncio.run(workspaces.add(slack.bot_token(team)))
    syncs = SyncAdmin(sessions)
    syncs.create("faults")
    for team, channel in SLACK:
        syncs.add("faults", Endpoint.slack(team, channel))
    env = {
        "SB_DB_URL": url.render_as_string(hide_password=False),
        "SB_SLACK_URL": slack.base_url,
        "SB_SIGNING_SECRET": slack.signing_secret,
        "SB_PORT": str(synapse.as_port),
        "SB_HS_URL": synapse.url,
        "SB_AS_TOKEN": synapse.as_token,
        "SB_HS_TOKEN": synapse.hs_token,
        "SB_LEASE": "2",
    }
    slack.app_url = f"http://127.0.0.1:{synapse.as_port}/slack/events"
    app_log = tmp_path / "app.log"

    def app_log_tail() -> str:
        return "\n".join(app_log.read_text(errors="replace").splitlines()[-40:])

    alice = synapse.register_user(f"alicefault{tmp_path.name[-6:].lower()}")
    app = start_app(env, app_log)
    bot = "@slackbot:test.local"
    try:
        spec = {"preset": "private_chat", "name": "faults", "room_version": ROOM_VERSION}
        room = alice.call("POST", "/createRoom", json=spec)["room_id"]
        alice.call("POST", f"/rooms/{room}/invite", json={"user_id": bot})
        wait_for(lambda: bot in alice.call("GET", f"/rooms/{room}/joined_members")["joined"])
        syncs.add("faults", Endpoint.matrix(room))
        for i in range(3):
            alice.text(room, f"from matrix {i}")
        slack.fail_randomly(
            "*", 0.2, "429:0", "500", "timeout", "drop", "500_after", "timeout_after"
        )
        slack.convert_to_private("T3", "C3")
        for i in range(N):
            slack.post_message("T1", "C1", "U1", f"message {i:03d}")
            if i == 10:
                slack.remove_bot("T3", "C3", by="U3")
            if i == 20:
                synapse.stop()  # the homeserver is down from here ...
            if i == 30:
                # ... and the app is killed meanwhile, with deliveries in flight.
                wait_for(lambda: _pending(sessions) > 0)
                app.send_signal(signal.SIGKILL)
                app.wait(10)
                app = start_app(env, app_log)
            if i == 40:
                # Down for many times the retry budget: the room is held, nothing dead.
                wait_for(lambda: _held(sessions, f"matrix:{room}"), timeout=60, interval=0.2)
                synapse.start()
                slack.invite_bot("T3", "C3", by="U3A")
        wanted = [f"message {i:03d}" for i in range(N)]
        from_matrix = [f"from matrix {i}" for i in range(3)]

        def slack_side(team: str, channel: str) -> list[str]:
            return [
                m.text
                for m in slack.messages(team, channel)
                if re.fullmatch(r"message \d{3}|from matrix \d", m.text)
            ]

        def matrix_side() -> list[str]:
            return [
                e["content"].get("body", "")
                for e in alice.events(room)
                if e["type"] == "m.room.message" and e["sender"].startswith("@slack_")
            ]

        wait_for(
            lambda: (
                all(len(slack_side(t, c)) >= N + 3 for t, c in SLACK[1:])
                and len(matrix_side()) >= N
            ),
            timeout=240,
            interval=0.5,
            context=lambda: (
                f"slack: {[len(slack_side(t, c)) for t, c in SLACK[1:]]}, "
                f"matrix: {len(matrix_side())}, app log:\n{app_log_tail()}"
            ),
        )
        slack.clear_faults()
        # Nothing left in flight: any duplicate would show up by now.
        wait_for(lambda: not _pending(sessions) and not slack.pending_events(), timeout=60)
        for team, channel in SLACK[1:]:
            got = slack_side(team, channel)
            assert [t for t in got if t.startswith("message")] == wanted, team
            assert sorted(t for t in got if t.startswith("from")) == from_matrix, team
        assert [t for t in slack_side("T1", "C1") if t.startswith("message")] == wanted
        assert matrix_side() == wanted
        with sessions() as s:
            dead = s.execute(
                select(func.count()).select_from(Delivery).where(Delivery.status == "dead")
            ).scalar()
        assert dead == 0
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(10)
        except subprocess.TimeoutExpired:
            app.kill()
        if synapse.proc is None:
            synapse.start()
        alice.close()
        slack.stop()
        engine.dispose()


def _pending(sessions) -> int:
    with sessions() as s:
        query = select(func.count()).select_from(Delivery)
        return int(s.execute(query.where(Delivery.status == "pending")).scalar_one())


def _held(sessions, target: str) -> bool:
    with sessions() as s:
        attempts = s.execute(
            select(func.max(Delivery.attempts)).where(
                Delivery.target_endpoint == target, Delivery.status == "pending"
            )
        ).scalar()
    return bool(attempts and attempts >= 5)
