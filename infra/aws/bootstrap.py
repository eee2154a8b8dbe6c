"""``Bootstrap``: the one-time stack CI needs before it can deploy the app stack."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.artifact_store import ArtifactStore, ArtifactStoreArgs, artifact_bucket_name
from infra.aws.deploy_role import DeployRole, DeployRoleArgs
from infra.contract import (
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_DEPLOY_ROLE,
    OUTPUT_REGION,
    OUTPUT_SERVICE_URL,
)


@dataclass
class BootstrapArgs:
    """Inputs of :class:`Bootstrap`."""

    region: str
    github_subject: str
    app_prefix: str
    github_repository: str | None = None
    """``owner/name``: its pull requests get a read-only preview role."""
    existing_oidc_provider_arn: str | None = None
    force_destroy_artifacts: bool = False


class Bootstrap(pulumi.ComponentResource):
    """Deploy role (GitHub OIDC) and artifact store; exports the CI outputs."""

    outputs: dict[str, pulumi.Output[str]]
    """The contract's bootstrap outputs by name."""

    def __init__(
        self, name: str, args: BootstrapArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:Bootstrap", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        bucket_name = identity.account_id.apply(
            lambda account: artifact_bucket_name(name, account, args.region)
        )
        self.artifacts = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(
                force_destroy=args.force_destroy_artifacts,
                protect=not args.force_destroy_artifacts,
                bucket_name=bucket_name,
            ),
            opts=child,
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        bucket_arn = pulumi.Output.all(partition.partition, bucket_name).apply(
            lambda values: f"arn:{values[0]}:s3:::{values[1]}"
        )
        self.deploy_role = DeployRole(
            f"{name}-deploy",
            DeployRoleArgs(
                subject=args.github_subject,
                app_prefix=args.app_prefix,
                artifact_bucket_arn=bucket_arn,
                region=args.region,
                existing_provider_arn=args.existing_oidc_provider_arn,
                preview_subject=(
                    f"repo:{args.github_repository}:pull_request"
                    if args.github_repository
                    else None
                ),
            ),
            opts=child,
        )
        self.outputs = {
            OUTPUT_DEPLOY_ROLE: self.deploy_role.role_arn,
            OUTPUT_ARTIFACT_BUCKET: self.artifacts.bucket_name,
            OUTPUT_REGION: pulumi.Output.from_input(args.region),
            # The HTTP API's URL is only known once the app stack exists; it exports it.
            OUTPUT_SERVICE_URL: pulumi.Output.from_input(""),
        }
        if self.deploy_role.preview_role_arn is not None:
            self.outputs["preview_role"] = self.deploy_role.preview_role_arn
        self.register_outputs(dict(self.outputs))
