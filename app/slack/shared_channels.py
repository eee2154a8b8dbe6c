"""Slack Connect: one channel shared by several installed workspaces is one conversation.

A shared channel keeps its one id in every workspace it is shared with, and an app installed
in more than one of them hears of each event through each installation (the envelope says
``is_ext_shared_channel``; its ``authorizations`` name one installation only:
https://api.slack.com/methods/apps.event.authorizations.list,
https://docs.slack.dev/apis/slack-connect). So:

* the event's claim key is the event itself (channel, type, time, actor), not the delivery's
  ``event_id``, which differs per installation: the second delivery is a duplicate;
* its source is one workspace's view of the channel, chosen the same way for every delivery
  (the first team, in id order, whose view of the channel is in a sync), so edits, deletes and
  reactions find the post whichever installation reports them.

A shared channel logged in from Matrix by several of its workspaces has one portal, kept under
one view: :class:`app.bridge.workspace_bridge.WorkspaceBridge` (``_portal_of``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import SyncEndpoint


def shared_event_key(event: dict[str, Any]) -> str:
    """The claim key of an event in a shared channel: the same from every installation."""
    item = event.get("item") or {}
    channel = event.get("channel") or item.get("channel") or ""
    if isinstance(channel, dict):
        channel = channel.get("id") or ""
    parts = (
        str(channel),
        str(event.get("type") or ""),
        str(event.get("subtype") or ""),
        str(event.get("event_ts") or event.get("ts") or ""),
        str(event.get("reaction") or ""),
        str(event.get("user") or ""),
        str(item.get("ts") or ""),
    )
    return "slack-shared:" + ":".join(parts)


SharedHome = Callable[[str, str], str]


def sync_home(sessions: sessionmaker[Session]) -> SharedHome:
    """``home(team, channel) -> team``: which workspace's view of a shared channel is its
    source (the first one in a sync, by team id; the reporting team when none is)."""

    def home(team: str, channel: str) -> str:
        with sessions() as s:
            endpoints = s.execute(
                select(SyncEndpoint.endpoint).where(
                    SyncEndpoint.network == "slack",
                    SyncEndpoint.endpoint.like(f"slack:%/{channel}"),
                )
            ).scalars()
            teams = sorted(
                e.removeprefix("slack:").partition("/")[0]
                for e in endpoints
                if e.endswith(f"/{channel}")
            )
        return teams[0] if teams else team

    return home
