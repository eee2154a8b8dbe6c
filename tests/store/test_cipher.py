"""Token cipher: round trip, wrong key, rotation, tampering, context binding."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import CipherError
from app.store.cipher import PREFIX, TokenCipher, key_id

KEY = "current-key-0123456789-abcdefghijklmnopqrstuv"
OLD = "previous-key-9876543210-zyxwvutsrqponmlkjihgf"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_round_trip_any_text(plaintext: str) -> None:
    cipher = TokenCipher(KEY)
    token = cipher.encrypt(plaintext, context="ctx")
    assert cipher.decrypt(token, context="ctx") == plaintext
    assert token != plaintext
    if len(plaintext) >= 8:  # a short string can occur in base64 by chance
        assert plaintext not in token


def test_ciphertext_never_equals_plaintext_and_is_fresh_each_time() -> None:
    cipher = TokenCipher(KEY)
    secret = "xoxb-1234-5678-abcdef"
    first, second = cipher.encrypt(secret), cipher.encrypt(secret)
    assert first != secret and secret not in first
    assert first != second  # random salt and nonce
    assert first.startswith(f"{PREFIX}.{key_id(KEY)}.")


def test_wrong_key_fails_loudly() -> None:
    token = TokenCipher(KEY).encrypt("secret")
    with pytest.raises(CipherError, match="not configured"):
        TokenCipher(OLD).decrypt(token)


def test_same_key_id_but_different_material_is_rejected() -> None:
    # A forged key id pointing at a configured key still fails authentication.
    token = TokenCipher(OLD).encrypt("secret")
    forged = token.replace(key_id(OLD), key_id(KEY))
    with pytest.raises(CipherError, match="failed authentication"):
        TokenCipher(KEY).decrypt(forged)


def test_rotation_keeps_old_values_readable_and_re_encrypts() -> None:
    old_token = TokenCipher(OLD).encrypt("bot-token", context="workspace.bot_token")
    cipher = TokenCipher(KEY, previous=[OLD])
    assert cipher.needs_rotation(old_token)
    assert cipher.decrypt(old_token, context="workspace.bot_token") == "bot-token"
    rotated = cipher.rotate(old_token, context="workspace.bot_token")
    assert not cipher.needs_rotation(rotated)
    assert key_id(KEY) in rotated and key_id(OLD) not in rotated
    # The new key alone reads the rotated value.
    assert TokenCipher(KEY).decrypt(rotated, context="workspace.bot_token") == "bot-token"


@pytest.mark.parametrize("position", [0, 20, 40, -1])
def test_tampered_ciphertext_is_rejected(position: int) -> None:
    cipher = TokenCipher(KEY)
    prefix, kid, blob = cipher.encrypt("secret value").split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[position] ^= 0x01
    tampered = f"{prefix}.{kid}." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(CipherError, match="failed authentication"):
        cipher.decrypt(tampered)


@pytest.mark.parametrize(
    "bad",
    ["plaintext-token", "sb0.abc.def", f"sb1.{key_id(KEY)}.c2hvcnQ", f"sb1.{key_id(KEY)}.!!!"],
)
def test_malformed_values_are_rejected(bad: str) -> None:
    with pytest.raises(CipherError):
        TokenCipher(KEY).decrypt(bad)


def test_context_binding() -> None:
    cipher = TokenCipher(KEY)
    token = cipher.encrypt("secret", context="workspace.bot_token")
    with pytest.raises(CipherError):
        cipher.decrypt(token, context="workspace.app_token")
    with pytest.raises(CipherError):
        cipher.decrypt(token)


def test_no_key_means_no_cipher() -> None:
    with pytest.raises(CipherError):
        TokenCipher("")
