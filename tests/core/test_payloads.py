"""Delivery payloads: typed between relay and deliverers, stored in the JSON form of old rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.core import richtext
from app.core.endpoints import Endpoint
from app.core.events import Author, FileRef, Kind
from app.core.payloads import (
    DeletePayload,
    EditPayload,
    PayloadError,
    PostPayload,
    ReactionPayload,
    expect,
    payload_from_json,
)
from app.core.relay import post_payload
from app.store.models import Delivery
from tests import builders
from tests.core.conftest import B

A = Endpoint.slack("T1", "C1")
BODY = {"v": 1, "doc": ["hi ", {"t": "b", "c": ["there"]}]}

# Outbox rows as the relay wrote them before the payloads were typed (the stored format).
STORED: list[tuple[Kind, dict[str, Any]]] = [
    (
        Kind.POST,
        {
            "source": "slack:T1/C1",
            "source_native_id": "111.1",
            "author": {
                "name": "Ada",
                "native_id": "T1/U1",
                "avatar_url": "https://a/x.png",
                "origin": "",
            },
            "body": BODY,
            "files": [
                {
                    "native_id": "F1",
                    "name": "a.txt",
                    "mimetype": "text/plain",
                    "size": 3,
                    "url": "https://files.slack.com/a.txt",
                    "title": "A",
                }
            ],
            "thread_post_id": "p0",
            "broadcast": True,
            "parent_link": None,
            "allow_broadcast": False,
        },
    ),
    (Kind.EDIT, {"source": "matrix:!r:hs.example", "body": BODY}),
    (Kind.DELETE, {"source": "slack:T1/C1"}),
    (
        Kind.REACT,
        {"source": "slack:T1/C1", "emoji": "tada", "actor": "T1/U1", "actor_name": "Ada"},
    ),
    (
        Kind.UNREACT,
        {"source": "peer:i2/slack:T9/C9", "emoji": "tada", "actor": "", "actor_name": ""},
    ),
    # The message reacted to, kept so a notice about an undelivered reaction can answer it.
    (
        Kind.REACT,
        {
            "source": "matrix:!r:hs.example",
            "emoji": "+1",
            "actor": "@ada:hs.example",
            "actor_name": "",
            "source_native_id": "$event",
        },
    ),
]


@pytest.mark.parametrize(("kind", "stored"), STORED, ids=[str(k) for k, _ in STORED])
def test_stored_rows_read_back_typed_and_serialize_to_the_same_json(
    kind: Kind, stored: dict[str, Any]
) -> None:
    payload = payload_from_json(kind, stored)
    assert payload.source == Endpoint.parse(stored["source"])
    assert payload.to_json() == stored


def test_a_stored_post_reads_into_its_fields() -> None:
    post = expect(payload_from_json(Kind.POST, STORED[0][1]), PostPayload)
    assert post.author == Author("Ada", "T1/U1", "https://a/x.png")
    assert post.files == (
        FileRef("F1", "a.txt", "text/plain", 3, "https://files.slack.com/a.txt", "A"),
    )
    assert richtext.to_json(post.body) == BODY
    assert (post.thread_post_id, post.broadcast, post.allow_broadcast) == ("p0", True, False)


def test_the_relay_writes_the_stored_post_format() -> None:
    event = builders.post(A, "111.1", "hello")
    written = post_payload(event, thread_post_id=None, allow_broadcast=True).to_json()
    assert set(written) == set(STORED[0][1])
    assert written["source"] == "slack:T1/C1" and written["allow_broadcast"] is True
    assert written["body"] == richtext.to_json(event.body)


def test_older_rows_without_optional_fields_still_read() -> None:
    post = payload_from_json(
        Kind.POST, {"source": "slack:T1/C1", "source_native_id": "1.0", "author": {"name": "A"}}
    )
    assert isinstance(post, PostPayload)
    assert post.files == () and post.thread_post_id is None and not post.allow_broadcast
    # Rows written before reactions named their actor.
    reaction = payload_from_json(
        Kind.REACT, {"source": "slack:T1/C1", "emoji": "+1", "actor_name": "Ada"}
    )
    assert reaction == ReactionPayload(A, "+1", actor="", actor_name="Ada")


@pytest.mark.parametrize(
    ("kind", "stored"),
    [
        (Kind.POST, []),
        (Kind.DELETE, {}),
        (Kind.EDIT, {"source": "nowhere", "body": None}),
        (Kind.EDIT, {"source": "slack:T1/C1", "body": {"v": 99}}),
        (Kind.REACT, {"source": "slack:T1/C1"}),
    ],
)
def test_an_unreadable_payload_is_a_clear_error(kind: Kind, stored: Any) -> None:
    with pytest.raises(PayloadError):
        payload_from_json(kind, stored)


def test_a_deliverer_expecting_another_kind_is_told_so() -> None:
    with pytest.raises(PayloadError, match="expected a PostPayload, got a DeletePayload"):
        expect(DeletePayload(A), PostPayload)
    edit = EditPayload(A, richtext.doc(richtext.Text("x")))
    assert expect(edit, EditPayload) is edit


async def test_an_unreadable_stored_row_goes_dead_and_the_rest_is_delivered(sql_world) -> None:
    # A row as an older version (or a hand edit) left it in the database: the SQL store, on
    # every backend.
    sessions, relay, outbox, deliverer = sql_world
    bad = uuid.uuid4().hex
    now = datetime.now(UTC)
    with sessions() as s, s.begin():
        s.add(
            Delivery(
                uid=bad,
                target_endpoint=str(B),
                kind="react",
                payload={"source": "slack:T1/C1"},  # no emoji: no deliverer could apply it
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    result = relay.ingest(builders.post(A, "1.1"))
    await outbox.drain()
    assert sorted(c.uid for c in deliverer.calls) == sorted(result.deliveries)
    with sessions() as s:
        row = s.execute(select(Delivery).where(Delivery.uid == bad)).scalar_one()
        assert row.status == "dead"
        assert row.last_error is not None and "unreadable payload" in row.last_error
