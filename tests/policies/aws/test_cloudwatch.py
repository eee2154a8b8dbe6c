from __future__ import annotations

from policies.aws import cloudwatch
from tests.policies.sdk import check_resource


def test_log_group_with_retention_passes() -> None:
    props = {"name": "/aws/lambda/syncbot", "retentionInDays": 30}
    assert check_resource(cloudwatch.log_retention, cloudwatch.LOG_GROUP, props) == []


def test_log_group_kept_forever_is_reported() -> None:
    for props in ({"name": "/aws/lambda/syncbot"}, {"retentionInDays": 0}):
        assert check_resource(cloudwatch.log_retention, cloudwatch.LOG_GROUP, props) == [
            "retentionInDays is not set; logs would be kept forever."
        ]


def test_configured_maximum() -> None:
    props = {"retentionInDays": 365}
    assert check_resource(
        cloudwatch.log_retention, cloudwatch.LOG_GROUP, props, config={"maximumDays": 90}
    ) == ["retentionInDays is 365; at most 90 allowed."]
