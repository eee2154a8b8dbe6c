"""This instance's stable identity: an id generated once and an Ed25519 key pair at rest.

SyncBot made a new instance id per process when none was configured, so every restart looked
like a new peer. Here the id is the setting, or generated once and stored.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import FederationError
from app.federation.signing import public_pem
from app.store.cipher import TokenCipher
from app.store.models import InstanceKey, InstanceSetting

# What ``peer:<instance>/…`` endpoints accept (app.core.endpoints); no SQL LIKE wildcards.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
KEY_CONTEXT = "instance_key.private_key"  # as app/rotation.py re-encrypts it
INSTANCE_ID = "federation.instance_id"


def check_instance_id(value: str) -> str:
    """Return ``value`` if it is a valid instance id (letters, digits, dashes; 1-64).

    Raises:
        FederationError: it is not.
    """
    if not isinstance(value, str) or not _INSTANCE_ID.fullmatch(value):
        raise FederationError(
            "an instance id is 1-64 letters, digits and dashes, starting with a letter or digit"
        )
    return value


class Identity:
    def __init__(
        self, sessions: sessionmaker[Session], cipher: TokenCipher, configured_id: str | None
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._configured = configured_id
        self._id: str | None = None
        self._key: tuple[int, Ed25519PrivateKey] | None = None

    @property
    def instance_id(self) -> str:
        if self._id is None:
            self._id = self._configured or self._stored_id()
        return self._id

    def _stored_id(self) -> str:
        with self._sessions() as s:
            row = s.get(InstanceSetting, INSTANCE_ID)
            if row is not None:
                return row.value
        try:
            with self._sessions() as s, s.begin():
                s.add(InstanceSetting(key=INSTANCE_ID, value=str(uuid.uuid4())))
        except IntegrityError:
            pass  # another process generated it first: use theirs
        with self._sessions() as s:
            row = s.get(InstanceSetting, INSTANCE_ID)
            assert row is not None
            return row.value

    def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = self._load_or_create()
        return self._key[1]

    def public_key(self) -> str:
        return public_pem(self.key())

    def _load_or_create(self) -> tuple[int, Ed25519PrivateKey]:
        with self._sessions() as s:
            row = (
                s.execute(
                    select(InstanceKey)
                    .where(InstanceKey.retired_at.is_(None))
                    .order_by(InstanceKey.id.desc())
                )
                .scalars()
                .first()
            )
            if row is not None:
                return row.id, self._decode(row.private_key_enc)
        return self._create()

    def _decode(self, enc: str) -> Ed25519PrivateKey:
        pem = self._cipher.decrypt(enc, context=KEY_CONTEXT)
        key = load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def _create(self) -> tuple[int, Ed25519PrivateKey]:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        with self._sessions() as s, s.begin():
            row = InstanceKey(
                public_key=public_pem(key),
                private_key_enc=self._cipher.encrypt(pem, context=KEY_CONTEXT),
            )
            s.add(row)
            s.flush()
            return row.id, key

    def rotate(self) -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
        """Retire the current key and make a new one; returns (old, new).

        The caller announces the new key to every peer, signed with the old one.
        """
        old_id, old = self._load_or_create()
        with self._sessions() as s, s.begin():
            row = s.get(InstanceKey, old_id)
            assert row is not None
            row.retired_at = datetime.now(UTC)
        self._key = self._create()
        return old, self._key[1]
