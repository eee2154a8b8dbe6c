"""What the demo does: three workspaces in one sync, and every message kind, each watched until
its copies have arrived on every other side.

The people act on the simulated Slack (:mod:`fakeslack`) exactly as Slack users would: the fake
sends the service the signed events Slack would, and the service answers through Slack's Web API.
The scenario only reads the fake's channels to see the copies land.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakeslack import FakeSlack

CHANNEL_NAME = "general"
SYNC_NAME = "demo"
FILE_NAME = "notes.txt"
FILE_BODY = b"Agenda: 1. ship the demo 2. celebrate\n"


@dataclass(frozen=True, slots=True)
class Side:
    """One workspace of the demo, with its #general and the person who acts there."""

    team: str
    name: str
    channel: str
    user: str
    person: str

    @property
    def endpoint(self) -> str:
        return f"slack:{self.team}/{self.channel}"


SIDES: tuple[Side, ...] = (
    Side("T0ACME", "Acme", "C0ACME", "U0ADA", "Ada"),
    Side("T0BETA", "Beta", "C0BETA", "U0BOB", "Bob"),
    Side("T0GAMMA", "Gamma", "C0GAMMA", "U0CY", "Cy"),
)


def populate(slack: FakeSlack) -> None:
    """The three workspaces, their #general (the app is a member) and one person each."""
    for side in SIDES:
        slack.add_workspace(side.team, side.name)
        slack.add_channel(side.team, side.channel, CHANNEL_NAME)
        slack.add_user(
            side.team,
            side.user,
            side.person.lower(),
            real_name=side.person,
            email=f"{side.person.lower()}@{side.name.lower()}.example",
        )


@dataclass
class Arrival:
    """A copy seen on one side: what it shows and how long after the action it appeared."""

    side: Side
    shown: str
    seconds: float


@dataclass
class Step:
    """One user action and, per other side, the check that finds its copy there."""

    kind: str
    actor: Side
    says: str
    act: Callable[[], None]
    # side -> a check returning what the copy shows once it is there (else None).
    expect: dict[str, Callable[[], str | None]]
    arrivals: list[Arrival] = field(default_factory=list)
    missing: list[Side] = field(default_factory=list)


def _by_bot(message: Any) -> bool:
    return bool(message.bot_id)


def _shown(message: Any, extra: str = "") -> str:
    author = message.username or message.user or "?"
    # Copies escape Slack markup with zero-width spaces; the terminal shows the words.
    text = " ".join(message.text.replace("\u200b", "").split())
    return f"{author}: {text}{extra}"


class Scenario:
    """Builds the steps lazily: each needs the copies the previous ones made."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.acme, self.beta, self.gamma = SIDES
        self.original_ts = ""
        self.copies: dict[str, str] = {}  # team -> ts of the first post's copy there

    def _at(self, side: Side, ts: str) -> Any | None:
        return next((m for m in self.slack.messages(side.team, side.channel) if m.ts == ts), None)

    def _copy_of_post(self, side: Side, needle: str) -> Any | None:
        return self.slack.find_message(side.team, side.channel, text=needle, where=_by_bot)

    def steps(self) -> list[Callable[[], Step]]:
        return [
            self._post,
            self._edit,
            self._thread,
            self._react,
            self._file,
            self._delete,
        ]

    # -- the steps ---------------------------------------------------------------------------

    def _post(self) -> Step:
        text = "Hello from Acme! :wave: Is everyone *here*?"
        acme = self.acme

        def act() -> None:
            self.original_ts = self.slack.post_message(acme.team, acme.channel, acme.user, text)

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                copy = self._copy_of_post(side, "Hello from Acme!")
                if copy is None:
                    return None
                self.copies[side.team] = copy.ts
                return _shown(copy)

            return check

        return Step("post", acme, text, act, {s.team: seen(s) for s in (self.beta, self.gamma)})

    def _edit(self) -> Step:
        text = "Hello from Acme! :wave: Is everyone *here*? (edited: yes, three workspaces)"
        acme = self.acme

        def act() -> None:
            self.slack.edit(acme.team, acme.channel, self.original_ts, text)

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                copy = self._at(side, self.copies[side.team])
                return _shown(copy) if copy is not None and "edited: yes" in copy.text else None

            return check

        return Step("edit", acme, text, act, {s.team: seen(s) for s in (self.beta, self.gamma)})

    def _thread(self) -> Step:
        text = "Welcome, Ada! Bob from Beta, replying in the thread."
        beta = self.beta

        def act() -> None:
            parent = self.copies[beta.team]
            self.slack.post_message(beta.team, beta.channel, beta.user, text, thread_ts=parent)

        def seen(side: Side, parent: Callable[[], str]) -> Callable[[], str | None]:
            def check() -> str | None:
                reply = self.slack.find_message(
                    side.team,
                    side.channel,
                    text="Welcome, Ada!",
                    where=lambda m: _by_bot(m) and m.thread_ts == parent(),
                )
                return None if reply is None else _shown(reply, "  (in the thread)")

            return check

        return Step(
            "thread",
            beta,
            text,
            act,
            {
                self.acme.team: seen(self.acme, lambda: self.original_ts),
                self.gamma.team: seen(self.gamma, lambda: self.copies[self.gamma.team]),
            },
        )

    def _react(self) -> Step:
        gamma = self.gamma

        def act() -> None:
            self.slack.react(
                gamma.team, gamma.channel, self.copies[gamma.team], gamma.user, "tada"
            )

        def seen(side: Side, ts: Callable[[], str]) -> Callable[[], str | None]:
            def check() -> str | None:
                reactions = self.slack.reactions(side.team, side.channel, ts())
                return ":tada: on the post" if reactions.get("tada") else None

            return check

        return Step(
            "reaction",
            gamma,
            ":tada: on Ada's post",
            act,
            {
                self.acme.team: seen(self.acme, lambda: self.original_ts),
                self.beta.team: seen(self.beta, lambda: self.copies[self.beta.team]),
            },
        )

    def _file(self) -> Step:
        acme = self.acme
        text = "Here are the notes"

        def act() -> None:
            self.slack.upload_file(
                acme.team, acme.channel, acme.user, FILE_NAME, FILE_BODY, text=text
            )

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                for found in self.slack.files(side.team):
                    if found.name == FILE_NAME and side.channel in found.channels:
                        if found.content != FILE_BODY:
                            return None
                        return f"{FILE_NAME} ({len(found.content)} bytes, same content)"
                return None

            return check

        return Step(
            "file",
            acme,
            f"{text} + {FILE_NAME}",
            act,
            {s.team: seen(s) for s in (self.beta, self.gamma)},
        )

    def _delete(self) -> Step:
        acme = self.acme

        def act() -> None:
            self.slack.delete(acme.team, acme.channel, self.original_ts)

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                alive = self._at(side, self.copies[side.team])
                return None if alive is not None else "the copy is gone"

            return check

        return Step(
            "delete",
            acme,
            "deletes the first post",
            act,
            {s.team: seen(s) for s in (self.beta, self.gamma)},
        )


def watch(step: Step, *, timeout: float, tick: Callable[[Step], None]) -> Step:
    """Act, then poll every side until each copy is there or ``timeout`` passes."""
    started = time.monotonic()
    step.act()
    waiting = dict(step.expect)
    sides = {s.team: s for s in SIDES}
    while waiting and time.monotonic() - started < timeout:
        for team, check in list(waiting.items()):
            shown = check()
            if shown is not None:
                del waiting[team]
                step.arrivals.append(Arrival(sides[team], shown, time.monotonic() - started))
        tick(step)
        if waiting:
            time.sleep(0.05)
    step.missing = [sides[team] for team in waiting]
    return step
