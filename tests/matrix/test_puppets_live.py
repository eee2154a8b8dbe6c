"""``login token`` and double puppeting (#21 item 4) through a real Synapse and the fake Slack:
a Matrix user logs in as themselves with a Slack user token; their own DMs become their
portals, and what they write reaches Slack as them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.matrix.conftest import direct_chat
from tests.matrix.test_login_flow import BOT, Flow, flow, login  # noqa: F401 (the fixture)
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def login_token(f: Flow, dm: str, token: str) -> str:
    """Alice sends ``login token`` then ``token`` in her DM; returns the token's event id."""
    f.alice.text(dm, "login token")
    wait_for(lambda: any("user token (xoxp-" in n for n in f.notices(dm)))
    return f.alice.text(dm, token)


def stored_tokens(f: Flow) -> list[tuple[str, str, str, str]]:
    with f.engine.connect() as c:
        rows = c.execute(
            text("SELECT user_id, team_id, slack_user_id, token_enc FROM matrix_puppets")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_login_token_stores_the_users_token_encrypted(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm = login(f)
    token = f.slack.add_user_token(f.team, "U1")
    sent = login_token(f, dm, token)
    wait_for(lambda: any(f"Logged in to Acme ({f.team}) as Ada" in n for n in f.notices(dm)))
    # The message that carried it is redacted, and nothing the bot says repeats it.
    wait_for(lambda: not next(e for e in a.events(dm) if e["event_id"] == sent)["content"])
    assert not any(token in n for n in f.notices(dm))
    [(user, team, slack_user, sealed)] = stored_tokens(f)
    assert (user, team, slack_user) == (a.user_id, f.team, "U1")
    assert token not in sealed and "xoxp" not in sealed  # encrypted at rest
    assert f.app.services.slack.puppets.store.token(a.user_id, f.team) == token  # type: ignore[union-attr]

    a.text(dm, "logout")
    wait_for(lambda: any(f"Forgot your user token for {f.team}" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []


def test_a_token_slack_refuses_or_a_bot_token_is_not_stored(flow: Flow) -> None:  # noqa: F811
    f = flow
    dm = login(f)
    login_token(f, dm, "xoxp-1-not-a-real-token")
    wait_for(lambda: any("Slack refused the token: invalid_auth" in n for n in f.notices(dm)))
    login_token(f, dm, f.slack.bot_token(f.team))
    wait_for(lambda: any("not a user token" in n for n in f.notices(dm)))
    revoked = f.slack.add_user_token(f.team, "U1")
    f.slack.revoke_user_token(revoked)
    login_token(f, dm, revoked)
    wait_for(lambda: any("Slack refused the token: token_revoked" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []


def test_a_workspace_the_app_is_not_in_is_refused(flow: Flow) -> None:  # noqa: F811
    # No `login app` yet: the user token alone cannot bridge (events need the app installed).
    f = flow
    dm = direct_chat(f.alice, BOT)
    login_token(f, dm, f.slack.add_user_token(f.team, "U1"))
    wait_for(lambda: any("not installed in workspace" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []
