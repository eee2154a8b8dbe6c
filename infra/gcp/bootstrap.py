"""The GCP bootstrap stack kind: APIs, artifact store and the CI deploy identity."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.artifact_store import ArtifactStore, ArtifactStoreArgs
from infra.gcp.deploy_role import DeployRole, DeployRoleArgs
from infra.gcp.naming import account_id, artifact_bucket_name
from infra.gcp.project_services import ProjectServices, ProjectServicesArgs
from infra.gcp.service import service_url


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
    pool_id: str = "github-actions"


class Bootstrap(pulumi.ComponentResource):
    """Everything CI needs before the first app deploy, created once by an administrator."""

    services: ProjectServices
    artifacts: ArtifactStore
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
            ),
            opts=after_apis,
        )
        self.deploy_role = DeployRole(
            f"{name}-deploy",
            DeployRoleArgs(
                project=args.project,
                repository=args.github_repository,
                ref=args.github_ref,
                environment=args.github_environment,
                pool_id=args.pool_id,
                account_id=account_id(args.prefix, "deploy"),
                artifact_repository=self.artifacts.repository_name,
                artifact_repository_location=args.region,
                artifact_bucket=self.artifacts.bucket_name,
            ),
            opts=after_apis,
        )
        number = gcp.organizations.get_project_output(
            project_id=args.project, opts=pulumi.InvokeOutputOptions(parent=self)
        ).number
        self.service_url = number.apply(
            lambda project_number: service_url(args.prefix, project_number, args.region)
        )
        self.register_outputs(
            {
                "deploy_role": self.deploy_role.service_account_email,
                "workload_identity_provider": self.deploy_role.provider_name,
                "artifact_bucket": self.artifacts.bucket_name,
                "image_repository": self.artifacts.repository_url,
                "service_url": self.service_url,
            }
        )
