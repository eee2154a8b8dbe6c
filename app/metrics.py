"""``GET /metrics``: what an operator graphs and alerts on, in the Prometheus text format.

Two kinds of series, on a registry of the runtime's own (two runtimes in one process, as in
tests, never share series):

* **Events of this process**, counted as they happen and cumulative since it started, so
  ``rate()`` and ``histogram_quantile()`` work: deliveries by network and outcome, the
  source -> destination latency of each delivered message (a histogram observed when the
  outbox records the delivery), HTTP requests by route and status, and ``build_info``.
* **The health indicators** (:class:`~app.health.HealthReport`), gathered fresh on each scrape
  from the database (a handful of indexed queries): connection states, outbox depth, dead
  deliveries, portals, ghosts, and the p50/p95 latency over the most recent deliveries (a gauge:
  a window is not a counter, ``rate()`` over it would be meaningless).

``/metrics`` is open in local development. Elsewhere it answers only
``Authorization: Bearer <SYNCBOT_METRICS_TOKEN>``, and 404 when that token is unset: operational
data (workspace ids, volumes) is not for the public internet.
"""

from __future__ import annotations

import hmac
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.endpoints import Network
from app.core.ports import DeliveryTask
from app.health import HealthReport, Monitored, runtime_report
from app.settings import Settings
from app.slack.socket_state import ConnectionState

if TYPE_CHECKING:
    from app.services import Services

METRICS_PATH = "/metrics"
OUTCOMES = ("delivered", "retried", "dead")
# Seconds from the source message to its copy: Slack's 3 s ack, the seed's 5 s objective, and
# the long tail of retries and held targets.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"


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
        recent = GaugeMetricFamily(
            "syncbot_message_latency_recent_seconds",
            "Source to destination delay, quantiles over the most recent deliveries (all "
            "processes; for rates and graphs use syncbot_message_latency_seconds).",
            labels=["quantile"],
        )
        for quantile, value in (("0.5", report.latency.p50), ("0.95", report.latency.p95)):
            if value is not None:
                recent.add_metric([quantile], value)
        yield recent
        for name, doc, value in (
            ("syncbot_outbox_depth", "Deliveries waiting in the outbox.", report.outbox_depth),
            ("syncbot_outbox_dead", "Deliveries given up on.", report.dead_deliveries),
            ("syncbot_portals", "Active Matrix portals.", report.portal_count),
            ("syncbot_ghost_users", "Matrix ghost users.", report.ghost_user_count),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))


class DeliveryMetrics:
    """Counts every delivery attempt's outcome and times every delivered message.

    An outbox observer (``Outbox.observers``): called on the event loop as each outcome is
    recorded, so it only increments in-memory series.
    """

    def __init__(self, registry: CollectorRegistry, *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self.deliveries = Counter(
            "syncbot_deliveries",
            "Delivery attempts by target network and outcome (delivered, retried, dead).",
            ["network", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "syncbot_message_latency_seconds",
            "Source message to delivered copy, observed when the copy is made.",
            ["network"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Every series exists from the start at 0, so increase() sees the first event.
        for network in Network:
            for outcome in OUTCOMES:
                self.deliveries.labels(str(network), outcome)
            self.latency.labels(str(network))

    def __call__(self, task: DeliveryTask, outcome: str) -> None:
        network = str(task.target.network)
        self.deliveries.labels(network, outcome).inc()
        if outcome == "delivered" and task.source_time is not None:
            source = task.source_time
            if source.tzinfo is None:  # SQLite hands datetimes back without their zone
                source = source.replace(tzinfo=UTC)
            # Clock skew between a source's timestamp and ours can make a delay negative.
            delay = max(0.0, self._clock() - source.timestamp())
            self.latency.labels(network).observe(delay)


class HttpMetrics:
    """Requests by method, route template and status, and their duration."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "syncbot_http_requests",
            "HTTP requests answered, by method, route and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "syncbot_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


def version() -> str:
    try:
        return metadata.version("syncbot")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The runtime's registry: live series plus the health collector."""

    def __init__(self, report: Callable[[], HealthReport]) -> None:
        # No auto_describe: it would run the health queries when the collector is registered.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HealthCollector(report))
        self.deliveries = DeliveryMetrics(self.registry)
        self.http = HttpMetrics(self.registry)
        Info("syncbot_build", "The running syncbot.", registry=self.registry).info(
            {"version": version(), "python_version": platform.python_version()}
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def build_registry(report: Callable[[], HealthReport]) -> CollectorRegistry:
    """A registry holding the health collector and the live series (no process defaults)."""
    return Metrics(report).registry


def authorized(settings: Settings, authorization: str | None) -> bool | None:
    """Whether a scrape may read the metrics: True, False (401) or None (404: not served).

    With ``SYNCBOT_METRICS_TOKEN`` the scrape must carry it as a bearer token (compared in
    constant time); without one the metrics are served in local development only.
    """
    token = settings.metrics_token
    if not token:
        return True if settings.local_development else None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class Measured(Monitored, Protocol):
    """What metrics are served for (:class:`app.runtime.Runtime`)."""

    metrics: Metrics | None

    @property
    def settings(self) -> Settings: ...

    @property
    def services(self) -> Services: ...


def metrics_of(runtime: Measured) -> Metrics:
    """The runtime's :class:`Metrics`, made (and fed by its outbox) on first use."""
    metrics = runtime.metrics
    if metrics is None:
        metrics = Metrics(lambda: runtime_report(runtime))
        runtime.metrics = metrics
        runtime.services.outbox.observers.append(metrics.deliveries)
    return metrics


def metrics_route(runtime: Measured) -> Route:
    """The ``GET /metrics`` route for ``runtime`` (add it with ``runtime.add_routes``)."""
    metrics = metrics_of(runtime)

    async def serve_metrics(request: Request) -> Response:
        allowed = authorized(runtime.settings, request.headers.get("authorization"))
        if allowed is None:
            raise HTTPException(404, "Not Found")
        if not allowed:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, serve_metrics, methods=["GET"])


def route_label(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route template a request matches (bounded label values: never the raw path)."""
    for route in routes:
        match, _child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Route):
            return route.path
        if isinstance(route, Mount):
            return route.path.rstrip("/") + "/*"
        return OTHER
    return OTHER


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, routes: Sequence[BaseRoute]):
        self.app = app
        self.metrics = metrics
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_label(self.routes, scope)
        method = scope.get("method", "")
        method = method if method in HTTP_METHODS else OTHER
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(method, route, status, time.perf_counter() - started)
