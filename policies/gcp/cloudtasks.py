"""Cloud Tasks rule: every queue bounds its retries.

A queue retrying without bound keeps hammering a target that refuses a task (a revoked Slack
token, a deleted channel) for as long as the task lives; the outbox and its maintenance tick
already catch a delivery Cloud Tasks gives up on.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import applies_to, get_path, positive_integer, resource_rule

QUEUE = "gcp:cloudtasks/queue:Queue"
DEFAULT_MAXIMUM_ATTEMPTS = 100


@applies_to(QUEUE)
def validate_bounded_retries(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a queue with no retry config, or one whose attempts are unbounded or too many."""
    maximum = int(args.get_config().get("maximumAttempts", DEFAULT_MAXIMUM_ATTEMPTS))
    if get_path(args.props, "retryConfig") is None:
        report_violation("queue has no retryConfig; set maxAttempts and backoff.", None)
        return
    attempts = get_path(args.props, "retryConfig", "maxAttempts")
    if attempts is None:
        report_violation("retryConfig.maxAttempts is not set.", None)
        return
    attempts = int(attempts)
    if attempts < 1:
        report_violation(f"retryConfig.maxAttempts is {attempts}: retries are unbounded.", None)
    elif attempts > maximum:
        report_violation(f"retryConfig.maxAttempts is {attempts}; at most {maximum}.", None)


bounded_retries = resource_rule(
    name="syncbot-gcp-cloudtasks-bounded-retries",
    description="Cloud Tasks queues must set a retry config with bounded attempts.",
    validate=validate_bounded_retries,
    severity=Severity.MEDIUM,
    config={"maximumAttempts": positive_integer(default=DEFAULT_MAXIMUM_ATTEMPTS)},
)

POLICIES = (bounded_retries,)
