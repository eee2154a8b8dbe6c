"""Typed, validated stack configuration shared by the AWS and GCP programs.

One parser serves two callers: the Pulumi program (values from the engine, all strings, secrets
already decrypted and flagged) and the offline plan (``python -m stacks.plan FILE``, values from
a stack file's ``config:`` block, typed by YAML, secure values as ``{"secure": "<ciphertext>"}``).
Parsing is Pulumi-free so it is testable on its own; every problem is collected and reported at
once in one :class:`StackConfigError` naming each bad key, never as a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from infra.contract import ENV_BY_NAME, Source
from infra.gcp.sql_tiers import EDITIONS, Edition, edition_for_tier, tier_problem

NAMESPACE = "syncbot"

Provider = Literal["aws", "gcp"]
Kind = Literal["bootstrap", "app"]
Backend = Literal["postgresql", "mysql", "sqlite"]
DatabaseMode = Literal["create", "existing"]
Architecture = Literal["x86_64", "arm64"]

PROVIDERS: tuple[Provider, ...] = ("aws", "gcp")
KINDS: tuple[Kind, ...] = ("bootstrap", "app")
BACKENDS: tuple[Backend, ...] = ("postgresql", "mysql", "sqlite")
DATABASE_MODES: tuple[DatabaseMode, ...] = ("create", "existing")
ARCHITECTURES: tuple[Architecture, ...] = ("x86_64", "arm64")

# Secret stack keys and the contract variable each one feeds.
SECRET_KEYS: Mapping[str, str] = {
    "slackSigningSecret": "SLACK_SIGNING_SECRET",
    "slackClientSecret": "SLACK_CLIENT_SECRET",
    "slackBotToken": "SLACK_BOT_TOKEN",
    "tokenEncryptionKey": "TOKEN_ENCRYPTION_KEY",
    "tokenEncryptionPreviousKeys": "TOKEN_ENCRYPTION_PREVIOUS_KEYS",
    "matrixAsToken": "MATRIX_AS_TOKEN",
    "matrixHsToken": "MATRIX_HS_TOKEN",
    "databaseUrl": "DATABASE_URL",
    "metricsToken": "SYNCBOT_METRICS_TOKEN",
}
# Secrets an app stack cannot run without (the token key is generated when absent).
REQUIRED_APP_SECRETS: tuple[str, ...] = ("slackSigningSecret", "slackClientSecret")
# Plain settings an app stack cannot run without (production contract).
REQUIRED_APP_SETTINGS: tuple[str, ...] = ("SLACK_CLIENT_ID", "SLACK_BOT_SCOPES")
# Settings the stack owns itself; setting them by hand would contradict the deployed shape.
STACK_OWNED_SETTINGS: frozenset[str] = frozenset(
    {"DATABASE_BACKEND", "LOCAL_DEVELOPMENT", "SYNCBOT_AUTO_MIGRATE"}
)
CONFIG_SETTINGS: frozenset[str] = frozenset(
    name
    for name, var in ENV_BY_NAME.items()
    if var.source is Source.CONFIG and name not in STACK_OWNED_SETTINGS
)

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_REF = re.compile(r"^refs/(heads|tags)/[A-Za-z0-9_./-]+$")
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

T = TypeVar("T")


class StackConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` names every bad key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid stack configuration:\n{lines}")


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A secret stack value; its ``repr`` never shows the value.

    From a stack file the value is the ``secure:`` ciphertext (the offline plan cannot decrypt
    it); in the Pulumi program it is the decrypted value. Either way it only leaves this object
    through :meth:`output`, as a Pulumi secret.
    """

    value: str = field(repr=False)
    source: Any = field(default=None, repr=False, compare=False)
    """In the program: ``pulumi.Config(...).require_secret(key)``, the SDK's own secret."""

    def output(self) -> Any:
        """Returns the value as a Pulumi secret output (``pulumi.Output[str]``)."""
        if self.source is not None:
            return self.source
        import pulumi  # Deferred: parsing stays usable without the Pulumi runtime.

        return pulumi.Output.secret(self.value)


@dataclass(frozen=True, slots=True)
class GitHubTrust:
    """Which GitHub Actions workflows may assume the deploy identity."""

    repository: str
    ref: str | None = None
    environment: str | None = None

    @property
    def subject(self) -> str:
        """The OIDC ``sub`` claim CI tokens must carry (never a wildcard)."""
        if self.environment:
            return f"repo:{self.repository}:environment:{self.environment}"
        return f"repo:{self.repository}:ref:{self.ref}"


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """The app database: created by the stack or an existing one by URL."""

    backend: Backend = "mysql"
    mode: DatabaseMode = "create"
    instance_class: str = "db.t4g.micro"
    storage_gb: int = 20
    max_storage_gb: int = 100
    backup_days: int = 7
    multi_az: bool = False
    engine_version: str | None = None
    name: str = "syncbot"
    username: str = "syncbot"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Sizing of the function (AWS) or service (GCP)."""

    memory_mb: int = 512
    timeout_seconds: int = 30
    min_instances: int = 0
    max_instances: int = 10
    concurrency: int = 40
    architecture: Architecture = "x86_64"
    reserved_concurrency: int | None = None
    """Lambda reserved concurrency; unset by default because an account whose concurrency
    quota is still the new-account 10 cannot reserve any (AWS keeps 10 unreserved)."""


@dataclass(frozen=True, slots=True)
class AwsConfig:
    """AWS-only settings."""

    region: str
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    availability_zones: int = 2
    vpc_cidr: str = "10.40.0.0/16"
    existing_oidc_provider_arn: str | None = None
    bundle_path: str = "build/syncbot-lambda-x86_64.zip"
    artifact_bucket: str | None = None
    log_retention_days: int = 30
    alarm_email: str | None = None


@dataclass(frozen=True, slots=True)
class GcpConfig:
    """GCP-only settings (consumed by ``stacks/gcp.py``)."""

    project: str
    region: str
    image_repository: str | None = None
    image_tag: str = "latest"
    cloud_sql_tier: str = "db-g1-small"
    cloud_sql_edition: Edition = "ENTERPRISE"
    """Always explicit: PostgreSQL 16 would default to ENTERPRISE_PLUS, which refuses the
    shared-core tiers (see :mod:`infra.gcp.sql_tiers`)."""
    alert_email: str | None = None
    """Where the uptime check's and the 5xx alert policies' notifications go."""
    wif_pool_id: str | None = None
    """Workload Identity pool id; default one per deployment (``<prefix>-gh``), since ids are
    unique per project and a fixed one would collide between environments."""


@dataclass(frozen=True, slots=True)
class StackConfig:
    """The whole validated stack configuration."""

    provider: Provider
    kind: Kind
    environment: str
    production: bool
    github: GitHubTrust | None
    database: DatabaseConfig
    service: ServiceConfig
    settings: Mapping[str, str]
    secrets: Mapping[str, SecretValue]
    aws: AwsConfig | None = None
    gcp: GcpConfig | None = None
    bootstrap_stack: str | None = None
    """The bootstrap stack (``org/project/stack``) an app stack reads its artifact store from,
    instead of copying the bootstrap outputs into its own config by hand."""

    @property
    def name_prefix(self) -> str:
        """The prefix of every resource name of this stack (``syncbot-<environment>``)."""
        return f"{NAMESPACE}-{self.environment}"

    def secret_outputs(self) -> dict[str, Any]:
        """Returns the supplied secrets as Pulumi secrets keyed by contract env name."""
        return {SECRET_KEYS[key]: value.output() for key, value in self.secrets.items()}


class _Reader:
    """Reads typed values from the raw mapping, collecting problems instead of raising."""

    def __init__(self, raw: Mapping[str, Any], secret_keys: frozenset[str]) -> None:
        self.raw = raw
        self.secret_keys = secret_keys
        self.problems: list[str] = []
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        self.used.add(key)
        value = self.raw.get(key)
        return None if value == "" else value

    def text(
        self,
        key: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> str | None:
        value = self._get(key)
        if value is None:
            if required:
                self.problems.append(f"{key}: required but not set{hint}")
            return None
        if isinstance(value, dict):
            self.problems.append(f"{key}: expected a plain value, not a secret or map")
            return None
        text = str(value)
        if pattern is not None and not pattern.match(text):
            self.problems.append(f"{key}: {text!r} is not valid{hint}")
            return None
        return text

    def choice(self, key: str, options: tuple[T, ...], default: T) -> T:
        value = self.text(key)
        if value is None:
            return default
        for option in options:
            if value == option:
                return option
        self.problems.append(
            f"{key}: unknown value {value!r} (expected one of {', '.join(map(str, options))})"
        )
        return default

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            number = int(str(value))
        except ValueError:
            self.problems.append(f"{key}: expected an integer, got {value!r}")
            return default
        if not low <= number <= high:
            self.problems.append(f"{key}: {number} is outside {low}..{high}")
            return default
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self.problems.append(f"{key}: expected true or false, got {value!r}")
        return default

    def structured(self, key: str, kind: type[T]) -> T | None:
        """A YAML list/map, or its JSON text (the engine passes structured config as JSON)."""
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                self.problems.append(f"{key}: expected a {kind.__name__}, got {value!r}")
                return None
        if not isinstance(value, kind):
            self.problems.append(f"{key}: expected a {kind.__name__}, got {value!r}")
            return None
        return value

    def secret(self, key: str) -> SecretValue | None:
        value = self._get(key)
        if value is None:
            return None
        if isinstance(value, dict):
            if set(value) == {"secure"} and isinstance(value["secure"], str):
                return SecretValue(value["secure"])
            self.problems.append(f"{key}: expected a secure value")
            return None
        if key not in self.secret_keys:
            self.problems.append(
                f"{key}: must be stored encrypted "
                f"(pulumi config set --secret {key.split(':')[-1]})"
            )
            return None
        return SecretValue(str(value))


def _k(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def parse_stack_config(
    raw: Mapping[str, Any], *, secret_keys: frozenset[str] | set[str] = frozenset()
) -> StackConfig:
    """Parses and validates a stack's configuration.

    Args:
        raw: Full config keys (``syncbot:provider``, ``aws:region``, ``gcp:project``…) to values:
            engine strings, YAML scalars/lists/maps, or ``{"secure": ...}`` for encrypted values.
        secret_keys: Keys whose plain-string values the engine decrypted (it reports them as
            secret); a secret key outside this set and not ``{"secure": ...}`` is rejected.

    Returns:
        The validated configuration.

    Raises:
        StackConfigError: listing every invalid, missing or unknown key.
    """
    read = _Reader(raw, frozenset(secret_keys))
    provider = read.choice(_k("provider"), PROVIDERS, "aws")
    if read.text(_k("provider")) is None:
        read.problems.append(f"{_k('provider')}: required but not set (aws or gcp)")
    kind = read.choice(_k("kind"), KINDS, "app")
    environment = (
        read.text(
            _k("environment"),
            required=True,
            pattern=_ENVIRONMENT,
            hint=" (lowercase letters, digits and dashes, at most 21 characters)",
        )
        or "invalid"
    )
    production = read.boolean(_k("production"), False)

    github = _github(read, required=kind == "bootstrap")
    database = _database(read, provider=provider, kind=kind, production=production)
    service = _service(read)
    settings = _settings(read)
    secrets = {key: value for key in SECRET_KEYS if (value := read.secret(_k(key))) is not None}
    if kind == "app":
        for key in REQUIRED_APP_SECRETS:
            if key not in secrets:
                read.problems.append(f"{_k(key)}: required for an app stack but not set")
        for name in REQUIRED_APP_SETTINGS:
            if name not in settings:
                read.problems.append(f"{_k('settings')}.{name}: required for an app stack")
        if database.mode == "existing" and "databaseUrl" not in secrets:
            read.problems.append(f"{_k('databaseUrl')}: required when databaseMode is existing")

    bootstrap_stack = read.text(
        _k("bootstrapStack"),
        pattern=re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$"),
        hint=" (stack, project/stack or org/project/stack)",
    )
    aws = _aws(read, service) if provider == "aws" else None
    gcp = _gcp(read, database) if provider == "gcp" else None

    if production and kind == "app":
        email = (aws.alarm_email if aws else None) or (gcp.alert_email if gcp else None)
        if email is None:
            key = _k("awsAlarmEmail") if provider == "aws" else _k("gcpAlertEmail")
            read.problems.append(f"{key}: required in production, so alarms reach someone")
    unknown = sorted(
        key for key in raw if key.startswith(f"{NAMESPACE}:") and key not in read.used
    )
    read.problems.extend(f"{key}: unknown key" for key in unknown)
    if read.problems:
        raise StackConfigError(read.problems)
    return StackConfig(
        provider=provider,
        kind=kind,
        environment=environment,
        production=production,
        github=github,
        database=database,
        service=service,
        settings=settings,
        secrets=secrets,
        aws=aws,
        gcp=gcp,
        bootstrap_stack=bootstrap_stack,
    )


def _github(read: _Reader, *, required: bool) -> GitHubTrust | None:
    repository = read.text(
        _k("githubRepository"), required=required, pattern=_REPOSITORY, hint=" (owner/name)"
    )
    ref = read.text(
        _k("githubRef"), pattern=_REF, hint=" (refs/heads/<branch> or refs/tags/<tag>)"
    )
    environment = read.text(_k("githubEnvironment"), pattern=re.compile(r"^[A-Za-z0-9_.-]+$"))
    if repository is None:
        return None
    if (ref is None) == (environment is None):
        read.problems.append(
            f"{_k('githubRef')}/{_k('githubEnvironment')}: set exactly one, so CI trust is "
            "pinned to a branch or a deployment environment"
        )
        return None
    return GitHubTrust(repository=repository, ref=ref, environment=environment)


def _database(read: _Reader, *, provider: str, kind: str, production: bool) -> DatabaseConfig:
    backend = read.choice(_k("databaseBackend"), BACKENDS, "mysql")
    mode = read.choice(_k("databaseMode"), DATABASE_MODES, "create")
    if backend == "sqlite" and kind == "app":
        # A serverless function or autoscaled container has no durable single-writer disk.
        read.problems.append(
            f"{_k('databaseBackend')}: sqlite cannot run on "
            f"{'Lambda' if provider == 'aws' else 'Cloud Run'} (no durable local disk); "
            "use postgresql or mysql"
        )
    storage = read.integer(_k("databaseStorageGb"), 20, 20, 16384)
    max_storage = read.integer(_k("databaseMaxStorageGb"), max(100, storage), storage, 65536)
    return DatabaseConfig(
        backend=backend,
        mode=mode,
        instance_class=read.text(_k("databaseInstanceClass")) or "db.t4g.micro",
        storage_gb=storage,
        max_storage_gb=max_storage,
        backup_days=read.integer(_k("databaseBackupDays"), 7, 1 if production else 0, 35),
        multi_az=read.boolean(_k("databaseMultiAz"), production),
        engine_version=read.text(_k("databaseEngineVersion")),
    )


def _service(read: _Reader) -> ServiceConfig:
    min_instances = read.integer(_k("serviceMinInstances"), 0, 0, 100)
    return ServiceConfig(
        memory_mb=read.integer(_k("serviceMemoryMb"), 512, 128, 10240),
        timeout_seconds=read.integer(_k("serviceTimeoutSeconds"), 30, 3, 900),
        min_instances=min_instances,
        max_instances=read.integer(_k("serviceMaxInstances"), 10, max(1, min_instances), 1000),
        concurrency=read.integer(_k("serviceConcurrency"), 40, 1, 1000),
        architecture=read.choice(_k("serviceArchitecture"), ARCHITECTURES, "x86_64"),
        reserved_concurrency=(
            read.integer(_k("serviceReservedConcurrency"), 0, 1, 1000)
            if read.raw.get(_k("serviceReservedConcurrency")) not in (None, "")
            else _mark_used(read, _k("serviceReservedConcurrency"))
        ),
    )


def _mark_used(read: _Reader, key: str) -> None:
    read.used.add(key)
    return None


def _settings(read: _Reader) -> dict[str, str]:
    raw = read.structured(_k("settings"), dict) or {}
    settings: dict[str, str] = {}
    for name, value in raw.items():
        if name in STACK_OWNED_SETTINGS:
            read.problems.append(f"{_k('settings')}.{name}: set by the stack, not configurable")
        elif ENV_BY_NAME.get(name) is not None and ENV_BY_NAME[name].secret:
            read.problems.append(f"{_k('settings')}.{name}: a secret; use its secret key")
        elif name not in CONFIG_SETTINGS:
            read.problems.append(f"{_k('settings')}.{name}: not a contract setting")
        elif isinstance(value, dict | list):
            # MATRIX_PERMISSIONS is JSON in the environment; let the file hold it as a map.
            settings[name] = json.dumps(value, sort_keys=True)
        elif isinstance(value, bool):
            settings[name] = "true" if value else "false"
        else:
            settings[name] = str(value)
    return settings


def _aws(read: _Reader, service: ServiceConfig) -> AwsConfig:
    region = read.text("aws:region", required=True, pattern=re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$"))
    vpc_id = read.text(_k("awsVpcId"), pattern=re.compile(r"^vpc-[0-9a-f]+$"))
    subnets = read.structured(_k("awsPrivateSubnetIds"), list) or []
    if (vpc_id is None) != (not subnets):
        read.problems.append(
            f"{_k('awsVpcId')}/{_k('awsPrivateSubnetIds')}: set both to use an existing VPC "
            "(at least two private subnets in different zones), or neither"
        )
    elif vpc_id is not None and len(subnets) < 2:
        read.problems.append(f"{_k('awsPrivateSubnetIds')}: RDS needs at least two subnets")
    oidc = read.text(
        _k("awsOidcProviderArn"),
        pattern=re.compile(
            r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\."
            r"githubusercontent\.com$"
        ),
    )
    return AwsConfig(
        region=region or "us-east-1",
        vpc_id=vpc_id,
        private_subnet_ids=tuple(str(s) for s in subnets),
        availability_zones=read.integer(_k("awsAvailabilityZones"), 2, 2, 3),
        vpc_cidr=read.text(
            _k("awsVpcCidr"), pattern=re.compile(r"^\d+\.\d+\.0\.0/16$"), hint=" (a /16)"
        )
        or "10.40.0.0/16",
        existing_oidc_provider_arn=oidc,
        bundle_path=read.text(_k("awsBundlePath"))
        or f"build/syncbot-lambda-{service.architecture}.zip",
        artifact_bucket=read.text(_k("awsArtifactBucket")),
        log_retention_days=_retention(read),
        alarm_email=read.text(_k("awsAlarmEmail"), pattern=re.compile(r"^[^@\s]+@[^@\s]+$")),
    )


# CloudWatch Logs accepts only these retention periods.
_LOG_RETENTION_DAYS: frozenset[int] = frozenset(
    int(days)
    for days in (
        "1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653"
    ).split()
)


def _retention(read: _Reader) -> int:
    key = _k("awsLogRetentionDays")
    days = read.integer(key, 30, 1, 3653)
    if days not in _LOG_RETENTION_DAYS:
        read.problems.append(f"{key}: {days} is not a CloudWatch Logs retention period")
        return 30
    return days


# Cloud SQL version per backend (what infra.gcp.database creates).
_CLOUD_SQL_VERSIONS: Mapping[str, str] = {"postgresql": "POSTGRES_16", "mysql": "MYSQL_8_0"}


def _gcp(read: _Reader, database: DatabaseConfig) -> GcpConfig:
    tier = read.text(_k("gcpCloudSqlTier")) or "db-g1-small"
    edition = read.choice(_k("gcpCloudSqlEdition"), EDITIONS, edition_for_tier(tier))
    version = _CLOUD_SQL_VERSIONS.get(database.backend)
    if database.mode == "create" and version is not None:
        problem = tier_problem(tier, edition, version)
        if problem is not None:
            read.problems.append(f"{_k('gcpCloudSqlTier')}/{_k('gcpCloudSqlEdition')}: {problem}")
    return GcpConfig(
        project=read.text("gcp:project", required=True) or "invalid",
        region=read.text("gcp:region", required=True) or "invalid",
        image_repository=read.text(_k("gcpImageRepository")),
        image_tag=read.text(_k("gcpImageTag")) or "latest",
        cloud_sql_tier=tier,
        cloud_sql_edition=edition,
        alert_email=read.text(_k("gcpAlertEmail"), pattern=re.compile(r"^[^@\s]+@[^@\s]+$")),
        wif_pool_id=read.text(
            _k("gcpWifPoolId"),
            pattern=re.compile(r"^(?!gcp-)[a-z0-9-]{4,32}$"),
            hint=" (4-32 lowercase letters, digits and dashes, not starting with gcp-)",
        ),
    )


def load_stack_config() -> StackConfig:
    """Reads the running Pulumi program's configuration and validates it.

    Returns:
        The validated configuration.

    Raises:
        StackConfigError: listing every invalid, missing or unknown key.
    """
    from pulumi.runtime import config as runtime_config

    # The language host hands config over as PULUMI_CONFIG; tests set it in-process instead.
    raw: dict[str, Any] = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    secret_keys.update(key for key in raw if runtime_config.is_config_secret(key))
    parsed = parse_stack_config(raw, secret_keys=secret_keys)
    # Secret values reach resources through the SDK's require_secret (a secret Output from the
    # engine's decrypted config), not as strings copied out of the raw config mapping.
    import pulumi

    stack_config = pulumi.Config(NAMESPACE)
    secrets = {
        key: SecretValue(value.value, source=stack_config.require_secret(key))
        for key, value in parsed.secrets.items()
    }
    return dataclasses.replace(parsed, secrets=secrets)
