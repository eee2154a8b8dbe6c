"""Authenticated encryption of every secret syncbot keeps in its database.

Format of a stored value: ``sb1.<key id>.<base64url(salt | nonce | ciphertext+tag)>``.

* The data key is derived per value with HKDF-SHA256 from ``TOKEN_ENCRYPTION_KEY`` and a random
  16-byte salt stored alongside, then used once with AES-256-GCM; so no two values share a key
  and nonce reuse cannot happen across values.
* The key id (first 8 bytes of an HMAC of the key, hex) names which configured key encrypted the
  value, so a rotation can keep the previous key for decryption while ``syncbot rotate-key``
  re-encrypts everything under the new one.
* The optional ``context`` (e.g. ``"workspace.bot_token"``) is bound as associated data: a
  ciphertext copied into another column does not decrypt there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import CipherError

PREFIX = "sb1"
_SALT = 16
_NONCE = 12
_INFO = b"syncbot token cipher v1"


def key_id(key: str) -> str:
    """A short public fingerprint of a key (safe to store and log)."""
    return hmac.new(key.encode(), b"syncbot-key-id", hashlib.sha256).hexdigest()[:16]


class TokenCipher:
    """Encrypts with the current key; decrypts with the current or any previous key."""

    def __init__(self, key: str, previous: Iterable[str] = ()) -> None:
        if not key:
            raise CipherError("no token encryption key configured")
        self._current = key
        self._keys: dict[str, bytes] = {}
        for k in (key, *previous):
            self._keys.setdefault(key_id(k), k.encode())
        self.current_key_id = key_id(key)

    def _derive(self, material: bytes, salt: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(material)

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt ``plaintext`` under the current key, bound to ``context``."""
        salt, nonce = os.urandom(_SALT), os.urandom(_NONCE)
        data_key = self._derive(self._keys[self.current_key_id], salt)
        sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode(), context.encode())
        blob = base64.urlsafe_b64encode(salt + nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}.{self.current_key_id}.{blob}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt a value produced by :meth:`encrypt`.

        Raises:
            CipherError: the value is malformed, was encrypted under a key that is not
                configured, was tampered with, or belongs to another context.
        """
        try:
            prefix, kid, blob = token.split(".", 2)
        except ValueError:
            raise CipherError("not an encrypted value") from None
        if prefix != PREFIX:
            raise CipherError(f"unknown cipher format {prefix!r}")
        material = self._keys.get(kid)
        if material is None:
            raise CipherError(
                f"value was encrypted with key {kid}, which is not configured "
                "(set TOKEN_ENCRYPTION_KEY or TOKEN_ENCRYPTION_PREVIOUS_KEYS)"
            )
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except ValueError:
            raise CipherError("encrypted value is not valid base64") from None
        if len(raw) < _SALT + _NONCE + 16:
            raise CipherError("encrypted value is truncated")
        salt, nonce, sealed = raw[:_SALT], raw[_SALT : _SALT + _NONCE], raw[_SALT + _NONCE :]
        try:
            plain = AESGCM(self._derive(material, salt)).decrypt(nonce, sealed, context.encode())
        except InvalidTag:
            raise CipherError(
                "encrypted value failed authentication (tampered or wrong key)"
            ) from None
        return plain.decode()

    def needs_rotation(self, token: str) -> bool:
        """True when ``token`` was encrypted under a key other than the current one."""
        parts = token.split(".", 2)
        return len(parts) != 3 or parts[1] != self.current_key_id

    def rotate(self, token: str, *, context: str = "") -> str:
        """Re-encrypt under the current key (a no-op result is still a fresh ciphertext)."""
        return self.encrypt(self.decrypt(token, context=context), context=context)
