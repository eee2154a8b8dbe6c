"""``DeployRole``: the identity GitHub Actions assumes (OIDC) to run ``pulumi up``."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.deploy_policy import deploy_policy
from infra.aws.iam import (
    GITHUB_OIDC_HOST,
    GITHUB_OIDC_URL,
    STS_AUDIENCE,
    allow,
    github_trust_policy,
    policy,
)


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
    preview_subject: str | None = None
    """The OIDC ``sub`` of pull request runs (``repo:O/R:pull_request``): gets a read-only
    preview role; ``None`` creates none."""
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
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        trust_after: list[pulumi.Resource] = []
        if args.existing_provider_arn is None:
            self.provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                opts=child,
            )
            trust_after.append(self.provider)
            # The provider's ARN follows from the account and the issuer host, so the trust
            # policy is known at preview and the policy pack judges it on the pull request.
            self.provider_arn = pulumi.Output.all(partition.partition, identity.account_id).apply(
                lambda values: f"arn:{values[0]}:iam::{values[1]}:oidc-provider/{GITHUB_OIDC_HOST}"
            )
        else:
            self.provider_arn = pulumi.Output.from_input(args.existing_provider_arn)
        self.roles: dict[str, aws.iam.Role] = {}
        self.role = self._role(f"{name}-role", args.subject, args, trust_after)
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
        self.preview_role_arn: pulumi.Output[str] | None = None
        if args.preview_subject is not None:
            # Pull request previews run without a GitHub environment, so their token's subject
            # is `repo:O/R:pull_request`, which the deploy role must never trust. They get a
            # role of their own that can read what a preview reads and change nothing.
            preview = self._role(f"{name}-preview-role", args.preview_subject, args, trust_after)
            aws.iam.RolePolicy(
                f"{name}-preview-policy",
                role=preview.id,
                policy=json.dumps(preview_policy()),
                opts=child,
            )
            self.preview_role_arn = preview.arn
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "provider_arn": self.provider_arn,
                "preview_role_arn": self.preview_role_arn,
            }
        )

    def _role(
        self, name: str, subject: str, args: DeployRoleArgs, after: list[pulumi.Resource]
    ) -> aws.iam.Role:
        return aws.iam.Role(
            name,
            description=f"GitHub Actions ({subject})",
            assume_role_policy=self.provider_arn.apply(
                lambda arn: json.dumps(github_trust_policy(arn, subject))
            ),
            max_session_duration=args.max_session_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )


def preview_policy() -> dict[str, object]:
    """What ``pulumi preview`` of an app stack reads from AWS: the provider's lookups only.

    A preview without refresh diffs the program against the state in the backend; on AWS it
    calls ``sts:GetCallerIdentity`` (needs no permission), the partition and region lookups
    (local) and the availability zones. Nothing here reads a secret value or an object.
    """
    return policy(allow(["ec2:DescribeAvailabilityZones", "ec2:DescribeRegions"], ["*"]))
