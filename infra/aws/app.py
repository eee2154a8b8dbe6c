"""``App``: network, database, secrets, service, scheduler and migrations of one app stack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from infra.aws.database import Database, DatabaseArgs, DatabaseSizing
from infra.aws.env import DatabaseEnv, lambda_env
from infra.aws.migrations import Migrations, MigrationsArgs
from infra.aws.network import Network, NetworkArgs
from infra.aws.queue import DeliveryQueue, DeliveryQueueArgs, QueueTrigger, QueueTriggerArgs
from infra.aws.scheduler import Scheduler, SchedulerArgs
from infra.aws.secrets import Secrets, SecretsArgs
from infra.aws.service import Bundle, Service, ServiceArgs
from infra.contract import (
    AWS_SECRET_JSON_KEY_SEPARATOR,
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_REGION,
    OUTPUT_SERVICE_URL,
)


@dataclass
class AppArgs:
    """Inputs of :class:`App`."""

    region: str
    production: bool
    backend: Literal["postgresql", "mysql"]
    bundle: Bundle
    config: Mapping[str, str] = field(default_factory=dict)
    """Plain ``Source.CONFIG`` settings (``SLACK_CLIENT_ID``, ``LOG_LEVEL``…)."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret contract variables by env name, as Pulumi secrets."""
    existing_database: bool = False
    """Connect by the ``DATABASE_URL`` secret instead of creating RDS."""
    database: DatabaseSizing = field(default_factory=DatabaseSizing)
    """The RDS instance to create (ignored for an existing database)."""
    vpc_cidr: str = "10.40.0.0/16"
    zones: int = 2
    vpc_id: str | None = None
    subnet_ids: Sequence[str] = ()
    architecture: str = "x86_64"
    memory_mb: int = 512
    timeout_seconds: int = 30
    max_instances: int | None = None
    """Cap on concurrent queue-driven invocations (half of it) and the alarm on throttles."""
    reserved_concurrency: int | None = None
    """Reserve (and cap) the function's concurrency; unset uses the account pool, since a new
    account's quota (often 10) cannot reserve any."""
    log_retention_days: int = 30
    alarm_email: str | None = None
    database_ca_path: str | None = None
    """``DATABASE_SSL_CA_PATH`` inside the function (the RDS CA bundle shipped in the code)."""


class App(pulumi.ComponentResource):
    """The deployed app; ``outputs`` holds the stack exports."""

    outputs: dict[str, pulumi.Output[object]]

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:App", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.network = Network(
            f"{name}-net",
            NetworkArgs(
                region=args.region,
                cidr=args.vpc_cidr,
                zones=args.zones,
                nat_per_zone=args.production,
                vpc_id=args.vpc_id,
                subnet_ids=tuple(args.subnet_ids),
            ),
            opts=child,
        )
        self.secrets = Secrets(
            f"{name}-secrets",
            SecretsArgs(
                values=dict(args.secrets),
                recovery_window_days=30 if args.production else 7,
                protect=args.production,
            ),
            opts=child,
        )
        secret_arns: dict[str, pulumi.Input[str]] = {
            env_name: secret.arn for env_name, secret in self.secrets.secrets.items()
        }
        database_env: DatabaseEnv | None = None
        self.database: Database | None = None
        if not args.existing_database:
            self.database = Database(
                f"{name}-db",
                DatabaseArgs(
                    backend=args.backend,
                    vpc_id=self.network.vpc_id,
                    subnet_ids=self.network.private_subnet_ids,
                    client_security_group_id=self.network.function_security_group_id,
                    production=args.production,
                    sizing=args.database,
                ),
                opts=child,
            )
            database_env = DatabaseEnv(
                host=self.database.host,
                port=self.database.port.apply(str),
                user=self.database.username,
                schema=self.database.db_name,
            )
            secret_arns["DATABASE_PASSWORD"] = self.database.password_secret_arn.apply(
                lambda arn: f"{arn}{AWS_SECRET_JSON_KEY_SEPARATOR}password"
            )
        # Every alarm notifies this topic, in every stack: an alarm with no action only
        # changes colour in a console nobody watches. The e-mail subscription is the stack's
        # choice (required in production by the config); others can subscribe to the topic.
        self.alarm_topic: aws.sns.Topic | None = aws.sns.Topic(f"{name}-alarms", opts=child)
        if args.alarm_email is not None:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.alarm_topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.deliveries = DeliveryQueue(
            f"{name}-deliveries",
            DeliveryQueueArgs(
                region=args.region,
                account_id=identity.account_id,
                partition=partition.partition,
                function_timeout_seconds=args.timeout_seconds,
                alarm_topic_arn=self.alarm_topic.arn if self.alarm_topic else None,
            ),
            opts=child,
        )
        self.api = aws.apigatewayv2.Api(
            f"{name}-api",
            protocol_type="HTTP",
            description="syncbot public endpoint",
            opts=child,
        )
        self.service = Service(
            f"{name}-svc",
            ServiceArgs(
                bundle=args.bundle,
                environment=lambda_env(
                    backend=args.backend,
                    config=args.config,
                    secret_arns=secret_arns,
                    database=database_env,
                    public_url=args.config.get("SYNCBOT_PUBLIC_URL", self.api.api_endpoint),
                    delivery_queue_url=self.deliveries.queue_url,
                    database_ca_path=args.database_ca_path if self.database else None,
                ),
                secret_arns=list(secret_arns.values()),
                api=self.api,
                subnet_ids=self.network.private_subnet_ids,
                security_group_id=self.network.function_security_group_id,
                architecture=args.architecture,
                memory_mb=args.memory_mb,
                timeout_seconds=args.timeout_seconds,
                reserved_concurrency=args.reserved_concurrency,
                log_retention_days=args.log_retention_days,
                alarm_topic_arn=self.alarm_topic.arn if self.alarm_topic else None,
                delivery_queue_arn=self.deliveries.queue_arn,
                release_gate=lambda function: [
                    Migrations(
                        f"{name}-migrate",
                        MigrationsArgs(function=function, bundle_sha256=args.bundle.sha256),
                        opts=child,
                    ).invocation
                ],
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.database] if self.database else []
            ),
        )
        self.delivery_trigger = QueueTrigger(
            f"{name}-delivery-trigger",
            QueueTriggerArgs(
                queue=self.deliveries,
                function_arn=self.service.function_arn,
                # Half the reserved concurrency at most: HTTP requests keep the other half.
                maximum_concurrency=args.max_instances // 2 if args.max_instances else None,
                depends_on=[self.service.role_policy],
            ),
            opts=child,
        )
        self.scheduler = Scheduler(
            f"{name}-sched",
            # The alias: ticks run the live (migrated) version.
            SchedulerArgs(function_arn=self.service.function_arn, account_id=identity.account_id),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service.alias]),
        )
        self.outputs = {
            OUTPUT_SERVICE_URL: self.service.url,
            OUTPUT_REGION: pulumi.Output.from_input(args.region),
            "function_name": self.service.function_name,
            "delivery_queue_url": self.deliveries.queue_url,
            "bundle_sha256": pulumi.Output.from_input(args.bundle.sha256),
            "alarm_topic": self.alarm_topic.arn,
        }
        if args.bundle.artifact_bucket is not None:
            self.outputs[OUTPUT_ARTIFACT_BUCKET] = pulumi.Output.from_input(
                args.bundle.artifact_bucket
            )
        if self.database is not None:
            self.outputs["database_host"] = self.database.host
        self.register_outputs(dict(self.outputs))
