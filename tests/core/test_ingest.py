"""One ingest call: relay, then dispatch — the only way inbound events enter the sync."""

from __future__ import annotations

import ast
import time
from pathlib import Path

from app.core.dispatch import Dispatcher
from app.core.ingest import Ingest
from tests import builders
from tests.builders import RecordingNotifier
from tests.core.conftest import A, B, C

APP = Path(__file__).resolve().parents[2] / "app"


async def test_ingest_relays_then_delivers_inline_until_the_deadline(world) -> None:
    store, relay, outbox, deliverer = world
    notifier = RecordingNotifier()
    ingest = Ingest(relay, Dispatcher(outbox, store, notifier))
    result = await ingest(builders.post(A, "1.1"), deadline=time.monotonic() + 30.0)
    assert not result.duplicate and len(result.deliveries) == 2
    assert sorted(c.target for c in deliverer.calls) == sorted([B, C])
    assert notifier.notices == []


async def test_without_a_deadline_the_notifier_delivers(world) -> None:
    store, relay, outbox, deliverer = world
    notifier = RecordingNotifier()
    ingest = Ingest(relay, Dispatcher(outbox, store, notifier))
    result = await ingest(builders.post(A, "1.1"))
    assert sorted(n.uid for n in notifier.notices) == sorted(result.deliveries)
    assert deliverer.calls == []


async def test_a_past_deadline_delivers_nothing_inline(world) -> None:
    store, relay, outbox, deliverer = world
    notifier = RecordingNotifier()
    ingest = Ingest(relay, Dispatcher(outbox, store, notifier))
    result = await ingest(builders.post(A, "1.1"), deadline=float("-inf"))
    assert deliverer.calls == []
    assert sorted(n.uid for n in notifier.notices) == sorted(result.deliveries)


async def test_a_duplicate_dispatches_nothing(world) -> None:
    store, relay, outbox, _deliverer = world
    notifier = RecordingNotifier()
    ingest = Ingest(relay, Dispatcher(outbox, store, notifier))
    event = builders.post(A, "1.1")
    await ingest(event)
    notifier.notices.clear()
    again = await ingest(event)
    assert again.duplicate and again.deliveries == ()
    assert notifier.notices == []


def _calls(attr: str) -> list[str]:
    """Modules of app/ that call ``<something>.<attr>(...)``."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            callee = node.func if isinstance(node, ast.Call) else None
            # asyncio.to_thread(relay.ingest, event) passes the method without calling it.
            passed = node.args if isinstance(node, ast.Call) else []
            for candidate in [callee, *passed]:
                if isinstance(candidate, ast.Attribute) and candidate.attr == attr:
                    found.append(str(path.relative_to(APP.parent)))
    return sorted(set(found))


def test_every_inbound_path_goes_through_the_one_ingest_call() -> None:
    # Relaying an event and dispatching its deliveries are written once, in app/core/ingest.py;
    # the dispatcher's other caller re-dispatches a held target's backlog (no inbound event).
    assert _calls("ingest") == ["app/core/ingest.py"]
    assert _calls("after_commit") == ["app/core/ingest.py", "app/slack/holds.py"]
