"""Whole-database backups: portable, authenticated, restored all or nothing.

File layout (``syncbot-backup/1``)::

    syncbot-backup/1 key=<mac key id>\\n      plain text, so a wrong file is named as such
    <gzip of JSON lines>                      header, one line per row, end marker
    <32 bytes: HMAC-SHA256 of everything above>

The JSON lines are ``{"format": ..., "schema_revision": ..., "tables": [{"name", "columns",
"rows"}, ...]}``, then ``["<table>", [value, ...]]`` per row with tables in foreign-key order,
then ``{"end": true, "rows": N}``. Values are JSON; timestamps are ISO 8601 (UTC), bytes are
base64. Encrypted columns are written as their ciphertext: a backup holds no plaintext secret,
and it restores only where the same ``TOKEN_ENCRYPTION_KEY`` (or it among the previous keys) is
configured.

The MAC key is derived from ``TOKEN_ENCRYPTION_KEY`` with HKDF, so whoever can restore a backup
could already read the secrets it holds. Restore checks the MAC over the whole file before it
reads a single row, then the schema revision, then that every secret decrypts, and only then
replaces every row in one transaction: a failure at any point leaves the database as it was.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Table,
    TypeDecorator,
    func,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from app.errors import CipherError, SyncbotError
from app.settings import Settings
from app.store.cipher import TokenCipher
from app.store.keyfile import token_key
from app.store.migrate import current_revision, revision_of
from app.store.models import Base

Progress = Callable[[int, int], None]

MAGIC = b"syncbot-backup/1"
FORMAT = "syncbot-backup"
VERSION = 1
_MAC_LEN = 32
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_MAC_INFO = b"syncbot backup mac v1"
_CHUNK = 1024 * 1024
_BATCH = 500
# Restores are read through a temporary file: memory up to this size, disk beyond.
_SPOOL = 8 * 1024 * 1024


class BackupError(SyncbotError):
    """A backup cannot be written or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds (or what a restore put back)."""

    schema_revision: str
    created_at: datetime
    key_id: str
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


def backup_mac_key(settings: Settings) -> bytes:
    """The key that authenticates backups, derived from the token encryption key.

    Uses :func:`app.store.keyfile.token_key`, so local development (no
    ``TOKEN_ENCRYPTION_KEY``) uses the generated development key like the token cipher does.
    """
    material = token_key(settings).encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO).derive(material)


def backup_key_id(mac_key: bytes) -> str:
    """A public fingerprint of a MAC key, written in the clear so a mismatch can be named."""
    return hmac.new(mac_key, b"syncbot-backup-key-id", hashlib.sha256).hexdigest()[:16]


def app_tables() -> list[Table]:
    """Every table of the models' metadata, parents before children."""
    return list(Base.metadata.sorted_tables)


def _encrypted_columns() -> dict[str, list[tuple[str, str]]]:
    from app.rotation import ENCRYPTED_COLUMNS

    by_table: dict[str, list[tuple[str, str]]] = {}
    for col in ENCRYPTED_COLUMNS:
        by_table.setdefault(col.column.class_.__tablename__, []).append(
            (col.column.key, col.context)
        )
    return by_table


# --- values ----------------------------------------------------------------------------------


def _python_type(column: Column[Any]) -> type | None:
    kind = column.type
    # A TypeDecorator (e.g. UTCDateTime) reports ``object``; its implementation knows.
    while isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decoder(column: Column[Any]) -> Callable[[Any], Any]:
    if isinstance(column.type, JSON):
        return lambda v: v
    kind = _python_type(column)
    if kind is datetime:

        def to_datetime(v: Any) -> Any:
            if v is None:
                return None
            parsed = datetime.fromisoformat(v)
            # Naive values come from columns stored without a zone; the models store UTC.
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

        return to_datetime
    if kind is date:
        return lambda v: None if v is None else date.fromisoformat(v)
    if kind is bytes:
        return lambda v: None if v is None else base64.b64decode(v)
    if kind is Decimal:
        return lambda v: None if v is None else Decimal(v)
    return lambda v: v


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


# --- writing ---------------------------------------------------------------------------------


class _MacWriter(io.RawIOBase):
    """Writes through to ``out`` and feeds every byte to the MAC."""

    def __init__(self, out: IO[bytes], mac: hmac.HMAC) -> None:
        self._out = out
        self._mac = mac

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._mac.update(chunk)
        self._out.write(chunk)
        return len(chunk)


def _snapshot(engine: Engine) -> Connection:
    conn = engine.connect()
    if engine.dialect.name in ("postgresql", "mysql"):
        # Every table from one snapshot, so child rows never point at parents written later.
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def write_backup(
    engine: Engine,
    out: IO[bytes],
    *,
    mac_key: bytes,
    progress: Progress | None = None,
) -> BackupSummary:
    """Write a backup of every application table to ``out``, streaming rows.

    ``out`` needs only ``write``: a pipe is fine. On error the partial output is not a valid
    backup (it has no MAC), so a caller writing a file should write it aside and rename.

    Raises:
        BackupError: the database has no schema yet, or changed while being read.
    """
    tables = app_tables()
    mac = hmac.new(mac_key, digestmod=hashlib.sha256)
    key_id = backup_key_id(mac_key)
    created = datetime.now(UTC).replace(microsecond=0)
    counts: dict[str, int] = {}
    with _snapshot(engine) as conn, conn.begin():
        revision = revision_of(conn)
        if revision is None:
            raise BackupError("the database has no schema (run `syncbot migrate` first)")
        sink = _MacWriter(out, mac)
        sink.write(MAGIC + f" key={key_id}\n".encode())
        for table in tables:
            counts[table.name] = int(
                conn.execute(select(func.count()).select_from(table)).scalar_one()
            )
        total = sum(counts.values())
        header = {
            "format": FORMAT,
            "version": VERSION,
            "schema_revision": revision,
            "created_at": created.isoformat(),
            "tables": [
                {"name": t.name, "columns": [c.name for c in t.columns], "rows": counts[t.name]}
                for t in tables
            ],
            "rows": total,
        }
        done = 0
        if progress:
            progress(0, total)
        # mtime=0: the same rows give the same bytes.
        with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) as body:
            body.write(_line(header))
            for table in tables:
                seen = 0
                order = list(table.primary_key.columns) or list(table.columns)
                # yield_per streams (server-side cursors): one table never sits in memory.
                result = conn.execute(
                    select(table).order_by(*order).execution_options(yield_per=_BATCH)
                )
                for partition in result.partitions(_BATCH):
                    body.write(
                        b"".join(
                            _line([table.name, [_encode(v) for v in row]]) for row in partition
                        )
                    )
                    seen += len(partition)
                    done += len(partition)
                    if progress:
                        progress(done, total)
                if seen != counts[table.name]:
                    raise BackupError(f"table {table.name} changed while it was being read")
            body.write(_line({"end": True, "rows": done}))
    out.write(mac.digest())
    return BackupSummary(revision, created, key_id, counts)


# --- reading ---------------------------------------------------------------------------------


def _verified_body(inp: IO[bytes], mac_key: bytes) -> IO[bytes]:
    """Check the MAC over the whole input; return the gzip body in a temporary file.

    Reads ``inp`` once; nothing after this trusts a byte that was not authenticated.
    """
    first = inp.readline(200)
    if not first.startswith(MAGIC + b" key=") or not first.endswith(b"\n"):
        raise BackupError("not a syncbot backup file (no syncbot-backup/1 header)")
    their_key = first[len(MAGIC) + 5 : -1].decode("ascii", "replace")
    if not _KEY_ID.fullmatch(their_key):
        their_key = "unreadable"
    mac = hmac.new(mac_key, first, hashlib.sha256)
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)
    try:
        tail = b""
        while chunk := inp.read(_CHUNK):
            tail += chunk
            if len(tail) > _MAC_LEN:
                body, tail = tail[:-_MAC_LEN], tail[-_MAC_LEN:]
                mac.update(body)
                spool.write(body)
        if len(tail) < _MAC_LEN or not hmac.compare_digest(mac.digest(), tail):
            ours = backup_key_id(mac_key)
            if their_key != ours:
                raise BackupError(
                    "this backup was made under another TOKEN_ENCRYPTION_KEY "
                    f"(key id {their_key}; this instance's is {ours}): restore it where that "
                    "key is configured; nothing was changed"
                )
            raise BackupError(
                "the backup failed authentication: the file is damaged or was modified; "
                "nothing was changed"
            )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _lines(body: IO[bytes]) -> Iterator[Any]:
    body.seek(0)
    with gzip.GzipFile(fileobj=body, mode="rb") as unzipped:
        for raw in unzipped:
            yield json.loads(raw)


@dataclass
class _Plan:
    header: dict[str, Any]
    tables: dict[str, Table]
    decoders: dict[str, list[Callable[[Any], Any]]]
    counts: dict[str, int]
    order: list[str]


def _plan(header: Any, engine: Engine) -> _Plan:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("not a syncbot backup (unexpected header)")
    if header.get("version") != VERSION:
        raise BackupError(f"backup format version {header.get('version')} is not supported")
    theirs = header.get("schema_revision")
    ours = current_revision(engine)
    if theirs != ours:
        raise BackupError(
            f"the backup is of schema revision {theirs}, this database is at {ours}: "
            "restore it with the syncbot version that made it (same migrations), "
            "nothing was changed"
        )
    known = {t.name: t for t in app_tables()}
    listed = header.get("tables") or []
    names = [t["name"] for t in listed]
    if sorted(names) != sorted(known):
        raise BackupError(
            "the backup's tables do not match this schema "
            f"(missing: {sorted(set(known) - set(names))}, "
            f"unknown: {sorted(set(names) - set(known))})"
        )
    decoders: dict[str, list[Callable[[Any], Any]]] = {}
    for entry in listed:
        table = known[entry["name"]]
        if entry["columns"] != [c.name for c in table.columns]:
            raise BackupError(f"the backup's columns of {table.name} do not match this schema")
        decoders[table.name] = [_decoder(c) for c in table.columns]
    return _Plan(
        header=header,
        tables=known,
        decoders=decoders,
        counts={t["name"]: int(t["rows"]) for t in listed},
        order=names,
    )


def _rows(body: IO[bytes], plan: _Plan) -> Iterator[tuple[str, dict[str, Any]]]:
    """The backup's rows as ``(table, {column: value})``, checked against the header."""
    lines = _lines(body)
    next(lines)  # the header, already read
    seen = dict.fromkeys(plan.order, 0)
    position = 0
    ended = False
    for item in lines:
        if isinstance(item, dict) and item.get("end"):
            ended = True
            break
        name, values = item
        # Tables come in the header's (foreign-key) order; a row out of order means a bug.
        while position < len(plan.order) and plan.order[position] != name:
            position += 1
        if position == len(plan.order):
            raise BackupError(f"row of table {name!r} out of order in the backup")
        table = plan.tables[name]
        decoders = plan.decoders[name]
        if len(values) != len(decoders):
            raise BackupError(f"a row of {name} has {len(values)} values")
        seen[name] += 1
        yield (
            name,
            {
                c.key: decode(v)
                for c, decode, v in zip(table.columns, decoders, values, strict=True)
            },
        )
    if not ended or seen != plan.counts:
        raise BackupError("the backup is incomplete (row counts differ from its header)")


def _check_secrets(body: IO[bytes], plan: _Plan, cipher: TokenCipher) -> None:
    encrypted = _encrypted_columns()
    for name, row in _rows(body, plan):
        for column, context in encrypted.get(name, ()):
            value = row.get(column)
            if value is None:
                continue
            try:
                cipher.decrypt(value, context=context)
            except CipherError as exc:
                raise BackupError(
                    f"{name}.{column} holds a value the configured keys cannot decrypt ({exc}); "
                    "nothing was changed"
                ) from None


def _delete_all(conn: Connection) -> None:
    for table in reversed(app_tables()):
        conn.execute(table.delete())


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: move each id sequence past the restored ids (MariaDB and SQLite do it)."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = conn.execute(
            select(func.pg_get_serial_sequence(table.name, column.name))
        ).scalar()
        if sequence is None:
            continue
        next_id = conn.execute(select(func.coalesce(func.max(column), 0) + 1)).scalar_one()
        conn.execute(
            text("SELECT setval(CAST(:seq AS regclass), :next, false)"),
            {"seq": sequence, "next": next_id},
        )


def restore_backup(
    engine: Engine,
    inp: IO[bytes],
    *,
    mac_key: bytes,
    cipher: TokenCipher,
    progress: Progress | None = None,
) -> BackupSummary:
    """Replace every row of the database with the backup's, in one transaction.

    Before touching the database: the MAC over the whole file (constant-time compare), the
    format and schema revision, every row's shape and every secret's decryptability.

    Raises:
        BackupError: the file is not a backup, was modified, was made under another key or
            schema, holds secrets the configured keys cannot decrypt, or the database refused
            a row. In every case nothing was changed.
    """
    body = _verified_body(inp, mac_key)
    with body:
        try:
            header = next(_lines(body))
            plan = _plan(header, engine)
            _check_secrets(body, plan, cipher)
        except (
            OSError,
            EOFError,
            zlib.error,
            ValueError,
            TypeError,
            KeyError,
            StopIteration,
        ) as exc:
            # Only a buggy writer gets here: the MAC has vouched for the bytes.
            raise BackupError(f"the backup cannot be read: {type(exc).__name__}") from None
        total = sum(plan.counts.values())
        done = 0
        if progress:
            progress(0, total)
        current_table = ""
        try:
            with engine.begin() as conn:
                if revision_of(conn) != plan.header["schema_revision"]:
                    raise BackupError("the schema changed while the backup was being checked")
                _delete_all(conn)
                batch: list[dict[str, Any]] = []
                for name, row in _rows(body, plan):
                    if name != current_table or len(batch) >= _BATCH:
                        if batch:
                            conn.execute(plan.tables[current_table].insert(), batch)
                            done += len(batch)
                            if progress:
                                progress(done, total)
                        batch = []
                        current_table = name
                    batch.append(row)
                if batch:
                    conn.execute(plan.tables[current_table].insert(), batch)
                    done += len(batch)
                _reset_sequences(conn, app_tables())
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise BackupError(
                f"the database refused the backup's rows of {current_table or 'a table'} "
                f"({reason[:300]}); the transaction was rolled back, nothing was changed"
            ) from None
        if progress:
            progress(done, total)
    created = datetime.fromisoformat(str(plan.header.get("created_at")))
    return BackupSummary(
        str(plan.header["schema_revision"]),
        created,
        backup_key_id(mac_key),
        {name: plan.counts[name] for name in plan.order},
    )


def reset_database(engine: Engine) -> None:
    """Delete every row of every application table in one transaction; the schema stays.

    Every workspace must install the app again afterwards (their tokens are gone).
    """
    with engine.begin() as conn:
        _delete_all(conn)
