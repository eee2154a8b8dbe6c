"""The relay's hot statements, rendered once per engine and run as driver SQL.

Running a Core statement costs SQLAlchemy's per-statement Python far more than the database's
work on this path: the statement's cache key (a walk of the whole claim statement), the
compiled-cache lookup, an execution context built from the compiled form, every parameter
through its type's bind processor, result processors. For the few statements every message
runs (claim, post, source copy, outbox rows, completion), :class:`HotStatements` renders each
Core statement once per engine (and per shape: thread or not, number of rows) with the
engine's own dialect, and runs the SQL text with ``Connection.exec_driver_sql``, its
parameters already in the driver's form (see :class:`DriverValues`). The SQL sent is
SQLAlchemy's rendering of the same Core statements (a list of rows: one multi-row INSERT, see
:class:`Repeated`), and the ``before_cursor_execute`` event still sees every statement;
``tests/store/test_hot_sql.py`` holds what they store to what SQLAlchemy stores.

Constant parameters (``'pending'``, ``'active'``, the aggregation's separators, flags) are
rendered as bound parameters as before, their values put through their types' processors once
here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect, Insert, bindparam, insert, update
from sqlalchemy.types import JSON, TypeEngine

from app.store.models import Delivery, MessageCopy, Post, ProcessedEvent, UTCDateTime


def _driver_form(type_: TypeEngine[Any], value: Any, dialect: Dialect) -> Any:
    """``value`` as SQLAlchemy hands it to the driver for a column of ``type_``."""
    process = type_.dialect_impl(dialect).bind_processor(dialect)
    return process(value) if process is not None else value


@dataclass(frozen=True, slots=True)
class Rendered:
    """One statement's SQL for one dialect, and how to lay out its parameters."""

    sql: str
    # Parameter names in placeholder order for positional paramstyles (qmark, format);
    # None where the driver takes a mapping.
    order: tuple[str, ...] | None
    # The statement's constant parameters, in the driver's form.
    fixed: Mapping[str, Any]

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        merged = {**self.fixed, **values}
        if self.order is None:
            return merged
        return tuple(merged[name] for name in self.order)


def render(stmt: Any, dialect: Dialect, *, fixed: Mapping[str, Any] | None = None) -> Rendered:
    """Compile ``stmt`` for ``dialect``; ``fixed`` gives values to some of its parameters.

    Every other parameter either has a value in the statement (a literal SQLAlchemy bound) or
    must be given at each call.
    """
    compiled = stmt.compile(dialect=dialect)
    required = {name for name, bind in compiled.binds.items() if bind.required}
    given = dict(fixed or {})
    unknown = set(given) - required
    if unknown:
        raise ValueError(f"no such parameters: {sorted(unknown)}")
    # What SQLAlchemy does at execution: constants it renders into the SQL
    # (``literal_execute``: the separator of ``aggregate_strings``) rendered, the others put
    # through their types' bind processors. The required parameters' values are not used.
    state = compiled.construct_expanded_state({name: given.get(name) for name in required})
    sql: str = state.statement
    if state.positiontup is not None:
        order: tuple[str, ...] | None = tuple(state.positiontup)
        used = set(state.positiontup)
    elif dialect.paramstyle == "pyformat":
        order = None
        used = {name for name in state.parameters if f"%({name})s" in sql}
    else:
        raise NotImplementedError(f"paramstyle {dialect.paramstyle}")
    constants = {
        name: _driver_form(compiled.binds[name].type, value, dialect)
        for name, value in state.parameters.items()
        if name in used and (name not in required or name in given)
    }
    return Rendered(sql=sql, order=order, fixed=constants)


# The suffix of the parameters of a repeated part (:class:`Repeated`), row 0.
_ITEM = "_r0"
# Renderings kept per repeated statement: batch sizes are small, but not bounded here.
_KEEP_SIZES = 256
# Rows at most in one multi-row INSERT (SQLite takes 32766 parameters, PostgreSQL 65535).
_MAX_ROWS = 500


class Repeated:
    """A statement with a part repeated once per row: a multi-row VALUES, an IN list.

    Compiling the statement for each number of rows cost milliseconds (and a completion's
    batch size varies); as SQLAlchemy's own "insertmanyvalues" does, the one-row rendering is
    taken apart once and its repeated part written out ``n`` times, with its parameters
    renamed per row (``name_r0``, ``name_r1``...).
    """

    def __init__(self, one: Rendered, anchor: str, *, inside: bool) -> None:
        """``one``: the statement with one row, whose parameters end in ``_r0``; the repeated
        part is the parenthesized group after ``anchor`` (``inside``: what is inside it)."""
        open_at = one.sql.index(anchor) + len(anchor)
        if one.sql[open_at] != "(":
            raise ValueError(f"no group after {anchor!r}: {one.sql}")
        depth, close_at = 0, open_at
        for close_at in range(open_at, len(one.sql)):
            depth += {"(": 1, ")": -1}.get(one.sql[close_at], 0)
            if depth == 0:
                break
        start, end = (open_at + 1, close_at) if inside else (open_at, close_at + 1)
        self._head, self._item, self._tail = one.sql[:start], one.sql[start:end], one.sql[end:]
        self._order = one.order
        self._fixed = one.fixed
        self._sizes: dict[int, Rendered] = {}

    def rows(self, n: int) -> Rendered:
        rendered = self._sizes.get(n)
        if rendered is None:
            rendered = self._expand(n)
            if len(self._sizes) < _KEEP_SIZES:
                self._sizes[n] = rendered
        return rendered

    def _expand(self, n: int) -> Rendered:
        def renamed(name: str, i: int) -> str:
            return name[: -len(_ITEM)] + f"_r{i}" if name.endswith(_ITEM) else name

        items = []
        for i in range(n):
            item = self._item
            if self._order is None:  # named placeholders: %(name_r0)s
                item = item.replace(f"{_ITEM})s", f"_r{i})s")
            items.append(item)
        sql = self._head + ", ".join(items) + self._tail
        fixed = {
            renamed(name, i): value
            for name, value in self._fixed.items()
            for i in (range(n) if name.endswith(_ITEM) else (0,))
        }
        order = None
        if self._order is not None:
            first = next(k for k, name in enumerate(self._order) if name.endswith(_ITEM))
            last = max(k for k, name in enumerate(self._order) if name.endswith(_ITEM))
            per_item = self._order[first : last + 1]
            order = (
                self._order[:first]
                + tuple(renamed(name, i) for i in range(n) for name in per_item)
                + self._order[last + 1 :]
            )
        return Rendered(sql=sql, order=order, fixed=fixed)

    @staticmethod
    def params(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The rows' parameters, by their per-row names."""
        return {f"{key}_r{i}": value for i, row in enumerate(rows) for key, value in row.items()}


class DriverValues:
    """Per-call values in the form the engine's driver wants, as SQLAlchemy would pass them.

    Timestamps: :class:`UTCDateTime` stores naive UTC; SQLite's driver gets the text SQLite
    stores (``YYYY-MM-DD HH:MM:SS.ffffff``), psycopg and PyMySQL a naive ``datetime``. JSON:
    the text ``json.dumps`` makes (the dialects' default serializer). :meth:`check` holds
    these to SQLAlchemy's own processors when a store starts.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._as_text = dialect.name == "sqlite"
        self.check(dialect)

    def time(self, value: datetime) -> Any:
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; use datetime.now(UTC)")
        naive = (value if value.tzinfo is UTC else value.astimezone(UTC)).replace(tzinfo=None)
        return naive.isoformat(" ", "microseconds") if self._as_text else naive

    def maybe_time(self, value: datetime | None) -> Any:
        return None if value is None else self.time(value)

    @staticmethod
    def json(value: Any) -> str:
        return json.dumps(value)

    def check(self, dialect: Dialect) -> None:
        """Fail at once, not in stored data, if SQLAlchemy's forms ever differ from these."""
        column = UTCDateTime()
        for sample in (
            datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC),
            datetime(2024, 1, 1, tzinfo=UTC),
        ):
            if self.time(sample) != _driver_form(column, sample, dialect):
                raise RuntimeError(f"{dialect.name}: timestamps differ from SQLAlchemy's")
        # An engine made with its own json_serializer would store other text.
        if getattr(dialect, "_json_serializer", None) is not None:
            raise RuntimeError(f"{dialect.name}: a custom JSON serializer is not supported")
        sample_json = {"a": [1, None, "é\u2713"], "b": {"c": False}}
        form = _driver_form(JSON(), sample_json, dialect)
        # psycopg gets the value wrapped, for its own adapter to serialize (json.dumps).
        text = json.dumps(form.obj) if dialect.name == "postgresql" else form
        if self.json(sample_json) != text:
            raise RuntimeError(f"{dialect.name}: JSON differs from SQLAlchemy's")


# Columns the relay writes, in the order the Core statements listed them.
_POST_COLUMNS = (
    "id",
    "sync_id",
    "source_endpoint",
    "source_native_id",
    "thread_post_id",
    "author_name",
    "deleted",
    "created_at",
)
_SOURCE_COPY_COLUMNS = (
    "post_id",
    "endpoint",
    "native_id",
    "thread_native_id",
    "is_source",
    "created_at",
)
_OUTBOX_COLUMNS = (
    "uid",
    "sync_id",
    "post_id",
    "target_endpoint",
    "kind",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "outcome_unknown",
    "lease_owner",
    "lease_expires_at",
    "source_time",
    "created_at",
)
_COPY_COLUMNS = (
    "post_id",
    "endpoint",
    "native_id",
    "thread_native_id",
    "is_source",
    "created_at",
    "parts",
)


def _values(table: Any, columns: Sequence[str], suffix: str = "") -> dict[str, Any]:
    return {c: bindparam(c + suffix, type_=table.c[c].type) for c in columns}


@dataclass(frozen=True, slots=True)
class Builders:
    """The relay store's Core statements that :class:`HotStatements` renders."""

    # The dialect's INSERT that skips rows violating a unique key.
    insert_ignore: Callable[[str, Any], Insert]
    # The claim with the post's read in its RETURNING, by dialect and thread or not.
    claim_post: Callable[[str, bool], Any]
    # The post's read alone, thread or not.
    post_read: Callable[[bool], Any]


class HotStatements:
    """The relay's hot statements for one engine's dialect, rendered on first use."""

    def __init__(self, dialect: Dialect, builders: Builders) -> None:
        self.dialect = dialect
        self.name = dialect.name
        self.values = DriverValues(dialect)
        self._builders = builders
        self._claim_post: dict[bool, Rendered] = {}
        self._post_read: dict[bool, Rendered] = {}

    def run(
        self, conn: Connection, stmt: Rendered, values: Mapping[str, Any]
    ) -> CursorResult[Any]:
        return conn.exec_driver_sql(stmt.sql, stmt.params(values))

    def run_many(
        self, conn: Connection, stmt: Rendered, rows: Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """One DBAPI ``executemany`` of ``stmt``, as SQLAlchemy runs a list of rows."""
        return conn.exec_driver_sql(stmt.sql, [stmt.params(row) for row in rows])

    @functools.cached_property
    def claim(self) -> Rendered:
        """The dedupe claim alone; RETURNING says whether it was new, except on MySQL."""
        table = ProcessedEvent.__table__
        stmt = self._builders.insert_ignore(self.name, table).values(
            key=bindparam("key", type_=table.c.key.type),
            created_at=bindparam("created_at", type_=table.c.created_at.type),
            expires_at=bindparam("expires_at", type_=table.c.expires_at.type),
        )
        if self.name != "mysql":
            stmt = stmt.returning(table.c.key)
        return render(stmt, self.dialect)

    def claim_post(self, thread: bool) -> Rendered:
        """The claim with the post's read in its RETURNING (not on MySQL)."""
        rendered = self._claim_post.get(thread)
        if rendered is None:
            stmt = self._builders.claim_post(self.name, thread)
            rendered = self._claim_post[thread] = render(stmt, self.dialect)
        return rendered

    def post_read(self, thread: bool) -> Rendered:
        rendered = self._post_read.get(thread)
        if rendered is None:
            stmt = self._builders.post_read(thread)
            rendered = self._post_read[thread] = render(stmt, self.dialect)
        return rendered

    @functools.cached_property
    def post(self) -> Rendered:
        table = Post.__table__
        return render(
            insert(table).values(_values(table, _POST_COLUMNS)).inline(),
            self.dialect,
            fixed={"deleted": False},
        )

    @functools.cached_property
    def source_copy(self) -> Rendered:
        table = MessageCopy.__table__
        # Inline: no RETURNING of the new row's id, which nothing reads (PostgreSQL).
        return render(
            insert(table).values(_values(table, _SOURCE_COPY_COLUMNS)).inline(),
            self.dialect,
            fixed={"is_source": True},
        )

    @functools.cached_property
    def _outbox(self) -> Rendered | Repeated:
        table = Delivery.__table__
        return self._multi_row(
            insert(table).inline(),
            table,
            _OUTBOX_COLUMNS,
            {"status": "pending", "attempts": 0, "outcome_unknown": False},
        )

    def insert_outbox(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """An ingest's outbox rows, in one multi-row INSERT, in the order given."""
        self._insert(conn, self._outbox, rows)

    @functools.cached_property
    def _copies(self) -> Rendered | Repeated:
        table = MessageCopy.__table__
        return self._multi_row(
            self._builders.insert_ignore(self.name, table),
            table,
            _COPY_COLUMNS,
            {"is_source": False},
        )

    def insert_copies(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The completion's message-map rows in one multi-row INSERT, skipping a copy
        already recorded."""
        self._insert(conn, self._copies, rows)

    def _multi_row(
        self, stmt: Insert, table: Any, columns: Sequence[str], fixed: Mapping[str, Any]
    ) -> Rendered | Repeated:
        if self.name == "mysql":
            # One row, run as an executemany, which PyMySQL sends as one multi-row INSERT.
            return render(stmt.values(_values(table, columns)), self.dialect, fixed=fixed)
        one = render(
            stmt.values([_values(table, columns, _ITEM)]),
            self.dialect,
            fixed={name + _ITEM: value for name, value in fixed.items()},
        )
        return Repeated(one, " VALUES ", inside=False)

    def _insert(
        self, conn: Connection, stmt: Rendered | Repeated, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        if not isinstance(stmt, Repeated):
            self.run_many(conn, stmt, rows)
            return
        # Batches far larger than any fan-out are split, as SQLAlchemy's own multi-row
        # INSERT splits them, to stay under the databases' limits on parameters.
        for start in range(0, len(rows), _MAX_ROWS):
            batch = rows[start : start + _MAX_ROWS]
            self.run(conn, stmt.rows(len(batch)), Repeated.params(batch))

    @functools.cached_property
    def _mark_delivered(self) -> Repeated:
        table = Delivery.__table__
        stmt = (
            update(table)
            .where(table.c.uid.in_([bindparam("uid" + _ITEM, type_=table.c.uid.type)]))
            .values(
                status="delivered",
                delivered_at=bindparam("done_at", type_=table.c.delivered_at.type),
                attempts=table.c.attempts + 1,
                lease_owner=None,
                lease_expires_at=None,
                last_error=None,
            )
        )
        return Repeated(render(stmt, self.dialect), " IN ", inside=True)

    def mark_delivered(self, conn: Connection, uids: Sequence[str], done_at: Any) -> None:
        """Record ``uids`` delivered at ``done_at`` (in the driver's form), in one UPDATE."""
        rendered = self._mark_delivered.rows(len(uids))
        self.run(
            conn, rendered, Repeated.params([{"uid": u} for u in uids]) | {"done_at": done_at}
        )
