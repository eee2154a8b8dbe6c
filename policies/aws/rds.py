"""RDS rules: no public database, encrypted storage, backups, deletion protection in production."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import (
    applies_to,
    get_path,
    is_production,
    positive_integer,
    resource_rule,
    string_list,
)

INSTANCE = "aws:rds/instance:Instance"
CLUSTER = "aws:rds/cluster:Cluster"
CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"


@applies_to(INSTANCE, CLUSTER_INSTANCE)
def validate_not_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a database instance reachable from the internet."""
    if get_path(args.props, "publiclyAccessible", default=False):
        report_violation("publiclyAccessible is true; keep the database in private subnets.", None)


@applies_to(INSTANCE, CLUSTER)
def validate_storage_encrypted(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report database storage without encryption at rest."""
    if args.resource_type == INSTANCE and get_path(args.props, "replicateSourceDb"):
        return  # a replica inherits the source's encryption
    if not get_path(args.props, "storageEncrypted", default=False):
        report_violation("storageEncrypted is not true.", None)


@applies_to(INSTANCE, CLUSTER)
def validate_backups(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report automated backups switched off (retention below the configured minimum)."""
    minimum = int(args.get_config().get("minimumRetentionDays", 1))
    days = get_path(args.props, "backupRetentionPeriod")
    # The provider's default for an instance is 0 days (no backups), for a cluster 1 day.
    if days is None:
        days = 1 if args.resource_type == CLUSTER else 0
    if int(days) < minimum:
        report_violation(f"backupRetentionPeriod is {days}; at least {minimum} required.", None)


@applies_to(INSTANCE, CLUSTER)
def validate_deletion_protection(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a production database that can be deleted by a stray ``pulumi destroy``."""
    if not is_production(args.urn, args.get_config()):
        return
    if not get_path(args.props, "deletionProtection", default=False):
        report_violation("deletionProtection is off on a production stack.", None)


no_public_access = resource_rule(
    name="syncbot-aws-rds-no-public-access",
    description="RDS databases must not be publicly accessible.",
    validate=validate_not_public,
    severity=Severity.CRITICAL,
)

storage_encrypted = resource_rule(
    name="syncbot-aws-rds-storage-encrypted",
    description="RDS storage must be encrypted at rest.",
    validate=validate_storage_encrypted,
    severity=Severity.HIGH,
)

backups = resource_rule(
    name="syncbot-aws-rds-backups",
    description="RDS automated backups must be on.",
    validate=validate_backups,
    severity=Severity.HIGH,
    config={"minimumRetentionDays": positive_integer(default=1)},
)

deletion_protection = resource_rule(
    name="syncbot-aws-rds-deletion-protection",
    description="RDS databases on production stacks must have deletion protection.",
    validate=validate_deletion_protection,
    severity=Severity.MEDIUM,
    config={
        "productionStacks": string_list(
            description="Stack names or glob patterns treated as production."
        )
    },
)

POLICIES = (no_public_access, storage_encrypted, backups, deletion_protection)
