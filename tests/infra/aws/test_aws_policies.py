"""The shipped AWS stacks pass the policy pack (the rules CI's preview enforces)."""

from __future__ import annotations

import pytest

from policies.evaluate import Resource, Violation, evaluate
from tests.infra.conftest import PROJECT, STACK, MockRun

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"


def _evaluate(run: MockRun, **overrides: dict) -> list[Violation]:
    resources = [
        Resource(
            r.typ,
            r.name,
            r.urn,
            {**r.inputs, **overrides.get(r.typ, {})},
            {**r.outputs, "id": r.id},
            r.parent,
            r.dependencies,
        )
        for r in run.resources
    ]
    return evaluate(resources, stack_urn=STACK_URN, stack_outputs=run.outputs)


@pytest.mark.parametrize("stack", ["dev", "prod", "bootstrap"])
def test_no_policy_violations(stack: str, request: pytest.FixtureRequest) -> None:
    run: MockRun = request.getfixturevalue(stack)
    assert [(v.policy, v.message) for v in _evaluate(run)] == []


def test_the_pack_sees_these_resources(dev: MockRun) -> None:
    # Negative control: the same records with a public database must be caught.
    found = _evaluate(dev, **{"aws:rds/instance:Instance": {"publiclyAccessible": True}})
    assert found
    assert {v.enforcement for v in found} == {"mandatory"}
    assert "syncbot-aws-rds-no-public-access" in {v.policy for v in found}
