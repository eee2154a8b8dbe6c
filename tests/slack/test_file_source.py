"""The Slack file source against the fake Slack: Slack answers a token that cannot see a file
with its sign-in page (status 200, HTML), which must never pass for the file's bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.core.endpoints import Endpoint
from app.core.events import FileRef
from app.errors import RemoteError
from app.slack.files import slack_file_source
from fakeslack import FakeSlack


class _Api:
    def __init__(self, token: str) -> None:
        self.token = token


class _Workspaces:
    def __init__(self, slack: FakeSlack) -> None:
        self.api_url = slack.base_url
        self._slack = slack

    def api(self, team: str) -> _Api:
        return _Api(self._slack.bot_token(team))


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_workspace("T1", "Acme", domain="acme")
        fake.add_user("T1", "U1", "ada")
        fake.add_user("T1", "U2", "bob")
        fake.add_channel("T1", "C1", "general", members=["U1", "U2"])
        yield fake


def _read(slack: FakeSlack, channel: str, file_id: str) -> bytes:
    wire = next(f for f in slack.files("T1") if f.id == file_id).wire()
    ref = FileRef(file_id, wire["name"], wire["mimetype"], wire["size"], wire["url_private"])
    fetch = slack_file_source(_Workspaces(slack))  # type: ignore[arg-type]

    async def run() -> bytes:
        return b"".join([c async for c in fetch(Endpoint.slack("T1", channel), ref)])

    return asyncio.run(run())


def test_a_file_the_bot_can_see_is_its_bytes(slack: FakeSlack) -> None:
    file_id = slack.upload_file("T1", "C1", "U1", "a.png", b"\x89PNG general")
    assert _read(slack, "C1", file_id) == b"\x89PNG general"


def test_a_sign_in_page_is_a_failure_not_the_file(slack: FakeSlack) -> None:
    dm = slack.open_private_dm("T1", ["U1", "U2"])
    file_id = slack.upload_file("T1", dm, "U2", "b.png", b"\x89PNG dm")
    with pytest.raises(RemoteError, match="sign-in page") as caught:
        _read(slack, dm, file_id)
    assert not caught.value.retryable
