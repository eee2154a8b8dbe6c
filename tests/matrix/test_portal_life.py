"""The pieces of portal life without a homeserver: the state machine, channel info, membership
outcomes, and the invite/login records on every database backend."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select

from app.bridge.channels import channel_info
from app.core.endpoints import Endpoint
from app.matrix.homeserver import Homeserver
from app.matrix.ids import BridgeIds
from app.matrix.invites import DECLINED, JOINED, LEFT, PortalInvites, membership_outcome
from app.matrix.portals import PortalError, check_transition
from app.store.engine import session_factory
from app.store.models_matrix import MatrixLogin, MatrixPortal, MatrixPortalInvite, MatrixUser

ALICE = "@alice:test.local"


def member(membership: str, previous: str | None, sender: str = ALICE) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "room_id": "!portal:test.local",
        "state_key": ALICE,
        "sender": sender,
        "content": {"membership": membership},
        "unsigned": {"prev_content": {"membership": previous}} if previous else {},
    }


def test_membership_outcomes() -> None:
    assert membership_outcome(member("join", "invite")) == JOINED
    assert membership_outcome(member("leave", "invite")) == DECLINED
    assert membership_outcome(member("leave", "join")) == LEFT
    # Kicked or banned by someone else while invited: left, not a refusal of theirs.
    assert membership_outcome(member("leave", "invite", sender="@mod:test.local")) == LEFT
    assert membership_outcome(member("ban", "join", sender="@mod:test.local")) == LEFT
    assert membership_outcome(member("invite", None)) is None


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("pending", "creating", True),
        ("creating", "active", True),
        ("creating", "pending", True),  # a failed creation starts over
        ("active", "archived", True),
        ("archived", "active", True),
        ("active", "deleting", True),
        ("archived", "deleting", True),
        ("deleting", "deleted", True),
        ("deleted", "pending", True),  # recreated later
        ("pending", "active", False),
        ("deleting", "active", False),
        ("archived", "creating", False),
    ],
)
def test_portal_state_machine(current: str, new: str, allowed: bool) -> None:
    if allowed:
        check_transition(current, new)
    else:
        with pytest.raises(PortalError):
            check_transition(current, new)


def test_channel_info_prefers_the_topic_then_the_purpose() -> None:
    both = {"name": "dev", "topic": {"value": "ship it"}, "purpose": {"value": "devs"}}
    assert channel_info(both, "C1").topic == "ship it"
    assert channel_info({"name": "dev", "purpose": {"value": "devs"}}, "C1").topic == "devs"
    bare = channel_info({"is_archived": True}, "C1")
    assert (bare.name, bare.topic, bare.archived) == ("C1", None, True)


def test_invite_records_and_logins_on_every_backend(engine: Engine) -> None:
    sessions = session_factory(engine)
    # Only the database side is exercised: no call reaches this homeserver.
    hs = Homeserver(url="http://127.0.0.1:9", as_token="unused", ids=BridgeIds("test.local"))
    invites = PortalInvites(hs, sessions)
    endpoint = Endpoint.slack("T1", "C1")
    with sessions() as s, s.begin():
        s.add(MatrixPortal(endpoint=str(endpoint), room_id="!portal:test.local", state="active"))
    invites._record(endpoint, ALICE)
    invites._record(endpoint, ALICE)  # twice (a racing sync): still one record
    assert invites.state(endpoint, ALICE) == "invited"
    assert invites.observe(member("leave", "invite")) is True
    assert invites.state(endpoint, ALICE) == DECLINED
    # Someone we never invited who joins (through a link) is remembered too; a stranger's
    # leave is not.
    bob = member("join", None) | {"state_key": "@bob:test.local", "sender": "@bob:test.local"}
    assert invites.observe(bob) is True
    carol = member("leave", "join") | {"state_key": "@carol:x", "sender": "@carol:x"}
    assert invites.observe(carol) is False
    assert invites.observe(member("join", "invite") | {"room_id": "!other:test.local"}) is False

    with sessions() as s, s.begin():
        s.add(MatrixUser(mxid=ALICE, management_room="!dm:test.local"))
        s.flush()
        s.add(MatrixLogin(user_id=ALICE, team_id="T1"))
    with sessions() as s, s.begin():
        s.delete(s.get(MatrixUser, ALICE))
    with sessions() as s:
        # ON DELETE CASCADE: no login without its user.
        assert s.execute(select(MatrixLogin)).scalars().all() == []


def test_deleting_a_portal_forgets_its_invites(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as s, s.begin():
        s.add(MatrixPortal(endpoint="slack:T1/C1", room_id="!p:test.local", state="active"))
        s.add(MatrixPortalInvite(endpoint="slack:T1/C1", user_id=ALICE, membership=LEFT))
    with sessions() as s, s.begin():
        s.delete(s.get(MatrixPortal, "slack:T1/C1"))
    with sessions() as s:
        assert s.execute(select(MatrixPortalInvite)).scalars().all() == []
