"""What a failed delivery becomes: retried soon, held with its target's backlog, or dead.

A target that keeps failing (a homeserver down for hours, a workspace whose API is out, a
channel the bot was removed from) must not lose its messages one by one as each exhausts a retry
budget: deliveries to one target go in order, so its first pending row holding back the rest *is*
the pause. Once a row has failed ``RetryPolicy.max_attempts`` times in a row — or at once when
the remote says only an outside change can help (``RemoteError.hold``: the bot is not in the
channel) — its target is *held*: it is tried again every ``hold_interval`` until it works or
the row is older than ``max_age`` (a setting, hours to days), and only then is the row dead.
A held target is resumed at once by the event that ends the cause (the bot re-added) or by an
operator (``syncbot deliveries retry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.ports import DeliveryTask
from app.errors import RemoteError

__all__ = ["Verdict", "judge"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a failed delivery."""

    dead: bool
    # Seconds until the next attempt (when not dead).
    delay: float = 0.0
    # The target is held: only a recheck, an outside event or an operator moves it.
    held: bool = False
    # This failure is what held it (tell the admins once, not on every recheck).
    newly_held: bool = False


def age_of(task: DeliveryTask, now: datetime) -> float:
    """Seconds since the delivery was queued (0 when unknown)."""
    if task.queued_at is None:
        return 0.0
    queued = task.queued_at if task.queued_at.tzinfo else task.queued_at.replace(tzinfo=UTC)
    return max(0.0, (now - queued).total_seconds())


def judge(
    exc: RemoteError,
    task: DeliveryTask,
    *,
    max_attempts: int,
    max_age: float,
    hold_interval: float,
    backoff: float,
    now: datetime | None = None,
) -> Verdict:
    """Decide the fate of ``task`` after its attempt failed with ``exc``.

    Args:
        exc: The failure; ``retryable`` and ``hold`` say whether waiting can help.
        task: The delivery, with its attempts so far, its queue time and its last error.
        max_attempts: Failures in a row before the target is held.
        max_age: Seconds a delivery is kept; an older one that fails again is dead.
        hold_interval: Seconds between rechecks of a held target.
        backoff: The delay the retry policy gives this attempt (before holding).
        now: The current time (tests).
    """
    if not (exc.retryable or exc.hold):
        return Verdict(dead=True)
    if age_of(task, now or datetime.now(UTC)) >= max_age:
        return Verdict(dead=True)
    attempts = task.attempts + 1
    if exc.hold:
        was_held = bool(task.last_error) and str(task.last_error).startswith(f"{exc.code}:")
        return Verdict(dead=False, delay=hold_interval, held=True, newly_held=not was_held)
    if attempts < max_attempts:
        return Verdict(dead=False, delay=backoff)
    delay = backoff if exc.retry_after is not None else max(backoff, hold_interval)
    return Verdict(dead=False, delay=delay, held=True, newly_held=attempts == max_attempts)
