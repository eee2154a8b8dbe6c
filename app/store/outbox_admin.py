"""Operating the outbox: resume a held target, requeue dead deliveries, see what is stuck.

A target is *held* (see :mod:`app.core.holds`) while its oldest pending delivery keeps failing;
the rows behind it wait in order. These are the operator's and the adapters' handles on that:
``syncbot status`` lists the held targets and the dead rows, ``syncbot deliveries retry``
requeues dead rows, and an adapter resumes a target when the cause is gone (the bot re-added).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import Delivery, MessageCopy
from app.store.rows import affected

__all__ = [
    "HeldTarget",
    "dead_by_target",
    "held_targets",
    "held_targets_of",
    "requeue_dead",
    "resume",
    "retarget",
]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class HeldTarget:
    """A target whose oldest pending delivery has failed: everything behind it waits."""

    target: str
    waiting: int
    attempts: int
    last_error: str
    since: datetime
    next_attempt_at: datetime


def resume(sessions: sessionmaker[Session], target: str) -> list[str]:
    """Make every pending delivery of ``target`` due now (the cause of its hold is gone).

    Returns:
        The uids of the pending rows, oldest first, for the dispatcher to notify.
    """
    with sessions() as s, s.begin():
        s.execute(
            update(Delivery)
            .where(Delivery.target_endpoint == target, Delivery.status == "pending")
            .values(next_attempt_at=_now()),
            execution_options={"synchronize_session": False},
        )
        return list(
            s.execute(
                select(Delivery.uid)
                .where(Delivery.target_endpoint == target, Delivery.status == "pending")
                .order_by(Delivery.id)
            ).scalars()
        )


def retarget(sessions: sessionmaker[Session], old: str, new: str) -> int:
    """Move everything addressed to endpoint ``old`` to ``new`` (a placeholder replaced by the
    real endpoint): outbox rows, made due now, and message-map copies.

    Returns:
        How many outbox rows moved.
    """
    with sessions() as s, s.begin():
        moved = s.execute(
            update(Delivery)
            .where(Delivery.target_endpoint == old)
            .values(target_endpoint=new, next_attempt_at=_now()),
            execution_options={"synchronize_session": False},
        )
        s.execute(
            update(MessageCopy).where(MessageCopy.endpoint == old).values(endpoint=new),
            execution_options={"synchronize_session": False},
        )
    return affected(moved)


def requeue_dead(
    sessions: sessionmaker[Session],
    *,
    sync_id: int | None = None,
    targets: Sequence[str] | None = None,
) -> list[str]:
    """Give dead deliveries a fresh start, in their original order (their ids keep it).

    Each requeued row is pending again with no attempts and a new retention period
    (``created_at`` is reset: it bounds how long a held row is kept). An earlier post's copy
    is made before its later edits, reactions and replies, which resolve against it.

    Returns:
        The requeued uids, oldest first.
    """
    where = [Delivery.status == "dead"]
    if sync_id is not None:
        where.append(Delivery.sync_id == sync_id)
    if targets is not None:
        where.append(Delivery.target_endpoint.in_(list(targets)))
    now = _now()
    with sessions() as s, s.begin():
        uids = list(s.execute(select(Delivery.uid).where(*where).order_by(Delivery.id)).scalars())
        if uids:
            s.execute(
                update(Delivery)
                .where(Delivery.uid.in_(uids))
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                execution_options={"synchronize_session": False},
            )
        return uids


def held_targets(session: Session) -> list[HeldTarget]:
    """Targets whose oldest pending delivery has failed at least once, most stuck first."""
    first = (
        select(
            Delivery.target_endpoint,
            func.min(Delivery.id).label("first"),
            func.count().label("waiting"),
        )
        .where(Delivery.status == "pending")
        .group_by(Delivery.target_endpoint)
        .subquery()
    )
    rows = session.execute(
        select(
            Delivery.target_endpoint,
            first.c.waiting,
            Delivery.attempts,
            Delivery.last_error,
            Delivery.created_at,
            Delivery.next_attempt_at,
        )
        .join(first, and_(Delivery.id == first.c.first))
        .where(Delivery.attempts > 0)
        .order_by(Delivery.created_at)
    ).all()
    return [
        HeldTarget(
            target=r.target_endpoint,
            waiting=int(r.waiting),
            attempts=int(r.attempts),
            last_error=r.last_error or "",
            since=r.created_at,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows
    ]


def held_targets_of(sessions: sessionmaker[Session], prefix: str) -> list[HeldTarget]:
    """The held targets whose endpoint starts with ``prefix`` (``slack:T123/``)."""
    with sessions() as s:
        return [h for h in held_targets(s) if h.target.startswith(prefix)]


def dead_by_target(session: Session) -> dict[str, int]:
    """How many dead deliveries each target has."""
    rows = session.execute(
        select(Delivery.target_endpoint, func.count())
        .where(Delivery.status == "dead")
        .group_by(Delivery.target_endpoint)
    ).all()
    return {target: int(count) for target, count in sorted(rows)}
