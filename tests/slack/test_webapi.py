"""The Web API wrapper against the fake Slack: every failure becomes the right RemoteError.

Every failure test runs three times: through slack_sdk (a loop without a pooled session),
through the direct JSON request ``chat.postMessage`` takes on a pooled loop (serve's worker) on
the lean HTTP/1.1 client, and through that request on aiohttp's session, which it takes when a
proxy is configured (here the fake itself, which answers absolute-form requests as a proxy
would pass them on).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from app.errors import RemoteError
from app.slack.http_pool import HttpPool
from app.slack.ratelimit import RateLimiter
from app.slack.webapi import SlackApi
from fakeslack import FakeSlack
from tests.slack.harness import free_port


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    fake.add_workspace("T1", "Acme")
    fake.add_channel("T1", "C1", "general")
    yield fake
    fake.stop()


@pytest.fixture(params=["per-call", "pooled", "pooled-proxied"])
async def pool(request, slack, monkeypatch) -> AsyncIterator[HttpPool]:
    pool = HttpPool()
    if request.param.startswith("pooled"):
        await pool.open()
    if request.param == "pooled-proxied":
        monkeypatch.setenv("HTTP_PROXY", slack.base_url.removesuffix("/api/"))
    yield pool
    lean = pool.lean()
    await pool.close()
    if request.param == "pooled-proxied":
        assert lean is not None and lean.connections() == 0  # never straight to Slack


def api(slack: FakeSlack, pool: HttpPool, limiter: RateLimiter | None = None) -> SlackApi:
    return SlackApi(
        token=slack.bot_token("T1"),
        team_id="T1",
        base_url=slack.base_url,
        limiter=limiter or RateLimiter(scale=1000),
        timeout=1.0,
        pool=pool,
    )


async def test_429_carries_retry_after_and_pauses_the_method(slack, pool) -> None:
    slack.fail("chat.postMessage", "429:2")
    limiter = RateLimiter(scale=1000)
    client = api(slack, pool, limiter)
    with pytest.raises(RemoteError) as err:
        await client.call("chat.postMessage", channel="C1", text="x")
    assert err.value.status == 429 and err.value.retry_after == 2 and err.value.retryable
    assert limiter._paused_until[("T1", "chat.postMessage")] > time.monotonic() + 1.5


@pytest.mark.parametrize(
    ("fault", "unknown"),
    [("500", True), ("timeout", True), ("drop", True), ("500_after", True)],
)
async def test_write_failures_are_retryable_with_unknown_outcome(
    slack, pool, fault, unknown
) -> None:
    slack.fail("chat.postMessage", fault)
    with pytest.raises(RemoteError) as err:
        await api(slack, pool).call("chat.postMessage", channel="C1", text="x")
    assert err.value.retryable and err.value.outcome_unknown is unknown


async def test_read_failures_are_retryable_but_never_unknown(slack, pool) -> None:
    slack.fail("conversations.history", "timeout")
    with pytest.raises(RemoteError) as err:
        await api(slack, pool).call("conversations.history", channel="C1")
    assert err.value.retryable and not err.value.outcome_unknown


async def test_slack_errors_are_final_unless_transient(slack, pool) -> None:
    with pytest.raises(RemoteError) as err:
        await api(slack, pool).call("chat.postMessage", channel="CNOPE", text="x")
    assert err.value.code == "channel_not_found" and not err.value.retryable


async def test_already_done_answers_count_as_success(slack, pool) -> None:
    client = api(slack, pool)
    posted = await client.call("chat.postMessage", channel="C1", text="x")
    await client.call("reactions.add", channel="C1", timestamp=posted["ts"], name="tada")
    again = await client.call("reactions.add", channel="C1", timestamp=posted["ts"], name="tada")
    assert again["already"] == "already_reacted"
    await client.call("chat.delete", channel="C1", ts=posted["ts"])
    gone = await client.call("chat.delete", channel="C1", ts=posted["ts"])
    assert gone["already"] == "message_not_found"


async def test_a_post_carries_its_metadata_and_options_either_way(slack, pool) -> None:
    client = api(slack, pool)
    parent = await client.call("chat.postMessage", channel="C1", text="parent")
    meta = {"event_type": "syncbot_delivery", "event_payload": {"delivery": "d-1", "post": "p"}}
    posted = await client.call(
        "chat.postMessage",
        channel="C1",
        text="reply",
        thread_ts=parent["ts"],
        reply_broadcast="true",
        unfurl_links="false",
        icon_url=None,
        metadata=meta,
    )
    assert posted["ok"] and posted["message"]["metadata"] == meta
    assert "icon_url" not in slack.called("chat.postMessage")[-1]  # None: not sent, either way
    history = await client.call(
        "conversations.replies", channel="C1", ts=parent["ts"], include_all_metadata="true"
    )
    reply = history["messages"][-1]
    assert reply["metadata"] == meta and reply.get("subtype") == "thread_broadcast"


async def test_a_post_goes_through_the_proxy_slack_sdk_uses(slack, pool, monkeypatch) -> None:
    # Nothing listens on this port: a call that went through the proxy fails to connect.
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RemoteError) as err:
        await api(slack, pool).call("chat.postMessage", channel="C1", text="x")
    assert err.value.retryable and "connection failed" in str(err.value)
    assert slack.called("chat.postMessage") == []


async def test_limiter_paces_posts_per_channel() -> None:
    limiter = RateLimiter(scale=20)  # 20 posts/s per channel after a burst of 5
    start = time.monotonic()
    for _ in range(9):
        await limiter.acquire("T1", "chat.postMessage", "C1")
    paced = time.monotonic() - start
    assert paced >= 0.15  # 4 tokens beyond the burst of 5, at 20/s: sleeps cannot be shorter
    await limiter.acquire("T1", "chat.postMessage", "C2")  # another channel: its own bucket
    assert limiter._buckets[("T1", "chat.postMessage", "C2")].tokens == 4


async def test_a_pooled_loop_reuses_its_connection_and_others_do_not(slack) -> None:
    pool = HttpPool()
    client = SlackApi(
        token=slack.bot_token("T1"),
        team_id="T1",
        base_url=slack.base_url,
        limiter=RateLimiter(scale=1000),
        pool=pool,
    )
    for _ in range(3):
        await client.call("auth.test")
    assert len(slack.peers) == 3  # no pooled session on this loop: a connection per call
    before = slack.peers
    await pool.open()
    try:
        for _ in range(5):
            await client.call("auth.test")
        # A dropped connection is a retryable failure, and the next call connects afresh.
        slack.fail("auth.test", "drop")
        with pytest.raises(RemoteError):
            await client.call("auth.test")
        await client.call("auth.test")
    finally:
        await pool.close()
    assert len(slack.peers - before) == 2
    assert pool.session() is None


async def test_pooled_posts_reuse_one_lean_connection(slack) -> None:
    pool = HttpPool()
    await pool.open()
    try:
        client = api(slack, pool)
        before = slack.peers
        for _ in range(3):
            await client.call("chat.postMessage", channel="C1", text="x")
        lean = pool.lean()
        assert lean is not None and lean.connections() == 1
        assert len(slack.peers - before) == 1
    finally:
        await pool.close()
    assert pool.lean() is None and lean.connections() == 0


async def test_a_post_dropped_on_a_reused_connection_is_unknown_not_resent(slack) -> None:
    # The fake posts, then drops the connection unanswered: to the client this looks just like
    # an idle connection closed as the request arrived, and resending it would post twice.
    pool = HttpPool()
    await pool.open()
    try:
        client = api(slack, pool)
        await client.call("chat.postMessage", channel="C1", text="first")
        slack.fail("chat.postMessage", "drop_after")
        with pytest.raises(RemoteError) as err:
            await client.call("chat.postMessage", channel="C1", text="second")
        assert err.value.retryable and err.value.outcome_unknown
        assert [m.text for m in slack.messages("T1", "C1")] == ["first", "second"]
    finally:
        await pool.close()
