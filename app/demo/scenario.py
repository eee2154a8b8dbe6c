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
    from app.demo.matrix import MatrixPerson
    from fakeslack import FakeSlack

CHANNEL_NAME = "general"
SYNC_NAME = "demo"
FILE_NAME = "notes.txt"
FILE_BODY = b"Agenda: 1. ship the demo 2. celebrate\n"


@dataclass(frozen=True, slots=True)
class Side:
    """One place of the demo (a workspace's #general, or the Matrix room) and its person."""

    team: str
    name: str
    channel: str
    user: str
    person: str

    @property
    def endpoint(self) -> str:
        if self.team == MATRIX:
            return f"matrix:{self.channel}"
        return f"slack:{self.team}/{self.channel}"

    @property
    def where(self) -> str:
        return "the room" if self.team == MATRIX else "#general"


MATRIX = "MATRIX"


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


def matrix_side(person: MatrixPerson, room: str) -> Side:
    return Side(MATRIX, "Matrix", room, person.user_id, "Alice")


class Scenario:
    """Builds the steps lazily: each needs the copies the previous ones made.

    With ``matrix`` (Alice and her room), the room is one more side of the sync: every step
    also waits for its copy there, and Alice posts from Matrix too.
    """

    def __init__(self, slack: FakeSlack, matrix: tuple[MatrixPerson, str] | None = None) -> None:
        self.slack = slack
        self.acme, self.beta, self.gamma = SIDES
        self.original_ts = ""
        self.copies: dict[str, str] = {}  # team -> ts of the first post's copy there
        self.alice: MatrixPerson | None = None
        self.room = ""
        self.root_event = ""  # the first post's copy in the room
        self.sides: list[Side] = list(SIDES)
        if matrix is not None:
            self.alice, self.room = matrix
            self.sides.append(matrix_side(self.alice, self.room))

    # -- the Matrix room -----------------------------------------------------------------------

    def _room_event(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        assert self.alice is not None
        return next((e for e in self.alice.events(self.room) if match(e)), None)

    def _in_room(
        self, expect: dict[str, Callable[[], str | None]], check: Callable[[], str | None]
    ) -> dict[str, Callable[[], str | None]]:
        """``expect`` plus the room's check, when the room is part of the demo."""
        if self.alice is not None:
            expect[MATRIX] = check
        return expect

    def _who(self, event: dict[str, Any]) -> str:
        assert self.alice is not None
        return self.alice.display_name(event["sender"])

    @staticmethod
    def _relation(event: dict[str, Any]) -> dict[str, Any]:
        return dict(event.get("content", {}).get("m.relates_to") or {})

    def _at(self, side: Side, ts: str) -> Any | None:
        return next((m for m in self.slack.messages(side.team, side.channel) if m.ts == ts), None)

    def _copy_of_post(self, side: Side, needle: str) -> Any | None:
        return self.slack.find_message(side.team, side.channel, text=needle, where=_by_bot)

    def steps(self) -> list[Callable[[], Step]]:
        steps = [self._post, self._edit, self._thread, self._react, self._file]
        if self.alice is not None:
            steps.append(self._from_matrix)
        return [*steps, self._delete]

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

        def in_room() -> str | None:
            event = self._room_event(
                lambda e: (
                    e["type"] == "m.room.message"
                    and "Hello from Acme" in e["content"].get("body", "")
                    and not self._relation(e)
                )
            )
            if event is None:
                return None
            self.root_event = event["event_id"]
            return f"{self._who(event)}: {event['content']['body']}"

        expect = {s.team: seen(s) for s in (self.beta, self.gamma)}
        return Step("post", acme, text, act, self._in_room(expect, in_room))

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

        def in_room() -> str | None:
            event = self._room_event(
                lambda e: (
                    self._relation(e).get("rel_type") == "m.replace"
                    and self._relation(e).get("event_id") == self.root_event
                )
            )
            if event is None:
                return None
            return f"{self._who(event)}: {event['content']['m.new_content']['body']}  (m.replace)"

        expect = {s.team: seen(s) for s in (self.beta, self.gamma)}
        return Step("edit", acme, text, act, self._in_room(expect, in_room))

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

        def in_room() -> str | None:
            event = self._room_event(
                lambda e: (
                    self._relation(e).get("rel_type") == "m.thread"
                    and self._relation(e).get("event_id") == self.root_event
                    and "Welcome, Ada!" in e["content"].get("body", "")
                )
            )
            return (
                None
                if event is None
                else f"{event['sender']}: {event['content']['body']}  (in the thread)"
            )

        expect = {
            self.acme.team: seen(self.acme, lambda: self.original_ts),
            self.gamma.team: seen(self.gamma, lambda: self.copies[self.gamma.team]),
        }
        return Step("thread", beta, text, act, self._in_room(expect, in_room))

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

        def in_room() -> str | None:
            event = self._room_event(
                lambda e: (
                    e["type"] == "m.reaction"
                    and self._relation(e).get("event_id") == self.root_event
                )
            )
            return None if event is None else f"{self._relation(event)['key']} on the post"

        expect = {
            self.acme.team: seen(self.acme, lambda: self.original_ts),
            self.beta.team: seen(self.beta, lambda: self.copies[self.beta.team]),
        }
        return Step("reaction", gamma, ":tada: on Ada's post", act, self._in_room(expect, in_room))

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

        def in_room() -> str | None:
            event = self._room_event(
                lambda e: (
                    e["type"] == "m.room.message"
                    and e["content"].get("msgtype") == "m.file"
                    and e["content"].get("body") == FILE_NAME
                )
            )
            if event is None:
                return None
            size = event["content"].get("info", {}).get("size")
            return f"{FILE_NAME} ({size} bytes, m.file)"

        expect = {s.team: seen(s) for s in (self.beta, self.gamma)}
        return Step("file", acme, f"{text} + {FILE_NAME}", act, self._in_room(expect, in_room))

    def _from_matrix(self) -> Step:
        assert self.alice is not None
        alice, room = self.alice, self.room
        text = "Hi all, Alice here, writing from Matrix"

        def act() -> None:
            alice.say(room, text)

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                copy = self.slack.find_message(
                    side.team, side.channel, text="Alice here", where=_by_bot
                )
                return None if copy is None else _shown(copy)

            return check

        expect = {s.team: seen(s) for s in SIDES}
        return Step("matrix", self.sides[-1], text, act, expect)

    def _delete(self) -> Step:
        acme = self.acme

        def act() -> None:
            self.slack.delete(acme.team, acme.channel, self.original_ts)

        def seen(side: Side) -> Callable[[], str | None]:
            def check() -> str | None:
                alive = self._at(side, self.copies[side.team])
                return None if alive is not None else "the copy is gone"

            return check

        def in_room() -> str | None:
            event = self._room_event(lambda e: e["event_id"] == self.root_event)
            redacted = event is not None and not event.get("content")
            return "the copy is redacted" if redacted else None

        expect = {s.team: seen(s) for s in (self.beta, self.gamma)}
        return Step("delete", acme, "deletes the first post", act, self._in_room(expect, in_room))


def watch(step: Step, sides: list[Side], *, timeout: float, tick: Callable[[Step], None]) -> Step:
    """Act, then poll every side until each copy is there or ``timeout`` passes."""
    started = time.monotonic()
    step.act()
    waiting = dict(step.expect)
    by_team = {s.team: s for s in sides}
    while waiting and time.monotonic() - started < timeout:
        for team, check in list(waiting.items()):
            shown = check()
            if shown is not None:
                del waiting[team]
                step.arrivals.append(Arrival(by_team[team], shown, time.monotonic() - started))
        tick(step)
        if waiting:
            time.sleep(0.05)
    step.missing = [by_team[team] for team in waiting]
    return step
