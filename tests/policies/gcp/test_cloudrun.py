from __future__ import annotations

import pytest

from policies.gcp import cloudrun
from tests.policies.sdk import check_resource

SECRET_ENV = {
    "name": "TOKEN_ENCRYPTION_KEY",
    "valueSource": {"secretKeyRef": {"secret": "syncbot-token-key", "version": "3"}},
}
PLAIN_ENV = {"name": "LOG_LEVEL", "value": "INFO"}


def service(*envs: dict) -> dict:
    return {
        "location": "europe-west1",
        "template": {"containers": [{"image": "img@sha256:0", "envs": list(envs)}]},
    }


def job(*envs: dict) -> dict:
    return {
        "location": "europe-west1",
        "template": {"template": {"containers": [{"image": "img", "envs": list(envs)}]}},
    }


def test_secrets_by_reference_pass() -> None:
    policy = cloudrun.secrets_by_reference
    assert check_resource(policy, cloudrun.SERVICE_V2, service(SECRET_ENV, PLAIN_ENV)) == []
    assert check_resource(policy, cloudrun.JOB_V2, job(SECRET_ENV, PLAIN_ENV)) == []


@pytest.mark.parametrize("build", [service, job])
def test_plaintext_secret_is_reported(build) -> None:
    resource_type = cloudrun.SERVICE_V2 if build is service else cloudrun.JOB_V2
    props = build(PLAIN_ENV, {"name": "SLACK_CLIENT_SECRET", "value": "abc123"})
    assert check_resource(cloudrun.secrets_by_reference, resource_type, props) == [
        "env SLACK_CLIENT_SECRET is a literal value; read it with valueSource.secretKeyRef."
    ]


def test_credential_shaped_literal_is_reported_on_v1_services() -> None:
    props = {
        "template": {
            "spec": {"containers": [{"envs": [{"name": "X", "value": "AKIAABCDEFGHIJKLMNOP"}]}]}
        }
    }
    assert check_resource(cloudrun.secrets_by_reference, cloudrun.SERVICE_V1, props) == [
        "env X holds a credential-shaped literal value."
    ]
