"""Delivering the outbox: concurrent across targets, in order per target, never dropped.

Every store call is blocking (SQLAlchemy) and runs in a worker thread; deliveries are async.
A failed attempt is rescheduled (``Retry-After`` honoured, exponential backoff with jitter on
5xx/timeouts) until the retry budget is spent, then the row is marked dead and stays visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from app.core import holds, offload
from app.core.endpoints import Network
from app.core.events import Kind
from app.core.payloads import thread_post_id
from app.core.ports import Copy, Delivered, Deliverer, DeliveryTask, Lease, OutboxStore
from app.errors import RemoteError

log = logging.getLogger("syncbot.core.outbox")

# How long a batch of completions waits for deliveries still under way to join it.
LINGER = 0.02

# How many times a background lane fetches more rows of its target before the pass ends and
# other targets get their turn.
MAX_REFILLS = 10

# How many times a lane tries again to take the rows handed to it, when more are handed over
# after its take was refused (within HANDOVER_WAIT seconds), before it leaves them to a claim.
_TAKE_AGAIN = 2
HANDOVER_WAIT = 0.01

# Told when a target starts being held (tell its admins): the held delivery and the failure.
HoldListener = Callable[[DeliveryTask, RemoteError], Awaitable[None]]

# Told the outcome of every attempt, as it is recorded: "delivered", "retried" or "dead"
# (metrics). Called on the event loop: it must be quick and must not raise.
DeliveryObserver = Callable[[DeliveryTask, str], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to wait before the next attempt, and when to give up.

    ``max_attempts`` failures in a row hold the target (see :mod:`app.core.holds`): it is
    rechecked every ``hold_interval`` seconds (``max_delay`` when unset) and its deliveries are
    kept until they are ``max_age`` seconds old.
    """

    max_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.2
    max_age: float = 72 * 3600.0
    hold_interval: float | None = None

    def delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


@dataclass
class DrainReport:
    """What one pass over the outbox did."""

    delivered: int = 0
    retried: int = 0
    dead: int = 0
    unfinished: int = 0
    errors: list[str] = field(default_factory=list)
    # Deliveries this pass finished for good (delivered or dead): nothing more to schedule.
    settled: set[str] = field(default_factory=set)


def _with_copies(task: DeliveryTask, made: Mapping[str, Copy]) -> DeliveryTask:
    """``task`` with the copies it lacks filled in from those its lane just made."""
    if not made:
        return task
    copy = task.copy
    if copy is None and task.kind is not Kind.POST and task.post_id is not None:
        copy = made.get(task.post_id)
    parent = task.parent_copy
    parent_id = thread_post_id(task.payload)
    if parent is None and parent_id is not None:
        parent = made.get(parent_id)
    if copy is task.copy and parent is task.parent_copy:
        return task
    return replace(task, copy=copy, parent_copy=parent)


class Outbox:
    """Claims due deliveries and hands them to the deliverer of their target's network."""

    def __init__(
        self,
        store: OutboxStore,
        deliverers: Mapping[Network, Deliverer],
        *,
        policy: RetryPolicy | None = None,
        lease_seconds: float = 120.0,
        worker_id: str | None = None,
        batch: int = 100,
        lanes: int = 16,
    ) -> None:
        self._store = store
        self._deliverers = dict(deliverers)
        self._policy = policy or RetryPolicy()
        self._lease = lease_seconds
        self.worker_id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._batch = batch
        # Targets one pass works at once: enough to hide Slack's latency, few enough that
        # other workers sharing the outbox find targets of their own (and the pool suffices).
        self._lanes = lanes
        self._wake = asyncio.Event()
        # The loop run_forever waits in: a wake-up from any other thread (a maintenance round
        # in a loop of its own) must be handed to it, since an asyncio.Event is not thread-safe.
        self._worker_loop: asyncio.AbstractEventLoop | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        # Told when a target starts being held, and when a delivery is dead (tell the admins,
        # the sender); a listener's failure is logged, never the delivery's.
        self.on_hold: list[HoldListener] = []
        self.on_dead: list[HoldListener] = []
        self.observers: list[DeliveryObserver] = []
        self._completions = _Completions(store, on_recorded=self._observe_delivered)
        # The worker sleeps although rows are pending (leased to lanes running here, or queued
        # behind them): a lane that ends must wake it, or those rows wait for its idle poll.
        self._waiting_on_lanes = False
        # The lane of each target that takes the target's new rows over from the relay.
        self._feeds: dict[str, _Feed] = {}

    def lease(self) -> Lease:
        """A lease for rows the relay writes for this outbox's inline drain (no claim pass)."""
        return Lease(owner=f"{self.worker_id[:40]}:{uuid.uuid4().hex[:12]}", seconds=self._lease)

    def hand_over(self, tasks: Sequence[DeliveryTask]) -> set[str]:
        """Give fresh rows (not leased, copies not looked up) to the lanes of this process
        delivering their targets; returns the uids handed over, which need no worker.

        A lane takes them with one statement once it is through with what it has, unless a
        row of the target it does not have comes first (then a claim keeps the order).
        """
        handed: set[str] = set()
        if not self._feeds:
            return handed
        loop = asyncio.get_running_loop()
        for task in tasks:
            feed = self._feeds.get(str(task.target))
            # A lane's check that its feed is empty, and its leaving, are atomic only on its
            # own loop.
            if feed is not None and feed.loop is loop:
                feed.hand(task)
                handed.add(task.uid)
        return handed

    def register(self, deliverer: Deliverer) -> None:
        self._deliverers[deliverer.network] = deliverer

    def wake(self) -> None:
        """Tell the background worker new deliveries are waiting (from any thread)."""
        worker = self._worker_loop
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if worker is None or worker is here or worker.is_closed():
            self._wake.set()
        else:
            worker.call_soon_threadsafe(self._wake.set)

    async def drain(
        self,
        *,
        only: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        budget: float | None = None,
        leased: Sequence[DeliveryTask] | None = None,
    ) -> DrainReport:
        """Deliver what is due now (or just ``only``, or just to ``targets``, or just the
        ``leased`` tasks the relay leased to us at enqueue), stopping to wait after ``budget``
        seconds.

        Deliveries still running when the budget is spent keep running in the background
        (their lease protects them); the report counts them as unfinished.
        """
        report = DrainReport()
        if leased is not None:
            tasks = list(leased)
            only = [t.uid for t in tasks]
        else:
            # A background pass may take up to a refill's worth of rows for each of its lanes:
            # with one batch for all of them, each lane got a few rows and then paid for a
            # round of its own (record, claim again) before going on with its target.
            limit = self._batch * self._lanes if only is None else self._batch
            tasks = await offload.write(
                self._store,
                self._store.claim_due,
                worker=self.worker_id,
                limit=limit,
                lease_seconds=self._lease,
                only=only,
                targets=targets,
                # A fresh event's own fan-out goes out at once, to every target together.
                lanes=self._lanes if only is None else None,
                # A target a lane here is delivering is that lane's (it takes the target's new
                # rows over as they are written): a lane of this pass would only race it.
                exclude=tuple(self._feeds.copy()) if only is None and targets is None else (),
            )
        if not tasks:
            return report
        by_target: dict[str, list[DeliveryTask]] = defaultdict(list)
        for task in tasks:
            by_target[str(task.target)].append(task)
        # A background pass keeps each lane going with its target's next rows as they come
        # due, instead of waiting for the slowest lane before claiming again.
        refill = only is None
        lanes = [
            asyncio.ensure_future(self._run_lane(lane, report, refill=refill))
            for lane in by_target.values()
        ]
        _done, pending = await asyncio.wait(lanes, timeout=budget)
        for lane in pending:
            self._inflight.add(lane)
            lane.add_done_callback(self._inflight.discard)
        report.unfinished = len(pending)
        return report

    async def _run_lane(
        self,
        lane: list[DeliveryTask],
        report: DrainReport,
        *,
        refill: bool,
        successor_of: _LaneState | None = None,
    ) -> None:
        # One target's deliveries strictly in order: a retry scheduled for one blocks the
        # ones after it (claim_due will not hand them out before it either), so their leases
        # are handed back at once rather than left to expire.
        if successor_of is not None:
            st = successor_of.successor()
        else:
            target = str(lane[0].target)
            st = _LaneState(
                target=target,
                # An inline lane is awaited by the sender's acknowledgement: just its rows
                # (a successor takes what is handed to it meanwhile).
                rounds=MAX_REFILLS if refill else 0,
                claims=MAX_REFILLS if refill else 0,
                more=refill,
                feed=self._open_feed(target),
                seen={t.uid for t in lane},
            )
        ended = False
        try:
            ended = await self._run_lane_rounds(lane, report, st)
        finally:
            self._leave_feed(st, ended)
            if self._waiting_on_lanes:
                self.wake()

    def _open_feed(self, target: str) -> _Feed | None:
        """The feed of ``target`` for a lane starting on it, unless another lane has it."""
        feed = _Feed(asyncio.get_running_loop())
        # setdefault: atomic, should a maintenance round's loop in another thread start one.
        return feed if self._feeds.setdefault(target, feed) is feed else None

    def _leave_feed(self, st: _LaneState, ended: bool) -> None:
        """A lane is through (``ended``: not stopped by a failed delivery). Rows handed to it
        meanwhile go to a lane of their own, or, after a failure, to a claim (which keeps the
        order behind the retry). Synchronous: no row is handed to a feed being left."""
        feed = st.feed
        if feed is None:
            return
        if ended and feed.tasks:
            lane = asyncio.ensure_future(
                self._run_lane([], DrainReport(), refill=False, successor_of=st)
            )
            self._inflight.add(lane)
            lane.add_done_callback(self._inflight.discard)
            return
        if self._feeds.get(st.target) is feed:
            del self._feeds[st.target]
        feed.tasks.clear()
        # The target is the worker's again: its passes left it to this lane, which may have
        # left rows behind (beyond its last claim, handed over too late, after a failure).
        self.wake()

    async def _run_lane_rounds(
        self, lane: list[DeliveryTask], report: DrainReport, st: _LaneState
    ) -> bool:
        """Deliver ``lane``, then the target's next rows a round at a time; returns False
        when a delivery failed (the rest of the target waits for its retry)."""
        try:
            for _round in range(st.rounds + 1):
                for i, claimed in enumerate(lane):
                    task = _with_copies(claimed, st.made)
                    if not await self._attempt(task, report, st.made, st.recording):
                        rest = [t.uid for t in lane[i + 1 :]]
                        if rest:
                            await offload.write(self._store, self._store.release, rest)
                            # Handed back: the worker takes them when due, not at its next poll.
                            self.wake()
                        return False
                # Fetch again only for a round that will run: rows leased after the last one
                # stayed leased to nobody until their lease ran out.
                if _round == st.rounds:
                    return True
                lane = await self._next_rows(st)
                if not lane:
                    return True
            return True
        finally:
            await _settle(st.recording)

    async def _next_rows(self, st: _LaneState) -> list[DeliveryTask]:
        """The lane's next round: the rows handed to it, taken with one statement, else (while
        its target may have more, and it has refills left) a claim of the target's next rows.

        Both wait for the lane's completions first, so neither finds its own rows pending.
        """
        while True:
            if st.feed is None:
                st.feed = self._open_feed(st.target)
            fed = st.feed.take(st.seen) if st.feed is not None else []
            if fed:
                await _settle(st.recording)
                taken = await self._take(st, fed)
                for _again in range(_TAKE_AGAIN):
                    # What it lacked may be handed over in a moment: concurrent commits are
                    # reported in any order (and, but on SQLite, commit out of id order).
                    if taken or st.feed is None or not await st.feed.more(HANDOVER_WAIT):
                        break
                    fed += st.feed.take(st.seen)
                    taken = await self._take(st, fed)
                if taken:
                    return taken
                # Rows of the target it does not have come first, or another worker leased
                # some of these: a claim keeps the order (the target is this lane's: the
                # worker's passes leave it alone).
                st.more = True
                st.claims = max(st.claims, 1)
            if not st.more or st.claims <= 0:
                return []
            st.claims -= 1
            await _settle(st.recording)
            rows = await offload.write(
                self._store,
                self._store.claim_due,
                worker=self.worker_id,
                limit=self._batch,
                lease_seconds=self._lease,
                targets=[st.target],
            )
            st.seen = {t.uid for t in rows}
            # Fewer than a batch: all its target had due and free, and what is written since
            # is handed over (or left to the next pass): no claim once more for nothing.
            st.more = len(rows) >= self._batch
            if rows or st.feed is None or not st.feed.tasks:
                return rows

    async def _take(self, st: _LaneState, fed: list[DeliveryTask]) -> list[DeliveryTask]:
        # Copies the lane made are in ``made``; those made before it (recorded: the rows
        # that made them came first and are done, or the take fails) are looked up.
        wanted: set[str] = set()
        for task in fed:
            if task.kind is not Kind.POST and task.post_id and task.post_id not in st.made:
                wanted.add(task.post_id)
            parent = thread_post_id(task.payload)
            if parent and parent not in st.made:
                wanted.add(parent)
        taken = await offload.write(
            self._store,
            self._store.take_fresh,
            st.target,
            [t.uid for t in fed],
            owner=self.lease().owner,
            lease_seconds=self._lease,
            copies_of=sorted(wanted),
        )
        if taken is None:
            return []
        by_uid = {t.uid: t for t in fed}
        return [_with_copies(by_uid[uid], taken.copies) for uid in taken.order]

    async def _attempt(
        self,
        task: DeliveryTask,
        report: DrainReport,
        made: dict[str, Copy],
        recording: list[asyncio.Future[None]],
    ) -> bool:
        deliverer = self._deliverers.get(task.target.network)
        if deliverer is None:
            await offload.write(
                self._store,
                self._store.retry_later,
                task,
                error=f"no deliverer for {task.target.network} configured",
                delay_seconds=self._policy.max_delay,
                outcome_unknown=False,
            )
            report.retried += 1
            return False
        try:
            with self._completions.delivering():
                result = await deliverer.deliver(task)
        except RemoteError as exc:
            return await self._failed(task, exc, report)
        except Exception as exc:  # a bug in an adapter must not lose the delivery
            log.exception("deliverer crashed", extra={"delivery": task.uid})
            wrapped = RemoteError(
                f"{type(exc).__name__}: {exc}",
                network=str(task.target.network),
                retryable=True,
                outcome_unknown=True,
            )
            return await self._failed(task, wrapped, report)
        recording.append(self._completions.submit(task, result))
        if task.kind is Kind.POST and task.post_id and result.native_id:
            made[task.post_id] = Copy(
                task.target, result.native_id, result.thread_native_id, result.parts
            )
        report.delivered += 1
        report.settled.add(task.uid)
        return True

    async def _failed(self, task: DeliveryTask, exc: RemoteError, report: DrainReport) -> bool:
        attempts = task.attempts + 1
        error = f"{exc.code or exc.status or 'error'}: {exc}"[:1000]
        report.errors.append(error)
        policy = self._policy
        interval = policy.max_delay if policy.hold_interval is None else policy.hold_interval
        verdict = holds.judge(
            exc,
            task,
            max_attempts=policy.max_attempts,
            max_age=policy.max_age,
            hold_interval=interval,
            backoff=policy.delay(attempts, exc.retry_after),
        )
        facts = {
            "delivery": task.uid,
            "target": str(task.target),
            "attempt": attempts,
            "error": error,
        }
        if verdict.dead:
            await offload.write(self._store, self._store.mark_dead, task, error=error)
            self._observe(task, "dead")
            report.dead += 1
            report.settled.add(task.uid)
            log.error("delivery dead", extra=facts)
            await self._tell(self.on_dead, task, exc)
            # A dead delivery is kept for operators; it must not hold up the ones after it.
            return True
        await offload.write(
            self._store,
            self._store.retry_later,
            task,
            error=error,
            delay_seconds=verdict.delay,
            outcome_unknown=exc.outcome_unknown or task.outcome_unknown,
        )
        self._observe(task, "retried")
        # The worker's sleep must end when this retry falls due, not at its idle poll.
        self.wake()
        report.retried += 1
        if verdict.newly_held:
            log.error("target held: its deliveries wait", extra=facts)
            await self._tell(self.on_hold, task, exc)
        else:
            log.warning(
                "delivery failed, will retry", extra=facts | {"delay_s": round(verdict.delay, 2)}
            )
        return False

    def _observe_delivered(self, tasks: Sequence[DeliveryTask]) -> None:
        for task in tasks:
            self._observe(task, "delivered")

    def _observe(self, task: DeliveryTask, outcome: str) -> None:
        for observer in self.observers:
            try:
                observer(task, outcome)
            except Exception:
                log.exception("delivery observer failed", extra={"delivery": task.uid})

    async def _tell(
        self, listeners: list[HoldListener], task: DeliveryTask, exc: RemoteError
    ) -> None:
        for listener in listeners:
            try:
                await listener(task, exc)
            except Exception:
                log.exception("could not tell of a failed delivery", extra={"delivery": task.uid})

    async def run_forever(self, *, idle: float = 5.0) -> None:
        """The background worker of long-running processes: drain, then sleep until woken."""
        self._worker_loop = asyncio.get_running_loop()
        while True:
            # Cleared before looking, so a wake-up that arrives while this pass runs is kept.
            self._wake.clear()
            try:
                report = await self.drain()
                busy = report.delivered or report.retried or report.dead
            except Exception:
                log.exception("outbox pass failed")
                busy = False
            if busy:
                continue
            wait = idle
            try:
                due = await asyncio.to_thread(self._store.next_due_in)
                if due is not None:
                    wait = min(idle, max(0.05, due))
                    self._waiting_on_lanes = True
            except Exception:
                log.exception("could not read the next due time")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass
            finally:
                self._waiting_on_lanes = False

    async def flush(self) -> None:
        """Wait until every completion handed over so far is recorded (tests, shutdown)."""
        await self._completions.flush()

    async def wait_idle(self, timeout: float = 30.0) -> bool:  # noqa: ASYNC109 - a bound, not a cancel
        """Wait for background lanes started by :meth:`drain` (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - time.monotonic()))
        return not self._inflight


class _Feed:
    """Fresh rows of one target handed by the relay to the lane delivering it (in memory)."""

    __slots__ = ("arrived", "loop", "tasks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.tasks: list[DeliveryTask] = []
        self.arrived = asyncio.Event()

    def hand(self, task: DeliveryTask) -> None:
        self.tasks.append(task)
        self.arrived.set()

    async def more(self, within: float) -> bool:
        """Whether rows are waiting, or are handed over ``within`` seconds."""
        if not self.tasks:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), within)
        return bool(self.tasks)

    def take(self, seen: set[str]) -> list[DeliveryTask]:
        """Everything handed over so far, but the rows the lane claimed already."""
        tasks, self.tasks = self.tasks, []
        return [t for t in tasks if t.uid not in seen]


@dataclass
class _LaneState:
    """What a lane carries from round to round (and hands to a successor)."""

    target: str
    # Rounds after its first, claims it may still make, and whether its target may have rows
    # beyond those it knows.
    rounds: int
    claims: int
    more: bool
    feed: _Feed | None
    # The rows of its last claim: the feed may hand them over as well.
    seen: set[str] = field(default_factory=set)
    # Copies this lane made: a post's edit, delete, reaction or thread reply claimed in the
    # same batch was resolved against the message map before the post existed here.
    made: dict[str, Copy] = field(default_factory=dict)
    # Completions still being recorded: the lane goes on with its next delivery meanwhile
    # (Slack sees them in order either way), and waits for them before it fetches again or
    # ends, so a fetch never finds its own rows still pending.
    recording: list[asyncio.Future[None]] = field(default_factory=list)

    def successor(self) -> _LaneState:
        """The state of a lane taking over the rows handed to this one. Its copies are all
        recorded by now: the successor looks them up rather than carry them on and on."""
        return _LaneState(
            target=self.target,
            rounds=MAX_REFILLS,
            claims=MAX_REFILLS,
            more=False,
            feed=self.feed,
            seen=self.seen,
        )


async def _settle(recording: list[asyncio.Future[None]]) -> None:
    """Wait until the completions handed over are recorded; raises the first failure."""
    if recording:
        pending, recording[:] = list(recording), []
        await asyncio.gather(*pending)


class _Completions:
    """Finished deliveries recorded in batches (group commit).

    Lanes hand their finished deliveries over; while one batch is being written, the ones that
    finish meanwhile, on every lane, gather into the next: one message-map insert and one status
    update for all of them instead of a transaction each. A lane's later rows take the copies
    it made from memory (``made``), not from the map, so they need not wait for the write.
    """

    def __init__(
        self, store: OutboxStore, *, on_recorded: Callable[[Sequence[DeliveryTask]], None]
    ) -> None:
        self._store = store
        self._on_recorded = on_recorded
        # Deliveries under way right now (by start number), and a signal each time one ends.
        self._running: set[int] = set()
        self._started = 0
        self._ended = asyncio.Event()
        self._queue: list[tuple[DeliveryTask, Delivered, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    def submit(self, task: DeliveryTask, result: Delivered) -> asyncio.Future[None]:
        """Queue ``task``'s completion; the future is done once it is recorded."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((task, result, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        return done

    async def flush(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    @contextlib.contextmanager
    def delivering(self) -> Iterator[None]:
        """Around one deliverer call: a batch waits (briefly) for the calls under way."""
        self._started += 1
        number = self._started
        self._running.add(number)
        try:
            yield
        finally:
            self._running.discard(number)
            self._ended.set()

    async def _write(self) -> None:
        # Let every lane that is ready in this turn of the loop join the first batch.
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        while self._queue:
            # Calls under way when the batch opened, as those of one event's fan-out, answer
            # within moments of each other: wait that long for them (not for calls started
            # since, or a busy worker would always wait) so one write records them all.
            deadline = loop.time() + LINGER
            cohort = set(self._running)
            while cohort & self._running and loop.time() < deadline:
                self._ended.clear()
                try:
                    await asyncio.wait_for(self._ended.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            batch, self._queue = self._queue, []
            try:
                await offload.write(
                    self._store,
                    self._store.complete_many,
                    [(task, result) for task, result, _ in batch],
                )
            except Exception as exc:
                for _task, _result, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            # The one place deliveries become final: delivered and in the message map.
            self._on_recorded([task for task, _result, _done in batch])
            for _task, _result, done in batch:
                if not done.done():
                    done.set_result(None)
