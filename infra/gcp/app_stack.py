"""The GCP app stack kind: database, secrets, image, migrations, service and scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.contract import GENERATED_SECRET_NAMES, GENERATED_SECRETS, SECRET_ENV
from infra.gcp.database import Backend, Database, DatabaseArgs
from infra.gcp.env import DatabaseEnv, DeliveryEnv, container_env
from infra.gcp.image import ContainerImage, ContainerImageArgs
from infra.gcp.migrations import Migrations, MigrationsArgs
from infra.gcp.monitoring import Monitoring, MonitoringArgs
from infra.gcp.naming import account_email, account_id, account_member, network_id, subnet_id
from infra.gcp.queue import DeliveryQueue, DeliveryQueueArgs, delivery_queue_id, queue_path
from infra.gcp.scheduler import Scheduler, SchedulerArgs
from infra.gcp.secrets import Secrets, SecretsArgs
from infra.gcp.service import Scaling, Service, ServiceArgs, service_url
from infra.gcp.sql_tiers import Edition
from infra.gcp.workload import DATABASE_CA_PATH, Workload

# Secret Manager key of the database server CA (a file, not an env var).
DATABASE_CA_KEY = "DATABASE_CA_CERT"


@dataclass
class AppArgs:
    """Inputs of :class:`App`."""

    project: str
    region: str
    production: bool
    database_backend: Backend
    image_repository: pulumi.Input[str]
    """``<region>-docker.pkg.dev/<project>/<repository>`` from the bootstrap stack."""
    image_tag: str
    config: Mapping[str, str] = field(default_factory=dict)
    """Plain ``Source.CONFIG`` contract variables (``LOG_LEVEL``, ``SLACK_CLIENT_ID``…)."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret contract variables by env name; pass Pulumi secrets."""
    existing_database: bool = False
    """Connect to the server in the ``DATABASE_URL`` secret instead of creating Cloud SQL."""
    database_tier: str = "db-g1-small"
    database_edition: Edition | None = None
    database_backup_days: int = 7
    service_name: str = "syncbot"
    public_url: str | None = None
    """Override of ``SYNCBOT_PUBLIC_URL`` (a custom domain); default the ``run.app`` URL."""
    scaling: Scaling = field(default_factory=Scaling)
    alert_email: str | None = None
    """Where the uptime and 5xx alerts go (required by the config in production)."""


class App(pulumi.ComponentResource):
    """The running app and everything it needs, wired from the contract table.

    Order of a deploy: secrets and their per-secret bindings, then the image, then the migration
    job for that image, then the service revision, so a revision never starts on a schema older
    than its code.
    """

    service_url: pulumi.Output[str]
    image_ref: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    migration_job: pulumi.Output[str]
    delivery_queue: pulumi.Output[str]
    """Full Cloud Tasks queue name (``projects/P/locations/L/queues/Q``)."""

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:App", name, None, opts)
        unknown = set(args.secrets) - SECRET_ENV
        if unknown:
            raise ValueError(f"not secret contract variables: {sorted(unknown)}")
        if args.existing_database != ("DATABASE_URL" in args.secrets):
            raise ValueError("DATABASE_URL is given exactly when using an existing database")
        child = pulumi.ResourceOptions(parent=self)
        # The bootstrap stack created the network and the workload accounts under names that
        # follow from the service name; this stack (CI's deploy account) only attaches to them.
        runtime_email = account_email(account_id(args.service_name, "run"), args.project)
        runtime_member = account_member(runtime_email)
        network_ref = (
            None if args.existing_database else network_id(args.project, args.service_name)
        )
        subnet_ref = (
            None
            if args.existing_database
            else subnet_id(args.project, args.region, args.service_name)
        )
        database = Database(
            f"{name}-db",
            DatabaseArgs(
                project=args.project,
                region=args.region,
                backend=args.database_backend,
                production=args.production,
                network_id=network_ref,
                existing_url=args.secrets.get("DATABASE_URL"),
                tier=args.database_tier,
                edition=args.database_edition,
                backup_days=args.database_backup_days,
            ),
            child,
        )
        secret_values: dict[str, pulumi.Input[str]] = dict(args.secrets)
        if database.password is not None:
            secret_values["DATABASE_PASSWORD"] = database.password
        for env_name, length in GENERATED_SECRETS.items():
            if env_name not in secret_values:
                generated = random.RandomPassword(
                    f"{name}-{GENERATED_SECRET_NAMES[env_name]}",
                    length=length,
                    special=False,
                    # Losing the token key makes every stored token unreadable.
                    opts=pulumi.ResourceOptions(
                        parent=self, protect=args.production, retain_on_delete=args.production
                    ),
                )
                secret_values[env_name] = generated.result
        if database.ca_certificate is not None:
            secret_values[DATABASE_CA_KEY] = database.ca_certificate
        secrets = Secrets(
            f"{name}-secrets",
            SecretsArgs(
                project=args.project,
                prefix=args.service_name,
                values=secret_values,
                accessors=[runtime_member],
                protect=args.production,
            ),
            child,
        )

        number = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).number
        # What the app believes its URL is (SYNCBOT_PUBLIC_URL): the tick's and the delivery
        # tasks' OIDC audience must be exactly this, never the service's hash-style ``uri``.
        public_url: pulumi.Output[str] = (
            pulumi.Output.from_input(args.public_url)
            if args.public_url
            else number.apply(
                lambda project_number: service_url(args.service_name, project_number, args.region)
            )
        )
        config = {**args.config, "DATABASE_BACKEND": args.database_backend}
        if database.ca_certificate is not None:
            config["DATABASE_TLS_ENABLED"] = "true"
            config["DATABASE_SSL_CA_PATH"] = DATABASE_CA_PATH
        scheduler_id = account_id(args.service_name, "sched")
        # Queue path and invoker e-mail follow from fixed names: the env needs them before
        # the queue exists, and the queue exists before the first revision starts.
        queue_id = delivery_queue_id(args.service_name)
        invoker_id = account_id(args.service_name, "tasks")
        deliveries = DeliveryQueue(
            f"{name}-deliveries",
            DeliveryQueueArgs(
                project=args.project,
                region=args.region,
                queue_id=queue_id,
                invoker_email=account_email(invoker_id, args.project),
                enqueuer_member=runtime_member,
            ),
            child,
        )
        envs = container_env(
            config=config,
            secrets={key: ref for key, ref in secrets.refs.items() if key in SECRET_ENV},
            database=_database_env(database),
            public_url=public_url,
            # Known before the account exists: its e-mail follows from id and project.
            scheduler_account=account_email(scheduler_id, args.project),
            delivery=DeliveryEnv(
                queue=queue_path(args.project, args.region, queue_id),
                invoker=account_email(invoker_id, args.project),
            ),
        )

        image = ContainerImage(
            f"{name}-image",
            ContainerImageArgs(repository_url=args.image_repository, tag=args.image_tag),
            child,
        )
        workload = Workload(
            image=image.ref,
            service_account_email=runtime_email,
            envs=envs,
            network_id=network_ref,
            subnet_id=subnet_ref,
            database_ca=secrets.refs.get(DATABASE_CA_KEY),
        )
        migrations = Migrations(
            f"{name}-migrate",
            MigrationsArgs(
                project=args.project,
                region=args.region,
                job_name=f"{args.service_name}-migrate",
                workload=workload,
                image_digest=image.digest,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[secrets, database]),
        )
        service = Service(
            f"{name}-service",
            ServiceArgs(
                project=args.project,
                region=args.region,
                service_name=args.service_name,
                workload=workload,
                scaling=args.scaling,
                deletion_protection=args.production,
                invokers=[deliveries.invoker_member],
                depends_on=[secrets, migrations.job, deliveries],
            ),
            child,
        )
        Scheduler(
            f"{name}-schedule",
            SchedulerArgs(
                project=args.project,
                region=args.region,
                service_name=service.name,
                service_url=public_url,
                account_email=account_email(scheduler_id, args.project),
            ),
            child,
        )
        Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                project=args.project,
                service_name=service.name,
                public_url=public_url,
                alert_email=args.alert_email,
            ),
            child,
        )
        self.service_url = public_url
        self.image_ref = image.ref
        self.service_account_email = pulumi.Output.from_input(runtime_email)
        self.migration_job = migrations.name
        self.delivery_queue = deliveries.queue_name
        self.register_outputs(
            {
                "service_url": self.service_url,
                "image_ref": self.image_ref,
                "service_account_email": self.service_account_email,
                "migration_job": self.migration_job,
                "delivery_queue": self.delivery_queue,
            }
        )


def _database_env(database: Database) -> DatabaseEnv | None:
    if not database.managed:
        return None
    host, port, user, schema = database.host, database.port, database.user, database.schema
    if host is None or port is None or user is None or schema is None:
        raise RuntimeError("a managed database must expose host, port, user and schema")
    return DatabaseEnv(host=host, port=port.apply(str), user=user, schema=schema)
