from __future__ import annotations

import pytest

from policies.aws import rds
from tests.policies.sdk import check_resource

SECURE = {
    "engine": "postgres",
    "instanceClass": "db.t4g.micro",
    "publiclyAccessible": False,
    "storageEncrypted": True,
    "backupRetentionPeriod": 7,
    "deletionProtection": True,
}


@pytest.mark.parametrize("resource_type", [rds.INSTANCE, rds.CLUSTER])
def test_secure_database_passes_every_rule(resource_type: str) -> None:
    for policy in rds.POLICIES:
        assert check_resource(policy, resource_type, SECURE, stack="prod") == []


def test_public_instance_is_reported() -> None:
    props = {**SECURE, "publiclyAccessible": True}
    assert check_resource(rds.no_public_access, rds.INSTANCE, props) == [
        "publiclyAccessible is true; keep the database in private subnets."
    ]
    assert check_resource(rds.no_public_access, rds.CLUSTER_INSTANCE, props) != []


def test_unencrypted_storage_is_reported_unless_a_replica() -> None:
    props = {**SECURE, "storageEncrypted": False}
    assert check_resource(rds.storage_encrypted, rds.INSTANCE, props) == [
        "storageEncrypted is not true."
    ]
    assert check_resource(rds.storage_encrypted, rds.CLUSTER, {}) != []
    replica = {"replicateSourceDb": "arn:aws:rds:eu-west-1:1:db:src"}
    assert check_resource(rds.storage_encrypted, rds.INSTANCE, replica) == []


def test_backups_off_by_default_on_instances_and_configurable() -> None:
    assert check_resource(rds.backups, rds.INSTANCE, {}) == [
        "backupRetentionPeriod is 0; at least 1 required."
    ]
    assert check_resource(rds.backups, rds.CLUSTER, {}) == []
    assert check_resource(
        rds.backups, rds.INSTANCE, SECURE, config={"minimumRetentionDays": 14}
    ) == ["backupRetentionPeriod is 7; at least 14 required."]


@pytest.mark.parametrize("stack", ["prod", "production", "prod-eu", "eu-prod"])
def test_deletion_protection_required_on_production(stack: str) -> None:
    props = {**SECURE, "deletionProtection": False}
    assert check_resource(rds.deletion_protection, rds.INSTANCE, props, stack=stack) == [
        "deletionProtection is off on a production stack."
    ]


def test_deletion_protection_not_required_elsewhere_and_configurable() -> None:
    props = {**SECURE, "deletionProtection": False}
    assert check_resource(rds.deletion_protection, rds.INSTANCE, props, stack="dev") == []
    config = {"productionStacks": ["live"]}
    assert (
        check_resource(rds.deletion_protection, rds.INSTANCE, props, stack="live", config=config)
        != []
    )
    assert (
        check_resource(rds.deletion_protection, rds.INSTANCE, props, stack="prod", config=config)
        == []
    )


def test_other_resource_types_are_ignored() -> None:
    for policy in rds.POLICIES:
        assert check_resource(policy, "aws:s3/bucket:Bucket", {"publiclyAccessible": True}) == []
