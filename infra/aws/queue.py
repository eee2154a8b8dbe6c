"""``DeliveryQueue`` and ``QueueTrigger``: the SQS FIFO queue that drives deliveries on Lambda.

The database outbox stays the source of truth; the queue only wakes the function for one
delivery lane between requests. The app sends each outbox row with ``MessageGroupId`` = target
endpoint (order per channel, parallel across channels) and ``MessageDeduplicationId`` = delivery
id, so content-based deduplication is off. A message the function keeps failing moves to a FIFO
dead-letter queue after ``max_receive_count`` receives, and an alarm fires as soon as one lands.

Queue names are fixed (``<component>.fifo``, ``<component>-dlq.fifo``) and their ARNs are built
from those names, so the redrive policies, the function's IAM statement and the event source
mapping are all known at preview time: the policy pack checks them before anything is created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws.iam import Document, allow

FIFO_SUFFIX = ".fifo"
# AWS: a source queue's visibility timeout should be at least six times the function timeout,
# so a batch retried after throttling is not handed to a second invocation while still running.
VISIBILITY_FACTOR = 6
# FIFO event source mappings take at most 10 messages per batch.
MAX_FIFO_BATCH = 10
# What the function does with the queue, and nothing else (no purge, no queue management).
CONSUMER_ACTIONS: tuple[str, ...] = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
)
# Every wait the app takes (Retry-After, backoff, a row held behind an earlier one of its
# target) is a reported failure plus a visibility delay, and so one more receive: the outbox's
# own budget (10 attempts) and the holds behind it must fit before SQS gives a notice up. A
# notice that still reaches the dead-letter queue failed the function itself, repeatedly.
RECEIVES_BEFORE_DEAD_LETTER = 25
FOUR_DAYS = 4 * 24 * 3600
FOURTEEN_DAYS = 14 * 24 * 3600


def queue_arn(partition: str, region: str, account_id: str, queue_name: str) -> str:
    """The ARN SQS gives a queue, known from its name before the queue exists.

    Args:
        partition: The AWS partition (``aws``).
        region: The queue's region.
        account_id: The owning account.
        queue_name: The full queue name (``….fifo`` for a FIFO queue).

    Returns:
        ``arn:<partition>:sqs:<region>:<account>:<name>``.
    """
    return f"arn:{partition}:sqs:{region}:{account_id}:{queue_name}"


def visibility_timeout(function_timeout_seconds: int) -> int:
    """The source queue's visibility timeout for a function with this timeout (AWS: >= 6x)."""
    if function_timeout_seconds < 1:
        raise ValueError("the function timeout must be at least one second")
    return VISIBILITY_FACTOR * function_timeout_seconds


def consumer_statement(arn: str) -> Document:
    """The function role's statement on its delivery queue: exact actions, one queue ARN."""
    if "*" in arn:
        raise ValueError(f"the delivery queue must be named exactly, got {arn!r}")
    return allow(CONSUMER_ACTIONS, [arn])


def redrive_policy(dead_letter_arn: str, max_receive_count: int) -> str:
    """The source queue's ``RedrivePolicy`` (JSON, as SQS stores it)."""
    return json.dumps(
        {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count},
        sort_keys=True,
    )


def redrive_allow_policy(source_arn: str) -> str:
    """The dead-letter queue's ``RedriveAllowPolicy``: only this source queue may use it."""
    return json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]}, sort_keys=True
    )


@dataclass
class DeliveryQueueArgs:
    """Inputs of :class:`DeliveryQueue`."""

    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    function_timeout_seconds: int
    """The consuming function's timeout; the visibility timeout is six times it."""
    max_receive_count: int = RECEIVES_BEFORE_DEAD_LETTER
    """Receives before a message moves to the dead-letter queue."""
    retention_seconds: int = FOUR_DAYS
    oldest_message_alarm_seconds: int = 900
    """Alarm when the oldest queued delivery waits longer than this (a stuck lane)."""
    alarm_topic_arn: pulumi.Input[str] | None = None


class DeliveryQueue(pulumi.ComponentResource):
    """SQS FIFO delivery queue, its FIFO dead-letter queue and their alarms (SSE on both)."""

    queue_url: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    dead_letter_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeliveryQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:DeliveryQueue", name, None, opts)
        if not 1 <= args.max_receive_count <= 1000:
            raise ValueError("max_receive_count must be 1 to 1000")
        if args.retention_seconds >= FOURTEEN_DAYS:
            raise ValueError("the queue must expire messages before its dead-letter queue does")
        self.queue_name = f"{name}{FIFO_SUFFIX}"
        self.dead_letter_name = f"{name}-dlq{FIFO_SUFFIX}"
        arns = pulumi.Output.all(args.partition, args.account_id).apply(
            lambda values: (
                queue_arn(values[0], args.region, values[1], self.queue_name),
                queue_arn(values[0], args.region, values[1], self.dead_letter_name),
            )
        )
        self.queue_arn = arns.apply(lambda pair: pair[0])
        self.dead_letter_arn = arns.apply(lambda pair: pair[1])
        # Fixed names cannot be created before the old queue is gone.
        replace_first = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        self.dead_letter = aws.sqs.Queue(
            f"{name}-dlq",
            name=self.dead_letter_name,
            fifo_queue=True,
            content_based_deduplication=False,
            sqs_managed_sse_enabled=True,
            # Longer than the source's retention: a message keeps its first enqueue time.
            message_retention_seconds=FOURTEEN_DAYS,
            redrive_allow_policy=self.queue_arn.apply(redrive_allow_policy),
            opts=replace_first,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-fifo",
            name=self.queue_name,
            fifo_queue=True,
            # The app deduplicates by delivery id (MessageDeduplicationId), per target lane.
            content_based_deduplication=False,
            deduplication_scope="messageGroup",
            fifo_throughput_limit="perMessageGroupId",
            sqs_managed_sse_enabled=True,
            visibility_timeout_seconds=visibility_timeout(args.function_timeout_seconds),
            message_retention_seconds=args.retention_seconds,
            redrive_policy=self.dead_letter_arn.apply(
                lambda arn: redrive_policy(arn, args.max_receive_count)
            ),
            opts=pulumi.ResourceOptions(
                parent=self, delete_before_replace=True, depends_on=[self.dead_letter]
            ),
        )
        actions = [args.alarm_topic_arn] if args.alarm_topic_arn is not None else []
        self.dead_letter_alarm = _queue_alarm(
            f"{name}-dlq-messages",
            description="syncbot: deliveries moved to the dead-letter queue",
            queue=self.dead_letter,
            queue_name=self.dead_letter_name,
            metric="ApproximateNumberOfMessagesVisible",
            threshold=0,
            comparison="GreaterThanThreshold",
            actions=actions,
            parent=self,
        )
        self.oldest_message_alarm = _queue_alarm(
            f"{name}-oldest-message",
            description="syncbot: a delivery has waited in the queue too long",
            queue=self.queue,
            queue_name=self.queue_name,
            metric="ApproximateAgeOfOldestMessage",
            threshold=args.oldest_message_alarm_seconds,
            comparison="GreaterThanOrEqualToThreshold",
            actions=actions,
            parent=self,
        )
        self.queue_url = self.queue.url
        self.register_outputs(
            {
                "queue_url": self.queue_url,
                "queue_arn": self.queue_arn,
                "dead_letter_arn": self.dead_letter_arn,
            }
        )


def _queue_alarm(
    resource_name: str,
    *,
    description: str,
    queue: aws.sqs.Queue,
    queue_name: str,
    metric: str,
    threshold: float,
    comparison: str,
    actions: list[pulumi.Input[str]],
    parent: pulumi.Resource,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm on one SQS metric of one queue: its worst value over five minutes.

    No data means an idle queue, not a broken one, so it never alarms.
    """
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        alarm_description=description,
        namespace="AWS/SQS",
        metric_name=metric,
        dimensions={"QueueName": queue_name},
        statistic="Maximum",
        period=300,
        evaluation_periods=1,
        threshold=threshold,
        comparison_operator=comparison,
        treat_missing_data="notBreaching",
        alarm_actions=actions,
        ok_actions=actions,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[queue]),
    )


@dataclass
class QueueTriggerArgs:
    """Inputs of :class:`QueueTrigger`."""

    queue: DeliveryQueue
    function_arn: pulumi.Input[str]
    batch_size: int = MAX_FIFO_BATCH
    maximum_concurrency: int | None = None
    """Cap on concurrent invocations the queue may start (leaves room for HTTP requests)."""
    depends_on: list[pulumi.Resource] | None = None
    """What must exist first: the function's IAM policy naming the queue (AWS checks it)."""


class QueueTrigger(pulumi.ComponentResource):
    """The event source mapping from the delivery queue to the function.

    Partial batch responses (``ReportBatchItemFailures``): the function names the failed
    messages, only those return to the queue, and the rest of the batch is deleted. No
    batching window: a delivery starts as soon as it is queued (FIFO queues take none anyway).
    """

    mapping_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: QueueTriggerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("syncbot:aws:QueueTrigger", name, None, opts)
        if not 1 <= args.batch_size <= MAX_FIFO_BATCH:
            raise ValueError(f"a FIFO batch is 1 to {MAX_FIFO_BATCH} messages")
        scaling = None
        if args.maximum_concurrency is not None:
            # SQS event sources accept a maximum concurrency of 2 to 1000.
            scaling = {"maximum_concurrency": min(1000, max(2, args.maximum_concurrency))}
        self.mapping = aws.lambda_.EventSourceMapping(
            f"{name}-esm",
            event_source_arn=args.queue.queue_arn,
            function_name=args.function_arn,
            batch_size=args.batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=scaling,
            enabled=True,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.queue.queue, *(args.depends_on or [])]
            ),
        )
        self.mapping_id = self.mapping.uuid
        self.register_outputs({"mapping_id": self.mapping_id})
