"""S3 rules: every bucket blocks public access, encrypts at rest and keeps versions.

pulumi-aws 7 configures these through companion resources that name the bucket, so the
per-bucket check is a stack rule linking them; the public access block's own flags are also
checked on the resource, where a preview can stop a weak block before it is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from policies.common import (
    applies_to,
    as_list,
    get_path,
    is_companion,
    resource_rule,
    stack_rule,
)

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"

BLOCK_FLAGS: tuple[str, ...] = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


@applies_to(PUBLIC_ACCESS_BLOCK)
def validate_public_access_block(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a public access block that leaves any of its four switches off."""
    off = [flag for flag in BLOCK_FLAGS if not get_path(args.props, flag, default=False)]
    if off:
        report_violation(f"public access block leaves {', '.join(off)} off.", None)


def _linked(bucket: PolicyResource, helper: PolicyResource) -> bool:
    return is_companion(bucket, helper, handles=("bucket", "id"), reference="bucket")


def _full_block(helper: PolicyResource) -> bool:
    return all(get_path(helper.props, flag, default=False) for flag in BLOCK_FLAGS)


def _encrypts(props: object) -> bool:
    rules = as_list(get_path(props, "rules")) or as_list(
        get_path(props, "serverSideEncryptionConfiguration", "rule")
    )
    return any(
        get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in rules
    )


def _versioned(props: object) -> bool:
    status = get_path(props, "versioningConfiguration", "status")
    return status == "Enabled" or get_path(props, "versioning", "enabled") is True


_Requirement = tuple[str, str, Callable[[PolicyResource], bool]]
_REQUIREMENTS: tuple[_Requirement, ...] = (
    (PUBLIC_ACCESS_BLOCK, "a public access block with all four switches on", _full_block),
    (ENCRYPTION, "default server-side encryption", lambda r: _encrypts(r.props)),
    (VERSIONING, "enabled versioning", lambda r: _versioned(r.props)),
)


def bucket_problems(resources: Iterable[PolicyResource]) -> list[tuple[PolicyResource, str]]:
    """Each bucket paired with every protection it lacks.

    Args:
        resources: All resources of the stack.

    Returns:
        ``(bucket, missing protection)`` pairs; empty when every bucket is covered.
    """
    resources = list(resources)
    problems: list[tuple[PolicyResource, str]] = []
    for bucket in (r for r in resources if r.resource_type == BUCKET):
        for helper_type, what, satisfied in _REQUIREMENTS:
            helpers = [
                r for r in resources if r.resource_type == helper_type and _linked(bucket, r)
            ]
            inline = helper_type != PUBLIC_ACCESS_BLOCK and satisfied(bucket)
            if not inline and not any(satisfied(h) for h in helpers):
                problems.append((bucket, what))
    return problems


def validate_buckets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Report every S3 bucket missing public access blocking, encryption or versioning."""
    for bucket, missing in bucket_problems(args.resources):
        report_violation(f"bucket {bucket.name} lacks {missing}.", bucket.urn)


public_access_block = resource_rule(
    name="syncbot-aws-s3-public-access-block",
    description="S3 public access blocks must turn on all four switches.",
    validate=validate_public_access_block,
    severity=Severity.HIGH,
)

bucket_protected = stack_rule(
    name="syncbot-aws-s3-bucket-protected",
    description="S3 buckets must block public access, encrypt at rest and keep versions.",
    validate=validate_buckets,
    severity=Severity.HIGH,
)

POLICIES = (public_access_block, bucket_protected)
