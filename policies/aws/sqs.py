"""SQS rules: queues encrypted, every work queue redrives to a dead-letter queue that alarms,
and IAM grants on SQS name queues with exact actions.

A dead-letter queue is recognised three ways: it declares which queues may use it (its own
``redriveAllowPolicy`` or a ``RedriveAllowPolicy`` resource), or another queue's redrive policy
targets its ARN. Redrive and allow policies may be set on the queue or through pulumi-aws 7's
companion resources, so the redrive and alarm checks are stack rules linking them; a companion
is linked by its ``queueUrl`` or by depending on the queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pulumi_policy import (
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from policies.aws.iam import (
    GROUP_POLICY,
    POLICY,
    ROLE,
    ROLE_POLICY,
    USER_POLICY,
    permission_documents,
)
from policies.common import (
    applies_to,
    as_document,
    as_list,
    get_path,
    is_companion,
    iter_statements,
    positive_integer,
    resource_rule,
    stack_rule,
)

QUEUE = "aws:sqs/queue:Queue"
REDRIVE_POLICY = "aws:sqs/redrivePolicy:RedrivePolicy"
REDRIVE_ALLOW_POLICY = "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

DLQ_METRIC = "ApproximateNumberOfMessagesVisible"
# Redriving after hundreds of receives is no dead-letter queue at all (SQS allows 1000).
DEFAULT_MAX_RECEIVE_COUNT = 100


@applies_to(QUEUE)
def validate_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report a queue without server-side encryption (SQS-managed or KMS)."""
    if get_path(args.props, "sqsManagedSseEnabled", default=False):
        return
    if get_path(args.props, "kmsMasterKeyId"):
        return
    report_violation(
        "queue is not encrypted at rest; set sqsManagedSseEnabled or kmsMasterKeyId.", None
    )


def _linked(queue: PolicyResource, helper: PolicyResource) -> bool:
    return is_companion(queue, helper, handles=("url", "id"), reference="queueUrl")


def _redrive_documents(
    queue: PolicyResource, resources: list[PolicyResource]
) -> Iterator[Mapping[str, Any]]:
    """The queue's redrive policies: inline, then from linked companion resources."""
    inline = as_document(get_path(queue.props, "redrivePolicy"))
    if inline is not None:
        yield inline
    for helper in resources:
        if helper.resource_type == REDRIVE_POLICY and _linked(queue, helper):
            document = as_document(get_path(helper.props, "redrivePolicy"))
            if document is not None:
                yield document


def _allows_redrive(document: Mapping[str, Any] | None) -> bool:
    return document is not None and document.get("redrivePermission") in ("byQueue", "allowAll")


def _declared_dead_letter(queue: PolicyResource, resources: list[PolicyResource]) -> bool:
    if _allows_redrive(as_document(get_path(queue.props, "redriveAllowPolicy"))):
        return True
    return any(
        helper.resource_type == REDRIVE_ALLOW_POLICY
        and _linked(queue, helper)
        and _allows_redrive(as_document(get_path(helper.props, "redriveAllowPolicy")))
        for helper in resources
    )


def _targeted(queue: PolicyResource, resources: list[PolicyResource]) -> bool:
    arn = get_path(queue.props, "arn")
    if arn is None:
        return False
    return any(
        document.get("deadLetterTargetArn") == arn
        for other in resources
        if other.resource_type == QUEUE and other.urn != queue.urn
        for document in _redrive_documents(other, resources)
    )


def dead_letter_queues(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    """The stack's queues that serve as dead-letter queues."""
    resources = list(resources)
    return [
        queue
        for queue in resources
        if queue.resource_type == QUEUE
        and (_declared_dead_letter(queue, resources) or _targeted(queue, resources))
    ]


def _redrive_problem(document: Mapping[str, Any], maximum: int) -> str | None:
    target = str(document.get("deadLetterTargetArn") or "")
    if ":sqs:" not in target:
        return "its redrive policy names no dead-letter queue ARN"
    try:
        count = int(document.get("maxReceiveCount"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "its redrive policy has no maxReceiveCount"
    if not 1 <= count <= maximum:
        return f"maxReceiveCount is {count}; 1 to {maximum} allowed"
    return None


def redrive_problems(
    resources: Iterable[PolicyResource], maximum: int = DEFAULT_MAX_RECEIVE_COUNT
) -> list[tuple[PolicyResource, str]]:
    """Each work queue (not a dead-letter queue) paired with what its redrive lacks.

    Args:
        resources: All resources of the stack.
        maximum: The highest ``maxReceiveCount`` accepted.

    Returns:
        ``(queue, problem)`` pairs; empty when every work queue redrives properly.
    """
    resources = list(resources)
    problems: list[tuple[PolicyResource, str]] = []
    for queue in (r for r in resources if r.resource_type == QUEUE):
        documents = list(_redrive_documents(queue, resources))
        if documents:
            found = [p for d in documents if (p := _redrive_problem(d, maximum)) is not None]
            if len(found) == len(documents):
                problems.append((queue, found[0]))
            continue
        if _declared_dead_letter(queue, resources) or _targeted(queue, resources):
            continue
        problems.append((queue, "it has no redrive policy to a dead-letter queue"))
    return problems


def validate_redrive(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Report every work queue whose failing messages would never reach a dead-letter queue."""
    maximum = int(args.get_config().get("maximumReceiveCount", DEFAULT_MAX_RECEIVE_COUNT))
    for queue, problem in redrive_problems(args.resources, maximum):
        report_violation(f"queue {queue.name}: {problem}.", queue.urn)


def _fires_on_first_message(alarm: PolicyResource) -> bool:
    try:
        threshold = float(get_path(alarm.props, "threshold"))
    except (TypeError, ValueError):
        return False
    operator = get_path(alarm.props, "comparisonOperator")
    if operator == "GreaterThanThreshold":
        return threshold < 1
    return operator == "GreaterThanOrEqualToThreshold" and threshold <= 1


def _watches(alarm: PolicyResource, queue_name: str) -> bool:
    return (
        get_path(alarm.props, "namespace") == "AWS/SQS"
        and get_path(alarm.props, "metricName") == DLQ_METRIC
        and get_path(alarm.props, "dimensions", "QueueName") == queue_name
        and _fires_on_first_message(alarm)
    )


def unwatched_dead_letter_queues(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    """Dead-letter queues no alarm watches for their first message."""
    resources = list(resources)
    alarms = [r for r in resources if r.resource_type == METRIC_ALARM]
    return [
        queue
        for queue in dead_letter_queues(resources)
        if not any(_watches(alarm, str(get_path(queue.props, "name"))) for alarm in alarms)
    ]


def validate_dead_letter_alarm(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    """Report a dead-letter queue that could fill up without anyone being told."""
    for queue in unwatched_dead_letter_queues(args.resources):
        report_violation(
            f"dead-letter queue {queue.name} has no alarm on {DLQ_METRIC} > 0.", queue.urn
        )


def _statement_problems(statement: Mapping[str, Any]) -> list[str]:
    if statement.get("Effect", "Allow") != "Allow":
        return []
    actions = [str(a) for a in as_list(statement.get("Action"))]
    sqs_actions = [a for a in actions if a.lower().startswith("sqs:")]
    if not sqs_actions:
        return []
    problems = [f"action {a} is a wildcard" for a in sqs_actions if "*" in a or "?" in a]
    if "NotResource" in statement:
        problems.append("NotResource grants SQS actions on every other resource")
    for resource in as_list(statement.get("Resource")):
        text = str(resource)
        if text == "*" or not (text.startswith("arn:") and text.split(":")[2:3] == ["sqs"]):
            problems.append(f"resource {text!r} is not an SQS queue ARN")
    return problems


@applies_to(ROLE, ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY)
def validate_sqs_grants(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Report SQS grants with wildcard actions or on anything but named queue ARNs."""
    for label, raw in permission_documents(args):
        for statement in iter_statements(as_document(raw)):
            for problem in _statement_problems(statement):
                report_violation(f"{label}: {problem}.", None)


encrypted = resource_rule(
    name="syncbot-aws-sqs-encrypted",
    description="SQS queues must be encrypted at rest (SQS-managed SSE or KMS).",
    validate=validate_encrypted,
    severity=Severity.HIGH,
)

dead_letter = stack_rule(
    name="syncbot-aws-sqs-dead-letter",
    description="SQS work queues must redrive failing messages to a dead-letter queue.",
    validate=validate_redrive,
    severity=Severity.MEDIUM,
    config={"maximumReceiveCount": positive_integer(default=DEFAULT_MAX_RECEIVE_COUNT)},
)

dead_letter_alarm = stack_rule(
    name="syncbot-aws-sqs-dlq-alarm",
    description="SQS dead-letter queues must have an alarm on their first visible message.",
    validate=validate_dead_letter_alarm,
    severity=Severity.MEDIUM,
)

scoped_grants = resource_rule(
    name="syncbot-aws-iam-sqs-scoped",
    description="IAM grants on SQS must list exact actions on named queue ARNs.",
    validate=validate_sqs_grants,
    severity=Severity.HIGH,
)

POLICIES = (encrypted, dead_letter, dead_letter_alarm, scoped_grants)
