"""``GET /metrics``: the health indicators in the Prometheus text format.

Each scrape gathers a fresh :class:`~app.health.HealthReport` (a handful of indexed queries)
through a custom collector on a registry of our own, so nothing is kept in global metric
objects and two runtimes in one process (tests) never share series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.health import HealthReport, install_error_counter, runtime_report
from app.runtime import Runtime
from app.slack.socket_state import ConnectionState

METRICS_PATH = "/metrics"


class HealthCollector(Collector):
    """Turns one health report per scrape into metric families."""

    def __init__(self, report: Callable[[], HealthReport]) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        report = self._report()
        yield GaugeMetricFamily(
            "syncbot_database_up",
            "1 when the database answered the health queries.",
            value=1.0 if report.database_ok else 0.0,
        )
        state = GaugeMetricFamily(
            "syncbot_slack_connection_state",
            "Socket Mode connection state per workspace (1 for the current state).",
            labels=["team_id", "state"],
        )
        attempts = GaugeMetricFamily(
            "syncbot_slack_reconnection_attempts",
            "Failed connection attempts since the last successful hello.",
            labels=["team_id"],
        )
        conn_errors = CounterMetricFamily(
            "syncbot_slack_connection_errors",
            "Connection failures per workspace.",
            labels=["team_id"],
        )
        for team, snap in sorted(report.connections.items()):
            for candidate in ConnectionState:
                state.add_metric([team, str(candidate)], 1.0 if snap.state is candidate else 0.0)
            attempts.add_metric([team], float(snap.attempts))
            conn_errors.add_metric([team], float(snap.errors))
        yield state
        yield attempts
        yield conn_errors
        yield CounterMetricFamily(
            "syncbot_errors", "Errors logged by this process.", value=float(report.error_count)
        )
        if report.last_successful_message is not None:
            yield GaugeMetricFamily(
                "syncbot_last_successful_message_timestamp_seconds",
                "When the last message was delivered (Unix time).",
                value=report.last_successful_message.timestamp(),
            )
        latency = SummaryMetricFamily(
            "syncbot_message_latency_seconds",
            "Source to destination delay over the most recent deliveries.",
            labels=[],
        )
        if report.latency.samples:
            latency.add_metric(
                [],
                count_value=report.latency.samples,
                sum_value=report.latency.total,
            )
            for quantile, value in (("0.5", report.latency.p50), ("0.95", report.latency.p95)):
                if value is not None:
                    latency.add_sample(
                        "syncbot_message_latency_seconds", {"quantile": quantile}, value
                    )
        yield latency
        for name, doc, value in (
            ("syncbot_outbox_depth", "Deliveries waiting in the outbox.", report.outbox_depth),
            ("syncbot_outbox_dead", "Deliveries given up on.", report.dead_deliveries),
            ("syncbot_portals", "Active Matrix portals.", report.portal_count),
            ("syncbot_ghost_users", "Matrix ghost users.", report.ghost_user_count),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))


def build_registry(report: Callable[[], HealthReport]) -> CollectorRegistry:
    """A registry holding only the health collector (no process/platform defaults)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(report))
    return registry


def metrics_route(runtime: Runtime) -> Route:
    """The ``GET /metrics`` route for ``runtime`` (add it with ``runtime.add_routes``)."""
    registry = build_registry(lambda: runtime_report(runtime))

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, metrics, methods=["GET"])


def attach_metrics(runtime: Runtime) -> Route:
    """Serve ``GET /metrics`` from ``runtime`` (call before :func:`app.web.create_app`)."""
    # Count errors from now on, not from the first scrape.
    install_error_counter()
    route = metrics_route(runtime)
    runtime.add_routes(route)
    return route
