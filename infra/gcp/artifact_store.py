"""Where deploy artifacts live: a Docker repository and a private bucket."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp


@dataclass
class ArtifactStoreArgs:
    """Inputs of :class:`ArtifactStore`."""

    project: pulumi.Input[str]
    region: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    """Fixed name (see ``naming.artifact_bucket_name``) so the app stack can name it too."""
    repository_id: pulumi.Input[str] = "syncbot"
    keep_untagged_days: int = 30
    """Untagged image versions older than this are cleaned up; tagged ones are kept."""
    protect: bool = False
    """Production: a destroy or rename fails instead of deleting images and artifacts."""


class ArtifactStore(pulumi.ComponentResource):
    """Artifact Registry (Docker) for the app image and a GCS bucket for other artifacts.

    The bucket uses uniform bucket-level access (no object ACLs), enforced public access
    prevention and object versioning, so a bad upload can be rolled back.
    """

    repository_url: pulumi.Output[str]
    """``<region>-docker.pkg.dev/<project>/<repository>``: the image name prefix."""
    repository_name: pulumi.Output[str]
    bucket_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:ArtifactStore", name, None, opts)
        repository = gcp.artifactregistry.Repository(
            f"{name}-images",
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            description="syncbot container images",
            docker_config={"immutable_tags": False},
            cleanup_policies=[
                {
                    "id": "delete-old-untagged",
                    "action": "DELETE",
                    "condition": {
                        "tag_state": "UNTAGGED",
                        "older_than": f"{args.keep_untagged_days * 86400}s",
                    },
                }
            ],
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        bucket = gcp.storage.Bucket(
            f"{name}-artifacts",
            name=args.bucket_name,
            project=args.project,
            location=args.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            force_destroy=False,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        self.repository_name = repository.name
        self.repository_url = pulumi.Output.concat(
            repository.location,
            "-docker.pkg.dev/",
            repository.project,
            "/",
            repository.repository_id,
        )
        self.bucket_name = bucket.name
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "repository_name": self.repository_name,
                "bucket_name": self.bucket_name,
            }
        )
