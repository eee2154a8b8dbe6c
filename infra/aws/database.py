"""``Database``: a private, encrypted RDS instance that only accepts TLS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

Backend = Literal["postgresql", "mysql"]


@dataclass(frozen=True)
class EngineSpec:
    """What differs between the two RDS engines."""

    engine: str
    version: str
    port: int
    tls_parameter: str
    tls_value: str


ENGINES: dict[str, EngineSpec] = {
    "postgresql": EngineSpec("postgres", "16", 5432, "rds.force_ssl", "1"),
    "mysql": EngineSpec("mysql", "8.0", 3306, "require_secure_transport", "ON"),
}


@dataclass
class DatabaseSizing:
    """The RDS instance's size, storage, backups and engine version (the stack's choices)."""

    instance_class: str = "db.t4g.micro"
    storage_gb: int = 20
    max_storage_gb: int = 100
    backup_days: int = 7
    multi_az: bool = False
    engine_version: str | None = None


@dataclass
class DatabaseArgs:
    """Inputs of :class:`Database`."""

    backend: Backend
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    client_security_group_id: pulumi.Input[str]
    """The only security group allowed to connect (the function's)."""
    production: bool = False
    sizing: DatabaseSizing = field(default_factory=DatabaseSizing)
    db_name: str = "syncbot"
    username: str = "syncbot"


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL or MySQL with an AWS-managed master password."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    db_name: pulumi.Output[str]
    username: pulumi.Output[str]
    password_secret_arn: pulumi.Output[str]
    """The RDS-managed secret (JSON with ``username`` and ``password``)."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        spec = ENGINES[args.backend]
        sizing = args.sizing
        version = sizing.engine_version or spec.version
        self.subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=args.subnet_ids, opts=child
        )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"syncbot database: {spec.engine} from the function only",
            vpc_id=args.vpc_id,
            ingress=[
                {
                    "protocol": "tcp",
                    "from_port": spec.port,
                    "to_port": spec.port,
                    "security_groups": [args.client_security_group_id],
                    "description": "syncbot function",
                }
            ],
            opts=child,
        )
        self.parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=parameter_family(spec.engine, version),
            description="syncbot: TLS required",
            parameters=[
                {"name": spec.tls_parameter, "value": spec.tls_value, "apply_method": "immediate"}
            ],
            opts=child,
        )
        self.instance = aws.rds.Instance(
            f"{name}-instance",
            engine=spec.engine,
            engine_version=version,
            instance_class=sizing.instance_class,
            port=spec.port,
            db_name=args.db_name,
            username=args.username,
            manage_master_user_password=True,
            allocated_storage=sizing.storage_gb,
            max_allocated_storage=sizing.max_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            publicly_accessible=False,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameters.name,
            multi_az=sizing.multi_az,
            backup_retention_period=sizing.backup_days,
            backup_window="03:00-04:00",
            maintenance_window="sun:04:30-sun:05:30",
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            deletion_protection=args.production,
            skip_final_snapshot=not args.production,
            final_snapshot_identifier=f"{name}-final" if args.production else None,
            # Production changes wait for the maintenance window; dev applies at once.
            apply_immediately=not args.production,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.production, retain_on_delete=args.production
            ),
        )
        self.host = self.instance.address
        self.port = self.instance.port
        self.db_name = pulumi.Output.from_input(args.db_name)
        self.username = pulumi.Output.from_input(args.username)
        self.password_secret_arn = self.instance.master_user_secrets.apply(
            lambda secrets: secrets[0].secret_arn
        )
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "db_name": self.db_name,
                "username": self.username,
                "password_secret_arn": self.password_secret_arn,
            }
        )


def parameter_family(engine: str, version: str) -> str:
    """The parameter group family of an engine version (``postgres16``, ``mysql8.0``)."""
    parts = version.split(".")
    major = parts[0] if engine == "postgres" else ".".join(parts[:2])
    return f"{engine}{major}"
