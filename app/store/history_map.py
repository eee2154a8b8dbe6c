"""Backfilled history in the message map, as if the relay had carried it.

A post copied into a new portal by the backfill (:mod:`app.bridge.backfill`) gets what a
relayed post gets: a canonical post in the portal's sync, its source copy (the Slack message)
and its Matrix copy (the event and its file parts), and the reactions it had. So a later edit,
delete or reaction on either side finds it through the map like any live message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.store.models import MessageCopy, Post, Reaction, SyncEndpoint


@dataclass(frozen=True, slots=True)
class HistoryCopy:
    """One backfilled post: the Slack message it came from and the events it became."""

    source: Endpoint
    native_id: str
    # The Slack thread root's ts, for a reply.
    thread_native_id: str | None
    author_name: str
    target: Endpoint
    event_id: str
    # The root's event, for a reply; the copy's other events (its files).
    thread_event_id: str | None = None
    parts: tuple[str, ...] = ()
    # (emoji, Slack user) of every reaction it had.
    reactions: tuple[tuple[str, str], ...] = ()


class HistoryMap:
    """Records backfilled posts; asks whether a message is mapped already."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def mapped(self, source: Endpoint, native_ids: Sequence[str]) -> set[str]:
        """Which of ``native_ids`` at ``source`` the map holds (relayed, or backfilled)."""
        if not native_ids:
            return set()
        with self._sessions() as s:
            return set(
                s.execute(
                    select(MessageCopy.native_id).where(
                        MessageCopy.endpoint == str(source),
                        MessageCopy.native_id.in_(list(native_ids)),
                    )
                ).scalars()
            )

    def copy_at(self, source: Endpoint, native_id: str, target: Endpoint) -> str | None:
        """The native id of the copy at ``target`` of the post ``(source, native_id)``."""
        with self._sessions() as s:
            post = _post_of(s, source, native_id)
            if post is None:
                return None
            return s.execute(
                select(MessageCopy.native_id).where(
                    MessageCopy.post_id == post, MessageCopy.endpoint == str(target)
                )
            ).scalar_one_or_none()

    def record(self, copy: HistoryCopy) -> bool:
        """Map a backfilled post in the sync of its target room, at most once.

        Returns:
            False when nothing was recorded: the post is mapped already (a resumed backfill,
            or the relay carried it meanwhile) or the room is in no sync any more.
        """
        with self._sessions() as s, s.begin():
            sync_id = s.execute(
                select(SyncEndpoint.sync_id).where(SyncEndpoint.endpoint == str(copy.target))
            ).scalar_one_or_none()
            if sync_id is None or _post_of(s, copy.source, copy.native_id) is not None:
                return False
            root = (
                _post_of(s, copy.source, copy.thread_native_id) if copy.thread_native_id else None
            )
            post_id = uuid.uuid4().hex
            s.add(
                Post(
                    id=post_id,
                    sync_id=sync_id,
                    source_endpoint=str(copy.source),
                    source_native_id=copy.native_id,
                    thread_post_id=root,
                    author_name=copy.author_name[:255],
                )
            )
            s.flush()  # the post first: the copies' foreign keys point at it
            s.add_all(
                [
                    MessageCopy(
                        post_id=post_id,
                        endpoint=str(copy.source),
                        native_id=copy.native_id,
                        thread_native_id=copy.thread_native_id,
                        is_source=True,
                    ),
                    MessageCopy(
                        post_id=post_id,
                        endpoint=str(copy.target),
                        native_id=copy.event_id,
                        thread_native_id=copy.thread_event_id,
                        is_source=False,
                        parts=list(copy.parts) or None,
                    ),
                ]
            )
            # The actor form is the relay's (``<endpoint>|<user>``), so a later reaction or
            # removal by the same person counts against these.
            s.add_all(
                Reaction(
                    post_id=post_id,
                    emoji=emoji[:128],
                    actor=f"{copy.source}|{user}",
                    source_endpoint=str(copy.source),
                )
                for emoji, user in dict.fromkeys(copy.reactions)
            )
        return True


def _post_of(s: Session, endpoint: Endpoint, native_id: str) -> str | None:
    return s.execute(
        select(MessageCopy.post_id).where(
            MessageCopy.endpoint == str(endpoint), MessageCopy.native_id == native_id
        )
    ).scalar_one_or_none()
