"""A faithful fake Slack for tests, benchmarks and the demo: Web API, Events API, Socket Mode,
OAuth, files v2, faults. ``python -m fakeslack`` runs it in its own process (see ``__main__``,
``control`` and ``remote``).

The server runs on ``127.0.0.1`` (ephemeral port) in its own thread with its own asyncio loop, so
sync and async ``slack_sdk`` clients both work. All state lives on that loop; the test-side
methods below marshal onto it and are safe to call from any thread.

Lifecycle::

    with FakeSlack(app_url="http://127.0.0.1:PORT/slack/events") as slack:
        WebClient(token=slack.bot_token("T1"), base_url=slack.base_url)  # ends with /api/

Builders (one line each): ``add_workspace(team_id, name, domain=, icon=, socket_mode=, scopes=,
installed=)`` (installs the app: bot user ``U<team>BOT``, bot id ``B<team>BOT``, an ``xoxb-``
token), ``add_user(team, id, name, real_name=, display_name=, email=, is_admin=, is_owner=,
is_bot=, deleted=)``, ``add_channel(team, id, name, private=, members=, bot_member=True, topic=,
purpose=, archived=)``, ``add_emoji(team, name, url)``. ``installation(team)``,
``bot_token(team)``, ``app_token`` (``xapp-``), ``revoke(team)`` (``token_revoked``).
User tokens: ``add_user_token(team, user, scopes=)`` (``xoxp-``: acts as that member, posts as
them with no ``bot_id``, its user scopes enforced with ``missing_scope``; see
``user_scopes``), ``revoke_user_token(token)``, ``open_private_dm(team, users)`` (a DM or group
DM without the bot: its events reach the app only as ``event_settings.user_events`` with the
member's authorization).

Web API (``/api/<method>``, form or JSON bodies, ``Authorization: Bearer`` or ``token``):
auth.test, team.info, bots.info, users.info/list/lookupByEmail/profile.get,
conversations.info/list/join/leave/members/history/replies/open/create/archive/unarchive/rename/
setTopic, chat.postMessage/update/delete/getPermalink/postEphemeral, reactions.add/remove/get,
emoji.list, views.publish/open/update/push, files.info/getUploadURLExternal/
completeUploadExternal, apps.connections.open (``xapp-`` only), oauth.v2.access (code and
``refresh_token`` grants). Errors are Slack's ``{"ok": false, "error": ...}``; unknown methods
answer 404 ``unknown_method``. Cursors are opaque (``response_metadata.next_cursor``). Files: the
``upload_url`` accepts raw or multipart bytes; ``url_private`` needs a bearer token of the file's
workspace (else Slack's login page). ``GET /oauth/v2/authorize`` redirects straight to
``redirect_uri`` with ``code`` and ``state`` for ``team=`` (query) or
``slack.oauth.authorize_team``; requests are in ``slack.oauth.authorize_requests``.
``slack.oauth.token_rotation = True`` issues ``xoxe.xoxb-`` tokens with
``refresh_token``/``expires_in``.

Echo events: every write by the app (post, update, delete, reactions, file share, join, ...)
produces the event Slack sends, POSTed to ``app_url`` signed with ``signing_secret`` (v0) in an
``event_callback`` envelope, retried up to 3 times on non-2xx (``http_error``) or after
``event_settings.timeout`` (``http_timeout``) with ``X-Slack-Retry-Num``/``-Reason`` and the same
``event_id`` (delays: ``event_settings.retry_delays``). Workspaces with ``socket_mode=True`` get
them as ``events_api`` envelopes instead. ``echo(False[, team])`` switches delivery off.
``emitted`` / ``deliveries`` record every envelope / attempt; ``wait_idle()`` waits for all.

User actions (return the ts, event id or file id): ``post_message(team, channel, user, text,
thread_ts=, broadcast=, files=[(name, bytes)], blocks=)``, ``edit``, ``delete``, ``react``,
``unreact``, ``upload_file``, ``rename_channel``, ``archive``, ``unarchive``, ``join``,
``leave``, ``remove_bot``/``invite_bot`` (a member kicks/invites the app's bot),
``convert_to_private``, ``uninstall`` (``tokens_revoked`` + ``app_uninstalled``),
``bot_message`` (another app), ``send_event`` (anything else).

Socket Mode: ``hello`` per connection, envelopes to one of the open connections (round robin),
acks in ``acks``, re-sent with ``retry_attempt`` + 1 after ``socket_settings.ack_deadline``;
``send_socket(type, payload)``, ``socket_disconnect(reason)`` (closes after
``socket_settings.disconnect_grace`` unless ``link_disabled``), ``socket_drop()``. A workspace
with its own app: ``add_app_token(team)`` gives it an ``xapp-`` token and its own hub; the
methods above take ``team_id=`` (and a ``connection`` id, e.g. ``socket_current(team)``).
Inspection: ``socket_hellos``, ``socket_overlaps`` (sockets still open at each ``hello``),
``socket_pending``, ``socket_acks``, ``socket_closed``, ``connection_opens(app_token)``. Test
knobs: ``silence_sockets(n)`` (the next ``n`` sockets are never greeted) and a short
``socket_settings.ack_deadline``. ``apps.connections.open`` takes faults like any method; a
``"429:1"`` answers with whole-second ``Retry-After`` as Slack does.

Routing: ``app_url`` for every workspace, ``route_events(team, url)`` for one (an app process
per workspace).

Faults (:class:`Fault`, or their string spelling ``"429:3"``, ``"503"``, ``"timeout"``,
``"drop_after"``, see ``Fault.parse``): ``fail(method_or_*, Fault.ratelimited(3), Fault.http(503),
Fault.slow(0.2), Fault.hang(), Fault.drop(after=True), Fault.slack_error("fatal_error"))``
queues them; ``fail_randomly(method, p, fault)`` uses a seeded RNG; ``after=True`` applies the
fault after the side effect (a lost response). ``latency(0.05[, method])`` delays every answer;
``rate_limit(method, n, window)`` enforces per-workspace limits with 429 + ``Retry-After``.

Inspection: ``calls`` / ``called(method, team)``, ``messages(team, channel)``,
``find_message(team, channel, text=, event_type=, where=)``, ``reactions(team, channel, ts)``,
``files(team)``, ``file_content(team, id)``, ``channel(team, channel)``, ``message(team,
channel, ts)``, ``acks``, ``socket_frames``, ``peers`` (client sockets seen), ``emitted``,
``envelope(team, event)`` / ``sign(body)`` (for tests that POST events themselves).

Messages and channels handed out are snapshots; ask again to see later changes.

Slack's documentation this follows: Web API https://docs.slack.dev/apis/web-api/ (errors,
``ok:false``, 429 + ``Retry-After`` per https://docs.slack.dev/apis/web-api/rate-limits),
Events API https://docs.slack.dev/apis/events-api/ (envelope, signing, retries), Socket Mode
https://docs.slack.dev/apis/events-api/using-socket-mode, OAuth v2
https://docs.slack.dev/authentication/installing-with-oauth and token rotation
https://docs.slack.dev/authentication/using-token-rotation, files v2
https://docs.slack.dev/messaging/working-with-files.
"""

from __future__ import annotations

from .events import Delivery, sign
from .fake import DEFAULT_SCOPES, FakeSlack
from .faults import Fault
from .model import APP_ID, Channel, FileObj, Installation, Message, Upload, User, Workspace

__all__ = [
    "APP_ID",
    "DEFAULT_SCOPES",
    "Channel",
    "Delivery",
    "FakeSlack",
    "Fault",
    "FileObj",
    "Installation",
    "Message",
    "Upload",
    "User",
    "Workspace",
    "sign",
]
