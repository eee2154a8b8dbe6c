"""The fake Slack against slack_sdk's own clients: Web API, events, faults, files, OAuth, SM."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Fault
from fakeslack.remote import RemoteError, RemoteSlack
from tests.wait import wait_for, wait_for_async


class Receiver:
    """A loopback Events API endpoint recording requests; answers a scripted status sequence."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.stall: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers.items()), body))
                if outer.stall:
                    # Simulated: an app slower than Slack's 3 s deadline (not a test wait).
                    time.sleep(outer.stall.pop(0))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
def slack(receiver: Receiver) -> Iterator[FakeSlack]:
    with FakeSlack(app_url=receiver.url) as fake:
        fake.event_settings.timeout = 2.0  # generous: a loaded machine must not cause retries
        fake.event_settings.retry_delays = (0.01, 0.01, 0.01)
        fake.add_workspace("T1", "Acme", domain="acme")
        fake.add_workspace("T2", "Globex", domain="globex")
        fake.add_user("T1", "U1", "ada", real_name="Ada L", email="ada@acme.test")
        fake.add_user("T1", "U2", "bob", email="bob@acme.test", is_admin=True)
        fake.add_channel("T1", "C1", "general", members=["U1", "U2"])
        fake.add_channel("T1", "C2", "random", bot_member=False)
        fake.add_channel("T2", "C9", "shared")
        yield fake


def client(slack: FakeSlack, team: str = "T1", **kwargs: Any) -> WebClient:
    return WebClient(token=slack.bot_token(team), base_url=slack.base_url, **kwargs)


def error_of(call: Any) -> tuple[int, str, Any]:
    with pytest.raises(SlackApiError) as info:
        call()
    resp = info.value.response
    return resp.status_code, resp["error"], resp


# --- Web API -----------------------------------------------------------------------------------


def test_auth_and_team_as_slack_sdk_sees_them(slack: FakeSlack) -> None:
    c = client(slack)
    auth = c.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T1", "UT1BOT", "BT1BOT")
    assert c.team_info()["team"]["domain"] == "acme"
    assert c.bots_info(bot="BT1BOT")["bot"]["user_id"] == "UT1BOT"
    assert (
        error_of(lambda: WebClient(token="xoxb-nope", base_url=slack.base_url).auth_test())[1]
        == "invalid_auth"
    )


def test_revoked_and_uninstalled_tokens(slack: FakeSlack, receiver: Receiver) -> None:
    c = client(slack, "T2")
    slack.uninstall("T2")
    assert error_of(c.auth_test)[1] == "token_revoked"
    slack.wait_idle()
    kinds = [e["event"]["type"] for e in receiver.events() if e["team_id"] == "T2"]
    assert kinds == ["tokens_revoked", "app_uninstalled"]


def test_users_pagination_lookup_and_profile(slack: FakeSlack) -> None:
    c = client(slack)
    seen: list[str] = []
    cursor = None
    while True:
        page = c.users_list(limit=2, cursor=cursor)
        seen += [u["id"] for u in page["members"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["UT1BOT", "U1", "U2"]
    assert c.users_lookupByEmail(email="ADA@acme.test")["user"]["id"] == "U1"
    assert error_of(lambda: c.users_lookupByEmail(email="x@y"))[1] == "users_not_found"
    profile = c.users_profile_get(user="U1")["profile"]
    assert profile["real_name"] == "Ada L" and profile["image_512"].endswith("_512.png")
    assert c.users_info(user="U2")["user"]["is_admin"] is True


def test_post_update_delete_and_their_errors(slack: FakeSlack) -> None:
    c = client(slack)
    sent = c.chat_postMessage(
        channel="C1",
        text="hello",
        username="Ada (Globex)",
        icon_url="https://img.test/a.png",
        metadata={"event_type": "syncbot", "event_payload": {"id": 7}},
    )
    assert sent["message"]["bot_id"] == "BT1BOT" and sent["message"]["username"] == "Ada (Globex)"
    ts = sent["ts"]
    second = c.chat_postMessage(channel="C1", text="reply", thread_ts=ts, reply_broadcast=True)
    assert float(second["ts"]) > float(ts)
    assert error_of(lambda: c.chat_postMessage(channel="C2", text="x"))[1] == "not_in_channel"
    assert error_of(lambda: c.chat_postMessage(channel="C404", text="x"))[1] == (
        "channel_not_found"
    )
    c.chat_update(channel="C1", ts=ts, text="hello!")
    user_ts = slack.post_message("T1", "C1", "U1", "mine")
    assert error_of(lambda: c.chat_update(channel="C1", ts=user_ts, text="x"))[1] == (
        "cant_update_message"
    )
    c.chat_delete(channel="C1", ts=second["ts"])
    assert error_of(lambda: c.chat_delete(channel="C1", ts=second["ts"]))[1] == (
        "message_not_found"
    )
    msg = slack.find_message("T1", "C1", event_type="syncbot")
    assert msg is not None and msg.text == "hello!" and msg.edited is not None
    link = c.chat_getPermalink(channel="C1", message_ts=ts)["permalink"]
    assert link == f"https://acme.slack.test/archives/C1/p{ts.replace('.', '')}"


def test_history_replies_and_metadata_opt_in(slack: FakeSlack) -> None:
    c = client(slack)
    root = c.chat_postMessage(
        channel="C1", text="root", metadata={"event_type": "t", "event_payload": {}}
    )["ts"]
    slack.post_message("T1", "C1", "U1", "in thread", thread_ts=root)
    slack.post_message("T1", "C1", "U2", "broadcast", thread_ts=root, broadcast=True)
    plain = c.conversations_history(channel="C1")["messages"]
    assert [m["text"] for m in plain] == ["broadcast", "root"]
    assert "metadata" not in plain[1] and plain[1]["reply_count"] == 2
    assert plain[1]["latest_reply"] == plain[0]["ts"] and plain[1]["reply_users"] == ["U1", "U2"]
    full = c.conversations_history(channel="C1", include_all_metadata=True)["messages"]
    assert full[1]["metadata"]["event_type"] == "t"
    replies = c.conversations_replies(channel="C1", ts=root)["messages"]
    assert [m["text"] for m in replies] == ["root", "in thread", "broadcast"]
    assert error_of(lambda: c.conversations_history(channel="C2"))[1] == "not_in_channel"


def test_conversation_lifecycle(slack: FakeSlack) -> None:
    c = client(slack)
    assert c.conversations_join(channel="C2")["channel"]["is_member"] is True
    assert c.conversations_join(channel="C2")["warning"] == "already_in_channel"
    created = c.conversations_create(name="bridge-1")["channel"]
    assert error_of(lambda: c.conversations_create(name="bridge-1"))[1] == "name_taken"
    assert error_of(lambda: c.conversations_create(name="Bad Name"))[1] == "invalid_name_specials"
    c.conversations_rename(channel=created["id"], name="bridge-2")
    c.conversations_setTopic(channel=created["id"], topic="synced")
    c.conversations_archive(channel=created["id"])
    assert error_of(lambda: c.conversations_archive(channel=created["id"]))[1] == (
        "already_archived"
    )
    c.conversations_unarchive(channel=created["id"])
    info = c.conversations_info(channel=created["id"])["channel"]
    assert (info["name"], info["topic"]["value"], info["is_archived"]) == (
        "bridge-2",
        "synced",
        False,
    )
    names = [ch["name"] for ch in c.conversations_list(limit=1000)["channels"]]
    assert {"general", "random", "bridge-2"} <= set(names)
    assert c.conversations_members(channel="C1")["members"] == ["U1", "U2", "UT1BOT"]
    dm = c.conversations_open(users="U1")["channel"]["id"]
    assert dm.startswith("D") and c.conversations_open(users="U1")["channel"]["id"] == dm
    c.conversations_leave(channel="C2")
    assert c.conversations_info(channel="C2")["channel"]["is_member"] is False


def test_reactions_emoji_views_and_unknown_method(slack: FakeSlack) -> None:
    c = client(slack)
    ts = slack.post_message("T1", "C1", "U1", "react to me")
    c.reactions_add(channel="C1", timestamp=ts, name="thumbsup")
    assert error_of(lambda: c.reactions_add(channel="C1", timestamp=ts, name="thumbsup"))[1] == (
        "already_reacted"
    )
    assert error_of(lambda: c.reactions_add(channel="C1", timestamp=ts, name="no way"))[1] == (
        "invalid_name"
    )
    got = c.reactions_get(channel="C1", timestamp=ts)["message"]["reactions"]
    assert got == [{"name": "thumbsup", "users": ["UT1BOT"], "count": 1}]
    c.reactions_remove(channel="C1", timestamp=ts, name="thumbsup")
    assert (
        error_of(lambda: c.reactions_remove(channel="C1", timestamp=ts, name="thumbsup"))[1]
        == "no_reaction"
    )
    slack.add_emoji("T1", "party-parrot", "https://emoji.test/pp.gif")
    assert c.emoji_list()["emoji"] == {"party-parrot": "https://emoji.test/pp.gif"}
    view = c.views_publish(user_id="U1", view={"type": "home", "blocks": []})["view"]
    assert c.views_update(view_id=view["id"], view={"type": "home", "blocks": []})["ok"]
    status, error, _ = error_of(lambda: c.api_call("nope.nothing"))
    assert (status, error) == (404, "unknown_method")


async def test_async_client_and_json_bodies(slack: FakeSlack) -> None:
    c = AsyncWebClient(token=slack.bot_token("T2"), base_url=slack.base_url)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    sent = await c.api_call(
        "chat.postMessage", json={"channel": "C9", "text": "hi", "blocks": blocks}
    )
    assert sent["message"]["blocks"] == blocks
    assert slack.messages("T2", "C9")[0].blocks == blocks


# --- events ------------------------------------------------------------------------------------


def test_echo_events_are_signed_and_shaped_like_slack(
    slack: FakeSlack, receiver: Receiver
) -> None:
    c = client(slack)
    ts = c.chat_postMessage(channel="C1", text="echo", username="Ada", icon_emoji=":ghost:")["ts"]
    c.chat_update(channel="C1", ts=ts, text="echo 2")
    c.reactions_add(channel="C1", timestamp=ts, name="eyes")
    c.chat_delete(channel="C1", ts=ts)
    slack.wait_idle()
    verifier = SignatureVerifier(slack.signing_secret)
    for headers, body in receiver.requests:
        assert verifier.is_valid(
            body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
        )
    envs = receiver.events()
    assert {e["type"] for e in envs} == {"event_callback"}
    assert envs[0]["authorizations"][0]["user_id"] == "UT1BOT"
    post, changed, reaction, deleted = (e["event"] for e in envs)
    assert (post["bot_id"], post["username"], post["icons"]) == (
        "BT1BOT",
        "Ada",
        {"emoji": ":ghost:"},
    )
    assert post["bot_profile"]["app_id"] == envs[0]["api_app_id"]
    assert changed["subtype"] == "message_changed" and changed["message"]["text"] == "echo 2"
    assert (reaction["type"], reaction["user"], reaction["item"]["ts"]) == (
        "reaction_added",
        "UT1BOT",
        ts,
    )
    assert deleted["subtype"] == "message_deleted" and deleted["deleted_ts"] == ts


def test_user_actions_emit_rich_text_and_membership_events(
    slack: FakeSlack, receiver: Receiver
) -> None:
    ts = slack.post_message("T1", "C1", "U1", "hi <@U2> see <https://x.test|x>")
    slack.edit("T1", "C1", ts, "hi all")
    slack.react("T1", "C1", ts, "U2", "tada")
    slack.rename_channel("T1", "C1", "town-square")
    slack.join("T1", "C1", "U9")
    slack.bot_message("T1", "C1", "B0OTHER", "from elsewhere", username="Jira")
    slack.wait_idle()
    events = [e["event"] for e in receiver.events()]
    first = events[0]
    assert first["text"].startswith("hi <@U2>") and first["client_msg_id"]
    elements = first["blocks"][0]["elements"][0]["elements"]
    assert {"type": "user", "user_id": "U2"} in elements
    assert [e.get("subtype") or e["type"] for e in events] == [
        "message",
        "message_changed",
        "reaction_added",
        "channel_rename",
        "channel_join",
        "member_joined_channel",
        "bot_message",
    ]
    assert slack.reactions("T1", "C1", ts) == {"tada": ["U2"]}


def test_file_upload_by_user_is_downloadable_with_bearer_only(
    slack: FakeSlack, receiver: Receiver
) -> None:
    file_id = slack.upload_file("T1", "C1", "U1", "pic.png", b"\x89PNG data", text="look")
    slack.wait_idle()
    event = receiver.events()[0]["event"]
    assert event["subtype"] == "file_share" and event["files"][0]["id"] == file_id
    url = event["files"][0]["url_private"]
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {slack.bot_token('T1')}"})
    with urllib.request.urlopen(req) as resp:
        assert resp.read() == b"\x89PNG data"
    with urllib.request.urlopen(url) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")


def test_a_dm_file_downloads_only_for_a_token_of_someone_in_the_dm(slack: FakeSlack) -> None:
    # The bot is not in U1 and U2's DM: its token gets the sign-in page (status 200, HTML),
    # theirs the file; a third member's token does not.
    dm = slack.open_private_dm("T1", ["U1", "U2"])
    file_id = slack.upload_file("T1", dm, "U2", "pic.png", b"\x89PNG dm", text="look")
    url = next(f for f in slack.files("T1") if f.id == file_id).wire()["url_private"]

    def get(token: str) -> tuple[str, bytes]:
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req) as resp:
            return resp.headers["Content-Type"], resp.read()

    assert get(slack.add_user_token("T1", "U1"))[1] == b"\x89PNG dm"
    kind, body = get(slack.bot_token("T1"))
    assert kind.startswith("text/html") and b"\x89PNG" not in body
    assert get(slack.add_user_token("T1", "U3"))[0].startswith("text/html")


def test_http_retries_keep_event_id_and_reason(slack: FakeSlack, receiver: Receiver) -> None:
    slack.event_settings.timeout = 0.3
    receiver.statuses = [500, 503]
    receiver.stall = [0.0, 0.0, 1.0]
    client(slack).chat_postMessage(channel="C1", text="retry me")
    slack.wait_idle()
    headers = [h for h, _ in receiver.requests]
    assert [h.get("X-Slack-Retry-Num") for h in headers] == [None, "1", "2", "3"]
    assert [h.get("X-Slack-Retry-Reason") for h in headers] == [
        None,
        "http_error",
        "http_error",
        "http_timeout",
    ]
    assert len({e["event_id"] for e in receiver.events()}) == 1


def test_echo_can_be_switched_off(slack: FakeSlack, receiver: Receiver) -> None:
    slack.echo(False, "T1")
    client(slack).chat_postMessage(channel="C1", text="quiet")
    client(slack, "T2").chat_postMessage(channel="C9", text="loud")
    slack.wait_idle()
    assert [e["team_id"] for e in receiver.events()] == ["T2"]


# --- faults ------------------------------------------------------------------------------------


def test_ratelimited_fault_and_sdk_retry_handler(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", Fault.ratelimited(retry_after=7))
    status, error, resp = error_of(lambda: client(slack).chat_postMessage(channel="C1", text="x"))
    assert (status, error, resp.headers["Retry-After"]) == (429, "ratelimited", "7")
    slack.fail("chat.postMessage", Fault.ratelimited(retry_after=0))
    c = client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    assert c.chat_postMessage(channel="C1", text="second try")["ok"]


def test_rate_limit_tier_is_per_workspace(slack: FakeSlack) -> None:
    slack.rate_limit("users.info", 2)
    c1, c2 = client(slack), client(slack, "T2")
    c1.users_info(user="U1")
    c1.users_info(user="U1")
    status, _, resp = error_of(lambda: c1.users_info(user="U1"))
    assert status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert c2.users_info(user="UT2BOT")["ok"]


def test_faults_after_side_effect_are_lost_responses(slack: FakeSlack) -> None:
    c = client(slack, timeout=1, retry_handlers=[])  # the SDK would retry the dropped call
    slack.fail(
        "chat.postMessage",
        Fault.http(502, after=True),
        Fault.drop(after=True),
        Fault.hang(after=True),
    )
    assert error_of(lambda: c.chat_postMessage(channel="C1", text="one"))[0] == 502
    with pytest.raises(OSError, match="without response"):
        c.chat_postMessage(channel="C1", text="two")
    with pytest.raises(OSError, match="timed out"):
        c.chat_postMessage(channel="C1", text="three")
    assert [m.text for m in slack.messages("T1", "C1")] == ["one", "two", "three"]


def test_faults_before_side_effect_and_error_bodies(slack: FakeSlack) -> None:
    c = client(slack)
    slack.latency(0.01)
    slack.fail("*", Fault.http(503), Fault.slack_error("fatal_error"), Fault.slow(0.05))
    assert error_of(lambda: c.chat_postMessage(channel="C1", text="a"))[0] == 503
    assert error_of(lambda: c.reactions_get(channel="C1", timestamp="1"))[1] == "fatal_error"
    assert c.chat_postMessage(channel="C1", text="b")["ok"]
    assert [m.text for m in slack.messages("T1", "C1")] == ["b"]


def test_random_faults_are_seeded(slack: FakeSlack) -> None:
    def outcomes() -> list[bool]:
        with FakeSlack(seed=42) as fake:
            fake.add_workspace("T1")
            fake.fail_randomly("auth.test", 0.5, Fault.slack_error("internal_error"))
            c = WebClient(token=fake.bot_token("T1"), base_url=fake.base_url)
            results = []
            for _ in range(12):
                try:
                    results.append(bool(c.auth_test()["ok"]))
                except SlackApiError:
                    results.append(False)
            return results

    first = outcomes()
    assert first == outcomes() and True in first and False in first


# --- files v2 and OAuth ------------------------------------------------------------------------


def test_files_upload_v2_shares_into_thread(slack: FakeSlack, receiver: Receiver) -> None:
    c = client(slack)
    root = c.chat_postMessage(channel="C1", text="root")["ts"]
    up = c.files_upload_v2(
        channel="C1",
        content=b"hello file",
        filename="notes.txt",
        title="Notes",
        initial_comment="attached",
        thread_ts=root,
    )
    file_id = up["file"]["id"]
    info = c.files_info(file=file_id)["file"]
    assert (info["title"], info["size"], info["channels"]) == ("Notes", 10, ["C1"])
    shared = slack.find_message("T1", "C1", text="attached")
    assert shared is not None and shared.files == [file_id] and shared.thread_ts == root
    slack.wait_idle()
    kinds = [e["event"].get("subtype") or e["event"]["type"] for e in receiver.events()]
    assert kinds[-2:] == ["file_share", "file_shared"]


def test_oauth_authorize_redirect_and_token_rotation(slack: FakeSlack) -> None:
    slack.oauth.token_rotation = True
    query = urlencode(
        {
            "client_id": slack.oauth.client_id,
            "scope": "chat:write,channels:read",
            "state": "s123",
            "redirect_uri": "http://127.0.0.1:1/cb",
            "team": "T2",
        }
    )
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(f"http://127.0.0.1:{slack.port}/oauth/v2/authorize?{query}")
    location = urlparse(info.value.headers["Location"])
    got = parse_qs(location.query)
    assert got["state"] == ["s123"]
    anon = WebClient(base_url=slack.base_url)
    grant = anon.oauth_v2_access(
        client_id=slack.oauth.client_id,
        client_secret=slack.oauth.client_secret,
        code=got["code"][0],
        redirect_uri="http://127.0.0.1:1/cb",
    )
    assert grant["team"]["id"] == "T2" and grant["access_token"].startswith("xoxe.xoxb-")
    assert grant["scope"] == "chat:write,channels:read"
    assert slack.oauth.authorize_requests[0]["scope"] == "chat:write,channels:read"
    refreshed = anon.oauth_v2_access(
        client_id=slack.oauth.client_id,
        client_secret=slack.oauth.client_secret,
        grant_type="refresh_token",
        refresh_token=grant["refresh_token"],
    )
    assert refreshed["expires_in"] == slack.oauth.expires_in
    assert refreshed["refresh_token"] != grant["refresh_token"]
    old = WebClient(token=grant["access_token"], base_url=slack.base_url)
    assert error_of(old.auth_test)[1] == "invalid_auth"
    assert WebClient(token=refreshed["access_token"], base_url=slack.base_url).auth_test()["ok"]
    assert error_of(
        lambda: anon.oauth_v2_access(
            client_id=slack.oauth.client_id, client_secret="wrong", code="x"
        )
    )[1] == ("bad_client_secret")


def test_oauth_first_install_creates_the_bot(slack: FakeSlack) -> None:
    slack.add_workspace("T3", "Initech", installed=False)
    slack.oauth.authorize_team = "T3"
    query = urlencode(
        {
            "client_id": slack.oauth.client_id,
            "scope": "chat:write",
            "redirect_uri": "http://127.0.0.1:1/cb",
            "state": "z",
        }
    )
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(f"http://127.0.0.1:{slack.port}/oauth/v2/authorize?{query}")
    code = parse_qs(urlparse(info.value.headers["Location"]).query)["code"][0]
    grant = WebClient(base_url=slack.base_url).oauth_v2_access(
        client_id=slack.oauth.client_id, client_secret=slack.oauth.client_secret, code=code
    )
    assert grant["access_token"].startswith("xoxb-") and "refresh_token" not in grant
    auth = WebClient(token=grant["access_token"], base_url=slack.base_url).auth_test()
    assert (auth["team_id"], auth["user_id"]) == ("T3", grant["bot_user_id"])


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


# --- Socket Mode -------------------------------------------------------------------------------


@pytest.fixture
def socket_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.socket_settings.ack_deadline = 0.5
        fake.socket_settings.disconnect_grace = 0.05
        fake.add_workspace("T1", socket_mode=True)
        fake.add_channel("T1", "C1", "general")
        yield fake


wait_until = wait_for_async


async def test_socket_mode_hello_events_and_acks(socket_slack: FakeSlack) -> None:
    received: list[SocketModeRequest] = []
    sm = SocketModeClient(
        app_token=socket_slack.app_token,
        web_client=AsyncWebClient(base_url=socket_slack.base_url),
        auto_reconnect_enabled=False,
    )

    async def on_request(c: SocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        await c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    sm.socket_mode_request_listeners.append(on_request)
    await sm.connect()
    try:
        await asyncio.to_thread(client(socket_slack).chat_postMessage, channel="C1", text="hi")
        await wait_until(lambda: len(received) == 1)
        assert received[0].type == "events_api"
        assert received[0].payload["event"]["bot_id"] == "BT1BOT"
        await wait_until(lambda: len(socket_slack.acks) == 1)
        assert socket_slack.acks[0]["envelope_id"] == received[0].envelope_id
    finally:
        await sm.close()


async def test_socket_mode_resends_unacked_envelopes(socket_slack: FakeSlack) -> None:
    frames: list[dict[str, Any]] = []
    sm = SocketModeClient(
        app_token=socket_slack.app_token,
        web_client=AsyncWebClient(base_url=socket_slack.base_url),
        auto_reconnect_enabled=False,
    )

    async def on_message(c: SocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        frames.append(message)
        if message.get("retry_attempt") == 1:
            await c.send_socket_mode_response(
                SocketModeResponse(envelope_id=message["envelope_id"])
            )

    sm.message_listeners.append(on_message)
    await sm.connect()
    try:
        await asyncio.to_thread(
            socket_slack.send_socket, "slash_commands", {"command": "/sync", "text": "status"}
        )
        await wait_until(lambda: len(socket_slack.acks) == 1)
        envelopes = [f for f in frames if f.get("type") == "slash_commands"]
        assert [f["retry_attempt"] for f in envelopes] == [0, 1]
        assert envelopes[1]["retry_reason"] == "timeout"
        assert envelopes[0]["envelope_id"] == envelopes[1]["envelope_id"]
    finally:
        await sm.close()


async def test_socket_mode_disconnect_and_reconnect(socket_slack: FakeSlack) -> None:
    hellos: list[dict[str, Any]] = []
    sm = SocketModeClient(
        app_token=socket_slack.app_token,
        web_client=AsyncWebClient(base_url=socket_slack.base_url),
        ping_interval=0.1,
    )  # the client notices a dropped socket on its pings

    async def on_message(c: SocketModeClient, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            hellos.append(message)

    sm.message_listeners.append(on_message)
    await sm.connect()
    try:
        await wait_until(lambda: len(hellos) == 1)
        assert hellos[0]["debug_info"]["approximate_connection_time"] == 18060
        await asyncio.to_thread(socket_slack.socket_disconnect, "refresh_requested")
        await wait_until(lambda: len(hellos) == 2)
        await asyncio.to_thread(socket_slack.socket_drop)
        await wait_until(lambda: len(hellos) == 3)
        assert len(socket_slack.called("apps.connections.open")) == 3
    finally:
        await sm.close()


def test_connections_open_errors(socket_slack: FakeSlack) -> None:
    bot = client(socket_slack)
    assert (
        error_of(lambda: bot.apps_connections_open(app_token=socket_slack.bot_token("T1")))[1]
        == "not_allowed_token_type"
    )
    app = WebClient(token=socket_slack.app_token, base_url=socket_slack.base_url)
    socket_slack.fail("apps.connections.open", Fault.ratelimited(3))
    assert error_of(lambda: app.apps_connections_open(app_token=socket_slack.app_token))[0] == 429
    bad = WebClient(base_url=socket_slack.base_url)
    assert error_of(lambda: bad.apps_connections_open(app_token="xapp-1-bad"))[1] == (
        "invalid_auth"
    )


async def test_socket_mode_spreads_envelopes_over_connections(socket_slack: FakeSlack) -> None:
    got: dict[int, list[str]] = {0: [], 1: []}
    hellos: list[int] = []
    clients = []
    for n in (0, 1):
        sm = SocketModeClient(
            app_token=socket_slack.app_token,
            web_client=AsyncWebClient(base_url=socket_slack.base_url),
            auto_reconnect_enabled=False,
        )

        async def on_message(
            c: SocketModeClient, message: dict[str, Any], raw: str | None, n: int = n
        ) -> None:
            if message.get("type") == "hello":
                hellos.append(message["num_connections"])
            elif "envelope_id" in message:
                got[n].append(message["payload"]["event"]["text"])
                await c.send_socket_mode_response(
                    SocketModeResponse(envelope_id=message["envelope_id"])
                )

        sm.message_listeners.append(on_message)
        await sm.connect()
        await wait_until(lambda n=n: len(hellos) == n + 1)
        clients.append(sm)
    try:
        assert hellos == [1, 2]
        for text in ("a", "b", "c", "d"):
            await asyncio.to_thread(socket_slack.post_message, "T1", "C1", "U1", text)
        await wait_until(lambda: len(socket_slack.acks) == 4)
        assert got[0] and got[1] and sorted(got[0] + got[1]) == ["a", "b", "c", "d"]
    finally:
        for sm in clients:
            await sm.close()


def test_revoked_token_and_snapshots(slack: FakeSlack) -> None:
    c = client(slack)
    ts = c.chat_postMessage(channel="C1", text="before")["ts"]
    snapshot = slack.messages("T1", "C1")
    slack.revoke("T1")
    assert error_of(lambda: c.chat_update(channel="C1", ts=ts, text="after"))[1] == (
        "token_revoked"
    )
    slack.edit("T1", "C1", ts, "changed by a person")
    assert snapshot[0].text == "before"
    assert slack.messages("T1", "C1")[0].text == "changed by a person"


# --- own process: python -m fakeslack and its control API ------------------------------------


def test_own_process_serves_web_api_events_and_control(receiver: Receiver) -> None:
    with RemoteSlack.spawn(
        "--workspaces", "2", "--channels", "2", "--latency-ms", "5", "--app-url", receiver.url
    ) as remote:
        assert [w["team_id"] for w in remote.workspaces] == ["T000", "T001"]
        assert remote.workspaces[0]["channels"] == ["C000", "C00001"]
        c = WebClient(token=remote.bot_token("T000"), base_url=remote.api_url)
        assert c.auth_test()["user_id"] == "UT000BOT"

        # Faults injected from this process reach clients of that one, as Slack sends them.
        remote.fail("chat.postMessage", "429:3", "503")
        status, error, resp = error_of(lambda: c.chat_postMessage(channel="C000", text="a"))
        assert (status, error, resp.headers["Retry-After"]) == (429, "ratelimited", "3")
        assert error_of(lambda: c.chat_postMessage(channel="C000", text="b"))[0] == 503
        ts = c.chat_postMessage(channel="C000", text="c")["ts"]
        assert [m["text"] for m in remote.messages("T000", "C000")] == ["c"]
        calls = remote.calls("chat.postMessage")
        assert [call["fault"] for call in calls] == ["ratelimited", "status", None]

        # A person's post goes to the app signed, and so does the echo of the app's own post.
        posted = remote.post_message("T001", "C001", "U001", "hello *there*")
        verifier = SignatureVerifier(remote.signing_secret)
        wait_for(lambda: len(receiver.requests) >= 2)
        events = sorted(receiver.events(), key=lambda e: e["team_id"])
        assert [e["event"]["ts"] for e in events] == [ts, posted]
        assert events[0]["event"]["bot_id"] == "BT000BOT"  # our own post, echoed
        assert events[1]["event"]["blocks"][0]["type"] == "rich_text"
        for headers, body in receiver.requests:
            assert verifier.is_valid(
                body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
            )
        remote.latency(0.0)
        remote.clear_faults()
        assert len(remote.populate(1)) == 1 and len(remote.workspaces) == 3
    assert remote.process is not None and remote.process.returncode == 0  # clean SIGTERM stop


def test_control_api_refuses_bad_input_with_400() -> None:
    with FakeSlack() as fake:
        remote = RemoteSlack.attach(fake.url)
        for call in (
            lambda: remote.fail("chat.postMessage", "teapot"),
            lambda: remote.fail("*", "500", probability=2.0),
            lambda: remote.messages("T404", "C1"),
            lambda: remote._request("POST", "faults", {"faults": []}),
            lambda: remote._request("POST", "latency", {"ms": -1}),
        ):
            with pytest.raises(RemoteError) as info:
                call()
            assert '"ok": false' in str(info.value)
        remote.fail("*", "500", probability=0.0)  # valid: accepted, never fires
        assert fake.populate(1)[0].id == "T000"


async def test_each_workspace_app_has_its_own_socket_mode_connections(
    socket_slack: FakeSlack,
) -> None:
    socket_slack.add_workspace("T2", socket_mode=True)
    socket_slack.add_channel("T2", "C2", "general")
    own_token = socket_slack.add_app_token("T2")
    got: dict[str, list[dict[str, Any]]] = {"default": [], "T2": []}
    clients = []
    for name, token in (("default", socket_slack.app_token), ("T2", own_token)):
        sm = SocketModeClient(
            app_token=token,
            web_client=AsyncWebClient(base_url=socket_slack.base_url),
            auto_reconnect_enabled=False,
        )

        async def on_request(
            c: SocketModeClient, req: SocketModeRequest, into: str = name
        ) -> None:
            got[into].append({"type": req.type, "payload": req.payload})
            await c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

        sm.socket_mode_request_listeners.append(on_request)
        await sm.connect()
        clients.append(sm)
    try:
        await wait_until(lambda: socket_slack.socket_hellos("T2") == 1)
        await asyncio.to_thread(
            socket_slack.send_socket, "slash_commands", {"command": "/sync"}, team_id="T2"
        )
        await asyncio.to_thread(
            client(socket_slack, "T2").chat_postMessage, channel="C2", text="x"
        )
        await wait_until(lambda: len(got["T2"]) == 2)
        assert sorted(g["type"] for g in got["T2"]) == ["events_api", "slash_commands"]
        await wait_until(lambda: len(socket_slack.socket_acks("T2")) == 2)
        assert not socket_slack.socket_pending("T2")
        assert got["default"] == []  # the other app's connection saw none of it
    finally:
        for sm in clients:
            await sm.close()


async def test_a_silenced_socket_is_never_greeted(socket_slack: FakeSlack) -> None:
    token = socket_slack.add_app_token("T1")
    socket_slack.silence_sockets(1, "T1")
    app = AsyncWebClient(token=token, base_url=socket_slack.base_url)
    async with aiohttp.ClientSession() as session:
        silent = await session.ws_connect(
            (await app.apps_connections_open(app_token=token))["url"]
        )
        async with session.ws_connect(
            (await app.apps_connections_open(app_token=token))["url"]
        ) as greeted:
            hello = await greeted.receive_json()
        # The hub decides at accept time: once the later socket is greeted, the silenced one
        # has been passed over for good.
        assert hello["type"] == "hello"
        assert socket_slack.socket_hellos("T1") == 1
        assert not socket_slack.socket_closed(1, "T1")  # held open, just never greeted
        await silent.close()
    await wait_until(lambda: socket_slack.socket_closed(1, "T1"))
    assert socket_slack.connection_opens(token) == 2
