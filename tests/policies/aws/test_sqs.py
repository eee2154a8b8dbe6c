from __future__ import annotations

import json
from typing import Any

import pytest

from policies.aws import iam, sqs
from tests.policies.sdk import check_resource, check_stack, stack_resource

ACCOUNT = "arn:aws:sqs:eu-west-1:123456789012"
WORK_ARN = f"{ACCOUNT}:app-deliveries.fifo"
DLQ_ARN = f"{ACCOUNT}:app-deliveries-dlq.fifo"
REDRIVE = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5})
ALLOW = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [WORK_ARN]})


def queue(name: str, arn: str, **props: Any) -> Any:
    return stack_resource(
        sqs.QUEUE,
        {"name": name, "arn": arn, "url": f"https://sqs/{name}", "fifoQueue": True, **props},
        name=name,
    )


def alarm(queue_name: str, name: str = "dlq-alarm", **overrides: Any) -> Any:
    props = {
        "namespace": "AWS/SQS",
        "metricName": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": queue_name},
        "threshold": 0,
        "comparisonOperator": "GreaterThanThreshold",
        **overrides,
    }
    return stack_resource(sqs.METRIC_ALARM, props, name=name)


def delivery_stack() -> list[Any]:
    return [
        queue("app-deliveries-dlq.fifo", DLQ_ARN, redriveAllowPolicy=ALLOW),
        queue("app-deliveries.fifo", WORK_ARN, redrivePolicy=REDRIVE),
        alarm("app-deliveries-dlq.fifo"),
    ]


# -- encryption ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "props", [{"sqsManagedSseEnabled": True}, {"kmsMasterKeyId": "alias/syncbot"}]
)
def test_encrypted_queue_passes(props: dict[str, Any]) -> None:
    assert check_resource(sqs.encrypted, sqs.QUEUE, {"name": "q", **props}) == []


@pytest.mark.parametrize("props", [{}, {"sqsManagedSseEnabled": False, "kmsMasterKeyId": ""}])
def test_unencrypted_queue_is_reported(props: dict[str, Any]) -> None:
    assert check_resource(sqs.encrypted, sqs.QUEUE, {"name": "q", **props}) == [
        "queue is not encrypted at rest; set sqsManagedSseEnabled or kmsMasterKeyId."
    ]


# -- redrive to a dead-letter queue --------------------------------------------------------


def test_work_queue_redriving_to_a_declared_dlq_passes() -> None:
    assert check_stack(sqs.dead_letter, delivery_stack()) == []


def test_a_dlq_is_also_recognised_as_the_target_of_a_redrive() -> None:
    resources = [
        queue("dlq", DLQ_ARN),  # declares nothing; targeted by the work queue
        queue("work", WORK_ARN, redrivePolicy=REDRIVE),
    ]
    assert check_stack(sqs.dead_letter, resources) == []
    assert [q.name for q in sqs.dead_letter_queues(resources)] == ["dlq"]


def test_companion_redrive_policy_resource_counts() -> None:
    work = queue("work", WORK_ARN)
    resources = [
        queue("dlq", DLQ_ARN, redriveAllowPolicy=ALLOW),
        work,
        stack_resource(
            sqs.REDRIVE_POLICY,
            {"queueUrl": "https://sqs/work", "redrivePolicy": REDRIVE},
            name="work-redrive",
        ),
    ]
    assert check_stack(sqs.dead_letter, resources) == []


def test_queue_without_redrive_is_reported() -> None:
    resources = [*delivery_stack(), queue("orphan", f"{ACCOUNT}:orphan")]
    assert check_stack(sqs.dead_letter, resources) == [
        "queue orphan: it has no redrive policy to a dead-letter queue."
    ]


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 500}, "maxReceiveCount is 500"),
        ({"deadLetterTargetArn": DLQ_ARN}, "its redrive policy has no maxReceiveCount"),
        ({"maxReceiveCount": 5}, "its redrive policy names no dead-letter queue ARN"),
    ],
)
def test_weak_redrive_is_reported(policy: dict[str, Any], problem: str) -> None:
    resources = delivery_stack()
    resources[1] = queue("app-deliveries.fifo", WORK_ARN, redrivePolicy=json.dumps(policy))
    (message,) = check_stack(sqs.dead_letter, resources)
    assert message.startswith(f"queue app-deliveries.fifo: {problem}")


def test_maximum_receive_count_is_configurable() -> None:
    resources = delivery_stack()
    assert check_stack(sqs.dead_letter, resources, {"maximumReceiveCount": 3}) == [
        "queue app-deliveries.fifo: maxReceiveCount is 5; 1 to 3 allowed."
    ]


# -- the dead-letter queue alarms ----------------------------------------------------------


def test_dlq_with_alarm_passes() -> None:
    assert check_stack(sqs.dead_letter_alarm, delivery_stack()) == []


def test_dlq_without_alarm_is_reported() -> None:
    resources = delivery_stack()[:2]
    assert check_stack(sqs.dead_letter_alarm, resources) == [
        "dead-letter queue app-deliveries-dlq.fifo has no alarm on "
        "ApproximateNumberOfMessagesVisible > 0."
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        {"dimensions": {"QueueName": "app-deliveries.fifo"}},  # watches the work queue
        {"metricName": "NumberOfMessagesSent"},
        {"threshold": 100},
        {"comparisonOperator": "LessThanThreshold"},
    ],
)
def test_an_alarm_that_misses_the_first_dead_letter_does_not_count(
    overrides: dict[str, Any],
) -> None:
    resources = [*delivery_stack()[:2], alarm("app-deliveries-dlq.fifo", **overrides)]
    assert len(check_stack(sqs.dead_letter_alarm, resources)) == 1


def test_greater_or_equal_one_also_fires_on_the_first_message() -> None:
    resources = [
        *delivery_stack()[:2],
        alarm(
            "app-deliveries-dlq.fifo",
            threshold=1,
            comparisonOperator="GreaterThanOrEqualToThreshold",
        ),
    ]
    assert check_stack(sqs.dead_letter_alarm, resources) == []


# -- IAM grants on SQS ---------------------------------------------------------------------

CONSUMER = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_exact_actions_on_a_named_queue_pass() -> None:
    props = {"policy": document({"Effect": "Allow", "Action": CONSUMER, "Resource": [WORK_ARN]})}
    assert check_resource(sqs.scoped_grants, iam.ROLE_POLICY, props) == []
    # A prefix pattern within a queue ARN still names queues (the deploy role's statement).
    pattern = {"Effect": "Allow", "Action": ["sqs:CreateQueue"], "Resource": f"{ACCOUNT}:app-*"}
    assert check_resource(sqs.scoped_grants, iam.POLICY, {"policy": document(pattern)}) == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {"Effect": "Allow", "Action": "sqs:*", "Resource": WORK_ARN},
            ["policy: action sqs:* is a wildcard."],
        ),
        (
            {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*"},
            ["policy: resource '*' is not an SQS queue ARN."],
        ),
        (
            {"Effect": "Allow", "Action": ["sqs:Receive*"], "Resource": "arn:aws:s3:::bucket"},
            [
                "policy: action sqs:Receive* is a wildcard.",
                "policy: resource 'arn:aws:s3:::bucket' is not an SQS queue ARN.",
            ],
        ),
    ],
)
def test_loose_sqs_grants_are_reported(statement: dict[str, Any], expected: list[str]) -> None:
    props = {"policy": document(statement)}
    assert check_resource(sqs.scoped_grants, iam.ROLE_POLICY, props) == expected


def test_inline_role_policies_and_deny_statements() -> None:
    loose = document({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
    props = {"inlinePolicies": [{"name": "consumer", "policy": loose}]}
    assert check_resource(sqs.scoped_grants, iam.ROLE, props) == [
        "consumer: action sqs:* is a wildcard.",
        "consumer: resource '*' is not an SQS queue ARN.",
    ]
    deny = document({"Effect": "Deny", "Action": "sqs:*", "Resource": "*"})
    assert check_resource(sqs.scoped_grants, iam.ROLE_POLICY, {"policy": deny}) == []


def test_an_unnamed_inline_policy_is_labelled_by_its_index_as_the_admin_rule_does() -> None:
    loose = document({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    props = {"inlinePolicies": [{"name": "consumer", "policy": document()}, {"policy": loose}]}
    assert check_resource(sqs.scoped_grants, iam.ROLE, props) == [
        "inlinePolicies[1]: resource '*' is not an SQS queue ARN."
    ]


def test_statements_without_sqs_actions_are_not_this_rules_business() -> None:
    other = document({"Effect": "Allow", "Action": ["xray:PutTraceSegments"], "Resource": "*"})
    assert check_resource(sqs.scoped_grants, iam.ROLE_POLICY, {"policy": other}) == []
