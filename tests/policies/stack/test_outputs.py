from __future__ import annotations

from policies.stack import outputs
from tests.policies.sdk import check_stack, stack_resource

EXPORTS = {
    "deploy_role": "arn:aws:iam::1:role/deploy",
    "artifact_bucket": "artifacts",
    "region": "eu-west-1",
    "service_url": "https://x.execute-api.eu-west-1.amazonaws.com",
}


def test_all_bootstrap_outputs_pass() -> None:
    root = stack_resource(outputs.STACK, EXPORTS, name="syncbot-dev")
    assert check_stack(outputs.bootstrap_outputs, [root]) == []


def test_missing_outputs_are_reported() -> None:
    root = stack_resource(outputs.STACK, {"region": "eu-west-1"}, name="syncbot-dev")
    assert check_stack(outputs.bootstrap_outputs, [root]) == [
        "missing stack outputs: deploy_role, artifact_bucket, service_url."
    ]


def test_required_outputs_are_configurable() -> None:
    root = stack_resource(outputs.STACK, {"region": "eu-west-1"}, name="syncbot-dev")
    config = {"requiredOutputs": ["region"]}
    assert check_stack(outputs.bootstrap_outputs, [root], config) == []
