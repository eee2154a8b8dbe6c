"""The app's SQL database: Cloud SQL on a private IP, or an existing server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from infra.gcp.sql_tiers import Edition, edition_for_tier, tier_problem

Backend = Literal["postgresql", "mysql"]

DATABASE_VERSIONS: dict[str, str] = {"postgresql": "POSTGRES_16", "mysql": "MYSQL_8_0"}
DEFAULT_PORTS: dict[str, int] = {"postgresql": 5432, "mysql": 3306}


@dataclass
class DatabaseArgs:
    """Inputs of :class:`Database`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    backend: Backend
    """``DATABASE_BACKEND`` of the deployment."""
    production: bool
    """Turns on deletion protection and a regional (high-availability) instance."""
    network_id: pulumi.Input[str] | None = None
    """Private VPC the instance gets its only address in; required unless ``existing``."""
    peering: pulumi.Resource | None = None
    """The private services access connection the instance must wait for."""
    existing_url: pulumi.Input[str] | None = None
    """``DATABASE_URL`` of a server this stack does not manage (a Pulumi secret)."""
    schema: pulumi.Input[str] = "syncbot"
    user: pulumi.Input[str] = "syncbot"
    tier: str = "db-g1-small"
    edition: Edition | None = None
    """Cloud SQL edition; unset means the one the tier runs on (always sent explicitly)."""
    backup_start_time: pulumi.Input[str] = "03:00"
    backup_days: int = 7
    """Daily backups kept (at least 1: backups are never off)."""


class Database(pulumi.ComponentResource):
    """A PostgreSQL or MySQL database on a private network, or an existing server by URL.

    Cloud SQL gets no public IPv4 address and no authorized networks, requires TLS
    (``ENCRYPTED_ONLY``) and uses the shared Google-managed CA so clients can verify the server
    with :attr:`ca_certificate`. Backups are on (with point-in-time recovery or binary logs);
    production stacks get deletion protection both in Pulumi and at the API.
    """

    managed: bool
    """False for an existing server: the app connects with :attr:`url` only."""
    host: pulumi.Output[str] | None
    port: pulumi.Output[int] | None
    user: pulumi.Output[str] | None
    schema: pulumi.Output[str] | None
    password: pulumi.Output[str] | None
    url: pulumi.Output[str] | None
    """The existing server's URL (secret), ``None`` for Cloud SQL."""
    ca_certificate: pulumi.Output[str] | None
    """PEM of the server CA, or ``None`` for an existing server (system trust store)."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Database", name, None, opts)
        self.host = self.port = self.user = self.schema = self.password = None
        self.url = self.ca_certificate = None
        self.managed = args.existing_url is None
        if args.existing_url is not None:
            self.url = pulumi.Output.secret(args.existing_url)
        else:
            self._create_instance(name, args)
        # The password and the URL stay attributes for wiring into Secret Manager; registered
        # outputs would put them in the component's state and the stack's resource outputs.
        self.register_outputs(
            {"host": self.host, "port": self.port, "user": self.user, "schema": self.schema}
        )

    def _create_instance(self, name: str, args: DatabaseArgs) -> None:
        if args.network_id is None:
            raise ValueError("a Cloud SQL database needs network_id (its private network)")
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.production, retain_on_delete=args.production
        )
        version = DATABASE_VERSIONS[args.backend]
        edition = args.edition or edition_for_tier(args.tier)
        problem = tier_problem(args.tier, edition, version)
        if problem is not None:
            raise ValueError(f"Cloud SQL: {problem}")
        backups: dict[str, object] = {
            "enabled": True,
            "start_time": args.backup_start_time,
            "backup_retention_settings": {"retained_backups": max(1, args.backup_days)},
        }
        if args.backend == "postgresql":
            backups["point_in_time_recovery_enabled"] = True
        else:
            backups["binary_log_enabled"] = True
        instance = gcp.sql.DatabaseInstance(
            f"{name}-instance",
            project=args.project,
            region=args.region,
            database_version=version,
            deletion_protection=args.production,
            settings={
                "tier": args.tier,
                "edition": edition,
                "availability_type": "REGIONAL" if args.production else "ZONAL",
                "deletion_protection_enabled": args.production,
                "backup_configuration": backups,
                "ip_configuration": {
                    "ipv4_enabled": False,
                    "private_network": args.network_id,
                    "ssl_mode": "ENCRYPTED_ONLY",
                    "server_ca_mode": "GOOGLE_MANAGED_CAS_CA",
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[args.peering] if args.peering else None,
                protect=args.production,
                retain_on_delete=args.production,
            ),
        )
        database = gcp.sql.Database(
            f"{name}-db",
            project=args.project,
            instance=instance.name,
            name=args.schema,
            opts=keep,
        )
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=keep)
        user = gcp.sql.User(
            f"{name}-user",
            project=args.project,
            instance=instance.name,
            name=args.user,
            password=password.result,
            opts=child,
        )
        self.host = instance.private_ip_address
        self.port = pulumi.Output.from_input(DEFAULT_PORTS[args.backend])
        self.user = user.name
        self.schema = database.name
        self.password = pulumi.Output.secret(password.result)
        self.ca_certificate = instance.server_ca_certs.apply(_first_cert)


def _first_cert(certs: list[gcp.sql.outputs.DatabaseInstanceServerCaCert] | None) -> str:
    if not certs or not certs[0].cert:
        return ""
    return certs[0].cert
