"""Home section "Workspace groups": create one, join by code, invite, accept/decline, leave.

The kit refuses non-admins before these handlers run; the store checks that the acting
workspace may do what the (replayable) payload asks, and its :class:`GroupError` says why not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from app.slack.home.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    modal,
    mrkdwn,
    option,
    select_input,
    text_input,
)
from app.slack.home.kit import Click, ClickHandler, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
from app.store.groups import MAX_GROUP_NAME, GroupError, Groups, GroupView

if TYPE_CHECKING:
    from app.services import Services

CREATE = "home.groups.create"
JOIN = "home.groups.join"
INVITE = "home.groups.invite"
ACCEPT = "home.groups.accept"
DECLINE = "home.groups.decline"
LEAVE = "home.groups.leave"


def as_id(value: Any) -> int:
    """A numeric id from a button value or modal metadata; a bad one is a user error."""
    try:
        return int(str(value))
    except ValueError:
        raise GroupError("that button is out of date; refresh the home tab") from None


class GroupsSection(Section):
    key = "groups"
    explains = (GroupError,)

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._groups = Groups(services.sessions)

    async def blocks(self, viewer: Viewer) -> list[Block]:
        out: list[Block] = [
            mrkdwn(
                "*Workspace groups*\nWorkspaces in a group can publish channels to each other.",
                "home.groups.intro",
            ),
            actions(
                "home.groups.tools",
                button("Create a group", CREATE, style="primary"),
                button("Join with a code", JOIN),
            ),
        ]
        for group in await asyncio.to_thread(self._groups.groups_of, viewer.team_id):
            out.extend(_group_blocks(group))
        return out

    def routes(self) -> Iterable[Route]:
        groups = self._groups
        return [
            OnClick(CREATE, self._open_create),
            OnSubmit(CREATE, self._create, field="name"),
            OnClick(JOIN, self._open_join),
            OnSubmit(JOIN, self._join, field="code"),
            OnClick(INVITE, self._open_invite),
            OnSubmit(INVITE, self._invite, field="workspace"),
            OnClick(ACCEPT, self._membership_change(groups.accept)),
            OnClick(DECLINE, self._membership_change(groups.decline)),
            OnClick(LEAVE, self._membership_change(groups.leave)),
        ]

    async def _open_create(self, click: Click) -> None:
        field = text_input("name", "Group name", max_length=MAX_GROUP_NAME)
        await click.open(modal(CREATE, "Create a group", [field], submit="Create"))

    async def _create(self, form: Form) -> None:
        await asyncio.to_thread(self._groups.create, form.viewer.team_id, form.text("name"))
        await form.close()
        await self.changed(form.viewer, [form.viewer.team_id])

    async def _open_join(self, click: Click) -> None:
        field = text_input("code", "Invite code", max_length=16, placeholder="ABCD-EFGH")
        await click.open(modal(JOIN, "Join a group", [field], submit="Join"))

    async def _join(self, form: Form) -> None:
        group = await asyncio.to_thread(self._groups.join, form.viewer.team_id, form.text("code"))
        await form.close()
        await self.changed(form.viewer, [m.team_id for m in group.members])

    async def _open_invite(self, click: Click) -> None:
        group_id = as_id(click.value)
        present = await asyncio.to_thread(self._groups.teams_of_group, group_id)
        if click.viewer.team_id not in present:
            raise GroupError("your workspace is not a member of that group")
        known = await asyncio.to_thread(self._groups.known_workspaces)
        candidates = [(team, name) for team, name in known if team not in present]
        if not candidates:
            raise GroupError(
                "Every workspace syncbot is installed in is in this group already. Another "
                "workspace can join with the group's invite code once it has installed syncbot."
            )
        options = [option(f"{name} ({team})", team) for team, name in candidates[:100]]
        view = modal(
            INVITE,
            "Invite a workspace",
            [select_input("workspace", "Workspace", options)],
            submit="Invite",
            metadata={"group": group_id},
        )
        await click.open(view)

    async def _invite(self, form: Form) -> None:
        group_id = as_id(form.metadata.get("group"))
        invitee = str(form.choice("workspace"))
        await asyncio.to_thread(self._groups.invite, group_id, form.viewer.team_id, invitee)
        teams = await asyncio.to_thread(self._groups.teams_of_group, group_id)
        await form.close()
        await self.changed(form.viewer, teams)

    def _membership_change(self, change: Callable[[int, str], object]) -> ClickHandler:
        async def handle(click: Click) -> None:
            group_id = as_id(click.value)
            team = click.viewer.team_id
            before = await asyncio.to_thread(self._groups.teams_of_group, group_id)
            await asyncio.to_thread(change, group_id, team)
            await self.changed(click.viewer, before | {team})

        return handle


def _group_blocks(group: GroupView) -> list[Block]:
    if group.my_status == "invited":
        inviter = group.invited_by or "A workspace"
        return [
            mrkdwn(f":envelope: *{inviter}* invited this workspace to the group *{group.name}*."),
            actions(
                f"home.groups.invitation.{group.id}",
                button("Accept", ACCEPT, str(group.id), style="primary"),
                button("Decline", DECLINE, str(group.id)),
            ),
        ]
    members = ", ".join(
        m.name if m.status == "active" else f"{m.name} _(invited)_" for m in group.members
    )
    return [
        mrkdwn(f"*{group.name}*\nMembers: {members}", f"home.groups.group.{group.id}"),
        context(
            f"Invite code: `{group.invite_code}` — give it to the admin of a workspace that "
            "should join."
        ),
        actions(
            f"home.groups.manage.{group.id}",
            button("Invite a workspace", INVITE, str(group.id)),
            button(
                "Leave group",
                LEAVE,
                str(group.id),
                style="danger",
                confirm=confirm_dialog(
                    f"Leave {group.name}?",
                    "Your channels stop syncing with this group's workspaces.",
                ),
            ),
        ),
    ]
