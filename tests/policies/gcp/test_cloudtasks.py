from __future__ import annotations

from typing import Any

import pytest

from policies.gcp import cloudtasks
from tests.policies.sdk import check_resource

QUEUE = {"name": "syncbot-deliveries", "location": "europe-west1"}


def test_bounded_retries_pass() -> None:
    props = {**QUEUE, "retryConfig": {"maxAttempts": 20, "minBackoff": "1s"}}
    assert check_resource(cloudtasks.bounded_retries, cloudtasks.QUEUE, props) == []


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        (None, "queue has no retryConfig; set maxAttempts and backoff."),
        ({"minBackoff": "1s"}, "retryConfig.maxAttempts is not set."),
        ({"maxAttempts": -1}, "retryConfig.maxAttempts is -1: retries are unbounded."),
        ({"maxAttempts": 500}, "retryConfig.maxAttempts is 500; at most 100."),
    ],
)
def test_unbounded_or_missing_retries_are_reported(
    retry: dict[str, Any] | None, message: str
) -> None:
    props = {**QUEUE, **({"retryConfig": retry} if retry is not None else {})}
    assert check_resource(cloudtasks.bounded_retries, cloudtasks.QUEUE, props) == [message]


def test_the_maximum_is_configurable() -> None:
    props = {**QUEUE, "retryConfig": {"maxAttempts": 20}}
    config = {"maximumAttempts": 10}
    assert check_resource(cloudtasks.bounded_retries, cloudtasks.QUEUE, props, config=config) == [
        "retryConfig.maxAttempts is 20; at most 10."
    ]
