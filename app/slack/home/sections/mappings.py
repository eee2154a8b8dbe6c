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
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.errors import SyncbotError
from app.slack import mrkdwn
from app.slack.home.blocks import (
    Block,
    actions,
    button,
    context,
    header,
    input_block,
    metadata,
    modal,
    option,
    overflow,
    section,
    text_element,
    users_select,
)
from app.slack.home.kit import Click, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
from app.slack.profiles import normalize_name
from app.store.mappings import MappingDirectory, MappingPage, MappingRow

if TYPE_CHECKING:
    from app.services import Services

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
        accessory = overflow(
            ROW_MENU,
            [
                option("Change override…", f"override|{ref}"),
                option("Clear override", f"clear|{ref}"),
            ],
        )
    else:
        accessory = button("Override…", ROW_MENU, f"override|{ref}")
    return section(_describe(row), f"home.mappings.row.{index}", accessory=accessory)


def _summary_line(name: str, counts: dict[str | None, int]) -> str:
    parts = [
        f"{counts[m]} {METHOD_LABEL[m]}"
        for m in ("email", "name", "manual", "none", None)
        if counts.get(m)
    ]
    return f"*{mrkdwn.escape(name)}*: " + (", ".join(parts) or "nobody seen yet")


def browser_view(page: MappingPage) -> Block:
    search = text_element(action_id="query", placeholder="Name or user id", initial=page.query)
    blocks: list[Block] = [input_block("search", "Search by name", search, optional=True)]
    if page.total:
        blocks.append(context(f"{page.offset + 1}-{page.offset + len(page.rows)} of {page.total}"))
    else:
        blocks.append(section("_Nobody matches._"))
    blocks += [_row_block(row, i) for i, row in enumerate(page.rows)]
    nav = []
    if page.offset > 0:
        nav.append(button("Previous", f"{PAGE}.prev", str(max(0, page.offset - PAGE_ROWS))))
    if page.offset + len(page.rows) < page.total:
        nav.append(button("Next", f"{PAGE}.next", str(page.offset + PAGE_ROWS)))
    if nav:
        blocks.append(actions("nav", *nav))
    return modal(
        BROWSER_VIEW,
        "People mapping",
        blocks,
        submit="Search",
        close="Done",
        metadata={"q": page.query, "o": page.offset},
    )


def override_view(row: MappingRow, browser: dict[str, Any] | None = None) -> Block:
    """The override modal; ``browser`` is the browser modal it was pushed from (id, page)."""
    picker = users_select(
        action_id="user",
        placeholder="Pick a person of this workspace",
        initial_user=row.local_user if row.method == "manual" else None,
    )
    who = f"*{mrkdwn.escape(row.name)}* of *{mrkdwn.escape(row.remote_workspace)}*"
    return modal(
        OVERRIDE_VIEW,
        "Override mapping",
        [
            section(
                f"Who is {who} in this workspace? Their mentions will mention the person you "
                "pick, from the next message on."
            ),
            input_block(
                "local",
                "Person here",
                picker,
                optional=True,
                hint="Leave empty to never link them (their name is shown). Overrides never "
                "expire; clear one to go back to e-mail and name matching.",
            ),
        ],
        submit="Save",
        metadata={"t": row.remote_team, "u": row.remote_user, "b": browser},
    )


# --- the section ----------------------------------------------------------------------------


class MappingsSection(Section):
    key = "mappings"

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.directory = MappingDirectory(services.sessions, normalize=normalize_name)

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
                section(
                    "_No one from another workspace yet: people appear here once they post or "
                    "are mentioned in a sync._"
                )
            )
            return blocks
        blocks.append(section("\n".join(_summary_line(n, c) for n, c in summary[:10])))
        page = await asyncio.to_thread(self.directory.page, viewer.team_id, limit=HOME_ROWS)
        blocks += [_row_block(row, i) for i, row in enumerate(page.rows)]
        blocks.append(
            actions(
                "home.mappings.more", button(f"Search or see all ({page.total})", OPEN_BROWSER)
            )
        )
        return blocks

    def routes(self) -> Iterable[Route]:
        return [
            OnClick(OPEN_BROWSER, self._open_browser),
            OnClick(re.compile(rf"^{re.escape(PAGE)}\."), self._turn_page),
            OnClick(ROW_MENU, self._row_menu),
            OnSubmit(BROWSER_VIEW, self._search, field="search"),
            OnSubmit(OVERRIDE_VIEW, self._save_override, field="local"),
        ]

    async def _page(self, viewer: Viewer, query: str = "", offset: int = 0) -> MappingPage:
        return await asyncio.to_thread(
            self.directory.page, viewer.team_id, query=query, offset=offset, limit=PAGE_ROWS
        )

    async def _open_browser(self, click: Click) -> None:
        await click.open(browser_view(await self._page(click.viewer)))

    async def _turn_page(self, click: Click) -> None:
        state = metadata(dict(click.view))
        view_id = str(click.view.get("id"))
        await self._update_browser(
            click.viewer, view_id, str(state.get("q") or ""), _int(click.value)
        )

    async def _update_browser(self, viewer: Viewer, view_id: str, query: str, offset: int) -> None:
        page = await self._page(viewer, query, offset)
        await self.api(viewer).call("views.update", view_id=view_id, view=browser_view(page))

    async def _search(self, form: Form) -> None:
        await form.update(browser_view(await self._page(form.viewer, form.text("search"))))

    async def _row_menu(self, click: Click) -> None:
        viewer = click.viewer
        verb, team, user = _parse_ref(click.value)
        if verb is None or not await asyncio.to_thread(
            self.directory.shares_sync, viewer.team_id, team
        ):
            log.warning("mapping action for an unrelated person refused")
            return
        view = dict(click.view)
        if verb == "override":
            row = await asyncio.to_thread(self.directory.person, viewer.team_id, team, user)
            if row is None:
                return
            if click.in_modal:
                await click.push(override_view(row, {"id": view["id"], **metadata(view)}))
            else:
                await click.open(override_view(row))
            return
        await asyncio.to_thread(self.directory.clear, viewer.team_id, team, user)
        log.info("mapping override cleared", extra={"team": viewer.team_id})
        if click.in_modal:
            state = metadata(view)
            await self._update_browser(
                viewer, str(view["id"]), str(state.get("q") or ""), _int(state.get("o"))
            )
        await self.home.refresh(viewer)

    async def _save_override(self, form: Form) -> None:
        viewer = form.viewer
        meta = form.metadata
        team, user = str(meta.get("t") or ""), str(meta.get("u") or "")
        chosen = form.state("local").get("selected_user")
        if chosen is not None and not _USER_ID.match(str(chosen)):
            await form.error("local", "Pick a person.")
            return
        if (
            not _TEAM_ID.match(team)
            or not _USER_ID.match(user)
            or not await asyncio.to_thread(self.directory.shares_sync, viewer.team_id, team)
        ):
            await form.error("local", "That workspace no longer shares a sync with this one.")
            return
        # Stored before the modal closes, so a failure shows in the modal, not nowhere.
        await asyncio.to_thread(
            self.services.slack.mentions.set_manual, team, user, viewer.team_id, chosen
        )
        await form.close()
        log.info("mapping override set", extra={"team": viewer.team_id})
        browser = meta.get("b")
        if isinstance(browser, dict) and browser.get("id"):
            try:
                await self._update_browser(
                    viewer, str(browser["id"]), str(browser.get("q") or ""), _int(browser.get("o"))
                )
            except SyncbotError:
                log.info("mapping browser closed before it could be updated")
        await self.home.refresh(viewer)


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
