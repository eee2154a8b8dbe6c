"""Plugging the Matrix bridge into the runtime: routes, a worker, a maintenance task.

Call :func:`attach_matrix` after :func:`app.services.attach` (and in any order relative to
Socket Mode): workspaces logged in with ``login app`` are handed to the Socket Mode manager
when one is attached by then.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete

from app.core.endpoints import Endpoint
from app.matrix.commands import LoginRequest
from app.matrix.setup import MatrixAdapter, build_matrix
from app.slack.workspaces import WorkspaceInfo
from app.store.models_matrix import MatrixTransaction

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.services import Services

log = logging.getLogger("syncbot.matrix")

# Homeservers replay a transaction until it is acknowledged, within hours at most.
TRANSACTION_RETENTION = timedelta(days=7)


def purge_matrix_transactions(runtime: Runtime) -> int:
    """Forget processed appservice transactions older than the retention."""
    cutoff = datetime.now(UTC) - TRANSACTION_RETENTION
    with runtime.sessions() as s, s.begin():
        result = s.execute(
            delete(MatrixTransaction).where(MatrixTransaction.processed_at < cutoff)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


ARCHIVE_EVENTS = {
    "channel_archive": True,
    "group_archive": True,
    "channel_unarchive": False,
    "group_unarchive": False,
}


def archive_hook(adapter: MatrixAdapter) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """A Slack event hook: a channel's archive/unarchive makes its portal read-only/writable."""

    async def on_event(envelope: dict[str, Any]) -> None:
        event = envelope.get("event") or {}
        archived = ARCHIVE_EVENTS.get(str(event.get("type")))
        channel = event.get("channel")
        team = envelope.get("team_id")
        if archived is None or not isinstance(channel, str) or not team:
            return
        try:
            await adapter.portals.set_archived(Endpoint.slack(str(team), channel), archived)
        except Exception:
            # The relay still pauses/resumes the endpoint; the room state catches up later.
            log.warning("portal archive state not updated", exc_info=True)

    return on_event


def wire_slack(adapter: MatrixAdapter, services: Services) -> None:
    """Connect the bridge to the Slack side: Socket Mode on login, hooks on Slack events.

    The hooks go on the HTTP events path and on Socket Mode's (one object when both exist);
    the workspace bridge's hook comes last, as it may ask Slack to redeliver an event whose
    portal is still being created.
    """

    async def start_socket_mode(info: WorkspaceInfo, request: LoginRequest) -> None:
        # First among the login hooks: the seed connects Socket Mode, then syncs.
        manager = services.extras.get("socket_mode")
        if manager is not None:
            await manager.connect(info.team_id)

    adapter.on_login.insert(0, start_socket_mode)
    hooks = [archive_hook(adapter)]
    if adapter.workspace_bridge is not None:
        hooks.append(adapter.workspace_bridge.on_slack_event)
    services.slack.events.event_hooks.extend(hooks)


def attach_matrix(runtime: Runtime) -> MatrixAdapter | None:
    """Build the bridge for ``runtime`` when the Matrix settings are complete.

    Returns:
        The adapter (also in ``services.extras["matrix"]``), or None when the bridge is off.
    """
    if not runtime.settings.matrix_enabled:
        return None
    services = runtime.services
    adapter = build_matrix(
        settings=runtime.settings,
        sessions=services.sessions,
        cipher=services.cipher,
        relay=services.relay,
        outbox=services.outbox,
        dispatcher=services.dispatcher,
        authors=services.authors,
        slack=services.slack,
    )

    wire_slack(adapter, services)
    services.extras["matrix"] = adapter
    runtime.add_routes(*adapter.routes)
    runtime.add_worker(adapter)
    runtime.add_maintenance(purge_matrix_transactions)
    log.info("matrix bridge attached", extra={"server": adapter.ids.server_name})
    return adapter
