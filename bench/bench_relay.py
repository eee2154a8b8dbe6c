"""Relay benchmarks against the fake Slack on loopback (not a test: numbers go to RESULTS.md).

    .venv/bin/python -m bench.bench_relay [--backend sqlite|postgresql] [--quick]

1. Fan-out: one message to N = 1, 5, 10, 25 targets with 50 ms simulated Slack latency;
   compared with one call's latency (a sequential loop would need N times that).
2. Throughput: messages relayed per second with 3 targets each, ingest and delivery together.
3. Database statements per relayed message (ingest + deliveries), counted on the engine.

Slack's per-channel pacing is scaled up (``slack_rate_scale``): this measures our engine, not
Slack's limits.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event

from app.assembly import assemble
from app.core.endpoints import Endpoint
from app.core.events import Author, NewPost
from app.core.outbox import RetryPolicy
from app.slack import mrkdwn
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.migrate import upgrade
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings
from tests.databases import throwaway_database


def setup(slack: FakeSlack, url, n_targets: int):
    settings = local_settings(
        slack_signing_secret=slack.signing_secret, slack_api_url=slack.base_url
    )
    engine = make_engine(settings, url=url, pool_size=10)
    upgrade(engine)
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    workspaces = Workspaces(sessions, cipher, api_url=slack.base_url)
    admin = SyncAdmin(sessions)
    admin.create("bench")
    for i in range(n_targets + 1):
        team = f"T{i:03d}"
        slack.add_workspace(team, f"Team {i}")
        slack.add_channel(team, f"C{i:03d}", "bench")
        slack.add_user(team, f"U{i:03d}", f"User {i}")
        asyncio.run(workspaces.add(slack.bot_token(team)))
        admin.add("bench", Endpoint.slack(team, f"C{i:03d}"))
    services = assemble(
        settings,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        retry=RetryPolicy(),
        slack_rate_scale=1e6,
        socket_mode=False,
        matrix=False,
    ).services
    return engine, services


_seq = 0


def message(text: str) -> NewPost:
    global _seq
    _seq += 1
    return NewPost(
        source=Endpoint.slack("T000", "C000"),
        native_id=f"1700000000.{_seq:06d}",
        dedupe_key=f"bench:{_seq}",
        author=Author("User 0", "T000/U000", "https://a/x.png", "Team 0"),
        body=mrkdwn.parse(text),
    )


async def fan_out(services, n: int, repeats: int) -> list[float]:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        result = await asyncio.to_thread(services.relay.ingest, message(f"fan-out {n} #{i}"))
        delivered = 0
        while delivered < len(result.deliveries):
            report = await services.outbox.drain(only=result.deliveries)
            delivered += report.delivered
        times.append(time.perf_counter() - start)
    return times


async def throughput(services, messages: int) -> float:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(32))
    start = time.perf_counter()
    worker = asyncio.ensure_future(services.outbox.run_forever(idle=0.05))
    uids: list[str] = []
    for i in range(messages):
        result = await asyncio.to_thread(services.relay.ingest, message(f"throughput {i}"))
        uids.extend(result.deliveries)
        services.outbox.wake()
    while True:
        remaining = await asyncio.to_thread(services.store.next_due_in)
        if remaining is None:
            break
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    worker.cancel()
    return messages / elapsed


def count_statements(engine, services, n_targets: int) -> tuple[int, int]:
    counter = {"n": 0}

    def on_exec(*_a: object) -> None:
        counter["n"] += 1

    event.listen(engine, "before_cursor_execute", on_exec)
    try:
        asyncio.run(_warm_profiles(services))
        counter["n"] = 0
        result = services.relay.ingest(message("count me"))
        ingest = counter["n"]
        asyncio.run(_drain(services, result.deliveries))
        total = counter["n"]
    finally:
        event.remove(engine, "before_cursor_execute", on_exec)
    return ingest, total


async def _warm_profiles(services) -> None:
    result = await asyncio.to_thread(services.relay.ingest, message("warm"))
    await _drain(services, result.deliveries)


async def _drain(services, uids) -> None:
    done = 0
    while done < len(uids):
        done += (await services.outbox.drain(only=uids)).delivered


def run(backend: str, quick: bool) -> list[str]:
    lines = [f"### {backend}"]
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(backend, Path(tmp)) as url:
        slack = FakeSlack().start()
        slack.echo(False)
        try:
            engine, services = setup(slack, url, 25)
            slack.latency(0.05)
            single = statistics.median(asyncio.run(fan_out_single(slack)))
            lines.append(f"- one Slack call at 50 ms simulated latency: {single * 1000:.0f} ms")
            lines.append("- fan-out of one message (median of 5, ingest to last copy delivered):")
            for n in (1, 5, 10, 25):
                subset = build_subset(services, n)
                times = asyncio.run(fan_out(subset, n, 3 if quick else 5))
                med = statistics.median(times)
                lines.append(f"  - N={n:>2}: {med * 1000:.0f} ms ({med / single:.2f}x one call)")
            slack.latency(0.0)
            subset = build_subset(services, 3)
            rate = asyncio.run(throughput(subset, 150 if quick else 400))
            lines.append(f"- sustained throughput, 3 targets per message: {rate:.0f} messages/s")
            for n in (3, 10):
                subset = build_subset(services, n)
                ingest, total = count_statements(engine, subset, n)
                lines.append(
                    f"- statements for one message to {n} targets: {ingest} to ingest, "
                    f"{total} in all (budget 3 + 2 per target = {3 + 2 * n})"
                )
        finally:
            slack.stop()
    return lines


async def fan_out_single(slack: FakeSlack) -> list[float]:
    import aiohttp

    token = slack.bot_token("T000")
    out = []
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            start = time.perf_counter()
            async with http.post(
                slack.base_url + "auth.test", headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                await resp.read()
            out.append(time.perf_counter() - start)
    return out


def build_subset(services, n: int):
    """Pause all but the first n targets, so one sync serves every N."""
    from sqlalchemy import update

    from app.store.models import SyncEndpoint

    with services.sessions() as s, s.begin():
        s.execute(update(SyncEndpoint).values(status="active"))
        s.execute(
            update(SyncEndpoint)
            .where(SyncEndpoint.endpoint > str(Endpoint.slack(f"T{n:03d}", f"C{n:03d}")))
            .values(status="paused")
        )
    return services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql", "mysql"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite", "postgresql"]:
        print("\n".join(run(backend, args.quick)))


if __name__ == "__main__":
    main()
