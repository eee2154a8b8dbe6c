from __future__ import annotations

from policies.aws import s3
from tests.policies.sdk import check_resource, check_stack, stack_resource

FULL_BLOCK = dict.fromkeys(s3.BLOCK_FLAGS, True)
SSE = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}
VERSIONED = {"versioningConfiguration": {"status": "Enabled"}}


def protected_bucket(name: str = "artifacts") -> list:
    bucket = stack_resource(s3.BUCKET, {"bucket": f"{name}-1a2b"}, name=name)
    return [
        bucket,
        stack_resource(
            s3.PUBLIC_ACCESS_BLOCK, {"bucket": f"{name}-1a2b", **FULL_BLOCK}, name=f"{name}-pab"
        ),
        stack_resource(s3.ENCRYPTION, {"bucket": f"{name}-1a2b", **SSE}, name=f"{name}-sse"),
        # Linked by dependency only, as in a preview where the bucket name is unknown.
        stack_resource(s3.VERSIONING, VERSIONED, name=f"{name}-ver", dependencies=[bucket]),
    ]


def test_full_public_access_block_passes() -> None:
    props = {"bucket": "b", **FULL_BLOCK}
    assert check_resource(s3.public_access_block, s3.PUBLIC_ACCESS_BLOCK, props) == []


def test_partial_public_access_block_is_reported() -> None:
    props = {"bucket": "b", **FULL_BLOCK, "blockPublicPolicy": False}
    assert check_resource(s3.public_access_block, s3.PUBLIC_ACCESS_BLOCK, props) == [
        "public access block leaves blockPublicPolicy off."
    ]


def test_protected_bucket_passes() -> None:
    assert check_stack(s3.bucket_protected, protected_bucket()) == []


def test_bare_bucket_is_reported_for_each_missing_protection() -> None:
    resources = [*protected_bucket(), stack_resource(s3.BUCKET, {"bucket": "bare"}, name="bare")]
    assert check_stack(s3.bucket_protected, resources) == [
        "bucket bare lacks a public access block with all four switches on.",
        "bucket bare lacks default server-side encryption.",
        "bucket bare lacks enabled versioning.",
    ]


def test_suspended_versioning_and_weak_block_are_reported() -> None:
    resources = protected_bucket()
    resources[1] = stack_resource(
        s3.PUBLIC_ACCESS_BLOCK, {"bucket": "artifacts-1a2b", "blockPublicAcls": True}
    )
    resources[3] = stack_resource(
        s3.VERSIONING,
        {"bucket": "artifacts-1a2b", "versioningConfiguration": {"status": "Suspended"}},
    )
    assert len(check_stack(s3.bucket_protected, resources)) == 2


def test_inline_encryption_and_versioning_count() -> None:
    bucket = stack_resource(
        s3.BUCKET,
        {
            "bucket": "legacy",
            "serverSideEncryptionConfiguration": {"rule": SSE["rules"]},
            "versioning": {"enabled": True},
        },
    )
    block = stack_resource(s3.PUBLIC_ACCESS_BLOCK, {"bucket": "legacy", **FULL_BLOCK})
    assert check_stack(s3.bucket_protected, [bucket, block]) == []
