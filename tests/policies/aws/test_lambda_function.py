from __future__ import annotations

import json

import pytest

from policies.aws import lambda_function as fn
from tests.policies.sdk import check_resource

ARNS = json.dumps({"TOKEN_ENCRYPTION_KEY": "arn:aws:secretsmanager:eu-west-1:1:secret:key"})
SECURE = {
    "runtime": "python3.12",
    "handler": "app.lambda_handler.handler",
    "environment": {
        "variables": {
            "SLACK_CLIENT_ID": "123.456",
            "SYNCBOT_SECRET_ARNS": ARNS,
            "DATABASE_HOST": "db.internal",
            "DATABASE_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:db",
        }
    },
}


def test_secure_function_passes() -> None:
    for policy in fn.POLICIES:
        assert check_resource(policy, fn.FUNCTION, SECURE) == []


@pytest.mark.parametrize("runtime", ["python3.9", "nodejs20.x", None])
def test_runtime_outside_the_set_is_reported(runtime: str | None) -> None:
    props = {**SECURE, "runtime": runtime}
    assert len(check_resource(fn.runtime_allowed, fn.FUNCTION, props)) == 1


def test_runtime_set_is_configurable_and_images_pass() -> None:
    config = {"allowedRuntimes": ["python3.13"]}
    assert check_resource(fn.runtime_allowed, fn.FUNCTION, SECURE, config=config) == [
        "runtime 'python3.12' is not one of python3.13."
    ]
    assert check_resource(fn.runtime_allowed, fn.FUNCTION, {"packageType": "Image"}) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOKEN_ENCRYPTION_KEY", "k" * 40),  # a contract secret
        ("STRIPE_API_KEY", "sk_live_x"),  # a telling name outside the contract
        ("DATABASE_PASSWORD", "hunter2"),
    ],
)
def test_secret_named_plaintext_is_reported(name: str, value: str) -> None:
    props = {**SECURE, "environment": {"variables": {name: value}}}
    assert check_resource(fn.no_plaintext_secrets, fn.FUNCTION, props) == [
        f"environment variable {name} holds a secret in plain text; pass its Secrets Manager "
        "ARN instead."
    ]


def test_credential_shaped_value_is_reported_under_any_name() -> None:
    props = {"environment": {"variables": {"GREETING": "xoxb-1234567890-abcdefghij"}}}
    assert check_resource(fn.no_plaintext_secrets, fn.FUNCTION, props) == [
        "environment variable GREETING holds a credential-shaped value."
    ]


def test_allowed_names_and_empty_values_pass() -> None:
    props = {"environment": {"variables": {"SESSION_TOKEN_TTL": "60", "SLACK_BOT_TOKEN": ""}}}
    assert check_resource(fn.no_plaintext_secrets, fn.FUNCTION, props) != []
    config = {"allowedNames": ["SESSION_TOKEN_TTL"]}
    assert check_resource(fn.no_plaintext_secrets, fn.FUNCTION, props, config=config) == []


SQS_ARN = "arn:aws:sqs:eu-west-1:123456789012:app-deliveries.fifo"


def test_sqs_trigger_with_partial_batch_responses_passes() -> None:
    props = {
        "eventSourceArn": SQS_ARN,
        "functionName": "fn",
        "functionResponseTypes": ["ReportBatchItemFailures"],
    }
    assert check_resource(fn.sqs_batch_item_failures, fn.EVENT_SOURCE_MAPPING, props) == []


@pytest.mark.parametrize("types", [None, []])
def test_sqs_trigger_without_partial_batch_responses_is_reported(types: list | None) -> None:
    props = {"eventSourceArn": SQS_ARN, "functionName": "fn", "functionResponseTypes": types}
    assert check_resource(fn.sqs_batch_item_failures, fn.EVENT_SOURCE_MAPPING, props) == [
        "SQS event source mapping without functionResponseTypes [ReportBatchItemFailures]."
    ]


def test_stream_triggers_are_not_held_to_the_sqs_rule() -> None:
    props = {
        "eventSourceArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/s",
        "functionName": "fn",
        "startingPosition": "LATEST",
    }
    assert check_resource(fn.sqs_batch_item_failures, fn.EVENT_SOURCE_MAPPING, props) == []
