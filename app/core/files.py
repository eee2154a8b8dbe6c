"""File sources: how the bytes of a file shared in one network are read, by network.

Each adapter registers how to download its own files (Slack with the workspace's bot token,
Matrix media from the homeserver, peers' inline ``data:`` URLs); each deliverer that copies a
file into its network reads it through this one registry, whatever network it came from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from app.core.endpoints import Endpoint, Network
from app.core.events import FileRef
from app.errors import RemoteError

# The largest file copied between networks; larger ones are replaced by a notice.
MAX_FILE_BYTES = 100 * 1024 * 1024

FileSource = Callable[[Endpoint, FileRef], AsyncIterator[bytes]]


class FileTooLarge(RemoteError):
    """A file above the configured cap: skipped with a notice, never retried."""


class FileSources:
    """The file source of each network, registered by its adapter at assembly."""

    def __init__(self, sources: dict[Network, FileSource] | None = None) -> None:
        self._sources: dict[Network, FileSource] = dict(sources or {})

    def register(self, network: Network, source: FileSource) -> None:
        self._sources[network] = source

    def get(self, network: Network) -> FileSource | None:
        return self._sources.get(network)

    def __contains__(self, network: object) -> bool:
        return network in self._sources

    def open(self, source: Endpoint, ref: FileRef, *, network: str) -> AsyncIterator[bytes]:
        """The bytes of ``ref``, shared in ``source``.

        Args:
            network: the network asking (named in the error).

        Raises:
            RemoteError: no source is registered for ``source``'s network.
        """
        fetch = self._sources.get(source.network)
        if fetch is None:
            raise RemoteError(f"cannot fetch files from {source.network}", network=network)
        return fetch(source, ref)
