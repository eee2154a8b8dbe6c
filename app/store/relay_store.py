"""SQL implementation of the core's relay and outbox ports.

Statement budget (counted by ``tests/store/test_statements.py`` and the benchmark): ingesting a
post is BEGIN + claim + one read (echo check, targets, thread parent) + post + source copy + one
multi-row outbox insert, its rows leased at once to the inline drain; completing a batch of
deliveries is one message-map insert and one status update for all of them, each committing on
its own (PostgreSQL: both in one statement).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from app.core.endpoints import Endpoint
from app.core.events import Kind
from app.core.payloads import (
    Payload,
    PayloadError,
    payload_from_json,
    thread_post_id,
)
from app.core.ports import (
    Copy,
    Delivered,
    DeliveryTask,
    Lease,
    NewDelivery,
    PendingDelivery,
    PostRef,
    PostTargets,
    SyncTargets,
    Taken,
)
from app.store.delivery_tasks import delivery_task
from app.store.engine import SqliteWriter, autocommit
from app.store.hot_sql import Builders, HotStatements
from app.store.models import (
    Delivery,
    MessageCopy,
    Post,
    ProcessedEvent,
    Reaction,
    Sync,
    SyncEndpoint,
)
from app.store.rows import affected

# How many pending rows one claim pass looks at to find the next due ones of each target.
_SCAN = 2000
# Rounds of a claim that lost the race for its targets to another worker's (``_lock_free``).
_LOCK_ROUNDS = 3
# Backends whose row locks can be skipped (PostgreSQL 9.5+, MySQL 8+, MariaDB 10.6+). SQLite
# has one writer at a time anyway: its claims are serialized by BEGIN IMMEDIATE.
SKIP_LOCKED_DIALECTS = frozenset({"postgresql", "mysql", "mariadb"})

log = logging.getLogger("syncbot.store.relay")


def _now() -> datetime:
    return datetime.now(UTC)


def _dialect_of(db: Session | Connection) -> str:
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


def insert_ignore(session: Session | Connection, table: Any) -> Insert:
    """An INSERT that silently skips rows violating a unique key, on every backend."""
    return _insert_ignore_dialect(_dialect_of(session), table)


def _insert_ignore_dialect(dialect: str, table: Any) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return mysql.insert(table).prefix_with("IGNORE")


def inserted(session: Session | Connection, stmt: Insert, key_column: Any) -> bool:
    """Run an :func:`insert_ignore` and say whether the row was new.

    PostgreSQL (psycopg 3) reports no rowcount for ``ON CONFLICT DO NOTHING``, so ask for the
    row back there and on SQLite; MySQL has no ``RETURNING`` but an exact rowcount.
    """
    if _dialect_of(session) == "mysql":
        return affected(session.execute(stmt)) == 1
    return session.execute(stmt.returning(key_column)).first() is not None


class SqlRelayTransaction:
    """The relay's view of one database transaction.

    It runs on a Core :class:`Connection`, not an ORM session: its statements are all Core,
    and the session's per-statement bookkeeping (finding its connection, ORM execution hooks)
    was a tenth of an ingest's CPU. The statements every new post runs go further, as
    pre-rendered SQL (:mod:`app.store.hot_sql`).
    """

    def __init__(self, conn: Connection, hot: HotStatements) -> None:
        self.s = conn
        self._dialect = conn.dialect.name
        self._hot = hot
        # Targets known (from the post's read) to have deliveries waiting; None: not read.
        self._busy: set[str] = set()
        self._busy_known = False

    def claim(self, key: str, *, ttl_seconds: int) -> bool:
        now = _now()
        hot, time = self._hot, self._hot.values.time
        result = hot.run(
            self.s,
            hot.claim,
            {
                "key": key[:255],
                "created_at": time(now),
                "expires_at": time(now + timedelta(seconds=ttl_seconds)),
            },
        )
        # As inserted(): MySQL has no RETURNING but an exact rowcount.
        if self._dialect == "mysql":
            return affected(result) == 1
        return result.first() is not None

    def sync_targets(self, source: Endpoint) -> list[SyncTargets]:
        me, other = SyncEndpoint.__table__.alias("me"), SyncEndpoint.__table__.alias("other")
        rows = self.s.execute(
            select(me.c.sync_id, Sync.allow_broadcast, other.c.endpoint)
            .join(Sync, Sync.id == me.c.sync_id)
            .join(other, other.c.sync_id == me.c.sync_id, isouter=True)
            .where(
                me.c.endpoint == str(source),
                me.c.status == "active",
                Sync.status == "active",
                or_(other.c.id.is_(None), and_(other.c.status == "active", other.c.id != me.c.id)),
            )
            .order_by(other.c.id)
        ).all()
        grouped: dict[int, tuple[bool, list[Endpoint]]] = {}
        for sync_id, allow, endpoint in rows:
            entry = grouped.setdefault(sync_id, (allow, []))
            if endpoint:
                entry[1].append(Endpoint.parse(endpoint))
        return [
            SyncTargets(sync_id=k, targets=tuple(v[1]), allow_broadcast=v[0])
            for k, v in grouped.items()
        ]

    def find_post(self, endpoint: Endpoint, native_id: str) -> PostRef | None:
        row = self.s.execute(
            select(
                Post.id, Post.sync_id, Post.source_endpoint, Post.source_native_id, Post.deleted
            )
            .join(MessageCopy, MessageCopy.post_id == Post.id)
            .where(MessageCopy.endpoint == str(endpoint), MessageCopy.native_id == native_id)
        ).first()
        if row is None:
            return None
        return PostRef(
            post_id=row[0],
            sync_id=row[1],
            source=Endpoint.parse(row[2]),
            native_id=row[3],
            deleted=row[4],
        )

    def is_copy(self, endpoint: Endpoint, native_id: str) -> bool:
        return (
            self.s.execute(
                select(MessageCopy.id).where(
                    MessageCopy.endpoint == str(endpoint), MessageCopy.native_id == native_id
                )
            ).first()
            is not None
        )

    def post_targets(
        self, source: Endpoint, native_id: str, thread_native_id: str | None
    ) -> PostTargets:
        hot = self._hot
        row = hot.run(
            self.s,
            hot.post_read(bool(thread_native_id)),
            _post_read_params(source, native_id, thread_native_id),
        ).one()
        self._busy_known = True
        return _post_targets(row, self._busy)

    def claim_post(
        self,
        key: str,
        *,
        ttl_seconds: int,
        source: Endpoint,
        native_id: str,
        thread_native_id: str | None,
    ) -> PostTargets | None:
        dialect = self._dialect
        if dialect == "mysql":  # no RETURNING: claim, then read
            if not self.claim(key, ttl_seconds=ttl_seconds):
                return None
            return self.post_targets(source, native_id, thread_native_id)
        now = _now()
        hot, time = self._hot, self._hot.values.time
        # The read rides on the claim's RETURNING: one statement, and none on a duplicate.
        row = hot.run(
            self.s,
            hot.claim_post(bool(thread_native_id)),
            {
                "claim_key": key[:255],
                "claim_at": time(now),
                "claim_until": time(now + timedelta(seconds=ttl_seconds)),
            }
            | _post_read_params(source, native_id, thread_native_id),
        ).first()
        if row is None:
            return None
        self._busy_known = True
        return _post_targets(row, self._busy)

    def copies(
        self, post_ids: Sequence[str], targets: Sequence[Endpoint]
    ) -> list[tuple[str, Copy]]:
        return _copies(self.s, post_ids, [str(t) for t in targets])

    def create_post(
        self,
        *,
        post_id: str,
        sync_id: int,
        source: Endpoint,
        native_id: str,
        thread_native_id: str | None,
        thread_post_id: str | None,
        author_name: str,
    ) -> None:
        hot = self._hot
        now = hot.values.time(_now())
        hot.run(
            self.s,
            hot.post,
            {
                "id": post_id,
                "sync_id": sync_id,
                "source_endpoint": str(source),
                "source_native_id": native_id,
                "thread_post_id": thread_post_id,
                "author_name": author_name[:255],
                "created_at": now,
            },
        )
        hot.run(
            self.s,
            hot.source_copy,
            {
                "post_id": post_id,
                "endpoint": str(source),
                "native_id": native_id,
                "thread_native_id": thread_native_id,
                "created_at": now,
            },
        )

    def lock_post(self, post_id: str) -> None:
        self.s.execute(select(Post.id).where(Post.id == post_id).with_for_update())

    def mark_deleted(self, post_id: str) -> None:
        self.s.execute(update(Post).where(Post.id == post_id).values(deleted=True))

    def endpoints_of_sync(self, sync_id: int) -> list[Endpoint]:
        rows = self.s.execute(
            select(SyncEndpoint.endpoint)
            .where(SyncEndpoint.sync_id == sync_id, SyncEndpoint.status == "active")
            .order_by(SyncEndpoint.id)
        ).scalars()
        return [Endpoint.parse(e) for e in rows]

    def add_reaction(self, *, post_id: str, emoji: str, actor: str, source: Endpoint) -> bool:
        stmt = insert_ignore(self.s, Reaction.__table__).values(
            post_id=post_id,
            emoji=emoji[:128],
            actor=actor[:319],
            source_endpoint=str(source),
            created_at=_now(),
        )
        return inserted(self.s, stmt, Reaction.__table__.c.id)

    def remove_reaction(self, *, post_id: str, emoji: str, actor: str) -> bool:
        result = self.s.execute(
            delete(Reaction).where(
                Reaction.post_id == post_id, Reaction.emoji == emoji, Reaction.actor == actor
            )
        )
        return affected(result) == 1

    def reaction_sources(self, *, post_id: str, emoji: str) -> list[Endpoint]:
        rows = self.s.execute(
            select(Reaction.source_endpoint).where(
                Reaction.post_id == post_id, Reaction.emoji == emoji
            )
        ).scalars()
        return [Endpoint.parse(e) for e in rows]

    def set_endpoint_status(self, endpoint: Endpoint, status: str) -> int:
        result = self.s.execute(
            update(SyncEndpoint)
            .where(SyncEndpoint.endpoint == str(endpoint))
            .values(status=status)
        )
        return affected(result)

    def enqueue(
        self, deliveries: Sequence[NewDelivery], *, lease: Lease | None = None
    ) -> set[str]:
        now = _now()
        owner = lease.owner if lease is not None else None
        until = now + timedelta(seconds=lease.seconds) if lease is not None else None
        leased: set[str] = set()
        if lease is not None:
            targets = {str(d.target) for d in deliveries}
            if not self._busy_known:
                self._busy.update(
                    self.s.execute(
                        select(Delivery.target_endpoint)
                        .where(Delivery.target_endpoint.in_(targets), Delivery.status == "pending")
                        .distinct()
                    ).scalars()
                )
            # A target with an earlier delivery waiting (backing off, held, leased elsewhere)
            # gets its new row through a claim, which keeps the target's order.
            leased = {d.uid for d in deliveries if str(d.target) not in self._busy}
        hot = self._hot
        values = hot.values
        at, lease_until = values.time(now), values.maybe_time(until)
        # A post's payload is one object for all its targets: serialized once.
        payloads: dict[int, str] = {}
        rows = []
        for d in deliveries:
            payload = payloads.get(id(d.payload))
            if payload is None:
                payload = payloads[id(d.payload)] = values.json(d.payload.to_json())
            mine = d.uid in leased
            rows.append(
                {
                    "uid": d.uid,
                    "sync_id": d.sync_id,
                    "post_id": d.post_id,
                    "target_endpoint": str(d.target),
                    "kind": str(d.kind),
                    "payload": payload,
                    "next_attempt_at": at,
                    "lease_owner": owner if mine else None,
                    "lease_expires_at": lease_until if mine else None,
                    "source_time": values.maybe_time(d.source_time),
                    "created_at": at,
                }
            )
        hot.insert_outbox(self.s, rows)
        return leased


class SqlStore:
    """The relay store and outbox store over one session factory."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._dialect = self._engine.dialect.name
        # SQLite: every write transaction on one connection, one at a time...
        self._writer = SqliteWriter(self._engine) if self._dialect == "sqlite" else None
        # ... and the event loop hands them all to one thread (app.core.offload): a thread
        # per write would only wait for its turn. Its thread starts with the first write and
        # ends with the store.
        self.write_executor: Executor | None = (
            ThreadPoolExecutor(1, thread_name_prefix="syncbot-sqlite-writer")
            if self._writer is not None
            else None
        )
        self._hot = HotStatements(
            self._engine.dialect,
            Builders(
                insert_ignore=_insert_ignore_dialect,
                claim_post=_claim_post_statement,
                post_read=_post_read_statement,
            ),
        )

    @contextmanager
    def _write(self, *, read_committed: bool = False) -> Iterator[Connection]:
        """A Core connection in a write transaction (SQLite: the held one, under its lock).

        ``read_committed``: MySQL/MariaDB run it at READ COMMITTED, PostgreSQL's default
        (claims: see :meth:`claim_due`).
        """
        if self._writer is not None:
            with self._writer.begin() as conn:
                yield conn
            return
        with self._engine.connect() as conn:
            if read_committed and self._dialect in ("mysql", "mariadb"):
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[SqlRelayTransaction]:
        with self._write() as conn:
            yield SqlRelayTransaction(conn, self._hot)

    # -- outbox ---------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        only: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        lanes: int | None = None,
        exclude: Sequence[str] = (),
    ) -> list[DeliveryTask]:
        now = _now()
        wanted = set(only) if only is not None else None
        # Each claim gets its own lease token: concurrent drains of one process (the inline
        # drain and the background worker) must not both see a row as theirs.
        token = f"{worker[:40]}:{uuid.uuid4().hex[:12]}"
        # InnoDB under REPEATABLE READ locks every row an UPDATE scans, matching or not (on a
        # small table the plan is a full scan): it would wait on the very rows SKIP LOCKED
        # stepped over. READ COMMITTED reads a locked row's committed version to test the
        # WHERE and passes it by.
        with self._write(read_committed=True) as s:
            return self._claim(
                s, now, wanted, token, limit, lease_seconds, targets, lanes, exclude
            )

    def _claim(
        self,
        s: Connection,
        now: datetime,
        wanted: set[str] | None,
        token: str,
        limit: int,
        lease_seconds: float,
        targets: Sequence[str] | None,
        lanes: int | None,
        exclude: Sequence[str] = (),
    ) -> list[DeliveryTask]:
        skip_locked = s.dialect.name in SKIP_LOCKED_DIALECTS
        d = Delivery.__table__.c
        # One target's claim never takes more than ``limit`` rows: no need to read more.
        one_target = targets is not None and len(targets) == 1
        scan = (
            select(d.id, d.uid, d.target_endpoint, d.next_attempt_at, d.lease_expires_at)
            .where(d.status == "pending")
            .order_by(d.id)
            .limit(min(_SCAN, limit + 1) if one_target else _SCAN)
        )
        if targets is not None:
            scan = scan.where(d.target_endpoint.in_(list(targets)))
        if exclude:
            scan = scan.where(d.target_endpoint.not_in(list(exclude)))
        # A plain read: it sees rows other claimers hold locks on, so the order of each
        # target is judged on every pending row, not only on the unlocked ones.
        pending = s.execute(scan).all()
        candidates = _due_prefixes(pending, now, wanted, limit, lanes)
        if not candidates:
            return []
        chosen = candidates
        free = and_(
            Delivery.id.in_(chosen),
            Delivery.status == "pending",
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
        )
        if skip_locked:
            chosen, candidates = _lock_free(s, pending, candidates, now, wanted, limit, lanes)
            if not chosen:
                return []
            free = Delivery.id.in_(chosen)
        lease_until = now + timedelta(seconds=lease_seconds)
        # A row whose earlier lease expired was being delivered by a process that died:
        # its outcome is unknown, so the deliverer must look before posting again.
        s.execute(
            update(Delivery)
            .where(free)
            .values(
                outcome_unknown=or_(Delivery.outcome_unknown, Delivery.lease_owner.is_not(None)),
                lease_owner=token,
                lease_expires_at=lease_until,
            ),
            execution_options={"synchronize_session": False},
        )
        table = Delivery.__table__
        rows = s.execute(
            select(table)
            .where(table.c.id.in_(chosen), table.c.lease_owner == token)
            .order_by(table.c.id)
        ).all()
        rows = _keep_prefixes(s, candidates, pending, rows)
        return self._tasks(s, rows)

    def take_fresh(
        self,
        target: str,
        uids: Sequence[str],
        *,
        owner: str,
        lease_seconds: float,
        copies_of: Sequence[str] = (),
    ) -> Taken | None:
        wanted = list(dict.fromkeys(uids))
        if not wanted:
            return None
        dialect = self._dialect
        # As for a claim: under REPEATABLE READ InnoDB's order check would take shared locks on
        # the rows it reads, queueing behind other workers' claims.
        with self._write(read_committed=True) as s:
            params = {
                "fresh_uids": wanted,
                "fresh_target": target,
                "fresh_owner": owner,
                "fresh_until": _now() + timedelta(seconds=lease_seconds),
            }
            if dialect == "mysql":  # no RETURNING: the rowcount, then the order
                won = affected(s.execute(_take_fresh_statement(False), params))
                order = (
                    s.execute(_taken_order_statement(), params).scalars().all()
                    if won == len(wanted)
                    else []
                )
            else:
                rows = s.execute(_take_fresh_statement(True), params).all()
                order = [uid for _id, uid in sorted(rows)]
                won = len(order)
            if won != len(wanted):
                if won:
                    # Some were another worker's: ours alone would overtake them.
                    s.execute(_drop_lease_statement(), params)
                return None
            copies = dict(_copies(s, sorted(set(copies_of)), [target])) if copies_of else {}
            return Taken(order=tuple(order), copies=copies)

    def pending(self, uids: Sequence[str]) -> list[PendingDelivery]:
        """Which of ``uids`` are still pending, and in how many seconds each can next move.

        A row waits for its own retry time or lease, and for the oldest pending row of its
        target (deliveries to one target go in order).
        """
        if not uids:
            return []
        now = _now()
        with self._sessions() as s:
            rows = s.execute(
                select(
                    Delivery.uid,
                    Delivery.target_endpoint,
                    Delivery.attempts,
                    Delivery.next_attempt_at,
                    Delivery.lease_expires_at,
                ).where(Delivery.uid.in_(list(uids)), Delivery.status == "pending")
            ).all()
            if not rows:
                return []
            heads: dict[str, datetime] = {}
            first_ids = (
                select(Delivery.target_endpoint, func.min(Delivery.id).label("first"))
                .where(
                    Delivery.status == "pending",
                    Delivery.target_endpoint.in_({r.target_endpoint for r in rows}),
                )
                .group_by(Delivery.target_endpoint)
                .subquery()
            )
            for target, next_at, lease_until in s.execute(
                select(
                    Delivery.target_endpoint, Delivery.next_attempt_at, Delivery.lease_expires_at
                ).join(first_ids, Delivery.id == first_ids.c.first)
            ):
                heads[target] = _ready_at(next_at, lease_until, now)
        result = []
        for r in rows:
            ready = max(
                _ready_at(r.next_attempt_at, r.lease_expires_at, now),
                heads.get(r.target_endpoint, now),
            )
            result.append(
                PendingDelivery(
                    uid=r.uid,
                    target=Endpoint.parse(r.target_endpoint),
                    attempts=r.attempts,
                    due_in=max(0.0, (ready - now).total_seconds()),
                )
            )
        return result

    def _tasks(self, s: Session | Connection, rows: Sequence[Any]) -> list[DeliveryTask]:
        payloads: dict[str, Payload] = {}
        for r in rows:
            try:
                payloads[r.uid] = payload_from_json(Kind(r.kind), r.payload)
            except PayloadError as exc:
                # No deliverer could read it: dead and visible at once, rather than a claim
                # that fails for every worker on every pass.
                log.error("unreadable delivery payload", extra={"delivery": r.uid})
                s.execute(
                    update(Delivery)
                    .where(Delivery.uid == r.uid)
                    .values(
                        status="dead",
                        last_error=f"unreadable payload: {exc}"[:500],
                        lease_owner=None,
                        lease_expires_at=None,
                    ),
                    execution_options={"synchronize_session": False},
                )
        rows = [r for r in rows if r.uid in payloads]
        post_ids = {r.post_id for r in rows if r.post_id}
        post_ids |= {parent for p in payloads.values() if (parent := thread_post_id(p))}
        targets = {r.target_endpoint for r in rows}
        copies: dict[tuple[str, str], Copy] = {}
        if post_ids:
            for post_id, copy in _copies(s, post_ids, sorted(targets)):
                copies[(post_id, str(copy.endpoint))] = copy
        return [delivery_task(r, payloads[r.uid], copies) for r in rows]

    def complete(self, task: DeliveryTask, result: Delivered) -> None:
        self.complete_many([(task, result)])

    def complete_many(self, done: Sequence[tuple[DeliveryTask, Delivered]]) -> None:
        if not done:
            return
        hot = self._hot
        now = hot.values.time(_now())
        copies = [
            {
                "post_id": task.post_id,
                "endpoint": str(result.endpoint or task.target),
                "native_id": result.native_id,
                "thread_native_id": result.thread_native_id,
                "created_at": now,
                "parts": hot.values.json(list(result.parts) or None),
            }
            for task, result in done
            if task.kind is Kind.POST and result.native_id and task.post_id
        ]
        uids = [task.uid for task, _ in done]
        # Each statement commits on its own (no BEGIN): the copies first, so a crash between
        # the two leaves leased rows whose retry, looking before posting again (Slack
        # metadata, Matrix txn id), finds the copy already recorded (and skips it here).
        if self._writer is not None:
            with self._writer.begin(autocommit=True) as conn:
                self._record_done(conn, copies, uids, now)
            return
        dialect = self._dialect
        with self._engine.connect() as raw:
            conn = autocommit(raw) if dialect != "mysql" else raw
            self._record_done(conn, copies, uids, now)
            if dialect == "mysql":
                conn.commit()

    def _record_done(
        self, conn: Connection, copies: list[dict[str, Any]], uids: list[str], now: Any
    ) -> None:
        hot = self._hot
        if copies:
            # One multi-row INSERT (MySQL: an executemany its driver rewrites into one).
            hot.insert_copies(conn, copies)
        hot.mark_delivered(conn, uids, now)

    def retry_later(
        self, task: DeliveryTask, *, error: str, delay_seconds: float, outcome_unknown: bool
    ) -> None:
        with self._write() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.uid == task.uid)
                .values(
                    attempts=Delivery.attempts + 1,
                    next_attempt_at=_now() + timedelta(seconds=delay_seconds),
                    last_error=error,
                    outcome_unknown=outcome_unknown,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    def mark_dead(self, task: DeliveryTask, *, error: str) -> None:
        with self._write() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.uid == task.uid)
                .values(
                    status="dead",
                    attempts=Delivery.attempts + 1,
                    last_error=error,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    def release(self, uids: Sequence[str]) -> None:
        with self._write() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.uid.in_(list(uids)), Delivery.status == "pending")
                .values(lease_owner=None, lease_expires_at=None)
            )

    def next_due_in(self) -> float | None:
        # A row leased to a drain that is still at work is not due before its lease ends (the
        # drain wakes the worker when it hands rows back): no polling meanwhile.
        ready = case(
            (
                and_(
                    Delivery.lease_expires_at.is_not(None),
                    Delivery.lease_expires_at > Delivery.next_attempt_at,
                ),
                Delivery.lease_expires_at,
            ),
            else_=Delivery.next_attempt_at,
        )
        # Only each target's first pending row can move: the ones behind it wait for it (a
        # held target's backlog is not due while its head backs off, and a worker that
        # looked at it would find nothing, again and again, for as long as the hold lasts).
        heads = (
            select(func.min(Delivery.id).label("head"))
            .where(Delivery.status == "pending")
            .group_by(Delivery.target_endpoint)
            .subquery()
        )
        with self._sessions() as s:
            due: datetime | None = s.execute(
                select(func.min(ready)).join(heads, Delivery.id == heads.c.head)
            ).scalar()
        if due is None:
            return None
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return max(0.0, (due - _now()).total_seconds())


class _Qualified(ColumnElement[Any]):
    """A subquery column of a RETURNING clause, its columns qualified by their tables.

    SQLAlchemy renders RETURNING columns unqualified, and passes that down into subqueries,
    whose joins then name ambiguous columns.
    """

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(_Qualified)
def _compile_qualified(element: _Qualified, compiler: Any, **kw: Any) -> str:
    kw["include_table"] = True
    return str(compiler.process(element.inner, **kw))


# Separators of the aggregated target list: no endpoint contains a control character.
_ROW, _COL = "\x1e", "\x1f"


@functools.cache
def _post_read_columns(thread: bool) -> tuple[Any, ...]:
    """What the relay needs for a new post, as scalar columns of one row: the echo check, the
    source's syncs with their other active endpoints, and (``thread``) the thread parent's post.

    Built once (with bound parameters, see :func:`_post_read_params`): building it is far
    dearer than running it.
    """
    me, other = SyncEndpoint.__table__.alias("me"), SyncEndpoint.__table__.alias("other")
    copies, posts, syncs = MessageCopy.__table__, Post.__table__, Sync.__table__
    src: BindParameter[str] = bindparam("read_source", type_=String)
    native: BindParameter[str] = bindparam("read_native_id", type_=String)
    echo = (
        select(copies.c.id).where(copies.c.endpoint == src, copies.c.native_id == native)
    ).exists()
    entry = (
        func.coalesce(cast(other.c.id, String), "0")
        + _COL
        + cast(me.c.sync_id, String)
        + _COL
        + case((syncs.c.allow_broadcast, "1"), else_="0")
        + _COL
        + case((_has_pending(other.c.endpoint), "1"), else_="0")
        + _COL
        + func.coalesce(other.c.endpoint, "")
    )
    targets = (
        select(func.aggregate_strings(entry, _ROW))
        .select_from(me)
        .join(syncs, syncs.c.id == me.c.sync_id)
        .join(other, other.c.sync_id == me.c.sync_id, isouter=True)
        .where(
            me.c.endpoint == src,
            me.c.status == "active",
            syncs.c.status == "active",
            or_(other.c.id.is_(None), and_(other.c.status == "active", other.c.id != me.c.id)),
        )
        .scalar_subquery()
    )
    columns: list[Any] = [echo.label("echo"), targets.label("targets")]
    if thread:
        parent: BindParameter[str] = bindparam("read_thread_native_id", type_=String)
        for col in (
            posts.c.id,
            posts.c.sync_id,
            posts.c.source_endpoint,
            posts.c.source_native_id,
        ):
            columns.append(
                select(col)
                .join(copies, copies.c.post_id == posts.c.id)
                .where(copies.c.endpoint == src, copies.c.native_id == parent)
                .limit(1)
                .scalar_subquery()
                .label(f"parent_{col.name}")
            )
    return tuple(columns)


def _post_read_params(
    source: Endpoint, native_id: str, thread_native_id: str | None
) -> dict[str, Any]:
    params = {"read_source": str(source), "read_native_id": native_id}
    if thread_native_id:
        params["read_thread_native_id"] = thread_native_id
    return params


@functools.cache
def _post_read_statement(thread: bool) -> Any:
    return select(*_post_read_columns(thread))


@functools.cache
def _claim_post_statement(dialect: str, thread: bool) -> Any:
    return (
        _insert_ignore_dialect(dialect, ProcessedEvent.__table__)
        .values(
            key=bindparam("claim_key"),
            created_at=bindparam("claim_at"),
            expires_at=bindparam("claim_until"),
        )
        .returning(*(_Qualified(c) for c in _post_read_columns(thread)))
    )


@functools.cache
def _take_fresh_statement(returning: bool) -> Any:
    """Lease fresh rows handed to a lane in memory, if each is untouched and nothing of its
    target outside them waits ahead of any (all or none: the caller compares the rowcount).

    The order check counts through a derived table: MySQL refuses a subquery on the table an
    UPDATE changes, but reads a derived table (materialized, here by its aggregate) first.
    """
    table = Delivery.__table__
    ahead, fed = table.alias("ahead"), table.alias("fed")
    uids: BindParameter[list[str]] = bindparam("fresh_uids", expanding=True)
    target = bindparam("fresh_target", type_=String)
    last_fed = select(func.max(fed.c.id)).where(fed.c.uid.in_(uids)).scalar_subquery()
    waiting = (
        select(func.count().label("n"))
        .select_from(ahead)
        .where(
            # Not by the target's index: that walks the target's delivered history (as far as
            # the fed rows); the pending rows, by the due index, are a few.
            func.coalesce(ahead.c.target_endpoint, "") == target,
            ahead.c.status == "pending",
            ahead.c.uid.not_in(uids),
            ahead.c.id < last_fed,
        )
        .subquery("waiting")
    )
    stmt = (
        update(table)
        .where(
            table.c.uid.in_(uids),
            table.c.target_endpoint == target,
            table.c.status == "pending",
            table.c.lease_owner.is_(None),
            table.c.attempts == 0,
            table.c.outcome_unknown.is_(False),
            select(waiting.c.n).scalar_subquery() == 0,
        )
        .values(lease_owner=bindparam("fresh_owner"), lease_expires_at=bindparam("fresh_until"))
    )
    return stmt.returning(table.c.id, table.c.uid) if returning else stmt


def _copies(
    conn: Session | Connection, post_ids: Iterable[str], targets: Sequence[str]
) -> list[tuple[str, Copy]]:
    """The message map's copies of ``post_ids`` at ``targets``, each with its post id."""
    rows = conn.execute(
        select(
            MessageCopy.post_id,
            MessageCopy.endpoint,
            MessageCopy.native_id,
            MessageCopy.thread_native_id,
            MessageCopy.parts,
        ).where(MessageCopy.post_id.in_(list(post_ids)), MessageCopy.endpoint.in_(list(targets)))
    )
    return [(p, Copy(Endpoint.parse(e), n, t, tuple(parts or ()))) for p, e, n, t, parts in rows]


@functools.cache
def _taken_order_statement() -> Any:
    table = Delivery.__table__
    return (
        select(table.c.uid)
        .where(
            table.c.uid.in_(bindparam("fresh_uids", expanding=True)),
            table.c.lease_owner == bindparam("fresh_owner"),
        )
        .order_by(table.c.id)
    )


@functools.cache
def _drop_lease_statement() -> Any:
    table = Delivery.__table__
    return (
        update(table)
        .where(
            table.c.uid.in_(bindparam("fresh_uids", expanding=True)),
            table.c.lease_owner == bindparam("fresh_owner"),
        )
        .values(lease_owner=None, lease_expires_at=None)
    )


def _has_pending(target: Any) -> Any:
    """Whether ``target`` has a delivery waiting: a new row to it must queue behind that one."""
    return (
        select(Delivery.id)
        .where(Delivery.target_endpoint == target, Delivery.status == "pending")
        .exists()
    )


def _post_targets(row: Any, busy: set[str]) -> PostTargets:
    entries = sorted(
        (int(order), int(sync_id), allow == "1", pending == "1", endpoint)
        for order, sync_id, allow, pending, endpoint in (
            item.split(_COL) for item in (row[1] or "").split(_ROW) if item
        )
    )
    grouped: dict[int, tuple[bool, list[Endpoint]]] = {}
    for _order, sync_id, allow, pending, endpoint in entries:
        if pending:
            busy.add(endpoint)
        targets = grouped.setdefault(sync_id, (allow, []))[1]
        if endpoint:
            targets.append(Endpoint.parse(endpoint))
    parent = None
    if len(row) > 2 and row[2] is not None:
        parent = PostRef(
            post_id=row[2], sync_id=row[3], source=Endpoint.parse(row[4]), native_id=row[5]
        )
    return PostTargets(
        echo=bool(row[0]),
        syncs=tuple(
            SyncTargets(sync_id=k, targets=tuple(v[1]), allow_broadcast=v[0])
            for k, v in grouped.items()
        ),
        thread_parent=parent,
    )


def _ready_at(next_at: datetime, lease_until: datetime | None, now: datetime) -> datetime:
    """When a row can next be attempted: its retry time, or later while another holds it."""
    if lease_until is not None and lease_until > now:
        return max(next_at, lease_until)
    return next_at


def _keep_prefixes(
    s: Session | Connection, chosen: list[int], pending: Sequence[Any], rows: Sequence[Any]
) -> list[Any]:
    """Drop rows that another worker's concurrent claim left us out of order.

    If a competing claim took row 1 of a target and we got row 2, delivering row 2 now would
    overtake row 1: hand such rows back.
    """
    got = {r.id for r in rows}
    target_of = {row[0]: row[2] for row in pending}
    broken: set[str] = set()
    keep_ids: set[int] = set()
    for row_id in chosen:
        target = target_of[row_id]
        if target in broken:
            continue
        if row_id in got:
            keep_ids.add(row_id)
        else:
            broken.add(target)
    extra = [r for r in rows if r.id not in keep_ids]
    if extra:
        s.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.id for r in extra]))
            .values(lease_owner=None, lease_expires_at=None),
            execution_options={"synchronize_session": False},
        )
    return [r for r in rows if r.id in keep_ids]


def _lock_free(
    s: Session | Connection,
    pending: Sequence[Any],
    candidates: list[int],
    now: datetime,
    wanted: set[str] | None,
    limit: int,
    lanes: int | None,
) -> tuple[list[int], list[int]]:
    """Lock the ``candidates`` nobody else is claiming right now, skipping the rest instead of
    queueing behind another worker's claim; the locking read re-checks the lease on the latest
    committed row, so a lease taken since the scan counts.

    A target whose rows were skipped is another worker's. Two workers that scan at the same
    moment choose the same targets, and the one that loses the race would come back with
    nothing and sleep: a pass with lanes to fill tries other targets in their place (a few
    rounds at most). Returns the locked ids, and every candidate tried, in order per target.
    """
    target_of = {row[0]: row[2] for row in pending}
    locked: list[int] = []
    tried: list[int] = []
    seen: set[str] = set()
    for _round in range(_LOCK_ROUNDS):
        tried += candidates
        seen |= {target_of[i] for i in candidates}
        got = set(
            s.execute(
                select(Delivery.id)
                .where(
                    Delivery.id.in_(candidates),
                    Delivery.status == "pending",
                    or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
                )
                .order_by(Delivery.id)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        locked += [i for i in candidates if i in got]
        if lanes is None or len(got) == len(candidates):
            break
        # Targets whose first row is ours (a target whose first row was skipped is not).
        heads: dict[str, int] = {}
        for i in tried:
            heads.setdefault(target_of[i], i)
        mine = set(locked)
        room = lanes - sum(1 for first in heads.values() if first in mine)
        if room <= 0 or len(locked) >= limit:
            break
        rest = [row for row in pending if row[2] not in seen]
        candidates = _due_prefixes(rest, now, wanted, limit - len(locked), room)
        if not candidates:
            break
    return sorted(locked), tried


def _due_prefixes(
    pending: Sequence[Any], now: datetime, wanted: set[str] | None, limit: int, lanes: int | None
) -> list[int]:
    """Per target, the consecutive due, unleased rows from its oldest pending one, for at most
    ``lanes`` targets.

    Stopping at the first row that is not due (backing off) or leased elsewhere is what keeps
    deliveries to one target in order; leaving the other targets to other workers is what lets
    several workers share the outbox.
    """
    blocked: set[str] = set()
    chosen: list[int] = []
    per_target: dict[str, int] = defaultdict(int)
    for row_id, uid, target, next_at, lease_until in pending:
        if target in blocked:
            continue
        due = next_at <= now
        free = lease_until is None or lease_until < now
        if not (due and free) or (wanted is not None and uid not in wanted):
            blocked.add(target)
            continue
        if target not in per_target and lanes is not None and len(per_target) >= lanes:
            blocked.add(target)
            continue
        chosen.append(row_id)
        per_target[target] += 1
        if len(chosen) >= limit:
            break
    return chosen
