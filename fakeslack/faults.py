"""Fault injection for the fake's HTTP endpoints: queued or seeded-random faults and latency.

A fault is chosen per call, either from a per-method FIFO queue (or the global ``"*"`` queue), or
with a seeded probability. ``after=True`` applies it after the method's side effect: the write
happened but the client cannot know, like a real lost response. A rate-limited answer is
HTTP 429 with ``Retry-After`` seconds (https://docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["ratelimited", "status", "slow", "hang", "drop", "error"]


@dataclass(frozen=True)
class Fault:
    """One injected failure.

    Attributes:
        kind: ``ratelimited`` (HTTP 429 + ``Retry-After``), ``status`` (bare HTTP status such as
            500/502/503), ``slow`` (answer normally after ``delay`` seconds), ``hang`` (never
            answer until the client gives up), ``drop`` (close the connection without a
            response) or ``error`` (HTTP 200 ``{"ok": false, "error": error}``).
        status: HTTP status for ``status`` faults.
        retry_after: Seconds in the ``Retry-After`` header of ``ratelimited`` faults.
        delay: Seconds to wait for ``slow`` faults.
        error: Slack error string for ``error`` faults.
        after: Apply after the side effect instead of before it.
    """

    kind: FaultKind
    status: int = 500
    retry_after: int = 1
    delay: float = 0.0
    error: str = "internal_error"
    after: bool = False

    @classmethod
    def ratelimited(cls, retry_after: int = 1) -> Fault:
        """HTTP 429 with ``Retry-After`` and ``{"ok":false,"error":"ratelimited"}``."""
        return cls("ratelimited", status=429, retry_after=retry_after)

    @classmethod
    def http(cls, status: int = 500, *, after: bool = False) -> Fault:
        """A bare HTTP error status (500, 502, 503, ...)."""
        return cls("status", status=status, after=after)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer correctly, but only after ``delay`` seconds."""
        return cls("slow", delay=delay)

    @classmethod
    def hang(cls, *, after: bool = False) -> Fault:
        """Hold the request open until the client times out."""
        return cls("hang", after=after)

    @classmethod
    def drop(cls, *, after: bool = False) -> Fault:
        """Close the connection without sending a response."""
        return cls("drop", after=after)

    @classmethod
    def slack_error(cls, error: str) -> Fault:
        """An ``ok:false`` body with the given Slack error string."""
        return cls("error", error=error)

    @classmethod
    def parse(cls, spec: str | dict[str, Any]) -> Fault:
        """A fault from its control-API spelling.

        Strings: ``"429"`` / ``"ratelimited"`` (``"429:5"``: ``Retry-After: 5``), an HTTP status
        such as ``"500"`` or ``"503"``, ``"timeout"`` / ``"hang"``, ``"drop"``, ``"slow:0.2"``,
        ``"error:fatal_error"``; a ``"_after"`` suffix (``"500_after"``, ``"drop_after"``,
        ``"timeout_after"``) applies it after the side effect. Dicts carry the dataclass fields.
        """
        if isinstance(spec, dict):
            fields = {k: spec[k] for k in cls.__dataclass_fields__ if k in spec}
            if fields.get("kind") not in _KINDS:
                raise ValueError(f"unknown fault kind: {spec.get('kind')!r}")
            return cls(**fields)
        name, _, arg = spec.partition(":")
        after = name.endswith("_after")
        name = name.removesuffix("_after")
        if name in ("429", "ratelimited"):
            return cls.ratelimited(int(arg or 1))
        if name.isdigit():
            return cls.http(int(name), after=after)
        if name in ("timeout", "hang"):
            return cls.hang(after=after)
        if name == "drop":
            return cls.drop(after=after)
        if name == "slow":
            return cls.slow(float(arg or 1.0))
        if name == "error":
            return cls.slack_error(arg or "internal_error")
        raise ValueError(f"unknown fault: {spec!r}")


_KINDS = frozenset(("ratelimited", "status", "slow", "hang", "drop", "error"))


class FaultPlan:
    """Decides, per call, which fault (if any) applies and how much latency to add."""

    def __init__(self, seed: int = 0) -> None:
        self._queues: dict[str, deque[Fault]] = defaultdict(deque)
        self._random: list[tuple[str, float, tuple[Fault, ...]]] = []
        self._rng = random.Random(seed)
        self.latency: dict[str, float] = {}

    def queue(self, method: str, *faults: Fault) -> None:
        """Apply ``faults`` to the next calls of ``method`` (``"*"``: any method), in order."""
        self._queues[method].extend(faults)

    def randomly(self, method: str, probability: float, *faults: Fault) -> None:
        """Fail each call of ``method`` (or ``"*"``) with ``probability``, with one of ``faults``
        (chosen uniformly by the same seeded RNG)."""
        if not faults:
            raise ValueError("randomly() needs at least one fault")
        self._random.append((method, probability, faults))

    def add_latency(self, seconds: float, method: str = "*") -> None:
        """Delay every answer of ``method`` (or all) by ``seconds``."""
        self.latency[method] = seconds

    def clear(self) -> None:
        """Forget all queued and random faults and latency."""
        self._queues.clear()
        self._random.clear()
        self.latency.clear()

    def delay_for(self, method: str) -> float:
        """Injected latency for one call of ``method``."""
        return self.latency.get(method, self.latency.get("*", 0.0))

    def next(self, method: str) -> Fault | None:
        """The fault for this call of ``method``, consuming it from its queue."""
        for key in (method, "*"):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        for key, probability, faults in self._random:
            if key in (method, "*") and self._rng.random() < probability:
                return faults[0] if len(faults) == 1 else self._rng.choice(faults)
        return None
