"""``/metrics`` of the running service around 100 real deliveries: counters grow by exactly 100.

The service is assembled and served as ``syncbot serve`` does (lifespan, outbox worker) against
the fake Slack; a person posts 100 messages in one workspace, the service copies each to the
other. Scraped before and after, every series a dashboard graphs moved by what happened.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core.endpoints import Endpoint
from app.demo.service import LocalService
from app.settings import load_settings
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY
from tests.wait import wait_for

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
MESSAGES = 100

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeSlack, LocalService]]:
    with FakeSlack() as slack:
        for team, name in (("T1", "Acme"), ("T2", "Beta")):
            slack.add_workspace(team, name)
            slack.add_channel(team, f"C{team[1]}", "general")
        slack.add_user("T1", "U1", "ada", real_name="Ada")
        settings = load_settings(
            {
                "LOCAL_DEVELOPMENT": "true",
                "DATABASE_BACKEND": "sqlite",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}",
                "SLACK_API_URL": slack.base_url,
                "SLACK_SIGNING_SECRET": slack.signing_secret,
                "TOKEN_ENCRYPTION_KEY": TEST_KEY,
                "SYNCBOT_SLACK_RATE_SCALE": "1000",
                "LOG_LEVEL": "WARNING",
            }
        )
        with LocalService(settings) as service:
            slack.app_url = f"{service.url}/slack/events"
            assert service.runtime is not None
            services = service.runtime.services
            for team in ("T1", "T2"):
                asyncio.run(services.slack.workspaces.add(slack.bot_token(team)))
            services.syncs.create("general")
            services.syncs.add("general", Endpoint.parse("slack:T1/C1"))
            services.syncs.add("general", Endpoint.parse("slack:T2/C2"))
            yield slack, service


T = TypeVar("T")


def wait_until(check: Callable[[], T]) -> T:
    return wait_for(check, timeout=60.0, interval=0.1)


def test_counters_grow_by_exactly_the_deliveries(world: tuple[FakeSlack, LocalService]) -> None:
    slack, service = world
    before = scrape(service.url)
    events_before = len([d for d in slack.deliveries if d.transport == "http"])
    for n in range(MESSAGES):
        slack.post_message("T1", "C1", "U1", f"message {n}")

    def delivered() -> Samples | None:
        now = scrape(service.url)
        done = get(now, "syncbot_deliveries_total", network="slack", outcome="delivered")
        return (
            now
            if done - get(before, "syncbot_deliveries_total", network="slack", outcome="delivered")
            >= MESSAGES
            else None
        )

    after = wait_until(delivered)
    slack.wait_idle()
    after = scrape(service.url)

    def grew(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    assert grew("syncbot_deliveries_total", network="slack", outcome="delivered") == MESSAGES
    assert grew("syncbot_deliveries_total", network="slack", outcome="retried") == 0
    assert grew("syncbot_deliveries_total", network="slack", outcome="dead") == 0
    # The histogram is cumulative, observed at delivery time: every delivery counted once.
    assert grew("syncbot_message_latency_seconds_count", network="slack") == MESSAGES
    assert grew("syncbot_message_latency_seconds_bucket", network="slack", le="+Inf") == MESSAGES
    assert grew("syncbot_message_latency_seconds_sum", network="slack") > 0
    assert len(slack.messages("T2", "C2")) == MESSAGES
    # Every event Slack POSTed (the 100 posts and the echoes of our copies) was counted once,
    # under the route's template.
    events = len([d for d in slack.deliveries if d.transport == "http"]) - events_before
    assert events >= MESSAGES
    assert (
        grew("syncbot_http_requests_total", method="POST", route="/slack/events", status="200")
        == events
    )
    assert (
        grew("syncbot_http_request_duration_seconds_count", method="POST", route="/slack/events")
        == events
    )
    # The scrapes themselves are requests too (the first one was not yet counted when taken).
    assert grew("syncbot_http_requests_total", method="GET", route="/metrics", status="200") >= 1
    assert get(after, "syncbot_outbox_depth") == 0


def test_an_unknown_path_is_one_bounded_label(world: tuple[FakeSlack, LocalService]) -> None:
    _slack, service = world
    for n in range(3):
        assert httpx.get(f"{service.url}/no/such/{n}", timeout=10).status_code == 404
    samples = scrape(service.url)
    assert (
        get(samples, "syncbot_http_requests_total", method="GET", route="other", status="404") == 3
    )
    assert not [key for key in samples if "/no/such" in str(key)]


def test_the_grafana_dashboard_graphs_only_metrics_the_app_exports(
    world: tuple[FakeSlack, LocalService],
) -> None:
    slack, service = world
    slack.post_message("T1", "C1", "U1", "so that every series has a sample")
    wait_until(lambda: len(slack.messages("T2", "C2")) == 1)
    exported = {name for name, _labels in scrape(service.url)}
    # Series that appear only with a Socket Mode workspace:
    situational = {
        "syncbot_slack_connection_state",
        "syncbot_slack_reconnection_attempts",
        "syncbot_slack_connection_errors_total",
    }
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(exprs) >= 8
    used = {name for expr in exprs for name in re.findall(r"\bsyncbot_[a-z0-9_]+", expr)}
    assert used, "the dashboard queries no syncbot metric"
    unknown = used - exported - situational
    assert not unknown, f"the dashboard queries metrics the app does not export: {unknown}"
    # ... and it graphs the ones an operator needs.
    for needed in (
        "syncbot_deliveries_total",
        "syncbot_message_latency_seconds_bucket",
        "syncbot_http_requests_total",
        "syncbot_outbox_depth",
        "syncbot_outbox_dead",
        "syncbot_database_up",
        "syncbot_slack_connection_state",
        "syncbot_build_info",
    ):
        assert needed in used, needed
    # A histogram is only ever graphed through rate() of its buckets/sum/count.
    for expr in exprs:
        if "_bucket" in expr:
            assert "histogram_quantile(" in expr and "rate(" in expr, expr
