"""The GCP program: build the bootstrap or app stack kind from the typed stack config."""

from __future__ import annotations

import pulumi

from infra.contract import (
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_DEPLOY_ROLE,
    OUTPUT_REGION,
    OUTPUT_SERVICE_URL,
)
from infra.gcp.app_stack import App, AppArgs
from infra.gcp.bootstrap import Bootstrap, BootstrapArgs
from infra.gcp.naming import account_id, artifact_bucket_name, image_repository_url
from infra.gcp.service import Scaling
from stacks.config import GcpConfig, StackConfig


def build(config: StackConfig) -> dict[str, pulumi.Output[str]]:
    """Declare the stack's resources and return its exports.

    Both kinds export the contract outputs (``deploy_role``, ``artifact_bucket``, ``region``,
    ``service_url``): names are deterministic, so each kind can state the other's without a
    stack reference. Nothing secret is exported.

    Args:
        config: The validated stack config (provider ``gcp``).

    Returns:
        Export name to value.

    Raises:
        ValueError: If the config is not a GCP config.
    """
    if config.provider != "gcp" or config.gcp is None:
        raise ValueError("stacks.gcp.build needs a gcp stack config")
    gcp = config.gcp
    prefix = config.name_prefix
    if config.kind == "bootstrap":
        return _bootstrap(config, gcp, prefix)
    return _app(config, gcp, prefix)


def _bootstrap(config: StackConfig, gcp: GcpConfig, prefix: str) -> dict[str, pulumi.Output[str]]:
    if config.github is None:
        raise ValueError("a bootstrap stack needs githubRepository")
    boot = Bootstrap(
        prefix,
        BootstrapArgs(
            project=gcp.project,
            region=gcp.region,
            github_repository=config.github.repository,
            github_ref=config.github.ref,
            github_environment=config.github.environment,
            prefix=prefix,
            pool_id=gcp.wif_pool_id,
            production=config.production,
        ),
    )
    return {
        OUTPUT_DEPLOY_ROLE: boot.deploy_role.service_account_email,
        OUTPUT_ARTIFACT_BUCKET: boot.artifacts.bucket_name,
        OUTPUT_REGION: pulumi.Output.from_input(gcp.region),
        OUTPUT_SERVICE_URL: boot.service_url,
        "workload_identity_provider": boot.deploy_role.provider_name,
        "preview_service_account": boot.deploy_role.preview_account_email,
        "preview_workload_identity_provider": boot.deploy_role.preview_provider_name,
        "image_repository": boot.artifacts.repository_url,
    }


def _app(config: StackConfig, gcp: GcpConfig, prefix: str) -> dict[str, pulumi.Output[str]]:
    backend = config.database.backend
    if backend == "sqlite":
        raise ValueError("Cloud Run needs postgresql or mysql")
    service = config.service
    app = App(
        prefix,
        AppArgs(
            project=gcp.project,
            region=gcp.region,
            production=config.production,
            database_backend=backend,
            image_repository=gcp.image_repository
            or (
                pulumi.StackReference(config.bootstrap_stack).require_output("image_repository")
                if config.bootstrap_stack
                else image_repository_url(gcp.region, gcp.project, prefix)
            ),
            image_tag=gcp.image_tag,
            config=dict(config.settings),
            secrets=config.secret_outputs(),
            existing_database=config.database.mode == "existing",
            database_tier=gcp.cloud_sql_tier,
            database_edition=gcp.cloud_sql_edition,
            database_backup_days=config.database.backup_days,
            service_name=prefix,
            alert_email=gcp.alert_email,
            scaling=Scaling(
                min_instances=service.min_instances,
                max_instances=service.max_instances,
                concurrency=service.concurrency,
                memory=f"{service.memory_mb}Mi",
                timeout_seconds=service.timeout_seconds,
            ),
        ),
    )
    deployer = f"{account_id(prefix, 'deploy')}@{gcp.project}.iam.gserviceaccount.com"
    return {
        OUTPUT_DEPLOY_ROLE: pulumi.Output.from_input(deployer),
        OUTPUT_ARTIFACT_BUCKET: pulumi.Output.from_input(
            artifact_bucket_name(gcp.project, prefix)
        ),
        OUTPUT_REGION: pulumi.Output.from_input(gcp.region),
        OUTPUT_SERVICE_URL: app.service_url,
        "image_ref": app.image_ref,
        "service_account": app.service_account_email,
        "migration_job": app.migration_job,
        "delivery_queue": app.delivery_queue,
    }
