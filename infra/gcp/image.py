"""The app's container image, built from the repository's Dockerfile and pushed by digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ContainerImageArgs:
    """Inputs of :class:`ContainerImage`."""

    repository_url: pulumi.Input[str]
    """``<region>-docker.pkg.dev/<project>/<repository>`` (see ``ArtifactStore``)."""
    tag: pulumi.Input[str]
    """A moving, human-readable tag (the stack name); deployments use the digest."""
    context: str = str(REPO_ROOT)
    dockerfile: str = str(REPO_ROOT / "Dockerfile")


class ContainerImage(pulumi.ComponentResource):
    """Builds the Dockerfile for linux/amd64 and pushes it to Artifact Registry.

    :attr:`ref` is ``<name>:<tag>@sha256:…``: Cloud Run and the migration job pin the exact
    bytes that were built, so a re-pushed tag never changes a running revision.
    """

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:ContainerImage", name, None, opts)
        repository = pulumi.Output.from_input(args.repository_url)
        registry = repository.apply(lambda url: url.split("/", 1)[0])
        # The deploying identity's own short-lived token; nothing long-lived reaches BuildKit.
        token = gcp.organizations.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).access_token
        image = docker_build.Image(
            f"{name}-image",
            context={"location": args.context},
            dockerfile={"location": args.dockerfile},
            platforms=[docker_build.Platform.LINUX_AMD64],
            tags=[pulumi.Output.concat(repository, "/syncbot:", args.tag)],
            push=True,
            registries=[
                {
                    "address": registry,
                    "username": "oauth2accesstoken",
                    "password": pulumi.Output.secret(token),
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = image.ref
        self.digest = image.digest
        self.register_outputs({"ref": self.ref, "digest": self.digest})
