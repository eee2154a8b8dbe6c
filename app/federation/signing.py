"""Request signatures between instances: Ed25519 over method, path, time, nonce and body.

SyncBot signed only ``"{ts}:{body}"`` and kept no nonces, so a captured request could be
replayed for five minutes and re-targeted to another path. Here the signed string binds the
method and path too, and every nonce is remembered until its time window has passed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from app.errors import FederationError

WINDOW_SECONDS = 300
H_INSTANCE = "X-Syncbot-Instance"
H_TIMESTAMP = "X-Syncbot-Timestamp"
H_NONCE = "X-Syncbot-Nonce"
H_SIGNATURE = "X-Syncbot-Signature"


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, digest]).encode()


def public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(public_key_pem: str) -> str:
    """A short, comparable digest of a public key (printed in pairing codes)."""
    return hashlib.sha256(public_key_pem.strip().encode()).hexdigest()[:32]


def load_public(pem: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise FederationError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise FederationError("peer keys must be Ed25519")
    return key


def sign_headers(
    key: Ed25519PrivateKey, instance_id: str, method: str, path: str, body: bytes
) -> dict[str, str]:
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    signature = key.sign(canonical(method, path, timestamp, nonce, body))
    return {
        H_INSTANCE: instance_id,
        H_TIMESTAMP: timestamp,
        H_NONCE: nonce,
        H_SIGNATURE: base64.b64encode(signature).decode(),
    }


@dataclass(frozen=True, slots=True)
class SignedRequest:
    instance_id: str
    timestamp: int
    nonce: str


def verify(
    public_key_pem: str,
    headers: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    now: float | None = None,
) -> SignedRequest:
    """Check a request's signature and time window (the caller checks the nonce is new).

    Raises:
        FederationError: missing headers, a stale or future timestamp, a bad signature.
    """
    lower = {k.lower(): v for k, v in headers.items()}  # HTTP header names are case-blind
    try:
        instance = lower[H_INSTANCE.lower()]
        stamp = lower[H_TIMESTAMP.lower()]
        nonce = lower[H_NONCE.lower()]
        signature = base64.b64decode(lower[H_SIGNATURE.lower()], validate=True)
    except (KeyError, ValueError):
        raise FederationError("missing or malformed signature headers") from None
    if not stamp.isdigit() or not (8 <= len(nonce) <= 64):
        raise FederationError("malformed timestamp or nonce")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > WINDOW_SECONDS:
        raise FederationError("timestamp outside the 5-minute window")
    try:
        load_public(public_key_pem).verify(signature, canonical(method, path, stamp, nonce, body))
    except InvalidSignature:
        raise FederationError("bad signature") from None
    return SignedRequest(instance, int(stamp), nonce)
