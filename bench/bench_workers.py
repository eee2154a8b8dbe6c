"""Outbox delivery throughput with 1 and 2 worker processes on one PostgreSQL (not a test).

    .venv/bin/python -m bench.bench_workers [--posts 19] [--targets 64] [--runs 3]

Each run fills a fresh database with ``posts`` messages from one channel to ``targets`` other
channels (``posts x targets`` deliveries, all due), then starts N worker processes that share
the outbox through leased ``SKIP LOCKED`` claims and deliver through the real Slack deliverer to
the fake Slack (``python -m fakeslack``, its own process) answering every call after 50 ms.
Timed from the moment the workers are released (after every one has started up and said so)
until the last row is delivered. Slack's client-side pacing is scaled up: this measures our
workers, not Slack's limits. CPU per delivery is reported for the workers and the fake.

The default shape is chosen so the benchmark can show a second worker's worth. Deliveries to one
target go in order, one 50 ms call after another, and a worker runs 16 targets at once (its
lanes): the run is a sequence of waves of 16 (or, with two workers, 32) targets, each as long as
one target's posts. With the former 40 targets, one worker needed 3 waves (16 + 16 + 8) and two
needed 2 (32 + 8): 1.5x at most, whatever the workers did. 64 targets fill 4 waves for one worker
and 2 for two (2x at most); 19 posts keep the run at about 1,200 deliveries.

A worker process is ``python -m bench.bench_workers --worker URL SLACK``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.assembly import assemble
from app.core.outbox import RetryPolicy
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.models import Delivery
from bench.bench_relay import cpu_seconds, load, message, setup, spawn_slack
from tests.conftest import TEST_KEY, local_settings
from tests.databases import throwaway_database

LATENCY = 0.05
GOAL = 1.7


def worker(url: str, slack_url: str) -> None:
    """One worker process: says ``ready`` once set up, starts the outbox's drain loop when
    the parent writes a line (so a slow start-up on a busy machine is not timed)."""
    settings = local_settings(slack_signing_secret="unused-secret", slack_api_url=slack_url)
    engine = make_engine(settings, url=make_url(url), pool_size=20)
    services = assemble(
        settings,
        engine=engine,
        sessions=session_factory(engine),
        cipher=TokenCipher(TEST_KEY),
        retry=RetryPolicy(),
        slack_rate_scale=1e6,
        socket_mode=False,
        matrix=False,
    ).services

    def report_cpu(*_: object) -> None:
        # CPU spent delivering, start-up excluded, for the parent to read from stdout.
        now = resource.getrusage(resource.RUSAGE_SELF)
        used = (now.ru_utime - released.ru_utime) + (now.ru_stime - released.ru_stime)
        print(f"cpu {used:.3f}", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, report_cpu)
    released = resource.getrusage(resource.RUSAGE_SELF)

    async def run() -> None:
        nonlocal released
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
        await services.slack.workspaces.http.open()  # as serve's worker does
        await asyncio.to_thread(services.store.next_due_in)  # connect to the database
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        released = resource.getrusage(resource.RUSAGE_SELF)
        # The worker loop of `syncbot serve`, as is; the parent stops it when all is delivered.
        await services.outbox.run_forever(idle=0.2)

    asyncio.run(run())


def pending(engine) -> int:
    with session_factory(engine)() as s:
        return s.execute(
            select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
        ).scalar_one()


def one_run(processes: int, posts: int, targets: int) -> tuple[float, float, float]:
    """Deliveries per second, and the workers' and the fake Slack's CPU seconds (user +
    system) per delivery."""
    with (
        spawn_slack(targets + 1) as slack,
        tempfile.TemporaryDirectory() as tmp,
        throwaway_database("postgresql", Path(tmp)) as url,
    ):
        services = setup(slack, url, targets)
        engine = services.engine
        for i in range(posts):
            services.relay.ingest(message(f"workers {i}"))
        total = pending(engine)
        assert total == posts * targets
        slack.latency(LATENCY)
        raw = url.render_as_string(hide_password=False)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.bench_workers", "--worker", raw, slack.api_url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdin is not None
            while proc.stdout.readline().strip() != "ready":
                pass
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        assert slack.process is not None
        fake_before = cpu_seconds(slack.process.pid)
        begun = time.perf_counter()
        while pending(engine):
            time.sleep(0.02)
        elapsed = time.perf_counter() - begun
        fake_cpu = cpu_seconds(slack.process.pid) - fake_before
        cpu = 0.0
        for proc in procs:
            proc.terminate()
            out, _ = proc.communicate(timeout=60)
            cpu += sum(float(ln.split()[1]) for ln in out.splitlines() if ln.startswith("cpu "))
        engine.dispose()
        return total / elapsed, cpu / total, fake_cpu / total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("URL", "SLACK"))
    parser.add_argument("--posts", type=int, default=19)
    parser.add_argument("--targets", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        url, slack_url = args.worker
        worker(url, slack_url)
        return
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), flush=True)
    results: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.runs):
        for n in (1, 2):  # interleaved, so machine noise hits both alike
            before = load()
            rate, cpu, fake = one_run(n, args.posts, args.targets)
            results[n].append(rate)
            print(
                f"{n} process(es): {rate:.0f} deliveries/s, CPU per delivery: workers "
                f"{cpu * 1000:.2f} ms, fake Slack {fake * 1000:.2f} ms (before: {before})",
                flush=True,
            )
    one, two = statistics.median(results[1]), statistics.median(results[2])
    pairs = sorted(b / a for a, b in zip(results[1], results[2], strict=True))
    print(
        f"median: 1 -> {one:.0f}/s, 2 -> {two:.0f}/s, speed-up {two / one:.2f}x (goal ≥ {GOAL}x); "
        f"per interleaved pair: {', '.join(f'{r:.2f}x' for r in pairs)}"
    )


if __name__ == "__main__":
    main()
