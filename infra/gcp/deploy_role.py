"""GitHub Actions deploy identity: Workload Identity Federation and a deploy service account."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.gcp.iam_conditions import names_starting_with
from infra.gcp.naming import account_member

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

# What `pulumi up` of the app stack may do on the project itself: read it, call APIs, attach to
# the bootstrap stack's subnet. Nothing here administers anything.
DEPLOY_PROJECT_ROLES: tuple[str, ...] = (
    "roles/browser",  # read the project (number) for the service URL
    "roles/serviceusage.serviceUsageConsumer",
    "roles/compute.networkUser",  # Cloud SQL private IP and Direct VPC egress on the subnet
    # The uptime check and alert policies (their names are generated ids, which no condition
    # can confine; these roles touch monitoring configuration only).
    "roles/monitoring.uptimeCheckConfigEditor",
    "roles/monitoring.alertPolicyEditor",
    "roles/monitoring.notificationChannelEditor",
)
# Admin roles the app stack needs, each confined by an IAM condition to the resources named
# for the deployment (plus the project itself, where the API checks creation). Only services
# that recognize resource attributes in conditions can be confined this way
# (https://cloud.google.com/iam/docs/conditions-resource-attributes lists Secret Manager and
# Cloud SQL, not Cloud Run, Cloud Tasks or Cloud Scheduler, whose conditions would deny).
# role -> resource name prefixes, as format strings over project, number, region and prefix.
DEPLOY_CONFINED_ROLES: dict[str, tuple[str, ...]] = {
    "roles/cloudsql.admin": ("projects/{project}/instances/{prefix}",),
    "roles/secretmanager.admin": ("projects/{number}/secrets/{prefix}-",),
}
# For the services that cannot be confined, a custom role with exactly what the app stack calls
# instead of their admin roles: no `*` permissions, no tasks or job runs beyond the migration,
# no deleting other workloads' executions. Project-wide, because these APIs offer nothing finer.
DEPLOY_CUSTOM_PERMISSIONS: tuple[str, ...] = (
    "run.services.create",
    "run.services.get",
    "run.services.update",
    "run.services.delete",
    "run.services.getIamPolicy",
    "run.services.setIamPolicy",
    "run.jobs.create",
    "run.jobs.get",
    "run.jobs.update",
    "run.jobs.delete",
    "run.jobs.run",
    "run.executions.get",
    "run.operations.get",
    "run.revisions.get",
    "cloudtasks.queues.create",
    "cloudtasks.queues.get",
    "cloudtasks.queues.update",
    "cloudtasks.queues.delete",
    "cloudtasks.queues.getIamPolicy",
    "cloudtasks.queues.setIamPolicy",
    "cloudscheduler.jobs.create",
    "cloudscheduler.jobs.get",
    "cloudscheduler.jobs.update",
    "cloudscheduler.jobs.delete",
    "cloudscheduler.jobs.enable",
    "cloudscheduler.jobs.pause",
)
# A pull request's preview reads the project and nothing else: it plans, it never applies.
PREVIEW_PROJECT_ROLES: tuple[str, ...] = ("roles/browser",)

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


def github_pull_request_condition(repository: str) -> str:
    """The condition of the preview provider: pull request runs of one repository only.

    Fork pull requests get no OIDC token at all, so this admits the repository's own branches'
    pull requests, and only in pull_request runs (``event_name``), never a push or a deploy.
    """
    if not _REPOSITORY.fullmatch(repository):
        raise ValueError(f"repository must be owner/name, got {repository!r}")
    return f"assertion.repository == '{repository}' && assertion.event_name == 'pull_request'"


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
    preview_account_id: str | None = None
    """The read-only account pull request previews impersonate (``None``: none)."""
    artifact_repository: pulumi.Input[str] | None = None
    """Artifact Registry repository name (``projects/…/repositories/…``) to push images to."""
    artifact_repository_location: pulumi.Input[str] | None = None
    artifact_bucket: pulumi.Input[str] | None = None
    project_roles: Sequence[str] = field(default_factory=lambda: list(DEPLOY_PROJECT_ROLES))
    confined_roles: dict[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    """Admin roles on the project, each with the resource name prefixes that confine it."""
    custom_permissions: Sequence[str] = ()
    """Permissions of a custom role granted on the project (empty: no custom role)."""
    custom_role_id: str = "syncbotDeployer"
    acts_as: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Full names (``projects/P/serviceAccounts/E``) of the workload accounts the deploy may
    run Cloud Run and Scheduler as: ``serviceAccountUser`` on each, never on the project."""


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
    preview_account_email: pulumi.Output[str] | None
    preview_provider_name: pulumi.Output[str] | None
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
                "attribute.event_name": "assertion.event_name",
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
        # Only tokens of the deploy context (its ref or environment) may act as the deploy
        # account: a pull request token passes the preview provider, never this binding.
        context = (
            f"attribute.environment/{args.environment}"
            if args.environment is not None
            else f"attribute.ref/{args.ref}"
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-wif-user",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pool.name.apply(
                lambda pool_name: f"principalSet://iam.googleapis.com/{pool_name}/{context}"
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
        for role, prefixes in args.confined_roles.items():
            gcp.projects.IAMMember(
                f"{name}-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=member,
                condition={
                    "title": "syncbot deployment resources",
                    "description": "only resources named for this deployment",
                    "expression": pulumi.Output.all(*prefixes).apply(names_starting_with),
                },
                opts=child,
            )
        if args.custom_permissions:
            custom = gcp.projects.IAMCustomRole(
                f"{name}-custom-role",
                project=args.project,
                role_id=args.custom_role_id,
                title="syncbot deployer (Cloud Run, Cloud Tasks, Cloud Scheduler)",
                permissions=sorted(args.custom_permissions),
                stage="GA",
                opts=child,
            )
            # The role's name follows from project and id: known at preview, so the pack judges
            # this grant on the pull request.
            gcp.projects.IAMMember(
                f"{name}-custom",
                project=args.project,
                role=pulumi.Output.concat(
                    "projects/", args.project, "/roles/", args.custom_role_id
                ),
                member=member,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[custom]),
            )
        for index, target in enumerate(args.acts_as):
            gcp.serviceaccount.IAMMember(
                f"{name}-act-as-{index}",
                service_account_id=target,
                role="roles/iam.serviceAccountUser",
                member=member,
                opts=child,
            )
        self.preview_account_email = self.preview_provider_name = None
        if args.preview_account_id is not None:
            self._preview(name, args, pool, child)
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
                "preview_account_email": self.preview_account_email,
                "preview_provider_name": self.preview_provider_name,
                "attribute_condition": self.attribute_condition,
            }
        )

    def _preview(
        self,
        name: str,
        args: DeployRoleArgs,
        pool: gcp.iam.WorkloadIdentityPool,
        child: pulumi.ResourceOptions,
    ) -> None:
        """A second provider for pull request runs and a read-only account only they reach."""
        assert args.preview_account_id is not None
        provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-preview-provider",
            project=args.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=f"{args.provider_id}-pr",
            display_name="GitHub pull requests",
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.event_name": "assertion.event_name",
            },
            attribute_condition=github_pull_request_condition(args.repository),
            opts=child,
        )
        account = gcp.serviceaccount.Account(
            f"{name}-preview-sa",
            project=args.project,
            account_id=args.preview_account_id,
            display_name="syncbot preview (GitHub pull requests, read-only)",
            opts=child,
        )
        gcp.serviceaccount.IAMMember(
            f"{name}-preview-wif-user",
            service_account_id=account.name,
            role="roles/iam.workloadIdentityUser",
            member=pool.name.apply(
                lambda pool_name: (
                    f"principalSet://iam.googleapis.com/{pool_name}/attribute.event_name/"
                    "pull_request"
                )
            ),
            opts=child,
        )
        member = account.email.apply(account_member)
        for role in PREVIEW_PROJECT_ROLES:
            gcp.projects.IAMMember(
                f"{name}-preview-{role.removeprefix('roles/').replace('.', '-')}",
                project=args.project,
                role=role,
                member=member,
                opts=child,
            )
        self.preview_account_email = account.email
        self.preview_provider_name = provider.name
