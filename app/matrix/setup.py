"""Assembling the Matrix adapter from the core's shared pieces.

Nothing here knows Slack: the workspace directory, the channel info of portals and the files to
copy come through the core's ports, and :mod:`app.bridge` adds what needs both sides (member
sync, the whole-workspace sync after ``login app``, Slack event hooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route

from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint, Network
from app.core.events import FileRef
from app.core.files import FileSource, FileSources
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.core.puppets import PuppetLogins
from app.core.workspaces import WorkspaceDirectory
from app.egress import EgressPolicy
from app.errors import ConfigError
from app.matrix import avatars
from app.matrix.appservice import AppserviceApi
from app.matrix.avatars import AvatarProxy, MatrixAuthors
from app.matrix.bridge import MatrixBridge
from app.matrix.catchup import CatchUpLoop, MatrixCatchUp
from app.matrix.commands import (
    BotCommands,
    LoginHook,
    LogoutHook,
    MatrixRoomLinks,
    PuppetLoginHook,
)
from app.matrix.deliver import MatrixDeliverer
from app.matrix.ghosts import AvatarFetcher, Ghosts, http_avatar_fetcher
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.ids import BridgeIds
from app.matrix.invites import PortalInvites
from app.matrix.notices import SenderNotices
from app.matrix.permissions import Permissions
from app.matrix.portals import ChannelInfoSource, Portals
from app.matrix.render import MatrixRenderer
from app.settings import Settings
from app.store.cipher import TokenCipher
from app.store.login_dialogues import LoginDialogues
from app.store.syncs import SyncAdmin

log = logging.getLogger("syncbot.matrix")


def matrix_file_source(homeserver: Homeserver) -> FileSource:
    """Download Matrix media (``mxc://`` file refs) for copying to another network."""

    async def fetch(source: Endpoint, ref: FileRef) -> AsyncIterator[bytes]:
        server, _, media_id = ref.url.removeprefix("mxc://").partition("/")
        data, _ = await homeserver.download(server, media_id)
        yield data

    return fetch


@dataclass
class MatrixAdapter:
    """Everything the rest of the app may need from the Matrix side."""

    homeserver: Homeserver
    ids: BridgeIds
    ghosts: Ghosts
    deliverer: MatrixDeliverer
    appservice: AppserviceApi
    bridge: MatrixBridge
    commands: BotCommands
    portals: Portals
    invites: PortalInvites
    avatars: AvatarProxy
    # Linking rooms into syncs from elsewhere (the Slack App Home, through the core port).
    links: MatrixRoomLinks
    # Reads back the events a homeserver restart kept from being pushed (app.matrix.catchup).
    catchup: CatchUpLoop
    # Called with each workspace logged in through `login app` (Socket Mode start, the sync).
    on_login: list[LoginHook] = field(default_factory=list)
    # Called with each Matrix user logged in as themselves (`login token`): their DMs' sync.
    on_puppet_login: list[PuppetLoginHook] = field(default_factory=list)
    # Called with the team id of each workspace logged out.
    on_logout: list[LogoutHook] = field(default_factory=list)
    # Called once the homeserver has answered (the bridge's resync of logged-in workspaces).
    on_connected: list[Callable[[], None]] = field(default_factory=list)

    @property
    def malformed_events(self) -> int:
        """Pushed events skipped as malformed since start (their transactions acknowledged)."""
        return self.appservice.malformed_events

    @property
    def routes(self) -> list[Route]:
        return [
            *self.appservice.routes,
            Route(avatars.ROUTE, self.avatars.endpoint, methods=["GET"]),
        ]

    # Whether the homeserver has answered since start; /health reports "degraded" until then.
    connected: bool = False
    last_error: str | None = None
    _connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect in the background: make sure the bot account exists (the homeserver
        creates it with the registration), then run the ``on_connected`` hooks (the bridge
        resyncs the logged-in workspaces: new channels, no re-invites).

        A homeserver that is down at start must not take Slack and federation down with it:
        the attempt is retried with backoff until it answers, and ``/health`` says so.
        """
        if await self._try_connect():
            self._connected()
            return
        self._connecting = asyncio.create_task(self._connect(), name="syncbot-matrix-connect")

    async def _try_connect(self) -> bool:
        try:
            async with matrix_errors("bot registration"):
                await self.homeserver.bot.ensure_registered()
        except Exception as exc:
            self.last_error = str(exc)[:200] or type(exc).__name__
            log.warning("homeserver unreachable", extra={"error": self.last_error})
            return False
        return True

    async def _connect(self, *, first_delay: float = 1.0, max_delay: float = 60.0) -> None:
        delay = first_delay
        while True:
            await asyncio.sleep(delay)
            if await self._try_connect():
                break
            delay = min(delay * 2, max_delay)
        self._connected()

    def _connected(self) -> None:
        self.connected, self.last_error = True, None
        log.info("homeserver connected")
        self.catchup.start()
        for hook in self.on_connected:
            hook()

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        await self.catchup.stop()
        await self.portals.stop()
        await self.homeserver.close()


def build_matrix(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    outbox: Outbox,
    ingest: Ingest,
    authors: AuthorDirectory,
    files: FileSources,
    workspaces: WorkspaceDirectory | None = None,
    channel_info: ChannelInfoSource | None = None,
    fetch_avatar: AvatarFetcher | None = None,
    timeout: float = 30.0,
    cipher: TokenCipher,
    puppets: PuppetLogins | None = None,
) -> MatrixAdapter:
    """Wire the Matrix adapter and register its deliverer, author resolver and file source.

    Args:
        files: the shared file sources (Matrix media is registered; any network's files are
            read from it when copied into a room).
        workspaces: the workspace directory ``login app`` stores workspaces in (None: no
            Slack side, the bot says so).
        channel_info: how portals learn their channel's name and topic.
        fetch_avatar: how ghost avatars are downloaded (tests inject one).
        cipher: encrypts the bot token of a ``login app`` dialogue while it waits.
        puppets: where ``login token`` stores a user's own token (None: no Slack side).

    Raises:
        ConfigError: the Matrix settings are incomplete.
    """
    if not settings.matrix_enabled:
        raise ConfigError(
            "the Matrix bridge needs MATRIX_HOMESERVER_URL, MATRIX_SERVER_NAME, "
            "MATRIX_AS_TOKEN and MATRIX_HS_TOKEN"
        )
    assert settings.matrix_homeserver_url and settings.matrix_as_token
    assert settings.matrix_hs_token
    ids = BridgeIds.from_settings(settings)
    homeserver = Homeserver(
        url=settings.matrix_homeserver_url,
        as_token=settings.matrix_as_token,
        ids=ids,
        timeout=timeout,
    )
    permissions = Permissions(settings.matrix_permissions, server_name=ids.server_name)
    syncs = SyncAdmin(sessions)
    egress = EgressPolicy.from_settings(settings)
    files.register(Network.MATRIX, matrix_file_source(homeserver))
    ghosts = Ghosts(homeserver, sessions, fetch_avatar=fetch_avatar or http_avatar_fetcher(egress))
    deliverer = MatrixDeliverer(homeserver, ghosts, authors, MatrixRenderer(ids), sessions, files)
    proxy = AvatarProxy(homeserver, key=settings.matrix_hs_token, public_url=settings.public_url)
    authors.register(Network.MATRIX, MatrixAuthors(homeserver, proxy))
    outbox.register(deliverer)
    on_login: list[LoginHook] = []
    on_puppet_login: list[PuppetLoginHook] = []
    on_logout: list[LogoutHook] = []
    invite = tuple(u for u in settings.matrix_permissions if u.startswith("@"))
    portals = Portals(
        homeserver,
        sessions,
        syncs,
        channel_info,
        permissions,
        invite=invite,
        fetch_avatar=ghosts.fetch_avatar,
    )
    deliverer.portals = portals
    invites = PortalInvites(homeserver, sessions)
    commands = BotCommands(
        homeserver,
        prefix=settings.matrix_command_prefix,
        permissions=permissions,
        syncs=syncs,
        sessions=sessions,
        workspaces=workspaces,
        on_login=on_login,
        on_logout=on_logout,
        portals=portals,
        dialogues=LoginDialogues(sessions, cipher),
        puppets=puppets,
        on_puppet_login=on_puppet_login,
    )
    # Senders hear of what could not be bridged or delivered (a notice in their room).
    notices = SenderNotices(homeserver)
    outbox.on_dead.append(notices.on_dead)
    outbox.on_hold.append(notices.on_hold)
    bridge = MatrixBridge(
        homeserver,
        sessions=sessions,
        ingest=ingest,
        commands=commands,
        permissions=permissions,
        invites=invites,
        notices=notices,
    )

    async def query_user(user_id: str) -> bool:
        async with matrix_errors("ghost registration"):
            await homeserver.intent(user_id).ensure_registered()
        return True

    async def query_alias(alias: str) -> bool:
        endpoint = ids.endpoint_for_alias(alias)
        if endpoint is None:
            return False
        await portals.ensure_for_alias(endpoint)
        return True

    appservice = AppserviceApi(
        hs_token=settings.matrix_hs_token,
        ids=ids,
        sessions=sessions,
        bridge=bridge,
        query_user=query_user,
        query_alias=query_alias,
    )
    return MatrixAdapter(
        homeserver=homeserver,
        ids=ids,
        ghosts=ghosts,
        deliverer=deliverer,
        appservice=appservice,
        bridge=bridge,
        commands=commands,
        portals=portals,
        invites=invites,
        avatars=proxy,
        links=MatrixRoomLinks(homeserver, syncs),
        catchup=CatchUpLoop(
            MatrixCatchUp(homeserver, sessions, appservice.handle_missed),
            settings.matrix_catchup_interval,
        ),
        on_login=on_login,
        on_logout=on_logout,
        on_puppet_login=on_puppet_login,
    )
