"""Acting as a logged-in person where the bot cannot: their own DMs and group DMs.

The bot is not a member of a person's own DMs, and Slack refuses it there: the conversation
does not exist for it (``channel_not_found`` from ``conversations.info``, ``reactions.add``,
``files.completeUploadExternal``). A Matrix reaction or file sent in such a portal is made with
the person's user token (``login token``) instead. Elsewhere the bot keeps reacting and
uploading as before: the core shows one native reaction per emoji standing for every Matrix
reactor, so a reaction made as one of them would be left behind (or missing) when another
reactor adds or removes theirs.

What the person's token may not do is turned into an error that says why, in words the person
can act on; the outbox then tells them in the room (``SenderNotices``) and logs it.
"""

from __future__ import annotations

import logging

from app.emoji import to_matrix_key
from app.errors import RemoteError
from app.slack.puppets import DEAD_TOKEN_CODES
from app.slack.webapi import SlackApi

log = logging.getLogger("syncbot.slack.as_person")

# Answers meaning the caller cannot see the conversation at all.
UNSEEN_CODES = frozenset({"channel_not_found"})


class BotBlindSpots:
    """Which conversations the bot cannot see, asked of Slack once per conversation and
    process (``conversations.info``), only for changes a logged-in person makes.

    The answer is kept: the members of a DM or group DM never change, so the bot stays out of
    a person's own DM; a channel the bot was removed from answers ``not_in_channel`` to the
    bot's own call, which the deliverer handles as before (rejoin, or hold).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], bool] = {}

    async def cannot_see(self, api: SlackApi, channel: str) -> bool:
        key = (api.team_id, channel)
        known = self._seen.get(key)
        if known is not None:
            return not known
        try:
            await api.call("conversations.info", channel=channel)
            seen = True
        except RemoteError as exc:
            if exc.code not in UNSEEN_CODES:
                raise
            seen = False
        self._seen[key] = seen
        return not seen


def reaction_echo(team: str, channel: str, ts: str, user: str, emoji: str, added: bool) -> str:
    """The key of the echo of a reaction we made as ``user``.

    The emoji is keyed by what it is, not by the name we gave: Slack has several names for
    one emoji (``thumbsup``, ``+1``) and its event may use another than ours.
    """
    what = to_matrix_key(emoji)
    return f"reaction:{'+' if added else '-'}:{team}:{channel}:{ts}:{user}:{what}"


def file_echo(team: str, file_id: str) -> str:
    """The key of the echo of a file we shared as a person (its share message)."""
    return f"file:{team}:{file_id}"


def not_logged_in(prefix: str = "") -> RemoteError:
    """The bot cannot see the conversation and the person has no token of theirs with us."""
    return RemoteError(
        f"{prefix}the bridge bot is not in this conversation, and you are not logged in as "
        "yourself here (send `login token` in a DM with me)",
        network="slack",
        retryable=False,
    )


def refused(exc: RemoteError, scope: str, *, forgotten: bool, prefix: str = "") -> RemoteError:
    """``exc`` (Slack refusing the person's token) as an error saying why (after ``prefix``),
    or ``exc`` itself when another attempt may succeed (the outbox retries it)."""
    if exc.retryable:
        return exc
    code = exc.code or "refused"
    if code == "missing_scope":
        why = (
            f"your Slack token was given before syncbot asked for the `{scope}` scope; send "
            "`login token` in a DM with me with a new token"
        )
    elif forgotten or code in DEAD_TOKEN_CODES:
        why = (
            f"Slack no longer accepts your user token ({code}), so I forgot it; send "
            "`login token` in a DM with me to log in again"
        )
    elif exc.code:
        why = f"Slack refused it ({code})"
    else:
        why = str(exc)
    log.info("refused as the person", extra={"error": code, "scope": scope})
    return RemoteError(
        prefix + why,
        network="slack",
        retryable=False,
        outcome_unknown=exc.outcome_unknown,
    )
