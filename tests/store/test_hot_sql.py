"""The relay's pre-rendered statements (``app/store/hot_sql.py``) against SQLAlchemy's own.

Each hot statement stands for a Core statement SQLAlchemy used to run. Every test here runs
both on each backend, with the same values, and compares what they stored as the database
holds it (SQLite's ``quote()``, PostgreSQL's text form, MariaDB's ``CAST(... AS CHAR)``) and
what they returned; only the keys the test varies on purpose may differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, insert, text, update

from app.core import richtext
from app.core.endpoints import Endpoint
from app.core.events import Author, Kind
from app.core.payloads import PostPayload
from app.core.ports import Delivered, DeliveryTask, Lease, NewDelivery
from app.store import hot_sql, relay_store
from app.store.cipher import TokenCipher
from app.store.engine import autocommit, session_factory
from app.store.models import Delivery, MessageCopy, Post, ProcessedEvent
from app.store.relay_store import (
    SqlStore,
    _claim_post_statement,
    _insert_ignore_dialect,
    _post_read_params,
    _post_read_statement,
    _post_targets,
    inserted,
)
from tests import builders
from tests.conftest import TEST_KEY

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")
# Microseconds, and none: SQLite stores both as text of one fixed width.
NOW = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
WHOLE = datetime(2026, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
TTL = 3600


@pytest.fixture
def store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlStore]:
    monkeypatch.setattr(relay_store, "_now", lambda: NOW)
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)
    yield SqlStore(sessions)


def stored(engine: Engine, table: Any, column: str, value: Any) -> dict[str, Any]:
    """The row of ``table`` whose ``column`` is ``value``, each column as the database holds
    it."""
    dialect = engine.dialect.name
    quote = engine.dialect.identifier_preparer.quote
    forms = {
        "sqlite": "quote({})",
        "postgresql": "{}::text",
        "mysql": "CAST({} AS CHAR)",
    }
    names = [c.name for c in table.columns]
    columns = ", ".join(forms[dialect].format(quote(n)) for n in names)
    sql = f"SELECT {columns} FROM {table.name} WHERE {quote(column)} = :v"
    with engine.connect() as conn:
        row = conn.execute(text(sql), {"v": value}).one()
    return dict(zip(names, row, strict=True))


def differing(one: dict[str, Any], other: dict[str, Any]) -> set[str]:
    return {k for k in one if one[k] != other[k]}


def ids_in_order(engine: Engine, uids: list[str]) -> bool:
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT uid FROM outbox WHERE uid IN :uids ORDER BY id").bindparams(
                bindparam("uids", expanding=True)
            ),
            {"uids": uids},
        )
        return list(got.scalars()) == uids


def sync_id(engine: Engine) -> int:
    """The sync's id (read outside the store's transactions: on SQLite, it would wait for
    theirs)."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM syncs")).scalar_one())


def payload(thread_post_id: str | None = None) -> PostPayload:
    return PostPayload(
        source=A,
        source_native_id="1.1",
        author=Author(name="Zoë ✓"),
        body=richtext.text('say "hi" é \\ ✓'),
        thread_post_id=thread_post_id,
    )


# What the store ran before the hot statements, as it ran it.


def core_claim(conn: Connection, key: str) -> bool:
    stmt = _insert_ignore_dialect(conn.dialect.name, ProcessedEvent.__table__).values(
        key=key, created_at=NOW, expires_at=NOW + timedelta(seconds=TTL)
    )
    return inserted(conn, stmt, ProcessedEvent.__table__.c.key)


def core_claim_post(conn: Connection, key: str, native_id: str, thread: str | None) -> Any:
    dialect = conn.dialect.name
    read = _post_read_params(A, native_id, thread)
    if dialect == "mysql":
        if not core_claim(conn, key):
            return None
        row = conn.execute(_post_read_statement(bool(thread)), read).one()
    else:
        row = conn.execute(
            _claim_post_statement(dialect, bool(thread)),
            {"claim_key": key, "claim_at": NOW, "claim_until": NOW + timedelta(seconds=TTL)}
            | read,
        ).first()
        if row is None:
            return None
    busy: set[str] = set()
    return _post_targets(row, busy), busy


def core_create_post(
    conn: Connection, sid: int, post_id: str, native_id: str, thread: str | None
) -> None:
    conn.execute(
        insert(Post.__table__),
        {
            "id": post_id,
            "sync_id": sid,
            "source_endpoint": str(A),
            "source_native_id": native_id,
            "thread_post_id": thread and "hot-parent",
            "author_name": "Zoë",
            "deleted": False,
            "created_at": NOW,
        },
    )
    conn.execute(
        insert(MessageCopy.__table__),
        {
            "post_id": post_id,
            "endpoint": str(A),
            "native_id": native_id,
            "thread_native_id": thread,
            "is_source": True,
            "created_at": NOW,
        },
    )


def core_enqueue(conn: Connection, rows: list[tuple[NewDelivery, bool]], lease: Lease) -> None:
    conn.execute(
        insert(Delivery.__table__),
        [
            {
                "uid": d.uid,
                "sync_id": d.sync_id,
                "post_id": d.post_id,
                "target_endpoint": str(d.target),
                "kind": str(d.kind),
                "payload": d.payload.to_json(),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": NOW,
                "outcome_unknown": False,
                "lease_owner": lease.owner if leased else None,
                "lease_expires_at": NOW + timedelta(seconds=lease.seconds) if leased else None,
                "source_time": d.source_time,
                "created_at": NOW,
            }
            for d, leased in rows
        ],
    )


def core_complete(engine: Engine, done: list[tuple[DeliveryTask, Delivered]]) -> None:
    dialect = engine.dialect.name
    copies = [
        {
            "post_id": task.post_id,
            "endpoint": str(result.endpoint or task.target),
            "native_id": result.native_id,
            "thread_native_id": result.thread_native_id,
            "is_source": False,
            "created_at": NOW,
            "parts": list(result.parts) or None,
        }
        for task, result in done
    ]
    copies_stmt = _insert_ignore_dialect(dialect, MessageCopy.__table__)
    if dialect != "mysql":
        copies_stmt = copies_stmt.returning(MessageCopy.__table__.c.id)
    table = Delivery.__table__
    mark = (
        update(table)
        .where(table.c.uid.in_(bindparam("uids", expanding=True)))
        .values(
            status="delivered",
            delivered_at=bindparam("done_at"),
            attempts=table.c.attempts + 1,
            lease_owner=None,
            lease_expires_at=None,
            last_error=None,
        )
    )
    with engine.connect() as raw:
        conn = autocommit(raw) if dialect != "mysql" else raw
        conn.execute(copies_stmt, copies)
        conn.execute(mark, {"uids": [task.uid for task, _ in done], "done_at": NOW})
        if dialect == "mysql":
            conn.commit()


def task(delivery: NewDelivery) -> DeliveryTask:
    return DeliveryTask(
        uid=delivery.uid,
        kind=delivery.kind,
        target=delivery.target,
        post_id=delivery.post_id,
        payload=delivery.payload,
        attempts=0,
        outcome_unknown=False,
    )


# The tests.


def test_claim_stores_what_sqlalchemy_stored(store: SqlStore, engine: Engine) -> None:
    with store.transaction() as tx:
        assert tx.claim("hot", ttl_seconds=TTL)
        assert not tx.claim("hot", ttl_seconds=TTL)
    with engine.begin() as conn:
        assert core_claim(conn, "ref")
        assert not core_claim(conn, "ref")
    table = ProcessedEvent.__table__
    assert differing(stored(engine, table, "key", "hot"), stored(engine, table, "key", "ref")) == {
        "key"
    }


@pytest.mark.parametrize("thread", [False, True], ids=["top-level", "reply"])
def test_claim_post_reads_and_stores_what_sqlalchemy_did(
    store: SqlStore, engine: Engine, thread: bool
) -> None:
    sid = sync_id(engine)
    # A parent for the reply, and a delivery waiting to B, which the read reports busy.
    with store.transaction() as tx:
        tx.create_post(
            post_id="hot-parent",
            sync_id=sid,
            source=A,
            native_id="1.0",
            thread_native_id=None,
            thread_post_id=None,
            author_name="Zoë",
        )
        tx.enqueue([NewDelivery("waiting", sid, "hot-parent", B, Kind.POST, payload())])
    parent = "1.0" if thread else None
    cases = [("1.5", "fresh"), ("1.0", "echo")]  # 1.0 is a known copy: an echo
    for native_id, name in cases:
        with store.transaction() as tx:
            hot = tx.claim_post(
                f"hot-{name}",
                ttl_seconds=TTL,
                source=A,
                native_id=native_id,
                thread_native_id=parent,
            )
            hot_busy = set(tx._busy)
            duplicate = tx.claim_post(
                f"hot-{name}",
                ttl_seconds=TTL,
                source=A,
                native_id=native_id,
                thread_native_id=parent,
            )
        with engine.begin() as conn:
            ref = core_claim_post(conn, f"ref-{name}", native_id, parent)
            ref_duplicate = core_claim_post(conn, f"ref-{name}", native_id, parent)
        assert hot is not None and ref is not None
        assert (hot, hot_busy) == ref
        assert hot.echo is (name == "echo")
        assert hot_busy == {str(B)}
        assert (hot.thread_parent is not None) is thread
        assert duplicate is None and ref_duplicate is None
        table = ProcessedEvent.__table__
        assert differing(
            stored(engine, table, "key", f"hot-{name}"),
            stored(engine, table, "key", f"ref-{name}"),
        ) == {"key"}


@pytest.mark.parametrize("thread", [None, "1.0"], ids=["top-level", "reply"])
def test_create_post_stores_what_sqlalchemy_stored(
    store: SqlStore, engine: Engine, thread: str | None
) -> None:
    sid = sync_id(engine)
    with store.transaction() as tx:
        tx.create_post(
            post_id="hot-parent",
            sync_id=sid,
            source=A,
            native_id="1.0",
            thread_native_id=None,
            thread_post_id=None,
            author_name="Zoë",
        )
        tx.create_post(
            post_id="hot",
            sync_id=sid,
            source=A,
            native_id="2.0",
            thread_native_id=thread,
            thread_post_id=thread and "hot-parent",
            author_name="Zoë",
        )
    with engine.begin() as conn:
        core_create_post(conn, sid, "ref", "3.0", thread)
    posts, copies = Post.__table__, MessageCopy.__table__
    assert differing(stored(engine, posts, "id", "hot"), stored(engine, posts, "id", "ref")) == {
        "id",
        "source_native_id",
    }
    assert differing(
        stored(engine, copies, "native_id", "2.0"), stored(engine, copies, "native_id", "3.0")
    ) == {"id", "post_id", "native_id"}


@pytest.mark.parametrize("leased", [True, False], ids=["leased", "unleased"])
def test_enqueue_and_complete_store_what_sqlalchemy_stored(
    store: SqlStore, engine: Engine, leased: bool
) -> None:
    sid = sync_id(engine)
    lease = Lease(owner="worker-1", seconds=90.5)
    with store.transaction() as tx:
        for post_id in ("hot-post", "ref-post"):
            tx.create_post(
                post_id=post_id,
                sync_id=sid,
                source=A,
                native_id=post_id,
                thread_native_id=None,
                thread_post_id=None,
                author_name="Zoë",
            )
    shared = payload()

    def deliveries(prefix: str) -> list[NewDelivery]:
        return [
            NewDelivery(f"{prefix}-b", sid, f"{prefix}-post", B, Kind.POST, shared, WHOLE),
            NewDelivery(f"{prefix}-c", sid, f"{prefix}-post", C, Kind.POST, shared, None),
            NewDelivery(f"{prefix}-x", sid, f"{prefix}-post", C, Kind.POST, payload("p"), NOW),
        ]

    hot, ref = deliveries("hot"), deliveries("ref")
    with store.transaction() as tx:
        got = tx.enqueue(hot, lease=lease if leased else None)
    assert got == ({"hot-b", "hot-c", "hot-x"} if leased else set())
    with engine.begin() as conn:
        core_enqueue(conn, [(d, leased) for d in ref], lease)
    outbox = Delivery.__table__
    # One multi-row INSERT numbers its rows in order: a target's deliveries keep theirs.
    assert ids_in_order(engine, [d.uid for d in hot])
    for h, r in zip(hot, ref, strict=True):
        assert differing(
            stored(engine, outbox, "uid", h.uid), stored(engine, outbox, "uid", r.uid)
        ) == {
            "id",
            "uid",
            "post_id",
        }

    # Completion: a copy with parts, one without, one already recorded (skipped).
    def results(prefix: str) -> list[tuple[DeliveryTask, Delivered]]:
        ds = deliveries(prefix)
        return [
            (task(ds[0]), Delivered(native_id=f"{prefix}.1", parts=("file:F1", "file:F2"))),
            (task(ds[1]), Delivered(native_id=f"{prefix}.2", thread_native_id="9.9")),
            (task(ds[2]), Delivered(native_id=f"{prefix}.2")),
        ]

    store.complete_many(results("hot"))
    core_complete(engine, results("ref"))
    copies = MessageCopy.__table__
    for n in ("1", "2"):
        assert differing(
            stored(engine, copies, "native_id", f"hot.{n}"),
            stored(engine, copies, "native_id", f"ref.{n}"),
        ) == {"id", "post_id", "native_id"}
    for h, r in zip(hot, ref, strict=True):
        assert differing(
            stored(engine, outbox, "uid", h.uid), stored(engine, outbox, "uid", r.uid)
        ) == {
            "id",
            "uid",
            "post_id",
        }


def test_a_batch_beyond_the_row_limit_is_split_in_order(
    store: SqlStore, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hot_sql, "_MAX_ROWS", 2)
    sid = sync_id(engine)
    with store.transaction() as tx:
        tx.create_post(
            post_id="post",
            sync_id=sid,
            source=A,
            native_id="1.0",
            thread_native_id=None,
            thread_post_id=None,
            author_name="Zoë",
        )
    rows = [
        NewDelivery(f"d{i}", sid, "post", (B, C)[i % 2], Kind.POST, payload()) for i in range(5)
    ]
    with store.transaction() as tx:
        tx.enqueue(rows)
    assert ids_in_order(engine, [d.uid for d in rows])
    store.complete_many([(task(d), Delivered(native_id=f"n{i}")) for i, d in enumerate(rows)])
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM outbox")).scalars().all()
        copies = conn.execute(text("SELECT count(*) FROM message_map")).scalar_one()
    assert statuses == ["delivered"] * 5
    assert copies == 1 + 5
