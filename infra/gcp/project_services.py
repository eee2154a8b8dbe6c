"""The Google Cloud APIs a syncbot deployment uses, enabled on the project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

REQUIRED_SERVICES: tuple[str, ...] = (
    "artifactregistry.googleapis.com",
    "cloudresourcemanager.googleapis.com",  # project lookups and IAM grants by the providers
    "cloudtasks.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "monitoring.googleapis.com",  # the uptime check and alert policies
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
    "sts.googleapis.com",
)


@dataclass
class ProjectServicesArgs:
    """Inputs of :class:`ProjectServices`."""

    project: pulumi.Input[str]
    services: Sequence[str] = field(default_factory=lambda: list(REQUIRED_SERVICES))


class ProjectServices(pulumi.ComponentResource):
    """Enables each API once; destroying the stack leaves them on.

    Turning an API off would break anything else in the project that uses it, so
    ``disable_on_destroy`` is off.
    """

    services: dict[str, gcp.projects.Service]

    def __init__(
        self, name: str, args: ProjectServicesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:ProjectServices", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.services = {
            service: gcp.projects.Service(
                f"{name}-{service.split('.', 1)[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for service in args.services
        }
        self.register_outputs({"services": sorted(self.services)})
