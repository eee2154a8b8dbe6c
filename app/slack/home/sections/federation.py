"""App Home: this instance's federation identity and its peer connections.

Connecting, inviting and removing go through the same service calls as ``syncbot peer``
(:mod:`app.federation.admin`). A peer connection is an instance-wide thing that may serve the
syncs of several workspaces, so a workspace admin sees the peers in their syncs and may remove
one only when its every endpoint is in a sync of their workspace; admins of the PRIMARY_WORKSPACE
(the instance's operators) manage all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from app.errors import SyncbotError
from app.federation import signing
from app.federation.admin import connect, federation_of
from app.federation.service import PAIRING_TTL, Federation, PeerView
from app.slack import mrkdwn
from app.slack.home.blocks import (
    MAX_OPTION_VALUE,
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    header,
    input_block,
    modal,
    notice_view,
    option,
    section,
    static_select,
    text_element,
)
from app.slack.home.kit import Click, ClickHandler, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
from app.slack.home.sections.scope import refresh_after_change, team_syncs
from app.store.sync_scope import sync_names_of

log = logging.getLogger("syncbot.slack.home.federation")

OPEN_CONNECT = "home.federation.open_connect"
OPEN_INVITE = "home.federation.open_invite"
REMOVE = "home.federation.remove"
CONNECT_VIEW = "home.federation.connect"
INVITE_VIEW = "home.federation.invite"
MAX_PEERS = 10  # the home tab is shared by every section (100 blocks in all)
MAX_OPTIONS = 100  # Slack's limit for a static select
NOT_YOURS = (
    "This peer also serves syncs of other workspaces: only the instance's operator (admins of "
    "the primary workspace) can remove it."
)


@dataclass(frozen=True, slots=True)
class PeerLine:
    peer: PeerView
    syncs: tuple[str, ...]
    removable: bool


def _sync_select(syncs: list[str]) -> Block:
    # An option value longer than Slack's limit is cut: such a sync cannot be chosen here.
    options = [option(name, name[:MAX_OPTION_VALUE]) for name in syncs[:MAX_OPTIONS]]
    return static_select(options, action_id="sync", placeholder="One of this workspace's syncs")


def connect_view(syncs: list[str]) -> Block:
    code = text_element(action_id="code", multiline=True)
    return modal(
        CONNECT_VIEW,
        "Connect to a peer",
        [
            input_block(
                "code",
                "Pairing code",
                code,
                hint="From `syncbot peer invite` or the other instance's App Home.",
            ),
            input_block("sync", "Sync the peer joins", _sync_select(syncs)),
        ],
        submit="Connect",
    )


def invite_view(syncs: list[str]) -> Block:
    hours = int(PAIRING_TTL / timedelta(hours=1))
    return modal(
        INVITE_VIEW,
        "Invite a peer",
        [
            input_block("sync", "Sync to share", _sync_select(syncs)),
            context(
                f"The code works once, within {hours} hours. Send it to the other instance's "
                "admin privately."
            ),
        ],
        submit="Create code",
    )


def _peer_block(line: PeerLine, index: int) -> Block:
    peer = line.peer
    syncs = (
        "syncs: " + ", ".join(mrkdwn.escape(s) for s in line.syncs)
        if line.syncs
        else "_in no sync_"
    )
    remove = None
    if line.removable:
        remove = button(
            "Remove",
            REMOVE,
            peer.instance_id,
            style="danger",
            confirm=confirm_dialog(
                "Remove this peer?",
                "It leaves every sync it is in, and its requests are refused from now on. "
                "Pairing again needs a new code.",
                yes="Remove",
                no="Keep",
                style=None,
            ),
        )
    return section(
        f"*{mrkdwn.escape(peer.instance_id)}* · {peer.status}\n{mrkdwn.escape(peer.url)}\n{syncs}",
        f"home.federation.peer.{index}",
        accessory=remove,
    )


class FederationSection(Section):
    key = "federation"

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self.services.settings.federation_enabled

    def _federation(self) -> Federation | None:
        try:
            return federation_of(self.services)
        except SyncbotError:
            return None

    def _peer_lines(self, federation: Federation, viewer: Viewer) -> list[PeerLine]:
        """Peers this viewer may see, with the syncs they are in and whether they may remove."""
        mine = set(team_syncs(self.services.sessions, viewer.team_id))
        everything = self.access.is_operator(viewer)
        peers = federation.peers()
        sync_of = sync_names_of(self.services.sessions, [e for p in peers for e in p.endpoints])
        lines = []
        for peer in peers:
            syncs = tuple(sorted({sync_of[e] for e in peer.endpoints if e in sync_of}))
            # A peer in no sync serves nobody: any admin may tidy it away.
            ours = set(syncs) <= mine
            if everything or not syncs or any(name in mine for name in syncs):
                lines.append(PeerLine(peer, syncs, everything or ours))
        return lines

    async def blocks(self, viewer: Viewer) -> list[Block]:
        blocks: list[Block] = [header("Federation")]
        federation = self._federation()
        if federation is None:
            blocks.append(section("_Federation is enabled but not running in this process._"))
            return blocks

        def identity() -> tuple[str, str]:
            return (
                federation.identity.instance_id,
                signing.fingerprint(federation.identity.public_key()),
            )

        instance, fingerprint = await asyncio.to_thread(identity)
        url = federation.public_url or "_not set: SYNCBOT_PUBLIC_URL is needed to pair_"
        blocks.append(
            section(
                f"*This instance* `{mrkdwn.escape(instance)}`\n"
                f"Public URL: {mrkdwn.escape(url)}\nKey fingerprint: `{fingerprint}`"
            )
        )
        lines = await asyncio.to_thread(self._peer_lines, federation, viewer)
        blocks += [_peer_block(line, i) for i, line in enumerate(lines[:MAX_PEERS])]
        if not lines:
            blocks.append(section("_No peer takes part in your syncs._"))
        blocks.append(
            actions(
                "home.federation.actions",
                button("Connect", OPEN_CONNECT),
                button("Invite", OPEN_INVITE),
            )
        )
        return blocks

    def routes(self) -> Iterable[Route]:
        return [
            OnClick(OPEN_CONNECT, self._open(connect_view)),
            OnClick(OPEN_INVITE, self._open(invite_view)),
            OnClick(REMOVE, self._remove),
            OnSubmit(CONNECT_VIEW, self._connect),
            OnSubmit(INVITE_VIEW, self._invite),
        ]

    # -- handlers -----------------------------------------------------------------------------

    async def _syncs(self, viewer: Viewer) -> list[str]:
        return await asyncio.to_thread(team_syncs, self.services.sessions, viewer.team_id)

    def _open(self, build: Callable[[list[str]], Block]) -> ClickHandler:
        async def handle(click: Click) -> None:
            if self._federation() is None:
                await click.refuse()
                return
            syncs = await self._syncs(click.viewer)
            await click.open(
                build(syncs)
                if syncs
                else notice_view("Federation", "Sync a channel first: a peer joins a sync.")
            )

        return handle

    async def _checked(self, form: Form) -> tuple[Federation, str] | None:
        """The service and the chosen sync of a submission, or None (answered)."""
        federation = self._federation()
        if federation is None:
            await form.refuse()
            return None
        sync = form.choice("sync") or ""
        if sync not in await self._syncs(form.viewer):
            await form.error("sync", "Pick a sync this workspace takes part in.")
            return None
        return federation, sync

    async def _invite(self, form: Form) -> None:
        checked = await self._checked(form)
        if checked is None:
            return
        federation, sync = checked
        try:
            code = await asyncio.to_thread(federation.invite, sync)
        except SyncbotError as exc:
            await form.error("sync", str(exc))
            return
        log.info("pairing code created", extra={"team": form.viewer.team_id, "sync": sync})
        await form.update(
            notice_view(
                "Pairing code",
                f"Send this code to the other instance's admin to join *{mrkdwn.escape(sync)}*"
                f":\n```{code}```",
            )
        )

    async def _connect(self, form: Form) -> None:
        checked = await self._checked(form)
        if checked is None:
            return
        federation, sync = checked
        viewer = form.viewer
        code = form.text("code")
        if not code.strip():
            await form.error("code", "Paste the pairing code.")
            return

        async def work() -> Block:
            try:
                peer = await connect(federation, code, sync)
            except SyncbotError as exc:  # refused, malformed, unreachable
                log.info("pairing failed", extra={"team": viewer.team_id, "error": str(exc)})
                return notice_view("Not connected", f"Pairing failed: {mrkdwn.escape(str(exc))}")
            log.info("peer connected", extra={"team": viewer.team_id, "peer": peer})
            await refresh_after_change(self.home, self.services.sessions, viewer, [sync])
            return notice_view(
                "Connected",
                f"Peer `{mrkdwn.escape(peer)}` now takes part in *{mrkdwn.escape(sync)}*.",
            )

        # The peer may take up to its 15 s timeout; Slack waits 3 s for the answer.
        pending = notice_view("Connecting…", "Asking the peer to pair…")
        await form.answer_in_time(work(), pending=pending, what="connect")

    async def _remove(self, click: Click) -> None:
        viewer = click.viewer
        federation = self._federation()
        if federation is None:
            await click.refuse()
            return
        instance = click.value
        lines = await asyncio.to_thread(self._peer_lines, federation, viewer)
        line = next((x for x in lines if x.peer.instance_id == instance), None)
        if line is None or not line.removable:
            log.warning("peer removal outside the workspace's syncs refused")
            await click.refuse(NOT_YOURS)
            return
        try:
            await asyncio.to_thread(federation.remove, instance)
        except SyncbotError as exc:
            log.info("peer removal failed", extra={"error": str(exc)})
            return
        log.info("peer removed", extra={"team": viewer.team_id, "peer": instance})
        # Only the peer's endpoints left the syncs: their Slack workspaces stay the same.
        await refresh_after_change(self.home, self.services.sessions, viewer, list(line.syncs))
