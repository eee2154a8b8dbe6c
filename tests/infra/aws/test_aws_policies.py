"""The shipped AWS stacks pass the policy pack (the rules CI's preview enforces)."""

from __future__ import annotations

import pytest

from tests.infra.conftest import MockRun, evaluate_run, patch_type

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.parametrize("stack", ["dev", "prod", "bootstrap"])
def test_no_policy_violations(stack: str, request: pytest.FixtureRequest) -> None:
    run: MockRun = request.getfixturevalue(stack)
    assert [(v.policy, v.message) for v in evaluate_run(run)] == []


def test_the_pack_sees_these_resources(dev: MockRun) -> None:
    # Negative control: the same records with a public database must be caught.
    found = evaluate_run(dev, patch_type("aws:rds/instance:Instance", publiclyAccessible=True))
    assert found
    assert {v.enforcement for v in found} == {"mandatory"}
    assert "syncbot-aws-rds-no-public-access" in {v.policy for v in found}
