"""CloudWatch Logs rule: every log group has a retention period."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import applies_to, get_path, positive_integer, resource_rule

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@applies_to(LOG_GROUP)
def validate_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a log group kept forever (retention unset or 0) or beyond the configured cap."""
    days = get_path(args.props, "retentionInDays", default=0)
    if not days:
        report_violation("retentionInDays is not set; logs would be kept forever.", None)
        return
    maximum = args.get_config().get("maximumDays")
    if maximum is not None and int(days) > int(maximum):
        report_violation(f"retentionInDays is {days}; at most {maximum} allowed.", None)


log_retention = resource_rule(
    name="syncbot-aws-log-retention",
    description="CloudWatch log groups must set a retention period.",
    validate=validate_retention,
    severity=Severity.LOW,
    config={"maximumDays": positive_integer()},
)

POLICIES = (log_retention,)
