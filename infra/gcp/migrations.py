"""Schema migrations as a deploy step: a Cloud Run job executed once per image."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.contract import CONTAINER_MIGRATE_COMMAND
from infra.gcp.workload import Workload

# Cloud Run caps job name + execution token below 63 characters.
_MAX_JOB_AND_TOKEN = 62


def execution_token(digest: str, job_name: str) -> str:
    """The execution token for an image: one migration run per distinct digest.

    Args:
        digest: The image digest (``sha256:…``).
        job_name: The Cloud Run job's name (the token is a suffix of the execution name).

    Returns:
        A lowercase hex prefix of the digest, as long as the name limit allows (at most 16).

    Raises:
        ValueError: If the digest is not a sha256 digest or the job name leaves no room.
    """
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise ValueError(f"expected a sha256 image digest, got {digest!r}")
    room = min(16, _MAX_JOB_AND_TOKEN - len(job_name) - 1)
    if room < 8:
        raise ValueError(f"job name {job_name!r} is too long for an execution token")
    return value[:room].lower()


@dataclass
class MigrationsArgs:
    """Inputs of :class:`Migrations`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    job_name: str
    workload: Workload
    image_digest: pulumi.Input[str]
    timeout_seconds: int = 600


class Migrations(pulumi.ComponentResource):
    """A Cloud Run job running ``syncbot migrate`` with the service's image and env.

    ``run_execution_token`` changes with the image digest, so each new image runs the job once
    and the deploy waits for it to succeed before anything depending on :attr:`job` (the
    service) rolls out; re-running ``pulumi up`` with the same image runs nothing.
    """

    job: gcp.cloudrunv2.Job
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: MigrationsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Migrations", name, None, opts)
        workload = args.workload
        self.job = gcp.cloudrunv2.Job(
            f"{name}-job",
            project=args.project,
            location=args.region,
            name=args.job_name,
            deletion_protection=False,
            run_execution_token=pulumi.Output.from_input(args.image_digest).apply(
                lambda digest: execution_token(digest, args.job_name)
            ),
            template={
                "task_count": 1,
                "parallelism": 1,
                "template": {
                    "service_account": workload.service_account_email,
                    "max_retries": 1,
                    "timeout": f"{args.timeout_seconds}s",
                    "vpc_access": workload.vpc_access(),
                    "volumes": workload.volumes(),
                    "containers": [
                        {
                            "image": workload.image,
                            "commands": [CONTAINER_MIGRATE_COMMAND[0]],
                            "args": list(CONTAINER_MIGRATE_COMMAND[1:]),
                            "envs": workload.envs,
                            "volume_mounts": workload.volume_mounts(),
                        }
                    ],
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.job.name
        self.register_outputs({"name": self.name})
