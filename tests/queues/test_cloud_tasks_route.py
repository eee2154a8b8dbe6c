"""Cloud Tasks: the authenticated delivery route and the tasks the notifier creates."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.core.endpoints import Endpoint
from app.core.ports import PendingDelivery
from app.oidc import OidcVerifier
from app.queues import cloud_tasks
from app.queues.cloud_tasks import CloudTasksNotifier, delivery_route
from tests.builders import RecordingNotifier
from tests.fakes.cloud_tasks import FakeCloudTasks
from tests.oidc_keys import id_token, jwks

AUD = "https://syncbot.example.run.app"
INVOKER = "syncbot-tasks@proj.iam.gserviceaccount.com"
QUEUE = "projects/p/locations/europe-west1/queues/syncbot-deliveries"
TARGET = Endpoint.slack("T1", "C1")


class Dispatcher:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.seen: list[str] = []

    async def work(self, uid: str) -> PendingDelivery | None:
        self.seen.append(uid)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def client(dispatcher: Dispatcher, notifier: RecordingNotifier) -> TestClient:
    verifier = OidcVerifier(audience=AUD, invokers=frozenset({INVOKER}), fetch_keys=jwks)
    app = Starlette(routes=[delivery_route(dispatcher, notifier, verifier)])  # type: ignore[arg-type]
    return TestClient(app)


def bearer(**claims: Any) -> dict[str, str]:
    claims = {"audience": AUD, "email": INVOKER} | claims
    return {"Authorization": f"Bearer {id_token(**claims)}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        bearer(email="someone@proj.iam.gserviceaccount.com"),
        bearer(audience="https://other.example"),
        bearer(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ],
    ids=["missing", "malformed", "other-account", "other-audience", "other-signer"],
)
def test_only_the_invoker_may_deliver(headers: dict[str, str]) -> None:
    dispatcher = Dispatcher(None)
    answer = client(dispatcher, RecordingNotifier()).post(
        "/internal/deliver", json={"delivery": "u1"}, headers=headers
    )
    assert answer.status_code == 401
    assert dispatcher.seen == []


@pytest.mark.parametrize("body", [b"", b"junk", b'{"delivery": 5}', b"[]", b"x" * 5000])
def test_malformed_tasks_are_refused_with_400(body: bytes) -> None:
    answer = client(Dispatcher(None), RecordingNotifier()).post(
        "/internal/deliver", content=body, headers=bearer()
    )
    assert answer.status_code == 400


def test_a_settled_delivery_schedules_nothing() -> None:
    notifier = RecordingNotifier()
    answer = client(Dispatcher(None), notifier).post(
        "/internal/deliver", json={"delivery": "u1"}, headers=bearer()
    )
    assert answer.status_code == 200 and answer.json()["settled"] is True
    assert notifier.notices == []


def test_a_waiting_delivery_gets_a_follow_up_task_for_when_it_is_due() -> None:
    notifier = RecordingNotifier()
    waits = [PendingDelivery("u1", TARGET, 2, 1.5), PendingDelivery("u1", TARGET, 2, 0.0)]
    for waiting in waits:
        answer = client(Dispatcher(waiting), notifier).post(
            "/internal/deliver", json={"delivery": "u1"}, headers=bearer()
        )
        assert answer.status_code == 200 and answer.json()["settled"] is False
    assert [n.due_in for n in notifier.notices] == [1.5, cloud_tasks.MIN_FOLLOW_UP]


@pytest.mark.parametrize("broken", ["dispatcher", "notifier"])
def test_failures_ask_cloud_tasks_to_retry(broken: str) -> None:
    dispatcher = Dispatcher(
        RuntimeError("db away") if broken == "dispatcher" else PendingDelivery("u", TARGET, 1, 1)
    )
    answer = client(dispatcher, RecordingNotifier(broken=broken == "notifier")).post(
        "/internal/deliver", json={"delivery": "u"}, headers=bearer()
    )
    assert answer.status_code == 503


def test_task_shape() -> None:
    notifier = CloudTasksNotifier(
        queue=QUEUE, invoker=INVOKER, url=f"{AUD}/internal/deliver", audience=AUD
    )
    now = datetime(2026, 11, 29, 8, 0, 0, tzinfo=UTC)
    task = notifier.task(PendingDelivery("abc", TARGET, 3, 1.25), now=now)
    assert task["name"] == f"{QUEUE}/tasks/abc-3-{int(now.timestamp() * 1000) + 1250}"
    assert task["scheduleTime"] == "2026-11-29T08:00:01.250000Z"
    request = task["httpRequest"]
    assert request["url"] == f"{AUD}/internal/deliver" and request["httpMethod"] == "POST"
    assert request["oidcToken"] == {"serviceAccountEmail": INVOKER, "audience": AUD}
    assert json.loads(base64.b64decode(request["body"])) == {"delivery": "abc"}


@pytest.fixture
def fake_tasks(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCloudTasks]:
    fake = FakeCloudTasks().start()
    monkeypatch.setattr(cloud_tasks, "CLOUD_TASKS_API", fake.api_url)
    monkeypatch.setattr(cloud_tasks, "METADATA_TOKEN_URL", fake.token_url)
    yield fake
    fake.stop()


async def test_creating_the_same_task_twice_is_idempotent(fake_tasks: FakeCloudTasks) -> None:
    notifier = CloudTasksNotifier(
        queue=QUEUE, invoker=INVOKER, url="http://127.0.0.1:9/internal/deliver", audience=AUD
    )
    pending = PendingDelivery("abc", TARGET, 0, 3600.0)  # due far off: nothing is dispatched
    fixed = datetime.now(UTC)
    original = notifier.task
    notifier.task = lambda p, now=None: original(p, now=fixed)  # type: ignore[method-assign]
    await notifier.notify([pending])
    await notifier.notify([pending])
    assert len(fake_tasks.tasks) == 1 and fake_tasks.refused_creates == 1
