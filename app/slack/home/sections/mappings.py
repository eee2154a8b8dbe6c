"""App Home: how people of the other workspaces of this workspace's syncs are mentioned here.

A row is one person of another workspace (from the directory) and who they are here: found by
e-mail, by unique name, not found, not looked up yet, or set by an admin. An admin's override is
a ``manual`` mapping: it never expires and matching never replaces it (see
:class:`app.slack.mentions.MentionMapper`), so the next delivered mention uses it. Clearing an
override deletes the row, and the next mention is matched afresh.

Workspaces can have thousands of people, so the home tab shows a few rows and a browser modal
pages through the rest with a name search; the modal carries its page in ``private_metadata``,
so nothing about it is kept in this process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from app.errors import SyncbotError
from app.services import Services
from app.slack import mrkdwn
from app.slack.home.section import Block, HomeRefresher, Viewer
from app.slack.home.sections.access import REFUSED, admin_or_refuse, admin_viewer, call_slack
from app.slack.home.sections.blocks import context, header, metadata, plain_text
from app.slack.profiles import normalize_name
from app.store.mappings import MappingDirectory, MappingPage, MappingRow

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

log = logging.getLogger("syncbot.slack.home.mappings")

HOME_ROWS = 10  # the home tab is shared by every section (100 blocks in all)
PAGE_ROWS = 20
OPEN_BROWSER = "home.mappings.browse"
ROW_MENU = "home.mappings.row"
PAGE = "home.mappings.page"
BROWSER_VIEW = "home.mappings.browser"
OVERRIDE_VIEW = "home.mappings.override"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,31}$")
_TEAM_ID = re.compile(r"^T[A-Z0-9]{1,31}$")

METHOD_LABEL = {
    "manual": "override",
    "email": "e-mail",
    "name": "name",
    "none": "unmapped",
    None: "not matched yet",
}


# --- rendering -------------------------------------------------------------------------------


def _describe(row: MappingRow) -> str:
    who = f"*{mrkdwn.escape(row.name)}* ({mrkdwn.escape(row.remote_workspace)})"
    if row.method is None:
        target = "_not matched yet: looked up on their first mention_"
    elif row.local_user:
        target = f"<@{row.local_user}>"
    else:
        target = "_nobody: mentions show their name_"
    method = METHOD_LABEL.get(row.method, row.method or "")
    if row.method == "manual":
        until = "never expires"
    elif row.expires_at is not None:
        stamp = int(row.expires_at.timestamp())
        fallback = row.expires_at.strftime("%Y-%m-%d")
        verb = "expired" if row.expired else "until"
        until = f"{verb} <!date^{stamp}^{{date_short}}|{fallback}>"
    else:
        until = ""
    detail = " · ".join(p for p in (method, until) if p)
    return f"{who} → {target}\n{detail}"


def _row_block(row: MappingRow, index: int) -> Block:
    ref = f"{row.remote_team}|{row.remote_user}"
    accessory: Block
    if row.method == "manual":
        # An overflow menu needs two options at least; only an override has two.
        accessory = {
            "type": "overflow",
            "action_id": ROW_MENU,
            "options": [
                {"text": plain_text("Change override…"), "value": f"override|{ref}"},
                {"text": plain_text("Clear override"), "value": f"clear|{ref}"},
            ],
        }
    else:
        accessory = {
            "type": "button",
            "action_id": ROW_MENU,
            "text": plain_text("Override…"),
            "value": f"override|{ref}",
        }
    return {
        "type": "section",
        "block_id": f"home.mappings.row.{index}",
        "text": {"type": "mrkdwn", "text": _describe(row)},
        "accessory": accessory,
    }


def _summary_line(name: str, counts: dict[str | None, int]) -> str:
    parts = [
        f"{counts[m]} {METHOD_LABEL[m]}"
        for m in ("email", "name", "manual", "none", None)
        if counts.get(m)
    ]
    return f"*{mrkdwn.escape(name)}*: " + (", ".join(parts) or "nobody seen yet")


def browser_view(page: MappingPage) -> Block:
    blocks: list[Block] = [
        {
            "type": "input",
            "block_id": "search",
            "optional": True,
            "label": plain_text("Search by name"),
            "element": {
                "type": "plain_text_input",
                "action_id": "query",
                "placeholder": plain_text("Name or user id"),
                **({"initial_value": page.query} if page.query else {}),
            },
        }
    ]
    if page.total:
        last = page.offset + len(page.rows)
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"{page.offset + 1}-{last} of {page.total}"}
                ],
            }
        )
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "_Nobody matches._"}})
    blocks += [_row_block(row, i) for i, row in enumerate(page.rows)]
    nav = []
    if page.offset > 0:
        nav.append(
            {
                "type": "button",
                "action_id": f"{PAGE}.prev",
                "text": plain_text("Previous"),
                "value": str(max(0, page.offset - PAGE_ROWS)),
            }
        )
    if page.offset + len(page.rows) < page.total:
        nav.append(
            {
                "type": "button",
                "action_id": f"{PAGE}.next",
                "text": plain_text("Next"),
                "value": str(page.offset + PAGE_ROWS),
            }
        )
    if nav:
        blocks.append({"type": "actions", "block_id": "nav", "elements": nav})
    return {
        "type": "modal",
        "callback_id": BROWSER_VIEW,
        "title": plain_text("People mapping"),
        "submit": plain_text("Search"),
        "close": plain_text("Done"),
        "private_metadata": json.dumps({"q": page.query, "o": page.offset}),
        "blocks": blocks,
    }


def override_view(row: MappingRow, browser: dict[str, Any] | None = None) -> Block:
    """The override modal; ``browser`` is the browser modal it was pushed from (id, page)."""
    element: dict[str, Any] = {
        "type": "users_select",
        "action_id": "user",
        "placeholder": plain_text("Pick a person of this workspace"),
    }
    if row.method == "manual" and row.local_user:
        element["initial_user"] = row.local_user
    who = f"*{mrkdwn.escape(row.name)}* of *{mrkdwn.escape(row.remote_workspace)}*"
    return {
        "type": "modal",
        "callback_id": OVERRIDE_VIEW,
        "title": plain_text("Override mapping"),
        "submit": plain_text("Save"),
        "close": plain_text("Cancel"),
        "private_metadata": json.dumps({"t": row.remote_team, "u": row.remote_user, "b": browser}),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Who is {who} in this workspace? Their mentions will mention "
                    "the person you pick, from the next message on.",
                },
            },
            {
                "type": "input",
                "block_id": "local",
                "optional": True,
                "label": plain_text("Person here"),
                "hint": plain_text(
                    "Leave empty to never link them (their name is shown). Overrides never "
                    "expire; clear one to go back to e-mail and name matching."
                ),
                "element": element,
            },
        ],
    }


# --- the section ----------------------------------------------------------------------------


class MappingsSection:
    key = "mappings"

    def __init__(self, services: Services) -> None:
        self._services = services
        self.directory = MappingDirectory(services.sessions, normalize=normalize_name)

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin

    async def blocks(self, viewer: Viewer) -> list[Block]:
        summary = await asyncio.to_thread(self.directory.summary, viewer.team_id)
        blocks: list[Block] = [
            header("People across workspaces"),
            context(
                "Who a mention of someone from another workspace of your syncs becomes here. "
                "Matched by e-mail, then by unique name; an override you set wins and never "
                "expires."
            ),
        ]
        if not summary:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "_No one from another workspace yet: people appear here once "
                        "they post or are mentioned in a sync._",
                    },
                }
            )
            return blocks
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "\n".join(_summary_line(n, c) for n, c in summary[:10]),
                },
            }
        )
        page = await asyncio.to_thread(self.directory.page, viewer.team_id, limit=HOME_ROWS)
        blocks += [_row_block(row, i) for i, row in enumerate(page.rows)]
        blocks.append(
            {
                "type": "actions",
                "block_id": "home.mappings.more",
                "elements": [
                    {
                        "type": "button",
                        "action_id": OPEN_BROWSER,
                        "text": plain_text(f"Search or see all ({page.total})"),
                    }
                ],
            }
        )
        return blocks

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        bolt.action(OPEN_BROWSER)(self._open_browser)
        bolt.action(re.compile(rf"^{re.escape(PAGE)}\."))(self._turn_page)
        bolt.action(ROW_MENU)(self._row_menu(home))
        bolt.view(BROWSER_VIEW)(self._search)
        bolt.view(OVERRIDE_VIEW)(self._save_override(home))

    # -- handlers -----------------------------------------------------------------------------

    async def _open_browser(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        viewer = await admin_or_refuse(self._services, body, context)
        if viewer is None:
            return
        page = await asyncio.to_thread(self.directory.page, viewer.team_id, limit=PAGE_ROWS)
        await call_slack(
            self._services,
            viewer,
            "views.open",
            trigger_id=body["trigger_id"],
            view=browser_view(page),
        )

    async def _turn_page(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        viewer = await admin_or_refuse(self._services, body, context)
        if viewer is None:
            return
        view = body.get("view") or {}
        state = metadata(view)
        offset = _int(body["actions"][0].get("value"))
        await self._update_browser(viewer, str(view.get("id")), str(state.get("q") or ""), offset)

    async def _update_browser(self, viewer: Viewer, view_id: str, query: str, offset: int) -> None:
        page = await asyncio.to_thread(
            self.directory.page, viewer.team_id, query=query, offset=offset, limit=PAGE_ROWS
        )
        await call_slack(
            self._services, viewer, "views.update", view_id=view_id, view=browser_view(page)
        )

    async def _search(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        viewer = admin_viewer(context)
        if viewer is None:
            await ack(response_action="errors", errors={"search": REFUSED})
            return
        values = (body.get("view") or {}).get("state", {}).get("values", {})
        query = str(((values.get("search") or {}).get("query") or {}).get("value") or "")
        page = await asyncio.to_thread(
            self.directory.page, viewer.team_id, query=query, limit=PAGE_ROWS
        )
        await ack(response_action="update", view=browser_view(page))

    def _row_menu(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            viewer = await admin_or_refuse(self._services, body, context)
            if viewer is None:
                return
            action = body["actions"][0]
            chosen = (action.get("selected_option") or {}).get("value") or action.get("value")
            verb, team, user = _parse_ref(chosen)
            if verb is None or not await asyncio.to_thread(
                self.directory.shares_sync, viewer.team_id, team
            ):
                log.warning("mapping action for an unrelated person refused")
                return
            view = body.get("view") or {}
            in_modal = view.get("type") == "modal"
            if verb == "override":
                row = await asyncio.to_thread(self.directory.person, viewer.team_id, team, user)
                if row is None:
                    return
                browser = {"id": view["id"], **metadata(view)} if in_modal else None
                modal = override_view(row, browser)
                method = "views.push" if in_modal else "views.open"
                await call_slack(
                    self._services, viewer, method, trigger_id=body["trigger_id"], view=modal
                )
                return
            await asyncio.to_thread(self.directory.clear, viewer.team_id, team, user)
            log.info("mapping override cleared", extra={"team": viewer.team_id})
            if in_modal:
                state = metadata(view)
                await self._update_browser(
                    viewer, str(view["id"]), str(state.get("q") or ""), _int(state.get("o"))
                )
            await home.refresh(viewer)

        return handler

    def _save_override(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            viewer = admin_viewer(context)
            if viewer is None:
                await ack(response_action="errors", errors={"local": REFUSED})
                return
            view = body.get("view") or {}
            meta = metadata(view)
            team, user = str(meta.get("t") or ""), str(meta.get("u") or "")
            values = (view.get("state") or {}).get("values") or {}
            chosen = ((values.get("local") or {}).get("user") or {}).get("selected_user")
            if chosen is not None and not _USER_ID.match(str(chosen)):
                await ack(response_action="errors", errors={"local": "Pick a person."})
                return
            if (
                not _TEAM_ID.match(team)
                or not _USER_ID.match(user)
                or not await asyncio.to_thread(self.directory.shares_sync, viewer.team_id, team)
            ):
                await ack(
                    response_action="errors",
                    errors={"local": "That workspace no longer shares a sync with this one."},
                )
                return
            # Stored before the modal closes, so a failure shows in the modal, not nowhere.
            await asyncio.to_thread(
                self._services.slack.mentions.set_manual, team, user, viewer.team_id, chosen
            )
            await ack()
            log.info("mapping override set", extra={"team": viewer.team_id})
            browser = meta.get("b")
            if isinstance(browser, dict) and browser.get("id"):
                try:
                    await self._update_browser(
                        viewer,
                        str(browser["id"]),
                        str(browser.get("q") or ""),
                        _int(browser.get("o")),
                    )
                except SyncbotError:
                    log.info("mapping browser closed before it could be updated")
            await home.refresh(viewer)

        return handler


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _parse_ref(value: Any) -> tuple[str | None, str, str]:
    verb, _, rest = str(value or "").partition("|")
    team, _, user = rest.partition("|")
    if verb not in ("override", "clear") or not _TEAM_ID.match(team) or not _USER_ID.match(user):
        return None, "", ""
    return verb, team, user
