"""The runtime environment contract, parsed once into an immutable object.

This is the only module that reads ``os.environ``. Parsing never fails for *missing* Slack or
Matrix variables (tests and tools import the app without them); it fails for *malformed* values,
listing every problem at once. :meth:`Settings.production_problems` is what ``syncbot serve`` and
``syncbot check`` refuse to start on outside local development.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.scopes import DEFAULT_BOT_SCOPES, DEFAULT_USER_SCOPES

BACKENDS = ("mysql", "postgresql", "sqlite")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
DISPATCHERS = ("inprocess", "sqs", "cloud_tasks")
DEFAULT_SQLITE_URL = "sqlite:///syncbot.db"
# Where `make run` keeps its SQLite file and development key (the Makefile's DATA_DIR).
LOCAL_DATA_DIR = ".syncbot-data"
SQLITE_FILE = "syncbot.db"
# How to make a key, in every message that asks for one.
MAKE_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
KEY_HINT = f"make one with `{MAKE_KEY}` and set TOKEN_ENCRYPTION_KEY to it"
MIN_SECRET_LENGTH = 16
MIN_TOKEN_KEY_LENGTH = 32
MATRIX_ROLES = ("relay", "user", "admin")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class _Var:
    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    secret: bool = False
    doc: str = ""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"expected an integer in {low}..{high}, got {value}")
        return value

    return parse


def _float_range(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"expected a number in {low:g}..{high:g}, got {value:g}")
        return value

    return parse


def _choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


def _str(raw: str) -> str | None:
    value = raw.strip()
    return value or None


def _scopes(raw: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in raw.split(",") if s.strip())


def _url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return value


def _api_url(raw: str) -> str:
    value = _url(raw) or "https://slack.com/api/"
    # slack_sdk appends the method name to base_url, so it must end in a slash.
    return value if value.endswith("/") else value + "/"


def _keys(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _networks(raw: str) -> tuple[str, ...]:
    # Validated here so a typo fails at start; app.egress turns them into networks.
    import ipaddress

    out = []
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {text!r}") from None
    return tuple(out)


def _permissions(raw: str) -> Mapping[str, str]:
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object mapping a domain, user id or '*' to a role")
    bad = {k: v for k, v in data.items() if v not in MATRIX_ROLES}
    if bad:
        raise ValueError(f"roles must be one of {', '.join(MATRIX_ROLES)}; bad entries: {bad}")
    return {str(k): str(v) for k, v in data.items()}


_VARS: tuple[_Var, ...] = (
    _Var("DATABASE_BACKEND", "database_backend", _choice(BACKENDS), "mysql"),
    _Var("DATABASE_URL", "database_url", _str, None, secret=True),
    _Var("DATABASE_HOST", "database_host", _str, None),
    _Var("DATABASE_PORT", "database_port", _int_range(1, 65535), None),
    _Var("DATABASE_USER", "database_user", _str, None),
    _Var("DATABASE_PASSWORD", "database_password", _str, None, secret=True),
    _Var("DATABASE_SCHEMA", "database_schema", _str, "syncbot"),
    _Var("DATABASE_TLS_ENABLED", "database_tls_enabled", _bool, None),
    _Var("DATABASE_SSL_CA_PATH", "database_ssl_ca_path", _str, None),
    _Var("SLACK_SIGNING_SECRET", "slack_signing_secret", _str, None, secret=True),
    _Var("SLACK_CLIENT_ID", "slack_client_id", _str, None),
    _Var("SLACK_CLIENT_SECRET", "slack_client_secret", _str, None, secret=True),
    _Var("SLACK_BOT_SCOPES", "slack_bot_scopes", _scopes, DEFAULT_BOT_SCOPES),
    _Var("SLACK_USER_SCOPES", "slack_user_scopes", _scopes, DEFAULT_USER_SCOPES),
    _Var("SLACK_BOT_TOKEN", "slack_bot_token", _str, None, secret=True),
    _Var("SLACK_API_URL", "slack_api_url", _api_url, "https://slack.com/api/"),
    _Var("TOKEN_ENCRYPTION_KEY", "token_encryption_key", _str, None, secret=True),
    _Var("TOKEN_ENCRYPTION_PREVIOUS_KEYS", "token_previous_keys", _keys, (), secret=True),
    _Var("REQUIRE_ADMIN", "require_admin", _bool, True),
    _Var("PRIMARY_WORKSPACE", "primary_workspace", _str, None),
    _Var("ENABLE_DB_RESET", "enable_db_reset", _bool, False),
    _Var("LOCAL_DEVELOPMENT", "local_development", _bool, False),
    _Var("LOG_LEVEL", "log_level", _choice(LOG_LEVELS, upper=True), "INFO"),
    _Var("LOG_FORMAT", "log_format", _choice(LOG_FORMATS), None),
    _Var("PORT", "port", _int_range(1, 65535), 3000),
    _Var("SOFT_DELETE_RETENTION_DAYS", "soft_delete_retention_days", _int_range(0, 3650), 30),
    _Var("SYNCBOT_FEDERATION_ENABLED", "federation_enabled", _bool, False),
    _Var("SYNCBOT_INSTANCE_ID", "instance_id", _str, None),
    _Var("SYNCBOT_PUBLIC_URL", "public_url", _url, None),
    _Var("SYNCBOT_FEDERATION_ALLOW_PRIVATE", "federation_allow_private", _bool, False),
    _Var("SYNCBOT_EGRESS_ALLOW", "egress_allow", _networks, ()),
    _Var("MATRIX_HOMESERVER_URL", "matrix_homeserver_url", _url, None),
    _Var("MATRIX_SERVER_NAME", "matrix_server_name", _str, None),
    _Var("MATRIX_AS_TOKEN", "matrix_as_token", _str, None, secret=True),
    _Var("MATRIX_HS_TOKEN", "matrix_hs_token", _str, None, secret=True),
    _Var("MATRIX_BOT_LOCALPART", "matrix_bot_localpart", _str, "slackbot"),
    _Var("MATRIX_GHOST_TEMPLATE", "matrix_ghost_template", _str, "slack_{team}_{user}"),
    _Var("MATRIX_COMMAND_PREFIX", "matrix_command_prefix", _str, "!slack"),
    _Var("MATRIX_PERMISSIONS", "matrix_permissions", _permissions, {}),
    _Var("MATRIX_CONVERSATION_COUNT", "matrix_conversation_count", _int_range(-1, 10000), 10),
    _Var("MATRIX_BACKFILL_MESSAGES", "matrix_backfill_messages", _int_range(0, 1000), 10),
    _Var("MATRIX_CATCHUP_INTERVAL", "matrix_catchup_interval", _float_range(0.0, 3600.0), 30.0),
    _Var("SLACK_HISTORY_LIMIT", "slack_history_limit", _int_range(1, 999), 15),
    _Var("SLACK_HISTORY_INTERVAL", "slack_history_interval", _float_range(0.0, 3600.0), 60.0),
    _Var("SYNCBOT_AUTO_MIGRATE", "auto_migrate", _bool, None),
    _Var("SYNCBOT_DATA_DIR", "data_dir", _str, "."),
    _Var("SYNCBOT_TICK_INVOKERS", "tick_invokers", _keys, ()),
    _Var("SYNCBOT_DISPATCH", "dispatch", _choice(DISPATCHERS), "inprocess"),
    _Var("SYNCBOT_DELIVERY_QUEUE", "delivery_queue", _str, None),
    _Var("SYNCBOT_DELIVERY_INVOKER", "delivery_invoker", _str, None),
    _Var("SYNCBOT_SLACK_RATE_SCALE", "slack_rate_scale", _float_range(1.0, 1e6), 1.0),
    _Var(
        "SYNCBOT_DELIVERY_MAX_AGE_HOURS", "delivery_max_age_hours", _float_range(0.1, 720.0), 72.0
    ),
    _Var("SYNCBOT_METRICS_TOKEN", "metrics_token", _str, None, secret=True),
)

ENV_NAMES: tuple[str, ...] = tuple(v.env for v in _VARS)
SECRET_ENV_NAMES: frozenset[str] = frozenset(v.env for v in _VARS if v.secret)
# Every secret may instead name a file holding it (Docker and Kubernetes secrets), as
# ``<NAME>_FILE``; the file's content, without its trailing newline, is the value.
FILE_SUFFIX = "_FILE"
FILE_ENV_NAMES: tuple[str, ...] = tuple(v.env + FILE_SUFFIX for v in _VARS if v.secret)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every runtime setting, validated. Build with :func:`load_settings`."""

    database_backend: str = "mysql"
    database_url: str | None = None
    database_host: str | None = None
    database_port: int | None = None
    database_user: str | None = None
    database_password: str | None = field(default=None, repr=False)
    database_schema: str | None = "syncbot"
    database_tls_enabled: bool | None = None
    database_ssl_ca_path: str | None = None
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_bot_scopes: tuple[str, ...] = DEFAULT_BOT_SCOPES
    slack_user_scopes: tuple[str, ...] = DEFAULT_USER_SCOPES
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    token_encryption_key: str | None = field(default=None, repr=False)
    token_previous_keys: tuple[str, ...] = field(default=(), repr=False)
    require_admin: bool = True
    primary_workspace: str | None = None
    enable_db_reset: bool = False
    local_development: bool = False
    log_level: str = "INFO"
    # json or text; unset: JSON for `syncbot serve` (log pipelines), text for the other commands.
    log_format: str | None = None
    port: int = 3000
    soft_delete_retention_days: int = 30
    federation_enabled: bool = False
    instance_id: str | None = None
    public_url: str | None = None
    federation_allow_private: bool = False
    # Non-public networks outbound fetches (peers, avatars, files) may reach (app.egress).
    egress_allow: tuple[str, ...] = ()
    matrix_homeserver_url: str | None = None
    matrix_server_name: str | None = None
    matrix_as_token: str | None = field(default=None, repr=False)
    matrix_hs_token: str | None = field(default=None, repr=False)
    matrix_bot_localpart: str = "slackbot"
    matrix_ghost_template: str = "slack_{team}_{user}"
    matrix_command_prefix: str = "!slack"
    matrix_permissions: Mapping[str, str] = field(default_factory=dict)
    # Recent channels bridged on `login app` (-1: all), the seed's conversation_count.
    matrix_conversation_count: int = 10
    # Messages of a channel's history copied into its new portal (0: none).
    matrix_backfill_messages: int = 10
    # Seconds between reads of the bot's timeline for events a homeserver restart never
    # pushed (0: never; app.matrix.catchup).
    matrix_catchup_interval: float = 30.0
    # conversations.history page size and pause between requests: Slack allows 15 messages
    # and 1 request a minute to commercially distributed apps outside the Marketplace.
    slack_history_limit: int = 15
    slack_history_interval: float = 60.0
    auto_migrate: bool | None = None
    data_dir: str = "."
    # Service accounts whose OIDC tokens may call POST /internal/tick (Cloud Scheduler).
    tick_invokers: tuple[str, ...] = ()
    # How outbox rows reach a worker: serve's own loop, an SQS FIFO queue or Cloud Tasks.
    dispatch: str = "inprocess"
    delivery_queue: str | None = None
    # The service account Cloud Tasks mints OIDC tokens as; the only caller of /internal/deliver.
    delivery_invoker: str | None = None
    # Speeds up client-side Slack pacing; only for tests and benchmarks against a fake Slack.
    slack_rate_scale: float = 1.0
    # How long a delivery to a target that keeps failing is kept before it is dead.
    delivery_max_age_hours: float = 72.0
    # When set, GET /metrics answers only `Authorization: Bearer <token>`.
    metrics_token: str | None = field(default=None, repr=False)
    # True when no database variable at all was given: the embedded SQLite default.
    embedded_database: bool = False

    # -- derived views -----------------------------------------------------------------

    @property
    def tls_enabled(self) -> bool:
        """TLS to the database: on by default outside local development (contract)."""
        if self.database_tls_enabled is not None:
            return self.database_tls_enabled
        return not self.local_development

    @property
    def should_auto_migrate(self) -> bool:
        """Upgrade the schema at start: explicit setting, else only for local/embedded use."""
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.local_development or self.database_backend == "sqlite"

    @property
    def matrix_enabled(self) -> bool:
        return bool(
            self.matrix_homeserver_url
            and self.matrix_as_token
            and self.matrix_hs_token
            and self.matrix_server_name
        )

    @property
    def oauth_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_oauth_wanted(self) -> bool:
        """Workspaces install through Slack OAuth (the default shape, and whenever either OAuth
        variable is set). A single-token install (``SLACK_BOT_TOKEN``) or a Matrix bridge whose
        workspaces log in from Matrix over Socket Mode (``login app``) has no OAuth or HTTP
        Slack part, so it needs neither the client credentials nor the signing secret."""
        if self.slack_client_id or self.slack_client_secret:
            return True
        return not self.slack_bot_token and not self.matrix_enabled

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret value, for log scrubbing."""
        values: list[str] = []
        for var in _VARS:
            if not var.secret:
                continue
            value = getattr(self, var.attr)
            if isinstance(value, tuple):
                values.extend(value)
            elif value:
                values.append(value)
        return tuple(v for v in values if len(v) >= 6)

    def production_problems(self) -> list[str]:
        """What stops this configuration from running outside local development."""
        problems: list[str] = []
        if self.local_development:
            return problems
        required = {"TOKEN_ENCRYPTION_KEY": self.token_encryption_key}
        if self.slack_oauth_wanted:
            required["SLACK_CLIENT_ID"] = self.slack_client_id
            required["SLACK_CLIENT_SECRET"] = self.slack_client_secret
        if self.slack_oauth_wanted or self.slack_bot_token:
            # Both shapes receive the Events API over HTTP, which the signing secret verifies.
            required["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        missing = sorted(name for name, value in required.items() if not value)
        if missing:
            how = f" (make a key with `{MAKE_KEY}`)" if "TOKEN_ENCRYPTION_KEY" in missing else ""
            problems.append("missing required secret(s): " + ", ".join(missing) + how)
        problems.extend(weak_secret_problems(self))
        if not self.slack_bot_scopes:
            problems.append("SLACK_BOT_SCOPES is empty")
        if self.federation_enabled and not self.public_url:
            problems.append("SYNCBOT_PUBLIC_URL is required when SYNCBOT_FEDERATION_ENABLED=true")
        if self.federation_enabled and self.public_url and not self.public_url.startswith("https"):
            problems.append("SYNCBOT_PUBLIC_URL must be https when federation is enabled")
        return problems

    def require_production_ready(self) -> None:
        """Raise :class:`ConfigError` naming every problem, unless local development."""
        problems = self.production_problems()
        if problems:
            raise ConfigError(problems)


# Per secret: (env name, attribute, fewest characters, fewest estimated bits). Slack issues
# signing and client secrets of 32 hex digits; the estimate of a random one is rarely under 56
# bits (it discounts neighbouring digits), so 48 refuses patterns, never Slack's values. The key
# and the appservice tokens are ours to make: 32 random url-safe characters estimate above 96.
SECRET_RULES: tuple[tuple[str, str, int, int], ...] = (
    ("SLACK_SIGNING_SECRET", "slack_signing_secret", 32, 48),
    ("SLACK_CLIENT_SECRET", "slack_client_secret", 32, 48),
    ("TOKEN_ENCRYPTION_KEY", "token_encryption_key", MIN_TOKEN_KEY_LENGTH, 80),
    ("MATRIX_AS_TOKEN", "matrix_as_token", 32, 80),
    ("MATRIX_HS_TOKEN", "matrix_hs_token", 32, 80),
)


def estimated_bits(secret: str) -> float:
    """A pessimistic estimate of a secret's entropy: its length times the Shannon entropy of
    its characters, counting nothing for steps of a sequence ("1234", "abcd") or repeats.
    """
    if not secret:
        return 0.0
    for period in range(1, len(secret) // 2 + 1):
        if secret == (secret[:period] * (len(secret) // period + 1))[: len(secret)]:
            return estimated_bits(secret[:period])  # "passwordpassword": one "password"
    counts: dict[str, int] = {}
    for ch in secret:
        counts[ch] = counts.get(ch, 0) + 1
    per_char = -sum(c / len(secret) * math.log2(c / len(secret)) for c in counts.values())
    patterned = sum(1 for a, b in itertools.pairwise(secret) if abs(ord(b) - ord(a)) <= 1)
    return per_char * (len(secret) - patterned)


def weak_secret_problems(settings: Settings) -> list[str]:
    """Secrets too short or too guessable for production, one message each."""
    problems: list[str] = []
    for env, attr, min_length, min_bits in SECRET_RULES:
        value = getattr(settings, attr)
        if not value:
            continue
        short = len(value) < min_length
        if env == "TOKEN_ENCRYPTION_KEY" and (short or estimated_bits(value) < min_bits):
            problems.append(
                "TOKEN_ENCRYPTION_KEY is weak: use at least "
                f"{MIN_TOKEN_KEY_LENGTH} random characters (e.g. `{MAKE_KEY}`)"
            )
        elif short:
            problems.append(f"{env} is too short (< {min_length} characters)")
        elif estimated_bits(value) < min_bits:
            source = "the value Slack issued" if env.startswith("SLACK_") else "a random value"
            problems.append(
                f"{env} is weak: it looks patterned or repetitive; use {source} "
                "(e.g. `openssl rand -hex 32`)"
            )
    return problems


def _structural_problems(values: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    backend = values["database_backend"]
    if backend == "sqlite":
        url = values["database_url"]
        if url and not url.startswith("sqlite"):
            problems.append("DATABASE_URL must be a sqlite:/// URL when DATABASE_BACKEND=sqlite")
    elif not values["database_url"]:
        missing = [
            env
            for env, attr in (
                ("DATABASE_HOST", "database_host"),
                ("DATABASE_USER", "database_user"),
                ("DATABASE_PASSWORD", "database_password"),
                ("DATABASE_SCHEMA", "database_schema"),
            )
            if not values[attr]
        ]
        if missing:
            problems.append(
                f"DATABASE_BACKEND={backend} needs DATABASE_URL or " + ", ".join(missing)
            )
    elif not values["database_url"].startswith(("mysql", "postgres")):
        problems.append("DATABASE_URL must be a mysql:// or postgresql:// SQLAlchemy URL")
    ca = values["database_ssl_ca_path"]
    if ca and not Path(ca).is_file():
        problems.append(f"DATABASE_SSL_CA_PATH={ca} does not exist")
    template = values["matrix_ghost_template"]
    if "{user}" not in template or "{team}" not in template:
        problems.append("MATRIX_GHOST_TEMPLATE must contain both {team} and {user}")
    elif not re.fullmatch(r"[a-z0-9._=\-/{}]+", template):
        problems.append("MATRIX_GHOST_TEMPLATE may only use Matrix localpart characters")
    matrix = [values[a] for a in ("matrix_homeserver_url", "matrix_as_token", "matrix_hs_token")]
    if any(matrix) and not all([*matrix, values["matrix_server_name"]]):
        problems.append(
            "the Matrix bridge needs MATRIX_HOMESERVER_URL, MATRIX_SERVER_NAME, "
            "MATRIX_AS_TOKEN and MATRIX_HS_TOKEN together"
        )
    dispatch = values["dispatch"]
    if dispatch != "inprocess" and not values["delivery_queue"]:
        problems.append(f"SYNCBOT_DISPATCH={dispatch} needs SYNCBOT_DELIVERY_QUEUE")
    if dispatch == "cloud_tasks":
        if not values["delivery_invoker"]:
            problems.append("SYNCBOT_DISPATCH=cloud_tasks needs SYNCBOT_DELIVERY_INVOKER")
        if not values["public_url"]:
            problems.append("SYNCBOT_DISPATCH=cloud_tasks needs SYNCBOT_PUBLIC_URL")
    return problems


def _with_secret_files(env: Mapping[str, str], problems: list[str]) -> Mapping[str, str]:
    """``env`` with every ``<SECRET>_FILE`` replaced by the file's content under ``<SECRET>``."""
    resolved: dict[str, str] | None = None
    for var in _VARS:
        path = (env.get(var.env + FILE_SUFFIX) or "").strip()
        if not var.secret or not path:
            continue
        if (env.get(var.env) or "").strip():
            problems.append(f"{var.env} and {var.env}{FILE_SUFFIX} are both set: keep one")
            continue
        try:
            value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            problems.append(
                f"{var.env}{FILE_SUFFIX}={path}: cannot read it ({exc.strerror or exc}); "
                "point it at a readable file holding the secret"
            )
            continue
        resolved = dict(env) if resolved is None else resolved
        resolved[var.env] = value
    return env if resolved is None else resolved


def load_settings(
    environ: Mapping[str, str] | None = None, *, find_local: bool = False
) -> Settings:
    """Parse the environment into :class:`Settings`.

    Args:
        environ: the variables to read; ``os.environ`` when omitted.
        find_local: with no database variable and no ``SYNCBOT_DATA_DIR``, use the database of
            ``make run`` (:data:`LOCAL_DATA_DIR` in the working directory) when it exists,
            rather than a second one here. The ``syncbot`` command asks for this.

    Raises:
        ConfigError: listing every malformed or inconsistent variable at once.
    """
    env = os.environ if environ is None else environ
    problems: list[str] = []
    env = _with_secret_files(env, problems)
    values: dict[str, Any] = {}
    for var in _VARS:
        raw = env.get(var.env)
        if raw is None or (raw.strip() == "" and var.default is not None):
            values[var.attr] = var.default
            continue
        try:
            values[var.attr] = var.parse(raw)
        except (ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{var.env}: {exc}")
            values[var.attr] = var.default
    # Structural checks run even after parse errors, so one start reports everything.
    # No database variable at all: the embedded SQLite file, the one-machine default.
    db_vars = ("DATABASE_BACKEND", "DATABASE_URL", "DATABASE_HOST")
    if not any(env.get(name, "").strip() for name in db_vars):
        values["database_backend"] = "sqlite"
        values["embedded_database"] = True
        local = Path(LOCAL_DATA_DIR)
        if find_local and not env.get("SYNCBOT_DATA_DIR") and (local / SQLITE_FILE).is_file():
            values["data_dir"] = LOCAL_DATA_DIR
    if values["database_backend"] == "sqlite" and not values["database_url"]:
        data_dir = Path(values["data_dir"])
        values["database_url"] = f"sqlite:///{data_dir / SQLITE_FILE}"
    problems.extend(_structural_problems(values))
    if problems:
        raise ConfigError(problems)
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in known})


def describe() -> list[tuple[str, str, bool]]:
    """(env name, default as text, secret) for every variable, for docs and ``check``."""
    rows = []
    for var in _VARS:
        default = var.default
        if isinstance(default, tuple):
            default = ",".join(default)
        rows.append((var.env, "" if default in (None, {}) else str(default), var.secret))
    return rows
