"""The provider-neutral runtime contract, as one table both clouds wire from.

The app reads these environment variables (``app/settings.py`` is the consumer; a test keeps the
two in agreement). Every provider component takes its env wiring from :data:`RUNTIME_ENV` so
AWS and GCP cannot drift apart, and the policy pack checks stacks against the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    """Where a deployed stack gets a variable's value from."""

    CONFIG = "config"  # plain stack config (non-secret), with the app's default when unset
    SECRET = "secret"  # the provider's secret store; never a plaintext env value or state
    DATABASE = "database"  # derived from the Database component's outputs
    SERVICE = "service"  # derived from the deployed service (its public URL, its port)
    RUNTIME = "runtime"  # set by the platform itself (e.g. Cloud Run injects PORT)
    # The scheduler's identity, where the scheduler calls the service over HTTP (Cloud Run);
    # a Lambda's tick is a direct invocation and needs none.
    SCHEDULER = "scheduler"
    # The delivery queue the stack provisions for its runtime shape (SQS FIFO on AWS, Cloud
    # Tasks on GCP): which dispatcher the app uses, the queue's address, the tasks' identity.
    DISPATCH = "dispatch"


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One runtime environment variable of the contract."""

    name: str
    source: Source
    description: str
    default: str | None = None
    required_in_production: bool = False

    @property
    def secret(self) -> bool:
        return self.source is Source.SECRET


RUNTIME_ENV: tuple[EnvVar, ...] = (
    # Database (backend-agnostic).
    EnvVar("DATABASE_BACKEND", Source.CONFIG, "mysql, postgresql or sqlite", "mysql"),
    EnvVar("DATABASE_URL", Source.SECRET, "full SQLAlchemy URL; overrides host/user/password"),
    EnvVar("DATABASE_HOST", Source.DATABASE, "database host name"),
    EnvVar("DATABASE_PORT", Source.DATABASE, "database port (5432 postgresql, 3306 mysql)"),
    EnvVar("DATABASE_USER", Source.DATABASE, "database user"),
    EnvVar("DATABASE_PASSWORD", Source.SECRET, "database password"),
    EnvVar("DATABASE_SCHEMA", Source.DATABASE, "database name", "syncbot"),
    EnvVar("DATABASE_TLS_ENABLED", Source.CONFIG, "TLS to the database (on outside local dev)"),
    EnvVar("DATABASE_SSL_CA_PATH", Source.CONFIG, "CA bundle for database TLS"),
    # Slack.
    EnvVar("SLACK_SIGNING_SECRET", Source.SECRET, "verifies Slack requests", None, True),
    EnvVar("SLACK_CLIENT_ID", Source.CONFIG, "Slack OAuth client id", None, True),
    EnvVar("SLACK_CLIENT_SECRET", Source.SECRET, "Slack OAuth client secret", None, True),
    EnvVar("SLACK_BOT_SCOPES", Source.CONFIG, "comma-separated OAuth bot scopes", None, True),
    EnvVar("SLACK_USER_SCOPES", Source.CONFIG, "comma-separated OAuth user scopes", ""),
    EnvVar("SLACK_BOT_TOKEN", Source.SECRET, "single-workspace bot token (optional)"),
    EnvVar("SLACK_API_URL", Source.CONFIG, "Slack Web API base URL", "https://slack.com/api/"),
    EnvVar("TOKEN_ENCRYPTION_KEY", Source.SECRET, "key for tokens at rest", None, True),
    EnvVar(
        "TOKEN_ENCRYPTION_PREVIOUS_KEYS",
        Source.SECRET,
        "comma-separated retired keys that still decrypt during a rotation",
    ),
    # Behaviour.
    EnvVar("REQUIRE_ADMIN", Source.CONFIG, "only admins configure syncs", "true"),
    EnvVar("PRIMARY_WORKSPACE", Source.CONFIG, "team id allowed backup/restore/reset"),
    EnvVar("ENABLE_DB_RESET", Source.CONFIG, "show the database reset button", "false"),
    EnvVar("LOCAL_DEVELOPMENT", Source.CONFIG, "local dev shortcuts; never in the cloud", "false"),
    EnvVar("LOG_LEVEL", Source.CONFIG, "DEBUG, INFO, WARNING, ERROR, CRITICAL", "INFO"),
    EnvVar("PORT", Source.RUNTIME, "HTTP listen port of the container entry", "3000"),
    EnvVar("SOFT_DELETE_RETENTION_DAYS", Source.CONFIG, "days to keep uninstalled data", "30"),
    # Federation.
    EnvVar("SYNCBOT_FEDERATION_ENABLED", Source.CONFIG, "enable peer instances", "false"),
    EnvVar("SYNCBOT_INSTANCE_ID", Source.CONFIG, "stable instance id (generated if unset)"),
    EnvVar("SYNCBOT_PUBLIC_URL", Source.SERVICE, "public HTTPS base URL of the app"),
    # Matrix appservice.
    EnvVar("MATRIX_HOMESERVER_URL", Source.CONFIG, "homeserver client-server API URL"),
    EnvVar("MATRIX_SERVER_NAME", Source.CONFIG, "homeserver server name"),
    EnvVar("MATRIX_AS_TOKEN", Source.SECRET, "appservice token (AS to homeserver)"),
    EnvVar("MATRIX_HS_TOKEN", Source.SECRET, "homeserver token (homeserver to AS)"),
    EnvVar("MATRIX_BOT_LOCALPART", Source.CONFIG, "bridge bot localpart", "slackbot"),
    EnvVar("MATRIX_GHOST_TEMPLATE", Source.CONFIG, "ghost localpart template"),
    EnvVar("MATRIX_COMMAND_PREFIX", Source.CONFIG, "bot command prefix", "!slack"),
    EnvVar("MATRIX_PERMISSIONS", Source.CONFIG, "JSON map of domain/user to relay/user/admin"),
    EnvVar(
        "MATRIX_CONVERSATION_COUNT", Source.CONFIG, "channels bridged on login (-1: all)", "10"
    ),
    EnvVar(
        "MATRIX_BACKFILL_MESSAGES",
        Source.CONFIG,
        "history messages copied into a new portal (0: none)",
        "10",
    ),
    EnvVar(
        "MATRIX_CATCHUP_INTERVAL",
        Source.CONFIG,
        "seconds between reads of the timeline for events the homeserver never pushed (0: never)",
        "30",
    ),
    EnvVar(
        "SLACK_HISTORY_LIMIT",
        Source.CONFIG,
        "conversations.history page size (15 for non-Marketplace commercial apps)",
        "15",
    ),
    EnvVar(
        "SLACK_HISTORY_INTERVAL",
        Source.CONFIG,
        "seconds between conversations.history requests (60 for non-Marketplace apps)",
        "60",
    ),
    # Operations.
    # Required: the contract routes /metrics publicly, so a deployment always has a token
    # (generated when the stack gives none) and the app never serves it unauthenticated.
    EnvVar(
        "SYNCBOT_METRICS_TOKEN",
        Source.SECRET,
        "bearer token a scrape of GET /metrics must carry (unset: /metrics answers 404)",
        None,
        True,
    ),
    # Runtime shape.
    EnvVar("SYNCBOT_AUTO_MIGRATE", Source.CONFIG, "upgrade the schema at start", "false"),
    EnvVar(
        "SYNCBOT_TICK_INVOKERS",
        Source.SCHEDULER,
        "service accounts allowed to call POST /internal/tick with an OIDC token",
    ),
    # Delivery dispatch (how outbox rows reach a worker between requests).
    EnvVar(
        "SYNCBOT_DISPATCH",
        Source.DISPATCH,
        "inprocess (serve's own worker), sqs (AWS SQS FIFO) or cloud_tasks (GCP)",
        "inprocess",
    ),
    EnvVar(
        "SYNCBOT_DELIVERY_QUEUE",
        Source.DISPATCH,
        "SQS queue URL, or Cloud Tasks queue name projects/P/locations/L/queues/Q",
    ),
    EnvVar(
        "SYNCBOT_DELIVERY_INVOKER",
        Source.DISPATCH,
        "service account Cloud Tasks signs its OIDC tokens as (POST /internal/deliver)",
    ),
)

ENV_BY_NAME: dict[str, EnvVar] = {var.name: var for var in RUNTIME_ENV}
SECRET_ENV: frozenset[str] = frozenset(v.name for v in RUNTIME_ENV if v.secret)
# Secrets a cloud stack generates (random, in its secret store) when the stack config has none,
# with their length: the token key, and the metrics token, so /metrics is never served without
# authentication (the app answers 404 there without a token, 401 without the right one).
GENERATED_SECRETS: dict[str, int] = {"TOKEN_ENCRYPTION_KEY": 48, "SYNCBOT_METRICS_TOKEN": 40}
# Logical name suffix of each generated secret's RandomPassword (kept stable: renaming one
# would generate a new value).
GENERATED_SECRET_NAMES: dict[str, str] = {
    "TOKEN_ENCRYPTION_KEY": "token-key",
    "SYNCBOT_METRICS_TOKEN": "metrics-token",
}

# On Lambda the function receives ``SYNCBOT_SECRET_ARNS`` (JSON: env name -> Secrets Manager ARN)
# instead of secret values; the Lambda entry resolves them at cold start, so no secret value is
# ever a plaintext function environment variable or sits in Pulumi state as one.
AWS_SECRET_ARNS_ENV = "SYNCBOT_SECRET_ARNS"
# A value ``<arn>#<key>`` selects one field of a JSON secret: the RDS-managed master secret is
# ``{"username": ..., "password": ...}``, so DATABASE_PASSWORD maps to ``<arn>#password``.
# Secrets Manager ARNs never contain ``#``.
AWS_SECRET_JSON_KEY_SEPARATOR = "#"


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTP route the public endpoint must deliver to the app."""

    method: str  # "ANY" for any method
    path: str  # "{proxy+}" marks a prefix route
    description: str


ROUTES: tuple[Route, ...] = (
    Route("POST", "/slack/events", "Slack events, actions and views"),
    Route("GET", "/slack/install", "OAuth start"),
    Route("GET", "/slack/oauth_redirect", "OAuth callback"),
    Route("GET", "/health", "liveness and keep-warm probe"),
    Route("ANY", "/api/federation/{proxy+}", "peer-instance federation"),
    Route("ANY", "/_matrix/{proxy+}", "Matrix application-service API"),
    Route("GET", "/metrics", "Prometheus metrics (bearer SYNCBOT_METRICS_TOKEN)"),
    Route("GET", "/avatars/{proxy+}", "public avatar proxy for Matrix senders"),
)

# The maintenance tick the scheduler triggers (keep-warm, outbox catch-up, purges).
MAINTENANCE_PATH = "/internal/tick"
# Cloud Tasks calls this with one task's delivery lane (OIDC token of SYNCBOT_DELIVERY_INVOKER).
DELIVERY_PATH = "/internal/deliver"
HEALTH_PATH = "/health"

# Bootstrap output names every provider exports.
OUTPUT_DEPLOY_ROLE = "deploy_role"
OUTPUT_ARTIFACT_BUCKET = "artifact_bucket"
OUTPUT_REGION = "region"
OUTPUT_SERVICE_URL = "service_url"
BOOTSTRAP_OUTPUTS: tuple[str, ...] = (
    OUTPUT_DEPLOY_ROLE,
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_REGION,
    OUTPUT_SERVICE_URL,
)

# The scheduler interval the contract recommends for keep-warm.
SCHEDULE_MINUTES = 5


def route_key(route: Route) -> str:
    """The API-gateway style key (``"POST /slack/events"``) of a route."""
    return f"{route.method} {route.path}"


# Direct (non-HTTP) invocations of the Lambda entry: ``{"syncbot_task": "migrate"}`` runs the
# schema upgrade once per deploy; ``{"syncbot_task": "tick"}`` is the scheduler's maintenance tick.
LAMBDA_TASK_KEY = "syncbot_task"
TASK_MIGRATE = "migrate"
TASK_TICK = "tick"

# The container entry (Cloud Run service and the migration job run the same image).
# A container must listen on every interface of its own network namespace.
CONTAINER_SERVE_COMMAND: tuple[str, ...] = ("syncbot", "serve", "--host", "0.0.0.0")  # noqa: S104
CONTAINER_MIGRATE_COMMAND: tuple[str, ...] = ("syncbot", "migrate")
