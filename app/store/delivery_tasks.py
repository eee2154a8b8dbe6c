"""A claimed outbox row as the deliverer sees it, built the same way by every store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from app.core.endpoints import Endpoint
from app.core.events import Kind
from app.core.payloads import Payload, thread_post_id
from app.core.ports import Copy, DeliveryTask


class DeliveryRowLike(Protocol):
    """The columns of an outbox row a task is built from (an ORM/Core row or a memory row)."""

    @property
    def uid(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def target_endpoint(self) -> str: ...
    @property
    def post_id(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def outcome_unknown(self) -> bool: ...
    @property
    def source_time(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def last_error(self) -> str | None: ...


def delivery_task(
    row: DeliveryRowLike, payload: Payload, copies: Mapping[tuple[str, str], Copy]
) -> DeliveryTask:
    """The task for ``row``, its copy and its thread parent's copy at the target resolved.

    Args:
        row: the claimed outbox row.
        payload: its payload, already read back typed.
        copies: message-map copies by ``(post id, endpoint)``, covering the row's post and
            its thread parent at the row's target.
    """
    target = row.target_endpoint
    parent_id = thread_post_id(payload)
    return DeliveryTask(
        uid=row.uid,
        kind=Kind(row.kind),
        target=Endpoint.parse(target),
        post_id=row.post_id,
        payload=payload,
        attempts=row.attempts,
        outcome_unknown=row.outcome_unknown,
        copy=copies.get((row.post_id, target)) if row.post_id else None,
        parent_copy=copies.get((parent_id, target)) if parent_id else None,
        source_time=row.source_time,
        queued_at=row.created_at,
        last_error=row.last_error,
    )
