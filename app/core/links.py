"""The room-link port: join a room of another network into a sync by its reference.

The Slack App Home links Matrix rooms into its channels' syncs through this port; the Matrix
adapter implements it (:class:`app.matrix.commands.MatrixRoomLinks`), so the Slack side never
imports the Matrix one.
"""

from __future__ import annotations

from typing import Protocol


class RoomLinks(Protocol):
    @property
    def bot(self) -> str:
        """The account that joins linked rooms (admins invite it to a private room)."""
        ...

    async def link(self, ref: str, sync_name: str) -> str:
        """Make the room ``ref`` (an id or alias) an endpoint of ``sync_name``; returns its id.

        Raises:
            SyncbotError: the room cannot be linked (refused, no such sync, already in one,
                the other network failing).
        """
        ...
