"""Workspace groups and published channels in the store, on all three backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.groups import (
    JOIN_WINDOW,
    MAX_FAILED_JOINS,
    GroupError,
    Groups,
    GroupView,
    HomeVersions,
    JoinLimited,
    normalize_code,
)
from app.store.models import Sync, SyncEndpoint, Workspace
from app.store.models_groups import GroupJoinFailure, GroupSync, WorkspaceGroup
from tests import builders
from tests.conftest import TEST_KEY, local_settings


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = session_factory(engine)
    for team in ("T1", "T2", "T3", "T4"):
        builders.workspace(factory, TokenCipher(TEST_KEY), team)
    return factory


@pytest.fixture
def groups(sessions: sessionmaker[Session]) -> Groups:
    return Groups(sessions)


def group_with(groups: Groups, *joiners: str) -> GroupView:
    """A group "g" that T1 created and ``joiners`` joined with its code (T1's view of it)."""
    group = groups.create("T1", "g")
    assert group.invite_code
    for team in joiners:
        groups.join(team, group.invite_code)
    return group


def endpoints(sessions: sessionmaker[Session], sync_id: int) -> dict[str, str]:
    with sessions() as s:
        rows = s.execute(
            select(SyncEndpoint.endpoint, SyncEndpoint.status).where(
                SyncEndpoint.sync_id == sync_id
            )
        ).all()
    return dict(rows)


def test_codes_are_normalized_and_unambiguous() -> None:
    assert normalize_code(" abcd efgh ") == "ABCD-EFGH"
    assert normalize_code("ABCD-EFGH") == "ABCD-EFGH"
    assert normalize_code("ABCD-EFG") == ""
    assert normalize_code("ABCD-EFG0") == ""  # 0 is not in the alphabet (O/0 look alike)


def test_create_join_and_invite(groups: Groups) -> None:
    group = groups.create("T1", "  North   region ")
    assert group.name == "North region" and group.my_status == "active"
    assert group.invite_code and normalize_code(group.invite_code) == group.invite_code
    assert [(m.team_id, m.role) for m in group.members] == [("T1", "creator")]

    joined = groups.join("T2", group.invite_code.lower().replace("-", " "))
    assert {m.team_id for m in joined.members} == {"T1", "T2"}
    with pytest.raises(GroupError, match="already in"):
        groups.join("T2", group.invite_code)

    groups.invite(group.id, "T2", "T3")
    invited = groups.groups_of("T3")
    assert invited[0].my_status == "invited" and invited[0].invite_code is None
    assert invited[0].invited_by == "Team T2"
    with pytest.raises(GroupError, match="already in or invited"):
        groups.invite(group.id, "T1", "T3")
    # Only members invite; an invitation is not membership.
    with pytest.raises(GroupError, match="not a member"):
        groups.invite(group.id, "T3", "T4")
    with pytest.raises(GroupError, match="not a member"):
        groups.invite(group.id, "T4", "T3")
    groups.accept(group.id, "T3")
    assert groups.groups_of("T3")[0].invite_code == group.invite_code
    assert groups.teams_of_group(group.id) == {"T1", "T2", "T3"}

    groups.invite(group.id, "T1", "T4")
    groups.decline(group.id, "T4")
    assert groups.groups_of("T4") == []
    with pytest.raises(GroupError, match="no invitation"):
        groups.accept(group.id, "T4")
    with pytest.raises(GroupError, match="1-80"):
        groups.create("T1", " ")


def test_wrong_codes_are_limited_per_workspace_in_the_database(
    groups: Groups, sessions: sessionmaker[Session]
) -> None:
    code = groups.create("T1", "g").invite_code
    assert code is not None
    start = datetime.now(UTC)
    for i in range(MAX_FAILED_JOINS):
        with pytest.raises(GroupError, match="no group has that code") as caught:
            groups.join("T2", "ZZZZ-ZZZZ", now=start + timedelta(seconds=i))
        assert not isinstance(caught.value, JoinLimited)
    # The sixth attempt is refused even with the right code ...
    with pytest.raises(JoinLimited) as limited:
        groups.join("T2", code, now=start + timedelta(seconds=10))
    assert limited.value.retry_at == start + JOIN_WINDOW
    assert groups.groups_of("T2") == []
    # ... another workspace is not held back ...
    assert groups.join("T3", code).id
    # ... and a fresh store (another instance) sees the same count.
    with pytest.raises(JoinLimited):
        Groups(sessions).join("T2", code, now=start + JOIN_WINDOW - timedelta(seconds=1))
    # Once the oldest failure leaves the window one more try is allowed.
    later = start + JOIN_WINDOW + timedelta(milliseconds=500)
    assert Groups(sessions).join("T2", code, now=later).id
    with sessions() as s:
        left = s.execute(select(func.count()).select_from(GroupJoinFailure)).scalar_one()
    assert left == MAX_FAILED_JOINS - 1  # the expired one was purged


def test_concurrent_wrong_codes_from_several_instances_count_once_each(
    backend: str, engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if backend == "sqlite":
        pytest.skip("one writer at a time: SQLite has no concurrent instances to disagree")
    url = engine.url
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def instance() -> None:
        own = make_engine(local_settings(), url=url)
        try:
            store = Groups(session_factory(own))
            barrier.wait()
            try:
                store.join("T2", "ZZZZ-ZZZZ")
                result = "joined"
            except JoinLimited:
                result = "limited"
            except GroupError:
                result = "wrong"
            with lock:
                outcomes.append(result)
        finally:
            own.dispose()

    threads = [threading.Thread(target=instance) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["limited"] * 3 + ["wrong"] * MAX_FAILED_JOINS
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(GroupJoinFailure)).scalar_one() == 5


def test_publish_subscribe_pause_stop_unpublish_map_onto_syncs(
    groups: Groups, sessions: sessionmaker[Session]
) -> None:
    group = group_with(groups, "T2", "T3")

    sync_id = groups.publish(group.id, "T2", "C2", channel_name="news", user_id="U2")
    assert endpoints(sessions, sync_id) == {"slack:T2/C2": "active"}
    seen = groups.channels_for("T3")
    assert [(c.channel_name, c.publisher_team, c.mine, c.my_endpoint) for c in seen] == [
        ("news", "T2", False, None)
    ]
    with pytest.raises(GroupError, match="one sync only"):
        groups.publish(group.id, "T2", "C2")
    with pytest.raises(GroupError, match="not a Slack channel"):
        groups.subscribe(sync_id, "T3", "not a channel")

    groups.subscribe(sync_id, "T3", "C3")
    groups.subscribe(sync_id, "T1", "C1")
    assert endpoints(sessions, sync_id) == {
        "slack:T2/C2": "active",
        "slack:T3/C3": "active",
        "slack:T1/C1": "active",
    }
    with pytest.raises(GroupError, match="already subscribes"):
        groups.subscribe(sync_id, "T3", "C33")
    with pytest.raises(GroupError, match="you published"):
        groups.subscribe(sync_id, "T2", "C22")
    # Outsiders can neither see nor touch it.
    assert groups.channels_for("T4") == []
    with pytest.raises(GroupError, match="not a member"):
        groups.subscribe(sync_id, "T4", "C4")

    groups.set_status(sync_id, "T3", "paused")
    assert endpoints(sessions, sync_id)["slack:T3/C3"] == "paused"
    assert groups.channels_for("T3")[0].my_status == "paused"
    groups.set_status(sync_id, "T3", "active")
    assert groups.stop(sync_id, "T3") == "slack:T3/C3"
    assert "slack:T3/C3" not in endpoints(sessions, sync_id)
    with pytest.raises(GroupError, match="unpublish it instead"):
        groups.stop(sync_id, "T2")
    with pytest.raises(GroupError, match="only the workspace that published"):
        groups.unpublish(sync_id, "T1")

    assert set(groups.unpublish(sync_id, "T2")) == {"T1", "T2", "T3"}
    with sessions() as s:
        assert s.get(Sync, sync_id) is None
        assert s.get(GroupSync, sync_id) is None
        assert s.execute(select(SyncEndpoint)).first() is None


def test_a_direct_publication_is_for_its_target_only(groups: Groups) -> None:
    group = group_with(groups, "T2", "T3")
    sync_id = groups.publish(group.id, "T1", "C1", channel_name="direct", target_team="T3")
    assert [c.target_team for c in groups.channels_for("T1")] == ["T3"]
    assert groups.channels_for("T2") == []
    with pytest.raises(GroupError, match="another workspace"):
        groups.subscribe(sync_id, "T2", "C2")
    groups.subscribe(sync_id, "T3", "C3")
    with pytest.raises(GroupError, match="not a member"):
        groups.publish(group.id, "T1", "C11", target_team="T4")


def test_leaving_stops_the_leavers_channels_and_keeps_the_others(
    groups: Groups, sessions: sessionmaker[Session]
) -> None:
    group = group_with(groups, "T2", "T3")
    by_t2 = groups.publish(group.id, "T2", "C2", channel_name="t2")
    groups.subscribe(by_t2, "T1", "C1")
    groups.subscribe(by_t2, "T3", "C3")
    by_t1 = groups.publish(group.id, "T1", "C1B", channel_name="t1")
    groups.subscribe(by_t1, "T2", "C2B")
    direct_to_t2 = groups.publish(group.id, "T3", "C3B", target_team="T2")

    assert groups.leave(group.id, "T2") == {"T1", "T3"}
    # T2's channels are out of every sync of the group; T1 and T3 keep syncing with each other.
    assert endpoints(sessions, by_t2) == {"slack:T1/C1": "active", "slack:T3/C3": "active"}
    assert endpoints(sessions, by_t1) == {"slack:T1/C1B": "active"}
    with sessions() as s:
        assert s.get(Sync, direct_to_t2) is None
    seen = {c.sync_id: c for c in groups.channels_for("T3")}
    assert seen[by_t2].publisher_team is None and seen[by_t2].my_endpoint == "slack:T3/C3"
    with pytest.raises(GroupError, match="takes no new channels"):
        groups.subscribe(by_t2, "T1", "C9")
    assert groups.groups_of("T2") == []

    # The last subscriber stopping ends a publication whose publisher left.
    groups.stop(by_t2, "T3")
    with sessions() as s:
        assert s.get(Sync, by_t2) is None

    groups.leave(group.id, "T3")
    groups.leave(group.id, "T1")
    with sessions() as s:
        assert s.get(WorkspaceGroup, group.id) is None
        assert s.execute(select(Sync)).first() is None


def test_purging_a_workspace_cascades_through_groups(
    groups: Groups, sessions: sessionmaker[Session]
) -> None:
    group = group_with(groups, "T2")
    sync_id = groups.publish(group.id, "T2", "C2")
    groups.subscribe(sync_id, "T1", "C1")
    direct = groups.publish(group.id, "T1", "C11", target_team="T2")
    with pytest.raises(GroupError):
        groups.join("T3", "ZZZZ-ZZZZ")
    with sessions() as s, s.begin():
        for team in ("T2", "T3"):
            s.delete(s.execute(select(Workspace).where(Workspace.team_id == team)).scalar_one())
    with sessions() as s:
        published = s.get(GroupSync, sync_id)
        assert published is not None and published.publisher_workspace_id is None
        assert s.execute(select(func.count()).select_from(GroupJoinFailure)).scalar_one() == 0
    assert [m.team_id for m in groups.groups_of("T1")[0].members] == ["T1"]
    # A direct publication to the purged workspace stays for its publisher only, to unpublish.
    gone = {c.sync_id: c for c in groups.channels_for("T1")}[direct]
    assert gone.direct and gone.target_team is None
    assert gone.target_name == "a workspace that was removed"
    groups.unpublish(direct, "T1")
    with sessions() as s:
        assert s.get(Sync, direct) is None


def test_home_versions_count_up_per_workspace(sessions: sessionmaker[Session]) -> None:
    versions = HomeVersions(sessions)
    assert versions.current("T1") == 0
    versions.bump(["T1", "T2", "T1"])
    versions.bump(["T1"])
    assert (versions.current("T1"), versions.current("T2"), versions.current("T3")) == (2, 1, 0)
