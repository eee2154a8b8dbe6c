"""A fake SQS FIFO queue (boto3 client surface) and a fake Lambda event source mapping.

Faithful to what the app relies on: messages of one group are handed out in order and never
while an earlier one of the group is in flight; a message reported failed stays invisible until
its visibility timeout (the queue's default unless changed) ends; deduplication ids are honoured
for five minutes; batches carry the ``Records`` shape Lambda passes to the function.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:syncbot-deliveries.fifo"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/syncbot-deliveries.fifo"
DEDUP_WINDOW = 300.0


@dataclass
class Message:
    message_id: str
    body: str
    group: str
    dedup: str
    sent_at: float
    visible_at: float = 0.0
    receipt: str | None = None
    receives: int = 0
    visibility_changes: list[int] = field(default_factory=list)


class FakeSqs:
    def __init__(self, *, visibility_timeout: float = 30.0) -> None:
        self.visibility_timeout = visibility_timeout
        self.messages: list[Message] = []
        self.deleted: list[Message] = []
        self.sent_batches = 0
        self._dedup: dict[str, float] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.fail_sends = False

    # -- the boto3 client surface the app uses ----------------------------------------------

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict:
        assert QueueUrl == QUEUE_URL
        assert 1 <= len(Entries) <= 10, "SendMessageBatch takes 1 to 10 entries"
        if self.fail_sends:
            raise ConnectionError("SQS unreachable")
        ok = []
        now = time.monotonic()
        with self._lock:
            self.sent_batches += 1
            for entry in Entries:
                assert entry["MessageGroupId"] and len(entry["MessageGroupId"]) <= 128
                dedup = entry["MessageDeduplicationId"]
                if now - self._dedup.get(dedup, -DEDUP_WINDOW) < DEDUP_WINDOW:
                    ok.append({"Id": entry["Id"], "MessageId": "deduplicated"})
                    continue
                self._dedup[dedup] = now
                message = Message(
                    message_id=f"m-{next(self._ids)}",
                    body=entry["MessageBody"],
                    group=entry["MessageGroupId"],
                    dedup=dedup,
                    sent_at=now,
                )
                self.messages.append(message)
                ok.append({"Id": entry["Id"], "MessageId": message.message_id})
        return {"Successful": ok, "Failed": []}

    def change_message_visibility(
        self,
        *,
        QueueUrl: str,
        ReceiptHandle: str,
        VisibilityTimeout: int,
    ) -> dict:
        assert QueueUrl == QUEUE_URL
        assert 0 <= VisibilityTimeout <= 43200
        with self._lock:
            for message in self.messages:
                if message.receipt == ReceiptHandle:
                    message.visible_at = time.monotonic() + VisibilityTimeout
                    message.visibility_changes.append(VisibilityTimeout)
                    return {}
        raise KeyError("ReceiptHandleIsInvalid")

    # -- what the event source mapping does ---------------------------------------------------

    def receive(self, limit: int = 10) -> list[dict[str, Any]]:
        now = time.monotonic()
        taken: list[Message] = []
        blocked: set[str] = set()
        with self._lock:
            for message in self.messages:
                if message.group in blocked:
                    continue
                if message.visible_at > now:  # in flight: its group waits behind it
                    blocked.add(message.group)
                    continue
                taken.append(message)
                if len(taken) == limit:
                    break
            for message in taken:
                message.visible_at = now + self.visibility_timeout
                message.receipt = uuid.uuid4().hex
                message.receives += 1
        return [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "MessageGroupId": m.group,
                    "MessageDeduplicationId": m.dedup,
                    "ApproximateReceiveCount": str(m.receives),
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "eu-west-1",
            }
            for m in taken
        ]

    def delete(self, receipts: set[str]) -> None:
        with self._lock:
            keep = []
            for message in self.messages:
                if message.receipt in receipts:
                    self.deleted.append(message)
                else:
                    keep.append(message)
            self.messages = keep


class LambdaHost:
    """One Lambda execution environment: invocations run one at a time on one thread."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        self._handler = handler
        self._calls: Queue[tuple[dict[str, Any], Future[Any]] | None] = Queue()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-lambda")
        self._thread.start()

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            event, future = item
            try:
                future.set_result(self._handler(event, None))
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def invoke(self, event: dict[str, Any], timeout: float = 60.0) -> Any:
        future: Future[Any] = Future()
        self._calls.put((event, future))
        return future.result(timeout)

    def stop(self) -> None:
        self._calls.put(None)
        self._thread.join(10)


class EventSourceMapping:
    """Polls the queue and invokes the function with batches, honouring partial failures."""

    def __init__(self, queue: FakeSqs, host: LambdaHost, *, batch: int = 10) -> None:
        self.queue = queue
        self.host = host
        self.batch = batch
        self.reports: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-esm")

    def start(self) -> EventSourceMapping:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            records = self.queue.receive(self.batch)
            if not records:
                self._stop.wait(0.02)
                continue
            try:
                report = self.host.invoke({"Records": records})
            except Exception:
                continue  # the whole batch comes back after the visibility timeout
            self.reports.append(report)
            failed = {f["itemIdentifier"] for f in report.get("batchItemFailures", [])}
            self.queue.delete(
                {r["receiptHandle"] for r in records if r["messageId"] not in failed}
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
