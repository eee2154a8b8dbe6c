"""Home section "Workspace groups": create one, join by code, invite, accept/decline, leave.

The shell has refused non-admins before these handlers run; the store checks that the acting
workspace may do what the (replayable) payload asks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from app.errors import RemoteError
from app.slack.home.section import Block, HomeRefresher, Viewer, notice_view, viewer_of
from app.slack.home.sections.access import actor_team
from app.slack.home.sections.blocks import (
    actions,
    button,
    context,
    metadata,
    modal,
    mrkdwn,
    option,
    select_input,
    submitted,
    text_input,
)
from app.slack.workspaces import UnknownWorkspace
from app.store.groups import MAX_GROUP_NAME, GroupError, Groups, GroupView

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from app.services import Services
    from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.slack.home.groups")

CREATE = "home.groups.create"
JOIN = "home.groups.join"
INVITE = "home.groups.invite"
ACCEPT = "home.groups.accept"
DECLINE = "home.groups.decline"
LEAVE = "home.groups.leave"


# --- click and modal helpers shared with the channels section -------------------------------


def as_id(value: Any) -> int:
    """A numeric id from a button value or modal metadata; a bad one is a user error."""
    try:
        return int(str(value))
    except ValueError:
        raise GroupError("that button is out of date; refresh the home tab") from None


async def show(workspaces: Workspaces, body: dict[str, Any], view: Block) -> None:
    """Open ``view`` as a modal for the click in ``body``.

    A modal that cannot be opened (the trigger expired after 3 s, Slack is down) only gets
    logged: the click changed nothing yet, and it can simply be repeated.
    """
    try:
        await workspaces.api(actor_team(body)).call(
            "views.open", trigger_id=body.get("trigger_id"), view=view
        )
    except (RemoteError, UnknownWorkspace) as exc:
        log.warning("could not open a modal", extra={"error": str(exc)})


async def explain(workspaces: Workspaces, body: dict[str, Any], error: Exception) -> None:
    """Tell the person who clicked why nothing happened (a modal; the click has no other reply)."""
    await show(workspaces, body, notice_view("Not done", str(error)))


async def settle_submission(
    ack: Any, home: HomeRefresher, viewer: Viewer, field: str, work: Awaitable[Iterable[str]]
) -> None:
    """Answer a modal submission with the outcome of ``work``.

    A :class:`GroupError` is shown on the input ``field`` and the modal stays open; otherwise
    the modal closes, the workspaces ``work`` returns (whose homes it changed) are touched and
    the viewer's home is published again.
    """
    try:
        teams = await work
    except GroupError as exc:
        await ack(response_action="errors", errors={field: str(exc)})
        return
    await ack()
    await asyncio.to_thread(home.touch, *teams)
    await home.refresh(viewer)


def click_handler(
    workspaces: Workspaces,
    home: HomeRefresher,
    act: Callable[[int, Viewer], Awaitable[Iterable[str]]],
) -> Callable[..., Awaitable[None]]:
    """The Bolt handler of a button whose value is an id.

    ``act`` does what the button says, as the checked viewer, and returns the workspaces whose
    homes it changed. A :class:`GroupError` (a bad id too) is explained in a modal; otherwise
    those homes are touched and the viewer's is published again.
    """

    async def handler(
        ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any
    ) -> None:
        await ack()
        viewer = viewer_of(context)
        try:
            teams = await act(as_id(action.get("value")), viewer)
        except GroupError as exc:
            await explain(workspaces, body, exc)
            return
        await asyncio.to_thread(home.touch, *teams)
        await home.refresh(viewer)

    return handler


# --- the section ------------------------------------------------------------------------------


class GroupsSection:
    key = "groups"

    def __init__(self, services: Services) -> None:
        self._groups = Groups(services.sessions)
        self._workspaces = services.slack.workspaces

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin

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

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        workspaces = self._workspaces
        groups = self._groups

        @bolt.action(CREATE)
        async def open_create(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            field = text_input("name", "Group name", max_length=MAX_GROUP_NAME)
            await show(workspaces, body, modal(CREATE, "Create a group", [field], submit="Create"))

        @bolt.view(CREATE)
        async def create(ack: Any, view: dict[str, Any], context: Any) -> None:
            viewer = viewer_of(context)
            name = str(submitted(view, "name").get("value") or "")

            async def work() -> list[str]:
                await asyncio.to_thread(groups.create, viewer.team_id, name)
                return [viewer.team_id]

            await settle_submission(ack, home, viewer, "name", work())

        @bolt.action(JOIN)
        async def open_join(ack: Any, body: dict[str, Any]) -> None:
            await ack()
            field = text_input("code", "Invite code", max_length=16, placeholder="ABCD-EFGH")
            await show(workspaces, body, modal(JOIN, "Join a group", [field], submit="Join"))

        @bolt.view(JOIN)
        async def join(ack: Any, view: dict[str, Any], context: Any) -> None:
            viewer = viewer_of(context)
            code = str(submitted(view, "code").get("value") or "")

            async def work() -> list[str]:
                group = await asyncio.to_thread(groups.join, viewer.team_id, code)
                return [m.team_id for m in group.members]

            await settle_submission(ack, home, viewer, "code", work())

        @bolt.action(INVITE)
        async def open_invite(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            viewer = actor_team(body)
            try:
                group_id = as_id(action.get("value"))
                present = await asyncio.to_thread(groups.teams_of_group, group_id)
                if viewer not in present:
                    raise GroupError("your workspace is not a member of that group")
                known = await asyncio.to_thread(groups.known_workspaces)
                candidates = [(team, name) for team, name in known if team not in present]
                if not candidates:
                    raise GroupError(
                        "Every workspace syncbot is installed in is in this group already. "
                        "Another workspace can join with the group's invite code once it has "
                        "installed syncbot."
                    )
            except GroupError as exc:
                await explain(workspaces, body, exc)
                return
            options = [option(f"{name} ({team})", team) for team, name in candidates[:100]]
            field = select_input("workspace", "Workspace", options)
            view = modal(
                INVITE,
                "Invite a workspace",
                [field],
                submit="Invite",
                metadata={"group": group_id},
            )
            await show(workspaces, body, view)

        @bolt.view(INVITE)
        async def invite(ack: Any, view: dict[str, Any], context: Any) -> None:
            viewer = viewer_of(context)
            invitee = str((submitted(view, "workspace").get("selected_option") or {}).get("value"))

            async def work() -> set[str]:
                group_id = as_id(metadata(view).get("group"))
                await asyncio.to_thread(groups.invite, group_id, viewer.team_id, invitee)
                return await asyncio.to_thread(groups.teams_of_group, group_id)

            await settle_submission(ack, home, viewer, "workspace", work())

        def membership_change(change: Any) -> Any:
            async def act(group_id: int, viewer: Viewer) -> set[str]:
                before = await asyncio.to_thread(groups.teams_of_group, group_id)
                await asyncio.to_thread(change, group_id, viewer.team_id)
                return before | {viewer.team_id}

            return click_handler(workspaces, home, act)

        bolt.action(ACCEPT)(membership_change(groups.accept))
        bolt.action(DECLINE)(membership_change(groups.decline))
        bolt.action(LEAVE)(membership_change(groups.leave))


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
                confirm=(
                    f"Leave {group.name}?",
                    "Your channels stop syncing with this group's workspaces.",
                ),
            ),
        ),
    ]
