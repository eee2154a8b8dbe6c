"""Whole-database backup and restore on every backend (issue 4).

A backup restored after a wipe gives back every table row for row; a file that was modified,
made under another key or of another schema is refused before the database is touched; a row
the database refuses rolls the whole restore back.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update

from app.core.endpoints import Endpoint
from app.settings import Settings
from app.store.backup import (
    MAGIC,
    BackupError,
    app_tables,
    backup_key_id,
    backup_mac_key,
    reset_database,
    restore_backup,
    write_backup,
)
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.models import (
    Delivery,
    DirectoryUser,
    InstanceKey,
    InstanceSetting,
    MatrixGhost,
    MessageCopy,
    OAuthState,
    Peer,
    Post,
    ProcessedEvent,
    Reaction,
    UserMapping,
    Workspace,
)
from app.store.models_federation import FederationNonce, PairingCode
from app.store.models_health import SocketConnection
from app.store.models_matrix import MatrixPortal, MatrixReaction, MatrixTransaction
from tests import builders
from tests.conftest import TEST_KEY, local_settings
from tests.databases import MigratedTemplates

OTHER_KEY = "another-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# The tables this test fills; a table added later is still compared row for row.
FILLED = {
    "workspaces",
    "syncs",
    "sync_endpoints",
    "posts",
    "message_map",
    "reactions",
    "processed_events",
    "outbox",
    "directory_users",
    "user_mappings",
    "matrix_ghosts",
    "instance_settings",
    "instance_keys",
    "peers",
    "oauth_states",
    "federation_pairing_codes",
    "federation_nonces",
    "socket_connections",
    "matrix_portals",
    "matrix_transactions",
    "matrix_reactions",
}


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher(TEST_KEY)


@pytest.fixture
def mac_key(settings: Settings) -> bytes:
    return backup_mac_key(settings)


def fill(engine: Engine, cipher: TokenCipher) -> None:
    """Put rows in every table: encrypted tokens, syncs, posts, the outbox, mappings..."""
    sessions = session_factory(engine)
    builders.workspace(sessions, cipher, "T1")
    builders.workspace(sessions, cipher, "T2")
    builders.sync(sessions, "team", Endpoint.parse("slack:T1/C1"), Endpoint.parse("slack:T2/C2"))
    builders.sync(sessions, "ops", Endpoint.parse("matrix:!ops:example.org"))
    now = datetime(2026, 11, 29, 7, 30, 15, 123456, tzinfo=UTC)
    with sessions() as s, s.begin():
        t1 = s.scalars(select(Workspace).where(Workspace.team_id == "T1")).one()
        t2 = s.scalars(select(Workspace).where(Workspace.team_id == "T2")).one()
        t1.bot_refresh_token_enc = cipher.encrypt("xoxe-1", context="workspace.bot_refresh_token")
        t1.app_token_enc = cipher.encrypt("xapp-1", context="workspace.app_token")
        t1.bot_token_expires_at = now + timedelta(hours=12)
        t2.name = "Ünïcode 🎉 team"
        s.add(
            InstanceKey(
                public_key="pub",
                private_key_enc=cipher.encrypt("priv", context="instance_key.private_key"),
                created_at=now,
            )
        )
        sync_id = s.execute(text("SELECT id FROM syncs WHERE name = 'team'")).scalar_one()
        posts = [uuid.uuid4().hex for _ in range(3)]
        for n, post_id in enumerate(posts):
            s.add(
                Post(
                    id=post_id,
                    sync_id=sync_id,
                    source_endpoint="slack:T1/C1",
                    source_native_id=f"17000000.{n}",
                    thread_post_id=posts[0] if n else None,
                    author_name="Ada 🚀",
                    deleted=n == 2,
                    created_at=now + timedelta(seconds=n),
                )
            )
        s.flush()
        for n, post_id in enumerate(posts):
            for endpoint, source in (("slack:T1/C1", True), ("slack:T2/C2", False)):
                s.add(
                    MessageCopy(
                        post_id=post_id,
                        endpoint=endpoint,
                        native_id=f"{endpoint}-{n}",
                        thread_native_id=None if n == 0 else f"{endpoint}-0",
                        is_source=source,
                        created_at=now,
                    )
                )
        s.add(
            Reaction(
                post_id=posts[0],
                emoji="tada",
                actor="slack:T2/C2|U2",
                source_endpoint="slack:T2/C2",
                created_at=now,
            )
        )
        for status, delay in (("delivered", 1.5), ("pending", None), ("dead", None)):
            row = builders.outbox_row(status, delay=delay, at=now)
            row.sync_id = sync_id
            row.post_id = posts[1]
            row.payload = {"text": "hé", "blocks": [{"type": "section"}], "n": 3}
            s.add(row)
        s.add(ProcessedEvent(key="slack:Ev1", created_at=now, expires_at=now + timedelta(days=1)))
        s.add(
            DirectoryUser(
                workspace_id=t1.id,
                user_id="U1",
                email="ada@example.org",
                display_name="ada",
                real_name="Ada Lovelace",
                normalized_name="ada lovelace",
                updated_at=now,
            )
        )
        s.add(
            UserMapping(
                source_workspace_id=t1.id,
                source_user_id="U1",
                target_workspace_id=t2.id,
                target_user_id="U9",
                method="email",
                matched_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
        s.add(MatrixGhost(mxid="@slack_u1:example.org", remote_ref="slack:T1/U1", updated_at=now))
        s.add(InstanceSetting(key="instance_id", value=uuid.uuid4().hex, updated_at=now))
        s.add(Peer(instance_id="peer-1", url="https://peer.example", public_key="pk", name="P"))
        s.add(OAuthState(state="st-1", expires_at=now))
        s.add(
            PairingCode(code_hash="h" * 64, sync_id=sync_id, anchor="slack:T1/C1", expires_at=now)
        )
        s.add(FederationNonce(instance_id="peer-1", nonce="n-1", expires_at=now))
        s.add(SocketConnection(team_id="T1", state="connected", connected_at=now, updated_at=now))
        s.add(MatrixPortal(endpoint="slack:T1/C1", room_id="!r:example.org", state="active"))
        s.add(MatrixTransaction(txn_id="txn-1", events=2, processed_at=now))
        s.add(
            MatrixReaction(
                event_id="$e1",
                room_id="!r:example.org",
                target_event_id="$t1",
                key="👍",
                sender="@u:example.org",
                ours=True,
            )
        )


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in primary-key order."""
    with engine.connect() as conn:
        return {
            t.name: [
                tuple(r)
                for r in conn.execute(select(t).order_by(*(t.primary_key.columns or t.columns)))
            ]
            for t in app_tables()
        }


def backup_bytes(engine: Engine, mac_key: bytes, **kw: Any) -> bytes:
    out = io.BytesIO()
    write_backup(engine, out, mac_key=mac_key, **kw)
    return out.getvalue()


def filled_backup(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> tuple[bytes, dict[str, list[tuple[Any, ...]]]]:
    """Fill every table, back it up; the backup and the rows it holds."""
    fill(engine, cipher)
    return backup_bytes(engine, mac_key), snapshot(engine)


def restore(engine: Engine, data: bytes, mac_key: bytes, cipher: TokenCipher, **kw: Any):
    return restore_backup(engine, io.BytesIO(data), mac_key=mac_key, cipher=cipher, **kw)


def reseal(data: bytes, mac_key: bytes, edit: Any) -> bytes:
    """Rewrite a backup's JSON lines with ``edit`` and authenticate it again with ``mac_key``.

    Stands for a buggy or hostile writer that holds the key: what the MAC cannot catch.
    """
    rest = data.split(b"\n", 1)[1]
    lines = [json.loads(line) for line in gzip.decompress(rest[:-32]).splitlines()]
    lines = edit(lines)
    body = gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines), mtime=0)
    head = MAGIC + f" key={backup_key_id(mac_key)}\n".encode()
    return head + body + hmac.new(mac_key, head + body, hashlib.sha256).digest()


def test_backup_wipe_restore_gives_back_every_row(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    before = snapshot(engine)
    assert {name for name, rows in before.items() if rows} >= FILLED
    calls: list[tuple[int, int]] = []
    data = backup_bytes(engine, mac_key, progress=lambda d, t: calls.append((d, t)))
    total = sum(len(rows) for rows in before.values())
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    # Secrets stay encrypted: no plaintext token anywhere in the file.
    plain = gzip.decompress(data.split(b"\n", 1)[1][:-32])
    assert b"xoxb-T1" not in plain and b"xapp-1" not in plain and b"sb1." in plain
    assert b"alembic_version" not in plain

    reset_database(engine)
    assert all(not rows for rows in snapshot(engine).values())

    seen: list[tuple[int, int]] = []
    summary = restore(engine, data, mac_key, cipher, progress=lambda d, t: seen.append((d, t)))
    assert snapshot(engine) == before
    assert summary.total_rows == total and summary.tables["workspaces"] == 2
    assert seen[-1] == (total, total)

    # Explicit ids were restored: new rows must not collide with them (PostgreSQL sequences).
    sessions = session_factory(engine)
    builders.workspace(sessions, cipher, "T3")
    builders.sync(sessions, "after-restore")
    with sessions() as s, s.begin():
        s.add(builders.outbox_row("pending"))
        s.add(InstanceKey(public_key="p2", private_key_enc=cipher.encrypt("k2")))
    # And a restore over a populated database replaces it rather than merging.
    restore(engine, data, mac_key, cipher)
    assert snapshot(engine) == before


def test_backup_is_deterministic_for_the_same_rows(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    first = backup_bytes(engine, mac_key)
    second = backup_bytes(engine, mac_key)

    # Only the creation time may differ.
    def strip(data: bytes) -> list[Any]:
        lines = gzip.decompress(data.split(b"\n", 1)[1][:-32]).splitlines()
        return [
            {k: v for k, v in x.items() if k != "created_at"} if isinstance(x, dict) else x
            for x in map(json.loads, lines)
        ]

    assert strip(first) == strip(second)


def test_a_flipped_byte_anywhere_is_refused_and_nothing_changes(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    data, before = filled_backup(engine, cipher, mac_key)
    # The header line, the compressed body's first/middle/last bytes, the MAC itself.
    offsets = {0, len(MAGIC) + 2, data.index(b"\n") + 1, len(data) // 2, len(data) - 33}
    offsets |= {len(data) - 32, len(data) - 1}
    for offset in sorted(offsets):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        with pytest.raises(BackupError) as refused:
            restore(engine, bytes(damaged), mac_key, cipher)
        message = str(refused.value)
        assert any(s in message for s in ("modified", "not a syncbot backup", "another")), message
        assert snapshot(engine) == before
    with pytest.raises(BackupError, match="modified"):
        restore(engine, data[:-1], mac_key, cipher)
    with pytest.raises(BackupError, match="not a syncbot backup"):
        restore(engine, b"", mac_key, cipher)
    assert snapshot(engine) == before


def test_a_backup_made_under_another_key_is_refused(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    other = backup_mac_key(local_settings(token_encryption_key=OTHER_KEY))
    assert other != mac_key
    data = backup_bytes(engine, other)
    before = snapshot(engine)
    with pytest.raises(BackupError, match="another TOKEN_ENCRYPTION_KEY") as refused:
        restore(engine, data, mac_key, cipher)
    assert backup_key_id(other) in str(refused.value)
    assert snapshot(engine) == before


def test_secrets_the_configured_keys_cannot_decrypt_are_refused(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    stranger = TokenCipher(OTHER_KEY)
    with session_factory(engine)() as s, s.begin():
        s.execute(
            update(Workspace)
            .where(Workspace.team_id == "T2")
            .values(bot_token_enc=stranger.encrypt("xoxb-x", context="workspace.bot_token"))
        )
    data = backup_bytes(engine, mac_key)
    reset_database(engine)
    with pytest.raises(BackupError, match=r"workspaces\.bot_token_enc .*cannot decrypt"):
        restore(engine, data, mac_key, cipher)
    assert all(not rows for rows in snapshot(engine).values())
    # With the other key among the previous keys, the same file restores.
    restore(engine, data, mac_key, TokenCipher(TEST_KEY, [OTHER_KEY]))
    assert len(snapshot(engine)["workspaces"]) == 2


def test_a_row_refused_midway_rolls_the_whole_restore_back(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    data = backup_bytes(engine, mac_key)

    def orphan_outbox_row(lines: list[Any]) -> list[Any]:
        # An outbox row pointing at a post that does not exist: the foreign key refuses it
        # after workspaces, syncs and posts have been inserted.
        header = lines[0]
        columns = next(t["columns"] for t in header["tables"] if t["name"] == "outbox")
        for line in lines:
            if isinstance(line, list) and line[0] == "outbox":
                line[1][columns.index("post_id")] = "f" * 32
                break
        return lines

    bad = reseal(data, mac_key, orphan_outbox_row)
    # Some rows must differ from the backup, so a partial restore would show.
    sessions = session_factory(engine)
    builders.workspace(sessions, cipher, "T9")
    before = snapshot(engine)
    with pytest.raises(BackupError, match="rolled back") as refused:
        restore(engine, bad, mac_key, cipher)
    assert "outbox" in str(refused.value)
    assert snapshot(engine) == before


def test_a_backup_of_another_schema_revision_is_refused(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    data, before = filled_backup(engine, cipher, mac_key)

    def older(lines: list[Any]) -> list[Any]:
        lines[0]["schema_revision"] = "0004_federation"
        return lines

    with pytest.raises(BackupError, match="schema revision 0004_federation") as refused:
        restore(engine, reseal(data, mac_key, older), mac_key, cipher)
    assert "nothing was changed" in str(refused.value)
    # The database itself at another revision refuses the backup too.
    with engine.begin() as conn:
        heads = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0004_federation')"))
    with pytest.raises(BackupError, match="this database is at 0004_federation"):
        restore(engine, data, mac_key, cipher)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        for head in heads:
            conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
    assert snapshot(engine) == before


def test_a_truncated_body_with_a_valid_mac_is_refused(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    data, before = filled_backup(engine, cipher, mac_key)
    # Dropping the end marker and rows (resealed): the header's counts no longer hold.
    cut = reseal(data, mac_key, lambda lines: lines[:-3])
    with pytest.raises(BackupError, match="incomplete"):
        restore(engine, cut, mac_key, cipher)
    assert snapshot(engine) == before


def test_reset_database_keeps_the_schema(engine: Engine, cipher: TokenCipher) -> None:
    fill(engine, cipher)
    reset_database(engine)
    assert all(not rows for rows in snapshot(engine).values())
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(text("alembic_version"))).scalar()
    # The schema still works: a workspace can be installed again.
    builders.workspace(session_factory(engine), cipher, "T1")
    assert len(snapshot(engine)["workspaces"]) == 1


def test_an_empty_database_round_trips(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    data = backup_bytes(engine, mac_key)
    summary = restore(engine, data, mac_key, cipher)
    assert summary.total_rows == 0
    assert summary.schema_revision and summary.key_id == backup_key_id(mac_key)


def test_delivery_rows_keep_their_order_after_restore(
    engine: Engine, cipher: TokenCipher, mac_key: bytes
) -> None:
    fill(engine, cipher)
    data = backup_bytes(engine, mac_key)
    restore(engine, data, mac_key, cipher)
    with session_factory(engine)() as s:
        ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
    assert ids == sorted(ids) and len(ids) == 3


def test_restore_into_a_fresh_database_then_keep_inserting(
    backend: str,
    engine: Engine,
    cipher: TokenCipher,
    mac_key: bytes,
    settings: Settings,
    templates: MigratedTemplates,
    tmp_path: Path,
) -> None:
    """Disaster recovery: a new database whose id sequences start at 1 takes the backup."""
    data, before = filled_backup(engine, cipher, mac_key)
    (tmp_path / "fresh").mkdir()
    with templates.clone(backend, tmp_path / "fresh") as url:
        fresh = make_engine(settings, url=url)
        try:
            restore(fresh, data, mac_key, cipher)
            assert snapshot(fresh) == before
            # New rows get ids after the restored ones (PostgreSQL: sequences were moved on).
            sessions = session_factory(fresh)
            builders.workspace(sessions, cipher, "T3")
            builders.sync(sessions, "after-restore")
            with sessions() as s, s.begin():
                s.add(builders.outbox_row("pending"))
                s.add(InstanceKey(public_key="p2", private_key_enc=cipher.encrypt("k2")))
            after = snapshot(fresh)
            assert len(after["workspaces"]) == 3 and len(after["outbox"]) == 4
        finally:
            fresh.dispose()


def test_a_backup_moves_between_backends(
    backend: str,
    engine: Engine,
    cipher: TokenCipher,
    mac_key: bytes,
    settings: Settings,
    templates: MigratedTemplates,
    tmp_path: Path,
) -> None:
    """A SQLite backup restores into this backend, and this backend's back into SQLite."""
    (tmp_path / "sqlite").mkdir()
    with templates.clone("sqlite", tmp_path / "sqlite") as url:
        lite = make_engine(settings, url=url)
        try:
            fill(lite, cipher)
            expected = snapshot(lite)
            restore(engine, backup_bytes(lite, mac_key), mac_key, cipher)
            assert snapshot(engine) == expected
            reset_database(lite)
            restore(lite, backup_bytes(engine, mac_key), mac_key, cipher)
            assert snapshot(lite) == expected
        finally:
            lite.dispose()
