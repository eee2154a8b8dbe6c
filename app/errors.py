"""The error families of syncbot. Operator-facing text is written where the error is raised."""

from __future__ import annotations

from collections.abc import Iterable


class SyncbotError(Exception):
    """Root of every error syncbot raises on purpose."""


class ConfigError(SyncbotError):
    """The configuration cannot work; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[str] | str) -> None:
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class StoreError(SyncbotError):
    """The database is unreachable, not at the expected schema, or refused an operation."""


class CipherError(SyncbotError):
    """A secret could not be decrypted: wrong key, unknown key id or tampered ciphertext."""


class RemoteError(SyncbotError):
    """A remote network (Slack, Matrix, a peer) refused or failed a call.

    ``retryable`` tells the outbox whether another attempt can succeed; ``retry_after`` is the
    delay the remote asked for, in seconds, when it said so; ``hold`` that no delivery to the
    target can succeed until an outside change (see :mod:`app.core.holds`).
    """

    def __init__(
        self,
        message: str,
        *,
        network: str,
        status: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
        hold: bool = False,
    ) -> None:
        super().__init__(message)
        self.network = network
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after
        # The request may have taken effect although we saw no answer (timeout, dropped
        # connection, 5xx after the write): the next attempt must check before repeating it.
        self.outcome_unknown = outcome_unknown
        # The target cannot take any delivery until something outside changes (the bot was
        # removed from the channel): hold its backlog rather than spend retries on it.
        self.hold = hold


class FederationError(SyncbotError):
    """A peer-instance request is invalid, unsigned, stale, replayed or not allowed."""


class RedeliveryRequested(SyncbotError):
    """Raised by an event hook that cannot take an event yet (the Matrix bridge still creating
    the portal the event needs): the event is not acknowledged, so Slack sends it again."""
