"""Bridge latency, the seed's FR-001/FR-002 (< 5 s each way), over a loopback Synapse and the
fake Slack in Socket Mode (not a test: numbers go to RESULTS.md).

    .venv/bin/python -m bench.bench_latency [--messages 100] [--portals 10]

1. Slack -> Matrix: a message posted in the fake Slack until a Matrix user's ``/sync`` long
   poll returns it (Socket Mode envelope, ack, relay, outbox, ghost send, Synapse fan-out).
2. Matrix -> Slack: a message sent by the Matrix user until it is in the fake Slack channel
   (Synapse's appservice push, relay, outbox, ``chat.postMessage``).
3. First message of a new portal: a message in a channel of the logged-in workspace with no
   portal, until it reaches the user's ``/sync`` (room creation, invite, relay included).

Messages are sent one at a time (latency, not throughput); p50/p95/p99 over the count.
The app, the fake Slack and the benchmark share one Python process (and its GIL); Synapse runs
in its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from app.core.endpoints import Endpoint
from app.matrix.registration import registration_yaml
from app.slack.socket_state import ConnectionState
from app.store.engine import make_engine
from app.store.migrate import upgrade
from fakeslack import FakeSlack
from tests.matrix.conftest import bridge_settings
from tests.matrix.harness import BridgeApp
from tests.matrix.synapse import MatrixUser, Synapse
from tests.slack.harness import wait_for

TEAM = "T1"


class Timeline:
    """A Matrix user's ``/sync`` stream, read with long polls."""

    def __init__(self, user: MatrixUser) -> None:
        self.user = user
        self.since = self._sync(timeout=0)["next_batch"]

    def _sync(self, timeout: int) -> dict[str, Any]:
        params: dict[str, Any] = {"timeout": timeout, "filter": json.dumps(_FILTER)}
        if getattr(self, "since", None):
            params["since"] = self.since
        resp = self.user.http.get("/_matrix/client/v3/sync", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def wait_body(self, body: str, deadline: float = 30.0) -> float:
        """Long-poll until a message with ``body`` arrives; returns the arrival time."""
        end = time.perf_counter() + deadline
        while time.perf_counter() < end:
            data = self._sync(timeout=5000)
            arrived = time.perf_counter()
            self.since = data["next_batch"]
            for room in (data.get("rooms") or {}).get("join", {}).values():
                for event in room.get("timeline", {}).get("events", []):
                    if (event.get("content") or {}).get("body") == body:
                        return arrived
        raise TimeoutError(f"{body!r} did not arrive")

    def join_invites(self) -> list[str]:
        data = self._sync(timeout=0)
        self.since = data["next_batch"]
        rooms = list((data.get("rooms") or {}).get("invite", {}))
        for room in rooms:
            self.user.call("POST", f"/join/{room}", json={})
        return rooms


_FILTER = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {"ephemeral": {"not_types": ["*"]}, "timeline": {"limit": 50}},
}


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(samples) * 1000,
    }


def line(name: str, samples: list[float]) -> str:
    p = percentiles(samples)
    return (
        f"| {name} | {len(samples)} | {p['p50']:.0f} | {p['p95']:.0f} | {p['p99']:.0f} | "
        f"{p['max']:.0f} |"
    )


def run(messages: int, portals: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    synapse = Synapse(work / "synapse")
    synapse.work.mkdir()
    settings = bridge_settings(synapse)
    synapse.write_config(registration_yaml(settings, url=f"http://127.0.0.1:{synapse.as_port}"))
    synapse.start()
    slack = FakeSlack().start()
    app: BridgeApp | None = None
    try:
        slack.add_workspace(TEAM, "Acme", socket_mode=True)
        slack.add_user(TEAM, "U1", "Ada")
        slack.add_channel(TEAM, "C0", "bench", members=["U1"])
        for i in range(portals):
            slack.add_channel(TEAM, f"CN{i:03d}", f"new-{i}", members=["U1"])
        settings = bridge_settings(
            synapse,
            slack_signing_secret=slack.signing_secret,
            slack_api_url=slack.base_url,
            matrix_conversation_count=1,
        )
        engine = make_engine(settings, url=make_url(f"sqlite:///{work}/syncbot.db"))
        upgrade(engine)
        app = BridgeApp(settings, engine, port=synapse.as_port, socket_mode=True).start()
        alice = synapse.register_user("alice")
        assert app.matrix is not None and app.sockets is not None
        bridge = app.matrix.workspace_bridge
        assert bridge is not None
        # What `login app` does (its dialogue is covered by tests/matrix/test_login_flow.py).
        app.run(app.services.slack.workspaces.add(slack.bot_token(TEAM), slack.app_token))
        bridge.record_login(alice.user_id, TEAM, "!unused:test.local")
        app.run(app.sockets.connect(TEAM))
        wait_for(lambda: app.sockets.states().get(TEAM) is ConnectionState.CONNECTED)
        timeline = Timeline(alice)
        room = app.run(app.matrix.portals.ensure(Endpoint.slack(TEAM, "C0")))
        wait_for(lambda: room in timeline.join_invites())

        # Warm-up: the ghost's registration and profile are a one-off.
        slack.post_message(TEAM, "C0", "U1", "warm-up")
        timeline.wait_body("warm-up")

        s2m = []
        for i in range(messages):
            body = f"s2m {i}"
            start = time.perf_counter()
            slack.post_message(TEAM, "C0", "U1", body)
            s2m.append(timeline.wait_body(body) - start)

        m2s = []
        for i in range(messages):
            body = f"m2s {i}"
            start = time.perf_counter()
            alice.text(room, body)
            while slack.find_message(TEAM, "C0", text=body) is None:
                time.sleep(0.002)
            m2s.append(time.perf_counter() - start)

        first = []
        for i in range(portals):
            body = f"first {i}"
            start = time.perf_counter()
            slack.post_message(TEAM, f"CN{i:03d}", "U1", body)
            # Invited to the new room, the user joins it and finds the message there.
            new_room = app.run(_room_of(app, f"CN{i:03d}"))
            wait_for(lambda r=new_room: r in timeline.join_invites(), interval=0.005)
            wait_for(
                lambda r=new_room, b=body: any(
                    (e.get("content") or {}).get("body") == b for e in alice.events(r)
                ),
                interval=0.005,
            )
            first.append(time.perf_counter() - start)

        header = [
            "| path | messages | p50 ms | p95 ms | p99 ms | max ms |",
            "|---|---|---|---|---|---|",
        ]
        rows = [line("Slack → Matrix", s2m), line("Matrix → Slack", m2s)]
        if len(first) >= 2:
            rows.append(line("first message of a new portal", first))
        return header + rows
    finally:
        if app is not None:
            app.stop()
        slack.stop()
        synapse.stop()


async def _room_of(app: BridgeApp, channel: str) -> str:
    assert app.matrix is not None
    while True:
        view = await asyncio.to_thread(app.matrix.portals.get, Endpoint.slack(TEAM, channel))
        if view is not None and view.state == "active" and view.room_id:
            return view.room_id
        await asyncio.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="messages each way")
    parser.add_argument("--portals", type=int, default=10, help="portals created by a message")
    args = parser.parse_args()
    for row in run(args.messages, args.portals):
        print(row)


if __name__ == "__main__":
    main()
