"""What the Cloud Run service and the migration job share: image, identity, env, network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.gcp.env import SecretRef

DATABASE_CA_DIR = "/etc/syncbot/database-ca"
DATABASE_CA_FILE = "ca.pem"
DATABASE_CA_PATH = f"{DATABASE_CA_DIR}/{DATABASE_CA_FILE}"
_CA_VOLUME = "database-ca"


@dataclass
class Workload:
    """One container configuration, run as a service or as a job."""

    image: pulumi.Input[str]
    """Image reference pinned by digest."""
    service_account_email: pulumi.Input[str]
    envs: list[dict[str, Any]]
    """From :func:`infra.gcp.env.container_env`."""
    network_id: pulumi.Input[str] | None = None
    subnet_id: pulumi.Input[str] | None = None
    database_ca: SecretRef | None = None
    """Secret holding the database server CA, mounted at :data:`DATABASE_CA_PATH`."""

    def vpc_access(self) -> dict[str, Any] | None:
        """Direct VPC egress for private ranges only; the internet stays direct (Slack, Matrix)."""
        if self.network_id is None:
            return None
        return {
            "network_interfaces": [{"network": self.network_id, "subnetwork": self.subnet_id}],
            "egress": "PRIVATE_RANGES_ONLY",
        }

    def volumes(self) -> list[dict[str, Any]]:
        """The CA secret as a read-only file volume, when there is one."""
        if self.database_ca is None:
            return []
        items = [{"path": DATABASE_CA_FILE, "version": self.database_ca.version, "mode": 0o444}]
        secret = {"secret": self.database_ca.secret, "items": items}
        return [{"name": _CA_VOLUME, "secret": secret}]

    def volume_mounts(self) -> list[dict[str, Any]]:
        """Where :meth:`volumes` appear in the container."""
        if self.database_ca is None:
            return []
        return [{"name": _CA_VOLUME, "mount_path": DATABASE_CA_DIR}]
