"""The GCP bootstrap stack kind: APIs, artifact store, network, workload accounts and the CI
identities (deploy and pull request preview).

Everything that is project administration lives here, run once by an administrator, so the
deploy account CI uses for the app stack needs no admin role over the project.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.artifact_store import ArtifactStore, ArtifactStoreArgs
from infra.gcp.deploy_role import (
    DEPLOY_CONFINED_ROLES,
    DEPLOY_CUSTOM_PERMISSIONS,
    DeployRole,
    DeployRoleArgs,
)
from infra.gcp.naming import (
    account_id,
    artifact_bucket_name,
    custom_role_id,
    network_name,
    subnet_name,
    wif_pool_id,
)
from infra.gcp.network import PrivateNetwork, PrivateNetworkArgs
from infra.gcp.project_services import ProjectServices, ProjectServicesArgs
from infra.gcp.service import service_url
from infra.gcp.workload_accounts import WorkloadAccounts, WorkloadAccountsArgs


@dataclass
class BootstrapArgs:
    """Inputs of :class:`Bootstrap`."""

    project: str
    region: str
    github_repository: str
    """``owner/name`` allowed to deploy."""
    github_ref: str | None = "refs/heads/main"
    github_environment: str | None = None
    prefix: str = "syncbot"
    """Deployment name prefix; the app stack of the same deployment uses the same one."""
    pool_id: str | None = None
    """Workload Identity pool id; default one per deployment (:func:`wif_pool_id`)."""
    production: bool = False
    """Protect what the app stack cannot recreate (the network its database is peered on)."""


class Bootstrap(pulumi.ComponentResource):
    """Everything CI needs before the first app deploy, created once by an administrator."""

    services: ProjectServices
    artifacts: ArtifactStore
    network: PrivateNetwork
    workloads: WorkloadAccounts
    deploy_role: DeployRole
    service_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: BootstrapArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:gcp:Bootstrap", name, None, opts)
        self.services = ProjectServices(
            f"{name}-apis",
            ProjectServicesArgs(project=args.project),
            opts=pulumi.ResourceOptions(parent=self),
        )
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=[self.services])
        self.artifacts = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(
                project=args.project,
                region=args.region,
                repository_id=args.prefix,
                bucket_name=artifact_bucket_name(args.project, args.prefix),
                protect=args.production,
            ),
            opts=after_apis,
        )
        self.network = PrivateNetwork(
            f"{name}-net",
            PrivateNetworkArgs(
                project=args.project,
                region=args.region,
                network_name=network_name(args.prefix),
                subnet_name=subnet_name(args.prefix),
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.services], protect=args.production
            ),
        )
        self.workloads = WorkloadAccounts(
            f"{name}-accounts",
            WorkloadAccountsArgs(project=args.project, prefix=args.prefix),
            opts=after_apis,
        )
        number = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).number
        confined = {
            role: [
                number.apply(
                    lambda n, p=pattern: p.format(
                        project=args.project, number=n, region=args.region, prefix=args.prefix
                    )
                )
                for pattern in patterns
            ]
            for role, patterns in DEPLOY_CONFINED_ROLES.items()
        }
        self.deploy_role = DeployRole(
            f"{name}-deploy",
            DeployRoleArgs(
                project=args.project,
                repository=args.github_repository,
                ref=args.github_ref,
                environment=args.github_environment,
                pool_id=args.pool_id or wif_pool_id(args.prefix),
                account_id=account_id(args.prefix, "deploy"),
                preview_account_id=account_id(args.prefix, "preview"),
                artifact_repository=self.artifacts.repository_name,
                artifact_repository_location=args.region,
                artifact_bucket=self.artifacts.bucket_name,
                confined_roles=confined,
                custom_permissions=DEPLOY_CUSTOM_PERMISSIONS,
                custom_role_id=custom_role_id(args.prefix),
                acts_as=[a.name for a in self.workloads.accounts.values()],
            ),
            opts=after_apis,
        )
        self.service_url = number.apply(
            lambda project_number: service_url(args.prefix, project_number, args.region)
        )
        self.register_outputs(
            {
                "deploy_role": self.deploy_role.service_account_email,
                "workload_identity_provider": self.deploy_role.provider_name,
                "preview_service_account": self.deploy_role.preview_account_email,
                "preview_workload_identity_provider": self.deploy_role.preview_provider_name,
                "artifact_bucket": self.artifacts.bucket_name,
                "image_repository": self.artifacts.repository_url,
                "service_url": self.service_url,
            }
        )
