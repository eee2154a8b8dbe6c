"""Cloud Storage rule: public access prevention enforced, uniform bucket-level access."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import applies_to, get_path, resource_rule

BUCKET = "gcp:storage/bucket:Bucket"


@applies_to(BUCKET)
def validate_public_access_prevention(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a bucket that could be made public by an ACL or IAM grant."""
    prevention = get_path(args.props, "publicAccessPrevention")
    if prevention != "enforced":
        report_violation(f"publicAccessPrevention is {prevention or 'unset'}, not enforced.", None)
    # Without uniform access, per-object ACLs bypass the bucket's IAM review.
    if get_path(args.props, "uniformBucketLevelAccess") is not True:
        report_violation("uniformBucketLevelAccess is not true.", None)


public_access_prevention = resource_rule(
    name="syncbot-gcp-storage-public-access-prevention",
    description="Storage buckets must enforce public access prevention and uniform access.",
    validate=validate_public_access_prevention,
    severity=Severity.HIGH,
)

POLICIES = (public_access_prevention,)
