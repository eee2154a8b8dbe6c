"""The public Cloud Run v2 service running ``syncbot serve``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.contract import CONTAINER_SERVE_COMMAND, HEALTH_PATH
from infra.gcp.workload import Workload

CONTAINER_PORT = 8080


def service_url(service_name: str, project_number: str, region: str) -> str:
    """The deterministic ``run.app`` URL Cloud Run gives a service.

    Known before the service exists, so the service's own ``SYNCBOT_PUBLIC_URL`` and the
    bootstrap stack's ``service_url`` need no second deploy.

    Args:
        service_name: The Cloud Run service name.
        project_number: The numeric project id.
        region: The service's region.

    Returns:
        ``https://<name>-<project number>.<region>.run.app``.
    """
    return f"https://{service_name}-{project_number}.{region}.run.app"


@dataclass
class Scaling:
    """Cloud Run sizing of the service."""

    min_instances: int = 0
    max_instances: int = 4
    concurrency: int = 40
    """Requests per instance; the app is async, so well above 1."""
    cpu: str = "1"
    memory: str = "512Mi"
    timeout_seconds: int = 30


@dataclass
class ServiceArgs:
    """Inputs of :class:`Service`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    service_name: str
    workload: Workload
    scaling: Scaling = field(default_factory=Scaling)
    cpu_always_allocated: bool = True
    """Keep CPU between requests: ``syncbot serve`` delivers from background workers after it
    has answered Slack, which request-only CPU would starve."""
    deletion_protection: bool = False
    invokers: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Members (``serviceAccount:…``) granted ``roles/run.invoker`` on this service alone, for
    callers that present Google OIDC tokens (the delivery tasks' invoker)."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources the first revision needs (secret bindings, the migration run)."""


class Service(pulumi.ComponentResource):
    """Cloud Run v2 service with health probes on ``/health`` and public invoke.

    Public invoke is what Slack and homeservers need: they cannot present Google credentials.
    The app authenticates those requests itself (signing secret, ``hs_token``).
    """

    url: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Service", name, None, opts)
        scaling = args.scaling
        if scaling.concurrency <= 1:
            raise ValueError("request concurrency must be above 1 for an async app")
        if not 0 <= scaling.min_instances <= scaling.max_instances or scaling.max_instances < 1:
            raise ValueError("need 0 <= min_instances <= max_instances and max_instances >= 1")
        workload = args.workload
        probe = {"path": HEALTH_PATH, "port": CONTAINER_PORT}
        service = gcp.cloudrunv2.Service(
            f"{name}-run",
            project=args.project,
            location=args.region,
            name=args.service_name,
            ingress="INGRESS_TRAFFIC_ALL",
            deletion_protection=args.deletion_protection,
            template={
                "service_account": workload.service_account_email,
                "max_instance_request_concurrency": scaling.concurrency,
                "timeout": f"{scaling.timeout_seconds}s",
                "scaling": {
                    "min_instance_count": scaling.min_instances,
                    "max_instance_count": scaling.max_instances,
                },
                "vpc_access": workload.vpc_access(),
                "volumes": workload.volumes(),
                "containers": [
                    {
                        "image": workload.image,
                        "commands": [CONTAINER_SERVE_COMMAND[0]],
                        "args": list(CONTAINER_SERVE_COMMAND[1:]),
                        "ports": {"container_port": CONTAINER_PORT},
                        "envs": workload.envs,
                        "volume_mounts": workload.volume_mounts(),
                        "resources": {
                            "limits": {"cpu": scaling.cpu, "memory": scaling.memory},
                            "cpu_idle": not args.cpu_always_allocated,
                            "startup_cpu_boost": True,
                        },
                        "startup_probe": {
                            "http_get": probe,
                            "initial_delay_seconds": 0,
                            "period_seconds": 3,
                            "timeout_seconds": 2,
                            "failure_threshold": 20,
                        },
                        "liveness_probe": {
                            "http_get": probe,
                            "period_seconds": 30,
                            "timeout_seconds": 5,
                            "failure_threshold": 3,
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        gcp.cloudrunv2.ServiceIamMember(
            f"{name}-public-invoke",
            project=args.project,
            location=args.region,
            name=service.name,
            role="roles/run.invoker",
            member="allUsers",
            opts=pulumi.ResourceOptions(parent=self),
        )
        for index, member in enumerate(args.invokers):
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{index}",
                project=args.project,
                location=args.region,
                name=service.name,
                role="roles/run.invoker",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.url = service.uri
        self.name = service.name
        self.register_outputs({"url": self.url, "name": self.name})
