"""The Lambda entry with SQS-shaped batches: partial batch failures, group order, visibility."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from app import lambda_handler
from app.core.endpoints import Endpoint
from app.core.ports import PendingDelivery
from app.queues import sqs
from tests.fakes.sqs import QUEUE_URL, FakeSqs


class ScriptedDispatcher:
    """Answers work(uid) from a script: None (settled), a wait in seconds, or an exception."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.seen: list[str] = []

    async def work(self, uid: str) -> PendingDelivery | None:
        self.seen.append(uid)
        answer = self.script.get(uid)
        if isinstance(answer, Exception):
            raise answer
        if answer is None:
            return None
        return PendingDelivery(uid=uid, target=TARGET, attempts=1, due_in=answer)


TARGET = Endpoint.slack("T1", "C1")


def body_of(item: str) -> str:
    # Raw bodies (malformed notices) are given as they are; anything else is a delivery id.
    return item if item.startswith("{") or item == "junk" else sqs.notice(item)


def batch(queue: FakeSqs, *items: tuple[str, str]) -> list[dict[str, Any]]:
    queue.send_message_batch(
        QueueUrl=QUEUE_URL,
        Entries=[
            {
                "Id": str(i),
                "MessageBody": body
                if body.startswith("{") or body == "junk"
                else sqs.notice(body),
                "MessageGroupId": group,
                "MessageDeduplicationId": f"d{i}",
            }
            for i, (group, body) in enumerate(items)
        ],
    )
    return queue.receive(10)


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> FakeSqs:
    fake = FakeSqs()
    monkeypatch.setattr(sqs, "client_factory", lambda: fake)
    sqs.reset_client()
    yield fake
    sqs.reset_client()


async def run(records: Sequence[dict[str, Any]], script: dict[str, Any]) -> tuple[dict, list[str]]:
    dispatcher = ScriptedDispatcher(script)
    report = await sqs.handle_batch(records, dispatcher, queue_url=QUEUE_URL)  # type: ignore[arg-type]
    return report, dispatcher.seen


async def test_a_waiting_row_fails_its_message_and_the_rest_of_its_group(queue: FakeSqs) -> None:
    records = batch(queue, ("g1", "a1"), ("g2", "b1"), ("g1", "a2"), ("g2", "b2"))
    report, seen = await run(records, {"a1": 2.4})
    failed = [f["itemIdentifier"] for f in report["batchItemFailures"]]
    assert failed == [records[0]["messageId"], records[2]["messageId"]]
    assert seen == ["a1", "b1", "b2"]  # a2 is not even looked at: it must not overtake a1
    # Both of g1's messages stay hidden exactly as long as a1 needs (ceil), not the default.
    hidden = {m.message_id: m.visibility_changes for m in queue.messages}
    assert hidden[records[0]["messageId"]] == [3]
    assert hidden[records[2]["messageId"]] == [3]


async def test_malformed_notices_are_dropped_and_errors_retried(queue: FakeSqs) -> None:
    records = batch(queue, ("g1", "junk"), ("g2", '{"nope": 1}'), ("g3", "c1"), ("g4", "d1"))
    report, seen = await run(records, {"c1": RuntimeError("database away"), "d1": 0.0})
    failed = [f["itemIdentifier"] for f in report["batchItemFailures"]]
    assert failed == [records[2]["messageId"], records[3]["messageId"]]
    assert seen == ["c1", "d1"]
    hidden = {m.message_id: m.visibility_changes for m in queue.messages}
    assert hidden[records[2]["messageId"]] == [sqs.ERROR_WAIT]
    assert hidden[records[3]["messageId"]] == [sqs.MIN_WAIT]  # never a tight loop


async def test_notifier_sends_fifo_entries_in_batches_of_ten(queue: FakeSqs) -> None:
    long_target = Endpoint.parse("matrix:!" + "x" * 200 + ":example.org")
    pending = [
        PendingDelivery(
            uid=f"u{i}", target=Endpoint.parse(f"slack:T1/C{i % 3}"), attempts=0, due_in=0
        )
        for i in range(23)
    ] + [PendingDelivery(uid="long", target=long_target, attempts=0, due_in=0)]
    await sqs.SqsNotifier(QUEUE_URL).notify(pending)
    assert queue.sent_batches == 3
    by_uid = {json.loads(m.body)["delivery"]: m for m in queue.messages}
    assert by_uid["u4"].group == "slack:T1/C1" and by_uid["u4"].dedup == "u4"
    assert len(by_uid["long"].group) == 64  # hashed: SQS allows 128 characters
    # The same notice again within five minutes is deduplicated by SQS.
    await sqs.SqsNotifier(QUEUE_URL).notify(pending[:1])
    assert len(queue.messages) == 24


def test_lambda_entry_reports_partial_batch_failures(
    queue: FakeSqs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = batch(queue, ("g1", "a1"), ("g2", "b1"))
    dispatcher = ScriptedDispatcher({"b1": 1.0})

    class Runtime:
        settings = type("S", (), {"delivery_queue": QUEUE_URL})()
        services = type("Sv", (), {"dispatcher": dispatcher})()

    monkeypatch.setattr(lambda_handler, "_runtime", lambda: Runtime())
    report = lambda_handler.handler({"Records": records}, None)
    assert report == {"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]}]}
    assert lambda_handler.is_sqs_batch({"Records": records})
    assert not lambda_handler.is_sqs_batch({"Records": [{"eventSource": "aws:s3"}]})
