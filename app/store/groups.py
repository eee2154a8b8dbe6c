"""Workspace groups and published channels, as the App Home offers them.

Every method takes the acting workspace's team id and checks it may act (an active member of
the group, the publisher of the channel, the workspace a direct publication is for): the ids in
Slack payloads come from buttons and modals a user could replay, so nothing else is trusted.

A published channel is a core sync: publishing creates a :class:`Sync` with the publisher's
channel as its first endpoint, subscribing adds an endpoint, pausing sets the endpoint's status,
stopping removes it and unpublishing deletes the sync. Messages then flow through the relay and
the outbox with nothing new.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, EndpointError, Network
from app.errors import SyncbotError
from app.store.models import Sync, SyncEndpoint, Workspace
from app.store.models_groups import (
    GroupJoinFailure,
    GroupMember,
    GroupSync,
    HomeVersion,
    WorkspaceGroup,
)
from app.store.rows import affected

# No 0/O, 1/I: codes are read aloud and typed by hand. 32**8 codes; with 5 tries per
# workspace per 15 minutes a guess is hopeless.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_FAILED_JOINS = 5
JOIN_WINDOW = timedelta(minutes=15)
MAX_GROUP_NAME = 80


class GroupError(SyncbotError):
    """A group or channel operation that cannot be done as asked (the message says why)."""


class JoinLimited(GroupError):
    """Too many wrong invite codes from this workspace lately."""

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(
            f"too many wrong codes from this workspace; try again after {retry_at:%H:%M} UTC"
        )
        self.retry_at = retry_at


@dataclass(frozen=True, slots=True)
class MemberView:
    team_id: str
    name: str
    status: str  # active | invited
    role: str


@dataclass(frozen=True, slots=True)
class GroupView:
    id: int
    name: str
    # Only for the group's active members; None for a workspace that is merely invited.
    invite_code: str | None
    my_status: str  # active | invited
    members: tuple[MemberView, ...]
    invited_by: str | None  # workspace name, for an invitation


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A published channel as one workspace sees it."""

    sync_id: int
    group_id: int
    group_name: str
    channel_name: str
    publisher_team: str | None  # None: the publisher left the group
    publisher_name: str
    direct: bool  # for one workspace only (target_*), else for the whole group
    target_team: str | None  # None for a direct one: the workspace was removed
    target_name: str | None
    mine: bool  # the viewer's workspace published it
    my_endpoint: str | None  # the viewer's channel in the sync (publisher or subscriber)
    my_status: str | None  # active | paused
    subscribers: int  # endpoints other than the publisher's


def normalize_code(raw: str) -> str:
    """``abcd efgh`` / ``ABCD-EFGH`` -> ``ABCD-EFGH`` (empty when it cannot be a code)."""
    chars = "".join(c for c in raw.upper() if c.isalnum())
    if len(chars) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in chars):
        return ""
    return f"{chars[:4]}-{chars[4:]}"


def _channel(team_id: str, channel_id: str) -> Endpoint:
    try:
        return Endpoint.slack(team_id, channel_id)
    except EndpointError:
        raise GroupError(f"{channel_id!r} is not a Slack channel id") from None


def _joined(group_id: int, workspace_id: int, role: str, now: datetime) -> GroupMember:
    """A membership that is active from ``now`` (a creator's, or a joiner's by code)."""
    return GroupMember(
        group_id=group_id,
        workspace_id=workspace_id,
        status="active",
        role=role,
        created_at=now,
        joined_at=now,
    )


def new_code() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


class Groups:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # --- lookups ---------------------------------------------------------------------------

    @staticmethod
    def _workspace(s: Session, team_id: str, *, lock: bool = False) -> Workspace:
        query = select(Workspace).where(Workspace.team_id == team_id, Workspace.status == "active")
        if lock:
            query = query.with_for_update()
        row = s.execute(query).scalar_one_or_none()
        if row is None:
            raise GroupError(f"workspace {team_id} is not installed")
        return row

    @staticmethod
    def _listed_workspace(s: Session, team_id: str) -> Workspace | None:
        """The workspace's row in any status (what it is in is listed even when it may not act,
        unlike :meth:`_workspace`), or None when it is unknown."""
        query = select(Workspace).where(Workspace.team_id == team_id)
        return s.execute(query).scalar_one_or_none()

    @staticmethod
    def _membership(s: Session, group_id: int, workspace_id: int) -> GroupMember | None:
        return s.execute(
            select(GroupMember).where(
                GroupMember.group_id == group_id, GroupMember.workspace_id == workspace_id
            )
        ).scalar_one_or_none()

    def _active_member(self, s: Session, group_id: int, team_id: str) -> Workspace:
        ws = self._workspace(s, team_id)
        member = self._membership(s, group_id, ws.id)
        if member is None or member.status != "active":
            raise GroupError("your workspace is not a member of that group")
        return ws

    @staticmethod
    def _team_ids(s: Session, group_id: int) -> set[str]:
        rows = s.execute(
            select(Workspace.team_id)
            .join(GroupMember, GroupMember.workspace_id == Workspace.id)
            .where(GroupMember.group_id == group_id)
        ).scalars()
        return set(rows)

    def group_of(self, sync_id: int) -> int:
        """The group a published channel is published to."""
        with self._sessions() as s:
            published = s.get(GroupSync, sync_id)
        if published is None:
            raise GroupError("that channel is no longer published to your workspace")
        return published.group_id

    def teams_of_group(self, group_id: int) -> set[str]:
        """Every workspace in the group (active or invited)."""
        with self._sessions() as s:
            return self._team_ids(s, group_id)

    def known_workspaces(self) -> list[tuple[str, str]]:
        """(team id, name) of every installed workspace, to invite one."""
        with self._sessions() as s:
            rows = s.execute(
                select(Workspace.team_id, Workspace.name)
                .where(Workspace.status == "active")
                .order_by(Workspace.name, Workspace.team_id)
            ).all()
        return [(team, name or team) for team, name in rows]

    def groups_of(self, team_id: str) -> list[GroupView]:
        """The groups this workspace is in or invited to, with their members."""
        with self._sessions() as s:
            ws = self._listed_workspace(s, team_id)
            if ws is None:
                return []
            mine = s.execute(
                select(GroupMember, WorkspaceGroup)
                .join(WorkspaceGroup, WorkspaceGroup.id == GroupMember.group_id)
                .where(GroupMember.workspace_id == ws.id)
                .order_by(WorkspaceGroup.name, WorkspaceGroup.id)
            ).all()
            ids = [g.id for _, g in mine]
            members = s.execute(
                select(GroupMember, Workspace.team_id, Workspace.name)
                .join(Workspace, Workspace.id == GroupMember.workspace_id)
                .where(GroupMember.group_id.in_(ids))
                .order_by(GroupMember.id)
            ).all()
            names = dict(s.execute(select(Workspace.id, Workspace.name)).all())
        by_group: dict[int, list[MemberView]] = {}
        for member, team, name in members:
            by_group.setdefault(member.group_id, []).append(
                MemberView(team, name or team, member.status, member.role)
            )
        return [
            GroupView(
                id=group.id,
                name=group.name,
                invite_code=group.invite_code if member.status == "active" else None,
                my_status=member.status,
                members=tuple(by_group.get(group.id, [])),
                invited_by=names.get(member.invited_by_workspace_id)
                if member.invited_by_workspace_id
                else None,
            )
            for member, group in mine
        ]

    # --- groups ----------------------------------------------------------------------------

    def create(self, team_id: str, name: str) -> GroupView:
        name = " ".join(name.split())
        if not name or len(name) > MAX_GROUP_NAME:
            raise GroupError(f"a group name must be 1-{MAX_GROUP_NAME} characters")
        for _ in range(5):
            try:
                with self._sessions() as s, s.begin():
                    ws = self._workspace(s, team_id)
                    group = WorkspaceGroup(
                        name=name, invite_code=new_code(), created_by_workspace_id=ws.id
                    )
                    s.add(group)
                    s.flush()
                    s.add(_joined(group.id, ws.id, "creator", datetime.now(UTC)))
                    group_id = group.id
                break
            except IntegrityError:
                continue  # an invite code collision: draw again
        else:
            raise GroupError("could not draw a free invite code; try again")
        return next(g for g in self.groups_of(team_id) if g.id == group_id)

    def join(self, team_id: str, code: str, *, now: datetime | None = None) -> GroupView:
        """Join the group with this invite code.

        Failed attempts are counted per workspace in the database, under a lock on the
        workspace's row, so every instance sees the same count: after ``MAX_FAILED_JOINS`` wrong
        codes within ``JOIN_WINDOW`` every attempt is refused, even with the right code, until
        the oldest failure leaves the window.

        Raises:
            JoinLimited: too many recent failures.
            GroupError: a wrong code, or already a member.
        """
        now = now or datetime.now(UTC)
        refusal: GroupError | None = None
        with self._sessions() as s, s.begin():
            ws = self._workspace(s, team_id, lock=True)
            since = now - JOIN_WINDOW
            s.execute(
                delete(GroupJoinFailure).where(
                    GroupJoinFailure.workspace_id == ws.id, GroupJoinFailure.attempted_at <= since
                )
            )
            recent = (
                s.execute(
                    select(GroupJoinFailure.attempted_at)
                    .where(
                        GroupJoinFailure.workspace_id == ws.id,
                        GroupJoinFailure.attempted_at > since,
                    )
                    .order_by(GroupJoinFailure.attempted_at)
                )
                .scalars()
                .all()
            )
            if len(recent) >= MAX_FAILED_JOINS:
                raise JoinLimited(recent[len(recent) - MAX_FAILED_JOINS] + JOIN_WINDOW)
            normalized = normalize_code(code)
            group = (
                s.execute(
                    select(WorkspaceGroup).where(WorkspaceGroup.invite_code == normalized)
                ).scalar_one_or_none()
                if normalized
                else None
            )
            if group is None:
                # Recorded, and committed although the caller gets an error.
                s.add(GroupJoinFailure(workspace_id=ws.id, attempted_at=now))
                left = MAX_FAILED_JOINS - len(recent) - 1
                refusal = GroupError(
                    f"no group has that code ({left} more tries in the next 15 minutes)"
                )
            else:
                member = self._membership(s, group.id, ws.id)
                if member is not None and member.status == "active":
                    refusal = GroupError(f"your workspace is already in {group.name!r}")
                elif member is not None:
                    member.status = "active"
                    member.joined_at = now
                else:
                    s.add(_joined(group.id, ws.id, "member", now))
                group_id = group.id
        if refusal is not None:
            raise refusal
        return next(g for g in self.groups_of(team_id) if g.id == group_id)

    def invite(self, group_id: int, team_id: str, invitee_team: str) -> None:
        """Invite an installed workspace; it sees accept/decline in its home."""
        with self._sessions() as s, s.begin():
            ws = self._active_member(s, group_id, team_id)
            invitee = self._workspace(s, invitee_team)
            if self._membership(s, group_id, invitee.id) is not None:
                raise GroupError(f"{invitee.name or invitee_team} is already in or invited to it")
            s.add(
                GroupMember(
                    group_id=group_id,
                    workspace_id=invitee.id,
                    status="invited",
                    role="member",
                    invited_by_workspace_id=ws.id,
                )
            )

    def accept(self, group_id: int, team_id: str) -> None:
        with self._sessions() as s, s.begin():
            ws = self._workspace(s, team_id)
            member = self._membership(s, group_id, ws.id)
            if member is None or member.status != "invited":
                raise GroupError("there is no invitation to that group")
            member.status = "active"
            member.joined_at = datetime.now(UTC)

    def decline(self, group_id: int, team_id: str) -> None:
        with self._sessions() as s, s.begin():
            ws = self._workspace(s, team_id)
            result = s.execute(
                delete(GroupMember).where(
                    GroupMember.group_id == group_id,
                    GroupMember.workspace_id == ws.id,
                    GroupMember.status == "invited",
                )
            )
            if affected(result) == 0:
                raise GroupError("there is no invitation to that group")

    def leave(self, group_id: int, team_id: str) -> set[str]:
        """Leave a group: this workspace's channels stop syncing with the group.

        Its channels leave every sync of the group. A channel it published keeps syncing among
        its subscribers (the publisher is then shown as gone) unless fewer than two are left; a
        direct publication to it ends. The group goes when no active member is left.

        Returns:
            The team ids of the group's other workspaces (their homes changed).
        """
        with self._sessions() as s, s.begin():
            ws = self._active_member(s, group_id, team_id)
            others = self._team_ids(s, group_id) - {team_id}
            sync_ids = list(
                s.execute(select(GroupSync.sync_id).where(GroupSync.group_id == group_id))
                .scalars()
                .all()
            )
            if sync_ids:
                s.execute(
                    delete(SyncEndpoint).where(
                        SyncEndpoint.sync_id.in_(sync_ids), SyncEndpoint.workspace_id == ws.id
                    )
                )
            direct_to_me = s.execute(
                select(GroupSync.sync_id).where(
                    GroupSync.group_id == group_id, GroupSync.target_workspace_id == ws.id
                )
            ).scalars()
            ended = set(direct_to_me)
            for sync_id in s.execute(
                select(GroupSync.sync_id).where(
                    GroupSync.group_id == group_id, GroupSync.publisher_workspace_id == ws.id
                )
            ).scalars():
                if self._endpoint_count(s, sync_id) < 2:
                    ended.add(sync_id)
            s.execute(
                update(GroupSync)
                .where(GroupSync.group_id == group_id, GroupSync.publisher_workspace_id == ws.id)
                .values(publisher_workspace_id=None)
            )
            s.execute(
                delete(GroupMember).where(
                    GroupMember.group_id == group_id, GroupMember.workspace_id == ws.id
                )
            )
            remaining = s.execute(
                select(func.count())
                .select_from(GroupMember)
                .where(GroupMember.group_id == group_id, GroupMember.status == "active")
            ).scalar_one()
            if remaining == 0:
                ended.update(sync_ids)
            if ended:
                s.execute(delete(Sync).where(Sync.id.in_(ended)))
            if remaining == 0:
                s.execute(delete(WorkspaceGroup).where(WorkspaceGroup.id == group_id))
        return others

    # --- published channels ----------------------------------------------------------------

    @staticmethod
    def _endpoint_count(s: Session, sync_id: int) -> int:
        return s.execute(
            select(func.count()).select_from(SyncEndpoint).where(SyncEndpoint.sync_id == sync_id)
        ).scalar_one()

    @staticmethod
    def _check_free(s: Session, endpoint: Endpoint) -> None:
        taken = s.execute(
            select(SyncEndpoint.id).where(SyncEndpoint.endpoint == str(endpoint))
        ).scalar_one_or_none()
        if taken is not None:
            raise GroupError("that channel already syncs; a channel can be in one sync only")

    def publish(
        self,
        group_id: int,
        team_id: str,
        channel_id: str,
        *,
        channel_name: str = "",
        target_team: str | None = None,
        user_id: str | None = None,
    ) -> int:
        """Publish a channel to the group, or to one workspace of it. Returns the sync id."""
        endpoint = _channel(team_id, channel_id)
        try:
            with self._sessions() as s, s.begin():
                ws = self._active_member(s, group_id, team_id)
                target_id = None
                if target_team is not None:
                    if target_team == team_id:
                        raise GroupError("publish to another workspace of the group")
                    target_id = self._active_member(s, group_id, target_team).id
                self._check_free(s, endpoint)
                sync = Sync(
                    # Unique and stable enough to find in `syncbot sync list`.
                    name=f"home {team_id}/{channel_id} {secrets.token_hex(3)}",
                    created_at=datetime.now(UTC),
                )
                s.add(sync)
                s.flush()
                s.add(
                    SyncEndpoint(
                        sync_id=sync.id,
                        endpoint=str(endpoint),
                        network=str(Network.SLACK),
                        workspace_id=ws.id,
                        status="active",
                    )
                )
                s.add(
                    GroupSync(
                        sync_id=sync.id,
                        group_id=group_id,
                        publisher_workspace_id=ws.id,
                        publisher_endpoint=str(endpoint),
                        direct=target_id is not None,
                        target_workspace_id=target_id,
                        channel_name=channel_name[:255],
                        published_by_user_id=user_id,
                    )
                )
                return sync.id
        except IntegrityError:
            # Another request took the channel between the check and the insert.
            raise GroupError(
                "that channel already syncs; a channel can be in one sync only"
            ) from None

    def _visible(self, s: Session, sync_id: int, team_id: str) -> tuple[GroupSync, Workspace]:
        published = s.get(GroupSync, sync_id)
        if published is None:
            raise GroupError("that channel is no longer published")
        ws = self._active_member(s, published.group_id, team_id)
        if (
            published.direct
            and published.target_workspace_id != ws.id
            and published.publisher_workspace_id != ws.id
        ):
            raise GroupError("that channel is published to another workspace")
        return published, ws

    def subscribe(self, sync_id: int, team_id: str, channel_id: str) -> None:
        """Sync one of this workspace's channels with a channel published to it."""
        endpoint = _channel(team_id, channel_id)
        try:
            with self._sessions() as s, s.begin():
                published, ws = self._visible(s, sync_id, team_id)
                if published.publisher_workspace_id is None:
                    raise GroupError("its publisher has left the group; it takes no new channels")
                if published.publisher_workspace_id == ws.id:
                    raise GroupError("you published that channel")
                mine = s.execute(
                    select(SyncEndpoint.id).where(
                        SyncEndpoint.sync_id == sync_id, SyncEndpoint.workspace_id == ws.id
                    )
                ).first()
                if mine is not None:
                    raise GroupError("your workspace already subscribes to it")
                self._check_free(s, endpoint)
                s.add(
                    SyncEndpoint(
                        sync_id=sync_id,
                        endpoint=str(endpoint),
                        network=str(Network.SLACK),
                        workspace_id=ws.id,
                        status="active",
                    )
                )
        except IntegrityError:
            raise GroupError(
                "that channel already syncs; a channel can be in one sync only"
            ) from None

    def _my_endpoint(self, s: Session, sync_id: int, workspace_id: int) -> SyncEndpoint:
        row = s.execute(
            select(SyncEndpoint).where(
                SyncEndpoint.sync_id == sync_id, SyncEndpoint.workspace_id == workspace_id
            )
        ).scalar_one_or_none()
        if row is None:
            raise GroupError("your workspace has no channel in that sync")
        return row

    def set_status(self, sync_id: int, team_id: str, status: str) -> None:
        """Pause (``paused``) or resume (``active``) this workspace's channel in the sync."""
        if status not in ("active", "paused"):
            raise GroupError(f"unknown status {status!r}")
        with self._sessions() as s, s.begin():
            _, ws = self._visible(s, sync_id, team_id)
            self._my_endpoint(s, sync_id, ws.id).status = status

    def stop(self, sync_id: int, team_id: str) -> str:
        """End this workspace's subscription. Returns its channel's endpoint."""
        with self._sessions() as s, s.begin():
            published, ws = self._visible(s, sync_id, team_id)
            if published.publisher_workspace_id == ws.id:
                raise GroupError("you published it: unpublish it instead")
            row = self._my_endpoint(s, sync_id, ws.id)
            endpoint = row.endpoint
            s.delete(row)
            s.flush()
            if published.publisher_workspace_id is None and self._endpoint_count(s, sync_id) < 2:
                s.execute(delete(Sync).where(Sync.id == sync_id))
        return endpoint

    def unpublish(self, sync_id: int, team_id: str) -> list[str]:
        """Delete the sync of a channel this workspace published.

        Returns:
            The team ids whose channels were in it.
        """
        with self._sessions() as s, s.begin():
            published = s.get(GroupSync, sync_id)
            ws = self._workspace(s, team_id)
            if published is None or published.publisher_workspace_id != ws.id:
                raise GroupError("only the workspace that published a channel can unpublish it")
            teams = s.execute(
                select(Workspace.team_id)
                .join(SyncEndpoint, SyncEndpoint.workspace_id == Workspace.id)
                .where(SyncEndpoint.sync_id == sync_id)
            ).scalars()
            affected = sorted(set(teams) | self._team_ids(s, published.group_id))
            s.execute(delete(Sync).where(Sync.id == sync_id))
        return affected

    def channels_for(self, team_id: str) -> list[ChannelView]:
        """Published channels this workspace may see, subscribe to or manage."""
        with self._sessions() as s:
            ws = self._listed_workspace(s, team_id)
            if ws is None:
                return []
            groups = dict(
                s.execute(
                    select(WorkspaceGroup.id, WorkspaceGroup.name)
                    .join(GroupMember, GroupMember.group_id == WorkspaceGroup.id)
                    .where(GroupMember.workspace_id == ws.id, GroupMember.status == "active")
                ).all()
            )
            rows = (
                s.execute(
                    select(GroupSync)
                    .where(GroupSync.group_id.in_(list(groups)))
                    .order_by(GroupSync.group_id, GroupSync.channel_name, GroupSync.sync_id)
                )
                .scalars()
                .all()
            )
            sync_ids = [r.sync_id for r in rows]
            endpoints = s.execute(
                select(
                    SyncEndpoint.sync_id,
                    SyncEndpoint.workspace_id,
                    SyncEndpoint.endpoint,
                    SyncEndpoint.status,
                ).where(SyncEndpoint.sync_id.in_(sync_ids))
            ).all()
            teams = {
                i: (t, n or t)
                for i, t, n in s.execute(
                    select(Workspace.id, Workspace.team_id, Workspace.name)
                ).all()
            }
        views = []
        for row in rows:
            mine = row.publisher_workspace_id == ws.id
            if row.direct and row.target_workspace_id != ws.id and not mine:
                continue
            own = [e for e in endpoints if e.sync_id == row.sync_id and e.workspace_id == ws.id]
            others = [
                e
                for e in endpoints
                if e.sync_id == row.sync_id and e.endpoint != row.publisher_endpoint
            ]
            publisher = (
                teams.get(row.publisher_workspace_id) if row.publisher_workspace_id else None
            )
            target = teams.get(row.target_workspace_id) if row.target_workspace_id else None
            if publisher is None and not own:
                continue  # the publisher left and we take no part: nothing to do with it
            views.append(
                ChannelView(
                    sync_id=row.sync_id,
                    group_id=row.group_id,
                    group_name=groups[row.group_id],
                    channel_name=row.channel_name,
                    publisher_team=publisher[0] if publisher else None,
                    publisher_name=publisher[1] if publisher else "a workspace that left",
                    direct=row.direct,
                    target_team=target[0] if target else None,
                    target_name=target[1]
                    if target
                    else ("a workspace that was removed" if row.direct else None),
                    mine=mine,
                    my_endpoint=own[0].endpoint if own else None,
                    my_status=own[0].status if own else None,
                    subscribers=len(others),
                )
            )
        return views


class HomeVersions:
    """Per-workspace home content versions (see :class:`HomeVersion`)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def current(self, team_id: str) -> int:
        with self._sessions() as s:
            version = s.execute(
                select(HomeVersion.version).where(HomeVersion.team_id == team_id)
            ).scalar_one_or_none()
        return version or 0

    def bump(self, team_ids: Iterable[str]) -> None:
        """Count up the version of every one of these workspaces, in one transaction."""
        teams = sorted(set(team_ids))
        if not teams:
            return
        for _ in range(3):
            try:
                with self._sessions() as s, s.begin():
                    for team_id in teams:
                        result = s.execute(
                            update(HomeVersion)
                            .where(HomeVersion.team_id == team_id)
                            .values(version=HomeVersion.version + 1, updated_at=datetime.now(UTC))
                        )
                        if affected(result) == 0:
                            s.add(HomeVersion(team_id=team_id, version=1))
                            s.flush()
                break
            except IntegrityError:
                continue  # another instance inserted a first row: update it instead
