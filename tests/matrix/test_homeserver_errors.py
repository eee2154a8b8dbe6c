"""Homeserver failures become RemoteErrors the outbox can act on (against a tiny fake HS)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from app.errors import RemoteError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.ids import BridgeIds


@pytest.fixture
async def fake_hs(unused_tcp_port: int) -> AsyncIterator[tuple[str, list[web.Response]]]:
    answers: list[web.Response] = []

    async def any_call(request: web.Request) -> web.Response:
        return answers.pop(0)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_call)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    yield f"http://127.0.0.1:{unused_tcp_port}", answers
    await runner.cleanup()


async def send(url: str) -> None:
    hs = Homeserver(url=url, as_token="as", ids=BridgeIds(server_name="hs.example"), timeout=5)
    try:
        async with matrix_errors("send message"):
            await hs.bot.send_message_event(
                "!r:hs.example",
                "m.room.message",  # type: ignore[arg-type]
                {"msgtype": "m.text", "body": "x"},
                txn_id="t1",
            )
    finally:
        await hs.close()


async def test_rate_limit_carries_retry_after(fake_hs) -> None:
    url, answers = fake_hs
    answers.append(
        web.json_response(
            {"errcode": "M_LIMIT_EXCEEDED", "error": "slow down", "retry_after_ms": 2500},
            status=429,
        )
    )
    with pytest.raises(RemoteError) as err:
        await send(url)
    assert err.value.retryable and err.value.status == 429 and err.value.retry_after == 2.5


async def test_server_errors_are_retryable_and_outcome_unknown(fake_hs) -> None:
    url, answers = fake_hs
    answers.append(web.json_response({"errcode": "M_UNKNOWN", "error": "boom"}, status=502))
    with pytest.raises(RemoteError) as err:
        await send(url)
    assert err.value.retryable and err.value.outcome_unknown and err.value.retry_after is None


async def test_client_errors_are_final(fake_hs) -> None:
    url, answers = fake_hs
    answers.append(web.json_response({"errcode": "M_FORBIDDEN", "error": "no"}, status=403))
    with pytest.raises(RemoteError) as err:
        await send(url)
    assert not err.value.retryable and err.value.code == "M_FORBIDDEN"


async def test_unreachable_homeserver_is_retryable(unused_tcp_port: int) -> None:
    with pytest.raises(RemoteError) as err:
        await send(f"http://127.0.0.1:{unused_tcp_port}")
    assert err.value.retryable and err.value.outcome_unknown
