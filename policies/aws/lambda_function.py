"""Lambda rules: a supported runtime, no credential in the function's environment, and SQS
triggers that report partial batch failures.

A Lambda environment is readable by anyone with ``lambda:GetFunctionConfiguration`` and is
stored in Pulumi state, so secrets travel as Secrets Manager ARNs (``SYNCBOT_SECRET_ARNS``) and
are resolved at cold start; marking a value as a Pulumi secret does not make it safe here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policies.common import (
    applies_to,
    as_list,
    get_path,
    plaintext_secret,
    read_known,
    resource_rule,
    string_list,
)

FUNCTION = "aws:lambda/function:Function"
EVENT_SOURCE_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

# The contract's baseline is Python 3.12; newer runtimes are accepted as they land.
DEFAULT_RUNTIMES: tuple[str, ...] = ("python3.12", "python3.13")


@applies_to(FUNCTION)
def validate_runtime(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a function whose runtime is outside the allowed set (container images pass)."""
    if get_path(args.props, "packageType") == "Image":
        return
    allowed = tuple(args.get_config().get("allowedRuntimes") or DEFAULT_RUNTIMES)
    runtime = get_path(args.props, "runtime")
    if runtime not in allowed:
        report_violation(f"runtime {runtime!r} is not one of {', '.join(allowed)}.", None)


@applies_to(FUNCTION)
def validate_no_plaintext_secrets(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report env vars that carry a credential as a literal value."""
    variables = get_path(args.props, "environment", "variables", default={})
    if not isinstance(variables, Mapping):
        return
    allowed = tuple(args.get_config().get("allowedNames") or ())
    for name in sorted(variables):
        leak = plaintext_secret(name, read_known(variables, name), allowed)
        if leak == "name":
            report_violation(
                f"environment variable {name} holds a secret in plain text; pass its "
                "Secrets Manager ARN instead.",
                None,
            )
        elif leak == "value":
            report_violation(f"environment variable {name} holds a credential-shaped value.", None)


@applies_to(EVENT_SOURCE_MAPPING)
def validate_batch_item_failures(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    """Report an SQS trigger that would retry a whole batch for one failed message.

    Without partial batch responses one failing delivery returns every message of its batch
    to the queue: the others are delivered twice, and on a FIFO queue their lanes stall.
    """
    # Checked first so a compliant mapping never reads the (possibly unknown) source ARN.
    if BATCH_ITEM_FAILURES in [
        str(t) for t in as_list(get_path(args.props, "functionResponseTypes"))
    ]:
        return
    if ":sqs:" in str(get_path(args.props, "eventSourceArn", default="")):
        report_violation(
            f"SQS event source mapping without functionResponseTypes [{BATCH_ITEM_FAILURES}].",
            None,
        )


runtime_allowed = resource_rule(
    name="syncbot-aws-lambda-runtime",
    description="Lambda functions must use an allowed Python runtime.",
    validate=validate_runtime,
    severity=Severity.MEDIUM,
    config={"allowedRuntimes": string_list(default=DEFAULT_RUNTIMES)},
)

no_plaintext_secrets = resource_rule(
    name="syncbot-aws-lambda-no-plaintext-secrets",
    description="Lambda environments must not contain secrets in plain text.",
    validate=validate_no_plaintext_secrets,
    severity=Severity.CRITICAL,
    config={
        "allowedNames": string_list(description="Env var names exempt from the name heuristic.")
    },
)

sqs_batch_item_failures = resource_rule(
    name="syncbot-aws-lambda-sqs-batch-failures",
    description="SQS event source mappings must report batch item failures.",
    validate=validate_batch_item_failures,
    severity=Severity.MEDIUM,
)

POLICIES = (runtime_allowed, no_plaintext_secrets, sqs_batch_item_failures)
