"""Models on every backend: non-ASCII and emoji round trip, foreign-key deletes as designed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from app.store.engine import session_factory
from app.store.models import (
    Delivery,
    DirectoryUser,
    MessageCopy,
    Post,
    Reaction,
    Sync,
    SyncEndpoint,
    UserMapping,
    Workspace,
)

TEXTS = ["Ünïcödé ñame", "日本語のチャンネル", "emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈", "astral 𠜎𠜱 🀄", "ok"]


def seed(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        ws_a = Workspace(team_id="TA", name="Äpfel 🍎")
        ws_b = Workspace(team_id="TB", name="Bären 🐻")
        sync = Sync(name="général 🌍")
        s.add_all([ws_a, ws_b, sync])
        s.flush()
        s.add_all(
            [
                SyncEndpoint(
                    sync_id=sync.id, endpoint="slack:TA/C1", network="slack", workspace_id=ws_a.id
                ),
                SyncEndpoint(
                    sync_id=sync.id, endpoint="slack:TB/C2", network="slack", workspace_id=ws_b.id
                ),
                Post(
                    id="p1", sync_id=sync.id, source_endpoint="slack:TA/C1", source_native_id="1.1"
                ),
            ]
        )
        s.flush()
        s.add_all(
            [
                MessageCopy(post_id="p1", endpoint="slack:TB/C2", native_id="2.2"),
                Reaction(
                    post_id="p1",
                    emoji="tada",
                    actor="slack:TA/C1|U1",
                    source_endpoint="slack:TA/C1",
                ),
                Delivery(
                    uid="d1",
                    sync_id=sync.id,
                    post_id="p1",
                    target_endpoint="slack:TB/C2",
                    kind="post",
                    payload={"text": "héllo 🎉"},
                    next_attempt_at=datetime.now(UTC),
                ),
                DirectoryUser(workspace_id=ws_a.id, user_id="U1", display_name="Zoë 🦊"),
                UserMapping(
                    source_workspace_id=ws_a.id,
                    source_user_id="U1",
                    target_workspace_id=ws_b.id,
                    target_user_id="U9",
                    method="email",
                ),
            ]
        )


def count(engine: Engine, model: type) -> int:
    with session_factory(engine)() as s:
        return len(s.scalars(select(model)).all())


def test_non_ascii_and_emoji_round_trip(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        for n, value in enumerate(TEXTS):
            ws = Workspace(team_id=f"T{n}", name=value)
            s.add(ws)
            s.flush()
            s.add(
                DirectoryUser(
                    workspace_id=ws.id, user_id="U1", display_name=value, real_name=value
                )
            )
            s.add(Sync(name=value))
    with sessions() as s:
        assert s.scalars(select(Workspace.name).order_by(Workspace.team_id)).all() == TEXTS
        users = s.scalars(select(DirectoryUser).order_by(DirectoryUser.workspace_id)).all()
        assert [(u.display_name, u.real_name) for u in users] == [(v, v) for v in TEXTS]
        assert sorted(s.scalars(select(Sync.name))) == sorted(TEXTS)


def test_foreign_key_deletes_behave_as_designed(engine: Engine) -> None:
    # One database per backend for the whole scenario: migrating a fresh one is the slow part.
    seed(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        assert s.scalars(select(Delivery)).one().payload == {"text": "héllo 🎉"}

    # Bulk DELETEs: the database, not the ORM, applies the ON DELETE rules.
    with sessions() as s, s.begin():
        s.execute(delete(Workspace).where(Workspace.team_id == "TA"))
    with sessions() as s:
        # Purging a workspace removes its endpoints, directory and mappings, not the sync.
        assert s.scalars(select(SyncEndpoint.endpoint)).all() == ["slack:TB/C2"]
        assert len(s.scalars(select(Sync)).all()) == 1
    assert count(engine, DirectoryUser) == 0
    assert count(engine, UserMapping) == 0
    assert count(engine, Post) == 1

    with sessions() as s, s.begin():
        s.execute(delete(Sync))
    # A sync owns its endpoints, posts, copies and reactions...
    for model in (SyncEndpoint, Post, MessageCopy, Reaction):
        assert count(engine, model) == 0, model.__name__
    # ...but the outbox keeps its history, detached.
    with sessions() as s:
        row = s.scalars(select(Delivery)).one()
        assert (row.sync_id, row.post_id) == (None, None)
    assert count(engine, Workspace) == 1

    # And foreign keys are enforced at all (SQLite needs them switched on per connection).
    with pytest.raises(IntegrityError), sessions() as s, s.begin():
        s.add(Post(id="orphan", sync_id=424242, source_endpoint="x", source_native_id="1"))
