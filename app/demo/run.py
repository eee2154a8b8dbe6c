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
from app.demo.scenario import SIDES, SYNC_NAME, Scenario, Step, populate, watch
from app.demo.service import LocalService
from app.parts import parts
from app.settings import load_settings

if TYPE_CHECKING:
    from fakeslack import FakeSlack

SPINNER = "|/-\\"


class Screen:
    """Prints the demo: a live progress line on a terminal, plain lines everywhere."""

    def __init__(self, out: TextIO, *, live: bool) -> None:
        self.out = out
        self.live = live
        utf8 = (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self.ok, self.bad, self.arrow = ("✓", "✗", "→") if utf8 else ("ok", "!!", "->")
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
            self.line(
                f"      {self.ok} {arrival.side.name:<6} #general  {arrival.shown}"
                f"  ({arrival.seconds:.2f} s)"
            )
        self._shown = len(step.arrivals)
        if self.live:
            waiting = [s.name for s in SIDES if s.team in step.expect]
            got = {a.side.name for a in step.arrivals}
            pending = [name for name in waiting if name not in got]
            self._spin = (self._spin + 1) % len(SPINNER)
            bar = "#" * number + "-" * (total - number)
            self.out.write(
                f"\r\x1b[2K  [{bar}] {SPINNER[self._spin]} waiting for "
                f"{', '.join(pending) or 'nothing'}"
            )
            self.out.flush()

    def start_step(self, step: Step, number: int, total: int) -> None:
        self._shown = 0
        self.line(
            f"[{number}/{total}] {step.kind:<8} {step.actor.person} in {step.actor.name} "
            f"#general: {step.says}"
        )


def run_demo(
    out: TextIO | None = None,
    *,
    timeout: float = 30.0,
    data_dir: Path | None = None,
    live: bool | None = None,
) -> int:
    """Run the demo, printing to ``out``; 0 when every copy arrived on every side."""
    from fakeslack import FakeSlack

    began = time.monotonic()
    out = out or sys.stdout
    screen = Screen(out, live=out.isatty() if live is None else live)
    with tempfile.TemporaryDirectory(prefix="syncbot-demo-") as scratch:
        where = data_dir or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        with FakeSlack() as slack:
            populate(slack)
            return _run(slack, where, screen, timeout=timeout, began=began)


def _run(slack: FakeSlack, where: Path, screen: Screen, *, timeout: float, began: float) -> int:
    settings = load_settings(
        {
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
    )
    screen.line("syncbot demo: the real service against a simulated Slack with three workspaces")
    with LocalService(settings) as service:
        runtime = service.runtime
        assert runtime is not None
        slack.app_url = f"{service.url}/slack/events"
        screen.line(f"  service     {service.url}  (SQLite in {where})")
        screen.line(f"  Slack       {slack.base_url}  (simulated: events signed, Web API)")
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
        screen.line(
            f"  sync {SYNC_NAME!r}   #general of each: {', '.join(s.endpoint for s in SIDES)}"
        )
        screen.line()
        scenario = Scenario(slack)
        builders = scenario.steps()
        done: list[Step] = []
        for number, build in enumerate(builders, 1):
            step = build()
            screen.start_step(step, number, len(builders))
            watch(
                step,
                timeout=timeout,
                tick=lambda s, n=number: screen.progress(s, n, len(builders)),
            )
            screen.progress(step, number, len(builders))
            for side in step.missing:
                screen.line(f"      {screen.bad} {side.name:<6} nothing after {timeout:.0f} s")
            done.append(step)
            if step.missing:
                break  # the next steps build on this one's copies
        report = _outbox(runtime)
        screen.line()
        return _summary(screen, done, len(builders), report, time.monotonic() - began)


def _outbox(runtime: object) -> tuple[int, int]:
    from app.health import runtime_report

    report = runtime_report(runtime)  # type: ignore[arg-type]
    return report.outbox_depth, report.dead_deliveries


def _summary(
    screen: Screen, steps: list[Step], planned: int, outbox: tuple[int, int], elapsed: float
) -> int:
    screen.line("Summary")
    header = f"  {'kind':<9}" + "".join(f"{s.name:<10}" for s in SIDES)
    screen.line(header)
    times: list[float] = []
    expected = arrived = 0
    for step in steps:
        cells = []
        by_team = {a.side.team: a for a in step.arrivals}
        for side in SIDES:
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
