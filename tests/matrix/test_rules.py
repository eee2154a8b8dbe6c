"""Permission levels, the portal state machine and reaction keys."""

from __future__ import annotations

import pytest

from app.emoji import to_matrix_key, to_slack_name
from app.matrix.permissions import Level, Permissions
from app.matrix.portals import PortalError, check_transition


def test_most_specific_permission_wins() -> None:
    perms = Permissions(
        {"*": "relay", "hs.example": "user", "@boss:other.example": "admin"},
        server_name="hs.example",
    )
    assert perms.level("@ann:hs.example") is Level.USER
    assert perms.level("@boss:other.example") is Level.ADMIN
    assert perms.level("@anyone:else.example") is Level.RELAY
    assert (
        Permissions({"hs.example": "admin"}, server_name="hs.example").level("@x:else.example")
        is Level.NONE
    )


def test_default_permissions_make_nobody_admin() -> None:
    perms = Permissions({}, server_name="hs.example")
    assert perms.level("@ann:hs.example") is Level.USER
    assert perms.level("@x:else.example") is Level.RELAY


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("pending", "creating"),
        ("creating", "active"),
        ("active", "archived"),
        ("archived", "active"),
        ("archived", "deleted"),
        ("creating", "pending"),
    ],
)
def test_portal_transitions_allowed(current: str, new: str) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [("pending", "active"), ("active", "deleted"), ("deleted", "active"), ("active", "pending")],
)
def test_portal_transitions_refused(current: str, new: str) -> None:
    with pytest.raises(PortalError):
        check_transition(current, new)


def test_reaction_keys_round_trip() -> None:
    for name in ("+1", "tada", "heart", "eyes"):
        assert to_slack_name(to_matrix_key(name)) == name
    assert to_matrix_key("thumbsup") == "👍" and to_slack_name("👍") == "+1"
    assert to_matrix_key("partyparrot") == ":partyparrot:"
    assert to_slack_name(":partyparrot:") == "partyparrot"
    assert to_slack_name("❤") == "heart"  # without the variation selector
    # Skin tones travel both ways (#17 item 5).
    assert to_matrix_key("wave::skin-tone-3") == "👋🏼"
    assert to_slack_name("👋🏼") == "wave::skin-tone-3"
    for name in ("sweat_smile", "partying_face", "heart_eyes", "+1::skin-tone-5", "parrot"):
        assert to_slack_name(to_matrix_key(name)) == name
