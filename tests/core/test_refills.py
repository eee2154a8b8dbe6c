"""A background lane refills from its target a bounded number of times, and never claims rows
it will not deliver: such rows stayed leased to nobody until the lease ran out (two minutes),
holding up their target."""

from __future__ import annotations

from app.core.endpoints import Network
from app.core.outbox import MAX_REFILLS, Outbox
from tests import builders
from tests.core.conftest import POLICY, A, World


async def test_a_pass_leaves_no_row_leased_that_it_did_not_deliver(world: World) -> None:
    store, relay, _outbox, deliverer = world
    # One row per claim (one lane, so the pass's own claim takes one row too): the lane
    # refills after every delivery.
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY, batch=1, lanes=1)
    for i in range(MAX_REFILLS + 3):
        relay.ingest(builders.post(A, f"100.{i}"))
    report = await outbox.drain()
    assert report.delivered > 0
    pending = [row for row in store.rows() if row.status == "pending"]
    assert pending  # the pass stopped refilling before the backlog was done
    assert [row.uid for row in pending if row.lease_owner is not None] == []


async def test_a_lane_whose_refill_comes_back_short_claims_no_more(world: World) -> None:
    store, relay, _outbox, deliverer = world
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY, batch=4, lanes=1)
    for i in range(6):
        relay.ingest(builders.post(A, f"200.{i}"))  # 6 rows to each of the two other channels
    claims: list[int] = []
    claim_due = store.claim_due

    def counted(**kwargs: object) -> list:
        rows = claim_due(**kwargs)  # type: ignore[arg-type]
        claims.append(len(rows))
        return rows

    store.claim_due = counted  # type: ignore[method-assign]
    report = await outbox.drain()
    # The pass's 4 rows of one target, then its 2 left: fewer than a batch, so all it had;
    # a third claim would only have come back empty.
    assert claims == [4, 2]
    assert report.delivered == 6
