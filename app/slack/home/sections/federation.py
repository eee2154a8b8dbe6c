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
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from app.errors import SyncbotError
from app.federation import signing
from app.federation.admin import connect, federation_of
from app.federation.service import PAIRING_TTL, Federation, PeerView
from app.services import Services
from app.slack import mrkdwn
from app.slack.home.section import Block, HomeRefresher, Viewer
from app.slack.home.sections.access import (
    REFUSED,
    Background,
    admin_viewer,
    answer_in_time,
    call_slack,
    modal_updater,
    notice_view,
    refuse,
)
from app.slack.home.sections.blocks import header, plain_text
from app.slack.home.sections.scope import refresh_after_change, team_syncs
from app.store.sync_scope import sync_names_of

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

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


def _sync_select(syncs: list[str]) -> dict[str, Any]:
    return {
        "type": "static_select",
        "action_id": "sync",
        "placeholder": plain_text("One of this workspace's syncs"),
        "options": [
            {"text": plain_text(name[:75]), "value": name[:150]} for name in syncs[:MAX_OPTIONS]
        ],
    }


def connect_view(syncs: list[str]) -> Block:
    return {
        "type": "modal",
        "callback_id": CONNECT_VIEW,
        "title": plain_text("Connect to a peer"),
        "submit": plain_text("Connect"),
        "close": plain_text("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "code",
                "label": plain_text("Pairing code"),
                "hint": plain_text("From `syncbot peer invite` or the other instance's App Home."),
                "element": {"type": "plain_text_input", "action_id": "code", "multiline": True},
            },
            {
                "type": "input",
                "block_id": "sync",
                "label": plain_text("Sync the peer joins"),
                "element": _sync_select(syncs),
            },
        ],
    }


def invite_view(syncs: list[str]) -> Block:
    return {
        "type": "modal",
        "callback_id": INVITE_VIEW,
        "title": plain_text("Invite a peer"),
        "submit": plain_text("Create code"),
        "close": plain_text("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "sync",
                "label": plain_text("Sync to share"),
                "element": _sync_select(syncs),
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "The code works once, within "
                        f"{int(PAIRING_TTL / timedelta(hours=1))} hours. Send it to the other "
                        "instance's admin privately.",
                    }
                ],
            },
        ],
    }


class FederationSection:
    key = "federation"

    def __init__(self, services: Services) -> None:
        self._services = services
        # Pairings still running after their modal was answered (a slow peer).
        self.background = Background()

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self._services.settings.federation_enabled

    def _instance_admin(self, viewer: Viewer) -> bool:
        primary = self._services.settings.primary_workspace
        return viewer.is_admin and bool(primary) and viewer.team_id == primary

    def _federation(self) -> Federation | None:
        try:
            return federation_of(self._services)
        except SyncbotError:
            return None

    def _peer_lines(self, federation: Federation, viewer: Viewer) -> list[PeerLine]:
        """Peers this viewer may see, with the syncs they are in and whether they may remove."""
        mine = set(team_syncs(self._services.sessions, viewer.team_id))
        everything = self._instance_admin(viewer)
        peers = federation.peers()
        endpoints = [e for p in peers for e in p.endpoints]
        sync_of = sync_names_of(self._services.sessions, endpoints)
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
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "_Federation is enabled but not running in this process._",
                    },
                }
            )
            return blocks

        def identity() -> tuple[str, str]:
            return (
                federation.identity.instance_id,
                signing.fingerprint(federation.identity.public_key()),
            )

        instance, fingerprint = await asyncio.to_thread(identity)
        url = federation.public_url or "_not set: SYNCBOT_PUBLIC_URL is needed to pair_"
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*This instance* `{mrkdwn.escape(instance)}`\n"
                    f"Public URL: {mrkdwn.escape(url)}\nKey fingerprint: `{fingerprint}`",
                },
            }
        )
        lines = await asyncio.to_thread(self._peer_lines, federation, viewer)
        for i, line in enumerate(lines[:MAX_PEERS]):
            block: Block = {
                "type": "section",
                "block_id": f"home.federation.peer.{i}",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{mrkdwn.escape(line.peer.instance_id)}* · {line.peer.status}\n"
                    f"{mrkdwn.escape(line.peer.url)}\n"
                    + (
                        "syncs: " + ", ".join(mrkdwn.escape(s) for s in line.syncs)
                        if line.syncs
                        else "_in no sync_"
                    ),
                },
            }
            if line.removable:
                block["accessory"] = {
                    "type": "button",
                    "action_id": REMOVE,
                    "style": "danger",
                    "text": plain_text("Remove"),
                    "value": line.peer.instance_id,
                    "confirm": {
                        "title": plain_text("Remove this peer?"),
                        "text": {
                            "type": "mrkdwn",
                            "text": "It leaves every sync it is in, and its requests are "
                            "refused from now on. Pairing again needs a new code.",
                        },
                        "confirm": plain_text("Remove"),
                        "deny": plain_text("Keep"),
                    },
                }
            blocks.append(block)
        if not lines:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "_No peer takes part in your syncs._"},
                }
            )
        blocks.append(
            {
                "type": "actions",
                "block_id": "home.federation.actions",
                "elements": [
                    {"type": "button", "action_id": OPEN_CONNECT, "text": plain_text("Connect")},
                    {"type": "button", "action_id": OPEN_INVITE, "text": plain_text("Invite")},
                ],
            }
        )
        return blocks

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        bolt.action(OPEN_CONNECT)(self._open(connect_view))
        bolt.action(OPEN_INVITE)(self._open(invite_view))
        bolt.action(REMOVE)(self._remove(home))
        bolt.view(CONNECT_VIEW)(self._connect(home))
        bolt.view(INVITE_VIEW)(self._invite)

    # -- handlers -----------------------------------------------------------------------------

    async def _syncs(self, viewer: Viewer) -> list[str]:
        return await asyncio.to_thread(team_syncs, self._services.sessions, viewer.team_id)

    def _open(self, build: Any) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            viewer = admin_viewer(context)
            if viewer is None or self._federation() is None:
                await refuse(self._services, body)
                return
            syncs = await self._syncs(viewer)
            view = (
                build(syncs)
                if syncs
                else notice_view("Federation", "Sync a channel first: a peer joins a sync.")
            )
            await call_slack(
                self._services, viewer, "views.open", trigger_id=body["trigger_id"], view=view
            )

        return handler

    async def _checked(
        self, ack: Any, body: dict[str, Any], context: Any, field: str
    ) -> tuple[Viewer, Federation, str] | None:
        """The admin, the service and the chosen sync of a submission, or None (answered)."""
        viewer = admin_viewer(context)
        federation = self._federation()
        if viewer is None or federation is None:
            await ack(response_action="errors", errors={field: REFUSED})
            return None
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        chosen = ((values.get("sync") or {}).get("sync") or {}).get("selected_option") or {}
        sync = str(chosen.get("value") or "")
        if sync not in await self._syncs(viewer):
            await ack(
                response_action="errors",
                errors={"sync": "Pick a sync this workspace takes part in."},
            )
            return None
        return viewer, federation, sync

    async def _invite(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        checked = await self._checked(ack, body, context, "sync")
        if checked is None:
            return
        viewer, federation, sync = checked
        try:
            code = await asyncio.to_thread(federation.invite, sync)
        except SyncbotError as exc:
            await ack(response_action="errors", errors={"sync": str(exc)})
            return
        log.info("pairing code created", extra={"team": viewer.team_id, "sync": sync})
        await ack(
            response_action="update",
            view=notice_view(
                "Pairing code",
                f"Send this code to the other instance's admin to join *{mrkdwn.escape(sync)}*"
                f":\n```{code}```",
            ),
        )

    def _connect(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            checked = await self._checked(ack, body, context, "code")
            if checked is None:
                return
            viewer, federation, sync = checked
            values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
            code = str(((values.get("code") or {}).get("code") or {}).get("value") or "")
            if not code.strip():
                await ack(response_action="errors", errors={"code": "Paste the pairing code."})
                return

            async def work() -> Block:
                try:
                    peer = await connect(federation, code, sync)
                except SyncbotError as exc:  # refused, malformed, unreachable
                    log.info("pairing failed", extra={"team": viewer.team_id, "error": str(exc)})
                    return notice_view(
                        "Not connected", f"Pairing failed: {mrkdwn.escape(str(exc))}"
                    )
                log.info("peer connected", extra={"team": viewer.team_id, "peer": peer})
                await refresh_after_change(home, self._services.sessions, viewer, [sync])
                return notice_view(
                    "Connected",
                    f"Peer `{mrkdwn.escape(peer)}` now takes part in *{mrkdwn.escape(sync)}*.",
                )

            # The peer may take up to its 15 s timeout; Slack waits 3 s for the answer.
            pending = notice_view("Connecting…", "Asking the peer to pair…")
            later = modal_updater(
                self._services, viewer, (body.get("view") or {}).get("id"), "connect"
            )
            await answer_in_time(
                ack, work(), pending=pending, later=later, background=self.background
            )

        return handler

    def _remove(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            viewer = admin_viewer(context)
            federation = self._federation()
            if viewer is None or federation is None:
                await refuse(self._services, body)
                return
            instance = str(body["actions"][0].get("value") or "")
            lines = await asyncio.to_thread(self._peer_lines, federation, viewer)
            line = next((x for x in lines if x.peer.instance_id == instance), None)
            if line is None or not line.removable:
                log.warning("peer removal outside the workspace's syncs refused")
                await refuse(self._services, body, NOT_YOURS)
                return
            try:
                await asyncio.to_thread(federation.remove, instance)
            except SyncbotError as exc:
                log.info("peer removal failed", extra={"error": str(exc)})
                return
            log.info("peer removed", extra={"team": viewer.team_id, "peer": instance})
            # Only the peer's endpoints left the syncs: their Slack workspaces stay the same.
            await refresh_after_change(home, self._services.sessions, viewer, list(line.syncs))

        return handler
