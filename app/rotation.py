"""Every encrypted column, and the two operations over all of them: verify and rotate.

A feature that stores a new kind of secret adds its column and cipher context to
:data:`ENCRYPTED_COLUMNS`, so ``syncbot check`` verifies it and ``syncbot rotate-key`` re-encrypts
it. The context strings are the associated data the writers bind (see ``TokenCipher``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from app.errors import CipherError
from app.store.cipher import TokenCipher
from app.store.models import InstanceKey, Workspace
from app.store.models_matrix import MatrixLoginDialogue, MatrixPuppet


@dataclass(frozen=True)
class EncryptedColumn:
    """A column holding :class:`TokenCipher` values and the context they are bound to."""

    column: InstrumentedAttribute[str | None] | InstrumentedAttribute[str]
    context: str

    @property
    def name(self) -> str:
        return f"{self.column.class_.__tablename__}.{self.column.key}"


ENCRYPTED_COLUMNS: list[EncryptedColumn] = [
    EncryptedColumn(Workspace.bot_token_enc, "workspace.bot_token"),
    EncryptedColumn(Workspace.bot_refresh_token_enc, "workspace.bot_refresh_token"),
    EncryptedColumn(Workspace.app_token_enc, "workspace.app_token"),
    EncryptedColumn(InstanceKey.private_key_enc, "instance_key.private_key"),
    EncryptedColumn(MatrixLoginDialogue.bot_token_enc, "matrix_login.bot_token"),
    EncryptedColumn(MatrixPuppet.token_enc, "matrix_puppet.user_token"),
]


def _rows(session: Session, col: EncryptedColumn, limit: int | None = None) -> list[object]:
    model = col.column.class_
    query = select(model).where(col.column.is_not(None))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def verify_sample(
    sessions: sessionmaker[Session], cipher: TokenCipher, *, per_column: int = 20
) -> list[str]:
    """Try to decrypt up to ``per_column`` stored values of every encrypted column.

    Returns:
        One problem per column that holds a value the configured keys cannot decrypt.
    """
    problems: list[str] = []
    with sessions() as session:
        for col in ENCRYPTED_COLUMNS:
            failed = 0
            reason = ""
            for row in _rows(session, col, per_column):
                try:
                    cipher.decrypt(getattr(row, col.column.key), context=col.context)
                except CipherError as exc:
                    failed += 1
                    reason = str(exc)
            if failed:
                problems.append(f"{col.name}: {failed} sampled value(s) do not decrypt ({reason})")
    return problems


def rotate_all(sessions: sessionmaker[Session], cipher: TokenCipher) -> dict[str, int]:
    """Re-encrypt every value not under the current key, in one transaction.

    Idempotent: values already under the current key are left alone, so a second run
    reports zero.

    Returns:
        The number of values re-encrypted, per column.

    Raises:
        CipherError: a value decrypts under none of the configured keys; nothing is changed.
    """
    counts: dict[str, int] = {}
    with sessions() as session, session.begin():
        for col in ENCRYPTED_COLUMNS:
            rotated = 0
            for row in _rows(session, col):
                value = getattr(row, col.column.key)
                if not cipher.needs_rotation(value):
                    continue
                try:
                    setattr(row, col.column.key, cipher.rotate(value, context=col.context))
                except CipherError as exc:
                    raise CipherError(f"{col.name}: {exc}") from None
                rotated += 1
            counts[col.name] = rotated
    return counts
