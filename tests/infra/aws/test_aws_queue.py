"""The delivery queue on AWS under mocks: SQS FIFO, dead-letter queue, alarms, trigger, IAM."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from app.core.outbox import RetryPolicy
from app.settings import load_settings
from infra.aws.queue import (
    CONSUMER_ACTIONS,
    RECEIVES_BEFORE_DEAD_LETTER,
    DeliveryQueue,
    DeliveryQueueArgs,
    QueueTrigger,
    QueueTriggerArgs,
    consumer_statement,
    queue_arn,
    visibility_timeout,
)
from tests.infra.aws.aws_stack_fixtures import policy_of
from tests.infra.conftest import (
    ACCOUNT_ID,
    REGION,
    MockRun,
    Recorded,
    evaluate_run,
    patch_type,
    run_program,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

QUEUE_TYPE = "aws:sqs/queue:Queue"
ALARM_TYPE = "aws:cloudwatch/metricAlarm:MetricAlarm"
ESM_TYPE = "aws:lambda/eventSourceMapping:EventSourceMapping"


def _queues(run: MockRun) -> tuple[Any, Any]:
    by_name = {q.inputs["name"]: q for q in run.of_type(QUEUE_TYPE)}
    prefix = (
        "syncbot-dev-app-deliveries"
        if "syncbot-dev-app-deliveries.fifo" in by_name
        else ("syncbot-prod-app-deliveries")
    )
    assert set(by_name) == {f"{prefix}.fifo", f"{prefix}-dlq.fifo"}
    return by_name[f"{prefix}.fifo"], by_name[f"{prefix}-dlq.fifo"]


def _function(run: MockRun) -> Any:
    return run.one("aws:lambda/function:Function")


def test_the_delivery_queue_is_an_encrypted_fifo_deduplicated_by_the_app(
    app_stack: MockRun,
) -> None:
    queue, _ = _queues(app_stack)
    inputs = queue.inputs
    assert inputs["fifoQueue"] is True
    assert inputs["contentBasedDeduplication"] is False  # MessageDeduplicationId = delivery id
    assert inputs["deduplicationScope"] == "messageGroup"
    assert inputs["fifoThroughputLimit"] == "perMessageGroupId"
    assert inputs["sqsManagedSseEnabled"] is True
    timeout = _function(app_stack).inputs["timeout"]
    assert inputs["visibilityTimeoutSeconds"] == 6 * timeout
    app = app_stack.one("syncbot:aws:App")
    assert queue.parent_name == f"{app.name}-deliveries"


def test_failing_messages_redrive_to_a_fifo_dead_letter_queue(app_stack: MockRun) -> None:
    queue, dead_letter = _queues(app_stack)
    assert dead_letter.inputs["fifoQueue"] is True
    assert dead_letter.inputs["sqsManagedSseEnabled"] is True
    assert "redrivePolicy" not in dead_letter.inputs
    # The computed ARNs are the ones SQS gives the queues.
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": dead_letter.outputs["arn"],
        "maxReceiveCount": RECEIVES_BEFORE_DEAD_LETTER,
    }
    # The app's own retry budget (10 attempts) fits before SQS gives a notice up.
    assert RECEIVES_BEFORE_DEAD_LETTER > RetryPolicy().max_attempts
    allow = json.loads(dead_letter.inputs["redriveAllowPolicy"])
    assert allow == {"redrivePermission": "byQueue", "sourceQueueArns": [queue.outputs["arn"]]}
    # A message keeps its first enqueue time in the DLQ: the DLQ must keep it longer.
    assert dead_letter.inputs["messageRetentionSeconds"] > queue.inputs["messageRetentionSeconds"]
    assert dead_letter.urn in queue.dependencies


def test_the_dead_letter_queue_alarms_on_its_first_message(dev: MockRun, prod: MockRun) -> None:
    for run, prefix in ((dev, "syncbot-dev-app"), (prod, "syncbot-prod-app")):
        alarms = {
            a.inputs["metricName"]: a.inputs
            for a in run.of_type(ALARM_TYPE)
            if a.inputs["namespace"] == "AWS/SQS"
        }
        dlq = alarms["ApproximateNumberOfMessagesVisible"]
        assert dlq["dimensions"] == {"QueueName": f"{prefix}-deliveries-dlq.fifo"}
        assert (dlq["threshold"], dlq["comparisonOperator"]) == (0, "GreaterThanThreshold")
        assert dlq["statistic"] == "Maximum"
        oldest = alarms["ApproximateAgeOfOldestMessage"]
        assert oldest["dimensions"] == {"QueueName": f"{prefix}-deliveries.fifo"}
    # Production has an alarm e-mail: both alarms notify its topic.
    topic = prod.one("aws:sns/topic:Topic").outputs["arn"]
    for alarm in prod.of_type(ALARM_TYPE):
        if alarm.inputs["namespace"] == "AWS/SQS":
            assert alarm.inputs["alarmActions"] == [topic]


@pytest.mark.parametrize(("stack", "concurrency"), [("dev", 2), ("prod", 25)])
def test_the_queue_triggers_the_function_with_partial_batch_failures(
    stack: str, concurrency: int, request: pytest.FixtureRequest
) -> None:
    run: MockRun = request.getfixturevalue(stack)
    queue, _ = _queues(run)
    mapping = run.one(ESM_TYPE)
    inputs = mapping.inputs
    assert inputs["eventSourceArn"] == queue.outputs["arn"]
    # The live alias: queued deliveries run the migrated version, like every other caller.
    assert inputs["functionName"] == run.one("aws:lambda/alias:Alias").outputs["arn"]
    assert inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert inputs["batchSize"] == 10
    assert not inputs.get("maximumBatchingWindowInSeconds")
    assert inputs["enabled"] is True
    # Half the reserved concurrency at most (dev reserves 5, prod 50; SQS's floor is 2).
    assert inputs["scalingConfig"] == {"maximumConcurrency": concurrency}
    # AWS checks the role can read the queue when the mapping is created.
    policy = next(
        r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("svc-policy")
    )
    assert policy.urn in mapping.dependencies


def test_the_function_role_gets_exactly_the_consumer_actions_on_one_queue(dev: MockRun) -> None:
    queue, dead_letter = _queues(dev)
    policy = next(
        r for r in dev.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("svc-policy")
    )
    statements = policy_of(policy.inputs)["Statement"]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in s["Action"])]
    assert sqs == [
        {
            "Effect": "Allow",
            "Action": sorted(
                [
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                    "sqs:SendMessage",
                ]
            ),
            "Resource": [queue.outputs["arn"]],
        }
    ]
    # Nothing on the dead-letter queue: SQS moves messages there itself.
    assert dead_letter.outputs["arn"] not in policy.inputs["policy"]


def test_the_function_dispatches_through_the_queue(app_stack: MockRun) -> None:
    queue, _ = _queues(app_stack)
    env = _function(app_stack).inputs["environment"]["variables"]
    assert env["SYNCBOT_DISPATCH"] == "sqs"
    assert env["SYNCBOT_DELIVERY_QUEUE"] == queue.outputs["url"]
    assert env["SYNCBOT_DELIVERY_QUEUE"].endswith(f"/{ACCOUNT_ID}/{queue.inputs['name']}")
    assert "SYNCBOT_DELIVERY_INVOKER" not in env  # Cloud Tasks only
    settings = load_settings({k: env[k] for k in ("SYNCBOT_DISPATCH", "SYNCBOT_DELIVERY_QUEUE")})
    assert (settings.dispatch, settings.delivery_queue) == ("sqs", queue.outputs["url"])
    assert app_stack.outputs["delivery_queue_url"] == queue.outputs["url"]


def test_the_deploy_role_may_manage_only_the_stacks_queues_and_mappings(
    bootstrap: MockRun,
) -> None:
    (policy,) = [
        r
        for r in bootstrap.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("-deploy-policy")
    ]
    statements = policy_of(policy.inputs)["Statement"]
    by_action = {a: s for s in statements for a in s["Action"]}
    assert by_action["sqs:CreateQueue"]["Resource"] == [
        f"arn:aws:sqs:eu-west-1:{ACCOUNT_ID}:syncbot-prod-app-*"
    ]
    mapping = by_action["lambda:CreateEventSourceMapping"]
    functions = f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:syncbot-prod-app-*"
    assert mapping["Condition"] == {"ArnLike": {"lambda:FunctionArn": functions}}
    assert not any(a.startswith("sqs:") and "*" in a for a in by_action)


def _policy_findings(run: MockRun, typ: str = "", **patch: Any) -> set[str]:
    return {v.policy for v in evaluate_run(run, patch_type(typ, **patch))}


@pytest.mark.parametrize(
    ("typ", "patch", "policy"),
    [
        (ESM_TYPE, {"functionResponseTypes": []}, "syncbot-aws-lambda-sqs-batch-failures"),
        (QUEUE_TYPE, {"sqsManagedSseEnabled": False}, "syncbot-aws-sqs-encrypted"),
        (ALARM_TYPE, {"namespace": "AWS/Lambda"}, "syncbot-aws-sqs-dlq-alarm"),
    ],
)
def test_the_pack_sees_the_queue_resources(
    dev: MockRun, typ: str, patch: dict[str, Any], policy: str
) -> None:
    # Compared with the unpatched run: production-only rules follow the last stack's config.
    assert _policy_findings(dev, typ, **patch) - _policy_findings(dev) == {policy}


def test_a_work_queue_without_redrive_is_caught(dev: MockRun) -> None:
    queue, _ = _queues(dev)

    def without_redrive(r: Recorded, props: Mapping[str, Any]) -> Mapping[str, Any]:
        return {k: v for k, v in props.items() if not (r is queue and k == "redrivePolicy")}

    found = evaluate_run(dev, without_redrive)
    assert {v.policy for v in found} - _policy_findings(dev) == {"syncbot-aws-sqs-dead-letter"}


# -- the component on its own ----------------------------------------------------------------


def test_pure_helpers() -> None:
    assert queue_arn("aws", "eu-west-1", "1", "q.fifo") == "arn:aws:sqs:eu-west-1:1:q.fifo"
    assert visibility_timeout(30) == 180
    with pytest.raises(ValueError, match="at least one second"):
        visibility_timeout(0)
    with pytest.raises(ValueError, match="named exactly"):
        consumer_statement("arn:aws:sqs:eu-west-1:1:*")
    assert consumer_statement("arn:aws:sqs:eu-west-1:1:q.fifo")["Action"] == sorted(
        CONSUMER_ACTIONS
    )


@pytest.mark.parametrize(
    ("queue_args", "trigger_args", "message"),
    [
        ({"max_receive_count": 0}, {}, "max_receive_count"),
        ({"retention_seconds": 14 * 24 * 3600}, {}, "expire messages before"),
        ({}, {"batch_size": 11}, "FIFO batch"),
    ],
)
def test_bad_arguments_are_refused(
    queue_args: dict[str, Any], trigger_args: dict[str, Any], message: str
) -> None:
    def program() -> None:
        queue = DeliveryQueue(
            "q",
            DeliveryQueueArgs(
                region=REGION,
                account_id=ACCOUNT_ID,
                partition="aws",
                function_timeout_seconds=30,
                **queue_args,
            ),
        )
        QueueTrigger("t", QueueTriggerArgs(queue=queue, function_arn="arn:fn", **trigger_args))

    with pytest.raises(ValueError, match=message):
        run_program(program)


def test_a_function_left_on_in_process_dispatch_is_caught(dev: MockRun) -> None:
    function = _function(dev)
    variables = dict(function.inputs["environment"]["variables"])
    variables["SYNCBOT_DISPATCH"] = "inprocess"
    patch = {"environment": {"variables": variables}}
    found = evaluate_run(dev, lambda r, props: {**props, **patch} if r is function else props)
    new = [(v.policy, v.message) for v in found if v.policy not in _policy_findings(dev)]
    assert new == [
        (
            "syncbot-stack-variables-wired",
            f"{function.name} does not receive: SYNCBOT_DISPATCH=sqs.",
        )
    ]
