"""Slack profiles: one event fanned out to many channels asks Slack about its author once.

Each target's delivery resolves the author; without sharing the lookup in flight, a fan-out to
N channels made N identical ``users.info`` calls to the source workspace, and past the method's
burst (tier 4) Slack's pacing held the later deliveries back by most of a second.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.slack.profiles import Profiles
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY
from tests.databases import throwaway_database
from tests.slack.harness import synced_database, three_workspaces


async def test_concurrent_lookups_of_one_person_ask_slack_once(tmp_path: Path) -> None:
    slack = FakeSlack().start()
    try:
        three_workspaces(slack)
        with throwaway_database("sqlite", tmp_path) as url:
            _settings, engine = await asyncio.to_thread(
                synced_database, slack, url, "general", [("T1", "C1")]
            )
            sessions = session_factory(engine)
            workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
            profiles = Profiles(sessions, workspaces)
            slack.latency(0.2)  # every lookup is still under way when the others start
            found = await asyncio.gather(*(profiles.get("T1", "U1") for _ in range(10)))
            await workspaces.http.close()
            engine.dispose()
        asked = len(slack.called("users.info", "T1"))
    finally:
        slack.stop()
    assert [p.name if p else None for p in found] == ["Ada"] * 10
    assert asked == 1
