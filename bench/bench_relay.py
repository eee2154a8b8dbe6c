"""Relay benchmarks against the fake Slack in its own process (not a test: figures go to
bench/RESULTS.md).

    .venv/bin/python -m bench.bench_relay [--backend sqlite|postgresql] [--quick] [--profile]

Per backend, side by side in one run:

1. Fan-out: one message to N = 1, 5, 10, 25 targets with every fake Slack call answering after
   50 ms, through the path of an HTTP event (relay with its rows leased to the inline drain,
   then inline delivery), ingest to last copy recorded, ÷ one call's round trip.
2. Throughput: messages per second with 3 targets each, Slack answering at once, 8 events in
   flight (as Slack sends them), ingest and delivery together, three runs (median and range);
   the app's CPU per delivery.
3. Statements for one message to N targets, ingest to all delivered (``BEGIN``s counted).
4. ``syncbot serve`` as its own process, the fake Slack POSTing signed events to it: one
   message from one of 11 workspaces to the other 10, 50 in a row, 50 ms per Slack call;
   p50/p99 of event-sent to last copy landed, ÷ one call.

The fake Slack runs in its own process (``python -m fakeslack``), so it no longer shares the
app's GIL. The app's part runs as ``syncbot serve`` runs (``app.serving``): on uvloop where it
is installed, its start-up heap frozen. Slack's client-side pacing is scaled up
(``slack_rate_scale``): this measures our engine, not Slack's limits. The load average is
printed beside each section: the figures depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from app.assembly import assemble
from app.core.endpoints import Endpoint
from app.core.events import Author, NewPost
from app.core.ingest import Ingest
from app.core.outbox import RetryPolicy
from app.core.relay import RelayResult
from app.services import Services
from app.serving import freeze_startup_heap, loop_factory
from app.slack import mrkdwn
from app.slack.events_route import ACK_BUDGET
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.models import Delivery, SyncEndpoint
from app.store.syncs import SyncAdmin
from fakeslack.remote import RemoteSlack
from tests.conftest import TEST_KEY, local_settings
from tests.databases import throwaway_database
from tests.slack.harness import free_port
from tests.store.test_statements import counting

LATENCY = 0.05
IN_FLIGHT = 8
GOALS = {
    "rate": {"sqlite": 300, "postgresql": 200},
    "fan_out_10": 1.5,
    "serve_p99": 3.0,
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of another process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_slack(workspaces: int, *extra: str) -> RemoteSlack:
    return RemoteSlack.spawn("--workspaces", str(workspaces), *extra)


def setup(slack: RemoteSlack, url: Any, n_targets: int, *, pool: int = 10) -> Services:
    """A migrated database with every fake workspace installed and one sync of their channels,
    and the sync machinery of one process over it."""
    settings = local_settings(
        slack_signing_secret=slack.signing_secret, slack_api_url=slack.api_url
    )
    engine = make_engine(settings, url=url, pool_size=pool)
    upgrade(engine)
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    workspaces = Workspaces(sessions, cipher, api_url=slack.api_url)
    admin = SyncAdmin(sessions)
    admin.create("bench")
    for i in range(n_targets + 1):
        team = f"T{i:03d}"
        asyncio.run(workspaces.add(slack.bot_token(team)))
        admin.add("bench", Endpoint.slack(team, f"C{i:03d}"))
    return assemble(
        settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        retry=RetryPolicy(),
        slack_rate_scale=1e6,
        socket_mode=False,
        matrix=False,
    ).services


_seq = 0


def message(text: str) -> NewPost:
    global _seq
    _seq += 1
    return NewPost(
        source=Endpoint.slack("T000", "C000"),
        native_id=f"1700000000.{_seq:06d}",
        dedupe_key=f"bench:{_seq}:{time.time()}",
        author=Author("User 0", "T000/U000", "https://a/x.png", "Team 0"),
        body=mrkdwn.parse(text),
    )


async def relay_inline(services: Services, event: NewPost) -> RelayResult:
    """What the Slack events route does with an event: relay (rows leased to the inline
    drain), then deliver inline within the ack budget (:class:`app.core.ingest.Ingest`)."""
    return await Ingest(services.relay, services.dispatcher)(
        event, deadline=time.monotonic() + ACK_BUDGET
    )


def targets(services: Services, n: int) -> Services:
    """Pause all but the first n targets, so one sync serves every N."""
    with services.sessions() as s, s.begin():
        s.execute(update(SyncEndpoint).values(status="active"))
        s.execute(
            update(SyncEndpoint)
            .where(SyncEndpoint.endpoint > str(Endpoint.slack(f"T{n:03d}", f"C{n:03d}")))
            .values(status="paused")
        )
    return services


def pending(services: Services) -> int:
    with services.sessions() as s:
        return s.execute(
            select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
        ).scalar_one()


async def one_call(slack: RemoteSlack, repeats: int = 7) -> float:
    import aiohttp

    token = slack.bot_token("T000")
    out = []
    async with aiohttp.ClientSession() as http:
        for _ in range(repeats):
            start = time.perf_counter()
            async with http.post(
                slack.api_url + "auth.test", headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                await resp.read()
            out.append(time.perf_counter() - start)
    return statistics.median(out)


async def fan_out(services: Services, repeats: int) -> list[float]:
    await services.slack.workspaces.http.open()
    times = []
    try:
        for i in range(repeats + 1):
            start = time.perf_counter()
            await relay_inline(services, message(f"fan-out #{i}"))
            await services.outbox.wait_idle()
            if i:  # the first one warms the connections and profile caches up
                times.append(time.perf_counter() - start)
    finally:
        await services.slack.workspaces.http.close()
    return times


async def throughput(services: Services, messages: int) -> tuple[float, float]:
    """Messages per second, and the app's CPU seconds per delivery."""
    await services.slack.workspaces.http.open()
    worker = asyncio.ensure_future(services.outbox.run_forever(idle=0.5))
    await relay_inline(services, message("warm-up"))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(i)

    async def sender() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await relay_inline(services, message(f"throughput {i}"))

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
    while await asyncio.to_thread(pending, services):  # noqa: ASYNC110 - polling the database
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    worker.cancel()
    await services.slack.workspaces.http.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return messages / elapsed, cpu / (messages * 3)


async def count_statements(services: Services) -> tuple[int, int]:
    await services.slack.workspaces.http.open()
    try:
        await relay_inline(services, message("warm"))  # profile caches, connections
        dispatcher = services.dispatcher
        with counting(services.engine) as seen:
            # Ingest's two steps, apart, to count the relay's transaction on its own.
            lease = dispatcher.inline_lease(ACK_BUDGET)
            result = await asyncio.to_thread(
                functools.partial(services.relay.ingest, message("count me"), lease=lease)
            )
            ingest = len(seen)
            await dispatcher.after_commit(
                result.deliveries, budget=ACK_BUDGET, leased=result.tasks
            )
            await services.outbox.wait_idle()
        assert result.deliveries
        return ingest, len(seen)
    finally:
        await services.slack.workspaces.http.close()


def run(backend: str, quick: bool, profile: bool) -> list[str]:
    lines = [f"### {backend}", f"- before: {load()}"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        throwaway_database(backend, Path(tmp)) as url,
        spawn_slack(26) as slack,
    ):
        services = setup(slack, url, 25)
        prof = cProfile.Profile() if profile else None
        # As `syncbot serve` runs: its event loop (uvloop where installed), its heap frozen.
        freeze_startup_heap()
        # One event loop for all of it: the services' locks and events belong to one loop.
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            lines.extend(runner.run(in_process(services, slack, backend, quick, prof)))
        services.engine.dispose()
    lines.extend(serve_tail(backend, 50 if not quick else 20))
    if prof:
        stats = pstats.Stats(prof).sort_stats("tottime")
        print(f"--- profile of the throughput run ({backend}), by own time ---")
        stats.print_stats(30)
    return lines


async def in_process(
    services: Services,
    slack: RemoteSlack,
    backend: str,
    quick: bool,
    prof: cProfile.Profile | None,
) -> list[str]:
    """Fan-out, throughput and statements, the app in this process, the fake in its own."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
    lines = []
    slack.latency(LATENCY)
    single = await one_call(slack)
    lines.append(f"- one Slack call at 50 ms latency (round trip): {single * 1000:.0f} ms")
    lines.append("- fan-out of one message (median, event to last copy recorded):")
    for n in (1, 5, 10, 25):
        times = await fan_out(targets(services, n), 3 if quick else 7)
        med = statistics.median(times)
        goal = f"   goal ≤ {GOALS['fan_out_10']}x" if n == 10 else ""
        lines.append(f"  - N={n:>2}: {med * 1000:.0f} ms ({med / single:.2f}x one call){goal}")
    lines.append(f"  ({load()})")
    slack.latency(0.0)
    targets(services, 3)
    if prof:
        prof.enable()
    # Three runs: one run's figure moves with whatever else the machine does meanwhile.
    runs = [await throughput(services, 300 if quick else 1000) for _ in range(3)]
    if prof:
        prof.disable()
    rates = sorted(rate for rate, _ in runs)
    cpu = statistics.median(cpu for _, cpu in runs)
    spread = ", ".join(f"{r:.0f}" for r in rates)
    lines.append(
        f"- sustained throughput, 3 targets, Slack answering at once, {IN_FLIGHT} events in "
        f"flight: median {rates[1]:.0f} messages/s of 3 runs ({spread}) "
        f"(goal ≥ {GOALS['rate'][backend]}); app CPU {cpu * 1000:.2f} ms per delivery "
        f"(median) ({load()})"
    )
    for n in (3, 10):
        ingest, total = await count_statements(targets(services, n))
        lines.append(
            f"- statements for one message to {n} targets: {ingest} to ingest, "
            f"{total} in all, BEGINs counted (goal ≤ N + 4 = {n + 4})"
        )
    return lines


# -- syncbot serve as its own process -------------------------------------------------------


def serve_tail(backend: str, messages: int) -> list[str]:
    """p50/p99 of one message to 10 targets with ``syncbot serve`` and the fake in their own
    processes, the fake POSTing signed events to serve as Slack does."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}/slack/events"
    with (
        tempfile.TemporaryDirectory() as tmp,
        throwaway_database(backend, Path(tmp)) as url,
        spawn_slack(11, "--app-url", app_url) as slack,
    ):
        services = setup(slack, url, 10)
        services.engine.dispose()
        raw = url.render_as_string(hide_password=False)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "SLACK_", "SYNCBOT_"))
        } | {
            "LOCAL_DEVELOPMENT": "true",
            "DATABASE_BACKEND": backend,
            "DATABASE_URL": raw,
            "DATABASE_TLS_ENABLED": "false",
            "SYNCBOT_AUTO_MIGRATE": "false",
            "TOKEN_ENCRYPTION_KEY": TEST_KEY,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": slack.api_url,
            # Slack's own pacing, as a new user runs it; messages go 1.1 s apart so each channel
            # stays within chat.postMessage's one message per second.
            "LOG_LEVEL": "WARNING",
        }
        log = Path(tmp) / "serve.log"
        syncbot = Path(sys.executable).parent / "syncbot"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(syncbot), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health", proc, log)
            slack.latency(LATENCY)
            single = asyncio.run(one_call(slack))
            want = {f"C{i:03d}" for i in range(1, 11)}
            seen = len(slack.calls())
            ratios = []
            slowest: tuple[float, list[str]] = (0.0, [])
            first, first_trace = 0.0, []
            for i in range(messages + 1):
                start = time.monotonic()
                slack.post_message("T000", "C000", "U000", f"tail {i}")
                landed: dict[str, float] = {}
                trace: list[str] = []
                deadline = start + 30
                while len(landed) < len(want) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    calls = slack.calls(since=seen)
                    seen += len(calls)
                    for c in calls:
                        trace.append(f"{c['method']} +{(c['at'] - start) * 1000:.0f} ms")
                        channel = c["params"].get("channel")
                        if c["method"] == "chat.postMessage" and channel in want:
                            landed.setdefault(channel, c["at"] + LATENCY)
                if len(landed) < len(want):
                    raise RuntimeError(
                        f"message {i}: only {len(landed)} copies in 30 s:\n{log.read_text()}"
                    )
                ratio = (max(landed.values()) - start) / single
                if i == 0:
                    first, first_trace = ratio, trace  # serve's connections and caches are cold
                else:
                    ratios.append(ratio)
                    if ratio > slowest[0]:
                        slowest = (ratio, trace)
                time.sleep(1.1)
        finally:
            proc.terminate()
            proc.wait(15)
    ratios.sort()
    p50 = statistics.median(ratios)
    p99 = ratios[min(len(ratios) - 1, round(0.99 * (len(ratios) - 1)))]
    return [
        f"- `syncbot serve` in its own process, Slack's pacing, one message to 10 targets at "
        f"50 ms a call, {len(ratios)} messages 1.1 s apart, event sent to last copy landed: "
        f"p50 {p50:.2f}x, p99 {p99:.2f}x, max {ratios[-1]:.2f}x one call "
        f"({single * 1000:.0f} ms) (goal p99 ≤ {GOALS['serve_p99']}x); the very first message "
        f"(cold caches and connections) {first:.2f}x ({load()})",
        f"  - Slack calls of the slowest message: {', '.join(slowest[1])}",
        f"  - Slack calls of the first message: {', '.join(first_trace)}",
    ]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"serve did not become healthy:\n{log.read_text()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "mysql"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the throughput run")
    args = parser.parse_args()
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), flush=True)
    for backend in args.backend or ["sqlite", "postgresql"]:
        print("\n".join(run(backend, args.quick, args.profile)), flush=True)


if __name__ == "__main__":
    main()
