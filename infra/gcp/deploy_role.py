"""GitHub Actions deploy identity: Workload Identity Federation and a deploy service account."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.gcp.naming import account_member

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# What `pulumi up` of the app stack creates or changes, and nothing more: no project IAM admin,
# no service-usage admin (the bootstrap stack enables APIs), no owner/editor.
DEPLOY_PROJECT_ROLES: tuple[str, ...] = (
    "roles/browser",  # read the project (number) for the service URL
    "roles/cloudscheduler.admin",
    "roles/cloudtasks.admin",  # the delivery queue and its queue-level enqueuer binding
    "roles/cloudsql.admin",
    "roles/compute.networkAdmin",
    "roles/iam.serviceAccountAdmin",  # the runtime and scheduler service accounts
    "roles/iam.serviceAccountUser",  # deploy Cloud Run / Scheduler acting as those accounts
    "roles/run.admin",
    "roles/secretmanager.admin",  # secrets and their per-secret accessor bindings
    "roles/servicenetworking.networksAdmin",
    "roles/serviceusage.serviceUsageConsumer",
)

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_REF = re.compile(r"^refs/(heads|tags)/[A-Za-z0-9_./-]+$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def github_attribute_condition(
    repository: str, *, ref: str | None = None, environment: str | None = None
) -> str:
    """The CEL condition a GitHub OIDC token must meet to be exchanged at all.

    Args:
        repository: ``owner/name`` of the one repository allowed to deploy.
        ref: Full git ref (``refs/heads/main``) the workflow must run on.
        environment: GitHub environment the deploy job must declare.

    Returns:
        A condition pinning the repository and the ref and/or environment.

    Raises:
        ValueError: If the repository is not ``owner/name``, neither a ref nor an environment
            is given (any branch of the repository could deploy), or a value has characters
            that do not belong in it.
    """
    if not _REPOSITORY.fullmatch(repository):
        raise ValueError(f"repository must be owner/name, got {repository!r}")
    if ref is None and environment is None:
        raise ValueError("pin the deploy to a ref or an environment, not a whole repository")
    clauses = [f"assertion.repository == '{repository}'"]
    if ref is not None:
        if not _REF.fullmatch(ref):
            raise ValueError(f"ref must be a full git ref like refs/heads/main, got {ref!r}")
        clauses.append(f"assertion.ref == '{ref}'")
    if environment is not None:
        if not _ENVIRONMENT.fullmatch(environment):
            raise ValueError(f"invalid GitHub environment name {environment!r}")
        clauses.append(f"assertion.environment == '{environment}'")
    return " && ".join(clauses)


@dataclass
class DeployRoleArgs:
    """Inputs of :class:`DeployRole`."""

    project: pulumi.Input[str]
    repository: str
    """``owner/name`` of the GitHub repository whose workflows deploy."""
    ref: str | None = "refs/heads/main"
    environment: str | None = None
    pool_id: str = "github-actions"
    provider_id: str = "github"
    account_id: str = "syncbot-deploy"
    artifact_repository: pulumi.Input[str] | None = None
    """Artifact Registry repository name (``projects/…/repositories/…``) to push images to."""
    artifact_repository_location: pulumi.Input[str] | None = None
    artifact_bucket: pulumi.Input[str] | None = None
    project_roles: Sequence[str] = field(default_factory=lambda: list(DEPLOY_PROJECT_ROLES))


class DeployRole(pulumi.ComponentResource):
    """WIF pool and GitHub provider, the deploy service account and who may impersonate it.

    The provider refuses every token not matching :func:`github_attribute_condition`, and the
    ``workloadIdentityUser`` binding names the principal set of that one repository, so a fork
    or another repository in the organisation cannot deploy. Writes to the image repository and
    the artifact bucket are granted on those resources only.
    """

    service_account_email: pulumi.Output[str]
    provider_name: pulumi.Output[str]
    """Full provider name: ``workload_identity_provider`` of google-github-actions/auth."""
    attribute_condition: str

    def __init__(
        self, name: str, args: DeployRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:DeployRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.attribute_condition = github_attribute_condition(
            args.repository, ref=args.ref, environment=args.environment
        )
        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            project=args.project,
            workload_identity_pool_id=args.pool_id,
            display_name="GitHub Actions",
            description=f"GitHub Actions deploys of {args.repository}",
            opts=child,
        )
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            project=args.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name="GitHub",
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.ref": "assertion.ref",
                "attribute.environment": "assertion.environment",
            },
            attribute_condition=self.attribute_condition,
            opts=child,
        )
        account = gcp.serviceaccount.Account(
            f"{name}-sa",
            project=args.project,
            account_id=args.account_id,
            display_name="syncbot deploy (GitHub Actions)",
            opts=child,
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-wif-user",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pool.name.apply(
                lambda pool_name: (
                    f"principalSet://iam.googleapis.com/{pool_name}"
                    f"/attribute.repository/{args.repository}"
                )
            ),
            opts=child,
        )
        member = account.email.apply(account_member)
        for role in args.project_roles:
            gcp.projects.IAMMember(
                f"{name}-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=member,
                opts=child,
            )
        if args.artifact_repository is not None:
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-image-writer",
                project=args.project,
                location=args.artifact_repository_location,
                repository=args.artifact_repository,
                role="roles/artifactregistry.writer",
                member=member,
                opts=child,
            )
        if args.artifact_bucket is not None:
            gcp.storage.BucketIAMMember(
                f"{name}-bucket-writer",
                bucket=args.artifact_bucket,
                role="roles/storage.objectAdmin",
                member=member,
                opts=child,
            )
        self.service_account_email = account.email
        self.provider_name = provider.name
        self.register_outputs(
            {
                "service_account_email": self.service_account_email,
                "provider_name": self.provider_name,
                "attribute_condition": self.attribute_condition,
            }
        )
