"""Two ``syncbot serve`` processes share one PostgreSQL or MariaDB outbox while a fifth of the
fake Slack's answers fail (429 with Retry-After, 500, dropped connections, failures after the
message was posted): every message arrives exactly once in every other channel, in order.

Events of workspace T1 go to the first process and those of T2 to the second; both run their
own outbox worker and inline delivery, so rows are claimed from both sides all the time.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, syncbot_env
from tests.databases import throwaway_database
from tests.slack.harness import free_port, synced_database, three_workspaces, wait_for

pytestmark = pytest.mark.integration

CHANNELS = [("T1", "C1"), ("T2", "C2"), ("T3", "C3")]
PER_SOURCE = 12
SYNCBOT = Path(sys.executable).parent / "syncbot"


def serve(url: str, backend: str, slack: FakeSlack, port: int, log: Path) -> subprocess.Popen:
    env = syncbot_env(
        {
            "LOCAL_DEVELOPMENT": "true",
            "DATABASE_BACKEND": backend,
            "DATABASE_URL": url,
            "DATABASE_TLS_ENABLED": "false",
            "SYNCBOT_AUTO_MIGRATE": "false",
            "TOKEN_ENCRYPTION_KEY": TEST_KEY,
            "SLACK_SIGNING_SECRET": slack.signing_secret,
            "SLACK_API_URL": slack.base_url,
            "SYNCBOT_SLACK_RATE_SCALE": "1000",
            "LOG_LEVEL": "WARNING",
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SYNCBOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(params=["postgresql", "mysql"])
def two_servers(request, tmp_path: Path) -> Iterator[tuple[FakeSlack, list[str]]]:
    slack = FakeSlack().start()
    three_workspaces(slack)
    with throwaway_database(request.param, tmp_path) as url:
        _settings, engine = synced_database(slack, url, "general", CHANNELS)
        engine.dispose()
        ports = [free_port(), free_port()]
        logs = [tmp_path / f"serve-{i}.log" for i in range(2)]
        backend = "postgresql" if request.param == "postgresql" else "mysql"
        raw = url.render_as_string(hide_password=False)
        procs = [serve(raw, backend, slack, p, log) for p, log in zip(ports, logs, strict=True)]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        try:
            for base, proc, log in zip(urls, procs, logs, strict=True):
                wait_for(lambda b=base, p=proc, lg=log: _healthy(b, p, lg), timeout=60)
            yield slack, urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            slack.stop()


def _healthy(base: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def copies(slack: FakeSlack, team: str, channel: str, originals: list[str]) -> list[str]:
    """The relayed messages in a channel, in channel order (its own users' posts left out)."""
    return [
        m.text
        for m in slack.messages(team, channel)
        if m.text.startswith("from-") and m.text not in originals
    ]


def test_two_processes_deliver_each_message_once_in_order(two_servers) -> None:
    slack, urls = two_servers
    slack.route_events("T1", f"{urls[0]}/slack/events")
    slack.route_events("T2", f"{urls[1]}/slack/events")
    slack.fail_randomly("*", 0.2, "429", "500", "drop", "500_after", "drop_after")
    sent = {"T1": [f"from-one-{i}" for i in range(PER_SOURCE)]}
    sent["T2"] = [f"from-two-{i}" for i in range(PER_SOURCE)]
    for i in range(PER_SOURCE):
        slack.post_message("T1", "C1", "U1", sent["T1"][i])
        slack.post_message("T2", "C2", "U2", sent["T2"][i])

    expected = {
        ("T1", "C1"): sent["T2"],
        ("T2", "C2"): sent["T1"],
        ("T3", "C3"): sent["T1"] + sent["T2"],
    }

    def got(team: str, channel: str) -> list[str]:
        return copies(slack, team, channel, sent.get(team, []))

    def arrived() -> bool:
        return all(set(got(*where)) >= set(want) for where, want in expected.items())

    wait_for(arrived, timeout=120, interval=0.25)
    slack.clear_faults()
    faults = [c.fault for c in slack.calls if c.fault and c.method == "chat.postMessage"]
    assert len(faults) >= 5  # the run really went through failures
    for (team, channel), want in expected.items():
        there = got(team, channel)
        assert sorted(there) == sorted(want), f"{team}/{channel} has a duplicate or a loss"
        for source in ("from-one-", "from-two-"):
            ordered = [body for body in there if body.startswith(source)]
            assert ordered == [body for body in want if body.startswith(source)]
