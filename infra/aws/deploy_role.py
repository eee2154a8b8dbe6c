"""``DeployRole``: the identity GitHub Actions assumes (OIDC) to run ``pulumi up``."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.deploy_policy import deploy_policy
from infra.aws.iam import GITHUB_OIDC_URL, STS_AUDIENCE, github_trust_policy


@dataclass
class DeployRoleArgs:
    """Inputs of :class:`DeployRole`."""

    subject: str
    """The exact OIDC ``sub`` CI tokens must carry (see ``GitHubTrust.subject``)."""
    app_prefix: str
    """Name prefix of the app stack's resources, which bounds the role's permissions."""
    artifact_bucket_arn: pulumi.Input[str]
    region: str
    existing_provider_arn: str | None = None
    """Reuse the account's GitHub OIDC provider (there can be only one per URL)."""
    max_session_seconds: int = 3600


class DeployRole(pulumi.ComponentResource):
    """GitHub OIDC provider (created or reused) and a least-privilege deploy role."""

    role_arn: pulumi.Output[str]
    provider_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeployRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:DeployRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.existing_provider_arn is None:
            self.provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=child,
            )
            self.provider_arn = self.provider.arn
        else:
            self.provider_arn = pulumi.Output.from_input(args.existing_provider_arn)
        subject = args.subject
        self.role = aws.iam.Role(
            f"{name}-role",
            description=f"GitHub Actions deploys ({subject})",
            assume_role_policy=self.provider_arn.apply(
                lambda arn: json.dumps(github_trust_policy(arn, subject))
            ),
            max_session_duration=args.max_session_seconds,
            opts=child,
        )
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        document = pulumi.Output.all(
            partition.partition, identity.account_id, args.artifact_bucket_arn
        ).apply(
            lambda values: json.dumps(
                deploy_policy(
                    partition=values[0],
                    region=args.region,
                    account_id=values[1],
                    prefix=args.app_prefix,
                    artifact_bucket_arn=values[2],
                )
            )
        )
        # One inline policy and no managed attachments: the role's whole power is in one place.
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=document, opts=child
        )
        self.role_arn = self.role.arn
        self.register_outputs({"role_arn": self.role_arn, "provider_arn": self.provider_arn})
