"""Turn a validated :class:`~stacks.config.StackConfig` into the AWS components of one stack."""

from __future__ import annotations

import base64
import zipfile
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.aws.app import App, AppArgs
from infra.aws.bootstrap import Bootstrap, BootstrapArgs
from infra.aws.database import DatabaseSizing
from infra.aws.deploy_policy import STACK_TAG
from infra.aws.service import Bundle
from infra.bundle import file_sha256
from infra.rds_ca import BUNDLE_MEMBER, LAMBDA_CA_PATH, CaBundleError, check_bundle
from stacks.config import StackConfig, StackConfigError

ROOT = Path(__file__).resolve().parent.parent


def app_prefix(config: StackConfig) -> str:
    """Name prefix of every app stack resource; the deploy role is scoped to it."""
    return f"{config.name_prefix}-app"


def build(config: StackConfig) -> dict[str, pulumi.Output[object]]:
    """Declares the stack's resources.

    Args:
        config: A validated AWS stack configuration.

    Returns:
        The stack exports by name (the contract output names among them).

    Raises:
        StackConfigError: when the configured bundle file does not exist.
    """
    assert config.aws is not None, "stacks.aws.build needs an AWS stack configuration"
    aws_config = config.aws
    # One provider with default tags: every resource carries the stack tag the deploy role's
    # EC2 and API Gateway permissions are conditioned on.
    provider = aws.Provider(
        f"{config.name_prefix}-aws",
        region=aws_config.region,
        default_tags={
            "tags": {
                STACK_TAG: app_prefix(config),
                "syncbot:environment": config.environment,
                "managed-by": "pulumi",
            }
        },
    )
    opts = pulumi.ResourceOptions(providers={"aws": provider})
    if config.kind == "bootstrap":
        assert config.github is not None  # required for bootstrap by the parser
        bootstrap = Bootstrap(
            config.name_prefix,
            BootstrapArgs(
                region=aws_config.region,
                github_subject=config.github.subject,
                github_repository=config.github.repository,
                app_prefix=app_prefix(config),
                existing_oidc_provider_arn=aws_config.existing_oidc_provider_arn,
                force_destroy_artifacts=not config.production,
            ),
            opts=opts,
        )
        return dict(bootstrap.outputs)

    bundle_path = Path(aws_config.bundle_path)
    if not bundle_path.is_absolute():
        bundle_path = ROOT / bundle_path
    if not bundle_path.is_file():
        raise StackConfigError(
            [
                f"syncbot:awsBundlePath: {bundle_path} does not exist; build it first with "
                f"`python -m infra.bundle --arch {config.service.architecture}`"
            ]
        )
    ca_path = None
    if config.database.mode == "create":
        _require_rds_ca(bundle_path, config)
        ca_path = LAMBDA_CA_PATH
    digest = file_sha256(bundle_path)
    bundle = Bundle(
        path=str(bundle_path),
        sha256=digest,
        base64_sha256=base64.b64encode(bytes.fromhex(digest)).decode(),
        artifact_bucket=aws_config.artifact_bucket
        or (
            pulumi.StackReference(config.bootstrap_stack).require_output("artifact_bucket")
            if config.bootstrap_stack
            else None
        ),
    )
    database = config.database
    backend = database.backend
    assert backend != "sqlite", "rejected by the config parser for app stacks"
    app = App(
        app_prefix(config),
        AppArgs(
            region=aws_config.region,
            production=config.production,
            backend=backend,
            bundle=bundle,
            config=dict(config.settings),
            secrets=config.secret_outputs(),
            existing_database=database.mode == "existing",
            database=DatabaseSizing(
                instance_class=database.instance_class,
                storage_gb=database.storage_gb,
                max_storage_gb=database.max_storage_gb,
                backup_days=database.backup_days,
                multi_az=database.multi_az,
                engine_version=database.engine_version,
            ),
            vpc_cidr=aws_config.vpc_cidr,
            zones=aws_config.availability_zones,
            vpc_id=aws_config.vpc_id,
            subnet_ids=aws_config.private_subnet_ids,
            architecture=config.service.architecture,
            memory_mb=config.service.memory_mb,
            timeout_seconds=config.service.timeout_seconds,
            max_instances=config.service.max_instances,
            reserved_concurrency=config.service.reserved_concurrency,
            log_retention_days=aws_config.log_retention_days,
            alarm_email=aws_config.alarm_email,
            database_ca_path=ca_path,
        ),
        opts=opts,
    )
    return dict(app.outputs)


def _require_rds_ca(bundle_path: Path, config: StackConfig) -> None:
    """The bundle must carry the RDS CAs: the Lambda runtime's trust store lacks them, so the
    migration and every connection would fail verifying the database certificate."""
    try:
        with zipfile.ZipFile(bundle_path) as archive:
            pem = archive.read(BUNDLE_MEMBER)
        check_bundle(pem)
    except KeyError:
        problem = f"has no {BUNDLE_MEMBER}"
    except (zipfile.BadZipFile, CaBundleError) as exc:
        problem = f"has no valid RDS CA bundle ({exc})"
    else:
        return
    raise StackConfigError(
        [
            f"syncbot:awsBundlePath: {bundle_path} {problem}; build it with `python -m "
            f"infra.rds_ca fetch build/rds-ca-bundle.pem && python -m infra.bundle --arch "
            f"{config.service.architecture} --rds-ca build/rds-ca-bundle.pem`"
        ]
    )
