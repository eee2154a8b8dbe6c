from __future__ import annotations

from policies.stack import outputs, wiring
from tests.policies.sdk import check_stack, stack_resource

BOOTSTRAP_EXPORTS = {
    "deploy_role": "arn:aws:iam::1:role/deploy",
    "artifact_bucket": "artifacts",
    "region": "eu-west-1",
}
APP_EXPORTS = {
    "region": "eu-west-1",
    "service_url": "https://x.execute-api.eu-west-1.amazonaws.com",
}
APP_FUNCTION = stack_resource(
    wiring.LAMBDA, {"environment": {"variables": {"SLACK_CLIENT_ID": "1.2"}}}, name="fn"
)


def root(exports: dict[str, str]) -> object:
    return stack_resource(outputs.STACK, exports, name="syncbot-dev")


def test_bootstrap_stack_with_its_outputs_passes() -> None:
    assert check_stack(outputs.bootstrap_outputs, [root(BOOTSTRAP_EXPORTS)]) == []


def test_app_stack_with_its_outputs_passes() -> None:
    assert check_stack(outputs.bootstrap_outputs, [root(APP_EXPORTS), APP_FUNCTION]) == []


def test_bootstrap_stack_without_deploy_role_is_reported() -> None:
    assert check_stack(outputs.bootstrap_outputs, [root({"region": "eu-west-1"})]) == [
        "missing stack outputs: deploy_role, artifact_bucket."
    ]


def test_app_stack_without_service_url_is_reported() -> None:
    exports = {k: v for k, v in APP_EXPORTS.items() if k != "service_url"}
    assert check_stack(outputs.bootstrap_outputs, [root(exports), APP_FUNCTION]) == [
        "missing stack outputs: service_url."
    ]


def test_required_outputs_are_configurable() -> None:
    config = {"requiredOutputs": ["deploy_role", "service_url"]}
    assert check_stack(outputs.bootstrap_outputs, [root(APP_EXPORTS)], config) == [
        "missing stack outputs: deploy_role."
    ]
