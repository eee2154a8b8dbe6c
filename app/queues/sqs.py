"""AWS: an SQS FIFO queue carries delivery notices to the Lambda function.

One message per outbox row: message group = target endpoint (SQS hands out one group's messages
in order and one at a time, so deliveries to a channel stay in order while channels proceed in
parallel), deduplication id = delivery id. The event source mapping reports partial batch
failures: a row that must wait (``Retry-After``, backoff, an earlier row of its target) makes
its message invisible for exactly that long and is reported failed, as is every later message of
its group in the batch, so SQS redelivers them in order when the wait is over.

boto3 ships with the Lambda runtime, not in our bundle, so it is imported lazily.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from app.core.dispatch import Dispatcher
from app.core.ports import PendingDelivery
from app.errors import RemoteError

log = logging.getLogger("syncbot.queues.sqs")

BATCH = 10  # SendMessageBatch's limit
MAX_GROUP_ID = 128
MAX_VISIBILITY = 12 * 3600  # SQS's limit
# A row that cannot move yet but says "now" (a race with another worker) is looked at again
# after this long rather than in a tight loop.
MIN_WAIT = 1
# After the worker itself failed on a notice (the database away, a bug).
ERROR_WAIT = 10


def _boto3_client() -> Any:
    import boto3  # ships with the Lambda runtime, not with our bundle

    return boto3.client("sqs")


# Replaced by tests with a fake SQS; one client per process, made on first use.
client_factory: Callable[[], Any] = _boto3_client


@functools.cache
def sqs_client() -> Any:
    return client_factory()


def reset_client() -> None:
    """Forget the client (a new ``client_factory``)."""
    sqs_client.cache_clear()


def group_id(target: str) -> str:
    """The message group of a target endpoint (SQS allows 128 characters)."""
    if len(target) <= MAX_GROUP_ID:
        return target
    return hashlib.sha256(target.encode()).hexdigest()


def notice(uid: str) -> str:
    return json.dumps({"delivery": uid})


class SqsNotifier:
    name = "sqs"
    remote = True

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    async def notify(self, pending: Sequence[PendingDelivery]) -> None:
        entries = [
            {
                "Id": str(i),
                "MessageBody": notice(p.uid),
                "MessageGroupId": group_id(str(p.target)),
                "MessageDeduplicationId": p.uid,
            }
            for i, p in enumerate(pending)
        ]
        failed: list[str] = []
        for start in range(0, len(entries), BATCH):
            chunk = entries[start : start + BATCH]
            answer = await asyncio.to_thread(
                sqs_client().send_message_batch, QueueUrl=self.queue_url, Entries=chunk
            )
            failed.extend(
                f"{f.get('Code')}: {f.get('Message', '')}" for f in answer.get("Failed", [])
            )
        if failed:
            raise RemoteError(
                f"SQS refused {len(failed)} notice(s): {failed[0]}", network="sqs", retryable=True
            )


async def handle_batch(
    records: Sequence[dict[str, Any]], dispatcher: Dispatcher, *, queue_url: str
) -> dict[str, Any]:
    """Process one event-source-mapping batch; returns the partial batch failure report.

    A message reported failed comes back only when its visibility timeout ends, so every
    failed message is given the wait of the row that holds its group up; SQS then hands the
    group's messages out again in their order.
    """
    failures: list[str] = []
    held: dict[str, int] = {}  # message group -> seconds its messages stay hidden
    for record in records:
        message_id = str(record.get("messageId", ""))
        group = str((record.get("attributes") or {}).get("MessageGroupId", ""))
        if group in held:
            failures.append(message_id)
            await _hide(queue_url, record, held[group])
            continue
        try:
            uid = json.loads(record["body"])["delivery"]
            if not isinstance(uid, str) or not uid:
                raise ValueError("no delivery id")
        except (KeyError, TypeError, ValueError) as exc:
            # It can never succeed; redelivering it would only feed the dead-letter queue.
            log.error(
                "dropping a malformed SQS notice",
                extra={"sqs_message": message_id, "error": str(exc)},
            )
            continue
        try:
            waiting = await dispatcher.work(uid)
        except Exception:
            log.exception("delivery notice failed", extra={"delivery": uid})
            seconds = ERROR_WAIT
        else:
            if waiting is None:
                continue
            seconds = min(MAX_VISIBILITY, max(MIN_WAIT, math.ceil(waiting.due_in)))
        failures.append(message_id)
        held[group] = seconds
        await _hide(queue_url, record, seconds)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}


async def _hide(queue_url: str, record: dict[str, Any], seconds: int) -> None:
    try:
        await asyncio.to_thread(
            sqs_client().change_message_visibility,
            QueueUrl=queue_url,
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=seconds,
        )
    except Exception:
        # The message then comes back after the queue's visibility timeout instead: later,
        # but not lost.
        log.exception(
            "could not delay an SQS notice", extra={"sqs_message": record.get("messageId")}
        )
