"""Echo keys of what we do as a person: one record must match the echo Slack sends back."""

from __future__ import annotations

from app.slack.as_person import reaction_echo


def test_a_reaction_echo_matches_whichever_name_slack_reports_it_under() -> None:
    # Slack has several names for one emoji and reports a reaction under its own choice
    # (`thumbsup` added, `+1` in the event); the echo is the same reaction all the same.
    sent = reaction_echo("T1", "D1", "1.2", "U1", "thumbsup", added=True)
    assert reaction_echo("T1", "D1", "1.2", "U1", "+1", added=True) == sent
    toned = reaction_echo("T1", "D1", "1.2", "U1", "thumbsup::skin-tone-3", added=True)
    assert reaction_echo("T1", "D1", "1.2", "U1", "+1::skin-tone-3", added=True) == toned
    # Different emoji, tones, people or directions stay apart; custom names are kept as such.
    assert reaction_echo("T1", "D1", "1.2", "U1", "-1", added=True) != sent
    assert toned != sent
    assert reaction_echo("T1", "D1", "1.2", "U1", "+1", added=False) != sent
    assert reaction_echo("T1", "D1", "1.2", "U1", "partyparrot", added=True).endswith(
        ":partyparrot:"
    )
