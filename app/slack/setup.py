"""Assembling the Slack adapter from the runtime's shared pieces."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route

from app.core.authors import AuthorDirectory
from app.core.dispatch import Dispatcher
from app.core.endpoints import Network
from app.core.files import FileSources
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.egress import EgressPolicy
from app.settings import Settings
from app.slack.deliver import SlackDeliverer
from app.slack.events_route import SlackEvents
from app.slack.files import FileCopier, slack_file_source
from app.slack.holds import SlackHolds
from app.slack.inbound import EventTranslator
from app.slack.mentions import MentionMapper
from app.slack.profiles import Profiles
from app.slack.puppets import SlackPuppets
from app.slack.ratelimit import RateLimiter
from app.slack.render import SlackRenderer
from app.slack.shared_channels import sync_home
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.echoes import ExpectedEchoes
from app.store.puppets import PuppetStore


@dataclass
class SlackAdapter:
    """Everything the rest of the app may need from the Slack side."""

    workspaces: Workspaces
    profiles: Profiles
    mentions: MentionMapper
    deliverer: SlackDeliverer
    # The one path every Slack event and interaction takes, from HTTP or Socket Mode; hooks
    # registered on it see both.
    events: SlackEvents
    # Whether POST /slack/events is served (only with a signing secret to verify it).
    http_events: bool
    files: FileCopier
    # Matrix users' own Slack user tokens (``login token``): posting as them, their DMs.
    puppets: SlackPuppets

    @property
    def routes(self) -> list[Route]:
        if not self.http_events:
            return []
        return [Route("/slack/events", self.events.endpoint, methods=["POST"])]


def build_slack(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    outbox: Outbox,
    ingest: Ingest,
    dispatcher: Dispatcher,
    authors: AuthorDirectory,
    files: FileSources,
    rate_scale: float = 1.0,
    api_timeout: float = 10.0,
) -> SlackAdapter:
    """Wire the Slack adapter and register its deliverer and author resolver."""
    workspaces = Workspaces(
        sessions,
        cipher,
        api_url=settings.slack_api_url,
        limiter=RateLimiter(scale=rate_scale),
        timeout=api_timeout,
    )
    profiles = Profiles(sessions, workspaces)
    mentions = MentionMapper(sessions, workspaces, profiles)
    puppets = SlackPuppets(PuppetStore(sessions, cipher), workspaces)
    files.register(
        Network.SLACK,
        slack_file_source(
            workspaces, policy=EgressPolicy.from_settings(settings), puppets=puppets
        ),
    )
    copier = FileCopier(files)
    renderer = SlackRenderer(workspaces, mentions, sessions)
    # Reactions and files made as a person in their own DMs come back as their events.
    echoes = ExpectedEchoes(sessions)
    deliverer = SlackDeliverer(
        workspaces, authors, renderer, copier, puppets=puppets, echoes=echoes
    )
    authors.register(Network.SLACK, profiles)
    outbox.register(deliverer)
    events = SlackEvents(
        # A Socket-Mode-only install has no signing secret and serves no HTTP route: envelopes
        # arrive authenticated by the app token and the verifier is never consulted.
        signing_secret=settings.slack_signing_secret or secrets.token_hex(32),
        translator=EventTranslator(
            workspaces.info, shared_home=sync_home(sessions), echoes=echoes
        ),
        ingest=ingest,
    )
    # Held channels: their admins are told, and the bot's return resumes them.
    holds = SlackHolds(sessions, workspaces, dispatcher)
    outbox.on_hold.append(holds.on_hold)
    events.on({"member_joined_channel"}, holds.on_event)
    # A changed name or avatar is used at once, not after the profile cache's hours.
    events.on({"user_profile_changed", "user_change"}, profiles.on_event)
    return SlackAdapter(
        workspaces=workspaces,
        profiles=profiles,
        mentions=mentions,
        deliverer=deliverer,
        events=events,
        http_events=bool(settings.slack_signing_secret),
        files=copier,
        puppets=puppets,
    )
