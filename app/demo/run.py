"""``syncbot demo``: start a simulated Slack and the real service, sync three workspaces, act out
every message kind and show each copy arriving, then a summary.

The service is the production one (:class:`~app.demo.service.LocalService`: the assembly, the
ASGI app, its outbox worker, uvicorn); the workspaces are installed and the sync made through the
same calls as ``syncbot workspace add`` and ``syncbot sync create/add``. Only Slack is simulated.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.core.endpoints import Endpoint
from app.demo.matrix import Homeserver, MatrixPerson
from app.demo.scenario import SIDES, SYNC_NAME, Scenario, Side, Step, populate, watch
from app.demo.service import LocalService
from app.matrix.registration import registration_yaml
from app.parts import parts
from app.settings import Settings, load_settings

if TYPE_CHECKING:
    from fakeslack import FakeSlack

SPINNER = "|/-\\"


class Screen:
    """Prints the demo: a live progress line on a terminal, plain lines everywhere."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        # In-memory text (no encoding) takes any character; a terminal may not.
        encoding = getattr(out, "encoding", None)
        utf8 = encoding is None or encoding.lower().replace("-", "") == "utf8"
        self.ok, self.bad = ("✓", "✗") if utf8 else ("ok", "!!")
        self.sides: list[Side] = list(SIDES)
        self._spin = 0
        self._shown = 0

    def line(self, text: str = "") -> None:
        self._clear()
        print(text.rstrip(), file=self.out, flush=True)

    def _clear(self) -> None:
        if self.live:
            self.out.write("\r\x1b[2K")

    def progress(self, step: Step, number: int, total: int) -> None:
        """Print new arrivals; on a terminal, redraw the waiting line under them."""
        for arrival in step.arrivals[self._shown :]:
            side = arrival.side
            self.line(
                f"      {self.ok} {side.name:<6} {side.where:<9} {arrival.shown}"
                f"  ({arrival.seconds:.2f} s)"
            )
        self._shown = len(step.arrivals)
        if self.live:
            got = {a.side.team for a in step.arrivals}
            pending = [s.name for s in self.sides if s.team in step.expect and s.team not in got]
            self._spin = (self._spin + 1) % len(SPINNER)
            bar = "#" * number + "-" * (total - number)
            self.out.write(
                f"\r\x1b[2K  [{bar}] {SPINNER[self._spin]} waiting for "
                f"{', '.join(pending) or 'nothing'}"
            )
            self.out.flush()

    def start_step(self, step: Step, number: int, total: int) -> None:
        self._shown = 0
        actor = step.actor
        self.line(
            f"[{number}/{total}] {step.kind:<8} {actor.person} in {actor.name} {actor.where}: "
            f"{step.says}"
        )


def run_demo(
    out: TextIO | None = None,
    *,
    timeout: float = 30.0,
    data_dir: Path | None = None,
    live: bool | None = None,
    matrix: bool = False,
) -> int:
    """Run the demo, printing to ``out``; 0 when every copy arrived on every side.

    Args:
        matrix: also bridge a Matrix room on a throwaway Synapse (needs ``matrix-synapse``).
    """
    from fakeslack import FakeSlack

    began = time.monotonic()
    out = out or sys.stdout
    screen = Screen(out, live=out.isatty() if live is None else live)
    with tempfile.TemporaryDirectory(prefix="syncbot-demo-") as scratch:
        where = data_dir or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        homeserver = Homeserver(where / "synapse") if matrix else None
        try:
            with FakeSlack() as slack:
                populate(slack)
                return _run(slack, where, screen, homeserver, timeout=timeout, began=began)
        finally:
            if homeserver is not None:
                homeserver.stop()


def _run(
    slack: FakeSlack,
    where: Path,
    screen: Screen,
    homeserver: Homeserver | None,
    *,
    timeout: float,
    began: float,
) -> int:
    service = LocalService()
    env = {
        "LOCAL_DEVELOPMENT": "true",
        "SYNCBOT_DATA_DIR": str(where),
        "SLACK_API_URL": slack.base_url,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        # A key of its own: stored tokens are encrypted as always, and nothing is kept.
        "TOKEN_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        # The fake answers at once; Slack's per-method pacing would only add waiting.
        "SYNCBOT_SLACK_RATE_SCALE": "1000",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
    }
    if homeserver is not None:
        env |= homeserver.environment() | {
            "SYNCBOT_PUBLIC_URL": f"http://127.0.0.1:{service.bind()}"
        }
    settings = load_settings(env)
    service.settings = settings
    with_matrix = " and a Matrix room" if homeserver is not None else ""
    screen.line(
        f"syncbot demo: the real service against a simulated Slack with three workspaces"
        f"{with_matrix}"
    )
    if homeserver is not None:
        screen.line("  starting a throwaway Synapse for the Matrix side ...")
        homeserver.start(registration_yaml(settings, url=service.url))
    with service:
        runtime = service.runtime
        assert runtime is not None
        slack.app_url = f"{service.url}/slack/events"
        screen.line(f"  service     {service.url}  (SQLite in {where})")
        screen.line(f"  Slack       {slack.base_url}  (simulated: events signed, Web API)")
        if homeserver is not None:
            screen.line(f"  Matrix      {homeserver.url}  (Synapse, server name localhost)")
        screen.line(
            "  parts       "
            + "\n              ".join(str(p) for p in parts(settings, socket_workspaces=0))
        )
        services = runtime.services
        # What `syncbot workspace add --bot-token` and `syncbot sync create/add` do.
        for side in SIDES:
            asyncio.run(services.slack.workspaces.add(slack.bot_token(side.team)))
        services.syncs.create(SYNC_NAME)
        for side in SIDES:
            api = services.slack.workspaces.api(side.team)
            asyncio.run(api.call("conversations.join", channel=side.channel))
            services.syncs.add(SYNC_NAME, Endpoint.parse(side.endpoint))
        names = ", ".join(f"{s.name} ({s.team})" for s in SIDES)
        screen.line(f"  installed   {names}")
        room = None
        if homeserver is not None:
            room = _matrix_room(homeserver, settings, timeout=timeout)
            services.syncs.add(SYNC_NAME, Endpoint.parse(f"matrix:{room[1]}"))
            screen.line(
                f"  Matrix      {room[0].user_id} made {room[1]} and invited the bridge bot"
            )
        scenario = Scenario(slack, room)
        screen.sides = scenario.sides
        endpoints = ", ".join(s.endpoint for s in scenario.sides)
        screen.line(f"  sync {SYNC_NAME!r}   {endpoints}")
        screen.line()
        builders = scenario.steps()
        done: list[Step] = []
        try:
            for number, build in enumerate(builders, 1):
                step = build()
                screen.start_step(step, number, len(builders))

                def tick(s: Step, n: int = number) -> None:
                    screen.progress(s, n, len(builders))

                watch(step, scenario.sides, timeout=timeout, tick=tick)
                screen.progress(step, number, len(builders))
                for side in step.missing:
                    screen.line(f"      {screen.bad} {side.name:<6} nothing after {timeout:.0f} s")
                done.append(step)
                if step.missing:
                    break  # the next steps build on this one's copies
        finally:
            if room is not None:
                room[0].close()
        report = _outbox(runtime)
        screen.line()
        return _summary(screen, done, len(builders), report, time.monotonic() - began)


def _matrix_room(
    homeserver: Homeserver, settings: Settings, *, timeout: float
) -> tuple[MatrixPerson, str]:
    """Alice, and a room of hers the bridge bot joined (it joins when invited)."""
    alice = homeserver.register("alice")
    room = alice.create_room("demo")
    bot = f"@{settings.matrix_bot_localpart}:{settings.matrix_server_name}"
    alice.invite(room, bot)
    deadline = time.monotonic() + timeout
    while bot not in alice.members(room):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bridge bot did not join {room} within {timeout:.0f} s")
        time.sleep(0.1)
    return alice, room


def _outbox(runtime: object) -> tuple[int, int]:
    from app.health import runtime_report

    report = runtime_report(runtime)  # type: ignore[arg-type]
    return report.outbox_depth, report.dead_deliveries


def _summary(
    screen: Screen, steps: list[Step], planned: int, outbox: tuple[int, int], elapsed: float
) -> int:
    screen.line("Summary")
    header = f"  {'kind':<9}" + "".join(f"{s.name:<10}" for s in screen.sides)
    screen.line(header)
    times: list[float] = []
    expected = arrived = 0
    for step in steps:
        cells = []
        by_team = {a.side.team: a for a in step.arrivals}
        for side in screen.sides:
            if side == step.actor:
                cells.append("origin")
            elif side.team in by_team:
                seconds = by_team[side.team].seconds
                times.append(seconds)
                cells.append(f"{seconds:.2f} s")
            elif side.team in step.expect:
                cells.append("MISSING")
            else:
                cells.append("-")
        expected += len(step.expect)
        arrived += len(step.arrivals)
        screen.line(f"  {step.kind:<9}" + "".join(f"{c:<10}" for c in cells))
    depth, dead = outbox
    complete = arrived == expected and len(steps) == planned
    verdict = screen.ok if complete else screen.bad
    median = (
        f"median {statistics.median(times):.2f} s, slowest {max(times):.2f} s" if times else ""
    )
    screen.line(
        f"{verdict} {arrived}/{expected} copies arrived on every side ({median}); "
        f"outbox: {depth} waiting, {dead} dead; {elapsed:.1f} s in all"
    )
    if not complete:
        screen.line("  some copies did not arrive: rerun with LOG_LEVEL=INFO to see why")
    return 0 if complete else 1
