"""The homeserver client serves every event loop the app runs it in.

Lambda's scheduler tick runs maintenance (the outbox catch-up, the Matrix catch-up sweep) in a
fresh ``asyncio.run`` each time; a session made in an earlier, closed loop cannot be reused.
"""

from __future__ import annotations

import asyncio

import pytest

from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.ids import BridgeIds
from tests.matrix.synapse import SERVER, Synapse

pytestmark = pytest.mark.integration


def test_one_client_answers_in_successive_event_loops(synapse: Synapse) -> None:
    if synapse.proc is None:
        synapse.start()
    hs = Homeserver(url=synapse.url, as_token=synapse.as_token, ids=BridgeIds(server_name=SERVER))

    async def whoami() -> str:
        try:
            async with matrix_errors("whoami"):
                return str(await hs.bot.whoami())
        finally:
            await hs.close()  # what a round run in its own loop does before the loop ends

    assert asyncio.run(whoami()) == asyncio.run(whoami())
